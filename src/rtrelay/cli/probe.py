"""``rtrelay probe URL``: why can't my client connect?"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from rtrelay.probe import ProbeReport, ProbeUsageError, probe, probe_webrtc

__all__ = ["register"]

_EPILOG = """\
exit status:
  0  a session was established (session.created received; GPT-Live: session.started)
  1  the WebSocket opened but no session was established (error event, close, silence);
     --webrtc: the offer was answered but ICE, DTLS, the data channel or the session failed
  2  bad command line
  3  DNS: the host name does not resolve
  4  TCP: nothing accepts connections at host:port
  5  TLS: handshake or certificate problem
  6  HTTP: the upgrade (--webrtc: the offer) was refused (status and body explained) or got
     no valid answer
  7  the server's 101 is one a real client refuses (e.g. no subprotocol echoed to a browser);
     --webrtc: an SDP answer a WebRTC client cannot use, or one the page may not read (CORS)
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "probe",
        help="explain why a client cannot connect",
        description=(
            "Connect the way a browser (--subprotocol-auth) or a server SDK would and explain "
            "each step: DNS, TCP, TLS, the HTTP upgrade, the subprotocol echo, session.created, "
            "the first events and the close. A GPT-Live URL (…/v1/live/sessions) is sent "
            "session.start for --model, and its session.started (or the Live error event and "
            "close code) explained, then session.close; a translation URL "
            "(…/v1/realtime/translations) is explained like a Realtime one. "
            "With --webrtc, set a WebRTC call up as a browser "
            "page would (aiortc): the SDP offer POST, the answer, ICE, DTLS, the oai-events "
            "data channel and session.created, then hang up. Sends no other client events."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "url", metavar="URL", help="e.g. ws://127.0.0.1:8080/v1 (--webrtc: http://…/v1)"
    )
    credential = parser.add_mutually_exclusive_group()
    credential.add_argument("--key", help="API key or client token (shown masked, never in clear)")
    credential.add_argument(
        "--token", dest="key", metavar="EK", help="an ek_ client token (same as --key)"
    )
    parser.add_argument(
        "--webrtc",
        action="store_true",
        help="set a WebRTC call up (POST /v1/realtime/calls) instead of a WebSocket",
    )
    parser.add_argument(
        "--model",
        help="model to ask for (default: the URL's, or gpt-realtime; gpt-realtime-translate "
        "for a translation URL; gpt-live-1 for GPT-Live, sent in session.start)",
    )
    parser.add_argument("--origin", help="Origin header, as a browser page would send")
    parser.add_argument(
        "--subprotocol-auth",
        action="store_true",
        help="authenticate as a browser: offer 'realtime, openai-insecure-api-key.<key>'",
    )
    parser.add_argument("--beta", action="store_true", help="ask for the beta API shape")
    parser.add_argument(
        "--timeout", type=float, default=10.0, metavar="S", help="seconds per step (10)"
    )
    parser.add_argument(
        "--events", type=int, default=5, metavar="N", help="close after N events (5)"
    )
    parser.add_argument("--cafile", help="trust the CA certificates in this PEM file")
    parser.add_argument("--json", action="store_true", help="print the observations as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        report = asyncio.run(_probe(args))
    except ProbeUsageError as exc:
        print(f"rtrelay probe: {exc}", file=sys.stderr)
        return 2
    print(report.json() if args.json else report.text())
    return int(report.exit_code)


async def _probe(args: argparse.Namespace) -> ProbeReport:
    common: dict[str, Any] = {
        "key": args.key,
        "model": args.model,
        "origin": args.origin,
        "timeout": args.timeout,
        "cafile": args.cafile,
    }
    if not args.webrtc:
        return await probe(
            args.url,
            subprotocol_auth=args.subprotocol_auth,
            beta=args.beta,
            events=args.events,
            **common,
        )
    if args.subprotocol_auth or args.beta:
        raise ProbeUsageError(
            "--webrtc takes the key in the offer's Authorization header, GA shape only: "
            "drop --subprotocol-auth and --beta"
        )
    return await probe_webrtc(args.url, **common)
