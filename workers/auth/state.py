"""Everything a decision reads besides the request: keys, policies, providers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from workers.auth.jwt_check import VerifiedCache
from workers.auth.keys import KeyIndex
from workers.auth.policy import EventPolicy
from workers.auth.providers import Provider, ProviderKey
from workers.auth.signing import NonceCache

DEFAULT_MAX_BODY = 1024 * 1024
DEFAULT_MAX_BATCH_EVENTS = 500


def _no_unseal(sealed: str) -> str | None:
    return None


@dataclass
class AuthState:
    keys: KeyIndex = field(default_factory=KeyIndex)
    policies: dict[str, EventPolicy] = field(default_factory=dict)
    providers: dict[str, Provider] = field(default_factory=dict)
    # Keys fetched from providers' JWKS URLs, by provider id (workers/keys/jwks.py).
    jwks: dict[str, tuple[ProviderKey, ...]] = field(default_factory=dict)
    # Opens a sealed (`fernet:`) access secret; the worker hands in its vault.
    unseal: Callable[[str], str | None] = _no_unseal
    nonces: NonceCache = field(default_factory=NonceCache)
    verified: VerifiedCache = field(default_factory=VerifiedCache)
    max_body_bytes: int = DEFAULT_MAX_BODY
    max_batch_events: int = DEFAULT_MAX_BATCH_EVENTS

    def provider_keys(self, provider: Provider) -> tuple[ProviderKey, ...]:
        return provider.public_keys + self.jwks.get(provider.id, ())
