"""``rtrelay channels``: each upstream channel's circuit state and health, from a running relay.

Breaker state lives in the relay process, not in the store, so this asks a running
relay's admin API (``GET /admin/v1/channels``) rather than reading the database.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any, Final, Literal

import aiohttp

from rtrelay.ledger.render import render_table

__all__ = [
    "DEFAULT_TOKEN_ENV",
    "DEFAULT_URL",
    "ChannelsError",
    "fetch_channels",
    "register",
    "render_channels",
    "report",
]

DEFAULT_URL: Final = "http://127.0.0.1:8080"
DEFAULT_TOKEN_ENV: Final = "RTRELAY_ADMIN_TOKEN"
DEFAULT_TIMEOUT: Final = 10.0
LAST_ERROR_WIDTH: Final = 60

Format = Literal["table", "json"]

_HEADERS: Final = ("NAME", "KIND", "STATE", "SUCCESS", "ATTEMPTS", "P50 MS", "P99 MS", "LAST ERROR")


class ChannelsError(Exception):
    """The relay could not be asked; the message is for a person (and never holds the token)."""


async def fetch_channels(
    url: str, token: str, *, timeout: float = DEFAULT_TIMEOUT
) -> list[dict[str, Any]]:
    """The relay's channel list, as ``GET /admin/v1/channels`` returns it.

    Args:
        url: the relay's base URL, e.g. ``http://127.0.0.1:8080``.
        token: the admin token.
        timeout: seconds for the whole request.

    Raises:
        ChannelsError: the relay is unreachable, refused the token, or answered oddly.
    """
    endpoint = url.rstrip("/") + "/admin/v1/channels"
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as http,
            http.get(endpoint, headers={"Authorization": f"Bearer {token}"}) as resp,
        ):
            if resp.status != 200:
                raise ChannelsError(_refusal_message(resp.status, await _error_message(resp)))
            try:
                body = await resp.json()
            except (aiohttp.ContentTypeError, ValueError) as exc:
                raise ChannelsError(f"{endpoint} did not answer with JSON") from exc
    except TimeoutError as exc:
        raise ChannelsError(f"no answer from {endpoint} within {timeout:g} s") from exc
    except aiohttp.InvalidURL as exc:
        raise ChannelsError(f"not a valid URL: {url!r}") from exc
    except (aiohttp.ClientError, OSError) as exc:
        raise ChannelsError(f"cannot reach the relay at {endpoint}: {exc}") from exc
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list):
        raise ChannelsError(f"{endpoint} answered without a 'data' list")
    return data


async def _error_message(resp: aiohttp.ClientResponse) -> str | None:
    try:
        body = await resp.json(content_type=None)
    except ValueError:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    return message if isinstance(message, str) else None


def _refusal_message(status: int, message: str | None) -> str:
    detail = f"HTTP {status}" + (f": {message}" if message else "")
    if status == 401:
        return f"the relay refused the admin token ({detail})"
    if status == 404:
        return f"no admin API at this URL ({detail}); is it an rtrelay relay?"
    return f"the relay answered {detail}"


def render_channels(channels: Sequence[Mapping[str, Any]], fmt: Format) -> str:
    """A table for people (one row per channel), or the admin API's JSON for programs."""
    if fmt == "json":
        return json.dumps({"data": list(channels)}, indent=2)
    return render_table(_HEADERS, [_row(c) for c in channels])


def _row(channel: Mapping[str, Any]) -> list[str | None]:
    state = str(channel.get("state", "?"))
    retry = channel.get("retry_after_s")
    if state == "open" and isinstance(retry, int | float) and retry > 0:
        state = f"open ({retry:.0f}s)"
    rate = channel.get("recent_success_rate")
    last = channel.get("last_error")
    if isinstance(last, str) and len(last) > LAST_ERROR_WIDTH:
        last = last[: LAST_ERROR_WIDTH - 1] + "…"
    return [
        channel.get("name"),
        channel.get("kind"),
        state,
        None if rate is None else f"{rate * 100:.1f}%",
        str(channel.get("recent_attempts", 0)),
        _number(channel.get("dial_latency_p50_ms")),
        _number(channel.get("dial_latency_p99_ms")),
        last,
    ]


def _number(value: Any) -> str | None:
    return None if value is None else f"{value:.1f}"


async def report(url: str, token: str, fmt: Format = "table") -> str:
    """What ``rtrelay channels`` prints.

    Raises:
        ChannelsError: as ``fetch_channels``.
    """
    return render_channels(await fetch_channels(url, token), fmt)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "channels", help="upstream channels of a running relay: circuit state, success, latency"
    )
    parser.add_argument(
        "--url", default=DEFAULT_URL, help=f"the relay's base URL (default {DEFAULT_URL})"
    )
    parser.add_argument(
        "--token-env",
        default=DEFAULT_TOKEN_ENV,
        metavar="NAME",
        help=f"environment variable holding the admin token (default {DEFAULT_TOKEN_ENV})",
    )
    parser.add_argument("--format", choices=("table", "json"), default="table")
    parser.set_defaults(func=_channels)


def _channels(args: argparse.Namespace) -> int:
    token = os.environ.get(args.token_env)
    if not token:
        print(
            f"rtrelay channels: set {args.token_env} to the relay's admin token "
            "(or name another variable with --token-env)",
            file=sys.stderr,
        )
        return 1
    try:
        print(asyncio.run(report(args.url, token, args.format)))
    except ChannelsError as exc:
        print(f"rtrelay channels: {exc}", file=sys.stderr)
        return 1
    return 0
