"""App servers through the relay: their own sidebands to a call, and the call controls.

The ``openai`` SDK is the app server (``client.realtime.connect(call_id=…)``,
``client.realtime.calls.hangup(…)``) pointed at rtrelay with the relay call id; the
browser is an aiortc peer. The relay's own metering sideband runs alongside.
"""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from calls_rig import Rig
from openai import AsyncOpenAI, NotFoundError

from rtc_helpers import RtcClient
from rtrelay.edge.app import CALLS
from rtrelay.ledger.keys import KeySpec
from support import upgrade_headers

pytestmark = pytest.mark.timeout(60)


def sdk(rig: Rig, api_key: str) -> AsyncOpenAI:
    base = rig.relay.url + "/v1"
    return AsyncOpenAI(api_key=api_key, base_url=base, websocket_base_url=rig.relay.ws_url + "/v1")


async def test_an_app_sideband_sees_the_calls_events_updates_it_and_is_not_billed_twice(
    rig: Rig, http: aiohttp.ClientSession
) -> None:
    store, writer = rig.relay.relay.parts.store, rig.relay.relay.parts.writer
    async with RtcClient() as client:
        await client.start(http, rig.calls_url, api_key=rig.key, model="gpt-realtime")
        call_session = rig.relay.app[CALLS].calls[client.call_id].session_id
        async with (
            sdk(rig, rig.key) as openai,
            openai.realtime.connect(call_id=client.call_id) as sideband,
        ):
            await sideband.session.update(
                session={"type": "realtime", "instructions": "Only ever say ahoy."}
            )
            first = await asyncio.wait_for(sideband.recv(), 10)
            # no session.created on a sideband: the update's answer comes first
            assert first.type == "session.updated"
            updated = await client.next_event("session.updated")
            assert updated["session"]["instructions"] == "Only ever say ahoy."
            client.send({"type": "response.create"})
            while (await asyncio.wait_for(sideband.recv(), 10)).type != "response.done":
                pass
            await client.next_event("response.done")
            app_sessions = list(rig.relay.relay.sessions.values())
            assert len(app_sessions) == 1 and not app_sessions[0].billing
    async with asyncio.timeout(10):
        while rig.relay.app[CALLS].calls or rig.relay.relay.sessions:
            await asyncio.sleep(0.05)
    await writer.flush()
    usage = await store.usage(by="key")
    assert [u.responses for u in usage] == [1]  # the call's one response, billed once
    row = await store.session(call_session)
    assert row is not None and row.responses == 1


async def test_another_key_can_neither_attach_to_nor_control_the_call(
    rig: Rig, http: aiohttp.ClientSession
) -> None:
    _, other = await rig.relay.relay.parts.store.create_key(KeySpec(name="other"))
    async with RtcClient() as client:
        await client.start(http, rig.calls_url, api_key=rig.key, model="gpt-realtime")
        headers = {"Authorization": f"Bearer {other}"}
        for call_id in (client.call_id, "rcall_unknown"):
            url = f"{rig.relay.ws_url}/v1/realtime?call_id={call_id}"
            async with http.get(url, headers=upgrade_headers(**headers)) as resp:
                assert resp.status == 404
                assert (await resp.json())["error"]["code"] == "call_not_found"
        async with sdk(rig, other) as openai:
            with pytest.raises(NotFoundError):
                await openai.realtime.calls.hangup(client.call_id)
        assert rig.provider.calls[-1].controls == []
        # a bad key is told so before anything about the call
        url = f"{rig.relay.ws_url}/v1/realtime?call_id=rcall_unknown"
        async with http.get(url, headers=upgrade_headers(Authorization="Bearer rk_bad")) as resp:
            assert resp.status == 401


async def test_the_owner_hangs_the_call_up_through_the_relay_and_the_call_settles(
    rig: Rig, http: aiohttp.ClientSession
) -> None:
    async with RtcClient() as client:
        await client.start(http, rig.calls_url, api_key=rig.key, model="gpt-realtime")
        session_id = rig.relay.app[CALLS].calls[client.call_id].session_id
        async with sdk(rig, rig.key) as openai:
            await openai.realtime.calls.hangup(client.call_id)
        call = rig.provider.calls[-1]
        async with asyncio.timeout(10):
            await call.ended.wait()
            while rig.relay.app[CALLS].calls:
                await asyncio.sleep(0.05)
        assert call.controls[0] == "hangup"
        async with sdk(rig, rig.key) as openai:
            with pytest.raises(NotFoundError) as raised:
                await openai.realtime.calls.hangup(client.call_id)
        assert call.call_id not in str(raised.value)  # the provider's id never leaks
    await rig.relay.relay.parts.writer.flush()
    row = await rig.relay.relay.parts.store.session(session_id)
    assert row is not None and row.status == "completed" and row.transport == "webrtc"
