"""KeyIndex.match_secret remembers its answers, and forgets them on every key change."""

from __future__ import annotations

from workers.auth import secrets
from workers.auth.keys import KeyIndex, KeyRecord, SecretKind, SecretRef

DIGEST = secrets.digest("s3cret")


def test_a_remembered_match_follows_key_changes() -> None:
    index = KeyIndex()
    assert index.match_secret(DIGEST) is None
    index.put(KeyRecord("a", client_secrets=(SecretRef(DIGEST),)))
    first = index.match_secret(DIGEST, prefer=SecretKind.CLIENT)
    assert first is not None and first.key.id == "a"
    assert index.match_secret(DIGEST, prefer=SecretKind.CLIENT) is first

    index.put(KeyRecord("a", client_secrets=(SecretRef(DIGEST, not_after=1.0),)))
    changed = index.match_secret(DIGEST, prefer=SecretKind.CLIENT)
    assert changed is not None and changed.secret.not_after == 1.0

    index.put(KeyRecord("b", server_secrets=(SecretRef(DIGEST),)))
    server = index.match_secret(DIGEST, prefer=SecretKind.SERVER)
    assert server is not None and server.key.id == "b"

    index.remove("a")
    index.remove("b")
    assert index.match_secret(DIGEST, prefer=SecretKind.CLIENT) is None
