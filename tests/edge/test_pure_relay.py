"""``store.ledger = false``: a pure relay that meters into metrics but writes nothing."""

from __future__ import annotations

import aiohttp
import orjson
import pytest

from rtrelay import config
from rtrelay.mock import MockOptions, MockProvider
from support import mock_channel_settings, running_relay


def test_a_relay_without_a_ledger_cannot_have_keys() -> None:
    with pytest.raises(config.ConfigError, match=r"ledger = false needs auth\.mode"):
        config.from_mapping({"store": {"ledger": False}}, {})
    settings = config.from_mapping({"auth": {"mode": "none"}}, {"RTRELAY_STORE_LEDGER": "false"})
    assert settings.store.ledger is False


async def test_a_pure_relay_writes_nothing_and_still_exports_usage() -> None:
    async with MockProvider(MockOptions(realtime_pacing=0)) as provider:
        settings = mock_channel_settings(provider.url, auth="none", store={"ledger": False})
        async with running_relay(settings) as relay, aiohttp.ClientSession() as http:
            async with http.ws_connect(relay.realtime()) as ws:
                await ws.send_str('{"type":"response.create"}')
                while True:
                    event = orjson.loads((await ws.receive(timeout=10)).data)
                    if event["type"] == "response.done":
                        break
                usage = event["response"]["usage"]
            parts = relay.relay.parts
            while relay.relay.sessions:
                await parts.writer.flush()
            await parts.writer.flush()
            assert await parts.store.sessions() == []
            assert await parts.store.usage() == []
            relay.relay.flush_metrics()
            async with http.get(f"{relay.url}/metrics") as resp:
                metrics = await resp.text()
    metered = sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("rtrelay_tokens_total{")
    )
    assert usage["output_tokens"] > 0
    assert metered == usage["input_tokens"] + usage["output_tokens"]
