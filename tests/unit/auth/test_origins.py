import pytest

from workers.auth import origins


@pytest.mark.parametrize(
    ("origin", "host"),
    [
        ("https://www.shop.com", "www.shop.com"),
        ("http://shop.com:8080", "shop.com"),
        ("https://Shop.COM/path?q=1", "shop.com"),
        ("shop.com", "shop.com"),
        ("http://[::1]:3000", "[::1]"),
        ("null", None),
        ("", None),
        (None, None),
    ],
)
def test_normalize(origin: str | None, host: str | None) -> None:
    assert origins.normalize(origin) == host


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
        ("https://www.shop.com", "shop.com", False),
        ("https://staging-1.shop.io", "staging*", True),
        ("https://prod.shop.io", "staging*", False),
        ("https://staging-1.shop.io", "https://staging*", True),
        ("https://anything.io", "*", True),
        ("https://SHOP.com", "Shop.Com", True),
        ("https://a.shop.com", "*.shop.com:443", True),
    ],
)
def test_pattern(origin: str, pattern: str, expected: bool) -> None:
    assert origins.allowed(origin, [pattern]) is expected


def test_no_patterns_allow_any_origin_even_missing() -> None:
    assert origins.allowed(None, [])
    assert origins.allowed("https://x.io", ["", "  "])


@pytest.mark.parametrize("origin", [None, "", "null"])
def test_missing_or_null_origin_is_refused_when_key_has_patterns(origin: str | None) -> None:
    assert not origins.allowed(origin, ["*"])


def test_a_keys_origins_answer_the_same_remembered_or_not() -> None:
    patterns = ("*.shop.com", "https://admin.test")
    for origin in ("https://a.shop.com", "https://evil.test", "https://admin.test", None):
        expected = origins.allowed(origin, list(patterns))
        assert origins.allowed(origin, patterns) is expected
        assert origins.allowed(origin, patterns) is expected  # the remembered answer
