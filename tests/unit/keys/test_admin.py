import pytest

from workers.auth import secrets
from workers.auth.keys import KeyIndex, KeyRecord, SecretKind, SecretRef
from workers.auth.reasons import Reason
from workers.keys import admin

NOW = 1_800_000_000.0


def seal(secret: str) -> str:
    return "fernet:sealed-" + str(len(secret))


def index(*records: KeyRecord) -> KeyIndex:
    keys = KeyIndex()
    for r in records:
        keys.put(r)
    return keys


def added(keys: KeyIndex, key_id: str = "k", **kw: object) -> tuple[KeyRecord, dict[str, str]]:
    change = admin.add(keys, key_id, now=NOW, seal=seal, source="cli", **kw)  # type: ignore[arg-type]
    [record] = change.upserts
    keys.put(record)
    return record, change.shown


def test_add_shows_secrets_once_and_stores_only_digests_and_sealed() -> None:
    keys = KeyIndex()
    record, shown = added(keys, client=True, server=True, access=True, origins=["*.a.test"])
    assert set(shown) == {"client_secret", "server_secret", "access_key", "access_secret"}
    assert record.client_secrets == (SecretRef(secrets.digest(shown["client_secret"])),)
    assert record.server_secrets == (SecretRef(secrets.digest(shown["server_secret"])),)
    assert record.access_secret == seal(shown["access_secret"])
    assert record.access_key == shown["access_key"]
    assert (record.source, record.created_at, record.origins) == ("cli", NOW, ("*.a.test",))
    for value in ("client_secret", "server_secret", "access_secret"):
        assert shown[value] not in repr(record)


@pytest.mark.parametrize(("key_id", "kw", "error"), [
    ("k", {"client": True}, admin.Conflict),   # exists
    ("new", {}, admin.KeyOpError),             # no secret kind
    ("a/b", {"client": True}, admin.KeyOpError),
    ("", {"client": True}, admin.KeyOpError),
    ("new", {"client": True, "origins": ["shop.com/checkout"]}, admin.KeyOpError),
])
def test_add_refuses(key_id: str, kw: dict[str, object], error: type[Exception]) -> None:
    keys = index(KeyRecord("k", source="cli"))
    with pytest.raises(error):
        admin.add(keys, key_id, now=NOW, seal=seal, source="cli", **kw)  # type: ignore[arg-type]


def test_rotate_overlaps_old_and_new_secret_until_not_after() -> None:
    keys = KeyIndex()
    _, first = added(keys, client=True)
    change = admin.rotate(keys, "k", "client", now=NOW, seal=seal, overlap_s=60)
    [record] = change.upserts
    keys.put(record)
    new = change.shown["client_secret"]
    assert admin.check(keys, "k", first["client_secret"], NOW + 59)[0] is Reason.OK
    assert admin.check(keys, "k", new, NOW + 59)[0] is Reason.OK
    assert admin.check(keys, "k", first["client_secret"], NOW + 60)[0] is Reason.KEY_EXPIRED
    assert admin.check(keys, "k", new, NOW + 10**6)[0] is Reason.OK
    # A second rotation drops secrets already past their not_after.
    later = admin.rotate(keys, "k", "client", now=NOW + 61, seal=seal, overlap_s=0)
    assert len(later.upserts[0].client_secrets) == 2


def test_rotate_never_extends_an_earlier_not_after() -> None:
    keys = index(KeyRecord("k", client_secrets=(SecretRef(secrets.digest("old"), NOW + 5),),
                           source="cli"))
    [record] = admin.rotate(keys, "k", "client", now=NOW, seal=seal, overlap_s=3600).upserts
    assert record.client_secrets[0].not_after == NOW + 5


def test_rotate_access_replaces_it() -> None:
    keys = KeyIndex()
    _, first = added(keys, access=True)
    change = admin.rotate(keys, "k", "access", now=NOW, seal=seal)
    assert change.upserts[0].access_key == change.shown["access_key"] != first["access_key"]


def test_operations_refuse_config_owned_and_unknown_keys() -> None:
    keys = index(KeyRecord("cfg", source="config"))
    with pytest.raises(admin.Conflict, match="comes from the config file"):
        admin.revoke(keys, "cfg")
    with pytest.raises(admin.NoSuchKey):
        admin.set_disabled(keys, "nope", True)
    assert admin.NoSuchKey.status == 404 and admin.Conflict.status == 409


def test_disable_enable_and_revoke() -> None:
    keys = KeyIndex()
    _, shown = added(keys, server=True)
    keys.put(admin.set_disabled(keys, "k", True).upserts[0])
    assert admin.check(keys, "k", shown["server_secret"], NOW)[0] is Reason.KEY_DISABLED
    keys.put(admin.set_disabled(keys, "k", False).upserts[0])
    assert admin.check(keys, "k", shown["server_secret"], NOW)[0] is Reason.OK
    assert admin.revoke(keys, "k").removals == ("k",)


def test_check_says_why() -> None:
    keys = index(KeyRecord("k", server_secrets=(SecretRef(secrets.digest("s")),),
                           expires_at=NOW, source="cli"))
    assert admin.check(keys, "k", "s", NOW - 1) == (Reason.OK, "valid server secret of key k")
    assert admin.check(keys, "k", "s", NOW)[0] is Reason.KEY_EXPIRED
    assert admin.check(keys, "k", "other", NOW - 1)[0] is Reason.UNKNOWN_KEY
    assert admin.check(keys, "x", "s", NOW)[0] is Reason.UNKNOWN_KEY


def test_describe_never_holds_a_secret() -> None:
    keys = KeyIndex()
    record, shown = added(keys, client=True, access=True)
    text = repr(admin.describe(record))
    assert shown["client_secret"] not in text and shown["access_secret"] not in text
    assert secrets.digest(shown["client_secret"]) not in text  # only a digest prefix
    assert admin.describe(record)["secrets"] == ["client", "access"]
    assert SecretKind.CLIENT.value == "client"


def test_rotating_a_kind_the_key_lacks_is_refused_not_added() -> None:
    keys = KeyIndex()
    added(keys, client=True)
    with pytest.raises(admin.KeyOpError, match="key k has no server secret to rotate"):
        admin.rotate(keys, "k", "server", now=NOW, seal=seal)


def test_edit_sets_origins_and_events_and_checks_the_patterns() -> None:
    keys = KeyIndex()
    keys.put(KeyRecord(id="k", source="admin", origins=("a.test",)))
    change = admin.edit(keys, "k", origins=[" b.test ", ""], allowed_events=["page", " "])
    [record] = change.upserts
    assert (record.origins, record.allowed_events) == (("b.test",), ("page",))
    with pytest.raises(admin.KeyOpError, match="can never match"):
        admin.edit(keys, "k", origins=["a.*.test"], allowed_events=[])


def test_set_policy_is_refused_for_the_configs_own() -> None:
    from workers.auth.policy import EventPolicy
    from workers.keys import records

    change = admin.set_policy({}, "default", anonymous_events=["page", "page"],
                              modify_without_jwt=[], modify_with_jwt=["form.submit"],
                              source="admin")
    [(key, value)] = change.others
    assert key == b"policy/default"
    decoded = records.decode_policy("policy/default", orjson_loads(value))
    assert decoded.anonymous_events == ("page",) and decoded.source == "admin"
    with pytest.raises(admin.Conflict, match="comes from the config file"):
        admin.set_policy({"default": EventPolicy()}, "default", anonymous_events=[],
                         modify_without_jwt=[], modify_with_jwt=[], source="admin")


def test_rotation_records_when() -> None:
    keys = KeyIndex()
    keys.put(KeyRecord(id="k", source="admin",
                       client_secrets=(SecretRef(secrets.digest("old")),)))
    change = admin.rotate(keys, "k", "client", now=1000.0, seal=str)
    assert change.upserts[0].rotated_at == 1000.0
    assert admin.describe(change.upserts[0])["rotated_at"].startswith("1970-01-01T00:16:40")


def orjson_loads(value: bytes | None) -> dict[str, object]:
    import orjson
    assert value is not None
    loaded: dict[str, object] = orjson.loads(value)
    return loaded
