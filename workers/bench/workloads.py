"""The raw-events records the benchmarks send, one workload per sender method.

Records are written as the ingest writes them (digested token, eg-* headers),
so the worker does exactly the work it does for HTTP traffic.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

import jwt as pyjwt
import orjson
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from workers.auth import secrets as digests
from workers.auth.authorize import AuthState
from workers.auth.keys import KeyRecord, SecretRef
from workers.auth.providers import provider_from_record
from workers.auth.signing import sign
from workers.bench import METHODS

__all__ = ["METHODS", "Record", "Workload"]

Record = tuple[bytes, bytes, list[tuple[str, bytes]]]
SECRET_MIX = ("client ok", "server ok", "unknown key", "wrong origin")
ISSUER = "https://idp.bench.test/"
S2S = "/api/v1/s2s/event"
TOKENS = 200  # distinct JWTs per algorithm, as from distinct users


class Workload:
    def __init__(self) -> None:
        self.client = secrets.token_urlsafe(16)
        self.server = secrets.token_urlsafe(16)
        self.access_key = "ak-bench-" + secrets.token_hex(4)
        self.access_secret = secrets.token_urlsafe(24)
        self.signers: dict[str, Any] = {
            "RS256": rsa.generate_private_key(public_exponent=65537, key_size=2048),
            "ES256": ec.generate_private_key(ec.SECP256R1())}
        exp = time.time() + 3600
        self.tokens = {alg: [pyjwt.encode({"iss": ISSUER, "aud": "bench", "sub": f"u{n}",
                                           "exp": exp}, key, algorithm=alg)
                             for n in range(TOKENS)] for alg, key in self.signers.items()}

    def provider(self) -> dict[str, Any]:
        pems = [k.public_key().public_bytes(serialization.Encoding.PEM,
                                            serialization.PublicFormat.SubjectPublicKeyInfo
                                            ).decode() for k in self.signers.values()]
        return {"id": "bench-idp", "public_keys": pems, "issuer": ISSUER, "audience": "bench"}

    def config(self) -> dict[str, Any]:
        return {
            "api_keys": [
                {"id": "bench-web", "client_secret": self.client, "origins": ["*.bench.test"]},
                {"id": "bench-backend", "server_secret": self.server,
                 "access_key": self.access_key, "access_secret": self.access_secret,
                 "jwt_providers": ["bench-idp"]}],
            "jwt_providers": [self.provider()],
        }

    def state(self) -> AuthState:
        """The same keys as `config()`, for the in-process decision-core figure."""
        st = AuthState(unseal=lambda sealed: self.access_secret)
        st.keys.put(KeyRecord("bench-web", client_secrets=(SecretRef(digests.digest(self.client)),),
                              origins=("*.bench.test",)))
        st.keys.put(KeyRecord("bench-backend",
                              server_secrets=(SecretRef(digests.digest(self.server)),),
                              access_key=self.access_key, access_secret="fernet:bench",
                              jwt_providers=("bench-idp",)))
        provider = provider_from_record("bench", self.provider())
        st.providers[provider.id] = provider
        return st

    def records(self, method: str, run_id: str, count: int) -> list[Record]:
        return [self.record(method, f"b{run_id}-{method}-{n}", n) for n in range(count)]

    def record(self, method: str, rid: str, n: int) -> Record:
        body = orjson.dumps({"event_type": "page", "n": n, "url": "https://www.bench.test/p"})
        headers = {"eg-request-id": rid, "eg-received-at": "2026-01-01T00:00:00.000Z"}
        if method == "secrets":
            kind = SECRET_MIX[n % len(SECRET_MIX)]
            endpoint, token, origin = {
                "client ok": ("client", self.client, "https://www.bench.test"),
                "server ok": ("s2s", self.server, None),
                "unknown key": ("client", "no-such-key", "https://www.bench.test"),
                "wrong origin": ("client", self.client, "https://evil.test"),
            }[kind]
            headers.update({"eg-endpoint": endpoint, "eg-token": digests.digest(token),
                            "eg-path": "/api/v1/event"})
            if origin:
                headers["eg-origin"] = origin
        elif method.startswith("jwt-"):
            alg = method.removeprefix("jwt-").upper()
            headers.update({"eg-endpoint": "s2s", "eg-token": digests.digest(self.server),
                            "eg-jwt": self.tokens[alg][n % TOKENS], "eg-path": S2S})
        else:
            timestamp = str(int(time.time() * 1000))
            headers.update({"eg-endpoint": "s2s", "eg-access-key": self.access_key,
                            "eg-timestamp": timestamp, "eg-nonce": rid, "eg-path": S2S,
                            "eg-signature": sign(self.access_secret, timestamp, rid, "POST",
                                                 S2S, body)})
        return rid.encode(), body, [(k, v.encode()) for k, v in headers.items()]
