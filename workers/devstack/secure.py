"""A local cluster where every process proves who it is and may touch only its topics:
`eventguard kafka start --brokers 3 --secure`.

Clients connect with SASL/SCRAM-SHA-512 over TLS; the brokers check each request
against ACLs (KRaft's StandardAuthorizer, nothing allowed without one). One user per
role; `ROLE_ACLS` is what each may do, and docs/operations.md prints the same table as
`kafka-acls.sh` commands. The CA, the brokers' certificate and the users' passwords are
made once, under `<cluster home>/secure/` (0600), with one `<role>.env` file per role for
the processes of that role.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from aiokafka.client import AIOKafkaClient
from aiokafka.protocol.admin import CreateAclsRequest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from workers import kafka_security

MECHANISM = "SCRAM-SHA-512"
# Broker-side identities: super users, never handed to an eventguard process.
BROKER_USERS = ("broker", "controller")
ADMIN = "admin"  # super user: `eventguard topics apply`, ACLs, tests
ROLES = ("ingest", "worker", "usage", "keyadmin", "consumer")
DOWNSTREAM_GROUP = "downstream"  # the consumer role's groups: <prefix>downstream*


@dataclass(frozen=True)
class Acl:
    operations: tuple[str, ...]
    resource: str  # "topic" or "group"
    name: str
    prefixed: bool = False


def role_acls(prefix: str, app_id: str) -> dict[str, list[Acl]]:
    """What each role may do, for topics under `prefix` and the worker's Faust `app_id`."""
    def topic(name: str, *ops: str) -> Acl:
        return Acl(("Describe", *ops), "topic", prefix + name)

    usage_id = f"{app_id}-usage"
    return {
        "ingest": [topic("raw-events", "Write")],
        "worker": [
            topic("raw-events", "Read"),
            # The leader worker publishes the config file's keys (sync_sources).
            topic("auth-config", "Read", "Write"),
            topic("nonces", "Read", "Write"),
            topic("accepted-events", "Write"),
            topic("rejected-events", "Write"),
            topic("audit-log", "Write"),
            # Its tables' changelogs and Faust's own topics, which it creates.
            Acl(("Describe", "DescribeConfigs", "Read", "Write", "Create"), "topic",
                f"{app_id}-", prefixed=True),
            Acl(("Describe", "Read"), "group", app_id),
        ],
        "usage": [
            topic("audit-log", "Read"),
            Acl(("Describe", "Read"), "topic", f"{app_id}-keys-changelog"),
            Acl(("Describe", "DescribeConfigs", "Read", "Write", "Create"), "topic",
                f"{usage_id}-", prefixed=True),
            Acl(("Describe", "Read"), "group", usage_id, prefixed=True),
        ],
        "keyadmin": [topic("auth-config", "Read", "Write")],
        "consumer": [
            topic("accepted-events", "Read"),
            Acl(("Describe", "Read"), "group", prefix + DOWNSTREAM_GROUP, prefixed=True),
        ],
    }


def acl_commands(prefix: str, app_id: str, bootstrap: str = "BROKER:9093",
                 command_config: str = "admin.properties") -> list[list[str]]:
    """`kafka-acls.sh` arguments that grant `role_acls`, one command per ACL."""
    out = []
    for role, acls in role_acls(prefix, app_id).items():
        for acl in acls:
            args = ["--bootstrap-server", bootstrap, "--command-config", command_config,
                    "--add", "--allow-principal", f"User:{role}",
                    *(x for op in acl.operations for x in ("--operation", op)),
                    f"--{acl.resource}", acl.name]
            if acl.prefixed:
                args += ["--resource-pattern-type", "prefixed"]
            out.append(args)
    return out


class Material:
    """The CA, the brokers' key and certificate, and every user's password."""

    def __init__(self, home: Path) -> None:
        self.dir = home / "secure"

    @property
    def cafile(self) -> Path:
        return self.dir / "ca.pem"

    @property
    def keystore(self) -> Path:
        return self.dir / "broker.pem"

    def password(self, user: str) -> str:
        return str(self._passwords()[user])

    def make(self) -> None:
        """Create what is missing; what exists stays (the brokers' data knows it)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o700)
        if not self.keystore.exists():
            self._certificates()
        passwords = self.dir / "passwords.json"
        if not passwords.exists():
            users = [*BROKER_USERS, ADMIN, *ROLES]
            _private(passwords, json.dumps({u: secrets.token_hex(16) for u in users}))
        for role in (*ROLES, ADMIN):
            _private(self.dir / f"{role}.env", "".join(
                f"{k}={v}\n" for k, v in self.env(role).items()))
        _private(self.dir / "admin.properties", self.client_properties(ADMIN))

    def env(self, role: str) -> dict[str, str]:
        """The environment a process of `role` connects with."""
        return {
            kafka_security.PROTOCOL_ENV: "SASL_SSL",
            kafka_security.MECHANISM_ENV: MECHANISM,
            kafka_security.USERNAME_ENV: role,
            kafka_security.PASSWORD_ENV: self.password(role),
            kafka_security.CAFILE_ENV: str(self.cafile),
        }

    def security(self, role: str) -> kafka_security.KafkaSecurity:
        return kafka_security.KafkaSecurity("SASL_SSL", MECHANISM, role, self.password(role),
                                            str(self.cafile))

    def client_properties(self, user: str) -> str:
        """A Java client's properties (Kafka's own tools) for `user`."""
        return "\n".join([
            "security.protocol=SASL_SSL",
            f"sasl.mechanism={MECHANISM}",
            _jaas("scram.ScramLoginModule", user, self.password(user)),
            "ssl.truststore.type=PEM",
            f"ssl.truststore.location={self.cafile}",
            "",
        ])

    def scram_arguments(self) -> list[str]:
        """`kafka-storage.sh format` arguments that give every user its SCRAM credential."""
        users = [u for u in self._passwords() if u != "controller"]
        return [x for u in users for x in (
            "--add-scram", f"{MECHANISM}=[name={u},password={self.password(u)}]")]

    def broker_properties(self, port: int, cport: int) -> list[str]:
        """A node's listeners, TLS, SASL and authorizer settings."""
        controller = self.password("controller")
        return [
            f"listeners=SASL_SSL://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}",
            f"advertised.listeners=SASL_SSL://127.0.0.1:{port}",
            "listener.security.protocol.map=CONTROLLER:SASL_SSL,SASL_SSL:SASL_SSL",
            "inter.broker.listener.name=SASL_SSL",
            f"sasl.enabled.mechanisms={MECHANISM}",
            f"sasl.mechanism.inter.broker.protocol={MECHANISM}",
            "listener.name.sasl_ssl.scram-sha-512." + _jaas(
                "scram.ScramLoginModule", "broker", self.password("broker")),
            # KRaft controllers cannot check SCRAM (its credentials live in the metadata
            # they serve): the controller listener takes one static PLAIN user.
            "listener.name.controller.sasl.enabled.mechanisms=PLAIN",
            "sasl.mechanism.controller.protocol=PLAIN",
            "listener.name.controller.plain." + _jaas(
                "plain.PlainLoginModule", "controller", controller,
                f' user_controller="{controller}"'),
            "ssl.keystore.type=PEM",
            f"ssl.keystore.location={self.keystore}",
            "ssl.truststore.type=PEM",
            f"ssl.truststore.location={self.cafile}",
            "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            f"super.users=User:broker;User:controller;User:{ADMIN}",
            "allow.everyone.if.no.acl.found=false",
        ]

    def _passwords(self) -> dict[str, str]:
        return dict(json.loads((self.dir / "passwords.json").read_text()))

    def _certificates(self) -> None:
        now = datetime.datetime.now(datetime.UTC)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "eventguard dev CA")])
        ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
              .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
              .not_valid_before(now - datetime.timedelta(minutes=5))
              .not_valid_after(now + datetime.timedelta(days=825))
              .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
              .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False,
                                           False), critical=True)
              .sign(ca_key, hashes.SHA256()))
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
                .issuer_name(ca_name).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(minutes=5))
                .not_valid_after(now + datetime.timedelta(days=825))
                .add_extension(x509.SubjectAlternativeName([
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
                .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH,
                                                      x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]),
                               critical=False)
                .sign(ca_key, hashes.SHA256()))
        pem = serialization.Encoding.PEM
        self.cafile.write_bytes(ca.public_bytes(pem))
        # Kafka reads an unencrypted PKCS#8 key and the chain from one PEM file.
        _private(self.keystore, (key.private_bytes(
            pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
            + cert.public_bytes(pem) + ca.public_bytes(pem)).decode())


# Kafka's wire codes (org.apache.kafka.common.acl / resource).
RESOURCE_TYPES = {"topic": 2, "group": 3}
PATTERN_LITERAL, PATTERN_PREFIXED = 3, 4
OPERATIONS = {"Read": 3, "Write": 4, "Create": 5, "Describe": 8, "DescribeConfigs": 10}
ALLOW = 3


class GrantError(RuntimeError):
    """The brokers refused an ACL."""


async def grant(bootstrap: str, admin: kafka_security.KafkaSecurity, prefix: str,
                app_id: str) -> int:
    """Create every role's ACLs as `admin` (one CreateAcls each; adding an ACL that exists
    is a no-op). Returns how many were sent."""
    client = AIOKafkaClient(bootstrap_servers=bootstrap, **admin.options())
    await client.bootstrap()
    sent = 0
    try:
        node = client.get_random_node()
        for role, acls in role_acls(prefix, app_id).items():
            for acl in acls:
                for op in acl.operations:
                    answer = await client.send(node, CreateAclsRequest(
                        RESOURCE_TYPES[acl.resource], acl.name,
                        PATTERN_PREFIXED if acl.prefixed else PATTERN_LITERAL,
                        f"User:{role}", "*", OPERATIONS[op], ALLOW))
                    for code, message in answer.creation_responses:
                        if code:
                            raise GrantError(f"ACL {op} on {acl.resource} {acl.name} for "
                                             f"{role} refused: {message} (error {code})")
                    sent += 1
    finally:
        await client.close()
    return sent


def _jaas(module: str, user: str, password: str, extra: str = "") -> str:
    return (f"sasl.jaas.config=org.apache.kafka.common.security.{module} required "
            f'username="{user}" password="{password}"{extra};')


def _private(path: Path, text: str) -> None:
    path.touch(mode=0o600, exist_ok=True)
    os.chmod(path, 0o600)
    path.write_text(text)
