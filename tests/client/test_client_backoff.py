"""Backoff delays and the default retry policy: pure functions, no sockets, no sleeps."""

from __future__ import annotations

import itertools
import random

import pytest

from rtrelay.client import (
    APIError,
    AuthenticationError,
    BadRequestError,
    ConnectionClosedError,
    NetworkError,
    NotFoundError,
    PermissionDeniedError,
    QuotaExceededError,
    RateLimitError,
    RealtimeError,
    RetryDecision,
    ServerError,
    SessionExpiredError,
    UpstreamError,
    backoff_delays,
    default_retry_policy,
)


def test_first_delay_is_the_minimum_and_ceilings_grow_to_the_maximum() -> None:
    delays = list(itertools.islice(backoff_delays(1.0, 10.0, 2.0, random.Random(1)), 12))
    assert delays[0] == 1.0
    ceilings = [min(10.0, 1.0 * 2.0**n) for n in range(12)]
    for delay, ceiling in zip(delays, ceilings, strict=True):
        assert 1.0 <= delay <= ceiling


def test_delays_are_jittered_and_reproducible_with_a_seed() -> None:
    first = list(itertools.islice(backoff_delays(0.5, 30.0, 1.5, random.Random(42)), 20))
    again = list(itertools.islice(backoff_delays(0.5, 30.0, 1.5, random.Random(42)), 20))
    other = list(itertools.islice(backoff_delays(0.5, 30.0, 1.5, random.Random(43)), 20))
    assert first == again
    assert first != other
    assert len(set(first[5:])) == 15  # full jitter: no two late delays alike


def test_a_factor_of_one_gives_a_constant_delay() -> None:
    assert list(itertools.islice(backoff_delays(0.2, 5.0, 1.0), 5)) == [0.2] * 5


@pytest.mark.parametrize(("low", "high", "factor"), [(-1, 1, 2), (2, 1, 2), (1, 2, 0.5)])
def test_nonsense_parameters_are_rejected(low: float, high: float, factor: float) -> None:
    with pytest.raises(ValueError, match="min_delay"):
        next(backoff_delays(low, high, factor))


@pytest.mark.parametrize(
    ("error", "decision"),
    [
        (NetworkError("refused"), RetryDecision.backoff()),
        (UpstreamError("502", status=502), RetryDecision.backoff()),
        (UpstreamError("1011", close_code=1011), RetryDecision.backoff()),
        (ServerError("1012", close_code=1012), RetryDecision.backoff()),
        (ServerError("1013", close_code=1013), RetryDecision.backoff()),
        (SessionExpiredError("expired", close_code=1001), RetryDecision.backoff()),
        (RateLimitError("429", status=429, retry_after=3), RetryDecision.after(3)),
        (RateLimitError("429", status=429), RetryDecision.backoff()),
        (QuotaExceededError("quota", status=429, retry_after=3), RetryDecision.give_up()),
        (AuthenticationError("401", status=401), RetryDecision.give_up()),
        (PermissionDeniedError("403", status=403), RetryDecision.give_up()),
        (NotFoundError("404", status=404), RetryDecision.give_up()),
        (BadRequestError("400", status=400), RetryDecision.give_up()),
        (ConnectionClosedError("1008", close_code=1008), RetryDecision.give_up()),
        (ConnectionClosedError("1013", close_code=1013), RetryDecision.backoff()),
        (RealtimeError("a bug"), RetryDecision.give_up()),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, Exception) else "",
)
def test_default_policy(error: RealtimeError, decision: RetryDecision) -> None:
    assert default_retry_policy(error) == decision


def test_retry_after_never_negative() -> None:
    assert RetryDecision.after(-5) == RetryDecision(retry=True, delay=0.0)


def test_quota_is_not_a_rate_limit() -> None:
    # Code that retries rate limits must not loop on a spent budget.
    assert not issubclass(QuotaExceededError, RateLimitError)
    assert issubclass(QuotaExceededError, APIError)
