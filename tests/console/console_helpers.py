"""A relay with the console on (admin token set), in front of the real simulated provider,
and an HTTP client that signs in to it as a browser would (cookie, form CSRF token)."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp

from rtrelay.mock import MockOptions, MockProvider
from support import RunningRelay, mock_channel_settings, running_relay

ADMIN_TOKEN = "console-test-admin-token-0123456789"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    match = _CSRF.search(html)
    assert match is not None, html[:500]
    return match.group(1)


@dataclass
class Console:
    relay: RunningRelay
    http: aiohttp.ClientSession

    @property
    def url(self) -> str:
        return self.relay.url

    async def get(self, path: str, **kw: Any) -> tuple[int, str]:
        async with self.http.get(self.url + path, allow_redirects=False, **kw) as resp:
            return resp.status, await resp.text()

    async def post(self, path: str, data: dict[str, str], **kw: Any) -> aiohttp.ClientResponse:
        async with self.http.post(self.url + path, data=data, allow_redirects=False, **kw) as r:
            await r.read()
            return r

    async def csrf(self, path: str = "/console/keys") -> str:
        status, html = await self.get(path)
        assert status == 200, (status, html[:300])
        return csrf_of(html)

    async def sign_in(self, token: str = ADMIN_TOKEN) -> aiohttp.ClientResponse:
        status, html = await self.get("/console/login")
        assert status == 200
        return await self.post(
            "/console/login", {"csrf_token": csrf_of(html), "token": token, "next": "/console/"}
        )


@contextlib.asynccontextmanager
async def console_stack(
    *, token: str | None = ADMIN_TOKEN, **provider: Any
) -> AsyncIterator[Console]:
    """The relay (keys required, SQLite) with ``RTRELAY_ADMIN_TOKEN=token``, and a client."""
    options = MockOptions(realtime_pacing=0, **provider)
    environ = {} if token is None else {"RTRELAY_ADMIN_TOKEN": token}
    async with MockProvider(options) as upstream:
        async with running_relay(mock_channel_settings(upstream.url), environ) as relay:
            jar = aiohttp.CookieJar(unsafe=True)  # cookies for 127.0.0.1
            async with aiohttp.ClientSession(cookie_jar=jar) as http:
                yield Console(relay, http)
