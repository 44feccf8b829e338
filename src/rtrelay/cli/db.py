"""``rtrelay db upgrade``: migrate the store named by the config to the newest schema.

Also home of the two helpers every store command shares: ``--config`` and the
store URL it names.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import Any

from rtrelay.config import ConfigError, load
from rtrelay.ledger.engine import create_engine, describe_url
from rtrelay.ledger.exceptions import StoreError
from rtrelay.ledger.migrate import head_revision, upgrade

__all__ = ["add_config_argument", "register", "store_url"]


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


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("db", help="manage the store's schema")
    commands = parser.add_subparsers(dest="db_command", metavar="COMMAND", required=True)
    up = commands.add_parser("upgrade", help="migrate the store to the newest schema")
    add_config_argument(up)
    up.set_defaults(func=_upgrade)


def _upgrade(args: argparse.Namespace) -> int:
    try:
        url = store_url(args)
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
