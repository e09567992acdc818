"""The canonical string, the client helper, and the nonce cache."""

from __future__ import annotations

import hashlib
import hmac

from workers.auth.reasons import Reason
from workers.auth.signing import NonceCache, canonical, verify
from workers.client import signed_headers

NOW = 1_800_000_000.0


def test_canonical_string_is_the_documented_one() -> None:
    body = b'{"a":1}'
    assert canonical("1", "n", "post", "/p", body) == (
        b"1\nn\nPOST\n/p\n" + hashlib.sha256(body).hexdigest().encode())


def test_client_helper_signs_what_the_worker_verifies() -> None:
    h = signed_headers("AK", "sec", b"{}", "/api/v1/s2s/event", now_ms=int(NOW * 1000),
                       nonce="abc")
    expected = hmac.new(b"sec", canonical(h["X-Timestamp"], "abc", "POST", "/api/v1/s2s/event",
                                          b"{}"), hashlib.sha256).hexdigest()
    assert h["X-Signature"] == expected
    check = verify("sec", h["X-Timestamp"], "abc", h["X-Signature"].upper(), "POST",
                   "/api/v1/s2s/event", b"{}", NOW + 299)
    assert check.ok and check.reason is Reason.OK
    assert verify("sec", h["X-Timestamp"], "abc", h["X-Signature"], "POST",
                  "/api/v1/s2s/event", b"{}", NOW + 301).reason is Reason.HMAC_STALE_TIMESTAMP


def test_nonce_cache_forgets_after_twice_the_window_and_stays_bounded() -> None:
    cache = NonceCache(window_s=300, max_entries=3)
    assert not cache.seen_before("k:n1", "r1", NOW)
    assert cache.seen_before("k:n1", "r2", NOW + 599)
    assert not cache.seen_before("k:n1", "r1", NOW + 10)  # the same request again
    assert not cache.seen_before("k:n2", "r3", NOW + 601)  # n1 expired here
    assert not cache.seen_before("k:n1", "r4", NOW + 602)
    for n in range(10):
        cache.seen_before(f"k:x{n}", "r", NOW + 603)
    assert len(cache._seen) <= 3
