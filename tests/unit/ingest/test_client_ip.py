"""Forwarding headers count only from trusted proxies (ingest.trusted_proxies)."""

from workers.ingest.client_ip import client_ip, networks

PROXIES = networks(["10.0.0.0/8", "fd00::/8"])


def test_nothing_trusted_by_default_the_peer_is_the_client() -> None:
    assert client_ip("203.0.113.9", "1.2.3.4", "5.6.7.8", ()) == "203.0.113.9"
    assert client_ip("10.0.0.1", "1.2.3.4", "5.6.7.8", ()) == "10.0.0.1"


def test_untrusted_peer_cannot_claim_an_address() -> None:
    assert client_ip("203.0.113.9", "1.2.3.4", "5.6.7.8, 10.0.0.1", PROXIES) == "203.0.113.9"


def test_trusted_proxy_real_ip_wins_when_it_is_an_address() -> None:
    assert client_ip("10.1.2.3", "198.51.100.7", "5.6.7.8", PROXIES) == "198.51.100.7"
    # not an address: ignored, X-Forwarded-For decides
    assert client_ip("10.1.2.3", "evil<script>", "198.51.100.8", PROXIES) == "198.51.100.8"


def test_forwarded_for_is_walked_from_the_right_skipping_trusted_proxies() -> None:
    # the client forged the first entry; our proxies appended the real one and themselves
    xff = "1.1.1.1, 198.51.100.7, 10.0.0.2, 10.0.0.3"
    assert client_ip("10.0.0.4", None, xff, PROXIES) == "198.51.100.7"
    assert client_ip("10.0.0.4", None, "198.51.100.7", PROXIES) == "198.51.100.7"


def test_forwarded_for_only_proxies_gives_the_leftmost() -> None:
    assert client_ip("10.0.0.4", None, "10.0.0.2, 10.0.0.3", PROXIES) == "10.0.0.2"


def test_garbage_entry_stops_the_walk_at_the_last_trusted_hop() -> None:
    assert client_ip("10.0.0.4", None, "198.51.100.7, unknown, 10.0.0.3", PROXIES) == "10.0.0.3"
    assert client_ip("10.0.0.4", None, "x" * 5000, PROXIES) == "10.0.0.4"
    assert client_ip("10.0.0.4", None, None, PROXIES) == "10.0.0.4"
    assert client_ip("10.0.0.4", None, " , ,", PROXIES) == "10.0.0.4"


def test_ports_brackets_ipv6_and_mapped_addresses() -> None:
    assert client_ip("10.0.0.4", None, "198.51.100.7:4711", PROXIES) == "198.51.100.7"
    assert client_ip("fd00::1", None, "[2001:db8::5]:443", PROXIES) == "2001:db8::5"
    assert client_ip("::ffff:10.0.0.4", None, "2001:db8::6", PROXIES) == "2001:db8::6"
    assert client_ip(None, "1.2.3.4", None, PROXIES) is None
