"""``rtrelay bench --instructions``: instructions per forwarded frame, a cost noise cannot move.

Each target (rtrelay, rtrelay-core, nginx, and ``baseline`` with ``--baseline-src``)
runs under callgrind in front of the simulated provider, counting nothing until told.
Per target process, in order:

1. warm-up: the whole workload once, uncounted (imports, caches, pools, first-use paths);
2. window ``handshakes``: ``sessions`` sessions opened one after another (handshake,
   ``session.created``, ``session.update`` and its answer);
3. window ``frames``: the workload (``_stepped``: per session ``appends`` audio appends,
   each followed by a probe round trip, then one spoken response each, in turn);
4. window ``idle``: one timer period with those sessions open and silent;
5. the sessions close and the target stops (uncounted).

A relay also works when no frame arrives (watchdog ticks, the metrics flusher, lease
renewals), in proportion to wall time, which valgrind stretches. Every window lasts a
whole number of ``TIMER_PERIOD_S``, so each such job runs a whole number of times in
it; the ``idle`` window measures their rate, and ``frames``' count minus rate x its
duration, divided by the frames the clients sent and received in it, is
**instructions per forwarded frame** (the raw quotient is kept beside it). The relay
runs ``steady`` (``RelayBuild``): no heartbeat or retention prune on a clock of its
own. The whole sequence runs ``repeats`` times, each in a fresh target process with a
fresh store, targets interleaved; the spread between repeats is the figure's noise.
``PYTHONHASHSEED`` is fixed so dict and set layouts repeat too.

``direct`` has no relay process, so it has nothing to count and is skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import math
import os
import platform
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import aiohttp

from rtrelay.bench._callgrind import (
    Callgrind,
    CallgrindFailed,
    Placement,
    Valgrind,
    ensure_valgrind,
)
from rtrelay.bench._frames import Audio
from rtrelay.bench._hoststat import HostCpu, steal_summary, steal_window
from rtrelay.bench._nginx import NginxUnavailable, start_nginx
from rtrelay.bench._options import TargetName
from rtrelay.bench._procs import ChildFailed, Children
from rtrelay.bench._provider import Provider, start_provider
from rtrelay.bench._relay import RelayBuild, sources_meta, start_rtrelay, tree_for
from rtrelay.bench._session import Tally
from rtrelay.bench._stepped import SessionFailed, SteppedSession
from rtrelay.bench._target import Target

__all__ = [
    "INSTRUCTION_TARGETS",
    "InstructionOptions",
    "quick_instructions",
    "run_instructions",
    "spread_pct",
    "whole_periods",
]

Log = Callable[[str], None]

INSTRUCTION_TARGETS: Final[tuple[TargetName, ...]] = ("rtrelay", "rtrelay-core", "nginx")
TIMER_PERIOD_S: Final = 10.0
"""Every counted window lasts a whole multiple of this: the least common multiple of the
periods of rtrelay's own jobs (each session's watchdog tick, 1 s; the metrics flusher
and spend refresh, 5 s; the lease renewal, 10 s), so each window holds a whole number
of each, whatever their phase, and the idle rate takes out exactly what they cost."""
VALGRIND_START_TIMEOUT: Final = 300.0
"""Start-up under valgrind (counting off) takes seconds; on a busy 2-core VM, minutes."""
COMPARISONS: Final = (
    ("rtrelay", "baseline"),
    ("rtrelay", "rtrelay-core"),
    ("rtrelay", "nginx"),
    ("rtrelay-core", "nginx"),
)
_COMPARED: Final = (
    "instructions_per_frame",
    "syscalls_per_frame",
    "instructions_per_session_setup",
)
_CLOSE_TIMEOUT: Final = 60.0


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class InstructionOptions:
    """One ``--instructions`` run. Times are seconds unless the name says ``_ms``.

    Args:
        targets: any of rtrelay, rtrelay-core, nginx (``direct`` is skipped: no relay).
        sessions: sessions open during the counted windows.
        appends: audio appends per session in the ``frames`` window, each with a probe.
        responses: spoken responses per session in the ``frames`` window, in turn.
        reply_audio_ms / chunk_ms: each response's length and its audio step.
        gap_ms: quiet before each frame a client sends (one frame in flight at a time).
        repeats: fresh target processes per target; their spread is the noise.
        relay_src / baseline_src: source trees (``src/``) of the rtrelay targets and of
            the ``baseline`` target (added when given).
        install: may ``apt-get install`` valgrind and nginx.
        hash_seed: ``PYTHONHASHSEED`` of the Python targets.
        period_s: every window lasts a whole number of these (``TIMER_PERIOD_S``; the
            smoke test's 1 s keeps only the watchdog ticks whole).
    """

    targets: tuple[TargetName, ...] = INSTRUCTION_TARGETS
    sessions: int = 10
    appends: int = 20
    responses: int = 1
    reply_audio_ms: int = 600
    chunk_ms: int = 100
    gap_ms: int = 10
    repeats: int = 2
    relay_src: Path | None = None
    baseline_src: Path | None = None
    install: bool = True
    hash_seed: int = 0
    period_s: float = TIMER_PERIOD_S

    def __post_init__(self) -> None:
        if self.sessions < 1 or self.appends < 1 or self.repeats < 1 or self.responses < 0:
            raise ValueError("sessions, appends and repeats must be at least 1, responses >= 0")
        if not 10 <= self.chunk_ms <= 1000 or self.reply_audio_ms < self.chunk_ms:
            raise ValueError("chunk_ms must be 10-1000 and reply_audio_ms at least chunk_ms")
        if self.gap_ms < 0 or not self.period_s > 0:
            raise ValueError("gap_ms must be >= 0 and period_s positive")
        if "baseline" in self.targets and self.baseline_src is None:
            raise ValueError("the baseline target needs --baseline-src")

    @property
    def measured_targets(self) -> tuple[TargetName, ...]:
        """The targets counted (``baseline`` first when given, then the others)."""
        rest = tuple(t for t in self.targets if t not in ("direct", "baseline"))
        return ("baseline", *rest) if self.baseline_src is not None else rest


def quick_instructions(options: InstructionOptions) -> InstructionOptions:
    """The smoke-test shape: 2 sessions, 3 appends each, a short reply, 1 s periods.

    Its figures show the mode works, not what a frame costs: the 5 s and 10 s jobs of
    the relay fall into its windows or not.
    """
    return dataclasses.replace(
        options,
        sessions=min(options.sessions, 2),
        appends=min(options.appends, 3),
        reply_audio_ms=min(options.reply_audio_ms, 200),
        period_s=min(options.period_s, 1.0),
    )


def whole_periods(spent: float, period: float = TIMER_PERIOD_S) -> float:
    """The window length for ``spent`` seconds of work: a whole number (>= 1) of periods.

    Work that overran a boundary by under 2 % of a period is not padded to the next.
    """
    return max(1, math.ceil(spent / period - 0.02)) * period


def spread_pct(values: Sequence[float]) -> float | None:
    """(max - min) / mean, in percent: how far repeats of one figure fell apart."""
    if len(values) < 2:
        return None
    mean = sum(values) / len(values)
    return round(100.0 * (max(values) - min(values)) / mean, 3) if mean else None


async def run_instructions(
    options: InstructionOptions, *, workdir: Path, log: Log = _stderr
) -> dict[str, Any]:
    """Count every target's instructions per frame; child logs and dumps go to ``workdir``.

    Returns:
        The results document (docs/bench.md, "Instructions per frame"): ``meta``,
        ``targets`` (per repeat and summarised), ``comparisons``, ``skipped``, ``steal``.

    Raises:
        ValgrindUnavailable: valgrind is missing and may not (or could not) be installed.
    """
    tools = await asyncio.to_thread(ensure_valgrind, install=options.install)
    placement = await asyncio.to_thread(Placement.arrange)
    await asyncio.to_thread(workdir.mkdir, parents=True, exist_ok=True)
    started = datetime.now(UTC)
    doc: dict[str, Any] = {
        "mode": "instructions",
        "meta": await asyncio.to_thread(_meta, options, started, tools, placement),
        "provider": None,
        "targets": {},
        "comparisons": {},
        "skipped": {"direct": "no relay process: nothing to count"}
        if "direct" in options.targets
        else {},
    }
    windows: list[dict[str, Any]] = []
    runs: dict[TargetName, list[dict[str, Any]]] = {}
    async with Children() as children:
        try:
            provider = await start_provider(
                children,
                workdir,
                reply_audio_ms=options.reply_audio_ms,
                chunk_ms=options.chunk_ms,
                wrap=placement.provider,
            )
            doc["provider"] = {"url": provider.base_url, "pid": provider.pid}
            log(f"simulated provider: {provider.base_url} (pid {provider.pid})")
            names = list(options.measured_targets)
            for repeat in range(1, options.repeats + 1):
                for name in list(names):
                    log(f"{name}: repeat {repeat}/{options.repeats} under callgrind")
                    try:
                        run = await _measure(
                            name, repeat, provider, tools, placement, options, workdir, log
                        )
                    except (
                        CallgrindFailed,
                        ChildFailed,
                        NginxUnavailable,
                        SessionFailed,
                        TimeoutError,
                        OSError,
                        aiohttp.ClientError,
                    ) as exc:
                        why = " ".join(str(exc).split())[:300] or type(exc).__name__
                        doc["skipped"][name] = f"repeat {repeat}: {why}"
                        log(f"{name}: skipped: {why}")
                        names.remove(name)
                        continue
                    runs.setdefault(name, []).append(run)
                    windows.extend(run.pop("steal"))
                    log(f"  {name}: {_run_line(run)}")
        finally:
            doc["meta"]["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
            doc["meta"]["elapsed_s"] = round((datetime.now(UTC) - started).total_seconds(), 1)
    doc["targets"] = {name: _summary(rs) for name, rs in runs.items()}
    doc["comparisons"] = comparisons(doc["targets"])
    doc["steal"] = steal_summary(windows)
    return doc


async def _measure(
    name: TargetName,
    repeat: int,
    provider: Provider,
    tools: Valgrind,
    placement: Placement,
    options: InstructionOptions,
    workdir: Path,
    log: Log,
) -> dict[str, Any]:
    """One fresh target process: warm-up, then the three counted windows."""
    rundir = workdir / f"{name}.{repeat}"
    await asyncio.to_thread(rundir.mkdir, parents=True, exist_ok=True)
    out_file = rundir / "callgrind.out"
    steal: list[dict[str, Any]] = []
    async with Children() as own:
        wrap = tools.argv(out_file, wrap=placement.target)
        target = await _start(name, own, rundir, provider, wrap, options)
        assert target.pid is not None
        meter = Callgrind(tools, target.pid, out_file)
        tally = Tally()
        audio = Audio(options.chunk_ms)
        gap = options.gap_ms / 1000
        connector = aiohttp.TCPConnector(limit=0, force_close=True)
        async with aiohttp.ClientSession(connector=connector) as http:

            def sessions() -> list[SteppedSession]:
                return [
                    SteppedSession(http, target, audio, tally, gap=gap)
                    for _ in range(options.sessions)
                ]

            async def window(
                label: str, work: Callable[[], Awaitable[None]] | None
            ) -> dict[str, Any]:
                before, host = tally.copy(), HostCpu.read()
                await meter.begin()
                began = time.monotonic()
                if work is not None:
                    await work()
                spent = time.monotonic() - began
                await asyncio.sleep(whole_periods(spent, options.period_s) - spent)
                window_s = time.monotonic() - began
                dump = await meter.end(f"{label}-{repeat}")
                moved = tally.minus(before)
                where = steal_window(host, HostCpu.read(), target=name, repeat=repeat)
                steal.append({**where, "window": label, "window_s": round(window_s, 2)})
                log(f"  {name} {label}: {dump.instructions:,} Ir, {moved.frames} frames")
                return {
                    "instructions": dump.instructions,
                    "syscalls": dump.syscalls,
                    "frames": moved.frames,
                    "frames_sent": moved.frames_sent,
                    "frames_received": moved.frames_received,
                    "bytes": moved.bytes,
                    "responses": moved.responses,
                    "window_s": round(window_s, 3),
                    "steal_pct": where["steal_pct"],
                }

            warm = sessions()
            try:
                await _open_all(warm)
                await _workload(warm, options.appends, options.responses)
            finally:
                await _close_all(warm)
            live = sessions()
            try:
                counted = {
                    "handshakes": await window("handshakes", lambda: _open_all(live)),
                    "frames": await window(
                        "frames", lambda: _workload(live, options.appends, options.responses)
                    ),
                    "idle": await window("idle", None),
                }
            finally:
                await _close_all(live)
    return {
        **run_figures(counted, options.sessions),
        "repeat": repeat,
        "pid": target.pid,
        "steal": steal,
    }


async def _start(
    name: TargetName,
    children: Children,
    rundir: Path,
    provider: Provider,
    wrap: Sequence[str],
    options: InstructionOptions,
) -> Target:
    if name == "nginx":
        return await start_nginx(
            children,
            rundir,
            provider.base_url,
            install=options.install,
            wrap=wrap,
            start_timeout=VALGRIND_START_TIMEOUT,
        )
    build = RelayBuild(
        src=tree_for(name, relay_src=options.relay_src, baseline_src=options.baseline_src),
        wrap=tuple(wrap),
        hash_seed=options.hash_seed,
        steady=True,
        start_timeout=VALGRIND_START_TIMEOUT,
    )
    return await start_rtrelay(
        children,
        rundir,
        provider.base_url,
        max_sessions=4 * options.sessions,
        core=name == "rtrelay-core",
        name=name,
        build=build,
    )


async def _open_all(sessions: Sequence[SteppedSession]) -> None:
    for session in sessions:
        await session.open()


async def _workload(sessions: Sequence[SteppedSession], appends: int, responses: int) -> None:
    """Every session talks ``appends`` times (round-robin), then each gets ``responses``."""
    for _ in range(appends):
        for session in sessions:
            await session.talk()
    for _ in range(responses):
        for session in sessions:
            await session.respond()


async def _close_all(sessions: Sequence[SteppedSession]) -> None:
    """Close every session that opened; one that cannot close in time is abandoned."""
    for session in sessions:
        with contextlib.suppress(TimeoutError, ConnectionError, aiohttp.ClientError):
            async with asyncio.timeout(_CLOSE_TIMEOUT):
                await session.close()


def run_figures(windows: dict[str, dict[str, Any]], sessions: int) -> dict[str, Any]:
    """A target process's figures from its three windows, the idle rate taken out.

    ``frames`` and ``handshakes`` each lose what the idle rate would have executed in
    their duration; syscalls likewise.
    """
    idle, frames, setup = windows["idle"], windows["frames"], windows["handshakes"]
    idle_ir_s = idle["instructions"] / idle["window_s"]
    idle_sys_s = (idle["syscalls"] or 0) / idle["window_s"]

    def net(window: dict[str, Any], key: str, rate: float) -> float:
        window_s: float = window["window_s"]
        return float(window[key] or 0) - rate * window_s

    count = frames["frames"]
    return {
        "windows": windows,
        "frames": count,
        "instructions_per_frame": round(net(frames, "instructions", idle_ir_s) / count, 1),
        "instructions_per_frame_raw": round(frames["instructions"] / count, 1),
        "syscalls_per_frame": round(net(frames, "syscalls", idle_sys_s) / count, 3),
        "instructions_per_session_setup": round(net(setup, "instructions", idle_ir_s) / sessions),
        "idle_instructions_per_s": round(idle_ir_s),
        "idle_share_pct": round(100.0 * idle_ir_s * frames["window_s"] / frames["instructions"], 2)
        if frames["instructions"]
        else None,
    }


_SUMMARISED: Final = (
    "instructions_per_frame",
    "instructions_per_frame_raw",
    "syscalls_per_frame",
    "instructions_per_session_setup",
)


def _summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The repeats of one target: each figure's mean and its spread across repeats."""
    out: dict[str, Any] = {"repeats": len(runs), "runs": runs}
    for key in _SUMMARISED:
        values = [float(r[key]) for r in runs]
        out[key] = round(sum(values) / len(values), 1)
        out[f"{key}_spread_pct"] = spread_pct(values)
    out["frames"] = sorted({r["frames"] for r in runs})
    return out


def comparisons(targets: dict[str, dict[str, Any]]) -> dict[str, dict[str, float | None]]:
    """``a / b`` for each pair measured (rtrelay over baseline, rtrelay-core, nginx)."""
    out: dict[str, dict[str, float | None]] = {}
    for a, b in COMPARISONS:
        if a not in targets or b not in targets:
            continue
        out[f"{a}/{b}"] = {
            key: round(targets[a][key] / targets[b][key], 3) if targets[b][key] else None
            for key in _COMPARED
        }
    return out


def _run_line(run: dict[str, Any]) -> str:
    return (
        f"{run['instructions_per_frame']:,.0f} Ir/frame "
        f"(raw {run['instructions_per_frame_raw']:,.0f}, idle {run['idle_share_pct']} %), "
        f"{run['syscalls_per_frame']:.2f} syscalls/frame, "
        f"{run['instructions_per_session_setup']:,} Ir/session set-up, {run['frames']} frames"
    )


def _meta(
    options: InstructionOptions, started: datetime, tools: Valgrind, placement: Placement
) -> dict[str, Any]:
    version = subprocess.run(
        [tools.valgrind, "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    return {
        "started": started.isoformat(timespec="seconds"),
        "host_cpus": os.cpu_count(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "aiohttp": aiohttp.__version__,
        "valgrind": version,
        "provider_prefix": list(placement.provider),
        "target_prefix": list(placement.target),
        "placement_notes": list(placement.notes),
        "platform": platform.platform(),
        **sources_meta(relay_src=options.relay_src, baseline_src=options.baseline_src),
        "options": {
            "targets": list(options.measured_targets),
            "sessions": options.sessions,
            "appends": options.appends,
            "responses": options.responses,
            "reply_audio_ms": options.reply_audio_ms,
            "chunk_ms": options.chunk_ms,
            "gap_ms": options.gap_ms,
            "repeats": options.repeats,
            "hash_seed": options.hash_seed,
            "period_s": options.period_s,
        },
    }
