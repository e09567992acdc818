import base64

from workers.auth import tokens


def basic(user: str, password: str = "") -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_query_token_wins_over_everything() -> None:
    assert tokens.api_secret(
        [("p_x", "from-p"), ("token", "from-query")],
        {"x-auth-token": "from-header", "api_key": "from-api-key", "authorization": basic("u")},
    ) == "from-query"


def test_order_after_query_token() -> None:
    headers = {"x-auth-token": "h", "api_key": "a", "authorization": basic("b")}
    assert tokens.api_secret([("p_1", "p")], headers) == "h"
    del headers["x-auth-token"]
    assert tokens.api_secret([("p_1", "p")], headers) == "a"
    del headers["api_key"]
    assert tokens.api_secret([("p_1", "p")], headers) == "p"
    assert tokens.api_secret([], headers) == "b"


def test_empty_values_are_skipped() -> None:
    assert tokens.api_secret([("token", " "), ("p_k", "real")], {"x-auth-token": ""}) == "real"


def test_secret_is_trimmed() -> None:
    assert tokens.api_secret([("token", "  s3cret \n")], {}) == "s3cret"


def test_bearer_is_a_jwt_not_an_api_secret() -> None:
    headers = {"authorization": "Bearer a.b.c"}
    assert (tokens.api_secret([], headers), tokens.bearer_jwt(headers)) == (None, "a.b.c")


def test_bad_basic_auth_is_ignored() -> None:
    assert tokens.api_secret([], {"authorization": "Basic !!notbase64"}) is None
    not_utf8 = "Basic " + base64.b64encode(b"\xff").decode()
    assert tokens.api_secret([], {"authorization": not_utf8}) is None


def test_without_secrets_drops_token_and_p_params() -> None:
    assert tokens.without_secrets([("token", "s"), ("p_a", "s"), ("q", "1")]) == [("q", "1")]


def test_basic_auth_that_is_not_base64_ascii_or_utf8_is_no_credential() -> None:
    from workers.auth.tokens import basic_user

    for value in ("Basic dXNlcjpwYXNz\u00e9", "Basic \u00e9\u00e9\u00e9\u00e9", "Basic //79",
                  "Basic %%%"):
        assert basic_user(value) is None, value
