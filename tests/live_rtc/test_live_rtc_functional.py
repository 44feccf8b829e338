"""GPT-Live over WebRTC through the relay: a real aiortc "browser", the openai SDK as the
app server, the real relay and the simulated provider's WebRTC peer, all on 127.0.0.1.

One session open at a time: an open WebRTC session costs its two peers a tenth of a core
each.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from decimal import Decimal

import aiohttp
import orjson
import pytest
from live_rtc_rig import FAST, SESSION, Rig, create, live_rig, new_key, sdk, settled
from openai import NotFoundError

from rtc_helpers import RtcClient
from rtrelay.bridge.duration_metering import LiveMeter
from rtrelay.edge.app import CALLS
from rtrelay.errors import EndedByOperator
from rtrelay.ledger.records import DurationRecord, ResponseRecord
from rtrelay.mock import MockProvider
from rtrelay.mock._audio import silence_pcm16, speech_pcm16
from support import running_relay, settings_for, upgrade_headers

pytestmark = pytest.mark.timeout(60)


def speech() -> bytes:
    return silence_pcm16(200) + speech_pcm16(800) + silence_pcm16(800)


async def test_the_sdk_creates_a_session_answered_with_a_relay_id_and_metered_in_seconds(
    rig: Rig,
) -> None:
    store = rig.relay.relay.parts.store
    async with RtcClient() as client, sdk(rig, rig.key) as openai:
        created = await openai.live.create(
            session=SESSION,  # type: ignore[arg-type]
            transport={"type": "webrtc", "sdp": await client.offer()},
        )
        relay_id = created.session.id
        assert relay_id.startswith("rlive_")
        await client.answer(created.transport.sdp)
        await client.next_event("session.started")
        [provider_session] = rig.provider.calls
        assert provider_session.model == "gpt-live-1"
        assert provider_session.call_id not in created.model_dump_json()
        run = rig.relay.app[CALLS].calls[relay_id]
        assert run.answered.provider_call_id == provider_session.call_id
        assert run.describe()["protocol"] == "live"
        client.speak(speech())
        await client.wait_for(lambda: client.loud_frames > 0)
        # the relay's own sideband sees the usage reports and bills them as they come
        async with asyncio.timeout(10):
            while run.meter.usage.cost_usd <= 0:
                await asyncio.sleep(0.05)
        session_id = run.session_id
        await openai.live.sessions.hangup(relay_id)
        async with asyncio.timeout(10):
            await provider_session.ended.wait()
    row = await settled(rig, session_id)
    assert provider_session.controls[0] == "hangup"
    assert row.transport == "webrtc"
    assert row.status == "completed"
    assert row.model == "gpt-live-1"
    usage = await store.session_usage(session_id)
    assert usage and all(isinstance(u, DurationRecord) for u in usage)
    assert {u.usage.unit for u in usage} == {"seconds"}
    # every row a positive increase of the reported cumulative seconds, billed once
    assert all(u.usage.seconds > 0 for u in usage)
    assert len({u.ref for u in usage}) == len(usage)
    assert row.cost_usd == sum((u.cost_usd or Decimal(0) for u in usage), Decimal(0)) > 0
    assert rig.relay.app[CALLS].calls == {}


async def test_an_app_sideband_through_the_relay_sees_the_session_and_is_not_billed(
    rig: Rig, http: aiohttp.ClientSession
) -> None:
    store, writer = rig.relay.relay.parts.store, rig.relay.relay.parts.writer
    async with RtcClient() as client:
        assert await create(client, http, rig, rig.key) == 200
        relay_id = orjson.loads(client.body)["session"]["id"]
        run = rig.relay.app[CALLS].calls[relay_id]
        async with (
            sdk(rig, rig.key) as openai,
            openai.live.sideband.connect(session_id=relay_id) as sideband,
        ):
            client.speak(speech())
            async with asyncio.timeout(10):
                kinds = set()
                while "session.usage.updated" not in kinds:
                    kinds.add((await sideband.recv()).type)
            [app] = rig.relay.relay.sessions.values()
            assert not app.billing and app.protocol.name == "live"
            app_session = app.session_id
            assert rig.provider.calls[-1].sidebands == 2  # the relay's and the app's
        session_id = run.session_id
        async with sdk(rig, rig.key) as openai:
            await openai.live.sessions.hangup(relay_id)
    await settled(rig, session_id)
    async with asyncio.timeout(10):
        while rig.relay.relay.sessions:
            await asyncio.sleep(0.05)
    await writer.flush()
    # only the relay's own sideband billed
    assert await store.session_usage(session_id)
    assert await store.session_usage(app_session) == []


async def test_another_key_can_neither_attach_nor_control_nor_download(
    rig: Rig, http: aiohttp.ClientSession
) -> None:
    other = await new_key(
        rig,
    )
    async with RtcClient() as client:
        assert await create(client, http, rig, rig.key) == 200
        relay_id = orjson.loads(client.body)["session"]["id"]
        for session_id in (relay_id, "rlive_unknown"):
            url = f"{rig.relay.ws_url}/v1/live/sessions/{session_id}/attach"
            headers = upgrade_headers(Authorization=f"Bearer {other}")
            async with http.get(url, headers=headers) as resp:
                assert resp.status == 404
                assert (await resp.json())["error"]["code"] == "call_not_found"
        async with sdk(rig, other) as openai:
            with pytest.raises(NotFoundError):
                await openai.live.sessions.hangup(relay_id)
            with pytest.raises(NotFoundError):
                await openai.live.sessions.download_recording(relay_id)
        # a Live session is not a Realtime call, whoever asks
        async with sdk(rig, rig.key) as openai:
            with pytest.raises(NotFoundError):
                await openai.realtime.calls.hangup(relay_id)
        assert rig.provider.calls[-1].controls == []
        url = f"{rig.relay.ws_url}/v1/live/sessions/{relay_id}/attach"
        headers = upgrade_headers(Authorization="Bearer rk_bad")
        async with http.get(url, headers=headers) as resp:
            assert resp.status == 401


async def test_the_owner_downloads_the_recording_and_forks_a_stored_session(
    rig: Rig, http: aiohttp.ClientSession
) -> None:
    async with RtcClient() as client, RtcClient() as forked_client:
        assert await create(client, http, rig, rig.key, {**SESSION, "store": True}) == 200
        relay_id = orjson.loads(client.body)["session"]["id"]
        client.speak(speech())
        await client.wait_for(lambda: client.loud_frames > 0)
        async with sdk(rig, rig.key) as openai:
            recording = await openai.live.sessions.download_recording(relay_id)
            assert (await recording.aread())[:4] == b"RIFF"
            forked = await openai.live.sessions.fork(
                relay_id, transport={"type": "webrtc", "sdp": await forked_client.offer()}
            )
            assert forked.session.id.startswith("rlive_") and forked.session.id != relay_id
            await forked_client.answer(forked.transport.sdp)
            await forked_client.next_event("session.started")
            # the fork is a session of its own, metered by its own relay sideband
            desk = rig.relay.app[CALLS]
            assert set(desk.calls) == {relay_id, forked.session.id}
            fork_run = desk.calls[forked.session.id]
            assert rig.provider.calls[-1].call_id == fork_run.answered.provider_call_id
            assert rig.provider.calls[-1].call_id not in forked.model_dump_json()
            await openai.live.sessions.hangup(forked.session.id)
            await openai.live.sessions.hangup(relay_id)
    assert (await settled(rig, fork_run.session_id)).transport == "webrtc"


async def test_a_budget_spent_mid_session_closes_it_and_hangs_it_up(
    rig: Rig, http: aiohttp.ClientSession
) -> None:
    store = rig.relay.relay.parts.store
    tiny = await new_key(rig, budget_usd=Decimal("0.000001"))
    async with RtcClient() as client:
        assert await create(client, http, rig, tiny) == 200
        relay_id = orjson.loads(client.body)["session"]["id"]
        session_id = rig.relay.app[CALLS].calls[relay_id].session_id
        client.speak(speech())
        provider_session = rig.provider.calls[-1]
        async with asyncio.timeout(15):
            await provider_session.ended.wait()
        row = await settled(rig, session_id)
        # the provider session was ended cleanly: session.close from the relay's sideband
        closed = await client.next_event("session.closed")
    assert row.status == "failed"
    assert row.error_code == "insufficient_quota"
    # billed (at least) up to the provider's final report, read before the hangup
    usage = await store.session_usage(session_id)
    billed = sum((u.usage.seconds for u in usage), Decimal(0))
    assert billed >= Decimal(str(closed["usage"]["seconds"])) - Decimal("0.001") > 0


async def test_a_sideband_that_cannot_attach_hangs_the_session_up_and_refuses_it(
    http: aiohttp.ClientSession,
) -> None:
    async with live_rig(replace(FAST, refuse_sideband_status=503)) as rig, RtcClient() as client:
        assert await create(client, http, rig, rig.key) == 502
        error = orjson.loads(client.body)["error"]
        assert error["code"] == "upstream_rejected" and "hung up" in error["message"]
        [provider_session] = rig.provider.calls
        assert provider_session.controls == ["hangup"]
        assert rig.relay.app[CALLS].calls == {}


@pytest.mark.parametrize(
    ("session", "status", "code"),
    [
        ({"model": "gpt-realtime"}, 400, "wrong_protocol_route"),
        ({"instructions": "no model"}, 400, "missing_model"),
    ],
    ids=["realtime-model", "no-model"],
)
async def test_a_session_the_relay_refuses_never_reaches_the_provider(
    rig: Rig, http: aiohttp.ClientSession, session: dict[str, str], status: int, code: str
) -> None:
    async with RtcClient() as client:
        assert await create(client, http, rig, rig.key, session) == status
        assert orjson.loads(client.body)["error"]["code"] == code
    assert rig.provider.calls == []


async def test_a_provider_refusing_the_session_keeps_its_status_and_body(
    rig: Rig, http: aiohttp.ClientSession
) -> None:
    body = '{"error": {"code": "no_live_today", "message": "not today"}}'
    rig.provider.options = replace(rig.provider.options, refuse_status=400, refuse_body=body)
    async with RtcClient() as client:
        assert await create(client, http, rig, rig.key) == 502
    error = orjson.loads(client.body)["error"]
    assert error["code"] == "upstream_rejected"
    assert "HTTP 400" in error["message"] and "not today" in error["message"]


async def test_cors_preflight_and_answer_headers_for_a_browser_origin(
    rig: Rig, http: aiohttp.ClientSession
) -> None:
    origin = "http://app.example"
    url = rig.relay.url + "/v1/live/sessions"
    preflight = {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    }
    for path in ("", "/rlive_x/hangup"):
        async with http.options(url + path, headers=preflight) as resp:
            assert resp.status == 204
            assert resp.headers["Access-Control-Allow-Origin"] == origin
            assert "POST" in resp.headers["Access-Control-Allow-Methods"]
    async with RtcClient() as client:
        headers = {"Origin": origin, "Authorization": f"Bearer {rig.key}"}
        body = {"session": SESSION, "transport": {"type": "webrtc", "sdp": await client.offer()}}
        async with http.post(url, json=body, headers=headers) as resp:
            assert resp.status == 200
            assert resp.headers["Access-Control-Allow-Origin"] == origin
            relay_id = (await resp.json())["session"]["id"]
        async with sdk(rig, rig.key) as openai:
            await openai.live.sessions.hangup(relay_id)


async def test_the_providers_refusals_of_controls_name_the_relay_id_not_its_own(
    rig: Rig, http: aiohttp.ClientSession
) -> None:
    async with RtcClient() as client, RtcClient() as fork_client:
        assert await create(client, http, rig, rig.key) == 200  # not stored
        relay_id = orjson.loads(client.body)["session"]["id"]
        provider_id = rig.provider.calls[-1].call_id
        headers = {"Authorization": f"Bearer {rig.key}"}
        url = f"{rig.relay.url}/v1/live/sessions/{relay_id}"
        async with http.get(url + "/content", headers=headers) as resp:
            assert resp.status == 400
            content_refusal = await resp.text()
        body = {"transport": {"type": "webrtc", "sdp": await fork_client.offer()}}
        async with http.post(url + "/fork", json=body, headers=headers) as resp:
            assert resp.status == 502
            fork_refusal = await resp.text()
        async with http.post(url + "/refer", json={}, headers=headers) as resp:
            assert resp.status == 400
            refer_refusal = await resp.text()
        async with sdk(rig, rig.key) as openai:
            await openai.live.sessions.hangup(relay_id)
    for refusal in (content_refusal, fork_refusal, refer_refusal):
        assert provider_id not in refusal
    assert relay_id in content_refusal and relay_id in fork_refusal
    assert len(rig.provider.calls) == 1  # the fork was refused: no second session


async def test_the_relay_ending_an_app_sideband_leaves_the_session_running(
    rig: Rig, http: aiohttp.ClientSession
) -> None:
    async with RtcClient() as client:
        assert await create(client, http, rig, rig.key) == 200
        relay_id = orjson.loads(client.body)["session"]["id"]
        async with (
            sdk(rig, rig.key) as openai,
            openai.live.sideband.connect(session_id=relay_id),
        ):
            async with asyncio.timeout(10):
                while not rig.relay.relay.sessions:
                    await asyncio.sleep(0.02)
            [app] = rig.relay.relay.sessions.values()
            app.bridge.stop(EndedByOperator())  # the console's "end session"
            async with asyncio.timeout(10):
                while rig.relay.relay.sessions:
                    await asyncio.sleep(0.02)
        # the Live session itself goes on: no session.close reached the provider
        provider_session = rig.provider.calls[-1]
        assert not provider_session.ended.is_set()
        assert "session.closed" not in client.types()
        assert relay_id in rig.relay.app[CALLS].calls
        async with sdk(rig, rig.key) as openai:
            await openai.live.sessions.hangup(relay_id)


async def test_the_max_length_ends_a_session_cleanly_and_bills_its_final_report(
    http: aiohttp.ClientSession,
) -> None:
    # No usage reports while it runs: the provider's final figure (session.closed, the
    # answer to the relay's session.close) is all there is to bill.
    options = replace(FAST, no_usage_events=True)
    async with live_rig(options, timeouts={"max_session": 1}) as rig, RtcClient() as client:
        assert await create(client, http, rig, rig.key) == 200
        relay_id = orjson.loads(client.body)["session"]["id"]
        run = rig.relay.app[CALLS].calls[relay_id]
        session_id = run.session_id
        closed = await client.next_event("session.closed")
        row = await settled(rig, session_id)
        usage = await rig.relay.relay.parts.store.session_usage(session_id)
        assert rig.provider.calls[-1].end_reason is not None
    assert row.error_code == "session_expired"
    reported = closed["usage"]["seconds"]
    assert reported > 0
    # the relay's meter read the final report (its highest cumulative figure billed, and
    # no less than the 15 s WebRTC initialization charge OpenAI credits against it)...
    assert isinstance(run.meter, LiveMeter)
    assert run.meter.reports >= 1
    assert run.meter.billed_ms == pytest.approx(max(reported * 1000, 15_000), abs=1)
    # ...and the ledger holds at least what the provider reported
    billed = sum((u.usage.seconds for u in usage), Decimal(0))
    assert billed >= Decimal(str(reported)) - Decimal("0.001")


async def test_a_session_fails_over_to_the_next_channel_when_the_first_answers_503(
    http: aiohttp.ClientSession,
) -> None:
    async with (
        MockProvider(replace(FAST, refuse_status=503)) as down,
        MockProvider(FAST) as up,
    ):
        channels = [
            {"name": "down", "kind": "openai", "base_url": down.url, "models": ["gpt-live-1"]},
            {
                "name": "up",
                "kind": "openai",
                "base_url": up.url,
                "models": ["gpt-live-1"],
                "priority": 2,
            },
        ]
        async with running_relay(settings_for(channels=channels)) as relay, RtcClient() as client:
            rig = Rig(up, relay, "")
            assert await create(client, http, rig, "") == 200
            relay_id = orjson.loads(client.body)["session"]["id"]
            run = relay.app[CALLS].calls[relay_id]
            assert run.channel == "up"
            assert [(a.channel, a.outcome) for a in run.answered.attempts] == [
                ("down", "refused:503"),
                ("up", "ok"),
            ]
            assert len(up.calls) == 1 and down.calls == []
            async with sdk(rig, "sk-anything") as openai:  # auth is off on this relay
                await openai.live.sessions.hangup(relay_id)


async def test_delegated_work_on_a_webrtc_session_is_metered_in_tokens_by_the_relay(
    http: aiohttp.ClientSession,
) -> None:
    # The model hands each turn it hears to its Responses delegate: token usage that no
    # client event asked for, seen only on the sidebands.
    delegation = {"type": "responses", "responses": {"model": "gpt-realtime"}}
    async with live_rig(replace(FAST, live_delegate_turns=True)) as rig, RtcClient() as client:
        session = {**SESSION, "delegation": delegation}
        assert await create(client, http, rig, rig.key, session) == 200
        relay_id = orjson.loads(client.body)["session"]["id"]
        run = rig.relay.app[CALLS].calls[relay_id]
        client.speak(speech())
        await client.next_event("response.event", timeout=20)
        async with asyncio.timeout(10):
            while not run.meter.usage.responses:
                await asyncio.sleep(0.05)
        async with sdk(rig, rig.key) as openai:
            await openai.live.sessions.hangup(relay_id)
        await settled(rig, run.session_id)
        usage = await rig.relay.relay.parts.store.session_usage(run.session_id)
    responses = [u for u in usage if isinstance(u, ResponseRecord)]
    assert responses and all(u.usage.unit == "tokens" for u in responses)
    assert all(u.usage.input_tokens + u.usage.output_tokens > 0 for u in responses)
    assert any(isinstance(u, DurationRecord) for u in usage)
