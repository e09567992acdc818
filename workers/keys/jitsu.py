"""Key config in every form Jitsu/EventNative accepts, turned into KeyRecords.

Pure: payloads in, records out. Fetching `file://` and `http(s)://` sources
lives in `workers.keys.sources`. Plaintext secrets end here: records hold
SHA-256 digests of bearer secrets and sealed (Fernet) access secrets.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import orjson

from workers import typos
from workers.auth import secrets
from workers.auth.keys import KeyRecord, SecretRef
from workers.keys.records import InvalidRecord, from_time, origin_patterns, to_bool

DEFAULT_KEY_ID = "defaultid"
Seal = Callable[[str], str]


class KeyConfigError(ValueError):
    """Key config that cannot be read. The message never contains a secret."""


def is_remote(value: Any) -> bool:
    return isinstance(value, str) and value.strip().startswith(("http://", "https://", "file://"))


def parse(value: Any, seal: Seal, source: str, s2s_auth: Iterable[str] = ()) -> list[KeyRecord]:
    """Records from an inline value: a list, a plain secret, or a JSON string."""
    items: list[Any]
    if value is None:
        items = []
    elif isinstance(value, str):
        text = value.strip()
        if is_remote(text):
            raise KeyConfigError("a URL must be fetched first (workers.keys.sources)")
        items = tokens_payload(text.encode()) if text.startswith(("{", "[")) else [value]
    elif isinstance(value, list):
        items = value
    elif isinstance(value, dict):
        items = value["tokens"] if isinstance(value.get("tokens"), list) else [value]
    else:
        raise KeyConfigError(f"api_keys must be a list, a string or a URL, not {_kind(value)}")
    items = [*items, *({"server_secret": s} for s in s2s_auth)]
    records = [_record(item, seal, source, n) for n, item in enumerate(items)]
    ids = [r.id for r in records]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise KeyConfigError(f"duplicate key ids: {', '.join(dupes)}")
    by_access: dict[str, list[str]] = {}
    for r in records:
        if r.access_key:
            by_access.setdefault(r.access_key, []).append(r.id)
    shared = sorted(", ".join(ids) for ids in by_access.values() if len(ids) > 1)
    if shared:
        # One access key must name one key: otherwise the last one applied wins.
        raise KeyConfigError(f"keys share an access_key: {'; '.join(shared)}")
    return records


def tokens_payload(raw: bytes) -> list[Any]:
    """The `{"tokens": [...]}` payload of a file or URL source (a bare list works too)."""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise KeyConfigError("key payload is not valid JSON") from None
    if isinstance(doc, dict) and isinstance(doc.get("tokens"), list):
        return list(doc["tokens"])
    if isinstance(doc, list):
        return doc
    raise KeyConfigError('key payload must be {"tokens": [...]}')


def jitsu_id(client_secret: str, server_secret: str) -> str:
    """Jitsu's id for a key without one: MD5 hex of the untrimmed secrets."""
    return hashlib.md5((client_secret + server_secret).encode(), usedforsecurity=False).hexdigest()


def default_key(secret: str, source: str) -> KeyRecord:
    """The key generated when none is configured: one secret for both endpoints."""
    ref = (SecretRef(secrets.digest(secret)),)
    return KeyRecord(id=DEFAULT_KEY_ID, client_secrets=ref, server_secrets=ref, source=source)


# Every field a key may have in a config file, a file:// or http(s):// source.
KEY_FIELDS = frozenset({
    "id", "client_secret", "client_secrets", "server_secret", "server_secrets", "origins",
    "access_key", "access_secret", "allowed_events", "jwt_providers", "policy", "disabled",
    "expires_at"})
SECRET_FIELDS = frozenset({"secret", "not_after"})


def _record(item: Any, seal: Seal, source: str, n: int) -> KeyRecord:
    if isinstance(item, str):
        item = {"client_secret": item}
    if not isinstance(item, Mapping):
        raise KeyConfigError(f"api key #{n + 1} must be a mapping or a string, not {_kind(item)}")
    typo = typos.unknown_field(item, KEY_FIELDS)
    if typo is not None:
        name = str(item.get("id") or "").strip() or f"#{n + 1}"
        raise KeyConfigError(f"api key {name}: {typo}")
    client = _secret_values(item, "client", n)
    server = _secret_values(item, "server", n)
    first_client = client[0][0] if client else ""
    first_server = server[0][0] if server else ""
    key_id = str(item.get("id") or "").strip() or jitsu_id(first_client, first_server)
    where = f"api key {key_id}"
    access_secret = item.get("access_secret")
    if access_secret is not None and not isinstance(access_secret, str):
        raise KeyConfigError(f"{where}: access_secret must be a string")
    try:
        return KeyRecord(
            id=key_id,
            client_secrets=_refs(client, where),
            server_secrets=_refs(server, where),
            origins=origin_patterns(where, _strings(item, "origins", where)),
            access_key=(str(item["access_key"]).strip() or None) if item.get("access_key")
            else None,
            access_secret=seal(access_secret.strip()) if access_secret else None,
            allowed_events=_strings(item, "allowed_events", where),
            jwt_providers=_strings(item, "jwt_providers", where),
            policy=str(item["policy"]) if item.get("policy") else None,
            disabled=to_bool(where, "disabled", item.get("disabled")),
            expires_at=from_time(where, item.get("expires_at")),
            source=source,
        )
    except InvalidRecord as exc:
        raise KeyConfigError(str(exc)) from None


def _secret_values(item: Mapping[str, Any], kind: str, n: int) -> list[tuple[str, Any]]:
    """(untrimmed secret, not_after) pairs from `<kind>_secret` and `<kind>_secrets`."""
    out: list[tuple[str, Any]] = []
    single = item.get(f"{kind}_secret")
    many = item.get(f"{kind}_secrets") or []
    if single not in (None, ""):
        many = [single, *(many if isinstance(many, list) else [many])]
    if not isinstance(many, list):
        raise KeyConfigError(f"api key #{n + 1}: {kind}_secrets must be a list")
    for entry in many:
        if isinstance(entry, Mapping):
            typo = typos.unknown_field(entry, SECRET_FIELDS)
            if typo is not None:
                raise KeyConfigError(f"api key #{n + 1}: {kind}_secrets: {typo}")
            value, not_after = entry.get("secret"), entry.get("not_after")
        else:
            value, not_after = entry, None
        if not isinstance(value, str | int) or isinstance(value, bool) or not str(value).strip():
            raise KeyConfigError(f"api key #{n + 1}: each {kind} secret must be a non-empty string")
        out.append((str(value), not_after))
    return out


def _refs(values: list[tuple[str, Any]], where: str) -> tuple[SecretRef, ...]:
    return tuple(SecretRef(secrets.digest(v.strip()), from_time(where, na)) for v, na in values)


def _strings(item: Mapping[str, Any], name: str, where: str) -> tuple[str, ...]:
    value = item.get(name)
    if value in (None, ""):
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise KeyConfigError(f"{where}: {name} must be a list of strings")
    return tuple(v.strip() for v in value if v.strip())


def _kind(value: Any) -> str:
    return type(value).__name__
