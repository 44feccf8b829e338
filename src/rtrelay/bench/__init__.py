"""``rtrelay bench``: realtime audio sessions through rtrelay, nginx and LiteLLM vs direct.

Usage::

    options = BenchOptions(sessions=100, targets=("direct", "rtrelay", "nginx"))
    doc = uvloop.run(run_bench(options, workdir=Path("bench-results/now/logs")))
    write_results(doc, Path("bench-results/now"))
    print(markdown(doc))

See docs/bench.md for what each figure means and how latency is measured.
"""

from __future__ import annotations

from rtrelay.bench._options import ALL_TARGETS, DEFAULT_TARGETS, BenchOptions, TargetName, quick
from rtrelay.bench._output import write_results
from rtrelay.bench._report import goals, markdown, summary_line
from rtrelay.bench._runner import run_bench

__all__ = [
    "ALL_TARGETS",
    "DEFAULT_TARGETS",
    "BenchOptions",
    "TargetName",
    "goals",
    "markdown",
    "quick",
    "run_bench",
    "summary_line",
    "write_results",
]

for _public in (BenchOptions, goals, markdown, quick, run_bench, summary_line, write_results):
    _public.__module__ = __name__
del _public
