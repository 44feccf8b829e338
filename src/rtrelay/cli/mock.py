"""``rtrelay mock``: run the simulated Realtime provider until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from rtrelay.mock import MockOptions, MockProvider, serve
from rtrelay.wire import DEFAULT_MODEL, LIVE_SESSIONS_PATH, REALTIME_PATH_SUFFIX, TRANSLATIONS_PATH

API_PREFIX = "/v1"  # provider.url ends with it, as an SDK's base URL does

__all__ = ["options_from_args", "register", "run"]


def register(subparsers: Any) -> None:
    """Add the ``mock`` subcommand to the ``rtrelay`` parser."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "mock",
        help="run the simulated OpenAI Realtime provider",
        description="Run a simulated OpenAI Realtime provider (GA and beta shapes, Azure "
        "paths, GPT-Live, realtime translation, fault injection) until interrupted.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="port (default 8765)")
    parser.add_argument("--dialect", choices=("ga", "beta"), default="ga")
    parser.add_argument(
        "--ga-only",
        action="store_true",
        help="answer beta-shape requests with beta_api_shape_disabled and close 4000",
    )
    parser.add_argument(
        "--api-key",
        action="append",
        dest="api_keys",
        metavar="KEY",
        help="accept only this key (repeatable); default: any key",
    )
    parser.add_argument(
        "--pacing",
        type=float,
        default=1.0,
        help="reply speed relative to real time; 0 = as fast as possible (default 1.0)",
    )
    parser.add_argument("--reply-audio-ms", type=int, default=1000)
    parser.add_argument("--audio-chunk-ms", type=int, default=100)
    parser.add_argument("--max-session-seconds", type=float)
    parser.add_argument(
        "--live-usage-interval",
        type=float,
        default=5.0,
        metavar="S",
        help="seconds between GPT-Live session.usage.updated events (default 5)",
    )
    parser.add_argument(
        "--live-delegate-turns",
        action="store_true",
        help="GPT-Live: delegate every turn heard to the session's delegate, if any",
    )
    parser.add_argument(
        "--live-reflect-audio",
        action="store_true",
        help="GPT-Live over WebRTC: reflect the session's audio to its sidebands",
    )
    faults = parser.add_argument_group("fault injection")
    faults.add_argument("--refuse-status", type=int, help="refuse the handshake with this status")
    faults.add_argument("--refuse-body", help="body of the refusal (default: OpenAI-style JSON)")
    faults.add_argument("--stall-handshake", type=float, metavar="S")
    faults.add_argument("--drop-after-events", type=int, metavar="N")
    faults.add_argument("--close-after-events", type=int, metavar="N")
    faults.add_argument("--close-code", type=int, default=1000)
    faults.add_argument("--close-reason", default="")
    faults.add_argument("--malformed-after-events", type=int, metavar="N")
    faults.add_argument("--oversized-after-events", type=int, metavar="N")
    faults.add_argument("--oversized-bytes", type=int, default=20 * 1024 * 1024, metavar="B")
    faults.add_argument("--stop-reading-after-events", type=int, metavar="N")
    faults.add_argument(
        "--repeat-event",
        metavar="TYPE",
        help="send every event of this type twice, same ids (e.g. response.done)",
    )
    faults.add_argument(
        "--repeat-usage",
        action="store_true",
        help="GPT-Live: send every session.usage.updated twice, same ids",
    )
    faults.add_argument(
        "--reorder-usage",
        action="store_true",
        help="GPT-Live: once, resend the previous (smaller) cumulative usage after a newer one",
    )
    faults.add_argument(
        "--no-usage-events",
        action="store_true",
        help="GPT-Live: send no session.usage.updated events",
    )
    parser.set_defaults(func=run)


def options_from_args(args: argparse.Namespace) -> MockOptions:
    """The ``MockOptions`` the command line asks for.

    Raises:
        ValueError: an option is out of range.
    """
    return MockOptions(
        dialect=args.dialect,
        ga_only=args.ga_only,
        api_keys=frozenset(args.api_keys) if args.api_keys else None,
        realtime_pacing=args.pacing,
        reply_audio_ms=args.reply_audio_ms,
        audio_chunk_ms=args.audio_chunk_ms,
        max_session_seconds=args.max_session_seconds,
        live_usage_interval=args.live_usage_interval,
        live_delegate_turns=args.live_delegate_turns,
        live_reflect_audio=args.live_reflect_audio,
        refuse_status=args.refuse_status,
        refuse_body=args.refuse_body,
        stall_handshake=args.stall_handshake,
        drop_after_events=args.drop_after_events,
        close_after_events=args.close_after_events,
        close_code=args.close_code,
        close_reason=args.close_reason,
        malformed_after_events=args.malformed_after_events,
        repeat_event=args.repeat_event,
        oversized_after_events=args.oversized_after_events,
        oversized_bytes=args.oversized_bytes,
        stop_reading_after_events=args.stop_reading_after_events,
        repeat_usage=args.repeat_usage,
        reorder_usage=args.reorder_usage,
        no_usage_events=args.no_usage_events,
    )


def run(args: argparse.Namespace) -> int:
    """Serve until SIGINT/SIGTERM; 2 on bad options."""
    try:
        options = options_from_args(args)
    except ValueError as exc:
        print(f"rtrelay mock: {exc}", file=sys.stderr)
        return 2

    def ready(provider: MockProvider) -> None:
        endpoint = f"{provider.url}{REALTIME_PATH_SUFFIX}?model={DEFAULT_MODEL}"
        print(f"rtrelay mock listening: {endpoint}", flush=True)
        print(f"  OpenAI SDK: AsyncOpenAI(websocket_base_url={provider.url!r})", flush=True)
        live = provider.url + LIVE_SESSIONS_PATH.removeprefix(API_PREFIX)
        translation = provider.url + TRANSLATIONS_PATH.removeprefix(API_PREFIX)
        print(f"  GPT-Live: {live} (client.live.connect())", flush=True)
        print(f"  translation: {translation}?model=gpt-realtime-translate", flush=True)

    main = serve(options, args.host, args.port, on_ready=ready)
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
    else:
        uvloop.run(main)
    return 0
