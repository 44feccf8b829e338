"""``rtrelay mock`` as a real process: prints its URL, serves, stops cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import signal
import sys

import aiohttp
from mock_wire import next_event


async def test_rtrelay_mock_serves_until_sigterm(http: aiohttp.ClientSession) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "rtrelay.cli.main", "mock", "--port", "0", "--pacing", "0",
        "--api-key", "sk-cli",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        async with asyncio.timeout(20):
            line = (await process.stdout.readline()).decode()
        assert line.startswith("rtrelay mock listening: ws://127.0.0.1:")
        url = line.split(": ", 1)[1].strip()
        async with http.ws_connect(url, headers={"Authorization": "Bearer sk-cli"}) as ws:
            assert (await next_event(ws))["type"] == "session.created"
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(10):
            assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.stderr is not None
    assert b"sk-cli" not in await process.stderr.read()
