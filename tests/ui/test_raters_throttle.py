"""The login throttle's sliding windows, on a clock the test advances (no sleeping)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from ui.raters_throttle import LoginThrottle


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_name_limit_window_and_retry_after() -> None:
    clock = Clock()
    throttle = LoginThrottle(window_s=60, failures_per_name=3, failures_per_address=100, clock=clock)
    for step in range(3):
        clock.now = 1000.0 + 10 * step  # failures at 1000, 1010, 1020
        assert throttle.admit("ann", "10.0.0.1") == 0
    assert throttle.admit("ann", "10.0.0.2") == 40  # another address: the name is still locked
    assert throttle.admit("bob", "10.0.0.1") == 0  # another name from the same address is not
    clock.now = 1059.5
    assert throttle.admit("ann", "10.0.0.1") == 1  # 0.5 s left, rounded up
    clock.now = 1060.0  # the failure at 1000 has left the window
    assert throttle.admit("ann", "10.0.0.1") == 0
    assert throttle.admit("ann", "10.0.0.1") == 10  # at the limit again until 1010 expires


def test_address_limit_spans_names_and_success_withdraws() -> None:
    clock = Clock()
    throttle = LoginThrottle(window_s=30, failures_per_name=5, failures_per_address=4, clock=clock)
    for name in ("a", "b", "c"):
        assert throttle.admit(name, "1.2.3.4") == 0
    assert throttle.admit("d", "1.2.3.4") == 0
    throttle.succeeded("d", "1.2.3.4")  # d signed in: its attempt no longer counts
    assert throttle.admit("e", "1.2.3.4") == 0
    assert throttle.admit("f", "1.2.3.4") == 30  # 4 failures from this address
    assert throttle.admit("f", "5.6.7.8") == 0


def test_success_clears_the_names_failures() -> None:
    clock = Clock()
    throttle = LoginThrottle(window_s=60, failures_per_name=2, failures_per_address=100, clock=clock)
    assert throttle.admit("ann", "x") == 0
    assert throttle.admit("ann", "x") == 0
    throttle.succeeded("ann", "x")
    assert throttle.admit("ann", "x") == 0 and throttle.admit("ann", "x") == 0
    assert throttle.admit("ann", "x") > 0


def test_concurrent_attempts_cannot_pass_the_limit_together() -> None:
    throttle = LoginThrottle(window_s=60, failures_per_name=5, failures_per_address=1000)
    with ThreadPoolExecutor(max_workers=16) as pool:
        waits = list(pool.map(lambda _: throttle.admit("target", "1.1.1.1"), range(64)))
    assert waits.count(0) == 5


def test_memory_is_bounded() -> None:
    clock = Clock()
    throttle = LoginThrottle(
        window_s=60, failures_per_name=1, failures_per_address=10**9, clock=clock, max_keys=100
    )
    for i in range(1000):
        throttle.admit(f"name-{i}", "one-address")
    assert len(throttle._failures) <= 100
    assert throttle.admit("name-999", "other") > 0  # recent failures are kept ...
    assert throttle.admit("name-0", "other") == 0  # ... the least recent were forgotten


def test_bad_limits_are_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        LoginThrottle(window_s=0, failures_per_name=1, failures_per_address=1)
