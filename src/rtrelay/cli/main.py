"""The ``rtrelay`` command: one subcommand per module of this package.

Each module ``rtrelay.cli.<name>`` defines ``register(subparsers)``, which adds its
parser and sets ``func`` (``(argparse.Namespace) -> int``, the exit code). Every
command works on a base install (``pip install rtrelay``, no extras).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Final

__all__ = ["main"]

COMMANDS: Final = (
    "serve",
    "mock",
    "keys",
    "usage",
    "db",
    "channels",
    "probe",
    "talk",
    "bench",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rtrelay", description="Relay gateway for realtime voice AI over WebSocket."
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        # A command module imports only base dependencies at its top; one that needs an
        # extra imports it when it runs and says what to install, so a missing module
        # here is a bug to surface, never a command to skip quietly.
        importlib.import_module(f"rtrelay.cli.{name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
