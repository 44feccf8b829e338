"""Admin API routes over the ``Store``: keys, usage, sessions."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from aiohttp import web

from rtrelay.admin.errors import AdminError
from rtrelay.admin.state import CLOCK, LIVE_SESSIONS, OPENAPI, STORE
from rtrelay.ledger.exceptions import KeyRevoked
from rtrelay.ledger.keys import KeyRecord, KeySpec, KeySpecError, text_problem
from rtrelay.ledger.records import Grouping
from rtrelay.ledger.store import resolve_key
from rtrelay.ledger.timespec import parse_when
from rtrelay.ledger.views import key_view, session_view, usage_view

__all__ = ["routes"]

routes: Final = web.RouteTableDef()

_NO_STORE: Final = {"Cache-Control": "no-store"}
"""On every response that carries a secret."""
_GROUPINGS: Final[dict[str, Grouping]] = {"key": "key", "model": "model", "day": "day"}
_CREATE_FIELDS: Final = frozenset(
    {
        "name",
        "models",
        "max_sessions",
        "sessions_per_minute",
        "budget_usd",
        "expires_at",
        "expires_in",
        "origins",
    }
)


@routes.get("/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    return web.json_response(request.app[OPENAPI])


@routes.get("/keys")
async def list_keys(request: web.Request) -> web.Response:
    store, now = request.app[STORE], request.app[CLOCK]()
    data = [
        key_view(r, now=now, spent_usd=await store.spent_usd(r.id)) for r in await store.list_keys()
    ]
    return web.json_response({"object": "list", "data": data})


@routes.post("/keys")
async def create_key(request: web.Request) -> web.Response:
    now = request.app[CLOCK]()
    spec = _key_spec(await _json_object(request), now)
    record, secret = await request.app[STORE].create_key(spec)
    body = {**key_view(record, now=now, spent_usd=Decimal(0)), "secret": secret}
    return web.json_response(body, status=201, headers=_NO_STORE)


@routes.get("/keys/{key}")
async def get_key(request: web.Request) -> web.Response:
    record = await _key(request)
    spent = await request.app[STORE].spent_usd(record.id)
    return web.json_response(key_view(record, now=request.app[CLOCK](), spent_usd=spent))


@routes.post("/keys/{key}/revoke")
async def revoke_key(request: web.Request) -> web.Response:
    record = await request.app[STORE].revoke_key((await _key(request)).id)
    return web.json_response(key_view(record, now=request.app[CLOCK]()))


@routes.post("/keys/{key}/rotate")
async def rotate_key(request: web.Request) -> web.Response:
    try:
        record, secret = await request.app[STORE].rotate_key((await _key(request)).id)
    except KeyRevoked as exc:
        raise AdminError(409, "key_revoked", str(exc)) from None
    body = {**key_view(record, now=request.app[CLOCK]()), "secret": secret}
    return web.json_response(body, headers=_NO_STORE)


@routes.get("/usage")
async def usage(request: web.Request) -> web.Response:
    query, now = request.query, request.app[CLOCK]()
    by = _GROUPINGS.get(query.get("by", "key"))
    if by is None:
        raise AdminError(400, "invalid_value", "'by' must be key, model or day.", param="by")
    key_id = await _key_filter(request)
    rows = await request.app[STORE].usage(
        key_id=key_id,
        since=_time_param(query.get("since"), "since", now),
        until=_time_param(query.get("until"), "until", now),
        by=by,
    )
    return web.json_response({"object": "list", "by": by, "data": [usage_view(r) for r in rows]})


@routes.get("/sessions")
async def sessions(request: web.Request) -> web.Response:
    query, now = request.query, request.app[CLOCK]()
    live_only = query.get("live", "false").lower() in ("1", "true", "yes")
    try:
        limit = int(query.get("limit", "100"))
    except ValueError:
        raise AdminError(400, "invalid_value", "'limit' must be a number.", param="limit") from None
    if not 1 <= limit <= 1000:
        raise AdminError(400, "invalid_value", "'limit' must be 1..1000.", param="limit")
    rows = await request.app[STORE].sessions(
        key_id=await _key_filter(request),
        since=_time_param(query.get("since"), "since", now),
        live_only=live_only,
        limit=limit,
    )
    live = {str(s.get("id", s.get("session_id"))): s for s in request.app[LIVE_SESSIONS]()}
    data = []
    for row in rows:
        view = session_view(row)
        if row.session_id in live:
            view["live"] = live[row.session_id]
        data.append(view)
    return web.json_response({"object": "list", "data": data})


async def _key(request: web.Request) -> KeyRecord:
    return await _resolve(request, request.match_info["key"])


async def _key_filter(request: web.Request) -> str | None:
    ref = request.query.get("key")
    return None if ref is None else (await _resolve(request, ref)).id


async def _resolve(request: web.Request, ref: str) -> KeyRecord:
    """The key a reference names, or 404; text no key could have never reaches the store."""
    record = None
    if text_problem(ref) is None:  # a NUL or a lone surrogate would make the database fail
        record = await resolve_key(request.app[STORE], ref)
    if record is None:
        shown = ref if len(ref) <= 40 else ref[:40] + "…"
        raise AdminError(404, "key_not_found", f"No key {shown!r}.", param="key")
    return record


def _time_param(text: str | None, name: str, now: datetime) -> datetime | None:
    if text is None:
        return None
    try:
        return parse_when(text, now=now, future=False)
    except ValueError as exc:
        raise AdminError(400, "invalid_value", str(exc), param=name) from None


async def _json_object(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except (ValueError, RecursionError):  # RecursionError: [[[[… nested past the parser's depth
        raise AdminError(400, "invalid_json", "The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise AdminError(400, "invalid_json", "The request body must be a JSON object.")
    return body


def _key_spec(body: dict[str, Any], now: datetime) -> KeySpec:
    unknown = sorted(set(body) - _CREATE_FIELDS)
    if unknown:
        raise AdminError(
            400, "unknown_parameter", f"Unknown parameter: '{unknown[0]}'.", param=unknown[0]
        )
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        raise AdminError(400, "missing_required_parameter", "'name' is required.", param="name")
    if "expires_at" in body and "expires_in" in body:
        raise AdminError(
            400, "invalid_value", "Give expires_at or expires_in, not both.", param="expires_in"
        )
    expires_at = _expiry(body, now)
    try:
        return KeySpec(
            name=name,
            models=_names(body, "models"),
            max_sessions=_count(body, "max_sessions"),
            sessions_per_minute=_count(body, "sessions_per_minute"),
            budget_usd=_usd(body, "budget_usd"),
            expires_at=expires_at,
            origins=_names(body, "origins"),
        )
    except KeySpecError as exc:  # the ranges every key field must be in (ledger/keys.py)
        raise AdminError(400, "invalid_value", str(exc), param=exc.field) from None


def _expiry(body: dict[str, Any], now: datetime) -> datetime | None:
    for name in ("expires_at", "expires_in"):
        value = body.get(name)
        if value is None:
            continue
        if not isinstance(value, str):
            raise AdminError(400, "invalid_type", f"'{name}' must be a string.", param=name)
        try:
            when = parse_when(value, now=now, future=True)
        except ValueError as exc:
            raise AdminError(400, "invalid_value", str(exc), param=name) from None
        if when <= now:
            raise AdminError(400, "invalid_value", f"'{name}' must be in the future.", param=name)
        return when
    return None


def _names(body: dict[str, Any], name: str) -> tuple[str, ...] | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise AdminError(400, "invalid_type", f"'{name}' must be a list of strings.", param=name)
    return tuple(value)


def _count(body: dict[str, Any], name: str) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise AdminError(400, "invalid_value", f"'{name}' must be a whole number.", param=name)
    return value  # its range is KeySpec's to check


def _usd(body: dict[str, Any], name: str) -> Decimal | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise AdminError(400, "invalid_type", f"'{name}' must be a decimal string.", param=name)
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise AdminError(400, "invalid_value", f"'{name}' is not an amount.", param=name) from None
    return amount  # its range is KeySpec's to check
