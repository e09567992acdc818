"""Who sent a request: a bearer secret, a signed request, or a JWT alone.

Pure: the clock is handed in. The nonce cache in the state is the only thing
written, and only for a correctly signed request.
"""

from __future__ import annotations

from typing import NamedTuple

from workers.auth import jwt_check, origins, signing
from workers.auth.decision import Method
from workers.auth.jwt_check import Invalid, Verified
from workers.auth.keys import KeyRecord, SecretKind
from workers.auth.providers import Provider
from workers.auth.reasons import Reason
from workers.auth.request import RawRequest
from workers.auth.state import AuthState

SIGNED_METHOD = "POST"  # every event endpoint takes POST


class Authenticated(NamedTuple):
    key: KeyRecord
    method: Method
    jwt: Verified | Invalid | None = None  # the JWT's result, when one came along


class Refused(NamedTuple):
    reason: Reason
    detail: str = ""
    key_id: str | None = None
    method: Method | None = None


_ENDPOINT_KIND = {"client": SecretKind.CLIENT, "s2s": SecretKind.SERVER}
_METHOD = {SecretKind.CLIENT: Method.CLIENT_SECRET, SecretKind.SERVER: Method.SERVER_SECRET}


def authenticate(request: RawRequest, state: AuthState, now: float) -> Authenticated | Refused:
    if request.token is not None:
        found = _by_secret(request, state, now)
    elif request.access_key is not None:
        found = _by_signature(request, state, now)
    elif request.jwt is not None:
        found = _by_jwt_alone(request, state, now)
    else:
        return Refused(Reason.MISSING_CREDENTIALS, "no API secret, JWT or signature")
    if isinstance(found, Refused) or found.method is Method.JWT or request.jwt is None:
        return found
    result = verify_for_key(request.jwt, found.key, state, now)
    return Authenticated(found.key, found.method, result)


def verify_for_key(token: str, key: KeyRecord, state: AuthState, now: float
                   ) -> Verified | Invalid:
    """A JWT that rides on a key: verified by one of the key's providers."""
    names = key.jwt_providers or tuple(p.id for p in state.providers.values() if p.key == key.id)
    candidates = [state.providers[n] for n in names if n in state.providers]
    if not candidates:
        return Invalid("no_provider")
    # One provider needs no look at the token; verify() checks its issuer anyway.
    provider = candidates[0] if len(candidates) == 1 else _pick(
        candidates, jwt_check.unverified_issuer(token))
    if provider is None:
        return Invalid("bad_issuer")
    return jwt_check.verify_cached(token, provider, state.provider_keys(provider), now,
                                   state.verified)


def _pick(candidates: list[Provider], iss: str | None) -> Provider | None:
    for p in candidates:
        if p.issuer is not None and p.issuer == iss:
            return p
    unnamed = [p for p in candidates if p.issuer is None]
    if unnamed:
        return unnamed[0]
    return candidates[0] if len(candidates) == 1 else None


def _by_secret(request: RawRequest, state: AuthState, now: float) -> Authenticated | Refused:
    assert request.token is not None
    wanted = _ENDPOINT_KIND[request.endpoint or "client"]
    match = state.keys.match_secret(request.token, prefer=wanted)
    if match is None:
        return Refused(Reason.UNKNOWN_KEY, "no key has this secret")
    key, method = match.key, _METHOD[match.kind]
    if match.kind is not wanted:
        where = "/api/v1/s2s/event" if match.kind is SecretKind.SERVER else "/api/v1/event"
        return Refused(Reason.WRONG_ENDPOINT, f"a {match.kind.value} secret belongs on {where}",
                       key.id, method)
    # Origins guard browser keys; backends send no Origin (see docs/authorization.md).
    return _usable(key, method, request, now, check_origin=match.kind is SecretKind.CLIENT,
                   secret_expired=match.secret.expired(now))


def _by_signature(request: RawRequest, state: AuthState, now: float) -> Authenticated | Refused:
    assert request.access_key is not None
    key = state.keys.by_access_key(request.access_key)
    if key is None or key.access_secret is None:
        return Refused(Reason.UNKNOWN_KEY, "no key has this access key")
    secret = state.unseal(key.access_secret)
    if secret is None:
        return Refused(Reason.HMAC_BAD_SIGNATURE,
                       "this worker cannot open the key's access secret (EVENTGUARD_MASTER_KEY)",
                       key.id, Method.HMAC)
    check = signing.verify(secret, request.timestamp, request.nonce, request.signature,
                           SIGNED_METHOD, request.path or "", request.body, now)
    if not check.ok:
        return Refused(check.reason, check.detail, key.id, Method.HMAC)
    assert request.nonce is not None
    delivery = request.record_id or request.request_id
    if state.nonces.seen_before(f"{key.id}\n{request.nonce}", delivery, now):
        return Refused(Reason.HMAC_REPLAY, "this nonce was already used", key.id, Method.HMAC)
    return _usable(key, Method.HMAC, request, now, check_origin=False)


def _by_jwt_alone(request: RawRequest, state: AuthState, now: float) -> Authenticated | Refused:
    """Notivize-style: the provider whose issuer is the token's `iss` names the key."""
    assert request.jwt is not None
    iss = jwt_check.unverified_issuer(request.jwt)
    provider = next((p for p in state.providers.values()
                     if p.issuer is not None and p.issuer == iss and p.key), None)
    if provider is None or provider.key is None:
        return Refused(Reason.JWT_INVALID, "bad_issuer", method=Method.JWT)
    key = state.keys.get(provider.key)
    if key is None:
        return Refused(Reason.UNKNOWN_KEY, f"provider {provider.id} names no existing key",
                       method=Method.JWT)
    result = jwt_check.verify_cached(request.jwt, provider, state.provider_keys(provider), now,
                                     state.verified)
    if isinstance(result, Invalid):
        return Refused(Reason.JWT_INVALID, result.detail, key.id, Method.JWT)
    usable = _usable(key, Method.JWT, request, now, check_origin=request.endpoint == "client")
    return Authenticated(key, Method.JWT, result) if isinstance(usable, Authenticated) else usable


def _usable(key: KeyRecord, method: Method, request: RawRequest, now: float,
            check_origin: bool, secret_expired: bool = False) -> Authenticated | Refused:
    if key.disabled:
        return Refused(Reason.KEY_DISABLED, "key is disabled", key.id, method)
    if key.expired(now):
        return Refused(Reason.KEY_EXPIRED, "key is past expires_at", key.id, method)
    if secret_expired:
        return Refused(Reason.KEY_EXPIRED, "this secret is past its not_after", key.id, method)
    refused = origins.refusal(request.origin, key.origins) if check_origin else None
    if refused is not None:
        return Refused(Reason.ORIGIN_NOT_ALLOWED, refused, key.id, method)
    return Authenticated(key, method)
