from workers.auth import secrets


def test_digest_format() -> None:
    d = secrets.digest("abc")
    assert d == "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert secrets.is_digest(d)


def test_to_digest_keeps_digests_and_hashes_the_rest() -> None:
    d = secrets.digest("abc")
    assert secrets.to_digest(d) == d
    assert secrets.to_digest("abc") == d
    # Looks like a digest but is not one: hashed like any secret.
    assert secrets.to_digest("sha256:xyz") == secrets.digest("sha256:xyz")


def test_same_is_exact() -> None:
    assert secrets.same(secrets.digest("a"), secrets.digest("a"))
    assert not secrets.same(secrets.digest("a"), secrets.digest("b"))


def test_generate_is_long_and_unique() -> None:
    a, b = secrets.generate(), secrets.generate()
    assert a != b and len(a) >= 43
