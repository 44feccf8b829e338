"""The admin API served for tests: on a real aiohttp server (127.0.0.1, port 0), mounted as the
relay mounts it."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from rtrelay.admin import create_admin_app
from rtrelay.ledger import Store

TOKEN = "admin-token-for-tests-0123456789"
PREFIX = "/admin/v1"


@dataclass
class Admin:
    url: str
    http: aiohttp.ClientSession
    store: Store
    app: web.Application
    seen: list[str] = field(default_factory=list)
    """Every response body, to search for secrets afterwards."""

    async def call(
        self,
        method: str,
        path: str,
        *,
        token: str | None = TOKEN,
        json: Any = None,
        data: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any, aiohttp.typedefs.LooseHeaders]:
        sent = dict(headers or {})
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        async with self.http.request(
            method, self.url + path, json=json, data=data, headers=sent
        ) as resp:
            text = await resp.text()
            self.seen.append(text)
            assert resp.content_type == "application/json", text
            return resp.status, await resp.json(), resp.headers


@contextlib.asynccontextmanager
async def serve_admin(
    store: Store,
    *,
    token: str | None = TOKEN,
    live: Callable[[], list[dict[str, Any]]] | None = None,
    customize: Callable[[web.Application], None] | None = None,
) -> AsyncIterator[Admin]:
    admin = (
        create_admin_app(store, token=token)
        if live is None
        else create_admin_app(store, token=token, live_sessions=live)
    )
    if customize is not None:
        customize(admin)
    parent = web.Application()
    parent.add_subapp(PREFIX, admin)
    runner = web.AppRunner(parent, handle_signals=False, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with aiohttp.ClientSession() as http:
            yield Admin(f"http://127.0.0.1:{port}{PREFIX}", http, store, admin)
    finally:
        await runner.cleanup()
