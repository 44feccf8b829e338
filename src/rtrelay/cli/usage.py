"""``rtrelay usage``: tokens and cost per key, model or day, as a table, JSON or CSV."""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
from datetime import UTC, datetime
from typing import Any

from rtrelay.cli.db import add_config_argument, announce_store, store_url
from rtrelay.config import ConfigError
from rtrelay.ledger.exceptions import StoreError
from rtrelay.ledger.render import render_usage
from rtrelay.ledger.store import open_store, resolve_key
from rtrelay.ledger.timespec import parse_when

__all__ = ["register"]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("usage", help="usage and cost per key, model or day")
    add_config_argument(parser)
    parser.add_argument("--key", metavar="ID_OR_PREFIX", help="only this key")
    parser.add_argument(
        "--since", type=_past, metavar="WHEN", help="7d, 2026-01-01 or ISO time (inclusive)"
    )
    parser.add_argument("--until", type=_past, metavar="WHEN", help="same forms (exclusive)")
    parser.add_argument("--by", choices=("key", "model", "day"), default="key")
    parser.add_argument("--format", choices=("table", "json", "csv"), default="table")
    parser.set_defaults(func=_usage)


def _usage(args: argparse.Namespace) -> int:
    try:
        print(asyncio.run(_report(args)))
    except (ConfigError, StoreError, ValueError) as exc:
        print(f"rtrelay usage: {exc}", file=sys.stderr)
        return 1
    return 0


def _past(text: str) -> datetime:
    """A ``--since``/``--until`` value; an unreadable or out-of-range one exits 2 (argparse)."""
    try:
        return parse_when(text, now=datetime.now(UTC), future=False)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


async def _report(args: argparse.Namespace) -> str:
    since, until = args.since, args.until
    url = store_url(args)
    announce_store(url)
    store = await open_store(url)
    try:
        key_id = None
        if args.key is not None:
            record = await resolve_key(store, args.key)
            if record is None:
                raise ValueError(f"no key {args.key!r}")
            key_id = record.id
        rows = await store.usage(key_id=key_id, since=since, until=until, by=args.by)
    finally:
        await store.close()
    return render_usage(rows, args.format, by=args.by, width=terminal_width())


def terminal_width() -> int | None:
    """The width a table must fit: the terminal's (or ``COLUMNS``), ``None`` when stdout
    is a file or a pipe and no ``COLUMNS`` is set (a program reads every column)."""
    if os.environ.get("COLUMNS") or sys.stdout.isatty():
        return shutil.get_terminal_size().columns
    return None
