"""The overview's figures over time, read from the Prometheus series the relay exports.

The connection success rate on the console must be the figure an operator's
Prometheus computes (``rtrelay_handshakes_total{outcome="success"}`` over all
outcomes), so it is read from those very counters, never counted a second time.
Counters only grow; a rate over a window is the difference between now and a
sample taken at the window's start. ``History`` keeps one sample every 10 s for an
hour (the charts, the 5-minute figures) and one a minute for a day (the 24-hour
figures): about 1,800 small tuples, whatever the traffic.

With ``--workers N`` the counters are read from ``PROMETHEUS_MULTIPROC_DIR``, summed
over every worker, as ``/metrics`` shows them: each worker's console shows the same.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

from prometheus_client import CollectorRegistry
from prometheus_client import multiprocess as prom_multiprocess
from prometheus_client.metrics_core import Metric

from rtrelay.observe.metrics import HANDSHAKE_OUTCOMES, Metrics

__all__ = ["SAMPLE_SECONDS", "History", "Sample", "Window", "read_sample"]

SAMPLE_SECONDS: Final = 10.0
_SUCCESS: Final = HANDSHAKE_OUTCOMES.index("success")


@dataclass(frozen=True, slots=True)
class Sample:
    """The counters at one moment: handshakes by outcome, and sessions open."""

    at: float
    """Unix time."""
    outcomes: tuple[float, ...]
    """``rtrelay_handshakes_total`` per outcome, in ``HANDSHAKE_OUTCOMES`` order."""
    active: float
    """``rtrelay_active_sessions``."""


@dataclass(frozen=True, slots=True)
class Window:
    """What happened between two samples."""

    seconds: float
    """How long the window really is: shorter than asked while the relay is younger."""
    handshakes: int
    succeeded: int
    refusals: dict[str, int]
    """Refused handshakes by error code, the codes that occurred only."""

    @property
    def success_rate(self) -> float | None:
        return None if self.handshakes == 0 else self.succeeded / self.handshakes


def _families(metrics: Metrics) -> Iterable[Metric]:
    if metrics.multiprocess:
        registry = CollectorRegistry()
        prom_multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return registry.collect()
    return [*metrics.handshakes.collect(), *metrics.active_sessions.collect()]


def read_sample(metrics: Metrics, at: float) -> Sample:
    """The handshake counters and the active-sessions gauge now (all workers summed)."""
    counts = dict.fromkeys(HANDSHAKE_OUTCOMES, 0.0)
    active = 0.0
    for family in _families(metrics):
        if family.name == "rtrelay_handshakes":
            for s in family.samples:
                outcome = s.labels.get("outcome")
                if s.name == "rtrelay_handshakes_total" and outcome in counts:
                    counts[outcome] += s.value
        elif family.name == "rtrelay_active_sessions":
            active += sum(s.value for s in family.samples)
    return Sample(at, tuple(counts[o] for o in HANDSHAKE_OUTCOMES), active)


def _between(before: Sample, after: Sample) -> Window:
    deltas = [max(0, round(a - b)) for a, b in zip(after.outcomes, before.outcomes, strict=True)]
    refusals = {
        outcome: n
        for outcome, n in zip(HANDSHAKE_OUTCOMES, deltas, strict=True)
        if n and outcome != "success"
    }
    return Window(
        seconds=max(0.0, after.at - before.at),
        handshakes=sum(deltas),
        succeeded=deltas[_SUCCESS],
        refusals=dict(sorted(refusals.items(), key=lambda kv: (-kv[1], kv[0]))),
    )


class History:
    """Samples for windows up to a day, bounded in memory.

    Args:
        step: seconds between fine samples (``add`` is called this often).
        fine_span: seconds of fine samples kept (the charts).
        coarse_step: seconds between the samples kept for long windows.
        coarse_span: the longest window answered.
    """

    def __init__(
        self,
        *,
        step: float = SAMPLE_SECONDS,
        fine_span: float = 3600.0,
        coarse_step: float = 60.0,
        coarse_span: float = 86400.0,
    ) -> None:
        self.step = step
        self._fine_span = fine_span
        self._coarse_step = coarse_step
        self._fine: deque[Sample] = deque(maxlen=int(fine_span / step) + 1)
        self._coarse: deque[Sample] = deque(maxlen=int(coarse_span / coarse_step) + 1)

    def add(self, sample: Sample) -> None:
        self._fine.append(sample)
        if not self._coarse or sample.at - self._coarse[-1].at >= self._coarse_step:
            self._coarse.append(sample)

    def window(self, now: Sample, seconds: float) -> Window:
        """What happened in the last ``seconds`` before ``now`` (as far back as known)."""
        start = now.at - seconds
        pool = self._fine if seconds <= self._fine_span else self._coarse
        baseline = next((s for s in pool if s.at >= start), pool[-1] if pool else now)
        return _between(baseline if baseline.at <= now.at else now, now)

    def series(self, now: Sample | None = None) -> dict[str, list[Any]]:
        """For the charts: per fine step, handshakes that succeeded and that were refused,
        and the sessions open at its end (Unix seconds in ``t``)."""
        samples = list(self._fine)
        if now is not None and (not samples or now.at > samples[-1].at):
            samples.append(now)
        out: dict[str, list[Any]] = {"t": [], "succeeded": [], "refused": [], "active": []}
        for before, after in itertools.pairwise(samples):
            w = _between(before, after)
            out["t"].append(round(after.at))
            out["succeeded"].append(w.succeeded)
            out["refused"].append(w.handshakes - w.succeeded)
            out["active"].append(round(after.active))
        return out
