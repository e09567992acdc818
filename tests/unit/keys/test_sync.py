from workers.auth import secrets
from workers.auth.keys import KeyRecord, SecretRef
from workers.auth.policy import EventPolicy
from workers.keys.sync import plan

NOW = 1_800_000_000.0


def rec(key_id: str, secret: str = "s", source: str = "config", **kw: object) -> KeyRecord:
    return KeyRecord(id=key_id, client_secrets=(SecretRef(secrets.digest(secret)),),
                     source=source, **kw)  # type: ignore[arg-type]


def test_new_keys_are_upserted_with_created_at() -> None:
    p = plan("config", [rec("a")], [], {}, {}, NOW)
    assert [(r.id, r.created_at) for r in p.upserts] == [("a", NOW)] and not p.removals


def test_unchanged_keys_publish_nothing() -> None:
    current = [rec("a", created_at=NOW - 100)]
    assert not plan("config", [rec("a")], current, {}, {}, NOW)


def test_changed_key_keeps_created_at() -> None:
    p = plan("config", [rec("a", "new")], [rec("a", created_at=NOW - 100)], {}, {}, NOW)
    assert [(r.id, r.created_at) for r in p.upserts] == [("a", NOW - 100)]


def test_removed_keys_of_this_source_are_tombstoned_others_left_alone() -> None:
    current = [rec("a"), rec("cli-made", source="cli"), rec("other", source="https://x/t")]
    p = plan("config", [], current, {}, {}, NOW)
    assert p.removals == ("a",) and not p.upserts


def test_source_never_overwrites_a_key_it_does_not_own() -> None:
    p = plan("config", [rec("a", "x")], [rec("a", "y", source="cli")], {}, {}, NOW)
    assert not p


def test_sealed_access_secret_equal_by_content_is_not_republished() -> None:
    old = rec("a", access_secret="fernet:one", created_at=NOW)
    new = rec("a", access_secret="fernet:two")
    assert not plan("config", [new], [old], {}, {}, NOW, same_sealed=lambda a, b: True)
    assert plan("config", [new], [old], {}, {}, NOW, same_sealed=lambda a, b: False)


def test_policies() -> None:
    strict = EventPolicy(anonymous_events=("page",))
    p = plan("config", [], [], {"strict": strict}, {"old": EventPolicy()}, NOW)
    assert p.policy_upserts == (("strict", strict),) and p.policy_removals == ("old",)


def test_plan_records_are_the_auth_config_records_to_publish() -> None:
    strict = EventPolicy(anonymous_events=("page",))
    p = plan("config", [rec("a")], [rec("gone")], {"strict": strict}, {"old": EventPolicy()},
             NOW)
    keys = [k for k, _ in p.records()]
    assert keys == [b"key/a", b"key/gone", b"policy/strict", b"policy/old"]
    values = dict(p.records())
    assert values[b"key/gone"] is None and values[b"policy/old"] is None
    assert values[b"key/a"] is not None and b"sha256:" in values[b"key/a"]


def test_a_reload_that_empties_or_halves_a_source_is_named_a_mistake() -> None:
    from workers.auth.keys import KeyRecord
    from workers.keys.sync import Plan, mass_removal

    current = [KeyRecord(f"k{n}", source="config") for n in range(4)] + [
        KeyRecord("cli-key", source="cli")]
    assert mass_removal(Plan(removals=("k0",)), "config", current) is None
    assert mass_removal(Plan(removals=("k0", "k1")), "config", current) is None  # half
    line = mass_removal(Plan(removals=("k0", "k1", "k2")), "config", current)
    assert line is not None and line.startswith(
        "key source config: this reload would remove 3 of its 4 keys; keeping them")
    assert mass_removal(Plan(removals=("only",)), "config",
                        [KeyRecord("only", source="config")]) is not None  # every key
    assert mass_removal(Plan(upserts=(KeyRecord("new", source="config"),)), "config",
                        current) is None


def test_policies_and_providers_of_other_publishers_survive_a_reload() -> None:
    """Issue 20: a policy or provider made in the console (source admin) or by kcat is its
    publisher's; the config neither overwrites nor removes it."""
    from workers.auth.providers import provider_from_record

    def provider(pid: str, source: str | None) -> object:
        value: dict[str, object] = {"id": pid, "jwks_url": "https://idp.test/jwks"}
        if source:
            value["source"] = source
        return provider_from_record(pid, value)

    console = EventPolicy(anonymous_events=("page",), source="admin")
    configured = EventPolicy(anonymous_events=("track",))
    current_providers = {"mine": provider("mine", "admin"), "kcat": provider("kcat", "kcat"),
                         "old": provider("old", None)}
    p = plan("config", [], [], {"default": configured}, {"default": console, "gone": configured},
             NOW, desired_providers={}, current_providers=current_providers)  # type: ignore[arg-type]
    assert p.policy_upserts == () and p.policy_removals == ("gone",)
    assert p.provider_removals == ("old",)  # only the config's own
