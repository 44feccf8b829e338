"""When to try again: backoff delays and the retry policy, as pure functions."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable, Iterator
from typing import Final

from ._exceptions import (
    APIError,
    NetworkError,
    QuotaExceededError,
    RateLimitError,
    RealtimeError,
    ServerError,
    SessionExpiredError,
    UpstreamError,
)

__all__ = [
    "RETRYABLE_CLOSE_CODES",
    "RetryDecision",
    "RetryPolicy",
    "backoff_delays",
    "default_retry_policy",
]

RETRYABLE_CLOSE_CODES: Final = frozenset({1001, 1006, 1011, 1012, 1013})
"""Closes after which a new connection may succeed (the ``openai`` SDK's list, protocol.md §3)."""


def backoff_delays(
    min_delay: float,
    max_delay: float,
    factor: float,
    rng: random.Random | None = None,
) -> Iterator[float]:
    """Yield the delay before each retry: exponential growth with full jitter.

    Retry ``n`` (from 0) waits a uniformly random time in ``[min_delay, ceiling_n]``
    where ``ceiling_n = min(max_delay, min_delay * factor ** n)``. The jitter spreads
    clients that lost the same relay at the same moment, so they do not all come back
    at once; the floor keeps a dead endpoint from being hammered.

    Args:
        min_delay: first delay and the floor of every delay, in seconds.
        max_delay: cap on the ceiling, in seconds.
        factor: growth of the ceiling per retry (>= 1).
        rng: the source of randomness; pass a seeded ``random.Random`` to reproduce.
    """
    if min_delay < 0 or max_delay < min_delay or factor < 1:
        raise ValueError("need 0 <= min_delay <= max_delay and factor >= 1")
    uniform = (rng or random.Random()).uniform
    ceiling = min_delay
    while True:
        yield uniform(min_delay, ceiling) if ceiling > min_delay else min_delay
        ceiling = min(max_delay, ceiling * factor)


@dataclasses.dataclass(frozen=True, slots=True)
class RetryDecision:
    """What to do after a failure: retry (after ``delay``, or the next backoff delay) or give up."""

    retry: bool
    delay: float | None = None

    @classmethod
    def give_up(cls) -> RetryDecision:
        return _GIVE_UP

    @classmethod
    def backoff(cls) -> RetryDecision:
        """Retry after the next delay of :func:`backoff_delays`."""
        return _BACKOFF

    @classmethod
    def after(cls, seconds: float) -> RetryDecision:
        """Retry after exactly ``seconds`` (for instance a server's ``Retry-After``)."""
        return cls(retry=True, delay=max(0.0, seconds))


_GIVE_UP: Final = RetryDecision(retry=False)
_BACKOFF: Final = RetryDecision(retry=True)

RetryPolicy = Callable[[RealtimeError], RetryDecision]
"""Decides, from the failure, whether a connection should try again."""


def default_retry_policy(error: RealtimeError) -> RetryDecision:
    """Retry what may heal by itself; never retry what needs a person.

    - network failures, provider failures (502/503/504, 45xx, 1011), server restarts
      (500, 1012, 1013, shutting down, 1001) and an expired session: backoff;
    - 429 rate limits: ``Retry-After`` first when the server gave one, else backoff;
    - 401, 403, 404, ``insufficient_quota``, malformed requests and anything else: give up.
    """
    if isinstance(error, QuotaExceededError):
        return RetryDecision.give_up()
    if isinstance(error, RateLimitError):
        if error.retry_after is not None:
            return RetryDecision.after(error.retry_after)
        return RetryDecision.backoff()
    if isinstance(error, NetworkError | UpstreamError | ServerError | SessionExpiredError):
        return RetryDecision.backoff()
    if isinstance(error, APIError) and error.close_code in RETRYABLE_CLOSE_CODES:
        return RetryDecision.backoff()
    return RetryDecision.give_up()
