"""The overview's windows and series, from counter samples: no sockets, no clock."""

from __future__ import annotations

from rtrelay.console.stats import History, Sample, read_sample
from rtrelay.observe.metrics import HANDSHAKE_OUTCOMES, Metrics

SUCCESS = HANDSHAKE_OUTCOMES.index("success")
BAD_KEY = HANDSHAKE_OUTCOMES.index("invalid_api_key")


def sample(at: float, ok: int, bad: int = 0, active: int = 0) -> Sample:
    counts = [0.0] * len(HANDSHAKE_OUTCOMES)
    counts[SUCCESS], counts[BAD_KEY] = ok, bad
    return Sample(at, tuple(counts), active)


def test_success_rate_is_the_counters_increase_over_the_window() -> None:
    history = History(step=10)
    for i in range(0, 61):  # 10 minutes, every 10 s: 1 success per step, a refusal every 2nd
        history.add(sample(i * 10.0, ok=i, bad=i // 2))
    now = sample(600.0, ok=60, bad=30)
    five = history.window(now, 300)
    assert five.seconds == 300
    assert (five.handshakes, five.succeeded) == (45, 30)
    assert five.refusals == {"invalid_api_key": 15}
    assert five.success_rate == 30 / 45


def test_a_window_longer_than_the_relay_has_lived_covers_since_start() -> None:
    history = History(step=10)
    history.add(sample(1000.0, ok=0))
    now = sample(1100.0, ok=4, bad=1)
    day = history.window(now, 86400)
    assert day.seconds == 100
    assert (day.handshakes, day.succeeded) == (5, 4)


def test_no_handshake_has_no_rate() -> None:
    history = History()
    history.add(sample(0.0, ok=7))
    assert history.window(sample(10.0, ok=7), 300).success_rate is None


def test_the_day_window_uses_the_minute_samples_past_the_fine_span() -> None:
    history = History(step=10, fine_span=60, coarse_step=60, coarse_span=86400)
    for i in range(0, 1000):
        history.add(sample(i * 10.0, ok=i))
    now = sample(10_000.0, ok=1000)
    two_hours = history.window(now, 7200)  # from a minute sample: up to a minute short
    assert 7140 <= two_hours.seconds <= 7200
    assert two_hours.handshakes == two_hours.seconds / 10
    assert history.window(now, 30).handshakes == 3


def test_memory_is_bounded_whatever_the_uptime() -> None:
    history = History(step=10, fine_span=3600, coarse_step=60, coarse_span=86400)
    for i in range(100_000):
        history.add(sample(i * 10.0, ok=i))
    assert len(history.series()["t"]) == 360


def test_series_are_per_step_increases_and_the_open_sessions() -> None:
    history = History(step=10)
    history.add(sample(0.0, ok=0, active=0))
    history.add(sample(10.0, ok=3, bad=1, active=2))
    series = history.series(sample(20.0, ok=4, bad=1, active=1))
    assert series == {"t": [10, 20], "succeeded": [3, 1], "refused": [1, 0], "active": [2, 1]}


def test_a_sample_reads_the_prometheus_counters() -> None:
    metrics = Metrics()
    metrics.handshakes.labels("success").inc(3)
    metrics.handshakes.labels("rate_limit_exceeded").inc()
    metrics.active_sessions.inc(2)
    s = read_sample(metrics, 5.0)
    assert s.outcomes[SUCCESS] == 3
    assert s.outcomes[HANDSHAKE_OUTCOMES.index("rate_limit_exceeded")] == 1
    assert sum(s.outcomes) == 4
    assert s.active == 2
