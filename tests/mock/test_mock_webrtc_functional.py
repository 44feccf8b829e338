"""The simulated provider as a WebRTC peer, over real sockets and real DTLS/SRTP on loopback.

A Python aiortc peer plays the browser (``rtc_helpers.RtcClient``); the openai SDK is the
app server (multipart offers, sidebands, call controls). Each test keeps one call open at
a time: an open call costs its two peers a tenth of a core each.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator

import aiohttp
import orjson
import pytest
from mock_wire import events_until, mock_process, next_event, open_session, speech_turn
from openai import AsyncOpenAI, NotFoundError

from rtc_helpers import RtcClient
from rtrelay.mock import MockOptions, MockProvider
from rtrelay.wire import CALLS_PATH

pytestmark = pytest.mark.timeout(60)

SESSION = {
    "type": "realtime",
    "model": "gpt-realtime-mini",
    "instructions": "Speak like a lighthouse keeper.",
}


@pytest.fixture
async def provider() -> AsyncIterator[MockProvider]:
    # Short replies: the audio plays in real time on the track whatever the pacing.
    async with MockProvider(MockOptions(realtime_pacing=0, reply_audio_ms=400)) as running:
        yield running


@pytest.fixture
async def client() -> AsyncIterator[RtcClient]:
    async with RtcClient() as peer:
        yield peer


def sdk(provider: MockProvider, api_key: str = "sk-test") -> AsyncOpenAI:
    return AsyncOpenAI(
        api_key=api_key, base_url=provider.http_url + "/v1", websocket_base_url=provider.url
    )


async def test_raw_offer_is_answered_201_with_sdp_and_location(
    provider: MockProvider, http: aiohttp.ClientSession, client: RtcClient
) -> None:
    status = await client.call(http, provider.calls_url, model="gpt-realtime-mini")

    assert status == 201, client.body
    assert client.headers["Content-Type"].startswith("application/sdp")
    assert client.body.startswith("v=0")
    assert "a=candidate:" in client.body and "127.0.0.1" in client.body
    location = client.headers["Location"]
    assert location.startswith(CALLS_PATH + "/rtc_")
    created = await client.next_event("session.created")
    assert client.events[0] is created
    assert created["session"]["model"] == "gpt-realtime-mini"
    assert provider.calls[0].call_id == client.call_id
    assert provider.active_calls == 1


async def test_multipart_offer_from_the_sdk_applies_its_session_before_session_created(
    provider: MockProvider, client: RtcClient
) -> None:
    async with sdk(provider) as openai:
        response = await openai.realtime.calls.with_raw_response.create(
            sdp=await client.offer(), session=SESSION
        )

    assert response.status_code == 201
    assert response.headers["location"].startswith(CALLS_PATH + "/rtc_")
    await client.answer(response.text)
    client.headers = {"Location": response.headers["location"]}
    created = await client.next_event("session.created")
    assert created["session"]["model"] == "gpt-realtime-mini"
    assert created["session"]["instructions"] == SESSION["instructions"]
    assert provider.calls[0].model == "gpt-realtime-mini"


async def test_response_create_on_the_channel_is_spoken_on_the_audio_track(
    provider: MockProvider, http: aiohttp.ClientSession, client: RtcClient
) -> None:
    await client.start(http, provider.calls_url)

    client.send({"type": "response.create"})
    done = await client.next_event("response.done")
    await client.next_event("output_audio_buffer.stopped", timeout=5)

    assert done["response"]["status"] == "completed"
    assert done["response"]["usage"]["output_token_details"]["audio_tokens"] > 0
    types = client.types()
    # The audio rode the track: no deltas on the channel, its playout marked instead.
    assert "response.output_audio.delta" not in types
    assert "response.output_audio_transcript.delta" in types
    started = types.index("output_audio_buffer.started")
    # Unpaced, the whole response is generated before its audio starts playing.
    assert types.index("response.content_part.added") < started
    assert max(started, types.index("response.done")) < types.index("output_audio_buffer.stopped")
    rid = done["response"]["id"]
    assert client.events[started]["response_id"] == rid
    # 400 ms of voice is 20 frames of 20 ms; Opus may blur the edges.
    await client.wait_for(lambda: client.loud_frames >= 12)
    assert client.frames > client.loud_frames  # silence between replies, still paced


async def test_speech_on_the_microphone_track_triggers_server_vad_and_a_response(
    provider: MockProvider, http: aiohttp.ClientSession, client: RtcClient
) -> None:
    await client.start(http, provider.calls_url)

    client.speak(speech_turn(800, lead_ms=200, tail_ms=900))

    started = await client.next_event("input_audio_buffer.speech_started", timeout=10)
    stopped = await client.next_event("input_audio_buffer.speech_stopped", timeout=10)
    committed = await client.next_event("input_audio_buffer.committed")
    assert started["item_id"] == stopped["item_id"] == committed["item_id"]
    assert 500 <= stopped["audio_end_ms"] - started["audio_start_ms"] <= 1600
    done = await client.next_event("response.done")
    assert done["response"]["status"] == "completed"
    assert provider.calls[0].audio_frames_received > 50


async def test_sideband_sees_the_calls_events_and_its_session_update_applies(
    provider: MockProvider, http: aiohttp.ClientSession, client: RtcClient
) -> None:
    await client.start(http, provider.calls_url)

    async with sdk(provider) as openai, openai.realtime.connect(call_id=client.call_id) as sideband:
        await sideband.session.update(
            session={"type": "realtime", "instructions": "Only ever say ahoy."}
        )
        first = await asyncio.wait_for(sideband.recv(), 10)
        # No session.created on a sideband (protocol.md §10): the update's answer is first.
        assert first.type == "session.updated"
        assert first.session.instructions == "Only ever say ahoy."
        updated = await client.next_event("session.updated")
        assert updated["session"]["instructions"] == "Only ever say ahoy."

        # An event of the call, caused on the data channel, reaches the sideband too.
        client.send({"type": "response.create"})
        seen: list[str] = []
        async with asyncio.timeout(10):
            while not seen or seen[-1] != "response.done":
                seen.append((await sideband.recv()).type)
        assert "response.created" in seen
        assert "response.output_audio.delta" not in seen
    assert provider.calls[0].sidebands == 1


async def test_sideband_client_events_act_on_the_call_and_its_errors_stay_its_own(
    provider: MockProvider, http: aiohttp.ClientSession, client: RtcClient
) -> None:
    await client.start(http, provider.calls_url)
    ws = await open_session(http, provider, f"/realtime?call_id={client.call_id}")
    try:
        await ws.send_str(orjson.dumps({"type": "response.cancel", "event_id": "e1"}).decode())
        error = await next_event(ws)
        assert error["type"] == "error"
        assert error["error"]["code"] == "response_cancel_not_active"
        await ws.send_str(orjson.dumps({"type": "response.create"}).decode())
        events = await events_until(ws, "response.done")
        assert events[0]["type"] == "response.created"
        await client.next_event("response.done")
        assert "error" not in client.types()  # the sideband's mistake is not the caller's
    finally:
        await ws.close()


async def test_two_sidebands_attach_to_one_call(
    provider: MockProvider, http: aiohttp.ClientSession, client: RtcClient
) -> None:
    await client.start(http, provider.calls_url)
    path = f"/realtime?call_id={client.call_id}"
    first = await open_session(http, provider, path)
    second = await open_session(http, provider, path)
    try:
        client.send({"type": "response.create"})
        for ws in (first, second):
            assert (await events_until(ws, "response.done"))[0]["type"] == "response.created"
        assert provider.calls[0].sidebands == 2
    finally:
        await first.close()
        await second.close()


async def test_hangup_closes_the_channel_the_peer_and_every_sideband(
    provider: MockProvider, http: aiohttp.ClientSession, client: RtcClient
) -> None:
    await client.start(http, provider.calls_url)
    ws = await open_session(http, provider, f"/realtime?call_id={client.call_id}")
    closed = asyncio.Event()
    client.channel.on("close", closed.set)

    async with sdk(provider) as openai:
        await openai.realtime.calls.hangup(client.call_id)

    message = await ws.receive(timeout=5)
    assert message.type is aiohttp.WSMsgType.CLOSE
    assert message.data == 1000
    await asyncio.wait_for(closed.wait(), 10)
    await provider.wait_idle()
    assert provider.calls[0].end_reason == "hangup"
    assert provider.calls[0].controls == ["hangup"]
    async with sdk(provider) as openai:
        with pytest.raises(NotFoundError):
            await openai.realtime.calls.hangup(client.call_id)


async def test_call_controls_accept_refer_and_reject(
    provider: MockProvider, http: aiohttp.ClientSession, client: RtcClient
) -> None:
    await client.start(http, provider.calls_url)
    async with sdk(provider) as openai:
        calls = openai.realtime.calls
        await calls.accept(client.call_id, type="realtime", instructions="Be brief.")
        updated = await client.next_event("session.updated")
        assert updated["session"]["instructions"] == "Be brief."
        await calls.refer(client.call_id, target_uri="tel:+14155550123")
        url = f"{provider.calls_url}/{client.call_id}/refer"
        async with http.post(url, json={}, headers={"Authorization": "Bearer sk-test"}) as response:
            assert response.status == 400
            assert (await response.json())["error"]["param"] == "target_uri"
        await calls.reject(client.call_id, status_code=486)

    await provider.wait_idle()
    assert provider.calls[0].controls == ["accept", "refer", "refer", "reject"]
    assert provider.calls[0].end_reason == "reject"


async def test_unknown_call_id_is_404_for_controls_and_sidebands(
    provider: MockProvider, http: aiohttp.ClientSession
) -> None:
    headers = {"Authorization": "Bearer sk-test"}
    for control in ("accept", "reject", "refer", "hangup"):
        url = f"{provider.calls_url}/rtc_nope/{control}"
        async with http.post(url, headers=headers) as response:
            assert response.status == 404
            assert (await response.json())["error"]["code"] == "call_not_found"
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await open_session(http, provider, "/realtime?call_id=rtc_nope")
    assert refused.value.status == 404
    async with http.post(f"{provider.calls_url}/rtc_nope/transfer", headers=headers) as response:
        assert response.status == 404


async def test_closing_the_callers_peer_ends_the_call(
    provider: MockProvider, http: aiohttp.ClientSession
) -> None:
    async with RtcClient() as client:
        await client.start(http, provider.calls_url)
    await provider.wait_idle(timeout=10)
    assert provider.calls[0].end_reason == "client"


async def test_bad_key_is_401_and_a_good_one_is_accepted(
    http: aiohttp.ClientSession, client: RtcClient
) -> None:
    options = MockOptions(realtime_pacing=0, api_keys=frozenset({"sk-good-key-1234"}))
    async with MockProvider(options) as provider:
        async with RtcClient() as refused:
            assert await refused.call(http, provider.calls_url, api_key="sk-wrong-key-5678") == 401
            error = orjson.loads(refused.body)["error"]
            assert error["code"] == "invalid_api_key"
            assert "sk-wrong-key-5678" not in refused.body
            assert provider.active_calls == 0
        assert await client.call(http, provider.calls_url, api_key="sk-good-key-1234") == 201
        await client.next_event("session.created")
        await client.close()


async def test_refuse_fault_answers_the_offer_with_its_status_and_body(
    http: aiohttp.ClientSession, client: RtcClient
) -> None:
    body = '{"error":{"type":"server_error","code":"overloaded","message":"busy"}}'
    options = MockOptions(refuse_status=503, refuse_body=body)
    async with MockProvider(options) as provider:
        assert await client.call(http, provider.calls_url) == 503
        assert client.body == body
        assert client.headers["Content-Type"].startswith("application/json")
        assert provider.active_calls == 0 and provider.calls == []


async def test_stall_fault_delays_the_answer(
    http: aiohttp.ClientSession, client: RtcClient
) -> None:
    async with MockProvider(MockOptions(realtime_pacing=0, stall_handshake=0.6)) as provider:
        began = time.monotonic()
        assert await client.call(http, provider.calls_url) == 201
        assert time.monotonic() - began >= 0.6
        await client.next_event("session.created")
        await client.close()


async def test_drop_fault_cuts_the_call_after_n_events_without_a_goodbye(
    http: aiohttp.ClientSession, client: RtcClient
) -> None:
    async with MockProvider(MockOptions(realtime_pacing=0, drop_after_events=3)) as provider:
        await client.start(http, provider.calls_url)
        ws = await open_session(http, provider, f"/realtime?call_id={client.call_id}")
        client.send({"type": "response.create"})
        await provider.wait_idle(timeout=10)
        record = provider.calls[0]
        assert record.end_reason == "dropped"
        assert record.events_sent == 3
        # What the sideband was sent before the drop, then no close frame: an abort.
        before: list[str] = []
        while (message := await ws.receive(timeout=5)).type is aiohttp.WSMsgType.TEXT:
            before.append(orjson.loads(message.data)["type"])
        assert message.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)
        assert before == ["response.created", "rate_limits.updated"][: len(before)]
        assert ws.close_code == 1006
        await asyncio.sleep(0.3)
        assert len(client.events) == 3


async def test_max_session_seconds_expires_the_call(
    http: aiohttp.ClientSession, client: RtcClient
) -> None:
    async with MockProvider(MockOptions(max_session_seconds=0.5)) as provider:
        await client.start(http, provider.calls_url)
        error = await client.next_event("error", timeout=5)
        assert error["error"]["code"] == "session_expired"
        await provider.wait_idle(timeout=10)
        assert provider.calls[0].end_reason == "expired"


async def test_unusable_offers_are_400(provider: MockProvider, http: aiohttp.ClientSession) -> None:
    headers = {"Authorization": "Bearer sk-test", "Content-Type": "application/sdp"}
    async with http.post(provider.calls_url, data="hello", headers=headers) as response:
        assert response.status == 400
        assert (await response.json())["error"]["code"] == "invalid_offer"
    for sdp in ("v=0\r\n", "v=0\r\nm=audio nonsense\r\n"):
        async with http.post(provider.calls_url, data=sdp, headers=headers) as response:
            assert response.status == 400
            assert (await response.json())["error"]["code"] == "invalid_offer"
    form = aiohttp.FormData()
    form.add_field(
        "sdp", "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n", content_type="application/sdp"
    )
    form.add_field("session", "{not json", content_type="application/json")
    async with http.post(
        provider.calls_url, data=form, headers={"Authorization": "Bearer sk-test"}
    ) as response:
        assert response.status == 400
        assert (await response.json())["error"]["param"] == "session"
    assert provider.active_calls == 0


async def test_rtrelay_mock_process_answers_a_call_and_ends_it_on_sigterm(
    http: aiohttp.ClientSession, client: RtcClient
) -> None:
    """The CLI runs uvloop and imports aiortc only for the first call: both must hold."""
    async with mock_process("--pacing", "0") as (process, url):
        base = url.split("/v1/")[0].replace("ws://", "http://", 1)
        await client.start(http, base + CALLS_PATH)
        closed = asyncio.Event()
        client.channel.on("close", closed.set)
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(10):
            assert await process.wait() == 0
        await asyncio.wait_for(closed.wait(), 10)


async def test_accept_with_an_invalid_session_is_400_and_the_call_hears_nothing(
    provider: MockProvider, http: aiohttp.ClientSession, client: RtcClient
) -> None:
    await client.start(http, provider.calls_url)
    url = f"{provider.calls_url}/{client.call_id}/accept"
    body = {"type": "realtime", "output_modalities": ["smell"]}
    async with http.post(url, json=body, headers={"Authorization": "Bearer sk-test"}) as response:
        assert response.status == 400
        assert (await response.json())["error"]["param"].startswith("session.output_modalities")
    client.send({"type": "response.create"})
    await client.next_event("response.done")
    assert "error" not in client.types()


async def test_sideband_with_a_bad_key_gets_invalid_api_key_and_close_3000(
    http: aiohttp.ClientSession, client: RtcClient
) -> None:
    options = MockOptions(realtime_pacing=0, api_keys=frozenset({"sk-good-key-1234"}))
    async with MockProvider(options) as provider:
        await client.start(http, provider.calls_url, api_key="sk-good-key-1234")
        path = f"/realtime?call_id={client.call_id}"
        headers = {"Authorization": "Bearer sk-wrong-key-5678"}
        ws = await open_session(http, provider, path, headers=headers)
        error = await next_event(ws)
        assert error["error"]["code"] == "invalid_api_key"
        message = await ws.receive(timeout=5)
        assert (message.type, message.data) == (aiohttp.WSMsgType.CLOSE, 3000)
        assert provider.calls[0].sidebands == 0
        await client.close()
