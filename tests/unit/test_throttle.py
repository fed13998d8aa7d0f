"""The failed-authentication throttle: per client, a sliding minute, bounded memory."""

from __future__ import annotations

from producers.api.throttle import FailureThrottle, client_key


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_client_may_fail_up_to_the_limit_then_waits_until_its_oldest_failure_leaves_the_minute() -> None:
    clock = Clock()
    throttle = FailureThrottle(3, clock=clock)
    assert [throttle.failed("198.51.100.7") for _ in range(2)] == [False, False]
    assert throttle.retry_after("198.51.100.7") is None
    clock.now += 10
    assert throttle.failed("198.51.100.7") is True  # the third: the limit is reached
    clock.now += 0.5
    assert throttle.retry_after("198.51.100.7") == 50  # the first failure leaves the window at +60
    assert throttle.retry_after("203.0.113.9") is None  # others are not affected
    clock.now += 49.4
    assert throttle.retry_after("198.51.100.7") == 1
    clock.now += 0.2
    assert throttle.retry_after("198.51.100.7") is None  # the first two are out of the window
    assert throttle.failed("198.51.100.7") is False  # one in the window, plus this one
    assert throttle.failed("198.51.100.7") is True


def test_memory_is_bounded_per_client_and_in_clients() -> None:
    clock = Clock()
    throttle = FailureThrottle(5, max_clients=100, clock=clock)
    for _ in range(10_000):
        throttle.failed("198.51.100.7")
    assert len(throttle._failures["198.51.100.7"]) == 5
    for i in range(1000):
        throttle.failed(f"10.0.{i // 256}.{i % 256}")
    assert throttle.clients() == 100
    assert throttle.retry_after("198.51.100.7") is None  # the least recent is forgotten first


def test_ipv6_clients_count_per_64_block() -> None:
    assert client_key("2001:db8:1:2:aaaa::1") == client_key("2001:db8:1:2:bbbb::9") == "2001:db8:1:2::/64"
    assert client_key("2001:db8:1:3::1") != client_key("2001:db8:1:2::1")
    assert client_key("198.51.100.7") == "198.51.100.7"
    assert client_key("testclient") == "testclient"
    throttle = FailureThrottle(2, clock=Clock())
    throttle.failed("2001:db8:1:2::1")
    throttle.failed("2001:db8:1:2::2")
    assert throttle.retry_after("2001:db8:1:2::3") is not None
