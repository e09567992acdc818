"""How a process's Kafka identity is read from the config and the environment."""

from __future__ import annotations

import ssl
from pathlib import Path

import faust
import pytest

from workers import kafka_security as ks
from workers import settings
from workers.devstack import secure

SASL = {ks.PROTOCOL_ENV: "SASL_SSL", ks.USERNAME_ENV: "ingest", ks.PASSWORD_ENV: "pw-123"}


def test_plaintext_by_default_adds_no_client_options() -> None:
    sec = ks.from_config({}, {})
    assert (sec.protocol, sec.options(), sec.faust_credentials()) == ("PLAINTEXT", {}, None)


def test_sasl_ssl_from_the_environment(tmp_path: Path) -> None:
    material = secure.Material(tmp_path)  # a real CA, as `kafka start --secure` makes it
    material.make()
    sec = ks.from_config({"ssl_cafile": str(material.cafile)}, SASL)
    assert (sec.protocol, sec.mechanism, sec.username) == ("SASL_SSL", "SCRAM-SHA-512", "ingest")
    options = {k: v for k, v in sec.options().items() if k != "ssl_context"}
    assert options == {"security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512",
                       "sasl_plain_username": "ingest", "sasl_plain_password": "pw-123"}


def test_the_environment_wins_over_the_config() -> None:
    sec = ks.from_config({"security_protocol": "SASL_SSL", "sasl_username": "from-config",
                          "sasl_mechanism": "PLAIN"},
                         {**SASL, ks.MECHANISM_ENV: "scram-sha-256"})
    assert (sec.username, sec.mechanism) == ("ingest", "SCRAM-SHA-256")


def test_faust_gets_the_same_identity() -> None:
    credentials = ks.from_config({}, SASL).faust_credentials()
    assert isinstance(credentials, faust.SASLCredentials)
    assert (credentials.username, credentials.password) == ("ingest", "pw-123")
    assert isinstance(credentials.ssl_context, ssl.SSLContext)
    assert credentials.protocol.value == "SASL_SSL"
    assert ks.from_config({}, {ks.PROTOCOL_ENV: "SASL_PLAINTEXT", ks.USERNAME_ENV: "u",
                               ks.PASSWORD_ENV: "p"}).faust_credentials().protocol.value == (
        "SASL_PLAINTEXT")


@pytest.mark.parametrize(("kafka", "env", "message"), [
    ({"sasl_password": "pw"}, {}, "a password does not belong in the config file"),
    ({"security_protocol": "TLS"}, {}, "must be one of PLAINTEXT, SSL, SASL_PLAINTEXT"),
    ({"security_protocol": "SASL_SSL"}, {}, "SASL_SSL needs a user name"),
    ({}, {ks.PROTOCOL_ENV: "SASL_SSL", ks.USERNAME_ENV: "u"}, "SASL_SSL needs a user name"),
    ({}, {**SASL, ks.MECHANISM_ENV: "GSSAPI"}, "kafka.sasl_mechanism must be one of"),
    ({"ssl_cafile": "/nonexistent/ca.pem"}, {}, "is not a readable file"),
])
def test_unusable_settings_say_what_to_set(kafka: dict[str, str], env: dict[str, str],
                                           message: str) -> None:
    with pytest.raises(ks.SecurityError, match=message) as err:
        ks.from_config(kafka, env)
    assert "pw" not in str(err.value).replace("password", "")


def test_a_bad_setting_is_a_config_error_and_the_password_is_never_shown(
        monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SASL.items():
        monkeypatch.setenv(name, value)
    conf = settings.from_mapping({})
    assert "pw-123" not in repr(conf) and "password=****" in repr(conf)
    with pytest.raises(settings.ConfigError, match="EVENTGUARD_KAFKA_PASSWORD instead"):
        settings.from_mapping({"kafka": {"password": "x"}})


def test_a_refusal_is_one_line_that_names_the_user() -> None:
    from aiokafka import errors

    sec = ks.from_config({}, SASL)
    line = ks.refusal(errors.TopicAuthorizationFailedError("p.auth-config"), sec)
    assert line == ("Kafka refused user ingest: p.auth-config (TopicAuthorizationFailed); "
                    "see docs/operations.md for the ACLs")
    assert "credentials" in str(ks.refusal(errors.SaslAuthenticationFailed(), sec))
    assert ks.refusal(errors.KafkaTimeoutError(), sec) is None
    assert "pw-123" not in line


def test_a_client_that_cannot_connect_is_told_what_to_set() -> None:
    from aiokafka import errors

    line = ks.unreachable(errors.KafkaConnectionError("Unable to bootstrap"), ks.KafkaSecurity())
    assert line is not None and line.startswith("could not connect to Kafka as PLAINTEXT; ")
    assert "EVENTGUARD_KAFKA_PASSWORD" in line
    assert ks.unreachable(errors.TopicAuthorizationFailedError("t"), ks.KafkaSecurity()) is None
