"""JWTs and signed requests through HTTP -> Kafka -> a real worker, with a local
JWKS server that rotates its keys during the test."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt as pyjwt
import orjson
import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from tests.integration.conftest import PREFIX, Env
from tests.integration.test_pipeline import accepted, rejected, send
from workers import topics
from workers.client import signed_headers
from workers.devstack.processes import Stack, free_port
from workers.paths import cache_dir

ISSUER = "https://idp.it.test/"
SERVER = "it-jwt-server-" + os.urandom(6).hex()
ACCESS_SECRET = "it-access-" + os.urandom(6).hex()
S2S = "/api/v1/s2s/event"


class Jwks(BaseHTTPRequestHandler):
    keys: dict[str, Any] = {}  # noqa: RUF012 - the server's current key set, by kid
    failing = False
    fetches = 0

    def do_GET(self) -> None:
        Jwks.fetches += 1
        if Jwks.failing:
            self.send_response(500)
            self.end_headers()
            return
        doc = {"keys": [{**json.loads(RSAAlgorithm.to_jwk(k.public_key())), "kid": kid}
                        for kid, k in Jwks.keys.items()]}
        self.send_response(200)
        self.end_headers()
        self.wfile.write(json.dumps(doc).encode())

    def log_message(self, *_: Any) -> None:
        return


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def token(key: rsa.RSAPrivateKey, kid: str, **claims: Any) -> str:
    payload = {"iss": ISSUER, "aud": "api", "sub": "user-7", "exp": time.time() + 300, **claims}
    return pyjwt.encode(payload, key, algorithm="RS256", headers={"kid": kid})


@pytest.fixture(scope="module")
def jwt_env(env: Env, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Jwks)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    Jwks.keys = {"a": new_key()}
    tmp = tmp_path_factory.mktemp("jwt")
    prefix = PREFIX.rstrip(".") + "-jwt."
    asyncio.run(topics.apply(env.bootstrap, topics.load_specs(), prefix))
    config = tmp / "eventguard.yaml"
    config.write_text(yaml.safe_dump({
        "server": {"api_keys_reload_sec": 1},
        "api_keys": [{"id": "app", "server_secret": SERVER, "access_key": "AK-it",
                      "access_secret": ACCESS_SECRET, "jwt_providers": ["idp"]}],
        "jwt_providers": [{"id": "idp", "issuer": ISSUER, "audience": "api", "key": "app",
                           "jwks_url": f"http://127.0.0.1:{server.server_port}/jwks"}],
    }))
    logs = cache_dir() / "test-logs" / prefix.rstrip(".")
    stack = Stack(logs, env.bootstrap, prefix)
    port = free_port()
    sub = Env(env.bootstrap, prefix, f"http://127.0.0.1:{port}", config, logs, stack)
    try:
        stack.worker(config)
        stack.ingest(config, port)
        deadline = time.monotonic() + 120
        while True:  # until the key and the provider's keys have reached the worker
            got = send(sub, S2S, {"event_type": "page"}, {
                "X-Auth-Token": SERVER, "Authorization": f"Bearer {token(Jwks.keys['a'], 'a')}"})
            if got.get("accepted-events"):
                break
            assert time.monotonic() < deadline, got
            time.sleep(0.5)
        yield sub
    finally:
        stack.stop()
        server.shutdown()


def bearer(tok: str, secret: str | None = SERVER) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {tok}"}
    if secret:
        headers["X-Auth-Token"] = secret
    return headers


def test_jwt_on_a_key_is_verified_and_form_submit_needs_it(jwt_env: Env) -> None:
    tok = token(Jwks.keys["a"], "a")
    record = accepted(send(jwt_env, S2S, {"event_type": "form.submit"}, bearer(tok)))
    assert record["auth"] == {"key_id": "app", "method": "server_secret",
                              "identity": "verified", "subject": "user-7"}
    rejected(send(jwt_env, S2S, {"event_type": "form.submit"}, {"X-Auth-Token": SERVER}),
             "jwt_required")


def test_jwt_alone_matched_by_issuer(jwt_env: Env) -> None:
    record = accepted(send(jwt_env, S2S, {"event_type": "page"},
                           bearer(token(Jwks.keys["a"], "a"), secret=None)))
    assert record["auth"]["method"] == "jwt" and record["auth"]["key_id"] == "app"


@pytest.mark.parametrize(("claims", "detail"), [
    ({"exp": time.time() - 600}, "expired"),
    ({"aud": "other"}, "bad_audience"),
    ({"iss": "https://evil.test/"}, "bad_issuer"),
])
def test_invalid_jwt_rejected_with_detail(jwt_env: Env, claims: dict[str, Any],
                                          detail: str) -> None:
    record = rejected(send(jwt_env, S2S, {"event_type": "page"},
                           bearer(token(Jwks.keys["a"], "a", **claims))), "jwt_invalid")
    assert record["detail"] == detail


def test_jwks_rotation_is_picked_up_and_an_outage_keeps_the_keys(jwt_env: Env) -> None:
    old = Jwks.keys["a"]
    Jwks.keys = {"b": new_key()}
    fetched = Jwks.fetches
    deadline = time.monotonic() + 60  # one refetch per 30 s per provider at most
    while True:
        got = send(jwt_env, S2S, {"event_type": "page"}, bearer(token(Jwks.keys["b"], "b")))
        if got.get("accepted-events"):
            break
        assert got["rejected-events"][0]["detail"] == "unknown_kid", got
        assert time.monotonic() < deadline, "the new JWKS key was never used"
        time.sleep(1)
    assert Jwks.fetches > fetched
    rejected(send(jwt_env, S2S, {"event_type": "page"}, bearer(token(old, "a"))), "jwt_invalid")
    Jwks.failing = True
    try:
        before = Jwks.fetches
        rejected(send(jwt_env, S2S, {"event_type": "page"}, bearer(token(old, "zz"))),
                 "jwt_invalid")
        accepted(send(jwt_env, S2S, {"event_type": "page"}, bearer(token(Jwks.keys["b"], "b"))))
        assert Jwks.fetches >= before
    finally:
        Jwks.failing = False


def signed(body: bytes, path: str = S2S, **over: str) -> dict[str, str]:
    return {**signed_headers("AK-it", ACCESS_SECRET, body, path), **over}


def test_signed_request_accepted_replay_and_tampering_rejected(jwt_env: Env) -> None:
    body = orjson.dumps({"event_type": "track", "n": 1})
    headers = signed(body)
    record = accepted(send(jwt_env, S2S, raw=body, headers=headers))
    assert record["auth"]["method"] == "hmac" and record["auth"]["key_id"] == "app"
    rejected(send(jwt_env, S2S, raw=body, headers=headers), "hmac_replay")
    rejected(send(jwt_env, S2S, raw=orjson.dumps({"event_type": "track", "n": 2}),
                  headers=signed(body)), "hmac_bad_signature")
    stale = str(int((time.time() - 400) * 1000))
    rejected(send(jwt_env, S2S, raw=body, headers={
        **signed(body), "X-Timestamp": stale}), "hmac_stale_timestamp")
    rejected(send(jwt_env, S2S, raw=body, headers={
        "X-Access-Key": "AK-it", "X-Nonce": "n"}), "missing_credentials")


def test_replay_is_caught_by_a_restarted_worker(jwt_env: Env) -> None:
    body = orjson.dumps({"event_type": "track", "restart": True})
    headers = signed(body)
    accepted(send(jwt_env, S2S, raw=body, headers=headers))
    stack = jwt_env.stack
    [worker] = [p for p in stack.procs if p.name == "worker"]
    worker.stop()
    stack.procs.remove(worker)
    stack.worker(jwt_env.config)
    # The new process knows the nonce only from the nonces topic.
    rejected(send(jwt_env, S2S, raw=body, headers=headers), "hmac_replay")
    accepted(send(jwt_env, S2S, raw=body, headers=signed(body)))


def test_eventguard_send_signs_and_shows_the_decision(jwt_env: Env) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "workers.cli", "send", "--url", jwt_env.url, "--s2s",
         "--access-key", "AK-it", "--access-secret", ACCESS_SECRET, "--event-type", "page"],
        capture_output=True, text=True, timeout=60,
        env={**os.environ, "EVENTGUARD_TOPIC_PREFIX": jwt_env.prefix,
             "KAFKA_BOOTSTRAP_SERVERS": jwt_env.bootstrap})
    assert done.returncode == 0, done.stderr
    assert "accepted ok key=app method=hmac" in done.stdout


def test_no_plaintext_secret_in_this_stacks_logs(jwt_env: Env) -> None:
    logs = b"".join(p.read_bytes() for p in jwt_env.logs.glob("*.log"))
    assert logs and SERVER.encode() not in logs and ACCESS_SECRET.encode() not in logs
