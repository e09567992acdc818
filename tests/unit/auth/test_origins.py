import pytest

from workers.auth import origins


@pytest.mark.parametrize(
    ("origin", "host"),
    [
        ("https://www.shop.com", "www.shop.com"),
        ("http://shop.com:8080", "shop.com"),
        ("https://Shop.COM", "shop.com"),
        ("http://[::1]:3000", "[::1]"),
        ("http://[0:0::1]", "[::1]"),
        ("http://127.0.0.1:8000", "127.0.0.1"),
        ("https://xn--bcher-kva.de", "xn--bcher-kva.de"),
    ],
)
def test_host_of_a_serialized_origin(origin: str, host: str) -> None:
    assert origins.host_of(origin) == host


@pytest.mark.parametrize(
    "origin",
    [
        "shop.com",  # no scheme
        "https://shop.com/",  # a path
        "https://shop.com/path?q=1",
        "https://evil.io#.shop.com",  # a URL parser's host is evil.io
        "https://evil.io\\.shop.com",
        "https://evil.io?.shop.com",
        "https://user@a.shop.com",
        "https://evil.io@a.shop.com",
        "https://a.shop.com ",
        "https://a .shop.com",
        "https://a.shop.com\t",
        "https://a%2eshop.com",
        "https://a_b.shop.com",
        "https://bücher.de",  # an IDN not in its xn-- form
        "https://a.shop.com.",  # a trailing dot
        "https://a..shop.com",
        "https://-a.shop.com",
        "https://a.shop.com:",
        "https://a.shop.com:0443",
        "https://a.shop.com:65536",
        "https://a.shop.com:80:80",
        "https://0x7f.1",  # IPv4 in a form a URL parser rewrites
        "https://1.2.3",
        "https://256.1.1.1",
        "https://01.1.1.1",
        "https://[::1",
        "https://[fe80::1%eth0]",
        "https://[::1]x",
        "://a.shop.com",
        "1http://a.shop.com",
        "https://",
        "chrome-extension://abcdefgh",  # no host a URL parser lower-cases
        "shop.comhttp://shop.com",
    ],
)
def test_malformed_origins_are_refused_with_that_reason(origin: str) -> None:
    with pytest.raises(origins.Malformed):
        origins.host_of(origin)
    assert origins.refusal(origin, ["*"]) == origins.MALFORMED
    assert origins.refusal(origin, ["*.shop.com", "shop.com"]) == origins.MALFORMED


@pytest.mark.parametrize(
    ("origin", "pattern", "expected"),
    [
        ("https://a.shop.com", "*.shop.com", True),
        ("https://a.b.shop.com", "*.shop.com", True),
        ("https://shop.com", "*.shop.com", False),
        ("https://evilshop.com", "*.shop.com", False),
        ("https://shop.com.evil.io", "*.shop.com", False),
        ("https://shop.com", "shop.com", True),
        ("https://shop.com:8443", "https://shop.com", True),
        ("https://shop.com", "https://shop.com/", True),
        ("https://www.shop.com", "shop.com", False),
        ("https://staging-1.shop.io", "staging*", True),
        ("https://prod.shop.io", "staging*", False),
        ("https://staging-1.shop.io", "https://staging*", True),
        ("https://anything.io", "*", True),
        ("https://SHOP.com", "Shop.Com", True),
        ("https://a.shop.com", "*.shop.com:443", True),
        ("https://a.shop.com", "https://*.shop.com", True),
        ("http://[::1]:3000", "[::1]", True),
        ("http://10.0.0.1", "10.0.0.1", True),
    ],
)
def test_pattern(origin: str, pattern: str, expected: bool) -> None:
    assert origins.pattern_problem(pattern) is None
    assert origins.allowed(origin, [pattern]) is expected


def test_the_refusal_names_the_parsed_host() -> None:
    assert origins.refusal("https://evil.io", ("*.shop.com",)) == (
        "origin evil.io not in the key's origins")


@pytest.mark.parametrize(
    "pattern",
    [
        "a.*.shop.com",
        "*.shop.*",
        "*.shop.com/path",
        "shop.com/path",
        "https://shop.com?x",
        "*.shop com",
        "*..shop.com",
        "*.shop.com:port",
        "*.shop_x.com",
        "shop.com.",
        "1.2.3",
        "*.1",
        "htt ps://shop.com",
        ":8080*",
        "*.bücher.de",
    ],
)
def test_patterns_that_can_never_match_are_named(pattern: str) -> None:
    assert origins.pattern_problem(pattern) is not None
    with pytest.raises(origins.Malformed, match="can never match an Origin"):
        origins.check_patterns(["*.fine.com", pattern])
    # Should one reach a worker anyway, it matches nothing: the key fails closed.
    assert not origins.allowed("https://a.shop.com", [pattern])


def test_no_patterns_allow_any_origin_even_missing() -> None:
    assert origins.allowed(None, [])
    assert origins.allowed("https://x.io", ["", "  "])


@pytest.mark.parametrize("origin", [None, "null"])
def test_missing_or_null_origin_is_refused_when_key_has_patterns(origin: str | None) -> None:
    assert origins.refusal(origin, ["*"]) == "origin none not in the key's origins"


def test_a_keys_origins_answer_the_same_remembered_or_not() -> None:
    patterns = ("*.shop.com", "https://admin.test")
    for origin in ("https://a.shop.com", "https://evil.test", "https://admin.test", None):
        expected = origins.allowed(origin, list(patterns))
        assert origins.allowed(origin, patterns) is expected
        assert origins.allowed(origin, patterns) is expected  # the remembered answer
