"""JWT provider operations of the console: add, remove, and try a token. Pure.

A provider made here carries `source: admin`, so a config reload leaves it alone (as for
keys); one from the config is changed in the config.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from workers.auth.jwt_check import Invalid, verify
from workers.auth.providers import Provider, ProviderError, ProviderKey, provider_from_record
from workers.auth.reasons import Reason
from workers.keys import records
from workers.keys.admin import Change, Conflict, KeyOpError, NoSuchKey


def add(providers: Mapping[str, Provider], provider_id: str, *, jwks_url: str = "",
        public_key: str = "", audience: Iterable[str] = (), issuer: str = "", key: str = "",
        source: str) -> Change:
    provider_id = provider_id.strip()
    if not provider_id or "/" in provider_id:
        raise KeyOpError("a provider id must be non-empty and without '/'")
    if provider_id in providers:
        raise Conflict(f"provider {provider_id} exists; remove it first")
    if bool(jwks_url.strip()) == bool(public_key.strip()):
        raise KeyOpError("give a JWKS URL or a PEM public key (one of them)")
    value: dict[str, Any] = {"id": provider_id, "source": source}
    if jwks_url.strip():
        value["jwks_url"] = jwks_url.strip()
    else:
        value["public_keys"] = [public_key.strip()]
    audiences = [a.strip() for a in audience if a.strip()]
    if audiences:
        value["audience"] = audiences
    for name, text in (("issuer", issuer), ("key", key)):
        if text.strip():
            value[name] = text.strip()
    try:
        provider = provider_from_record(f"provider {provider_id}", value)
    except ProviderError as exc:
        raise KeyOpError(str(exc)) from None
    return Change(others=(records.encode_provider(provider),),
                  message=f"added JWT provider {provider_id}")


def remove(providers: Mapping[str, Provider], provider_id: str) -> Change:
    provider = providers.get(provider_id)
    if provider is None:
        raise NoSuchKey(f"no provider {provider_id}")
    if records.from_config(provider.source):
        raise Conflict(f"provider {provider_id} comes from the config file; change it there")
    return Change(others=(((records.PROVIDER_PREFIX + provider_id).encode(), None),),
                  message=f"removed JWT provider {provider_id}")


@dataclass(frozen=True)
class TokenCheck:
    """What a worker would decide for a token from this provider."""

    reason: Reason
    detail: str
    claims: dict[str, Any]


def try_token(provider: Provider, keys: Iterable[ProviderKey], token: str, now: float
              ) -> TokenCheck:
    result = verify(token.strip(), provider, keys, now)
    if isinstance(result, Invalid):
        return TokenCheck(Reason.JWT_INVALID, result.detail, {})
    return TokenCheck(Reason.OK, f"valid token of provider {provider.id}", result.claims)


def describe(provider: Provider) -> dict[str, Any]:
    return {"id": provider.id, "jwks_url": provider.jwks_url,
            "public_keys": len(provider.public_keys), "audience": list(provider.audience),
            "issuer": provider.issuer, "key": provider.key,
            "algorithms": list(provider.algorithms), "source": provider.source or "config"}
