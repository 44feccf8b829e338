"""Per-channel circuit breaker and health figures.

Consecutive failures open the circuit for a cooldown that grows exponentially
with each re-opening and is drawn with full jitter, so a fleet of relays does
not retry a sick provider in lock-step. After the cooldown one trial session is
let through (half-open); its success closes the circuit, its failure re-opens it.
"""

from __future__ import annotations

import enum
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["BreakerPolicy", "CircuitBreaker", "CircuitState", "full_jitter_cooldown"]


class CircuitState(enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True, kw_only=True)
class BreakerPolicy:
    failure_threshold: int = 3
    base_cooldown: float = 1.0
    max_cooldown: float = 60.0


def full_jitter_cooldown(policy: BreakerPolicy, openings: int, rng: Callable[[], float]) -> float:
    """Uniform in [0, min(max, base * 2**(openings-1))] ("full jitter")."""
    cap = min(policy.max_cooldown, policy.base_cooldown * 2 ** max(openings - 1, 0))
    return float(rng() * cap)


@dataclass(slots=True)
class CircuitBreaker:
    policy: BreakerPolicy = field(default_factory=BreakerPolicy)
    clock: Callable[[], float] = time.monotonic
    rng: Callable[[], float] = random.random
    consecutive_failures: int = 0
    openings: int = 0
    open_until: float = 0.0
    trial_in_flight: bool = False
    _opened: bool = False
    outcomes: deque[bool] = field(default_factory=lambda: deque(maxlen=100))
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=500))
    last_error: str | None = None

    @property
    def state(self) -> CircuitState:
        if not self._opened:
            return CircuitState.CLOSED
        if self.clock() < self.open_until:
            return CircuitState.OPEN
        return CircuitState.HALF_OPEN

    def allow(self) -> bool:
        """Whether a dial may go to this channel now; takes the half-open trial slot."""
        state = self.state
        if state is CircuitState.CLOSED:
            return True
        if state is CircuitState.HALF_OPEN and not self.trial_in_flight:
            self.trial_in_flight = True
            return True
        return False

    def retry_after(self) -> float:
        return max(0.0, self.open_until - self.clock())

    def record_success(self, latency: float) -> None:
        self.outcomes.append(True)
        self.latencies.append(latency)
        self.consecutive_failures = 0
        self.openings = 0
        self.trial_in_flight = False
        self._opened = False

    def record_failure(self, error: str, *, trip: bool = False) -> None:
        """Count a failure; ``trip`` opens the circuit at once (a misconfigured channel)."""
        self.outcomes.append(False)
        self.last_error = error
        self.consecutive_failures += 1
        was_trial = self.trial_in_flight
        self.trial_in_flight = False
        # Dials that began before the circuit opened fail after it did; they belong to
        # the same opening and must not push the cooldown up another step.
        should_open = trip or self.consecutive_failures >= self.policy.failure_threshold
        if was_trial or (should_open and not self._opened):
            self.openings += 1
            self._opened = True
            self.open_until = self.clock() + full_jitter_cooldown(
                self.policy, self.openings, self.rng
            )

    def release_trial(self) -> None:
        """A half-open trial that ended without a verdict (e.g. the client left)."""
        self.trial_in_flight = False

    def success_rate(self) -> float | None:
        if not self.outcomes:
            return None
        return sum(self.outcomes) / len(self.outcomes)

    def latency_quantile(self, q: float) -> float | None:
        if not self.latencies:
            return None
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
