"""The ``rtrelay`` command: one subcommand per module of this package.

Each module ``rtrelay.cli.<name>`` defines ``register(subparsers)``, which adds its
parser and sets ``func`` (``(argparse.Namespace) -> int``, the exit code).
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
        try:
            module = importlib.import_module(f"rtrelay.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"rtrelay.cli.{name}":
                raise
            continue  # command not built yet
        module.register(subparsers)
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
