"""Keep the harness's own garbage-collector pauses out of the measurements.

A full collection in a process holding aiohttp and its imports takes tens of
milliseconds (measured: 80-110 ms in the simulated provider), which would show up as
latency spikes of every target alike and blur the p99/p999 differences between them.
Freezing what exists after start-up (``gc.freeze()``) leaves only per-session objects
for the collector. This is applied to the load generator and the simulated provider
(``python -m rtrelay.bench._quiet mock ...``), never to a target being measured.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Sequence

__all__ = ["freeze_startup", "main"]


def freeze_startup() -> None:
    """Collect once, then move every object alive now out of the collector's reach."""
    gc.collect()
    gc.freeze()


def main(argv: Sequence[str]) -> int:
    """``rtrelay <argv>`` with its start-up objects frozen."""
    from rtrelay.cli import main as cli

    parser = cli.build_parser()  # imports the subcommand's modules
    args = parser.parse_args(argv)
    freeze_startup()
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
