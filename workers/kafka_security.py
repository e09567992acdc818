"""How a process proves who it is to Kafka: nothing, TLS, or SASL (SCRAM) over TLS.

One `KafkaSecurity` per process, from the config's `kafka:` section and the
environment (which wins, so one config serves processes of different roles). Every
client takes its options from here: aiokafka's producers, consumers and admin
clients through `options()`, Faust's through `faust_credentials()`. The password
comes only from the environment: a config file is something people commit.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

PROTOCOL_ENV = "EVENTGUARD_KAFKA_SECURITY_PROTOCOL"
MECHANISM_ENV = "EVENTGUARD_KAFKA_SASL_MECHANISM"
USERNAME_ENV = "EVENTGUARD_KAFKA_USERNAME"
PASSWORD_ENV = "EVENTGUARD_KAFKA_PASSWORD"
CAFILE_ENV = "EVENTGUARD_KAFKA_SSL_CAFILE"
# The ingest's admin API writes auth-config as the key admin, not as the ingest.
KEY_ADMIN_USERNAME_ENV = "EVENTGUARD_KAFKA_KEY_ADMIN_USERNAME"
KEY_ADMIN_PASSWORD_ENV = "EVENTGUARD_KAFKA_KEY_ADMIN_PASSWORD"
ENV_VARS = frozenset({PROTOCOL_ENV, MECHANISM_ENV, USERNAME_ENV, PASSWORD_ENV, CAFILE_ENV,
                      KEY_ADMIN_USERNAME_ENV, KEY_ADMIN_PASSWORD_ENV})
PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


class SecurityError(ValueError):
    """The Kafka security settings cannot work; the message says what to set."""


@dataclass(frozen=True)
class KafkaSecurity:
    protocol: str = "PLAINTEXT"
    mechanism: str | None = None
    username: str | None = None
    password: str | None = None
    cafile: str | None = None

    @property
    def sasl(self) -> bool:
        return self.protocol.startswith("SASL_")

    @property
    def tls(self) -> bool:
        return self.protocol.endswith("SSL")

    def __repr__(self) -> str:
        shown = "****" if self.password else None
        return (f"KafkaSecurity(protocol={self.protocol}, mechanism={self.mechanism}, "
                f"username={self.username}, password={shown}, cafile={self.cafile})")

    def options(self) -> dict[str, Any]:
        """Keyword arguments for any aiokafka client."""
        if self.protocol == "PLAINTEXT":
            return {}
        out: dict[str, Any] = {"security_protocol": self.protocol}
        if self.tls:
            out["ssl_context"] = self.ssl_context()
        if self.sasl:
            out.update(sasl_mechanism=self.mechanism, sasl_plain_username=self.username,
                       sasl_plain_password=self.password)
        return out

    def ssl_context(self) -> ssl.SSLContext:
        # Certificates are checked against the CA, host names against the broker's
        # certificate: a broker is who its certificate says.
        context = ssl.create_default_context(cafile=self.cafile)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        return context

    def faust_credentials(self) -> Any:
        """Faust's `broker_credentials`, or None for PLAINTEXT."""
        import faust

        context = self.ssl_context() if self.tls else None
        if self.sasl:  # SASL_SSL with a context, SASL_PLAINTEXT without
            return faust.SASLCredentials(username=self.username, password=self.password,
                                         mechanism=self.mechanism, ssl_context=context)
        return faust.SSLCredentials(context) if context is not None else None


def from_config(kafka: Mapping[str, Any], env: Mapping[str, str] | None = None
                ) -> KafkaSecurity:
    """The security of `kafka:` (a config section) with the environment's overrides."""
    env = os.environ if env is None else env
    if kafka.get("sasl_password") or kafka.get("password"):
        raise SecurityError(f"kafka: a password does not belong in the config file; set "
                            f"${PASSWORD_ENV} instead")
    protocol = str(env.get(PROTOCOL_ENV) or kafka.get("security_protocol") or "PLAINTEXT")
    protocol = protocol.upper()
    if protocol not in PROTOCOLS:
        raise SecurityError(f"kafka.security_protocol must be one of {', '.join(PROTOCOLS)}, "
                            f"not {protocol!r}")
    mechanism = str(env.get(MECHANISM_ENV) or kafka.get("sasl_mechanism") or "SCRAM-SHA-512")
    username = env.get(USERNAME_ENV) or kafka.get("sasl_username") or None
    password = env.get(PASSWORD_ENV) or None
    cafile = env.get(CAFILE_ENV) or kafka.get("ssl_cafile") or None
    sec = KafkaSecurity(protocol, mechanism.upper() if protocol.startswith("SASL_") else None,
                        str(username) if username else None, password,
                        str(cafile) if cafile else None)
    if sec.sasl:
        if sec.mechanism not in MECHANISMS:
            raise SecurityError(f"kafka.sasl_mechanism must be one of {', '.join(MECHANISMS)}, "
                                f"not {sec.mechanism!r}")
        if not sec.username or not sec.password:
            raise SecurityError(f"{protocol} needs a user name (kafka.sasl_username or "
                                f"${USERNAME_ENV}) and ${PASSWORD_ENV}")
    if sec.cafile and not Path(sec.cafile).is_file():
        raise SecurityError(f"kafka.ssl_cafile {sec.cafile} is not a readable file")
    return sec


@lru_cache(maxsize=1)
def current() -> KafkaSecurity:
    """This process's security, from its config and environment (read once)."""
    from workers import settings

    return settings.load().kafka_security


def options() -> dict[str, Any]:
    """aiokafka keyword arguments for this process's identity."""
    return current().options()


def refusal(exc: BaseException, security: KafkaSecurity | None = None) -> str | None:
    """One line for an error that means Kafka refused this process's user, else None."""
    from aiokafka import errors

    name = type(exc).__name__.removesuffix("Error")
    who = (security or current()).username or "ANONYMOUS"
    if isinstance(exc, errors.TopicAuthorizationFailedError | errors.GroupAuthorizationFailedError
                  | errors.ClusterAuthorizationFailedError):
        what = str(exc).split(":", 1)[-1].strip() or "not authorized"
        return f"Kafka refused user {who}: {what} ({name}); see docs/operations.md for the ACLs"
    if isinstance(exc, errors.SaslAuthenticationFailed | errors.AuthenticationFailedError
                  | errors.UnsupportedSaslMechanismError):
        return (f"Kafka did not accept user {who}'s credentials ({name}); check "
                f"${USERNAME_ENV} and ${PASSWORD_ENV}")
    return None


def unreachable(exc: BaseException, security: KafkaSecurity | None = None) -> str | None:
    """One line for a client that could not connect at all, else None."""
    from aiokafka.errors import KafkaConnectionError

    if not isinstance(exc, KafkaConnectionError):
        return None
    sec = security or current()
    return (f"could not connect to Kafka as {sec.protocol}"
            + (f" user {sec.username}" if sec.sasl else "") + "; if the "
            "brokers want TLS or a SASL user, set kafka.security_protocol and "
            f"${USERNAME_ENV}/${PASSWORD_ENV} (docs/operations.md)")


def key_admin_options() -> dict[str, Any]:
    """aiokafka keyword arguments for writing auth-config: the key admin's identity when
    $EVENTGUARD_KAFKA_KEY_ADMIN_USERNAME is set (the ingest's admin API), else this
    process's own (`eventguard keys`, run as the key admin)."""
    own = current()
    user = os.environ.get(KEY_ADMIN_USERNAME_ENV)
    if not user or not own.sasl:
        return own.options()
    return KafkaSecurity(own.protocol, own.mechanism, user,
                         os.environ.get(KEY_ADMIN_PASSWORD_ENV), own.cafile).options()
