"""The keys pages: list with spend against budget, create (secret shown once), edit
limits, rotate, revoke. The same store calls as the admin API and ``rtrelay keys``."""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any, Final
from urllib.parse import quote

from aiohttp import web

from rtrelay.console.filters import KeyForm, key_form, key_form_values
from rtrelay.console.signin import see_other
from rtrelay.console.state import CONSOLE, error_page, page
from rtrelay.ledger.exceptions import KeyRevoked
from rtrelay.ledger.keys import KeyRecord, text_problem
from rtrelay.ledger.store import resolve_key
from rtrelay.ledger.views import key_view

__all__ = ["routes"]

routes: Final = web.RouteTableDef()
_log = logging.getLogger("rtrelay.console")
_SECRET_HEADERS: Final = {"Cache-Control": "no-store"}
_EMPTY_FORM: Final = KeyForm(None, {}, {})


def _share(view: dict[str, Any]) -> float | None:
    """How much of its budget a key has spent, 0..1 (``None``: no budget)."""
    budget, spent = view.get("budget_usd"), view.get("spent_usd")
    if budget is None or spent is None or Decimal(budget) <= 0:
        return None
    return min(1.0, float(Decimal(spent) / Decimal(budget)))


async def _keys_page(
    request: web.Request, form: KeyForm = _EMPTY_FORM, *, status: int = 200
) -> web.Response:
    console = request.app[CONSOLE]
    store, now = console.relay.parts.store, console.clock()
    views = []
    for record in await store.list_keys():
        view = key_view(record, now=now, spent_usd=await store.spent_usd(record.id))
        view["share"] = _share(view)
        views.append(view)
    views.sort(key=lambda v: (v["status"] != "active", v["created_at"] or ""), reverse=False)
    context = {"keys": views, "form": form, "message": request.query.get("done")}
    return page(request, "keys.html", "keys", context, status=status)


@routes.get("/keys", name="keys")
async def keys(request: web.Request) -> web.Response:
    return await _keys_page(request)


@routes.post("/keys", name="create_key")
async def create_key(request: web.Request) -> web.Response:
    console = request.app[CONSOLE]
    form = key_form(await request.post(), console.clock())
    if form.spec is None:
        return await _keys_page(request, form, status=400)
    record, secret = await console.relay.parts.store.create_key(form.spec)
    _log.info("key created", extra={"event": "console", "key_prefix": record.prefix})
    return _secret_page(request, record, secret, created=True)


def _secret_page(
    request: web.Request, record: KeyRecord, secret: str, *, created: bool
) -> web.Response:
    """The secret, shown this once (``no-store``: not kept by the browser's cache)."""
    view = key_view(record, now=request.app[CONSOLE].clock())
    context = {"key": view, "secret": secret, "created": created}
    response = page(request, "key_secret.html", "keys", context)
    response.headers.update(_SECRET_HEADERS)
    return response


async def _key(request: web.Request) -> KeyRecord | None:
    ref = request.match_info["key"]
    if text_problem(ref) is not None:
        return None
    return await resolve_key(request.app[CONSOLE].relay.parts.store, ref)


def _no_key(request: web.Request) -> web.Response:
    ref = request.match_info["key"][:60]
    return error_page(request, "keys", "No such key", f"No key {ref!r}.", status=404)


async def _key_page(
    request: web.Request, record: KeyRecord, form: KeyForm | None = None, *, status: int = 200
) -> web.Response:
    console = request.app[CONSOLE]
    store = console.relay.parts.store
    view = key_view(record, now=console.clock(), spent_usd=await store.spent_usd(record.id))
    view["share"] = _share(view)
    if form is None:
        form = KeyForm(None, key_form_values(record), {})
    recent = await store.sessions(key_id=record.id, limit=20)
    context = {"key": view, "form": form, "sessions": recent, "message": request.query.get("done")}
    return page(request, "key.html", "keys", context, status=status)


@routes.get("/keys/{key}", name="key")
async def key_page(request: web.Request) -> web.Response:
    record = await _key(request)
    return _no_key(request) if record is None else await _key_page(request, record)


@routes.post("/keys/{key}", name="edit_key")
async def edit_key(request: web.Request) -> web.Response:
    """New limits for a key (name, models, origins, concurrency, rate, budget, expiry).

    The relay's key cache keeps the old ones for a few seconds (``gate``), as after a
    revocation; sessions already open keep the budget they were admitted with.
    """
    record = await _key(request)
    if record is None:
        return _no_key(request)
    console = request.app[CONSOLE]
    form = key_form(await request.post(), console.clock())
    if form.spec is None:
        return await _key_page(request, record, form, status=400)
    updated = await console.relay.parts.store.update_key(record.id, form.spec)
    _log.info("key limits changed", extra={"event": "console", "key_prefix": updated.prefix})
    return see_other(f"/console/keys/{quote(updated.id)}?done=saved")


@routes.post("/keys/{key}/revoke", name="revoke_key")
async def revoke_key(request: web.Request) -> web.Response:
    record = await _key(request)
    if record is None:
        return _no_key(request)
    await request.app[CONSOLE].relay.parts.store.revoke_key(record.id)
    _log.info("key revoked", extra={"event": "console", "key_prefix": record.prefix})
    return see_other("/console/keys?done=revoked")


@routes.post("/keys/{key}/rotate", name="rotate_key")
async def rotate_key(request: web.Request) -> web.Response:
    record = await _key(request)
    if record is None:
        return _no_key(request)
    try:
        rotated, secret = await request.app[CONSOLE].relay.parts.store.rotate_key(record.id)
    except KeyRevoked:
        message = "A revoked key cannot be rotated: make a new one."
        return error_page(request, "keys", "Key revoked", message, status=409)
    _log.info("key rotated", extra={"event": "console", "key_prefix": rotated.prefix})
    return _secret_page(request, rotated, secret, created=False)
