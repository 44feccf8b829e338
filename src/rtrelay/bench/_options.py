"""What one ``rtrelay bench`` run does: load shape, targets, capacity search, output."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

__all__ = [
    "ALL_TARGETS",
    "DEFAULT_CAPACITY_STEPS",
    "DEFAULT_TARGETS",
    "LIVE_PAUSE_MS",
    "BenchOptions",
    "Protocol",
    "TargetName",
    "quick",
]

TargetName = Literal["direct", "rtrelay", "baseline", "rtrelay-core", "nginx", "litellm"]
ALL_TARGETS: Final[tuple[TargetName, ...]] = (
    "direct",
    "rtrelay",
    "baseline",
    "rtrelay-core",
    "nginx",
    "litellm",
)
"""Every target, in table order; ``baseline`` is ``rtrelay`` from ``--baseline-src``."""
DEFAULT_TARGETS: Final[tuple[TargetName, ...]] = ("direct", "rtrelay", "rtrelay-core", "nginx")
DEFAULT_CAPACITY_STEPS: Final = (50, 100, 200, 300, 400, 600, 800, 1000, 1200, 1600, 2000)
Protocol = Literal["realtime", "live"]
"""Which voice protocol the sessions speak: the Realtime API or GPT-Live (issue 14)."""
LIVE_PAUSE_MS: Final = 600
"""A GPT-Live user is silent for the last this many ms of each turn: the provider's VAD
ends a turn after 200 ms of quiet (server_vad's default), so every turn is answered."""


@dataclass(frozen=True, slots=True, kw_only=True)
class BenchOptions:
    """One benchmark run. Times are seconds unless the name says ``_ms``.

    Load:
        protocol: ``realtime`` (``/v1/realtime``: turns committed by the client) or
            ``live`` (``/v1/live/sessions``: full duplex, turns ended by the provider's
            VAD after a pause of ``LIVE_PAUSE_MS``; no text sessions).
        sessions: concurrent audio sessions in the main measurement.
        text_sessions / idle_sessions: extra text-only and silent sessions alongside them.
        chunk_ms: audio per ``input_audio_buffer.append`` (24 kHz pcm16), sent in real time.
        turn_ms: the user speaks this long, then commits and asks for a response.
        reply_audio_ms: length of each spoken reply the simulated provider streams back.
        probe_ms: interval of the latency probes each session sends.
        ramp: seconds over which sessions connect (``None``: scaled with the count).

    Builds:
        relay_src: the source tree (``src/``) the rtrelay targets run (``None``: this
            install).
        baseline_src: another tree, run as the ``baseline`` target (``rtrelay``'s
            config) interleaved with the others: a change against its parent, same noise.

    Measurement:
        duration: measured seconds per target, split into ``rounds`` interleaved rounds.
        capacity: step the session count up until a target misses ``latency_limit_ms``.
        max_sessions / capacity_budget: bounds of that search (count, wall-clock seconds).
    """

    protocol: Protocol = "realtime"
    sessions: int = 100
    text_sessions: int = 0
    idle_sessions: int = 0
    targets: tuple[TargetName, ...] = DEFAULT_TARGETS
    duration: float = 20.0
    rounds: int = 4
    chunk_ms: int = 100
    turn_ms: int = 3000
    reply_audio_ms: int = 2000
    probe_ms: int = 100
    ramp: float | None = None
    warmup_sessions: int = 5
    idle_rss_sessions: int | None = None
    """Idle sessions opened to measure memory per idle session (default: ``sessions``)."""
    capacity: bool = False
    capacity_steps: tuple[int, ...] = DEFAULT_CAPACITY_STEPS
    max_sessions: int = 800
    capacity_duration: float = 8.0
    capacity_rounds: int = 2
    capacity_budget: float = 1200.0
    latency_limit_ms: float = 5.0
    out: Path | None = None
    plots: bool = True
    install_nginx: bool = True
    """Install the Debian ``nginx`` package when the nginx target needs it and it is missing."""
    relay_src: Path | None = None
    baseline_src: Path | None = None
    litellm_venv: Path | None = None
    """Where LiteLLM is installed (default ``~/.cache/rtrelay-bench/litellm-venv``)."""

    def __post_init__(self) -> None:
        if self.sessions < 1:
            raise ValueError("sessions must be at least 1")
        if self.text_sessions < 0 or self.idle_sessions < 0:
            raise ValueError("text_sessions and idle_sessions must be >= 0")
        unknown = set(self.targets) - set(ALL_TARGETS)
        if unknown:
            raise ValueError(f"unknown target(s): {', '.join(sorted(unknown))}")
        if self.duration <= 0 or self.rounds < 1:
            raise ValueError("duration must be positive and rounds at least 1")
        if not 10 <= self.chunk_ms <= 1000:
            raise ValueError("chunk_ms must be between 10 and 1000")
        if self.turn_ms < self.chunk_ms:
            raise ValueError("turn_ms must be at least chunk_ms")
        if self.protocol == "live" and self.text_sessions:
            raise ValueError("GPT-Live sessions have no typed turns: no text_sessions with live")
        if self.protocol == "live" and self.turn_ms < LIVE_PAUSE_MS + self.chunk_ms:
            raise ValueError(f"with live, turn_ms must be at least {LIVE_PAUSE_MS} + chunk_ms")
        if self.probe_ms < 10:
            raise ValueError("probe_ms must be at least 10")
        if self.max_sessions < 1:
            raise ValueError("max_sessions must be at least 1")
        if "baseline" in self.targets and self.baseline_src is None:
            raise ValueError("the baseline target needs baseline_src (--baseline-src)")

    @property
    def measured_targets(self) -> tuple[TargetName, ...]:
        """The targets, ``direct`` first (every figure is relative to it); ``baseline``
        after ``rtrelay`` whenever ``baseline_src`` is given."""
        wanted = set(self.targets) | ({"baseline"} if self.baseline_src is not None else set())
        return ("direct", *(t for t in ALL_TARGETS if t in wanted and t != "direct"))

    @property
    def round_seconds(self) -> float:
        return self.duration / self.rounds

    def ramp_for(self, sessions: int) -> float:
        """Connect sessions over this long: about 150 handshakes a second, within 0.5 to 5 s."""
        if self.ramp is not None:
            return self.ramp
        return min(5.0, max(0.5, sessions / 150))


def quick(options: BenchOptions) -> BenchOptions:
    """A few sessions for a few seconds: the smoke-test shape of ``options``."""
    return dataclasses.replace(
        options,
        sessions=min(options.sessions, 8),
        text_sessions=min(options.text_sessions, 2),
        idle_sessions=min(options.idle_sessions, 2),
        duration=3.0,
        rounds=2,
        turn_ms=1000,
        reply_audio_ms=400,
        ramp=0.5,
        warmup_sessions=2,
        capacity=False,
    )
