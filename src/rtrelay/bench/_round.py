"""One round: ramp N sessions up against one target, measure a fixed window, stop them all.

Only the window counts: frames, bytes, probe round trips, the CPU time of the target,
the provider and the load generator, and the host's steal are read at its two edges, so ramp-up
and teardown (handshakes, closes) stay out of the per-frame figures. Handshake times
are the exception: they are taken during the ramp, where they happen.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any, Final

import aiohttp
import psutil

from rtrelay.bench._hoststat import HostCpu, steal_window
from rtrelay.bench._procs import ResourceMeter
from rtrelay.bench._session import (
    HANDSHAKE_TIMEOUT,
    BenchSession,
    LoadPlan,
    Recorder,
    SessionKind,
    Tally,
)
from rtrelay.bench._target import Target

__all__ = ["Meters", "RoundResult", "run_round"]

SETTLE: Final = 0.5
"""After the last handshake, before the window: lets the ``session.update`` replies pass."""
RSS_SAMPLE: Final = 0.25
STOP_TIMEOUT: Final = 15.0


@dataclass(frozen=True, slots=True)
class Meters:
    """What a round reads CPU and memory from."""

    target: ResourceMeter | None
    provider: ResourceMeter
    loadgen: ResourceMeter


@dataclass(frozen=True, slots=True)
class RoundResult:
    target: str
    sessions: int
    """Sessions started, of every kind."""
    window_s: float
    tally: Tally
    recorder: Recorder
    target_cpu_s: float | None
    provider_cpu_s: float
    loadgen_cpu_s: float
    machine_busy_s: float | None
    """CPU time all processes on the machine used in the window (others' work included)."""
    steal: dict[str, Any]
    """The host's steal in the window (``steal_pct``, ``flagged``): see ``_hoststat``."""
    target_rss_before: int | None
    target_rss_max: int | None


def session_kinds(audio: int, text: int, idle: int) -> list[SessionKind]:
    """Kinds spread evenly over the ramp, so each part of it sees the same mix."""
    total = audio + text + idle
    kinds: list[SessionKind] = []
    counts = {"audio": 0, "text": 0, "idle": 0}
    wanted: dict[SessionKind, int] = {"audio": audio, "text": text, "idle": idle}
    for i in range(total):
        # The kind furthest behind its share so far goes next.
        kind = max(wanted, key=lambda k: wanted[k] * (i + 1) / total - counts[k])
        counts[kind] += 1
        kinds.append(kind)
    return kinds


async def run_round(
    target: Target,
    kinds: list[SessionKind],
    plan: LoadPlan,
    meters: Meters,
    *,
    ramp: float,
    duration: float,
    session: type[BenchSession] = BenchSession,
) -> RoundResult:
    """Run ``kinds`` sessions against ``target`` and measure ``duration`` seconds of them.

    Args:
        session: the protocol they speak (``LiveBenchSession``: GPT-Live).
    """
    loop = asyncio.get_running_loop()
    recorder = Recorder()
    stop = asyncio.Event()
    rss_before = meters.target.read().rss_bytes if meters.target is not None else None
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    async with aiohttp.ClientSession(connector=connector) as http:
        tasks: list[asyncio.Task[None]] = []
        try:
            spacing = ramp / max(1, len(kinds))
            for i, kind in enumerate(kinds):
                one = session(http, target, kind, plan, recorder, stop)
                tasks.append(asyncio.create_task(one.run(), name=f"rtrelay.bench.{i}"))
                await asyncio.sleep(spacing)
            deadline = loop.time() + HANDSHAKE_TIMEOUT + 1
            # Polling one counter that every session's handshake updates.
            while recorder.settled < len(kinds) and loop.time() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
            await asyncio.sleep(SETTLE)

            start = _Edge.read(recorder, meters)
            recorder.measuring = True
            started = loop.time()
            rss_max = await _sample_rss(meters.target, duration)
            recorder.measuring = False
            window = loop.time() - started
            end = _Edge.read(recorder, meters)
        finally:
            stop.set()
            await _finish(tasks)
    return RoundResult(
        target=target.name,
        sessions=len(kinds),
        window_s=window,
        tally=end.tally.minus(start.tally),
        recorder=recorder,
        target_cpu_s=_delta(end.target_cpu, start.target_cpu),
        provider_cpu_s=end.provider_cpu - start.provider_cpu,
        loadgen_cpu_s=end.loadgen_cpu - start.loadgen_cpu,
        machine_busy_s=None
        if end.host is None or start.host is None
        else end.host.busy_s - start.host.busy_s,
        steal=steal_window(start.host, end.host),
        target_rss_before=rss_before,
        target_rss_max=rss_max,
    )


@dataclass(frozen=True, slots=True)
class _Edge:
    tally: Tally
    target_cpu: float | None
    provider_cpu: float
    loadgen_cpu: float
    host: HostCpu | None

    @classmethod
    def read(cls, recorder: Recorder, meters: Meters) -> _Edge:
        return cls(
            recorder.tally.copy(),
            meters.target.read().cpu_s if meters.target is not None else None,
            meters.provider.read().cpu_s,
            meters.loadgen.read().cpu_s,
            HostCpu.read(),
        )


def _delta(end: float | None, start: float | None) -> float | None:
    return None if end is None or start is None else end - start


async def _sample_rss(meter: ResourceMeter | None, duration: float) -> int | None:
    """Sleep through the window, keeping the target's largest RSS seen."""
    loop = asyncio.get_running_loop()
    end = loop.time() + duration
    rss_max: int | None = None
    while (left := end - loop.time()) > 0:
        await asyncio.sleep(min(RSS_SAMPLE, left))
        if meter is not None:
            with contextlib.suppress(psutil.Error):
                rss = meter.read().rss_bytes
                rss_max = rss if rss_max is None else max(rss_max, rss)
    return rss_max


async def _finish(tasks: list[asyncio.Task[None]]) -> None:
    """Let every session close itself; cancel those that cannot within the timeout."""
    if not tasks:
        return
    _, pending = await asyncio.wait(tasks, timeout=STOP_TIMEOUT)
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending)
    for task in tasks:
        if not task.cancelled() and (exc := task.exception()) is not None:
            raise exc
