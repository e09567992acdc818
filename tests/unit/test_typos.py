import logging

import pytest

from workers import settings, typos
from workers.keys import jitsu, records


def test_the_closest_known_name_is_named() -> None:
    assert typos.unknown_field(["id", "origin"], frozenset({"id", "origins"})) == (
        "unknown field 'origin' (did you mean 'origins'?)")
    assert typos.unknown_field(["zzz"], frozenset({"id", "origins"})) == (
        "unknown field 'zzz'; known: id, origins")
    assert typos.unknown_field(["id"], frozenset({"id"})) is None


@pytest.mark.parametrize(("doc", "message"), [
    ({"sever": {"admin_token": "x"}}, "unknown section 'sever' (did you mean 'server'?)"),
    ({"api-keys": []}, "unknown section 'api-keys' (did you mean 'api_keys'?)"),
    ({"kafka": {"bootstrap_server": "k:9092"}},
     "unknown key kafka.bootstrap_server (did you mean kafka.bootstrap_servers?)"),
    ({"server": {"admin_tokn": "x"}}, "unknown key server.admin_tokn (did you mean "
                                      "server.admin_token?)"),
])
def test_a_config_typo_stops_the_start_with_a_hint(doc: dict[str, object], message: str) -> None:
    with pytest.raises(settings.ConfigError) as err:
        settings.from_mapping(doc)
    assert str(err.value) == message


def test_jitsus_other_sections_are_named_once_and_ignored(
        caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(settings, "_named", set())  # as in a new process
    caplog.set_level(logging.WARNING, logger="workers.settings")
    doc = {"destinations": {"pg": {}}, "server": {"port": 8001, "name": "x"}}
    settings.from_mapping(doc)
    settings.from_mapping(doc)
    named = [r.getMessage() for r in caplog.records if "destinations" in r.getMessage()]
    assert named == ["config: section 'destinations' is not read by eventguard; ignored"]
    assert not [r for r in caplog.records if "server.port" in r.getMessage()]


def test_a_key_field_typo_names_the_key_and_the_field() -> None:
    with pytest.raises(jitsu.KeyConfigError) as err:
        jitsu.parse([{"id": "web", "client_secret": "s3cret-value", "origin": ["*.a.com"]}],
                    lambda s: s, "config")
    assert str(err.value) == "api key web: unknown field 'origin' (did you mean 'origins'?)"
    assert "s3cret" not in str(err.value)
    with pytest.raises(jitsu.KeyConfigError, match=r"client_secrets: unknown field 'not_afer'"):
        jitsu.parse([{"id": "w", "client_secrets": [{"secret": "s", "not_afer": "2030"}]}],
                    lambda s: s, "config")


def test_a_key_record_with_an_unknown_field_is_invalid() -> None:
    with pytest.raises(records.InvalidRecord,
                       match=r"key/a: unknown field 'origin' \(did you mean 'origins'\?\)"):
        records.decode_key("key/a", {"id": "a", "origin": ["*"]})

