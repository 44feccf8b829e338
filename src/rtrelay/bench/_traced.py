"""Run ``rtrelay`` able to trace its heap: each SIGUSR1 writes a ``tracemalloc`` snapshot.

``rtrelay bench --webrtc --trace-memory`` starts the relay under this wrapper (its
``RelayBuild.wrap``) to attribute the relay's memory per call to the lines that allocate
it: the bench signals the relay at its idle baseline, with the calls open and after they
are hung up, and compares the snapshots. Tracing starts at the first signal: traced
from the start, the relay took 20 times as long to import (27 s on a loaded machine),
and what a call allocates is allocated after its baseline anyway. Usage, the wrapped
command line whole::

    python -m rtrelay.bench._traced DIR  python -m rtrelay.cli.main serve …

Snapshots are ``DIR/snapshot-<n>`` (written under another name, then renamed: a file
that exists is complete), after a full collection so only live objects count.
"""

from __future__ import annotations

import gc
import itertools
import signal
import sys
import tracemalloc
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Final

__all__ = ["FRAMES", "SNAPSHOT", "main", "snapshot_path"]

FRAMES: Final = 8
"""Frames kept per allocation: enough to see which relay line a library allocated for."""
SNAPSHOT: Final = "snapshot-{}"
_WRAPPED: Final = ("-m", "rtrelay.cli.main")


def snapshot_path(folder: Path, index: int) -> Path:
    """Where the ``index``-th snapshot (from 0) appears once it is complete."""
    return folder / SNAPSHOT.format(index)


def main(argv: Sequence[str]) -> int:
    """``argv``: the snapshot folder, then ``python -m rtrelay.cli.main ARGS``."""
    if len(argv) < 4 or tuple(argv[2:4]) != _WRAPPED:
        print("usage: python -m rtrelay.bench._traced DIR python -m rtrelay.cli.main ARGS")
        return 2
    folder = Path(argv[0])
    folder.mkdir(parents=True, exist_ok=True)
    count = itertools.count()

    def dump(signum: int, frame: FrameType | None) -> None:
        if not tracemalloc.is_tracing():
            tracemalloc.start(FRAMES)
        index = next(count)
        gc.collect()
        partial = folder / f".{SNAPSHOT.format(index)}"
        tracemalloc.take_snapshot().dump(str(partial))
        partial.rename(snapshot_path(folder, index))

    signal.signal(signal.SIGUSR1, dump)
    from rtrelay.cli.main import main as rtrelay

    return rtrelay(list(argv[4:]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
