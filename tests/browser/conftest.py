"""The console in a real browser: Debian's chromium driven by Playwright, against a real
ingest, worker and usage process on the real broker (../shared/BROWSER-TESTS.md).

`make test` installs chromium and axe-core when missing (the Makefile's browser-deps);
Playwright never downloads a browser here. One browser for these tests, a new context
per test. Screenshots go to `.cache/console-screenshots/` (docs/console.md shows them).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import shutil
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from tests.integration.conftest import (
    PREFIX,
    bootstrap,  # noqa: F401 - the shared broker fixture
)
from workers import topics
from workers.devstack.processes import Proc, Stack, free_port
from workers.paths import cache_dir

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Without the background-networking flags chromium keeps dialling Google's hosts, which
# this machine's closed network refuses (../.library/env).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
AXE = Path(__file__).resolve().parents[2] / ".cache/npm/node_modules/axe-core/axe.min.js"
SHOTS = cache_dir() / "console-screenshots"
ISSUER = "https://idp.console.test/"
JWKS_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


class _Jwks(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        doc = {"keys": [{**json.loads(RSAAlgorithm.to_jwk(JWKS_KEY.public_key())),
                         "kid": "console-k1", "use": "sig"}]}
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(json.dumps(doc).encode())

    def log_message(self, *_: Any) -> None:
        return


@dataclass
class Console:
    """One stack for the module: its public ingest, the admin listener, the processes."""

    bootstrap: str
    prefix: str
    ingest: str  # the public port
    admin: str  # the admin listener
    token: str
    jwks_url: str
    stack: Stack
    worker: Proc
    usage: Proc

    def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        request = urllib.request.Request(self.ingest + path, data=body, method="POST",
                                         headers={"Content-Type": "application/json",
                                                  **headers})
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                return answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as answer:
            return answer.code, json.loads(answer.read())


def _wait_ready(proc: Proc, timeout_s: float = 180.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited:\n{proc.tail()}")
        try:
            with urllib.request.urlopen(f"{proc.url}/ready", timeout=2) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{proc.name} not ready after {timeout_s:.0f}s; see {proc.log}")


@pytest.fixture(scope="package")
def console(bootstrap: str, tmp_path_factory: pytest.TempPathFactory  # noqa: F811
            ) -> Iterator[Console]:
    prefix = f"{PREFIX.rstrip('.')}-console."  # deleted with the run's other topics
    asyncio.run(topics.apply(bootstrap, topics.load_specs(), prefix))
    jwks = ThreadingHTTPServer(("127.0.0.1", 0), _Jwks)
    threading.Thread(target=jwks.serve_forever, daemon=True).start()
    token = secrets.token_urlsafe(32)
    worker_port, usage_port = free_port(), free_port()
    config = tmp_path_factory.mktemp("console") / "eventguard.yaml"
    config.write_text(yaml.safe_dump({
        "api_keys": [],  # every key is made in the console
        "server": {"api_keys_reload_sec": 1, "admin_token": token},
        "usage": {"url": f"http://127.0.0.1:{usage_port}"},
        "console": {"worker_urls": [f"http://127.0.0.1:{worker_port}"]},
    }))
    stack = Stack(cache_dir() / "test-logs" / prefix.rstrip("."), bootstrap, prefix)
    port = free_port()
    try:
        worker = stack.worker(config, web_port=worker_port)
        usage = stack.usage(config, web_port=usage_port)
        ingest = stack.ingest(config, port)
        _wait_ready(worker)
        _wait_ready(usage)
        yield Console(bootstrap, prefix, f"http://127.0.0.1:{port}", ingest.url, token,
                      f"http://127.0.0.1:{jwks.server_port}/jwks.json", stack, worker, usage)
    finally:
        stack.stop()
        jwks.shutdown()


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    # Package scope, not session: Playwright's sync API keeps an event loop running in
    # this thread while it is open, and every later test's asyncio.run would refuse to run.
    missing = [what for what, there in (("Debian's chromium", Path(CHROMIUM).exists()),
                                        ("axe-core", AXE.exists())) if not there]
    if missing:
        pytest.fail(f"{' and '.join(missing)} missing: run `make browser-deps` (make test "
                    "does), which installs them", pytrace=False)
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                     args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    yield ctx
    ctx.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


def sign_in(page: Page, console: Console, token: str | None = None) -> None:
    page.goto(console.admin + "/console/")
    page.fill("#token", console.token if token is None else token)
    page.click("button[type=submit]")


def serious_violations(page: Page) -> list[str]:
    """axe-core's serious and critical violations on the page as it is now. Evaluated, not
    injected as a script tag: the page's CSP (rightly) blocks inline scripts."""
    page.evaluate(AXE.read_text())
    found: list[str] = page.evaluate("""async () => {
        const result = await axe.run();
        return result.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')
            .map(v => `${v.id} (${v.impact}): ${v.help} at `
                      + v.nodes.map(n => n.target.join(' ')).join(', '));
    }""")
    return found


def shot(page: Page, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
