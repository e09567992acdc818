"""Encryption of HMAC access secrets at rest (Fernet).

A signature can only be checked with the secret itself, so access secrets
cannot be hashed like bearer secrets. They are stored as `fernet:<token>` under
a master key from $EVENTGUARD_MASTER_KEY; the embedded default generates one
under the cache directory (mode 0600).
"""

from __future__ import annotations

import logging
import os

from cryptography.fernet import Fernet, InvalidToken

from workers.keys.records import FERNET_PREFIX
from workers.paths import cache_dir

MASTER_KEY_ENV = "EVENTGUARD_MASTER_KEY"
log = logging.getLogger(__name__)


class VaultError(RuntimeError):
    """The master key is missing or does not open a stored secret."""


def master_key() -> bytes:
    from_env = os.environ.get(MASTER_KEY_ENV)
    if from_env:
        return from_env.encode()
    path = cache_dir() / "master.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(Fernet.generate_key())
    return path.read_bytes().strip()


class Vault:
    def __init__(self, key: bytes | None = None) -> None:
        try:
            self._fernet = Fernet(key or master_key())
        except ValueError:
            raise VaultError(
                f"{MASTER_KEY_ENV} is not a Fernet key; make one with "
                "`python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'`") from None

    def seal(self, secret: str) -> str:
        return FERNET_PREFIX + self._fernet.encrypt(secret.encode()).decode()

    def open(self, sealed: str) -> str:
        if not sealed.startswith(FERNET_PREFIX):
            raise VaultError("not a sealed secret")
        try:
            return self._fernet.decrypt(sealed[len(FERNET_PREFIX):].encode()).decode()
        except InvalidToken:
            raise VaultError("sealed with another master key") from None

    def same(self, a: str, b: str) -> bool:
        """Whether two sealed secrets hold the same secret (sealing is randomized)."""
        try:
            return self.open(a) == self.open(b)
        except VaultError:
            return False


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
