from workers.console.sessions import Sessions, csrf_ok


def test_a_session_ends_after_inactivity_not_while_used() -> None:
    sessions = Sessions(idle_s=60)
    cookie, session = sessions.start(now=0)
    assert sessions.get(cookie, now=50) is session
    assert sessions.get(cookie, now=100) is session  # 50 s after the last request
    assert sessions.get(cookie, now=161) is None
    assert sessions.get(cookie, now=162) is None and len(sessions) == 0


def test_sign_out_ends_it_and_a_forged_cookie_is_nobody() -> None:
    sessions = Sessions(idle_s=60)
    cookie, _ = sessions.start(now=0)
    assert sessions.get("forged", now=1) is None and sessions.get(None, now=1) is None
    sessions.end(cookie)
    assert sessions.get(cookie, now=1) is None


def test_only_digests_are_kept_and_memory_is_bounded() -> None:
    sessions = Sessions(idle_s=60, max_sessions=3)
    cookies = [sessions.start(now=n)[0] for n in range(5)]
    assert len(sessions) == 3
    assert [sessions.get(c, now=5) is not None for c in cookies] == [False, False, True, True,
                                                                     True]
    assert not any(c in repr(vars(sessions)) for c in cookies)


def test_csrf_tokens_are_per_session() -> None:
    sessions = Sessions(idle_s=60)
    _, one = sessions.start(now=0)
    _, two = sessions.start(now=0)
    assert csrf_ok(one, one.csrf) and not csrf_ok(one, two.csrf)
    assert not csrf_ok(one, None) and not csrf_ok(one, "")
