"""``rtrelay keys create|list|revoke|rotate``: manage the keys clients connect with.

A secret is printed once, by ``create`` and ``rotate``, and never again: the
store keeps only its hash. Listings show the key's prefix, the 8 characters after
``rk_`` in its secret (``abcd1234`` for ``rk_abcd1234_…``), spelt as the JSON, the admin
API, the logs and the ledger spell it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from rtrelay.cli.db import add_config_argument, announce_store, store_url
from rtrelay.config import ConfigError
from rtrelay.ledger.exceptions import StoreError
from rtrelay.ledger.keys import (
    KeyRecord,
    KeySpec,
    budget_problem,
    count_problem,
    text_problem,
)
from rtrelay.ledger.render import render_table
from rtrelay.ledger.store import Store, open_store, resolve_key
from rtrelay.ledger.timespec import parse_when
from rtrelay.ledger.views import key_view

__all__ = ["register"]


class _Refused(Exception):
    """A user error: printed on stderr, exit status 1."""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("keys", help="create, list, revoke and rotate client keys")
    commands = parser.add_subparsers(dest="keys_command", metavar="COMMAND", required=True)

    create = _leaf(commands, "create", "create a key and print its secret once", _create)
    create.add_argument("--name", required=True, type=_text)
    create.add_argument("--models", type=_names, help="allowed models, comma-separated (any)")
    create.add_argument("--max-sessions", type=_positive, metavar="K", help="sessions open at once")
    create.add_argument(
        "--sessions-per-minute", type=_positive, metavar="R", help="session starts per minute"
    )
    create.add_argument("--budget-usd", type=_usd, metavar="X", help="total spend allowed")
    create.add_argument(
        "--expires", type=_future, metavar="WHEN", help="30d, 12h, 2027-01-01 or ISO time"
    )
    create.add_argument("--origins", type=_names, help="allowed browser Origins (any)")

    _leaf(commands, "list", "list keys (prefixes only, never secrets)", _list)
    for name, text, run in (
        ("revoke", "revoke a key at once", _revoke),
        ("rotate", "give a key a new secret; the old one stops working", _rotate),
    ):
        leaf = _leaf(commands, name, text, run)
        leaf.add_argument("key", metavar="ID_OR_PREFIX", help="key_..., the prefix, or rk_<prefix>")


_Run = Callable[[Store, argparse.Namespace], Awaitable[None]]


def _leaf(commands: Any, name: str, text: str, run: _Run) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands.add_parser(name, help=text)
    add_config_argument(parser)
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(func=_command(run))
    return parser


def _command(run: _Run) -> Callable[[argparse.Namespace], int]:
    def func(args: argparse.Namespace) -> int:
        try:
            asyncio.run(_with_store(args, run))
        except (ConfigError, StoreError, _Refused) as exc:
            print(f"rtrelay keys {args.keys_command}: {exc}", file=sys.stderr)
            return 1
        return 0

    return func


async def _with_store(args: argparse.Namespace, run: _Run) -> None:
    url = store_url(args)
    announce_store(url)
    store = await open_store(url)
    try:
        await run(store, args)
    finally:
        await store.close()


async def _create(store: Store, args: argparse.Namespace) -> None:
    try:  # every field was checked as an argument already (exit 2); this is the last word
        spec = KeySpec(
            name=args.name,
            models=args.models,
            max_sessions=args.max_sessions,
            sessions_per_minute=args.sessions_per_minute,
            budget_usd=args.budget_usd,
            expires_at=args.expires,
            origins=args.origins,
        )
    except ValueError as exc:
        raise _Refused(str(exc)) from None
    record, secret = await store.create_key(spec)
    _print_secret(record, secret, args, verb="Created")


async def _list(store: Store, args: argparse.Namespace) -> None:
    now = datetime.now(UTC)
    records = await store.list_keys()
    spent = [await store.spent_usd(r.id) for r in records]
    if args.json:
        data = [key_view(r, now=now, spent_usd=s) for r, s in zip(records, spent, strict=True)]
        print(json.dumps({"object": "list", "data": data}))
        return
    if not records:
        print("No keys yet: rtrelay keys create --name NAME")
        return
    headers = ["ID", "PREFIX", "NAME", "STATUS", "MODELS", "MAX SESSIONS", "PER MIN"]
    headers += ["BUDGET USD", "SPENT USD", "EXPIRES", "CREATED"]
    rows = [
        [
            r.id,
            r.prefix,
            r.name,
            r.inactive_reason(now) or "active",
            "any" if r.models is None else ",".join(r.models),
            r.max_sessions,
            r.sessions_per_minute,
            r.budget_usd,
            s,
            _when(r.expires_at),
            _when(r.created_at),
        ]
        for r, s in zip(records, spent, strict=True)
    ]
    print(render_table(headers, rows))


async def _resolve(store: Store, ref: str) -> KeyRecord:
    record = await resolve_key(store, ref)
    if record is None:
        raise _Refused(f"no key {ref!r} (give its id key_…, or its 8-character prefix)")
    return record


async def _revoke(store: Store, args: argparse.Namespace) -> None:
    record = await store.revoke_key((await _resolve(store, args.key)).id)
    if args.json:
        print(json.dumps(key_view(record, now=datetime.now(UTC))))
        return
    print(f"Revoked key {record.id} ({record.name!r}, prefix {record.prefix}).")


async def _rotate(store: Store, args: argparse.Namespace) -> None:
    record, secret = await store.rotate_key((await _resolve(store, args.key)).id)
    _print_secret(record, secret, args, verb="Rotated")


def _print_secret(record: KeyRecord, secret: str, args: argparse.Namespace, *, verb: str) -> None:
    if args.json:
        print(json.dumps({**key_view(record, now=datetime.now(UTC)), "secret": secret}))
        return
    print(f"{verb} key {record.id} ({record.name!r}, prefix {record.prefix}).")
    print()
    print(f"    {secret}")
    print()
    print("This is the only time the secret is shown: store it now. rtrelay keeps only a hash.")


def _when(value: datetime | None) -> str | None:
    return None if value is None else value.strftime("%Y-%m-%d %H:%M")


# Argument types: an unusable value is a usage error (exit 2, one line), with the same
# ranges as the admin API (ledger/keys.py), never a traceback from the store.


def _text(text: str) -> str:
    if (problem := text_problem(text)) is not None:
        raise argparse.ArgumentTypeError(problem)
    return text


def _names(text: str) -> tuple[str, ...]:
    names = tuple(_text(n.strip()) for n in text.split(",") if n.strip())
    if not names:
        raise argparse.ArgumentTypeError("expected a comma-separated list")
    return names


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text[:40]!r}") from None
    if (problem := count_problem(value)) is not None:
        raise argparse.ArgumentTypeError(problem)
    return value


def _future(text: str) -> datetime:
    now = datetime.now(UTC)
    try:
        when = parse_when(text, now=now, future=True)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if when <= now:
        raise argparse.ArgumentTypeError("must be in the future")
    return when


def _usd(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(
            f"expected an amount like 25 or 9.99, got {text[:40]!r}"
        ) from None
    if (problem := budget_problem(value)) is not None:
        raise argparse.ArgumentTypeError(problem)
    return value
