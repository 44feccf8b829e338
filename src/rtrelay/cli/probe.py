"""``rtrelay probe URL``: why can't my client connect?"""

from __future__ import annotations

import argparse
import asyncio
import sys

from rtrelay.probe import ProbeUsageError, probe

__all__ = ["register"]

_EPILOG = """\
exit status:
  0  a session was established (session.created received)
  1  the WebSocket opened but no session was established (error event, close, silence)
  2  bad command line
  3  DNS: the host name does not resolve
  4  TCP: nothing accepts connections at host:port
  5  TLS: handshake or certificate problem
  6  HTTP: the upgrade was refused (status and body explained) or got no valid answer
  7  the server's 101 is one a real client refuses (e.g. no subprotocol echoed to a browser)
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "probe",
        help="explain why a client cannot connect",
        description=(
            "Connect the way a browser (--subprotocol-auth) or a server SDK would and explain "
            "each step: DNS, TCP, TLS, the HTTP upgrade, the subprotocol echo, session.created, "
            "the first events and the close. Sends no client events."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("url", metavar="URL", help="e.g. ws://127.0.0.1:8080/v1")
    parser.add_argument("--key", help="API key or client token (shown masked, never in clear)")
    parser.add_argument("--model", help="model to ask for (default: the URL's, or gpt-realtime)")
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
        report = asyncio.run(
            probe(
                args.url,
                key=args.key,
                model=args.model,
                origin=args.origin,
                subprotocol_auth=args.subprotocol_auth,
                beta=args.beta,
                timeout=args.timeout,
                events=args.events,
                cafile=args.cafile,
            )
        )
    except ProbeUsageError as exc:
        print(f"rtrelay probe: {exc}", file=sys.stderr)
        return 2
    print(report.json() if args.json else report.text())
    return int(report.exit_code)
