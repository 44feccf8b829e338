"""``RealtimeCalls``, the app server's side of a WebRTC call, against the real relay and the
real simulated provider: an aiortc peer (``rtrelay.rtc.RtcClient``) is the browser that
makes the offer; the library posts it, joins the call with a sideband and hangs it up.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from calls.calls_rig import Rig, open_rig
from rtrelay.client import (
    AuthenticationError,
    CallAnswer,
    NetworkError,
    NotFoundError,
    PermissionDeniedError,
    RealtimeCalls,
    RealtimeClient,
    UpstreamError,
)
from rtrelay.edge.app import CALLS
from rtrelay.ledger.keys import KeySpec
from rtrelay.rtc import RtcClient

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    async with open_rig() as running:
        yield running


def calls_for(rig: Rig, key: str) -> RealtimeCalls:
    return RealtimeCalls(rig.relay.url + "/v1", api_key=key, timeout=10)


async def answered(peer: RtcClient, answer: CallAnswer) -> None:
    """The browser's half: apply the answer and see the session start on the channel."""
    await peer.answer(answer.sdp)
    await peer.next_event("session.created")


async def test_a_raw_offer_is_answered_then_a_sideband_watches_and_updates_the_call(
    rig: Rig,
) -> None:
    async with calls_for(rig, rig.key) as calls, RtcClient() as peer:
        answer = await calls.create(await peer.offer(), model="gpt-realtime")
        assert answer.sdp.startswith("v=0")
        assert answer.call_id.startswith("rcall_")
        assert answer.location == f"/v1/realtime/calls/{answer.call_id}"
        assert answer.request_id is not None and answer.request_id.startswith("req_")
        assert answer.sdp not in repr(answer)
        await answered(peer, answer)
        assert rig.relay.app[CALLS].calls.keys() == {answer.call_id}

        async with RealtimeClient(calls.sideband(answer.call_id, max_retries=0)) as sideband:
            updated = sideband.wait_for("session.updated")
            await sideband.update_session(instructions="Only ever say ahoy.")
            assert (await asyncio.wait_for(updated, 10))["session"]["instructions"] == (
                "Only ever say ahoy."
            )
            seen = await peer.next_event("session.updated")
            assert seen["session"]["instructions"] == "Only ever say ahoy."
            done = sideband.wait_for("response.done")
            peer.send({"type": "response.create"})
            response = await asyncio.wait_for(done, 10)
            assert response["response"]["status"] == "completed"
            await peer.next_event("response.done")

            await calls.hangup(answer.call_id)
            provider_call = rig.provider.calls[-1]
            async with asyncio.timeout(10):
                await provider_call.ended.wait()
                while rig.relay.app[CALLS].calls:
                    await asyncio.sleep(0.05)
        assert provider_call.controls == ["hangup"]


async def test_a_multipart_offer_carries_the_session_config(rig: Rig) -> None:
    session = {"type": "realtime", "model": "gpt-realtime-mini", "instructions": "Be brief."}
    async with calls_for(rig, rig.key) as calls, RtcClient() as peer:
        answer = await calls.create(await peer.offer(), session=session)
        await answered(peer, answer)
        created = peer.events[-1]
        assert created["session"]["model"] == "gpt-realtime-mini"
        assert created["session"]["instructions"] == "Be brief."
        assert rig.provider.calls[-1].model == "gpt-realtime-mini"
        await calls.hangup(answer.call_id)


async def test_refusals_are_typed_errors_with_the_wire_facts(rig: Rig) -> None:
    store = rig.relay.relay.parts.store
    _, mini_only = await store.create_key(KeySpec(name="mini", models=("gpt-realtime-mini",)))
    async with RtcClient() as peer:
        sdp = await peer.offer()
    async with calls_for(rig, "rk_not_a_key_0123456789") as calls:
        with pytest.raises(AuthenticationError) as bad_key:
            await calls.create(sdp, model="gpt-realtime")
    assert (bad_key.value.status, bad_key.value.code) == (401, "invalid_api_key")
    assert bad_key.value.fault == "client"
    assert bad_key.value.request_id is not None
    assert bad_key.value.request_id.startswith("req_")
    async with calls_for(rig, mini_only) as calls:
        with pytest.raises(PermissionDeniedError) as not_allowed:
            await calls.create(sdp, model="gpt-realtime")
    assert not_allowed.value.code == "model_not_allowed"
    body = '{"error": {"code": "offer_refused_here", "message": "no calls today"}}'
    rig.provider.options = replace(rig.provider.options, refuse_status=400, refuse_body=body)
    async with calls_for(rig, rig.key) as calls:
        with pytest.raises(UpstreamError) as refused:
            await calls.create(sdp, model="gpt-realtime")
    assert (refused.value.status, refused.value.fault) == (502, "provider")
    assert "no calls today" in refused.value.message
    assert rig.provider.calls == []


async def test_another_keys_call_cannot_be_attached_to_or_hung_up(rig: Rig) -> None:
    _, other = await rig.relay.relay.parts.store.create_key(KeySpec(name="other"))
    async with calls_for(rig, rig.key) as calls, RtcClient() as peer:
        answer = await calls.create(await peer.offer(), model="gpt-realtime")
        await answered(peer, answer)
        async with calls_for(rig, other) as intruder:
            with pytest.raises(NotFoundError) as hangup:
                await intruder.hangup(answer.call_id)
            assert (hangup.value.status, hangup.value.code) == (404, "call_not_found")
            sideband = intruder.sideband(answer.call_id)
            with pytest.raises(NotFoundError) as attach:
                await sideband.connect()
            await sideband.close()
            assert attach.value.code == "call_not_found"
        assert rig.provider.calls[-1].controls == []
        await calls.hangup(answer.call_id)
        with pytest.raises(NotFoundError):
            await calls.hangup("rcall_unknown")


async def test_a_relay_that_is_down_is_a_network_error_not_a_crash() -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with RealtimeCalls(f"http://127.0.0.1:{port}/v1", api_key="rk_x") as calls:
        with pytest.raises(NetworkError) as down:
            await calls.create("v=0\r\n", model="gpt-realtime")
        assert down.value.fault == "network"
        assert f"127.0.0.1:{port}/v1/realtime/calls" in str(down.value)
        with pytest.raises(NetworkError):
            await calls.hangup("rcall_x")


def test_urls_are_completed_as_for_the_sdk() -> None:
    for url in (
        "http://relay:8080/v1",
        "ws://relay:8080/v1/",
        "http://relay:8080/v1/realtime",
        "http://relay:8080/v1/realtime/calls?model=x",
    ):
        calls = RealtimeCalls(url, api_key="rk_x")
        assert calls.url == "http://relay:8080/v1/realtime/calls", url
    sideband = RealtimeCalls("https://relay/v1", api_key="rk_x").sideband("rcall_1")
    assert sideband.url == "wss://relay/v1/realtime?call_id=rcall_1"
    with pytest.raises(ValueError, match="absolute"):
        RealtimeCalls("relay:8080")
    with pytest.raises(ValueError, match="header") as bad:
        RealtimeCalls("http://relay/v1", api_key="rk_\nsecret")
    assert "secret" not in str(bad.value)
