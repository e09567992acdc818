"""This worker's key state: the key table's view, JWKS keys, and the vault."""

from __future__ import annotations

import logging

from workers.app import _bootstrap, app, config
from workers.auth.authorize import AuthState
from workers.keys.jwks import JwksCache
from workers.keys.vault import Vault, VaultError
from workers.keys.view import KeyView

log = logging.getLogger(__name__)


class Unsealer:
    """Opens sealed access secrets for signature checks, caching what it opened."""

    def __init__(self) -> None:
        self._vault: Vault | None = None
        self._opened: dict[str, str] = {}

    def __call__(self, sealed: str) -> str | None:
        if sealed in self._opened:
            return self._opened[sealed]
        try:
            self._vault = self._vault or Vault()
            secret = self._vault.open(sealed)
        except VaultError as exc:
            log.error("cannot open an access secret: %s", exc)
            return None
        if len(self._opened) > 10_000:
            self._opened.clear()
        self._opened[sealed] = secret
        return secret


view = KeyView(config.topic("auth-state"),
               AuthState(max_body_bytes=config.max_body_bytes,
                         max_batch_events=config.max_batch_events, unseal=Unsealer()))
jwks = JwksCache(view.state)


@app.task
async def run_key_view() -> None:
    await view.run(_bootstrap)


@app.task
async def run_jwks() -> None:
    await view.ready.wait()
    await jwks.run()
