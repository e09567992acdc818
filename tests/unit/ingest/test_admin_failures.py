from workers.ingest.admin_failures import AdminFailures


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_an_address_is_braked_after_the_limit_until_its_oldest_failure_ages_out() -> None:
    clock = Clock()
    failures = AdminFailures(limit=3, window_s=60, clock=clock)
    for n in range(1, 4):
        assert failures.wait_s("10.0.0.1") is None
        assert failures.failed("10.0.0.1") == n
        clock.now += 1
    assert failures.wait_s("10.0.0.1") == 57.0  # the first of the three, 3 s ago
    assert failures.wait_s("10.0.0.2") is None  # another address is not braked
    clock.now += 57
    assert failures.wait_s("10.0.0.1") is None
    assert failures.failed("10.0.0.1") == 3  # two still inside the window, and this one


def test_it_remembers_a_bounded_number_of_addresses() -> None:
    failures = AdminFailures(limit=1, window_s=60, clock=Clock(), max_addresses=2)
    for address in ("a", "b", "c"):
        failures.failed(address)
    assert failures.wait_s("a") is None and failures.wait_s("c") == 60.0
