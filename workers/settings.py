"""All configuration, as one typed object read from one YAML file.

The file is Jitsu-compatible (see docs/configuration.md). Secrets inside
settings are wrapped in `Masked`, so printing or logging settings never shows
them.
"""

from __future__ import annotations

import ipaddress
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from workers import kafka_security, typos
from workers.auth.policy import EventPolicy
from workers.paths import project_root

log = logging.getLogger(__name__)
CONFIG_ENV = "EVENTGUARD_CONFIG"
BOOTSTRAP_ENV = "KAFKA_BOOTSTRAP_SERVERS"
PREFIX_ENV = "EVENTGUARD_TOPIC_PREFIX"
USAGE_URL_ENV = "EVENTGUARD_USAGE_URL"
ADMIN_TOKEN_ENV = "EVENTGUARD_ADMIN_TOKEN"  # over server.admin_token: a secret from the env
WORKER_URLS_ENV = "EVENTGUARD_CONSOLE_WORKER_URLS"  # over console.worker_urls, comma-separated
DEFAULT_WEB_PORT = 6066  # Faust's
DEFAULT_USAGE_WEB_PORT = 6067  # the usage process's, beside a worker's on one host
DEFAULT_ADMIN_BIND = "127.0.0.1:8002"  # the admin API and the console: loopback only
DEFAULT_SESSION_IDLE_S = 1800.0  # a console session ends after 30 minutes without a request
METRICS_ENV = "EVENTGUARD_METRICS"  # 0/false/off: no metrics (to measure what they cost)
LOG_FORMAT_ENV = "EVENTGUARD_LOG_FORMAT"  # text | json (workers/log_format.py)
# Every environment variable eventguard reads (docs/configuration.md). A deployment that
# sets another one is mistaken (tests/unit/test_docker_compose.py checks the compose file).
ENV_VARS = frozenset({
    CONFIG_ENV, BOOTSTRAP_ENV, PREFIX_ENV, LOG_FORMAT_ENV, METRICS_ENV, USAGE_URL_ENV,
    ADMIN_TOKEN_ENV, WORKER_URLS_ENV,
    "EVENTGUARD_MASTER_KEY",  # workers/keys/vault.py
    "EVENTGUARD_CACHE_DIR",  # workers/paths.py
    "EVENTGUARD_KAFKA_HOME",  # workers/devstack/broker.py
    *kafka_security.ENV_VARS,
})
APP_NAME = "eventguard"
DEFAULT_RELOAD_SEC = 3.0
DEFAULT_MAX_BODY = 1024 * 1024
# Jitsu's SDKs send at most a few hundred events a request; more holds up a partition.
DEFAULT_MAX_BATCH_EVENTS = 500


# Headers (at most ~8 KiB each, a few capped ones), key and batch framing.
RECORD_OVERHEAD = 64 * 1024


def max_record_bytes(max_body_bytes: int) -> int:
    """The largest Kafka record the ingest or a worker writes: the largest body plus
    headers and envelope. topics/ sets max.message.bytes to match the default (2 MiB)."""
    return max(2 * 1024 * 1024, max_body_bytes + RECORD_OVERHEAD)


class ConfigError(ValueError):
    """The config file cannot be used. The message says what to fix."""


@dataclass(frozen=True)
class Masked:
    value: str

    def __repr__(self) -> str:
        return "Masked('****')"

    __str__ = __repr__


@dataclass(frozen=True)
class Settings:
    path: Path | None = None
    bootstrap_servers: str | None = None  # None: no cluster named (`eventguard` names its own)
    topic_prefix: str = ""  # namespaces every topic and the consumer group
    replication_factor: int = 1  # for the topics eventguard creates; 3 on a real cluster
    # Copies an acks=all write needs: with rf 3 and 2, one broker may be down.
    min_insync_replicas: int = 1
    # TLS and SASL to the brokers (workers/kafka_security.py); the password from the env only.
    kafka_security: kafka_security.KafkaSecurity = field(
        default_factory=kafka_security.KafkaSecurity)
    admin_token: Masked | None = None
    reload_sec: float = DEFAULT_RELOAD_SEC
    max_body_bytes: int = DEFAULT_MAX_BODY
    max_batch_events: int = DEFAULT_MAX_BATCH_EVENTS
    # CIDRs whose X-Forwarded-For / X-Real-IP the ingest believes; empty: none.
    trusted_proxies: tuple[str, ...] = ()
    api_keys: Any = None  # the Jitsu key source that won precedence
    api_keys_from: str = ""  # which config key it came from
    # api_keys, server.api_keys or server.auth is in the file, even empty (`api_keys: []`
    # for keys managed only with `eventguard keys` and the admin API).
    keys_declared: bool = False
    api_keys_remove_many: bool = False  # confirms a reload that removes many keys
    s2s_auth: tuple[str, ...] = field(default=(), repr=False)
    policies: Mapping[str, EventPolicy] = field(default_factory=dict)
    jwt_providers: tuple[Mapping[str, Any], ...] = ()
    metrics_enabled: bool = True  # /metrics on the worker's web port and the ingest
    worker_web_port: int = DEFAULT_WEB_PORT  # the worker's web server (Faust's)
    # The usage process (`eventguard usage`, workers/usage_app.py) serves per-key usage on
    # its own web server; `keys usage` and the ingest's admin API ask it at `usage_url`.
    usage_web_port: int = DEFAULT_USAGE_WEB_PORT
    usage_url: str = f"http://127.0.0.1:{DEFAULT_USAGE_WEB_PORT}"
    # The admin API and the console listen here, never on the public port; None: off.
    admin_bind: tuple[str, int] | None = ("127.0.0.1", 8002)
    session_idle_s: float = DEFAULT_SESSION_IDLE_S
    # Workers whose /ready and /metrics the console's overview reads.
    worker_urls: tuple[str, ...] = (f"http://127.0.0.1:{DEFAULT_WEB_PORT}",)

    def topic(self, name: str) -> str:
        return self.topic_prefix + name

    @property
    def max_record_bytes(self) -> int:
        return max_record_bytes(self.max_body_bytes)

    @property
    def app_id(self) -> str:
        """The Faust app id: the consumer group and the prefix of internal topics."""
        return f"{self.topic_prefix}{APP_NAME}"

    @property
    def usage_app_id(self) -> str:
        """The usage process's Faust app id: its consumer group, and the prefix of its
        tables' changelogs (`<app id>-usage-counts-changelog`, ...)."""
        return f"{self.app_id}-usage"

    def __repr__(self) -> str:
        keys = "<set>" if self.api_keys else "<none>"
        return (f"Settings(path={self.path}, bootstrap_servers={self.bootstrap_servers!r}, "
                f"topic_prefix={self.topic_prefix!r}, rf={self.replication_factor}, "
                f"min_isr={self.min_insync_replicas}, {self.kafka_security!r}, "
                f"admin_token={self.admin_token!r}, reload_sec={self.reload_sec}, "
                f"max_body_bytes={self.max_body_bytes}, api_keys={keys} "
                f"from {self.api_keys_from or '-'}, policies={sorted(self.policies)})")


def default_config_path() -> Path | None:
    root = project_root()
    candidate = root / "configs" / "eventguard.yaml" if root else None
    return candidate if candidate and candidate.exists() else None


def load(path: str | Path | None = None) -> Settings:
    """Settings from PATH, else $EVENTGUARD_CONFIG, else configs/eventguard.yaml."""
    chosen = Path(path) if path else (
        Path(os.environ[CONFIG_ENV]) if os.environ.get(CONFIG_ENV) else default_config_path())
    doc: Mapping[str, Any] = {}
    if chosen is not None:
        try:
            loaded = yaml.safe_load(chosen.read_text())
        except OSError as exc:
            raise ConfigError(f"cannot read config {chosen}: {exc.strerror}") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"config {chosen} is not valid YAML: {exc}") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"config {chosen} must be a YAML mapping at the top level")
        doc = loaded or {}
    return from_mapping(doc, chosen)


# Top-level sections eventguard reads; a Jitsu config's others (destinations, sources,
# ...) are named once at WARNING and ignored. One close to a known name is a typo.
SECTIONS = frozenset({"server", "kafka", "ingest", "metrics", "worker", "usage", "api_keys",
                      "policies", "jwt_providers", "console"})
# Keys of the sections: a close miss is refused, others are named once and ignored (a
# Jitsu `server:` has many keys of its own: those are ignored without a word).
SECTION_KEYS = {
    "kafka": frozenset({"bootstrap_servers", "topic_prefix", "replication_factor",
                        "min_insync_replicas", "security_protocol", "sasl_mechanism",
                        "sasl_username", "ssl_cafile",
                        "password", "sasl_password"}),  # refused by kafka_security, clearly
    "ingest": frozenset({"max_body_bytes", "max_batch_events", "trusted_proxies",
                         "admin_bind"}),
    "console": frozenset({"session_idle_s", "worker_urls"}),
    "metrics": frozenset({"enabled"}),
    "worker": frozenset({"web_port"}),
    "usage": frozenset({"web_port", "url"}),
}
SERVER_KEYS = frozenset({"api_keys", "auth", "api_keys_reload_sec", "auth_reload_sec",
                         "admin_token", "s2s_auth", "api_keys_remove_many"})
TYPO_CUTOFF = 0.8  # `sever` and `api-keys` are typos; `sources` is Jitsu's own section
_named: set[str] = set()


def _check_names(doc: Mapping[str, Any]) -> None:
    for name in doc:
        if name in SECTIONS:
            continue
        near = typos.closest(str(name), SECTIONS, TYPO_CUTOFF)
        if near is not None:
            raise ConfigError(f"unknown section {str(name)!r} (did you mean {near!r}?)")
        if name not in _named:
            _named.add(str(name))
            log.warning("config: section %r is not read by eventguard; ignored", name)
    for section, known in (*SECTION_KEYS.items(), ("server", SERVER_KEYS)):
        value = doc.get(section)
        for key in value if isinstance(value, dict) else ():
            if key in known:
                continue
            near = typos.closest(str(key), known, TYPO_CUTOFF)
            if near is not None:
                raise ConfigError(f"unknown key {section}.{key} (did you mean {section}.{near}?)")
            if section != "server" and f"{section}.{key}" not in _named:  # Jitsu's are many
                _named.add(f"{section}.{key}")
                log.warning("config: %s.%s is not read by eventguard; ignored", section, key)


def from_mapping(doc: Mapping[str, Any], path: Path | None = None) -> Settings:
    _check_names(doc)
    server = _section(doc, "server")
    kafka = _section(doc, "kafka")
    ingest = _section(doc, "ingest")
    metrics = _section(doc, "metrics")
    worker = _section(doc, "worker")
    usage = _section(doc, "usage")
    console = _section(doc, "console")
    api_keys, api_keys_from = _api_key_source(doc, server)
    reload_sec = server.get("api_keys_reload_sec", server.get("auth_reload_sec"))
    admin = server.get("admin_token")
    s2s = server.get("s2s_auth") or []
    if isinstance(s2s, str):
        s2s = [s2s]
    rf = _whole(kafka.get("replication_factor"), "kafka.replication_factor", 1)
    web_port = _port(worker.get("web_port"), "worker.web_port", DEFAULT_WEB_PORT)
    usage_port = _port(usage.get("web_port"), "usage.web_port", DEFAULT_USAGE_WEB_PORT)
    return Settings(
        path=path,
        bootstrap_servers=os.environ.get(BOOTSTRAP_ENV) or _servers(kafka.get("bootstrap_servers")),
        topic_prefix=os.environ.get(PREFIX_ENV) or str(kafka.get("topic_prefix") or ""),
        replication_factor=rf,
        min_insync_replicas=_min_insync(kafka.get("min_insync_replicas"), rf),
        kafka_security=_security(kafka),
        admin_token=_admin_token(os.environ.get(ADMIN_TOKEN_ENV) or admin),
        reload_sec=_positive(reload_sec, "server.api_keys_reload_sec", DEFAULT_RELOAD_SEC),
        max_body_bytes=int(_positive(ingest.get("max_body_bytes"), "ingest.max_body_bytes",
                                     DEFAULT_MAX_BODY)),
        max_batch_events=int(_positive(ingest.get("max_batch_events"), "ingest.max_batch_events",
                                       DEFAULT_MAX_BATCH_EVENTS)),
        trusted_proxies=_cidrs(ingest.get("trusted_proxies")),
        api_keys=api_keys,
        api_keys_from=api_keys_from,
        keys_declared=any(k in server for k in ("api_keys", "auth")) or "api_keys" in doc,
        api_keys_remove_many=_switch(server.get("api_keys_remove_many"),
                                     "server.api_keys_remove_many", False),
        s2s_auth=tuple(str(s) for s in s2s),
        policies=_policies(doc.get("policies")),
        jwt_providers=tuple(doc.get("jwt_providers") or ()),
        metrics_enabled=_switch(os.environ.get(METRICS_ENV) or metrics.get("enabled"),
                                "metrics.enabled", True),
        worker_web_port=web_port,
        usage_web_port=usage_port,
        # `worker.url` and EVENTGUARD_WORKER_URL named a worker, which no longer serves
        # usage: they are not read (docs/configuration.md).
        usage_url=str(os.environ.get(USAGE_URL_ENV) or usage.get("url")
                      or f"http://127.0.0.1:{usage_port}").rstrip("/"),
        admin_bind=_bind(ingest.get("admin_bind", DEFAULT_ADMIN_BIND), "ingest.admin_bind"),
        session_idle_s=_positive(console.get("session_idle_s"), "console.session_idle_s",
                                 DEFAULT_SESSION_IDLE_S),
        worker_urls=_urls(os.environ.get(WORKER_URLS_ENV, "").split(",")
                          if os.environ.get(WORKER_URLS_ENV) else console.get("worker_urls"),
                          "console.worker_urls",
                          (f"http://127.0.0.1:{web_port}",)),
    )


MIN_ADMIN_TOKEN = 32


def _bind(value: Any, name: str) -> tuple[str, int] | None:
    """`host:port` (`[::1]:8002` for IPv6), or off (false, `off`, empty)."""
    if value in (None, False, "", "off"):
        return None
    host, _, port = str(value).strip().rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ConfigError(f"{name} must be host:port, like 127.0.0.1:8002, or off; got "
                          f"{value!r}")
    return host, int(port)


def _urls(value: Any, name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    if value is None:
        return default
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(
            isinstance(v, str) and v.startswith(("http://", "https://")) for v in value):
        raise ConfigError(f"{name} must be a list of http(s) URLs, like "
                          "[http://worker-1:6066]")
    return tuple(v.rstrip("/") for v in value)


def _port(value: Any, name: str, default: int) -> int:
    port = _whole(value, name, default)
    if not 1 <= port <= 65535:
        raise ConfigError(f"{name} must be a port, 1-65535, got {port}")
    return port


def _servers(value: Any) -> str | None:
    """kafka.bootstrap_servers as `host:port,host:port`, from that string or a YAML list."""
    if value in (None, "", []):
        return None
    if isinstance(value, list) and all(isinstance(v, str) and v.strip() for v in value):
        return ",".join(v.strip() for v in value)
    if isinstance(value, str):
        return value.strip()
    raise ConfigError("kafka.bootstrap_servers must be `host:port,host:port` or a list of "
                      f"`host:port`, got {value!r}")


def _admin_token(value: Any) -> Masked | None:
    """A token that guards every key: long and random, or the start stops."""
    if not value:
        return None
    token = str(value)
    if len(token) < MIN_ADMIN_TOKEN or len(set(token)) < 12:
        raise ConfigError(
            f"server.admin_token is too weak ({len(token)} characters, {len(set(token))} "
            f"different): use at least {MIN_ADMIN_TOKEN} random characters, for example "
            "the output of `eventguard keys gen`")
    return Masked(token)


def _security(kafka: Mapping[str, Any]) -> kafka_security.KafkaSecurity:
    try:
        return kafka_security.from_config(kafka)
    except kafka_security.SecurityError as exc:
        raise ConfigError(str(exc)) from None


def _api_key_source(doc: Mapping[str, Any], server: Mapping[str, Any]) -> tuple[Any, str]:
    # Jitsu's precedence: server.api_keys, then api_keys, then server.auth.
    for where, value in (("server.api_keys", server.get("api_keys")),
                         ("api_keys", doc.get("api_keys")),
                         ("server.auth", server.get("auth"))):
        if value not in (None, "", [], {}):
            return value, where
    return None, ""


def _policies(raw: Any) -> dict[str, EventPolicy]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError("`policies` must map a policy name to its event lists")
    out = {}
    for name, lists in raw.items():
        if not isinstance(lists, dict):
            raise ConfigError(f"policies.{name} must be a mapping of event lists")
        defaults = EventPolicy()
        out[str(name)] = EventPolicy(
            anonymous_events=_names(lists, "anonymous_events", (), name),
            modify_without_jwt=_names(lists, "modify_without_jwt", defaults.modify_without_jwt,
                                      name),
            modify_with_jwt=_names(lists, "modify_with_jwt", defaults.modify_with_jwt, name),
        )
    return out


def _names(lists: Mapping[str, Any], key: str, default: tuple[str, ...], policy: str
           ) -> tuple[str, ...]:
    value = lists.get(key)
    if value is None:
        return default
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"policies.{policy}.{key} must be a list of event types")
    return tuple(value)


def _section(doc: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = doc.get(name) or {}
    if not isinstance(value, dict):
        raise ConfigError(f"`{name}` must be a mapping")
    return value


def _positive(value: Any, name: str, default: float) -> float:
    if value is None:
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number, got {value!r}") from None
    if number <= 0:
        raise ConfigError(f"{name} must be positive, got {value!r}")
    return number


def _switch(value: Any, name: str, default: bool) -> bool:
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false, got {value!r}")


def _whole(value: Any, name: str, default: int) -> int:
    number = _positive(value, name, default)
    if number != int(number):
        raise ConfigError(f"{name} must be a whole number, got {value!r}")
    return int(number)


def _min_insync(value: Any, rf: int) -> int:
    """kafka.min_insync_replicas: default min(2, rf). More than rf would refuse every
    acks=all write, so it is an error here rather than a 503 on every request."""
    if value is None:
        return min(2, rf)
    number = _whole(value, "kafka.min_insync_replicas", 1)
    if number > rf:
        raise ConfigError(f"kafka.min_insync_replicas ({number}) must not exceed "
                          f"kafka.replication_factor ({rf}): no write could be acknowledged")
    return number


def _cidrs(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list):
        raise ConfigError("ingest.trusted_proxies must be a list of CIDRs, like [10.0.0.0/8]")
    out = []
    for item in items:
        try:
            out.append(str(ipaddress.ip_network(str(item).strip(), strict=False)))
        except ValueError:
            raise ConfigError(f"ingest.trusted_proxies: {item!r} is not a CIDR or an address"
                              ) from None
    return tuple(out)
