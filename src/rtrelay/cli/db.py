"""``rtrelay db upgrade``: migrate the store named by the config to the newest schema.

Also home of the helpers every store command shares: ``--config``, the store URL it
names, and the ``store: …`` line each such command prints on stderr. Every command
(``serve``, ``serve --demo``, ``keys``, ``usage``, ``db``) defaults to the same store,
``./rtrelay.db``; the line, with a SQLite path made absolute, shows which file that was.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from rtrelay.config import ConfigError, load
from rtrelay.ledger.engine import create_engine, describe_url
from rtrelay.ledger.exceptions import StoreError
from rtrelay.ledger.migrate import head_revision, upgrade
from rtrelay.redact import redact

__all__ = ["add_config_argument", "announce_store", "register", "store_label", "store_url"]


def add_config_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="rtrelay TOML config (default: built-in defaults and RTRELAY_* variables)",
    )


def store_url(args: argparse.Namespace) -> str:
    """``store.url`` of the config named by ``--config``, with ``RTRELAY_*`` overrides.

    Raises:
        ConfigError: the config cannot be read or is invalid.
    """
    return load(args.config, os.environ).store.url


def store_label(url: str) -> str:
    """The store URL for people: password masked, a relative SQLite path made absolute."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return describe_url(url)
    database = parsed.database
    if parsed.get_backend_name() == "sqlite" and database and database != ":memory:":
        parsed = parsed.set(database=os.path.abspath(database))
    return redact(describe_url(parsed), known=[parsed.password or ""])


def announce_store(url: str) -> None:
    """``store: <url>`` on stderr, so stdout stays the command's output (JSON, CSV...)."""
    print(f"store: {store_label(url)}", file=sys.stderr)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("db", help="manage the store's schema")
    commands = parser.add_subparsers(dest="db_command", metavar="COMMAND", required=True)
    up = commands.add_parser("upgrade", help="migrate the store to the newest schema")
    add_config_argument(up)
    up.set_defaults(func=_upgrade)


def _upgrade(args: argparse.Namespace) -> int:
    try:
        url = store_url(args)
        announce_store(url)
        revision = asyncio.run(_run_upgrade(url))
    except (ConfigError, StoreError) as exc:
        print(f"rtrelay db upgrade: {exc}", file=sys.stderr)
        return 1
    print(f"store {describe_url(url)} is at revision {revision} (newest: {head_revision()})")
    return 0


async def _run_upgrade(url: str) -> str:
    engine = create_engine(url)
    try:
        return await upgrade(engine)
    finally:
        await engine.dispose()
