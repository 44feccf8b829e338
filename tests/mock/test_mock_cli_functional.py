"""``rtrelay mock`` as a real process: prints its URL, serves, stops cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import signal

import aiohttp
from mock_wire import mock_process, next_event


async def test_rtrelay_mock_serves_until_sigterm(http: aiohttp.ClientSession) -> None:
    async with mock_process("--pacing", "0", "--api-key", "sk-cli") as (process, url):
        async with http.ws_connect(url, headers={"Authorization": "Bearer sk-cli"}) as ws:
            assert (await next_event(ws))["type"] == "session.created"
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(10):
            assert await process.wait() == 0
    assert process.stderr is not None
    assert b"sk-cli" not in await process.stderr.read()
