"""Running ``rtrelay bench`` as a user does, for the end-to-end bench tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson

__all__ = ["assert_sessions_talked", "run_bench_cli"]


def run_bench_cli(out: Path, *args: str, timeout: float = 75) -> tuple[dict[str, Any], str]:
    """``rtrelay bench ARGS --out OUT`` in a child; its ``results.json`` and stdout."""
    done = subprocess.run(
        [sys.executable, "-m", "rtrelay.cli.main", "bench", *args, "--out", str(out)],
        capture_output=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-3000:]
    doc: dict[str, Any] = orjson.loads((out / "results.json").read_bytes())
    return doc, done.stdout.decode()


def assert_sessions_talked(figures: dict[str, Any], *, probes: int) -> None:
    """A target's main-run figures: no session failed, audio and replies both ways, at
    least ``probes`` probes answered, percentiles in order."""
    assert figures["sessions_failed"] == 0
    assert figures["connect_failures"] == {} and figures["dropped_sessions"] == {}
    assert figures["error_events"] == {}
    assert figures["frames_sent"] > 0 and figures["frames_received"] > 0
    assert figures["bytes_sent"] > figures["frames_sent"]
    assert figures["audio_deltas"] > 0 and figures["responses"] > 0
    rtt, handshake = figures["rtt_ms"], figures["handshake_ms"]
    assert rtt["count"] > probes
    assert 0 <= rtt["p50"] <= rtt["p99"] <= rtt["max"]
    assert 0 < handshake["p50"] <= handshake["p99"]
