"""WebRTC calls through the relay: a real aiortc "browser", the real relay, the real
simulated provider's WebRTC peer, all on 127.0.0.1 (no STUN).

Each test keeps one call open at a time: an open call costs its two peers a tenth of a
core each.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from decimal import Decimal

import aiohttp
import orjson
import pytest
from calls_rig import Rig, settled

from rtc_helpers import RtcClient
from rtrelay.edge.app import CALLS
from rtrelay.ledger.keys import KeySpec
from rtrelay.mock import MockOptions, MockProvider
from rtrelay.wire import CALLS_PATH
from support import mock_channel_settings, running_relay, settings_for

pytestmark = pytest.mark.timeout(60)

MODEL = {"model": "gpt-realtime"}


async def test_raw_offer_is_answered_with_the_providers_sdp_and_a_relay_call_id(
    rig: Rig, http: aiohttp.ClientSession
) -> None:
    async with RtcClient() as client:
        await client.start(http, rig.calls_url, api_key=rig.key, model="gpt-realtime")
        assert client.headers["Content-Type"].startswith("application/sdp")
        assert client.body.startswith("v=0")
        assert client.headers["Location"].startswith("/v1/realtime/calls/rcall_")
        assert client.headers["X-Request-Id"].startswith("req_")
        provider_id = rig.provider.calls[-1].call_id
        assert provider_id not in str(client.headers) and provider_id not in client.body
        run = rig.relay.app[CALLS].calls[client.call_id]
        assert run.answered.provider_call_id == provider_id

        client.send({"type": "response.create"})
        done = await client.next_event("response.done")
        await client.wait_for(lambda: client.loud_frames > 0)
        session_id = run.session_id
    row = await settled(rig, session_id)
    assert row.transport == "webrtc"
    assert row.status == "completed"
    assert row.responses == 1
    usage = await rig.relay.relay.parts.store.session_usage(session_id)
    assert [u.response_id for u in usage] == [done["response"]["id"]]
    assert rig.relay.app[CALLS].calls == {}


async def test_multipart_offer_maps_the_model_and_applies_the_session(
    rig: Rig, http: aiohttp.ClientSession
) -> None:
    session = {"type": "realtime", "model": "gpt-realtime-mini", "instructions": "Be brief."}
    async with RtcClient() as client:
        await client.start(http, rig.calls_url, api_key=rig.key, session=session)
        created = client.events[-1]
        assert created["session"]["model"] == "gpt-realtime-mini"
        assert created["session"]["instructions"] == "Be brief."
        assert rig.provider.calls[-1].model == "gpt-realtime-mini"


async def test_a_sideband_that_cannot_attach_hangs_the_call_up_and_refuses_it(
    rig: Rig, http: aiohttp.ClientSession
) -> None:
    rig.provider.options = replace(rig.provider.options, refuse_sideband_status=503)
    async with RtcClient() as client:
        status = await client.call(http, rig.calls_url, api_key=rig.key, model="gpt-realtime")
        assert status == 502, client.body
        error = orjson.loads(client.body)["error"]
        assert error["code"] == "upstream_rejected"
        assert "sideband" in error["message"] and "hung up" in error["message"]
        assert "Location" not in client.headers
    call = rig.provider.calls[-1]
    assert call.controls == ["hangup"]
    assert call.end_reason == "hangup"
    assert rig.relay.app[CALLS].calls == {}
    assert rig.relay.relay.metrics.active_calls._value.get() == 0


async def test_bad_token_is_401_json_and_a_model_not_allowed_403(
    rig: Rig, http: aiohttp.ClientSession
) -> None:
    store = rig.relay.relay.parts.store
    _, mini_only = await store.create_key(KeySpec(name="mini", models=("gpt-realtime-mini",)))
    async with RtcClient() as client:
        assert (
            await client.call(http, rig.calls_url, api_key="rk_nope", model="gpt-realtime") == 401
        )
        assert orjson.loads(client.body)["error"]["code"] == "invalid_api_key"
        assert client.headers["X-Request-Id"].startswith("req_")
    async with RtcClient() as client:
        status = await client.call(http, rig.calls_url, api_key=mini_only, model="gpt-realtime")
        assert status == 403
        assert orjson.loads(client.body)["error"]["code"] == "model_not_allowed"
    assert rig.provider.calls == []


async def test_a_provider_refusing_the_offer_keeps_its_status_and_body(
    rig: Rig, http: aiohttp.ClientSession
) -> None:
    body = '{"error": {"code": "offer_refused_here", "message": "no calls today"}}'
    rig.provider.options = replace(rig.provider.options, refuse_status=400, refuse_body=body)
    async with RtcClient() as client:
        status = await client.call(http, rig.calls_url, api_key=rig.key, model="gpt-realtime")
    assert status == 502
    error = orjson.loads(client.body)["error"]
    assert error["code"] == "upstream_rejected"
    assert "HTTP 400" in error["message"] and "no calls today" in error["message"]


async def test_cors_preflight_and_answer_headers_for_a_browser_origin(
    rig: Rig, http: aiohttp.ClientSession
) -> None:
    origin = "http://app.example"
    preflight = {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    }
    async with http.options(rig.calls_url, headers=preflight) as resp:
        assert resp.status == 204
        assert resp.headers["Access-Control-Allow-Origin"] == origin
        assert "POST" in resp.headers["Access-Control-Allow-Methods"]
        assert "authorization" in resp.headers["Access-Control-Allow-Headers"].lower()
    headers = {"Origin": origin, "Content-Type": "application/sdp"}
    async with http.post(rig.calls_url, data="v=0", headers=headers) as resp:
        assert resp.status == 401
        assert resp.headers["Access-Control-Allow-Origin"] == origin
        assert "X-Request-Id" in resp.headers["Access-Control-Expose-Headers"]


async def test_a_budget_spent_mid_call_hangs_the_call_up_and_bills_nothing_more(
    rig: Rig, http: aiohttp.ClientSession
) -> None:
    store = rig.relay.relay.parts.store
    _, tiny = await store.create_key(KeySpec(name="tiny", budget_usd=Decimal("0.000001")))
    async with RtcClient() as client:
        await client.start(http, rig.calls_url, api_key=tiny, model="gpt-realtime")
        run = rig.relay.app[CALLS].calls[client.call_id]
        session_id = run.session_id
        client.send({"type": "response.create"})
        await client.next_event("response.done")
        call = rig.provider.calls[-1]
        async with asyncio.timeout(10):
            await call.ended.wait()
        assert call.end_reason == "hangup"
        row = await settled(rig, session_id)
        # the call is gone at the provider: the browser's data channel is closed
        await client.wait_for(lambda: client.channel.readyState != "open")
    assert row.status == "failed"
    assert row.error_code == "insufficient_quota"
    assert row.responses == 1
    assert len(await store.session_usage(session_id)) == 1


async def test_an_offer_fails_over_to_the_next_channel_when_the_first_answers_503(
    http: aiohttp.ClientSession,
) -> None:
    async with (
        MockProvider(MockOptions(realtime_pacing=0, refuse_status=503)) as down,
        MockProvider(MockOptions(realtime_pacing=0, reply_audio_ms=300)) as up,
    ):
        channels = [
            {"name": "down", "kind": "openai", "base_url": down.url, "models": ["gpt-realtime"]},
            {
                "name": "up",
                "kind": "openai",
                "base_url": up.url,
                "models": ["gpt-realtime"],
                "priority": 2,
            },
        ]
        async with running_relay(settings_for(channels=channels)) as relay:
            async with RtcClient() as client:
                await client.start(http, relay.url + CALLS_PATH, model="gpt-realtime")
                run = relay.app[CALLS].calls[client.call_id]
                assert run.channel == "up"
                assert [(a.channel, a.outcome) for a in run.answered.attempts] == [
                    ("down", "refused:503"),
                    ("up", "ok"),
                ]
            assert len(up.calls) == 1 and down.calls == []


@pytest.mark.parametrize(
    ("content_type", "body", "query", "code"),
    [
        (
            "application/sdp",
            "v=0\r\n" + "a=x\r\n" * 20_000,
            {"model": "gpt-realtime"},
            "invalid_value",
        ),
        ("application/json", "{}", {"model": "gpt-realtime"}, "invalid_value"),
        ("application/sdp", "", {"model": "gpt-realtime"}, "invalid_value"),
        ("application/sdp", "v=0\r\n", {}, "missing_model"),
    ],
    ids=["over-64-KB", "wrong-content-type", "no-sdp", "no-model"],
)
async def test_a_malformed_offer_is_400_before_any_provider_is_asked(
    rig: Rig,
    http: aiohttp.ClientSession,
    content_type: str,
    body: str,
    query: dict[str, str],
    code: str,
) -> None:
    headers = {"Authorization": f"Bearer {rig.key}", "Content-Type": content_type}
    async with http.post(rig.calls_url, data=body, headers=headers, params=query) as resp:
        assert resp.status == 400
        assert (await resp.json())["error"]["code"] == code
    assert rig.provider.calls == []


async def test_the_max_session_length_hangs_a_call_up(
    provider: MockProvider, http: aiohttp.ClientSession
) -> None:
    settings = mock_channel_settings(provider.url, auth="none", timeouts={"max_session": 1})
    async with running_relay(settings) as relay, RtcClient() as client:
        await client.start(http, relay.url + CALLS_PATH, model="gpt-realtime")
        session_id = relay.app[CALLS].calls[client.call_id].session_id
        call = provider.calls[-1]
        async with asyncio.timeout(10):
            await call.ended.wait()
        assert call.end_reason == "hangup"
        row = await settled(Rig(provider, relay, ""), session_id)
    assert row.error_code == "session_expired"
    assert row.transport == "webrtc"


async def test_azure_channels_do_not_serve_calls(http: aiohttp.ClientSession) -> None:
    channels = [
        {
            "name": "az",
            "kind": "azure",
            "base_url": "wss://example.invalid",
            "models": ["gpt-realtime"],
        }
    ]
    async with running_relay(settings_for(channels=channels)) as relay:
        headers = {"Content-Type": "application/sdp"}
        url = relay.url + CALLS_PATH
        async with http.post(
            url, data="v=0\r\n", headers=headers, params={"model": "gpt-realtime"}
        ) as resp:
            assert resp.status == 404
            error = (await resp.json())["error"]
    assert "Azure" in error["message"]
