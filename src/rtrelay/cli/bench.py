"""``rtrelay bench``: measure rtrelay beside a direct connection, nginx and LiteLLM.

``rtrelay bench --soak`` instead runs many short sessions through one relay and samples
its memory, descriptors, tasks and threads for leaks (docs/bench.md, "Soak").
``rtrelay bench --instructions`` counts each relay's instructions per forwarded frame
under callgrind, a cost figure host noise cannot move (docs/bench.md, "Instructions").
``rtrelay bench --webrtc`` times WebRTC call setup through rtrelay vs direct and the
relay's memory and CPU per open call (docs/bench.md, "WebRTC calls").

The harness (``rtrelay.bench``) needs the ``bench`` extra (psutil, matplotlib), which a
base install lacks: this module imports it only when the command runs, so every other
command works without it and this one says what to install.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import importlib.util
import resource
import signal
import sys
from collections.abc import Callable, Coroutine
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import orjson

if TYPE_CHECKING:
    from rtrelay.bench import BenchOptions
    from rtrelay.bench._instructions import InstructionOptions
    from rtrelay.bench._options import TargetName
    from rtrelay.bench._soak import SoakOptions
    from rtrelay.bench._webrtc import WebrtcOptions

__all__ = [
    "BENCH_EXTRA",
    "instruction_options_from_args",
    "missing_extra",
    "options_from_args",
    "register",
    "soak_options_from_args",
    "webrtc_options_from_args",
]

BENCH_EXTRA: Final = ("psutil", "matplotlib")
"""The modules of pyproject's ``bench`` extra (matplotlib only draws the plots)."""
INSTALL_HINT: Final = "pip install 'rtrelay[bench]'"


def register(subparsers: Any) -> None:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "bench",
        help="benchmark rtrelay against direct, nginx and LiteLLM (--soak: look for leaks; "
        "--instructions: count instructions per frame; --webrtc: WebRTC call setup)",
        description="Paced realtime audio sessions through each target and directly to the "
        "same simulated provider; writes results.json, results.md and plots to --out. "
        "With --soak: many short sessions through one rtrelay serve, sampling its RSS, "
        "open fds, tasks and threads, then checking its ledger. With --instructions: a "
        "fixed stepped workload through each relay under valgrind's callgrind, counting "
        "instructions and system calls per forwarded frame. With --webrtc: WebRTC call "
        "setup through rtrelay vs direct, and the relay's memory and CPU per open call.",
    )
    p.add_argument(
        "--sessions",
        type=int,
        default=None,
        help="concurrent audio sessions (100); with --soak, sessions in all (10000); "
        "with --instructions, sessions open in the counted windows (10)",
    )
    p.add_argument(
        "--protocol",
        choices=("realtime", "live"),
        default="realtime",
        help="what the sessions speak: the Realtime API (/v1/realtime) or GPT-Live "
        "(/v1/live/sessions, full duplex, turns ended by the provider's VAD)",
    )
    p.add_argument("--duration", type=float, default=20.0, help="measured s per target (20)")
    p.add_argument("--rounds", type=int, default=4, help="interleaved rounds (4)")
    p.add_argument(
        "--targets",
        type=_names,
        default=None,
        help="comma-separated: direct, rtrelay, rtrelay-core, nginx, litellm "
        "(default: all but litellm; --instructions: rtrelay, rtrelay-core, nginx)",
    )
    p.add_argument(
        "--relay-src",
        type=Path,
        help="run the rtrelay targets from this source tree's src/ (default: this install)",
    )
    p.add_argument(
        "--baseline-src",
        type=Path,
        help="add target 'baseline': rtrelay (keys + ledger) from this tree's src/, "
        "measured in the same run (e.g. a git worktree of the parent commit)",
    )
    p.add_argument(
        "--with-litellm", action="store_true", help="add LiteLLM (installed in its own venv)"
    )
    p.add_argument("--capacity", action="store_true", help="also step N up to find capacity")
    p.add_argument("--max-sessions", type=int, default=800, help="capacity search bound (800)")
    p.add_argument(
        "--capacity-budget", type=float, default=1200.0, help="capacity search bound, s (1200)"
    )
    p.add_argument("--text-sessions", type=int, default=0, help="extra text-only sessions")
    p.add_argument("--idle-sessions", type=int, default=0, help="extra idle sessions")
    p.add_argument("--chunk-ms", type=int, default=100, help="audio per append (100)")
    p.add_argument("--turn-ms", type=int, default=3000, help="user turn length (3000)")
    p.add_argument(
        "--reply-audio-ms",
        type=int,
        default=None,
        help="reply length (2000; --instructions: 600)",
    )
    p.add_argument("--probe-ms", type=int, default=100, help="latency probe interval (100)")
    p.add_argument("--out", type=Path, help="results folder (./bench-results/<timestamp>)")
    p.add_argument("--quick", action="store_true", help="a few sessions for a few seconds")
    p.add_argument(
        "--no-install", action="store_true", help="never apt-get install nginx or valgrind"
    )
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    p.add_argument("--json", action="store_true", help="print results.json on stdout")
    soak = p.add_argument_group("soak (--soak)")
    soak.add_argument("--soak", action="store_true", help="run the soak instead of the benchmark")
    soak.add_argument(
        "--concurrency",
        type=int,
        default=None,
        help="sessions at a time (50); with --webrtc, calls open at once (20)",
    )
    soak.add_argument(
        "--max-seconds", type=float, default=1800.0, help="stop starting sessions after (1800)"
    )
    soak.add_argument("--warmup", type=int, default=200, help="sessions before 'before' (200)")
    soak.add_argument(
        "--checkpoint-every", type=int, default=1000, help="sample every N sessions (1000)"
    )
    soak.add_argument(
        "--bad-key-every", type=int, default=50, help="every N-th session: a wrong key (50)"
    )
    instr = p.add_argument_group("instruction counts (--instructions)")
    instr.add_argument(
        "--instructions",
        action="store_true",
        help="count instructions per forwarded frame under callgrind instead",
    )
    instr.add_argument(
        "--appends", type=int, default=20, help="audio appends per session, each probed (20)"
    )
    instr.add_argument(
        "--repeats", type=int, default=2, help="fresh target processes per target (2)"
    )
    webrtc = p.add_argument_group("WebRTC calls (--webrtc)")
    webrtc.add_argument(
        "--webrtc", action="store_true", help="time WebRTC call setup and the relay's cost per call"
    )
    webrtc.add_argument("--calls", type=int, default=30, help="sequential setups per target (30)")
    webrtc.add_argument(
        "--hold", type=float, default=5.0, help="seconds the concurrent calls are held (5)"
    )
    webrtc.add_argument(
        "--batches",
        type=int,
        default=1,
        help="open and hang up the concurrent calls this many times (1; a later batch's "
        "traced heap is the steady cost per call)",
    )
    webrtc.add_argument(
        "--trace-memory",
        action="store_true",
        help="run the relay under tracemalloc: its heap per call and the lines holding it",
    )
    p.set_defaults(func=_main)


def _names(value: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in value.split(",") if v.strip())


def missing_extra(*, plots: bool = True) -> list[str]:
    """The modules of the ``bench`` extra this install lacks (matplotlib only for plots)."""
    wanted = BENCH_EXTRA if plots else tuple(m for m in BENCH_EXTRA if m != "matplotlib")
    return [m for m in wanted if importlib.util.find_spec(m) is None]


def options_from_args(args: argparse.Namespace) -> BenchOptions:
    """The ``BenchOptions`` the command line asks for.

    Raises:
        ValueError: an option is out of range, or a target is unknown.
    """
    from rtrelay.bench import DEFAULT_TARGETS, BenchOptions, quick

    targets = _targets(args.targets, DEFAULT_TARGETS)
    if args.with_litellm and "litellm" not in targets:
        targets = (*targets, "litellm")
    options = BenchOptions(
        protocol=args.protocol,
        sessions=100 if args.sessions is None else args.sessions,
        text_sessions=args.text_sessions,
        idle_sessions=args.idle_sessions,
        targets=targets,
        duration=args.duration,
        rounds=args.rounds,
        chunk_ms=args.chunk_ms,
        turn_ms=args.turn_ms,
        reply_audio_ms=2000 if args.reply_audio_ms is None else args.reply_audio_ms,
        probe_ms=args.probe_ms,
        relay_src=_tree(args.relay_src),
        baseline_src=_tree(args.baseline_src),
        capacity=args.capacity,
        max_sessions=args.max_sessions,
        capacity_budget=args.capacity_budget,
        plots=not args.no_plots,
        install_nginx=not args.no_install,
    )
    return quick(options) if args.quick else options


def _targets(
    names: tuple[str, ...] | None, default: tuple[TargetName, ...]
) -> tuple[TargetName, ...]:
    """``--targets`` checked and put in table order (``default`` when not given).

    Raises:
        ValueError: a target is unknown.
    """
    from rtrelay.bench import ALL_TARGETS

    if not names:
        return default
    unknown = [n for n in names if n not in ALL_TARGETS]
    if unknown:
        raise ValueError(
            f"unknown target(s): {', '.join(unknown)} (known: {', '.join(ALL_TARGETS)})"
        )
    return tuple(n for n in ALL_TARGETS if n in names)


def _tree(src: Path | None) -> Path | None:
    """A ``--relay-src``/``--baseline-src`` checked to hold rtrelay (``ValueError`` if not)."""
    from rtrelay.bench._relay import source_tree

    return None if src is None else source_tree(src)


def instruction_options_from_args(args: argparse.Namespace) -> InstructionOptions:
    """The ``InstructionOptions`` the command line asks for (``--quick``: a smoke-test size).

    Raises:
        ValueError: an option is out of range, or a target is unknown.
    """
    from rtrelay.bench._instructions import (
        INSTRUCTION_TARGETS,
        InstructionOptions,
        quick_instructions,
    )

    options = InstructionOptions(
        targets=_targets(args.targets, INSTRUCTION_TARGETS),
        sessions=10 if args.sessions is None else args.sessions,
        appends=args.appends,
        reply_audio_ms=600 if args.reply_audio_ms is None else args.reply_audio_ms,
        chunk_ms=args.chunk_ms,
        repeats=args.repeats,
        relay_src=_tree(args.relay_src),
        baseline_src=_tree(args.baseline_src),
        install=not args.no_install,
    )
    return quick_instructions(options) if args.quick else options


def soak_options_from_args(args: argparse.Namespace) -> SoakOptions:
    """The ``SoakOptions`` the command line asks for (``--quick``: 60 sessions, 10 at a time).

    Raises:
        ValueError: an option is out of range.
    """
    from rtrelay.bench._soak import SoakOptions, quick_soak

    options = SoakOptions(
        sessions=10_000 if args.sessions is None else args.sessions,
        concurrency=50 if args.concurrency is None else args.concurrency,
        warmup=args.warmup,
        checkpoint_every=args.checkpoint_every,
        bad_key_every=args.bad_key_every,
        max_seconds=args.max_seconds,
    )
    return quick_soak(options) if args.quick else options


def webrtc_options_from_args(args: argparse.Namespace) -> WebrtcOptions:
    """The ``WebrtcOptions`` the command line asks for (``--quick``: a smoke-test size).

    Raises:
        ValueError: an option is out of range.
    """
    from rtrelay.bench._webrtc import WebrtcOptions, quick_webrtc

    options = WebrtcOptions(
        calls=args.calls,
        concurrency=20 if args.concurrency is None else args.concurrency,
        hold=args.hold,
        batches=args.batches,
        relay_src=_tree(args.relay_src),
        trace_memory=args.trace_memory,
    )
    return quick_webrtc(options) if args.quick else options


def _main(args: argparse.Namespace) -> int:
    plots = not (args.no_plots or args.soak or args.instructions or args.webrtc)
    missing = missing_extra(plots=plots)
    if missing:
        print(
            f"rtrelay bench: needs the bench extra ({', '.join(missing)} not installed): "
            f"{INSTALL_HINT}",
            file=sys.stderr,
        )
        return 2
    if args.soak:
        return _soak_main(args)
    if args.instructions:
        return _instructions_main(args)
    if args.webrtc:
        return _webrtc_main(args)
    from rtrelay.bench import markdown, write_results
    from rtrelay.bench._quiet import freeze_startup

    try:
        options = options_from_args(args)
    except ValueError as exc:
        return _refused(exc)
    out = _results_dir(args, "")
    options = dataclasses.replace(options, out=out)
    _raise_fd_limit()
    freeze_startup()  # the load generator's own GC pauses would read as relay latency
    return _finish(
        args,
        lambda: _start_bench(options, out / "logs"),
        lambda doc: write_results(doc, out, plots=options.plots),
        markdown,
    )


def _refused(exc: ValueError) -> int:
    """An option out of range: said on stderr, exit 2."""
    print(f"rtrelay bench: {exc}", file=sys.stderr)
    return 2


def _results_dir(args: argparse.Namespace, mode: str) -> Path:
    """``--out``, or ``bench-results/<mode>-<timestamp>`` (no prefix for the benchmark)."""
    if args.out is not None:
        out: Path = args.out
        return out
    return Path("bench-results") / datetime.now().strftime(f"{mode}%Y%m%d-%H%M%S")


def _finish(
    args: argparse.Namespace,
    make: Callable[[], Coroutine[Any, Any, dict[str, Any]]],
    write: Callable[[dict[str, Any]], list[Path]],
    table: Callable[[dict[str, Any]], str],
) -> int:
    """Run a mode on the loop, write its results and print its table (or the JSON).

    Returns:
        0, or 128 + SIGTERM when SIGTERM stopped the run (every child already stopped).
    """
    try:
        doc = _on_loop(make)
    except asyncio.CancelledError:
        print("rtrelay bench: stopped by SIGTERM", file=sys.stderr)
        return 128 + signal.SIGTERM
    return _emit(doc, table(doc), write(doc), as_json=args.json)


def _emit(doc: dict[str, Any], table: str, files: list[Path], *, as_json: bool) -> int:
    """The table on stdout (or the JSON, the table then on stderr), then what was written."""
    if as_json:
        sys.stdout.buffer.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n")
        print(table, file=sys.stderr)
    else:
        print(table)
    print(f"rtrelay bench: wrote {', '.join(str(f) for f in files)}", file=sys.stderr)
    return 0


def _soak_main(args: argparse.Namespace) -> int:
    from rtrelay.bench._quiet import freeze_startup
    from rtrelay.bench._soak import run_soak
    from rtrelay.bench._soak_report import soak_markdown, write_soak_results

    try:
        options = soak_options_from_args(args)
    except ValueError as exc:
        return _refused(exc)
    out = _results_dir(args, "soak-")
    _raise_fd_limit()
    freeze_startup()  # the load generator only; the relay runs as shipped
    return _finish(
        args,
        lambda: run_soak(options, workdir=out / "logs"),
        lambda doc: write_soak_results(doc, out),
        soak_markdown,
    )


def _instructions_main(args: argparse.Namespace) -> int:
    from rtrelay.bench._callgrind import ValgrindUnavailable
    from rtrelay.bench._instructions import run_instructions
    from rtrelay.bench._instructions_report import (
        instructions_markdown,
        write_instruction_results,
    )

    try:
        options = instruction_options_from_args(args)
    except ValueError as exc:
        return _refused(exc)
    out = _results_dir(args, "instructions-")
    try:
        return _finish(
            args,
            lambda: run_instructions(options, workdir=out / "logs"),
            lambda doc: write_instruction_results(doc, out),
            instructions_markdown,
        )
    except ValgrindUnavailable as exc:
        print(f"rtrelay bench: --instructions needs valgrind: {exc}", file=sys.stderr)
        return 2


def _webrtc_main(args: argparse.Namespace) -> int:
    from rtrelay.bench._webrtc import run_webrtc
    from rtrelay.bench._webrtc_report import webrtc_markdown, write_webrtc_results

    try:
        options = webrtc_options_from_args(args)
    except ValueError as exc:
        return _refused(exc)
    out = _results_dir(args, "webrtc-")
    _raise_fd_limit()
    return _finish(
        args,
        lambda: run_webrtc(options, workdir=out / "logs"),
        lambda doc: write_webrtc_results(doc, out),
        webrtc_markdown,
    )


def _start_bench(options: BenchOptions, workdir: Path) -> Coroutine[Any, Any, dict[str, Any]]:
    from rtrelay.bench import run_bench

    return run_bench(options, workdir=workdir)


def _on_loop(make: Callable[[], Coroutine[Any, Any, dict[str, Any]]]) -> dict[str, Any]:
    """Run on uvloop; SIGTERM cancels the run like Ctrl-C, so children are always stopped."""

    async def main() -> dict[str, Any]:
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signal.SIGTERM, task.cancel)
        return await make()

    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency
        return asyncio.run(main())
    return uvloop.run(main())


def _raise_fd_limit() -> None:
    """Hundreds of sessions need more descriptors than the usual soft limit of 1024."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
