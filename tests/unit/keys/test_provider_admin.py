import pytest

from tests.unit.auth.jwt_kit import NOW, RSA_KEY, claims, public_pem, token
from workers.auth.providers import provider_from_record
from workers.keys import provider_admin, records
from workers.keys.admin import Conflict, KeyOpError, NoSuchKey


def test_add_builds_a_record_the_workers_read() -> None:
    change = provider_admin.add({}, "idp", jwks_url="https://idp.test/jwks",
                                audience=["api", ""], issuer="https://idp.test/",
                                source="admin")
    [(key, value)] = change.others
    assert value is not None
    provider = records.decode_provider(key.decode(), records.loads(key.decode(), value))
    assert (provider.id, provider.audience, provider.source) == ("idp", ("api",), "admin")


@pytest.mark.parametrize("kwargs, problem", [
    ({"jwks_url": "", "public_key": ""}, "give a JWKS URL or a PEM public key"),
    ({"jwks_url": "https://a.test/j", "public_key": "x"}, "give a JWKS URL or a PEM"),
    ({"jwks_url": "ftp://a.test/j"}, "jwks_url must be an http"),
    ({"public_key": "not a pem"}, "must be PEM"),
])
def test_add_refuses_what_no_worker_could_use(kwargs: dict[str, str], problem: str) -> None:
    with pytest.raises(KeyOpError, match=problem):
        provider_admin.add({}, "idp", source="admin", **kwargs)


def test_remove_only_what_the_config_does_not_own() -> None:
    mine = provider_from_record("p", {"id": "p", "jwks_url": "https://a.test/", "source": "admin"})
    theirs = provider_from_record("c", {"id": "c", "jwks_url": "https://a.test/"})
    change = provider_admin.remove({"p": mine, "c": theirs}, "p")
    assert change.others == ((b"provider/p", None),)
    with pytest.raises(Conflict):
        provider_admin.remove({"c": theirs}, "c")
    with pytest.raises(NoSuchKey):
        provider_admin.remove({}, "nope")
    with pytest.raises(Conflict, match="exists"):
        provider_admin.add({"c": theirs}, "c", jwks_url="https://a.test/", source="admin")


def test_try_token_gives_the_workers_reason_or_the_claims() -> None:
    provider = provider_from_record("p", {"id": "p", "public_keys": [public_pem(RSA_KEY)],
                                          "audience": ["api"]})
    good = provider_admin.try_token(provider, provider.public_keys,
                                    token(claims(aud="api")), NOW)
    assert good.reason.value == "ok" and good.claims["aud"] == "api"
    bad = provider_admin.try_token(provider, provider.public_keys,
                                   token(claims(aud="other")), NOW)
    assert (bad.reason.value, bad.detail, bad.claims) == ("jwt_invalid", "bad_audience", {})
