"""``rtrelay bench --webrtc``: WebRTC call setup through rtrelay vs direct, and the relay's
cost per open call.

A WebRTC call's media flows between the caller and the provider; the relay answers the
offer (admission, the provider's SDP, a relay call id) and then keeps its own metering
sideband on the call for its whole life. So two things are measured, in one run, against
the simulated provider (``rtrelay mock``, its own process) and one ``rtrelay serve``
(every feature on: key auth, SQLite ledger, the key's limits), the callers being aiortc
peers in this process (``rtrelay.rtc.RtcClient``, loopback only, no STUN). They offer
their audio slot ``sendonly`` with no microphone track, so no audio flows either way:
media never passes the relay (it rides the same ICE and DTLS transport, so setup is the
same), and two cores spared an Opus encoder and decoder per call and direction carry
more calls (with audio, 20 calls and their responses took the machine tens of seconds).
Times run from the offer POST (the offer's own gathering is the same whoever answers):

1. setup, ``calls`` sequential calls per target, interleaved (direct, rtrelay, rtrelay,
   direct, …) so drift hits both alike: offer POST to the 201 answer, and to
   ``session.created`` on the ``oai-events`` channel (ICE, DTLS, SCTP and the first
   event; through rtrelay also its admission, the provider's answer and the sideband
   attached before the 201). Each call is hung up before the next; the relay's CPU over
   the phase divided by its calls is its CPU per call set up and torn down;
2. ``concurrency`` calls open at once through the relay, each with one response (so the
   sideband meters something): the relay's RSS and USS (its own pages, from
   ``/proc/<pid>/smaps``) over its idle baseline, per call, the largest seen while
   they are held ``hold`` seconds, and its CPU share per open call over that window;
   then all are hung up and what stayed is measured too. ``batches`` > 1 repeats this
   on the same relay: the first batch pays what grows once with concurrency (pools,
   caches), so a later batch's traced heap is the steady cost per call (its RSS, though,
   reuses what the first one freed and says little).

With ``trace_memory`` the relay is traced by ``tracemalloc`` from the concurrent phase's
idle baseline on (``_traced``) and its heap is snapshotted there, with the calls open
and after their hang-up: ``heap`` in the results is the traced Python heap per call and
the lines that grew most (``_heap``). The setup times are unaffected; the concurrent
phase's RSS and CPU then include the tracing's own cost.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import platform
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import aiohttp
import psutil

from rtrelay.bench._heap import heap_figures
from rtrelay.bench._hoststat import HostCpu, steal_summary, steal_window
from rtrelay.bench._procs import Children, ResourceMeter
from rtrelay.bench._provider import start_provider
from rtrelay.bench._relay import RelayBuild, sources_meta, start_rtrelay
from rtrelay.bench._soak import scrape_metrics
from rtrelay.bench._stats import percentiles
from rtrelay.bench._target import MODEL, Target
from rtrelay.bench._traced import snapshot_path
from rtrelay.rtc import CallRefused, RtcClient
from rtrelay.wire import CALLS_PATH

__all__ = ["SETUP_POINTS", "WebrtcOptions", "quick_webrtc", "run_webrtc"]

Log = Callable[[str], None]

SETUP_POINTS: Final = (("p50", 50.0), ("p90", 90.0), ("p99", 99.0))
CREATED: Final = "session.created"
RESPONSE_DONE: Final = "response.done"
_REPLY_AUDIO_MS: Final = 200
_CHUNK_MS: Final = 100
_QUIET_TIMEOUT: Final = 20.0
_POLL: Final = 0.1
_SETTLE: Final = 0.5
_KB: Final = 1024
_FAILURES: Final = (CallRefused, TimeoutError, aiohttp.ClientError)
_SNAPSHOT_TIMEOUT: Final = 60.0
_TRACED: Final = (sys.executable, "-m", "rtrelay.bench._traced")


@dataclass(frozen=True, slots=True, kw_only=True)
class WebrtcOptions:
    """One ``--webrtc`` run.

    Args:
        calls: sequential setups per target (direct and rtrelay).
        concurrency: calls open at once through the relay for its per-call figures.
        hold: seconds those calls are held open (the CPU window).
        batches: how many times the concurrent calls are opened and hung up.
        warmup: calls per target before anything is measured (imports, first key lookup).
        parallel: setups in flight at once while the concurrent calls are opened.
        timeout: seconds a call may take to come up, or a response to finish.
        relay_src: run rtrelay from this tree's ``src/`` (``None``: this install).
        trace_memory: run the relay under ``tracemalloc`` and attribute its heap per call.
    """

    calls: int = 30
    concurrency: int = 20
    hold: float = 5.0
    batches: int = 1
    warmup: int = 2
    parallel: int = 4
    timeout: float = 20.0
    relay_src: Path | None = None
    trace_memory: bool = False

    def __post_init__(self) -> None:
        if self.calls < 1 or self.concurrency < 1 or self.batches < 1:
            raise ValueError("calls, concurrency and batches must be at least 1")
        if self.hold <= 0 or self.timeout <= 0:
            raise ValueError("hold and timeout must be positive")
        if self.warmup < 0 or self.parallel < 1:
            raise ValueError("warmup must be >= 0 and parallel at least 1")


def quick_webrtc(options: WebrtcOptions) -> WebrtcOptions:
    """The smoke-test shape: 4 setups per target, 3 concurrent calls held 1 s."""
    return dataclasses.replace(
        options,
        calls=min(options.calls, 4),
        concurrency=min(options.concurrency, 3),
        hold=1.0,
        warmup=1,
    )


def calls_url(target: Target) -> str:
    """A target's ``POST /v1/realtime/calls`` URL, from its WebSocket URL."""
    parts = urlsplit(target.url)
    scheme = "https" if parts.scheme == "wss" else "http"
    return f"{scheme}://{parts.netloc}{CALLS_PATH}"


@dataclass(frozen=True, slots=True)
class Setup:
    """One call's setup: offer POST to its answer, and to ``session.created``, in ns."""

    answer_ns: int
    created_ns: int


@dataclass(slots=True)
class _Tally:
    """The setups of one target (or one phase): times in ns, failures by reason."""

    answers: list[int] = field(default_factory=list)
    created: list[int] = field(default_factory=list)
    failures: Counter[str] = field(default_factory=Counter)

    def add(self, setup: Setup) -> None:
        self.answers.append(setup.answer_ns)
        self.created.append(setup.created_ns)

    def figures(self) -> dict[str, Any]:
        return {
            "calls": len(self.answers),
            "failed": sum(self.failures.values()),
            "failures": dict(self.failures),
            "answer_ms": percentiles(self.answers, points=SETUP_POINTS),
            "created_ms": percentiles(self.created, points=SETUP_POINTS),
        }


@dataclass(frozen=True, slots=True)
class _Memory:
    rss: int
    uss: int


class _Relay:
    """The relay process: its CPU and memory from the kernel, its open calls from /metrics,
    and (run under ``_traced``) its heap snapshots."""

    def __init__(self, target: Target, http: aiohttp.ClientSession, heap_dir: Path | None) -> None:
        assert target.pid is not None
        self._pid = target.pid
        self._heap_dir = heap_dir
        self._snapshots = 0
        self._meter = ResourceMeter(target.pid)
        self._proc = psutil.Process(target.pid)
        parts = urlsplit(target.url)
        self._metrics = f"http://{parts.netloc}/metrics"
        self._http = http

    def cpu_s(self) -> float:
        return self._meter.read().cpu_s

    def memory(self) -> _Memory:
        """RSS, and USS: the pages only this process maps (``/proc/<pid>/smaps``)."""
        info = self._proc.memory_full_info()
        return _Memory(info.rss, info.uss)

    async def snapshot(self) -> Path | None:
        """Have the traced relay write a heap snapshot; its file (``None``: not traced)."""
        if self._heap_dir is None:
            return None
        path = snapshot_path(self._heap_dir, self._snapshots)
        self._snapshots += 1
        os.kill(self._pid, signal.SIGUSR1)
        deadline = time.monotonic() + _SNAPSHOT_TIMEOUT
        while True:
            if path.exists():
                return path
            if time.monotonic() > deadline:
                raise TimeoutError(f"the traced relay wrote no {path.name}")
            await asyncio.sleep(_POLL)

    async def quiet(self) -> bool:
        """Wait (bounded) until the relay has no call or session open, then settle."""
        deadline = time.monotonic() + _QUIET_TIMEOUT
        quiet = False
        while time.monotonic() < deadline:
            values = await scrape_metrics(self._http, self._metrics)
            busy = values.get("rtrelay_active_calls", 0) + values.get("rtrelay_active_sessions", 0)
            if busy == 0:
                quiet = True
                break
            await asyncio.sleep(_POLL)
        await asyncio.sleep(_SETTLE)
        return quiet


async def run_webrtc(
    options: WebrtcOptions, *, workdir: Path, log: Log | None = None
) -> dict[str, Any]:
    """Run the WebRTC bench ``options`` describe; child logs and files go to ``workdir``.

    Returns:
        The results document (docs/bench.md, "WebRTC calls"): ``meta``, ``provider``,
        ``relay``, ``setup`` (per target, and ``added``), ``relay_per_call`` (the first
        batch; ``later_batches``: the others), ``goals``, ``steal``.
    """
    say = log or _stderr
    await asyncio.to_thread(workdir.mkdir, parents=True, exist_ok=True)
    started = datetime.now(UTC)
    doc: dict[str, Any] = {"mode": "webrtc", "meta": _meta(options, started)}
    windows: list[dict[str, Any]] = []
    async with Children() as children:
        try:
            provider = await start_provider(
                children, workdir, reply_audio_ms=_REPLY_AUDIO_MS, chunk_ms=_CHUNK_MS
            )
            doc["provider"] = {"url": provider.base_url, "pid": provider.pid}
            heap_dir = workdir / "heap" if options.trace_memory else None
            wrap = () if heap_dir is None else (*_TRACED, str(heap_dir))
            relay_target = await start_rtrelay(
                children,
                workdir,
                provider.base_url,
                max_sessions=2 * options.concurrency + options.parallel + 10,
                build=RelayBuild(src=options.relay_src, wrap=wrap),
            )
            doc["relay"] = {"url": calls_url(relay_target), "pid": relay_target.pid}
            say(f"webrtc: provider pid {provider.pid}, rtrelay pid {relay_target.pid}")
            targets = {"direct": provider.direct, "rtrelay": relay_target}
            async with aiohttp.ClientSession() as http:
                relay = _Relay(relay_target, http, heap_dir)
                bench = _Bench(options, http, targets, relay, windows, say)
                await bench.warm_up()
                doc["setup"] = await bench.sequential()
                doc["relay_per_call"] = await bench.concurrent(1)
                doc["later_batches"] = [
                    await bench.concurrent(n) for n in range(2, options.batches + 1)
                ]
        finally:
            doc["steal"] = steal_summary(windows)
            doc["meta"]["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
            doc["meta"]["elapsed_s"] = round((datetime.now(UTC) - started).total_seconds(), 1)
    doc["goals"] = webrtc_goals(doc)
    return doc


@dataclass(slots=True)
class _Bench:
    options: WebrtcOptions
    http: aiohttp.ClientSession
    targets: dict[str, Target]
    relay: _Relay
    windows: list[dict[str, Any]]
    log: Log

    async def call(self, name: str) -> tuple[RtcClient, Setup]:
        """Set one call up on target ``name``; the caller is closed if that fails.

        Raises:
            CallRefused / TimeoutError / aiohttp.ClientError: the call did not come up.
        """
        target = self.targets[name]
        caller = RtcClient(microphone=False)
        caller.pc.getTransceivers()[0].direction = "sendonly"  # no reply audio: see above
        try:
            url = calls_url(target)
            status = await caller.call(
                self.http, url, api_key=None, model=MODEL, headers=target.headers
            )
            if status != 201:
                raise CallRefused(status, caller.body)
            created = await caller.next_index(CREATED, timeout=self.options.timeout)
        except BaseException:
            await caller.close()
            raise
        posted = caller.posted_ns
        return caller, Setup(caller.answered_ns - posted, caller.event_ns[created] - posted)

    async def once(self, name: str, tally: _Tally) -> None:
        """One call set up and hung up; a failure is counted, not raised."""
        try:
            caller, setup = await self.call(name)
        except _FAILURES as exc:
            tally.failures[_reason(exc)] += 1
            return
        tally.add(setup)
        await caller.close()

    async def warm_up(self) -> None:
        self.log(f"webrtc: warm-up, {self.options.warmup} call(s) per target")
        for _ in range(self.options.warmup):
            for name in self.targets:
                await self.once(name, _Tally())
        await self.relay.quiet()

    async def sequential(self) -> dict[str, Any]:
        """``calls`` setups per target, interleaved; the relay's CPU per call over them."""
        calls = self.options.calls
        self.log(f"webrtc: {calls} sequential setups per target")
        tallies = {name: _Tally() for name in self.targets}
        names = list(self.targets)
        host = HostCpu.read()
        cpu = self.relay.cpu_s()
        window = time.monotonic()
        for index in range(calls):
            # ABBA: neither target always goes first after the other's hang-up.
            for name in names if index % 2 == 0 else reversed(names):
                await self.once(name, tallies[name])
        quiet = await self.relay.quiet()
        cpu = self.relay.cpu_s() - cpu
        self.windows.append(
            steal_window(
                host,
                HostCpu.read(),
                phase="sequential",
                window_s=round(time.monotonic() - window, 2),
            )
        )
        figures: dict[str, Any] = {name: t.figures() for name, t in tallies.items()}
        through = len(tallies["rtrelay"].answers)
        figures["added"] = {
            kind: _difference(figures["rtrelay"][kind], figures["direct"][kind])
            for kind in ("answer_ms", "created_ms")
        }
        figures["relay_cpu_ms_per_call"] = round(cpu * 1e3 / through, 2) if through else None
        figures["relay_quiet_after"] = quiet
        for name in names:
            self.log(f"  {name}: {_setup_line(figures[name])}")
        return figures

    async def concurrent(self, batch: int) -> dict[str, Any]:
        """``concurrency`` calls open through the relay: its memory and CPU per call."""
        options = self.options
        count = options.concurrency
        self.log(
            f"webrtc: batch {batch}, {count} concurrent calls through rtrelay, "
            f"held {options.hold:g} s"
        )
        snapshots = [await self.relay.snapshot()]
        base = self.relay.memory()
        cpu_start = self.relay.cpu_s()
        host = HostCpu.read()
        tally = _Tally()
        callers: list[RtcClient] = []
        gate = asyncio.Semaphore(options.parallel)

        async def open_one() -> None:
            async with gate:
                try:
                    caller, setup = await self.call("rtrelay")
                except _FAILURES as exc:
                    tally.failures[_reason(exc)] += 1
                    return
            tally.add(setup)
            callers.append(caller)

        try:
            await asyncio.gather(*(open_one() for _ in range(count)))
            responses = await self._respond(callers, tally)
            cpu_opened = self.relay.cpu_s()
            held = time.monotonic()
            peak = await self._hold(base)
            hold_s = time.monotonic() - held
            cpu_held = self.relay.cpu_s() - cpu_opened
            snapshots.append(await self.relay.snapshot())
            self.windows.append(
                steal_window(
                    host,
                    HostCpu.read(),
                    phase="concurrent",
                    batch=batch,
                    window_s=round(hold_s, 2),
                )
            )
        finally:
            await asyncio.gather(*(c.close() for c in callers))
        quiet = await self.relay.quiet()
        after = self.relay.memory()
        snapshots.append(await self.relay.snapshot())
        open_ = len(callers)
        figures: dict[str, Any] = {
            "batch": batch,
            "calls": count,
            "open": open_,
            "responses": responses,
            "setup": tally.figures(),
            "rss_baseline_mb": round(base.rss / _KB / _KB, 1),
            "rss_open_mb": round(peak.rss / _KB / _KB, 1),
            "rss_kb_per_call": _per_call(peak.rss - base.rss, open_),
            "uss_kb_per_call": _per_call(peak.uss - base.uss, open_),
            "rss_kb_per_call_after_hangup": _per_call(after.rss - base.rss, open_),
            "uss_kb_per_call_after_hangup": _per_call(after.uss - base.uss, open_),
            "cpu_ms_per_call_opened": round((cpu_opened - cpu_start) * 1e3 / open_, 2)
            if open_
            else None,
            "hold_s": round(hold_s, 2),
            "cpu_pct_core_per_open_call": round(100 * cpu_held / hold_s / open_, 3)
            if open_ and hold_s > 0
            else None,
            "relay_quiet_after": quiet,
        }
        if all(snapshots) and open_:
            paths = [p for p in snapshots if p is not None]
            figures["heap"] = await asyncio.to_thread(heap_figures, paths, open_)
        self.log(
            f"  {open_}/{count} open: RSS {figures['rss_kb_per_call']} KB/call "
            f"(USS {figures['uss_kb_per_call']}), CPU {figures['cpu_pct_core_per_open_call']} "
            f"% of a core per open call"
        )
        return figures

    async def _respond(self, callers: Sequence[RtcClient], tally: _Tally) -> int:
        """One response per open call, all at once (the sideband meters each); how many
        completed."""

        async def respond(caller: RtcClient) -> None:
            caller.send({"type": "response.create"})
            await caller.next_event(RESPONSE_DONE, timeout=self.options.timeout)

        done = await asyncio.gather(*(respond(c) for c in callers), return_exceptions=True)
        for outcome in done:
            if isinstance(outcome, TimeoutError):
                tally.failures[f"no {RESPONSE_DONE}"] += 1
            elif isinstance(outcome, BaseException):
                raise outcome
        return sum(1 for outcome in done if outcome is None)

    async def _hold(self, base: _Memory) -> _Memory:
        """Hold the calls ``hold`` s, sampling memory; the largest RSS and USS seen."""
        rss, uss = base.rss, base.uss
        end = time.monotonic() + self.options.hold
        while True:
            sample = await asyncio.to_thread(self.relay.memory)
            rss, uss = max(rss, sample.rss), max(uss, sample.uss)
            left = end - time.monotonic()
            if left <= 0:
                return _Memory(rss, uss)
            await asyncio.sleep(min(0.5, left))


def _difference(a: dict[str, Any], b: dict[str, Any]) -> dict[str, float]:
    return {n: round(a[n] - b[n], 3) for n, _ in SETUP_POINTS if n in a and n in b}


def _per_call(delta: int, calls: int) -> float | None:
    return round(delta / calls / _KB, 1) if calls else None


def _reason(exc: BaseException) -> str:
    if isinstance(exc, CallRefused):
        return str(exc)[:120]
    if isinstance(exc, TimeoutError):
        return f"no {CREATED} in time"
    return type(exc).__name__


def _setup_line(f: dict[str, Any]) -> str:
    a, c = f["answer_ms"], f["created_ms"]
    return (
        f"{f['calls']} calls, answer p50 {a.get('p50')} ms, session.created p50 "
        f"{c.get('p50')} ms, failed {f['failed']}"
    )


SETUP_GOAL_MS: Final = 20.0
MEMORY_GOAL_KB: Final = 50.0
"""Issue 13's targets: added setup p50, relay memory per open call."""


def webrtc_goals(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Each goal with the measured value and whether it was met (``None``: not measured).

    Memory is the first batch's RSS per call; in a traced run (whose RSS holds the
    traces too) it is the last batch's traced heap per call instead.
    """
    batches = [doc.get("relay_per_call") or {}, *doc.get("later_batches", [])]
    if doc["meta"]["options"].get("trace_memory"):
        memory = (
            "relay heap per open call <= 50 KB (traced, last batch)",
            _at(batches[-1], "heap", "traced_kb_per_call"),
        )
    else:
        memory = ("relay memory per open call <= 50 KB (RSS)", _at(batches[0], "rss_kb_per_call"))
    measured = [
        (
            "added setup to session.created p50 <= 20 ms",
            _at(doc, "setup", "added", "created_ms", "p50"),
            SETUP_GOAL_MS,
        ),
        (*memory, MEMORY_GOAL_KB),
    ]
    return [
        {
            "goal": goal,
            "value": value,
            "met": value <= bound if isinstance(value, int | float) else None,
        }
        for goal, value, bound in measured
    ]


def _at(doc: Any, *path: str) -> Any:
    for key in path:
        doc = doc.get(key) if isinstance(doc, dict) else None
    return doc


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _meta(options: WebrtcOptions, started: datetime) -> dict[str, Any]:
    return {
        "started": started.isoformat(timespec="seconds"),
        "host_cpus": os.cpu_count(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "platform": platform.platform(),
        "options": {
            "calls": options.calls,
            "concurrency": options.concurrency,
            "hold_s": options.hold,
            "batches": options.batches,
            "warmup": options.warmup,
            "parallel": options.parallel,
            "trace_memory": options.trace_memory,
            "reply_audio_ms": _REPLY_AUDIO_MS,
        },
        **sources_meta(relay_src=options.relay_src, baseline_src=None),
    }
