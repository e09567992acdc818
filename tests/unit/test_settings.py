from pathlib import Path

import pytest

from workers import settings
from workers.auth.policy import EventPolicy


def test_precedence_server_api_keys_over_api_keys_over_server_auth() -> None:
    doc = {"server": {"api_keys": ["a"], "auth": ["c"]}, "api_keys": ["b"]}
    assert settings.from_mapping(doc).api_keys == ["a"]
    doc["server"].pop("api_keys")  # type: ignore[attr-defined]
    conf = settings.from_mapping(doc)
    assert (conf.api_keys, conf.api_keys_from) == (["b"], "api_keys")
    doc.pop("api_keys")
    assert settings.from_mapping(doc).api_keys_from == "server.auth"


def test_reload_interval_and_legacy_name() -> None:
    assert settings.from_mapping({}).reload_sec == 3.0
    assert settings.from_mapping({"server": {"auth_reload_sec": 7}}).reload_sec == 7.0
    assert settings.from_mapping(
        {"server": {"auth_reload_sec": 7, "api_keys_reload_sec": 2}}).reload_sec == 2.0


def test_bootstrap_env_overrides_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(settings.BOOTSTRAP_ENV, raising=False)
    doc = {"kafka": {"bootstrap_servers": "k:9092"}}
    assert settings.from_mapping(doc).bootstrap_servers == "k:9092"
    monkeypatch.setenv(settings.BOOTSTRAP_ENV, "env:9092")
    assert settings.from_mapping(doc).bootstrap_servers == "env:9092"


STRONG = "hunter2-Zq8vT3xK9mW4pL7rB2nY6cF1dJ5gH0s"


def test_admin_token_is_masked_when_printed() -> None:
    conf = settings.from_mapping({"server": {"admin_token": STRONG},
                                  "api_keys": [{"client_secret": "topsecret"}]})
    assert conf.admin_token is not None and conf.admin_token.value == STRONG
    assert STRONG not in repr(conf) and "topsecret" not in repr(conf)
    assert STRONG not in str(conf.admin_token)


@pytest.mark.parametrize("token", ["admin", "hunter2", "a" * 64, "ab" * 20,
                                   "0123456789012345678901234567890"])
def test_a_weak_admin_token_stops_the_start(token: str) -> None:
    with pytest.raises(settings.ConfigError) as err:
        settings.from_mapping({"server": {"admin_token": token}})
    assert str(err.value).startswith("server.admin_token is too weak (")
    assert "`eventguard keys gen`" in str(err.value)
    assert token not in str(err.value).replace("server.admin_token", "")


def test_policies_with_defaults() -> None:
    conf = settings.from_mapping({"policies": {"strict": {"anonymous_events": ["page"]}}})
    assert conf.policies["strict"] == EventPolicy(anonymous_events=("page",))


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"server": {"api_keys_reload_sec": "soon"}}, "must be a number"),
        ({"server": {"api_keys_reload_sec": 0}}, "must be positive"),
        ({"policies": ["x"]}, "`policies` must map"),
        ({"policies": {"p": {"modify_with_jwt": "form.submit"}}}, "must be a list of event types"),
        ({"server": "x"}, "`server` must be a mapping"),
    ],
)
def test_config_errors_say_what_to_fix(doc: dict[str, object], message: str) -> None:
    with pytest.raises(settings.ConfigError, match=message):
        settings.from_mapping(doc)


def test_load_file_errors(tmp_path: Path) -> None:
    with pytest.raises(settings.ConfigError, match="cannot read config"):
        settings.load(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [")
    with pytest.raises(settings.ConfigError, match="not valid YAML"):
        settings.load(bad)
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("just a string")
    with pytest.raises(settings.ConfigError, match="mapping at the top level"):
        settings.load(scalar)


def test_example_config_loads() -> None:
    conf = settings.load(Path(__file__).parents[2] / "configs" / "eventguard.yaml")
    assert conf.api_keys_from == "api_keys" and "default" in conf.policies


def test_replication_factor() -> None:
    assert settings.from_mapping({}).replication_factor == 1
    assert settings.from_mapping({"kafka": {"replication_factor": 3}}).replication_factor == 3
    with pytest.raises(settings.ConfigError, match=r"kafka\.replication_factor"):
        settings.from_mapping({"kafka": {"replication_factor": 0}})
    with pytest.raises(settings.ConfigError, match=r"whole number"):
        settings.from_mapping({"kafka": {"replication_factor": 2.5}})


@pytest.mark.parametrize(("rf", "given", "expected"), [
    (1, None, 1), (2, None, 2), (3, None, 2), (5, None, 2), (3, 3, 3), (3, 1, 1)])
def test_min_insync_replicas(rf: int, given: int | None, expected: int) -> None:
    kafka: dict[str, int] = {"replication_factor": rf}
    if given is not None:
        kafka["min_insync_replicas"] = given
    assert settings.from_mapping({"kafka": kafka}).min_insync_replicas == expected


def test_min_insync_replicas_above_the_replication_factor_is_refused() -> None:
    with pytest.raises(settings.ConfigError, match=r"must not exceed"):
        settings.from_mapping({"kafka": {"replication_factor": 1, "min_insync_replicas": 2}})


def test_usage_web_port_and_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EVENTGUARD_USAGE_URL", raising=False)
    default = settings.from_mapping({})
    assert default.worker_web_port == 6066 and default.usage_web_port == 6067
    assert default.usage_url == "http://127.0.0.1:6067"
    assert default.usage_app_id == "eventguard-usage"
    port = settings.from_mapping({"usage": {"web_port": 7000}})
    assert port.usage_url == "http://127.0.0.1:7000"
    url = settings.from_mapping({"usage": {"url": "http://u1:6067/"}})
    assert url.usage_url == "http://u1:6067"
    monkeypatch.setenv("EVENTGUARD_USAGE_URL", "http://env:1")
    assert settings.from_mapping({"usage": {"url": "http://u1:6067"}}).usage_url == "http://env:1"
    # worker.url named a worker, which no longer serves usage: not read.
    monkeypatch.delenv("EVENTGUARD_USAGE_URL")
    assert settings.from_mapping({"worker": {"url": "http://w1:6066"}}).usage_url == \
        "http://127.0.0.1:6067"
    with pytest.raises(settings.ConfigError):
        settings.from_mapping({"worker": {"web_port": "x"}})
    with pytest.raises(settings.ConfigError):
        settings.from_mapping({"usage": {"web_port": "x"}})


@pytest.mark.parametrize(("value", "servers"), [
    ("k1:9092,k2:9092", "k1:9092,k2:9092"), (["k1:9092", " k2:9092"], "k1:9092,k2:9092"),
    (None, None), ([], None)])
def test_bootstrap_servers_as_a_string_or_a_list(monkeypatch: pytest.MonkeyPatch, value: object,
                                                 servers: str | None) -> None:
    monkeypatch.delenv(settings.BOOTSTRAP_ENV, raising=False)
    assert settings.from_mapping({"kafka": {"bootstrap_servers": value}}).bootstrap_servers == (
        servers)
    with pytest.raises(settings.ConfigError, match="must be `host:port,host:port` or a list"):
        settings.from_mapping({"kafka": {"bootstrap_servers": 9092}})


@pytest.mark.parametrize("section", ["worker", "usage"])
def test_a_web_port_outside_1_65535_names_the_config_key(section: str) -> None:
    with pytest.raises(settings.ConfigError,
                       match=f"{section}.web_port must be a port, 1-65535, got 70000"):
        settings.from_mapping({section: {"web_port": 70000}})


def test_the_admin_listener_and_the_console(monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 20: the admin API and the console listen apart, on loopback by default."""
    conf = settings.from_mapping({})
    assert conf.admin_bind == ("127.0.0.1", 8002) and conf.session_idle_s == 1800
    assert conf.worker_urls == ("http://127.0.0.1:6066",)
    conf = settings.from_mapping({"ingest": {"admin_bind": "[::1]:9002"},
                                  "worker": {"web_port": 7066},
                                  "console": {"session_idle_s": 600}})
    assert conf.admin_bind == ("::1", 9002) and conf.session_idle_s == 600
    assert conf.worker_urls == ("http://127.0.0.1:7066",)
    assert settings.from_mapping({"ingest": {"admin_bind": "off"}}).admin_bind is None
    for bad in ("8002", "host:", "h:70000"):
        with pytest.raises(settings.ConfigError, match="must be host:port"):
            settings.from_mapping({"ingest": {"admin_bind": bad}})
    with pytest.raises(settings.ConfigError, match="list of http"):
        settings.from_mapping({"console": {"worker_urls": ["worker:6066"]}})
    token = "env-" + "0123456789abcdefghijklmnopqrstuvwxyz"
    monkeypatch.setenv(settings.ADMIN_TOKEN_ENV, token)
    conf = settings.from_mapping({"server": {"admin_token": "x" * 40}})
    assert conf.admin_token is not None and conf.admin_token.value == token
