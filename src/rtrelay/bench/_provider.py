"""The simulated provider every target relays to, in a process of its own (``rtrelay mock``)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from rtrelay.bench._procs import Child, Children
from rtrelay.bench._target import MODEL, Target

__all__ = ["START_TIMEOUT", "Provider", "rtrelay_argv", "start_provider"]

START_TIMEOUT: Final = 30.0
# The provider does not check keys; direct sessions still send one, as an SDK would.
_DIRECT_KEY: Final = "sk-bench-direct"


@dataclass(frozen=True, slots=True)
class Provider:
    """The running simulated provider: its base URL, its process, and the direct target."""

    base_url: str
    pid: int
    direct: Target


def rtrelay_argv(*args: str) -> list[str]:
    """``rtrelay <args>`` run by this interpreter, so the child uses the same install."""
    return [sys.executable, "-m", "rtrelay.cli.main", *args]


async def start_provider(
    children: Children,
    workdir: Path,
    *,
    reply_audio_ms: int,
    chunk_ms: int,
    pacing: float = 1.0,
    extra: Sequence[str] = (),
    wrap: Sequence[str] = (),
) -> Provider:
    """Start ``rtrelay mock`` on an ephemeral port, replies paced in real time by default.

    Args:
        pacing: reply speed relative to real time (0: as fast as possible).
        extra: more ``rtrelay mock`` options (fault injection, for the soak).
        wrap: a command the provider runs under (``chrt``/``taskset``, for
            ``--instructions``).
    """
    child = children.add(
        Child(
            "simulated provider",
            [
                *wrap,
                sys.executable,
                "-m",
                "rtrelay.bench._quiet",
                "mock",
                "--port",
                "0",
                "--pacing",
                str(pacing),
                "--reply-audio-ms",
                str(reply_audio_ms),
                "--audio-chunk-ms",
                str(chunk_ms),
                *extra,
            ],
            log_path=workdir / "provider.log",
        )
    )
    child.start()
    match = await child.wait_for(r"listening: (ws://\S+?/v1)/realtime", START_TIMEOUT)
    base = match.group(1)
    direct = Target(
        "direct",
        f"{base}/realtime?model={MODEL}",
        {"Authorization": f"Bearer {_DIRECT_KEY}"},
        pid=None,
    )
    return Provider(base, child.pid, direct)
