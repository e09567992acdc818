"""Bearer secrets are only ever held as `sha256:<hex>` digests.

The ingest hashes the secret before it reaches Kafka; a record written straight
to raw-events may carry either form, so `to_digest` accepts both. Key lookup
indexes digests in a dict: its timing can only leak bits of a SHA-256 digest,
not of the secret, and the final comparison is constant-time anyway.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets as _random

PREFIX = "sha256:"
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


def digest(secret: str) -> str:
    return PREFIX + hashlib.sha256(secret.encode("utf-8")).hexdigest()


def is_digest(value: str) -> bool:
    return _DIGEST.fullmatch(value) is not None


def to_digest(token: str) -> str:
    """A token as sent (plain or already a digest) in digest form."""
    return token if is_digest(token) else digest(token)


def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def generate(prefix: str = "") -> str:
    """A new high-entropy secret (256 bits), URL-safe."""
    return prefix + _random.token_urlsafe(32)
