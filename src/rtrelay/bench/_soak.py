"""``rtrelay bench --soak``: many short sessions through one relay process, looking for leaks.

A relay that leaks a task, a socket or a few kilobytes per session looks fine in any
benchmark of a minute and falls over after a week. The soak runs ``sessions`` short
sessions (default 10,000, ``concurrency`` at a time) through a real ``rtrelay serve``
with every feature on (key auth, the SQLite ledger, the key's limits), against the
simulated provider in its own process, and samples the relay process while it is idle:

- ``before``: after a warm-up (first-use costs: imports, caches, pools, threads);
- ``checkpoints``: every ``checkpoint_every`` sessions;
- ``after``: at the end, once idle for ``settle`` seconds.

Each sample is RSS, open file descriptors, threads and TCP connections (``psutil`` on
the pid), and asyncio tasks (the relay's ``rtrelay_event_loop_tasks`` gauge, read from
``/metrics``). A leak shows as growth between checkpoints after warm-up. Afterwards the
ledger is read back: one session row per session that was created, one usage row per
``response.done`` the clients saw, one refusal counted per refused handshake.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import aiohttp
import psutil
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from rtrelay.bench._hoststat import HostCpu, steal_summary, steal_window
from rtrelay.bench._procs import Children
from rtrelay.bench._provider import start_provider
from rtrelay.bench._relay import start_rtrelay, store_path
from rtrelay.bench._soak_session import (
    PROVIDER_CLOSE_AFTER_EVENTS,
    PROVIDER_CLOSE_CODE,
    SoakClient,
    SoakTally,
    soak_kind,
)
from rtrelay.ledger import schema

__all__ = [
    "RelaySample",
    "SoakOptions",
    "block_ends",
    "leak_verdict",
    "quick_soak",
    "run_soak",
    "scrape_metrics",
]

Log = Callable[[str], None]

_REPLY_AUDIO_MS: Final = 200
_CHUNK_MS: Final = 100
_QUIET_TIMEOUT: Final = 20.0
_SAMPLE_SETTLE: Final = 0.5
_LEDGER_TIMEOUT: Final = 30.0
_POLL: Final = 0.1
RSS_LEAK_KB_PER_1000: Final = 1024.0
"""RSS growth per 1,000 sessions over the second half of the run that counts as a leak:
1 KB per session. An idle relayed session holds ~34 KB (docs/bench.md), so leaking
even a small part of one per session crosses it; allocator noise stays far below."""
RSS_MIN_SPAN: Final = 2_000
"""Sessions the second half must span before RSS is judged: in a shorter run the
working set is still growing (imports, caches, freelists) and 1 KB per session is noise."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SoakOptions:
    """One soak run.

    Args:
        sessions: sessions in all, the warm-up included.
        concurrency: sessions open at a time.
        warmup: sessions before the ``before`` sample.
        checkpoint_every: sample at every multiple of this many sessions.
        bad_key_every: every N-th session offers a wrong key (0: none).
        max_seconds: stop starting sessions after this long (the samples and the
            ledger check still run).
        settle: idle seconds before the ``after`` sample.
    """

    sessions: int = 10_000
    concurrency: int = 50
    warmup: int = 200
    checkpoint_every: int = 1_000
    bad_key_every: int = 50
    max_seconds: float = 1_800.0
    settle: float = 2.0
    out: Path | None = None

    def __post_init__(self) -> None:
        if self.sessions < 1 or self.concurrency < 1:
            raise ValueError("sessions and concurrency must be at least 1")
        if not 0 <= self.warmup < self.sessions:
            raise ValueError("warmup must be between 0 and sessions - 1")
        if self.checkpoint_every < 1:
            raise ValueError("checkpoint_every must be at least 1")
        if self.bad_key_every < 0:
            raise ValueError("bad_key_every must be >= 0")
        if not self.max_seconds > 0 or self.settle < 0:
            raise ValueError("max_seconds must be positive and settle >= 0")


def quick_soak(options: SoakOptions) -> SoakOptions:
    """The smoke-test shape: 60 sessions, 10 at a time, a checkpoint every 20."""
    return dataclasses.replace(
        options,
        sessions=min(options.sessions, 60),
        concurrency=min(options.concurrency, 10),
        warmup=min(options.warmup, 10),
        checkpoint_every=min(options.checkpoint_every, 20),
        settle=min(options.settle, 1.0),
    )


def block_ends(options: SoakOptions) -> list[int]:
    """Session counts at which the relay is sampled: warm-up end, checkpoints, the total."""
    step = options.checkpoint_every
    marks = {options.warmup, options.sessions}
    marks.update(n for n in range(step, options.sessions, step) if n > options.warmup)
    return sorted(marks)


@dataclass(frozen=True, slots=True)
class RelaySample:
    """The relay process, idle, after ``sessions`` sessions (``elapsed_s`` into the soak)."""

    label: str
    sessions: int
    elapsed_s: float
    rss_kb: int
    fds: int
    threads: int
    tcp_connections: int
    """Open TCP sockets other than the listener (each is a fd too)."""
    tcp_to_provider: int
    """Of those, connections to the simulated provider (the rest face clients)."""
    tasks: int | None
    """asyncio tasks (``rtrelay_event_loop_tasks``, the scrape's own handler included)."""
    active_sessions: int | None
    files: tuple[str, ...]
    """Names of the regular files it holds open (what a descriptor count cannot say)."""
    quiet: bool
    """The relay reported no active session and an empty ledger queue before the sample."""

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class _RelayProbe:
    """Reads the relay process from the kernel and its ``/metrics``."""

    def __init__(self, pid: int, base_url: str, provider_port: int, started: float) -> None:
        self._proc = psutil.Process(pid)
        self._provider_port = provider_port
        self._metrics_url = f"{base_url}/metrics"
        self._started = started
        # A fresh connection per scrape: no keep-alive socket of ours stays in the counts.
        self._http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True))

    async def close(self) -> None:
        await self._http.close()

    async def scrape(self) -> dict[str, float]:
        return await scrape_metrics(self._http, self._metrics_url)

    async def sample(self, label: str, sessions: int) -> RelaySample:
        """Wait until the relay is idle (bounded), settle, then read it."""
        quiet = False
        deadline = time.monotonic() + _QUIET_TIMEOUT
        while time.monotonic() < deadline:
            values = await self.scrape()
            busy = values.get("rtrelay_active_sessions", 0) + values.get(
                "rtrelay_ledger_queue_depth", 0
            )
            if busy == 0:
                quiet = True
                break
            await asyncio.sleep(_POLL)
        await asyncio.sleep(_SAMPLE_SETTLE)
        proc = self._proc
        with proc.oneshot():
            rss = proc.memory_info().rss
            fds = proc.num_fds()
            threads = proc.num_threads()
            files = tuple(sorted(Path(f.path).name for f in proc.open_files()))
        tcp = [c for c in proc.net_connections(kind="tcp") if c.status != psutil.CONN_LISTEN]
        upstream = sum(1 for c in tcp if c.raddr and c.raddr.port == self._provider_port)
        values = await self.scrape()
        tasks = values.get("rtrelay_event_loop_tasks")
        active = values.get("rtrelay_active_sessions")
        return RelaySample(
            label=label,
            sessions=sessions,
            elapsed_s=round(time.monotonic() - self._started, 1),
            rss_kb=rss // 1024,
            fds=fds,
            threads=threads,
            tcp_connections=len(tcp),
            tcp_to_provider=upstream,
            tasks=None if tasks is None else int(tasks),
            active_sessions=None if active is None else int(active),
            files=files,
            quiet=quiet,
        )


async def scrape_metrics(http: aiohttp.ClientSession, url: str) -> dict[str, float]:
    """The unlabelled samples of a relay's ``/metrics`` (gauges such as its open sessions)."""
    async with http.get(url) as resp:
        resp.raise_for_status()
        text = await resp.text()
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if not sample.labels:
                values[sample.name] = sample.value
    return values


def leak_verdict(
    before: RelaySample, checkpoints: list[RelaySample], after: RelaySample
) -> dict[str, Any]:
    """Growth from ``before`` to ``after``, the RSS trend, and whether that looks like a leak.

    Everything is judged on the second half of the run (from the first checkpoint at
    half the sessions to ``after``), so what the relay opens once, lazily, after the
    warm-up (a thread and its database handles the first time SQLite is busy) is not
    taken for a leak: counts (fds, tasks, TCP connections, threads) must not grow at
    all there; RSS must not grow faster than ``RSS_LEAK_KB_PER_1000``, judged only when
    that half spans ``RSS_MIN_SPAN`` sessions. ``growth`` is from ``before`` to ``after``.
    """
    growth = {
        "rss_kb": after.rss_kb - before.rss_kb,
        "fds": after.fds - before.fds,
        "threads": after.threads - before.threads,
        "tcp_connections": after.tcp_connections - before.tcp_connections,
        "tasks": None
        if after.tasks is None or before.tasks is None
        else after.tasks - before.tasks,
    }
    points = [before, *checkpoints]
    half = [p for p in points if p.sessions >= points[-1].sessions / 2]
    slope_all = _slope_per_1000(points)
    if len(half) < 3:
        half = points
    slope_half = _slope_per_1000(half)
    rss_judged = half[-1].sessions - half[0].sessions >= RSS_MIN_SPAN
    start = half[0]
    late = {
        "fds": after.fds - start.fds,
        "threads": after.threads - start.threads,
        "tcp_connections": after.tcp_connections - start.tcp_connections,
        "tasks": None if after.tasks is None or start.tasks is None else after.tasks - start.tasks,
    }
    reasons = [
        f"{name} grew by {value} in the second half"
        for name, value in late.items()
        if value is not None and value > 0
    ]
    if rss_judged and slope_half is not None and slope_half > RSS_LEAK_KB_PER_1000:
        reasons.append(
            f"RSS grows {slope_half:.0f} KB per 1,000 sessions "
            f"(limit {RSS_LEAK_KB_PER_1000:.0f}) in the second half"
        )
    if not (before.quiet and after.quiet):
        reasons.append("the relay was not idle when sampled")
    return {
        "growth": growth,
        "rss_kb_per_1000_sessions": slope_all,
        "rss_kb_per_1000_sessions_second_half": slope_half,
        "rss_limit_kb_per_1000_sessions": RSS_LEAK_KB_PER_1000,
        "rss_judged": rss_judged,
        "second_half_from": start.sessions,
        "second_half_growth": late,
        "leak_suspected": bool(reasons),
        "reasons": reasons,
    }


def _slope_per_1000(points: list[RelaySample]) -> float | None:
    """Least-squares RSS slope in KB per 1,000 sessions (``None`` with fewer than 2 points)."""
    if len(points) < 2:
        return None
    xs = [p.sessions for p in points]
    ys = [p.rss_kb for p in points]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    var = sum((x - mx) ** 2 for x in xs)
    if var == 0:
        return None
    cov = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    return round(cov / var * 1000, 1)


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


async def run_soak(options: SoakOptions, *, workdir: Path, log: Log = _stderr) -> dict[str, Any]:
    """Run the soak; child logs, config and the ledger go to ``workdir``.

    Returns:
        The results document (docs/bench.md, "Soak"): ``meta``, ``sessions`` (what the
        clients saw), ``before`` / ``checkpoints`` / ``after`` samples, ``verdict``,
        ``steal`` (the host's, per block of sessions) and ``ledger``.
    """
    await asyncio.to_thread(workdir.mkdir, parents=True, exist_ok=True)
    started_at = datetime.now(UTC)
    doc: dict[str, Any] = {"mode": "soak", "meta": _meta(options, started_at)}
    tally = SoakTally()
    async with Children() as children:
        try:
            await _soak(options, children, workdir, doc, tally, log)
        finally:
            doc["sessions"] = tally.as_dict()
            doc["meta"]["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
            doc["meta"]["elapsed_s"] = round((datetime.now(UTC) - started_at).total_seconds(), 1)
    return doc


async def _soak(
    options: SoakOptions,
    children: Children,
    workdir: Path,
    doc: dict[str, Any],
    tally: SoakTally,
    log: Log,
) -> None:
    provider = await start_provider(
        children,
        workdir,
        reply_audio_ms=_REPLY_AUDIO_MS,
        chunk_ms=_CHUNK_MS,
        pacing=0.0,
        extra=(
            "--close-after-events",
            str(PROVIDER_CLOSE_AFTER_EVENTS),
            "--close-code",
            str(PROVIDER_CLOSE_CODE),
            "--close-reason",
            "soak: the provider ends the session",
        ),
    )
    doc["provider"] = {"url": provider.base_url, "pid": provider.pid}
    relay = await start_rtrelay(
        children, workdir, provider.base_url, max_sessions=2 * options.concurrency
    )
    assert relay.pid is not None
    split = urlsplit(relay.url)
    base_url = f"http://{split.netloc}"
    doc["relay"] = {"url": relay.url, "pid": relay.pid}
    log(f"soak: provider pid {provider.pid}, rtrelay pid {relay.pid} at {base_url}")
    headers = dict(relay.headers)
    bad = {"Authorization": _wrong_key(headers["Authorization"])}
    started = time.monotonic()
    deadline = started + options.max_seconds
    provider_port = urlsplit(provider.base_url).port
    assert provider_port is not None
    probe = _RelayProbe(relay.pid, base_url, provider_port, started)
    connector = aiohttp.TCPConnector(limit=0)
    try:
        async with aiohttp.ClientSession(connector=connector) as http:
            client = SoakClient(http, relay.url, headers, bad, tally)
            samples: list[RelaySample] = []
            steal: list[dict[str, Any]] = []
            done = 0
            for end in block_ends(options):
                host = HostCpu.read()
                done = await _block(client, options, done, end, deadline)
                steal.append(steal_window(host, HostCpu.read(), phase="soak", sessions=done))
                label = "before" if not samples else "checkpoint"
                sample = await probe.sample(label, done)
                samples.append(sample)
                log(_sample_line(sample, tally))
                if done < end:
                    doc["meta"]["stopped_by"] = f"--max-seconds {options.max_seconds:g}"
                    log(f"soak: stopped after {done} sessions by the time cap")
                    break
            if len(samples) < 2:  # stopped within the warm-up: nothing to compare
                samples.append(await probe.sample("checkpoint", done))
            await asyncio.sleep(options.settle)
            after = await probe.sample("after", done)
            log(_sample_line(after, tally))
    finally:
        await probe.close()
    before, checkpoints = samples[0], samples[1:]
    doc["before"] = before.as_dict()
    doc["checkpoints"] = [s.as_dict() for s in checkpoints]
    doc["after"] = after.as_dict()
    loaded = checkpoints[-1].elapsed_s - before.elapsed_s
    measured = checkpoints[-1].sessions - before.sessions
    doc["sessions_per_s"] = round(measured / loaded, 1) if loaded > 0 else None
    doc["verdict"] = leak_verdict(before, checkpoints, after)
    doc["steal"] = steal_summary(steal)
    doc["ledger"] = await _ledger_check(store_path(workdir, "rtrelay"), tally)
    log(f"soak: ledger {'ok' if doc['ledger']['ok'] else 'MISMATCH'}: {doc['ledger']}")


async def _block(
    client: SoakClient, options: SoakOptions, start: int, end: int, deadline: float
) -> int:
    """Sessions ``start`` to ``end`` with ``concurrency`` workers; returns how many ran."""
    indices = iter(range(start, end))
    ran = start

    async def worker() -> None:
        nonlocal ran
        for index in indices:  # one iterator shared by the workers: each index runs once
            if time.monotonic() > deadline:
                return
            ran += 1
            await client.run(soak_kind(index, options.bad_key_every))

    await asyncio.gather(*(worker() for _ in range(min(options.concurrency, end - start))))
    return ran


def _wrong_key(authorization: str) -> str:
    """The good key with its secret part replaced: a known prefix, a wrong secret."""
    scheme, _, secret = authorization.partition(" ")
    head, _, tail = secret.rpartition("_")
    return f"{scheme} {head}_{'0' * len(tail)}"


async def _ledger_check(path: Path, tally: SoakTally) -> dict[str, Any]:
    """Read the ledger back until it matches what the clients saw (bounded), and compare."""
    deadline = time.monotonic() + _LEDGER_TIMEOUT
    while True:
        rows = await asyncio.to_thread(_ledger_rows, path)
        checks = {
            "session_rows": (rows["session_rows"], tally.connected),
            "open_session_rows": (rows["open_session_rows"], 0),
            "response_usage_rows": (rows["response_usage_rows"], tally.responses),
            "refusals_recorded": (rows["refusals_recorded"], tally.refused),
            "key_spent_usd": (rows["key_spent_usd"], rows["usage_cost_usd"]),
        }
        ok = all(seen == wanted for seen, wanted in checks.values())
        if ok or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)
    return {
        "ok": ok,
        "checks": {
            name: {"ledger": seen, "expected": wanted, "ok": seen == wanted}
            for name, (seen, wanted) in checks.items()
        },
        "usage_rows": rows["usage_rows"],
    }


def _ledger_rows(path: Path) -> dict[str, Any]:
    engine = sa.create_engine(f"sqlite:///file:{path}?mode=ro&uri=true")
    try:
        with engine.connect() as conn:

            def count(table: sa.Table, *where: Any) -> int:
                query = sa.select(sa.func.count()).select_from(table).where(*where)
                return int(conn.scalar(query) or 0)

            sessions, usage = schema.sessions, schema.usage_records
            counted = conn.scalar(sa.select(sa.func.sum(schema.refusal_counts.c.count))) or 0
            spent = conn.scalar(sa.select(sa.func.sum(schema.api_keys.c.spent_usd)))
            cost = conn.scalar(sa.select(sa.func.sum(usage.c.cost_usd)))
            return {
                "session_rows": count(sessions),
                "open_session_rows": count(sessions, sessions.c.ended_at.is_(None)),
                "usage_rows": count(usage),
                "response_usage_rows": count(usage, usage.c.kind == "response"),
                "refusals_recorded": count(schema.refusals) + int(counted),
                "key_spent_usd": str(spent) if spent is not None else "0",
                "usage_cost_usd": str(cost) if cost is not None else "0",
            }
    finally:
        engine.dispose()


def _sample_line(sample: RelaySample, tally: SoakTally) -> str:
    return (
        f"  {sample.label:10} {sample.sessions:6} sessions {sample.elapsed_s:7.1f} s  "
        f"RSS {sample.rss_kb / 1024:7.1f} MB  fds {sample.fds:4}  tasks {sample.tasks}  "
        f"threads {sample.threads}  tcp {sample.tcp_connections} "
        f"({sample.tcp_to_provider} upstream)  "
        f"(responses {tally.responses}, refused {tally.refused}, failed {tally.failed})"
    )


def _meta(options: SoakOptions, started: datetime) -> dict[str, Any]:
    return {
        "started": started.isoformat(timespec="seconds"),
        "host_cpus": os.cpu_count(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "aiohttp": aiohttp.__version__,
        "platform": platform.platform(),
        "stopped_by": None,
        "options": {
            "sessions": options.sessions,
            "concurrency": options.concurrency,
            "warmup": options.warmup,
            "checkpoint_every": options.checkpoint_every,
            "bad_key_every": options.bad_key_every,
            "max_seconds": options.max_seconds,
            "settle_s": options.settle,
            "reply_audio_ms": _REPLY_AUDIO_MS,
            "provider_close_after_events": PROVIDER_CLOSE_AFTER_EVENTS,
        },
    }
