"""Figures from rounds: percentiles, added latency over direct, CPU per frame, memory per session.

Added latency is a difference of distributions measured under the same load in
interleaved rounds: the probe round trip's percentile through a target minus the same
percentile direct. A probe crosses the target twice (one frame each way), so the
figure per forwarded frame is half of it; both are reported.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any, Final

from rtrelay.bench._round import RoundResult

__all__ = ["PERCENTILES", "idle_rss", "percentiles", "target_figures"]

PERCENTILES: Final = (("p50", 50.0), ("p99", 99.0), ("p999", 99.9))
_KB: Final = 1024


def percentiles(
    samples_ns: Iterable[int],
    *,
    scale: float = 1e-6,
    points: Sequence[tuple[str, float]] = PERCENTILES,
) -> dict[str, float | int]:
    """``points`` (p50/p99/p999) and max (nearest rank) of ``samples_ns`` in ms, and the count."""
    ordered = sorted(samples_ns)
    out: dict[str, float | int] = {"count": len(ordered)}
    if not ordered:
        return out
    for name, q in points:
        rank = max(1, math.ceil(q / 100 * len(ordered)))
        out[name] = round(ordered[rank - 1] * scale, 4)
    out["max"] = round(ordered[-1] * scale, 4)
    return out


def _difference(a: dict[str, float | int], b: dict[str, float | int]) -> dict[str, float]:
    return {name: round(a[name] - b[name], 4) for name, _ in PERCENTILES if name in a and name in b}


def _halved(d: dict[str, float]) -> dict[str, float]:
    return {k: round(v / 2, 4) for k, v in d.items()}


def _rss_kb_per_session(rss: int | None, baseline: int | None, sessions: int) -> float | None:
    if rss is None or baseline is None or sessions <= 0:
        return None
    return round(max(0, rss - baseline) / sessions / _KB, 1)


def idle_rss(result: RoundResult, baseline: int | None) -> dict[str, Any]:
    """Memory per idle session: the target's largest RSS with them open, over its baseline."""
    return {
        "sessions": result.sessions,
        "connected": result.recorder.connected,
        "rss_baseline_mb": None if baseline is None else round(baseline / _KB / _KB, 1),
        "rss_mb": None
        if result.target_rss_max is None
        else round(result.target_rss_max / _KB / _KB, 1),
        "kb_per_session": _rss_kb_per_session(
            result.target_rss_max, baseline, result.recorder.connected
        ),
    }


def target_figures(
    rounds: Sequence[RoundResult],
    direct: Sequence[RoundResult],
    *,
    rss_baseline: int | None,
) -> dict[str, Any]:
    """All figures of one target at one session count, pooled over its rounds."""
    window = sum(r.window_s for r in rounds)
    frames = sum(r.tally.frames for r in rounds)
    nbytes = sum(r.tally.bytes for r in rounds)
    rtt = percentiles(s for r in rounds for s in r.recorder.rtts_ns)
    handshake = percentiles(s for r in rounds for s in r.recorder.handshakes_ns)
    figures: dict[str, Any] = {
        "rounds": len(rounds),
        "sessions": rounds[0].sessions if rounds else 0,
        "window_s": round(window, 2),
        "frames_sent": sum(r.tally.frames_sent for r in rounds),
        "frames_received": sum(r.tally.frames_received for r in rounds),
        "bytes_sent": sum(r.tally.bytes_sent for r in rounds),
        "bytes_received": sum(r.tally.bytes_received for r in rounds),
        "frames_per_s": round(frames / window, 1) if window else 0.0,
        "audio_deltas": sum(r.tally.audio_deltas for r in rounds),
        "responses": sum(r.tally.responses for r in rounds),
        "rtt_ms": rtt,
        "rtt_ms_by_round": [
            {k: v for k, v in percentiles(r.recorder.rtts_ns).items() if k in ("p50", "p99")}
            for r in rounds
        ],
        "handshake_ms": handshake,
    }
    if direct and rounds and rounds[0].target != "direct":
        direct_rtt = percentiles(s for r in direct for s in r.recorder.rtts_ns)
        direct_hs = percentiles(s for r in direct for s in r.recorder.handshakes_ns)
        added = _difference(rtt, direct_rtt)
        figures["added_rtt_ms"] = added
        figures["added_per_frame_ms"] = _halved(added)
        figures["added_handshake_ms"] = _difference(handshake, direct_hs)
    steal = [r.steal["steal_pct"] for r in rounds]
    figures["steal_pct_by_round"] = steal
    figures["steal_flagged_rounds"] = sum(1 for r in rounds if r.steal["flagged"])
    figures.update(_failures(rounds))
    figures.update(_cpu(rounds, frames, nbytes, window))
    rss_max = max((r.target_rss_max for r in rounds if r.target_rss_max is not None), default=None)
    figures["rss_mb"] = None if rss_max is None else round(rss_max / _KB / _KB, 1)
    figures["rss_kb_per_active_session"] = _rss_kb_per_session(
        rss_max, rss_baseline, rounds[0].sessions if rounds else 0
    )
    return figures


def _failures(rounds: Sequence[RoundResult]) -> dict[str, Any]:
    connect: Counter[str] = Counter()
    dropped: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    for r in rounds:
        connect += r.recorder.connect_failures
        dropped += r.recorder.dropped
        errors += r.recorder.errors
    return {
        "sessions_failed": sum(r.recorder.failed_sessions for r in rounds),
        "connect_failures": dict(connect),
        "dropped_sessions": dict(dropped),
        "error_events": dict(errors),
    }


def _cpu(rounds: Sequence[RoundResult], frames: int, nbytes: int, window: float) -> dict[str, Any]:
    provider = sum(r.provider_cpu_s for r in rounds)
    loadgen = sum(r.loadgen_cpu_s for r in rounds)
    busy = [r.machine_busy_s for r in rounds]
    machine = None if None in busy else sum(b for b in busy if b is not None)
    out: dict[str, Any] = {
        "machine_busy_cores": round(machine / window, 3)
        if window and machine is not None
        else None,
        "provider_cpu_cores": round(provider / window, 3) if window else None,
        "loadgen_cpu_cores": round(loadgen / window, 3) if window else None,
    }
    cpu_values = [r.target_cpu_s for r in rounds]
    if any(v is None for v in cpu_values) or not rounds:
        out.update(cpu_s=None, cpu_cores=None, cpu_us_per_frame=None, cpu_s_per_gb=None)
        return out
    cpu = sum(v for v in cpu_values if v is not None)
    # Per round too: their spread is the run's own noise on this figure.
    out["cpu_us_per_frame_by_round"] = [
        round(v * 1e6 / r.tally.frames, 2) if v is not None and r.tally.frames else None
        for v, r in zip(cpu_values, rounds, strict=True)
    ]
    cores = cpu / window if window else 0.0
    out.update(
        cpu_s=round(cpu, 3),
        cpu_cores=round(cpu / window, 3) if window else None,
        cpu_us_per_frame=round(cpu * 1e6 / frames, 2) if frames else None,
        cpu_s_per_gb=round(cpu / (nbytes / 1e9), 2) if nbytes else None,
        # An extrapolation, not a measurement: sessions one fully busy core would carry at
        # this CPU cost per session (latency degrades well before a core is saturated).
        sessions_per_core_cpu_bound=round(rounds[0].sessions / cores) if cores > 0 else None,
    )
    return out
