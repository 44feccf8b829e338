"""The simulated provider as a WebRTC peer: offers, the data channel, media, sidebands."""

from __future__ import annotations

import aiohttp
from rtc_helpers import RtcClient

from rtrelay.mock import MockProvider


async def test_raw_offer_gets_session_created_on_the_data_channel(
    provider: MockProvider, http: aiohttp.ClientSession
) -> None:
    async with RtcClient() as client:
        status = await client.call(http, provider.calls_url, model="gpt-realtime-mini")
        assert status == 201, client.body
        created = await client.next_event("session.created")
        assert created["session"]["model"] == "gpt-realtime-mini"
        client.send({"type": "response.create"})
        done = await client.next_event("response.done")
        assert done["response"]["status"] == "completed"
        await client.wait_for(lambda: client.loud_frames > 10)
        print(client.types(), client.frames, client.loud_frames)
