import shlex

from workers.console import samples


def test_samples_follow_the_secrets_a_key_has() -> None:
    shown = {"client_secret": "c-sec", "server_secret": "s-sec", "access_key": "ak_1",
             "access_secret": "a-sec"}
    got = samples.for_key("http://127.0.0.1:8001", shown, ["*.shop.test"], ["idp"])
    titles = [s.title for s in got]
    assert titles == ["Browser: the Jitsu JS SDK", "Browser key with curl (as a page would "
                      "send it)", "Backend: curl with the server secret",
                      "Signed request: Python (eventguard's client)",
                      "Signed request: shell (openssl)", "With a JWT (events that need one)"]
    assert "key: 'c-sec'" in got[0].code and "https://www.shop.test" in got[1].code
    assert samples.for_key("http://x", {"server_secret": "s"}, [], [])[0].title.startswith(
        "Backend")


def test_a_secret_that_needs_quoting_stays_one_shell_word() -> None:
    [sample] = samples.for_key("http://x", {"server_secret": "a'b $c"}, [], [])
    header = sample.code.splitlines()[1].strip().removesuffix("\\").strip()
    assert shlex.split(header) == ["-H", "X-Auth-Token: a'b $c"]
