"""The machine's CPU time from ``/proc/stat``: how busy it was and how much the host stole.

On a shared VM the hypervisor runs other guests on "our" cores; the time a vCPU was
ready to run and was not given a core is ``steal``. A window with much of it measured
a slower machine, not a slower relay (two runs an hour apart put rtrelay at 1.7x and
2.3x nginx), so every measured window reads the first line of ``/proc/stat`` at its
two edges and reports steal as a share of all CPU time in between, flagged above
``STEAL_FLAG_PCT``. Instruction counts (``--instructions``) do not move with steal;
the flag says which CPU and latency figures to distrust.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

__all__ = [
    "PROC_STAT",
    "STEAL_FLAG_PCT",
    "HostCpu",
    "steal_markdown",
    "steal_pct",
    "steal_summary",
    "steal_window",
]

PROC_STAT: Final = Path("/proc/stat")
STEAL_FLAG_PCT: Final = 5.0
"""A window whose steal is above this share of the machine's CPU time is flagged."""

_TICK_S: Final = 1.0 / (os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100)


@dataclass(frozen=True, slots=True)
class HostCpu:
    """CPU seconds so far, summed over all CPUs (``/proc/stat``'s ``cpu`` line).

    ``busy_s`` counts user, nice, system, irq, softirq and steal (guest time is already
    inside user); ``total_s`` adds idle and iowait. ``None`` fields: no ``/proc/stat``.
    """

    busy_s: float
    steal_s: float
    total_s: float

    @classmethod
    def read(cls, path: Path = PROC_STAT) -> HostCpu | None:
        """The ``cpu`` line now, or ``None`` where there is no ``/proc/stat`` (not Linux)."""
        try:
            with path.open("rb") as f:
                line = f.readline()
        except OSError:
            return None
        return cls.parse(line.decode("ascii", "replace"))

    @classmethod
    def parse(cls, line: str) -> HostCpu | None:
        """One ``cpu  user nice system idle iowait irq softirq steal …`` line (in ticks)."""
        fields = line.split()
        if not fields or fields[0] != "cpu" or len(fields) < 5:
            return None
        ticks = [int(v) for v in fields[1:9]]
        ticks += [0] * (8 - len(ticks))  # kernels before 2.6.11 had no steal column
        user, nice, system, idle, iowait, irq, softirq, steal = ticks
        busy = user + nice + system + irq + softirq + steal
        return cls(busy * _TICK_S, steal * _TICK_S, (busy + idle + iowait) * _TICK_S)


def steal_pct(start: HostCpu | None, end: HostCpu | None) -> float | None:
    """Steal between two readings as a percentage of all CPU time then (``None``: unknown)."""
    if start is None or end is None:
        return None
    total = end.total_s - start.total_s
    if total <= 0:
        return 0.0
    return round(100.0 * (end.steal_s - start.steal_s) / total, 2)


def steal_window(start: HostCpu | None, end: HostCpu | None, **where: Any) -> dict[str, Any]:
    """One measured window's steal, flagged above ``STEAL_FLAG_PCT``; ``where`` names it."""
    pct = steal_pct(start, end)
    return {**where, "steal_pct": pct, "flagged": pct is not None and pct > STEAL_FLAG_PCT}


def steal_summary(windows: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Every window's steal, the largest, and how many were flagged (for ``results.json``)."""
    listed = [dict(w) for w in windows]
    known = [w["steal_pct"] for w in listed if w["steal_pct"] is not None]
    return {
        "threshold_pct": STEAL_FLAG_PCT,
        "max_pct": max(known, default=None),
        "flagged": sum(1 for w in listed if w["flagged"]),
        "windows": listed,
    }


_NOT_WHERE: Final = frozenset({"steal_pct", "flagged", "window_s"})


def steal_markdown(summary: Mapping[str, Any] | None) -> str:
    """One line for the results table: the largest steal, and each flagged window by name."""
    if not summary or not summary["windows"]:
        return "Host steal: no measured window."
    if summary["max_pct"] is None:
        return "Host steal: unknown (no /proc/stat)."
    count = len(summary["windows"])
    head = f"Host steal per measured window: max {summary['max_pct']:.1f} % over {count} windows"
    flagged = [w for w in summary["windows"] if w["flagged"]]
    if not flagged:
        return f"{head}; none above {summary['threshold_pct']:g} %."
    named = ", ".join(
        " ".join(str(v) for k, v in w.items() if k not in _NOT_WHERE) + f" {w['steal_pct']:.1f} %"
        for w in flagged
    )
    return (
        f"{head}; **{len(flagged)} above {summary['threshold_pct']:g} %** "
        f"(their CPU and latency figures measured a slower machine): {named}."
    )
