"""The circuit breaker with a fake clock and seeded randomness: no sockets, no sleeps."""

from __future__ import annotations

import random
import statistics

import pytest

from rtrelay.route.breaker import (
    BreakerPolicy,
    CircuitBreaker,
    CircuitState,
    full_jitter_cooldown,
)

POLICY = BreakerPolicy(failure_threshold=3, base_cooldown=1.0, max_cooldown=10.0)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def breaker(clock: FakeClock, rng: float | random.Random = 1.0) -> CircuitBreaker:
    """``rng=1.0`` draws the top of the jitter range, so each cooldown *is* the cap."""
    draw = rng.random if isinstance(rng, random.Random) else (lambda: rng)
    return CircuitBreaker(policy=POLICY, clock=clock, rng=draw)


def fail(b: CircuitBreaker, times: int = 1) -> None:
    for _ in range(times):
        b.record_failure("timeout: no handshake answer")


def test_opens_after_threshold_consecutive_failures() -> None:
    b = breaker(FakeClock())
    fail(b, 2)
    assert b.state is CircuitState.CLOSED and b.allow()
    fail(b)
    assert b.state is CircuitState.OPEN
    assert not b.allow()
    assert b.last_error == "timeout: no handshake answer"


def test_a_success_resets_the_consecutive_count() -> None:
    b = breaker(FakeClock())
    fail(b, 2)
    b.record_success(0.01)
    fail(b, 2)
    assert b.state is CircuitState.CLOSED
    assert b.consecutive_failures == 2


def test_trip_opens_at_once() -> None:
    b = breaker(FakeClock())
    b.record_failure("refused:401: HTTP 401", trip=True)
    assert b.state is CircuitState.OPEN and not b.allow()


def test_open_circuit_is_skipped_until_the_cooldown_ends() -> None:
    clock = FakeClock()
    b = breaker(clock)
    fail(b, 3)
    assert b.retry_after() == pytest.approx(1.0)
    clock.advance(0.5)
    assert b.state is CircuitState.OPEN and not b.allow()
    assert b.retry_after() == pytest.approx(0.5)
    clock.advance(0.5)
    assert b.state is CircuitState.HALF_OPEN
    assert b.retry_after() == 0.0


def test_half_open_lets_exactly_one_trial_through() -> None:
    clock = FakeClock()
    b = breaker(clock)
    fail(b, 3)
    clock.advance(1.0)
    assert b.allow()
    assert not b.allow()
    assert not b.allow()
    b.release_trial()  # the trial's client left before a verdict
    assert b.allow()
    assert not b.allow()


def test_trial_success_closes_and_forgets_the_openings() -> None:
    clock = FakeClock()
    b = breaker(clock)
    fail(b, 3)
    clock.advance(1.0)
    assert b.allow()
    b.record_success(0.02)
    assert b.state is CircuitState.CLOSED
    assert b.allow() and b.allow()
    assert (b.openings, b.consecutive_failures) == (0, 0)
    fail(b, 3)  # a later outage starts again from the base cooldown
    assert b.retry_after() == pytest.approx(1.0)


def test_trial_failure_reopens_with_a_longer_cap_up_to_the_max() -> None:
    clock = FakeClock()
    b = breaker(clock)
    fail(b, 3)
    caps = [b.retry_after()]
    for _ in range(6):
        clock.advance(caps[-1])
        assert b.state is CircuitState.HALF_OPEN
        assert b.allow()
        fail(b)  # one failed trial is enough to re-open
        assert b.state is CircuitState.OPEN
        caps.append(b.retry_after())
    assert caps == pytest.approx([1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0])


def test_failures_of_dials_started_before_the_opening_do_not_stretch_the_cooldown() -> None:
    # Ten sessions dialing a dead provider at once all fail together: that is one
    # opening, not ten (which would make the next cooldown 2**9 times longer).
    clock = FakeClock()
    b = breaker(clock)
    fail(b, 10)
    assert b.openings == 1
    assert b.retry_after() == pytest.approx(1.0)
    b.record_failure("refused:401: HTTP 401", trip=True)
    assert b.openings == 1


def test_full_jitter_draws_are_uniform_over_zero_to_cap() -> None:
    rng = random.Random(20240501)
    for openings, cap in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (5, 10.0), (9, 10.0)]:
        draws = [full_jitter_cooldown(POLICY, openings, rng.random) for _ in range(4000)]
        assert all(0.0 <= d <= cap for d in draws)
        assert statistics.fmean(draws) == pytest.approx(cap / 2, rel=0.06)
        assert min(draws) < 0.02 * cap and max(draws) > 0.98 * cap  # spread, not a constant
        below_half = sum(d < cap / 2 for d in draws) / len(draws)
        assert 0.45 < below_half < 0.55


def test_breaker_cooldowns_are_jittered_and_grow_with_each_reopening() -> None:
    # Many breakers driven through the same outage: their cooldowns differ (jitter),
    # and the mean doubles with each re-opening until max_cooldown.
    rng = random.Random(7)
    means = []
    for reopenings in range(6):
        samples = []
        for _ in range(800):
            clock = FakeClock()
            b = breaker(clock, rng)
            fail(b, 3)
            for _ in range(reopenings):
                clock.advance(b.retry_after())
                assert b.allow()
                fail(b)
            samples.append(b.retry_after())
        cap = min(POLICY.max_cooldown, POLICY.base_cooldown * 2**reopenings)
        assert all(0.0 <= s <= cap for s in samples)
        assert len(set(samples)) > 700
        means.append(statistics.fmean(samples))
        assert means[-1] == pytest.approx(cap / 2, rel=0.1)
    assert means[0] < means[1] < means[2] < means[3]
    assert means[4] == pytest.approx(means[5], rel=0.1)  # both at the max cap


def test_success_rate_and_latency_quantiles() -> None:
    b = breaker(FakeClock())
    assert b.success_rate() is None and b.latency_quantile(0.5) is None
    for ms in range(1, 101):
        b.record_success(ms / 1000)
    assert b.success_rate() == 1.0
    fail(b, 25)  # the window keeps the last 100 outcomes
    assert b.success_rate() == pytest.approx(0.75)
    assert b.latency_quantile(0.5) == pytest.approx(0.051)
    assert b.latency_quantile(0.99) == pytest.approx(0.1)
