"""Guessing the admin token is braked per client address (issue 19, part 3); the admin API
is on its own listener and takes the token in a header only (issue 20)."""

from __future__ import annotations

import secrets
import urllib.error
import urllib.request
from pathlib import Path

import orjson

from tests.integration.conftest import PREFIX, write_config
from workers.devstack.processes import Stack, free_port
from workers.ingest.admin_failures import LIMIT
from workers.paths import cache_dir


def _get(url: str, token: str) -> tuple[int, dict[str, object], str | None]:
    request = urllib.request.Request(url, headers={"X-Admin-Token": token})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, orjson.loads(answer.read()), None
    except urllib.error.HTTPError as answer:
        return answer.code, orjson.loads(answer.read()), answer.headers.get("Retry-After")


def _status(url: str, token: str) -> int:
    request = urllib.request.Request(url, headers={"X-Admin-Token": token})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as answer:
        return answer.code


def _get_with_query_token(url: str, token: str) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(f"{url}?token={token}", timeout=10) as answer:
            return answer.status, orjson.loads(answer.read())
    except urllib.error.HTTPError as answer:
        return answer.code, orjson.loads(answer.read())


def test_wrong_admin_tokens_are_braked_and_logged_without_the_token(bootstrap: str,
                                                                    tmp_path: Path) -> None:
    token = secrets.token_urlsafe(32)
    config = write_config(tmp_path / "eventguard.yaml", [], server={"admin_token": token})
    prefix = f"{PREFIX.rstrip('.')}-brake."
    stack = Stack(cache_dir() / "test-logs" / prefix.rstrip("."), bootstrap, prefix)
    port = free_port()
    try:
        ingest = stack.ingest(config, port)
        # The public port has no admin API (issue 20), with the right token or not.
        assert _status(f"http://127.0.0.1:{port}/api/v1/admin/keys", token) == 404
        url = f"{ingest.url}/api/v1/admin/keys"
        status, body = _get_with_query_token(url, token)
        assert (status, body["error"]) == (400, "send the admin token in the X-Admin-Token "
                                                "header, never in the URL (URLs end up in logs)")
        guesses = [f"guess-{n}-{secrets.token_hex(4)}" for n in range(LIMIT)]
        assert [_get(url, g)[0] for g in guesses] == [401] * LIMIT
        status, body, retry = _get(url, "one more guess")
        assert (status, body["error"]) == (
            429, "too many wrong admin tokens from this address; retry later")
        assert retry is not None and 1 <= int(retry) <= 60
        assert _get(url, token)[0] == 429  # the brake holds the address, whoever it is
        log = ingest.log.read_text()
        lines = [line for line in log.splitlines() if "admin API:" in line]
        assert len(lines) == 2, lines  # the first failure, and the start of the brake
        assert not any(g in log for g in guesses) and token not in log
    finally:
        stack.stop()
