"""Where a relay's memory per call goes: ``tracemalloc`` snapshots compared, per call.

Three snapshots of the traced relay (``_traced``): idle, with the calls open, after
their hang-up. The traced heap between them, divided by the calls, is the Python memory
a call holds (RSS also counts the allocator's slack and C libraries' own memory), and
the lines that grew most say who holds it: by the allocating line (often inside a
library), and by the innermost rtrelay line on the allocation's stack (the relay code
that asked for it).
"""

from __future__ import annotations

import tracemalloc
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

__all__ = ["TOP", "heap_figures"]

TOP: Final = 10
_KB: Final = 1024
_OWN: Final = "/rtrelay/"
_IGNORED: Final = (tracemalloc.__file__, "<frozen importlib._bootstrap>", "*/_traced.py")


def heap_figures(snapshots: Sequence[Path], calls: int) -> dict[str, Any]:
    """The traced heap per call with ``calls`` open and after hang-up, and its top lines.

    Args:
        snapshots: idle, open and after hang-up, in that order.
    """
    idle, open_, after = (_load(p) for p in snapshots)
    return {
        "traced_kb_per_call": _per_call(_total(open_) - _total(idle), calls),
        "traced_kb_per_call_after_hangup": _per_call(_total(after) - _total(idle), calls),
        "top_lines": _top(open_.compare_to(idle, "lineno"), calls),
        "top_rtrelay_lines": _top_own(open_.compare_to(idle, "traceback"), calls),
        "top_lines_after_hangup": _top(after.compare_to(idle, "lineno"), calls),
    }


def _load(path: Path) -> tracemalloc.Snapshot:
    snapshot = tracemalloc.Snapshot.load(str(path))
    return snapshot.filter_traces([tracemalloc.Filter(False, f) for f in _IGNORED])


def _total(snapshot: tracemalloc.Snapshot) -> int:
    return sum(stat.size for stat in snapshot.statistics("filename"))


def _per_call(size: int, calls: int) -> float:
    return round(size / calls / _KB, 1)


def _where(frame: tracemalloc.Frame) -> str:
    name = frame.filename
    for marker in ("site-packages/", "/src/", "/lib/python"):
        if marker in name:
            name = name.split(marker, 1)[1]
            break
    return f"{name}:{frame.lineno}"


def _top(diffs: list[tracemalloc.StatisticDiff], calls: int) -> list[dict[str, Any]]:
    return [
        {
            "where": _where(d.traceback[-1]),
            "kb_per_call": _per_call(d.size_diff, calls),
            "blocks_per_call": round(d.count_diff / calls, 1),
        }
        for d in sorted(diffs, key=lambda d: d.size_diff, reverse=True)[:TOP]
        if d.size_diff > 0
    ]


def _top_own(diffs: list[tracemalloc.StatisticDiff], calls: int) -> list[dict[str, Any]]:
    """Growth summed by the innermost rtrelay frame of each allocation's stack."""
    size: defaultdict[str, int] = defaultdict(int)
    count: defaultdict[str, int] = defaultdict(int)
    for d in diffs:
        # Frames run oldest first: the innermost rtrelay one is the last that matches.
        own = next((f for f in reversed(d.traceback) if _OWN in f.filename), d.traceback[-1])
        where = _where(own)
        size[where] += d.size_diff
        count[where] += d.count_diff
    ranked = sorted(size, key=size.__getitem__, reverse=True)[:TOP]
    return [
        {
            "where": where,
            "kb_per_call": _per_call(size[where], calls),
            "blocks_per_call": round(count[where] / calls, 1),
        }
        for where in ranked
        if size[where] > 0
    ]
