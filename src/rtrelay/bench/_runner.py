"""The whole benchmark: start the provider and targets, measure them in turn, stop everything.

Order of work, for each target (all against the same simulated provider):

1. warm-up: a few sessions, so first-use costs (imports, caches, the key lookup) are paid;
   the target's RSS after it is the baseline memory figures are measured from;
2. idle memory: K silent sessions held open, RSS over the baseline divided by K;
3. the main measurement: ``rounds`` rounds of N sessions per target, interleaved
   (direct, rtrelay, nginx, litellm, direct, rtrelay, …) so slow drift on a shared
   machine hits every target alike; each round's host steal is read at its edges;
4. optionally the capacity search: N stepped up, each step interleaved the same way,
   until each target's added p99 reaches the limit or a session fails.

With ``protocol="live"`` every target is asked on its GPT-Live route
(``/v1/live/sessions``) and the sessions speak GPT-Live (``_live_session``).
"""

from __future__ import annotations

import asyncio
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import aiohttp

from rtrelay.bench._frames import Audio
from rtrelay.bench._hoststat import steal_summary
from rtrelay.bench._litellm import DEFAULT_VENV, LiteLLMUnavailable, start_litellm
from rtrelay.bench._live_session import LiveBenchSession
from rtrelay.bench._nginx import NginxUnavailable, start_nginx
from rtrelay.bench._options import ALL_TARGETS, BenchOptions, TargetName
from rtrelay.bench._procs import ChildFailed, Children, ResourceMeter
from rtrelay.bench._provider import Provider, start_provider
from rtrelay.bench._relay import RelayBuild, sources_meta, start_rtrelay, tree_for
from rtrelay.bench._round import Meters, RoundResult, run_round, session_kinds
from rtrelay.bench._session import BenchSession, LoadPlan, SessionKind
from rtrelay.bench._stats import idle_rss, target_figures
from rtrelay.bench._target import Target, live_target

__all__ = ["run_bench"]

Log = Callable[[str], None]

WARMUP_SECONDS: Final = 1.0
IDLE_HOLD_SECONDS: Final = 1.5
_ROUND_OVERHEAD: Final = 2.5
"""Seconds a round costs beyond ramp and window (settle, closing), for the time budget."""
LITELLM_NOT_LIVE: Final = (
    "not run with --protocol live: LiteLLM serves GPT-Live on /v1/live/sessions only "
    "from v1.107.0 (docs.litellm.ai/docs/live_sessions), and this bench's LiteLLM venv "
    "is neither pinned to such a version nor configured for a Live model"
)


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


@dataclass(slots=True)
class _Bench:
    options: BenchOptions
    provider: Provider
    targets: dict[TargetName, Target]
    meters: dict[TargetName, Meters]
    plan: LoadPlan
    log: Log
    baselines: dict[TargetName, int | None] = field(default_factory=dict)
    steal: list[dict[str, Any]] = field(default_factory=list)
    """Every measured window's host steal, in order (``results.json``'s ``steal``)."""

    async def round(
        self, name: TargetName, kinds: list[SessionKind], *, ramp: float, duration: float
    ) -> RoundResult:
        session = LiveBenchSession if self.options.protocol == "live" else BenchSession
        return await run_round(
            self.targets[name],
            kinds,
            self.plan,
            self.meters[name],
            ramp=ramp,
            duration=duration,
            session=session,
        )

    async def prepare(self, name: TargetName) -> dict[str, Any]:
        """Warm-up, baseline RSS, then the idle-session memory figure."""
        options = self.options
        warm = session_kinds(options.warmup_sessions, 0, 0)
        await self.round(name, warm, ramp=0.2, duration=WARMUP_SECONDS)
        meter = self.meters[name].target
        baseline = meter.read().rss_bytes if meter is not None else None
        self.baselines[name] = baseline
        count = options.idle_rss_sessions or options.sessions
        idle = await self.round(
            name,
            session_kinds(0, 0, count),
            ramp=options.ramp_for(count),
            duration=IDLE_HOLD_SECONDS,
        )
        return idle_rss(idle, baseline)

    async def interleaved(
        self,
        names: Sequence[TargetName],
        kinds: list[SessionKind],
        *,
        rounds: int,
        duration: float,
        phase: str,
    ) -> dict[TargetName, list[RoundResult]]:
        """``rounds`` rounds of each target in turn: A B C A B C …"""
        results: dict[TargetName, list[RoundResult]] = {name: [] for name in names}
        ramp = self.options.ramp_for(len(kinds))
        for index in range(rounds):
            for name in names:
                result = await self.round(name, kinds, ramp=ramp, duration=duration)
                results[name].append(result)
                self.steal.append(
                    {
                        "phase": phase,
                        "sessions": len(kinds),
                        "round": index + 1,
                        "target": name,
                        "window_s": round(result.window_s, 2),
                        **result.steal,
                    }
                )
                self.log(_round_line(index + 1, rounds, result))
        return results

    def figures(
        self, results: dict[TargetName, list[RoundResult]]
    ) -> dict[TargetName, dict[str, Any]]:
        direct = results.get("direct", [])
        return {
            name: target_figures(rounds, direct, rss_baseline=self.baselines.get(name))
            for name, rounds in results.items()
        }


async def run_bench(options: BenchOptions, *, workdir: Path, log: Log = _stderr) -> dict[str, Any]:
    """Run the benchmark ``options`` describe; child logs and files go to ``workdir``.

    Returns:
        The results document (see docs/bench.md): ``meta``, ``targets``, ``skipped``,
        ``idle_rss``, ``runs`` (one per session count measured) and ``capacity``.
    """
    await asyncio.to_thread(workdir.mkdir, parents=True, exist_ok=True)
    started = datetime.now(UTC)
    doc: dict[str, Any] = {
        "meta": _meta(options, started),
        "provider": None,
        "targets": {},
        "skipped": {},
        "idle_rss": {},
        "runs": [],
        "capacity": None,
        "steal": None,
    }
    async with Children() as children:
        try:
            bench = await _start(options, children, workdir, doc, log)
            names = list(bench.targets)
            for name in names:
                log(f"{name}: warm-up and idle memory")
                doc["idle_rss"][name] = await bench.prepare(name)
            kinds = session_kinds(options.sessions, options.text_sessions, options.idle_sessions)
            rounds = f"{options.rounds} rounds x {options.round_seconds:g} s"
            log(f"main: {len(kinds)} sessions, {rounds}")
            results = await bench.interleaved(
                names, kinds, rounds=options.rounds, duration=options.round_seconds, phase="main"
            )
            doc["runs"].append(
                {"phase": "main", "sessions": len(kinds), "targets": bench.figures(results)}
            )
            if options.capacity:
                doc["capacity"] = await _capacity(bench, names, doc, log)
            doc["steal"] = steal_summary(bench.steal)
        finally:
            doc["meta"]["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
            doc["meta"]["elapsed_s"] = round((datetime.now(UTC) - started).total_seconds(), 1)
    return doc


async def _start(
    options: BenchOptions, children: Children, workdir: Path, doc: dict[str, Any], log: Log
) -> _Bench:
    provider = await start_provider(
        children, workdir, reply_audio_ms=options.reply_audio_ms, chunk_ms=options.chunk_ms
    )
    log(f"simulated provider: {provider.base_url} (pid {provider.pid})")
    doc["provider"] = {"url": provider.base_url, "pid": provider.pid}
    route = live_target if options.protocol == "live" else _same
    targets: dict[TargetName, Target] = {"direct": route(provider.direct)}
    most = max(options.sessions, options.max_sessions if options.capacity else 0)
    most += options.text_sessions + options.idle_sessions + options.warmup_sessions
    most = max(most, options.idle_rss_sessions or 0)
    for name in options.measured_targets[1:]:
        if name == "litellm" and options.protocol == "live":
            doc["skipped"][name] = LITELLM_NOT_LIVE
            log(f"{name}: skipped: {LITELLM_NOT_LIVE}")
            continue
        try:
            if name in ("rtrelay", "baseline", "rtrelay-core"):
                src = tree_for(name, relay_src=options.relay_src, baseline_src=options.baseline_src)
                target = await start_rtrelay(
                    children,
                    workdir,
                    provider.base_url,
                    max_sessions=2 * most,
                    core=name == "rtrelay-core",
                    name=name,
                    build=RelayBuild(src=src),
                )
            elif name == "nginx":
                target = await start_nginx(
                    children, workdir, provider.base_url, install=options.install_nginx
                )
            else:
                target = await start_litellm(
                    children, workdir, provider.base_url, venv_dir=options.litellm_venv
                )
        except (NginxUnavailable, LiteLLMUnavailable, ChildFailed) as exc:
            doc["skipped"][name] = " ".join(str(exc).split())[:300]
            log(f"{name}: skipped: {exc}")
            continue
        targets[name] = target = route(target)
        log(f"{name}: {target.url.split('?')[0]} (pid {target.pid})")
    for name, target in targets.items():
        doc["targets"][name] = {"url": target.url, "pid": target.pid, "workers": target.workers}
    own = ResourceMeter(os.getpid(), descendants=False)
    provider_meter = ResourceMeter(provider.pid)
    meters = {
        name: Meters(ResourceMeter(t.pid) if t.pid is not None else None, provider_meter, own)
        for name, t in targets.items()
    }
    plan = LoadPlan(Audio(options.chunk_ms), options.turn_ms, options.probe_ms)
    return _Bench(options, provider, targets, meters, plan, log)


def _same(target: Target) -> Target:
    return target


async def _capacity(
    bench: _Bench, names: list[TargetName], doc: dict[str, Any], log: Log
) -> dict[str, Any]:
    """Step N up; a target stays in while its added p99 is under the limit and nothing failed."""
    options = bench.options
    limit = options.latency_limit_ms
    relays = [n for n in names if n != "direct"]
    alive = list(relays)
    outcome: dict[str, dict[str, Any]] = {
        name: {
            "sessions": None,
            "per_core": None,
            "lower_bound": False,
            "failed_at": None,
            "reason": None,
        }
        for name in relays
    }
    budget_end = time.monotonic() + options.capacity_budget
    stopped_by: str | None = None
    steps = [n for n in sorted(set(options.capacity_steps)) if n <= options.max_sessions]
    for n in steps:
        if not alive:
            break
        ramp = options.ramp_for(n)
        per_round = ramp + options.capacity_duration / options.capacity_rounds + _ROUND_OVERHEAD
        cost = per_round * options.capacity_rounds * (1 + len(alive))
        if time.monotonic() + cost > budget_end:
            stopped_by = f"time budget of {options.capacity_budget:g} s"
            break
        log(f"capacity: {n} sessions, targets {', '.join(alive)}")
        results = await bench.interleaved(
            ["direct", *alive],
            session_kinds(n, 0, 0),
            rounds=options.capacity_rounds,
            duration=options.capacity_duration / options.capacity_rounds,
            phase="capacity",
        )
        figures = bench.figures(results)
        doc["runs"].append({"phase": "capacity", "sessions": n, "targets": figures})
        for name in list(alive):
            reason = _miss(figures[name], limit)
            if reason is None:
                workers = bench.targets[name].workers
                outcome[name].update(sessions=n, per_core=n // workers)
            else:
                outcome[name].update(failed_at=n, reason=reason)
                alive.remove(name)
                log(f"capacity: {name} stops at {n}: {reason}")
    for name in alive:
        # Never failed: what it carried is only a lower bound of its capacity.
        outcome[name]["lower_bound"] = True
        outcome[name]["reason"] = stopped_by or f"--max-sessions {options.max_sessions} reached"
    return {"latency_limit_ms": limit, "targets": outcome}


def _miss(figures: dict[str, Any], limit: float) -> str | None:
    """Why a step does not count for a target, or ``None`` when it does."""
    if figures["sessions_failed"]:
        return f"{figures['sessions_failed']} session(s) failed"
    p99 = figures.get("added_rtt_ms", {}).get("p99")
    if p99 is None:
        return "no latency samples"
    if p99 >= limit:
        return f"added p99 {p99:.2f} ms >= {limit:g} ms"
    return None


def _round_line(index: int, rounds: int, result: RoundResult) -> str:
    rec = result.recorder
    cpu = "" if result.target_cpu_s is None else f" cpu {result.target_cpu_s:.2f}s"
    return (
        f"  round {index}/{rounds} {result.target:8} {result.sessions} sessions "
        f"{result.tally.frames} frames {len(rec.rtts_ns)} probes{cpu} "
        f"failed {rec.failed_sessions}"
    )


def _meta(options: BenchOptions, started: datetime) -> dict[str, Any]:
    load = os.getloadavg()
    return {
        "started": started.isoformat(timespec="seconds"),
        "host_cpus": os.cpu_count(),
        "load_average_at_start": [round(x, 2) for x in load],
        "python": platform.python_version(),
        "aiohttp": aiohttp.__version__,
        "platform": platform.platform(),
        "options": {
            "protocol": options.protocol,
            "sessions": options.sessions,
            "text_sessions": options.text_sessions,
            "idle_sessions": options.idle_sessions,
            "targets": [t for t in ALL_TARGETS if t in options.measured_targets],
            "duration_s": options.duration,
            "rounds": options.rounds,
            "chunk_ms": options.chunk_ms,
            "turn_ms": options.turn_ms,
            "reply_audio_ms": options.reply_audio_ms,
            "probe_ms": options.probe_ms,
            "capacity": options.capacity,
            "max_sessions": options.max_sessions,
            "latency_limit_ms": options.latency_limit_ms,
            "litellm_venv": str(options.litellm_venv or DEFAULT_VENV),
        },
        **sources_meta(relay_src=options.relay_src, baseline_src=options.baseline_src),
    }
