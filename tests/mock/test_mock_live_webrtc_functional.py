"""GPT-Live over WebRTC on the simulated provider: an aiortc peer plays the browser, the
openai SDK is the app server (creation, sideband, controls, recording, fork).

One or two sessions open at a time: an open WebRTC session costs its peers a tenth of a
core each.
"""

from __future__ import annotations

import asyncio
import io
import wave
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from mock_wire import speech_turn
from openai import AsyncOpenAI, BadRequestError, NotFoundError

from rtc_helpers import RtcClient
from rtrelay.mock import MockOptions, MockProvider
from rtrelay.wire import LIVE_SESSIONS_PATH

pytestmark = pytest.mark.timeout(60)

SESSION: dict[str, Any] = {"model": "gpt-live-1", "instructions": "Speak like a lighthouse keeper."}


@pytest.fixture
async def provider() -> AsyncIterator[MockProvider]:
    options = MockOptions(realtime_pacing=0, reply_audio_ms=400, live_usage_interval=0.3)
    async with MockProvider(options) as running:
        yield running


@pytest.fixture
async def client() -> AsyncIterator[RtcClient]:
    async with RtcClient() as peer:
        yield peer


def sdk(provider: MockProvider) -> AsyncOpenAI:
    return AsyncOpenAI(
        api_key="sk-test", base_url=provider.http_url + "/v1", websocket_base_url=provider.url
    )


async def create(openai: AsyncOpenAI, client: RtcClient, **session: Any) -> str:
    """Create a Live WebRTC session as a browser's server would; apply the answer."""
    created = await openai.live.create(
        session={**SESSION, **session},  # type: ignore[typeddict-item]
        transport={"type": "webrtc", "sdp": await client.offer()},
    )
    assert created.transport.type == "webrtc"
    await client.answer(created.transport.sdp)
    return created.session.id


async def started(openai: AsyncOpenAI, client: RtcClient, **session: Any) -> str:
    """``create``, then wait for ``session.started`` on the data channel."""
    session_id = await create(openai, client, **session)
    await client.next_event("session.started")
    return session_id


async def test_live_session_over_webrtc_speaks_and_reports_usage(
    provider: MockProvider, client: RtcClient
) -> None:
    async with sdk(provider) as openai:
        session_id = await create(openai, client)
        started = await client.next_event("session.started")
        client.speak(speech_turn(800, lead_ms=200, tail_ms=800))
        await client.next_event("session.output_transcript.delta")
        await client.wait_for(lambda: client.loud_frames > 0)
        await client.wait_for(
            lambda: any(
                e["type"] == "session.usage.updated" and e["usage"]["seconds"] > 0
                for e in client.events
            )
        )
        client.send({"type": "session.close", "event_id": "bye"})
        closed = await client.next_event("session.closed")
        [record] = provider.calls
        async with asyncio.timeout(10):
            await record.ended.wait()

    assert client.events[0] is started
    assert started["session"]["id"] == session_id
    assert started["session"]["model"] == "gpt-live-1"
    kinds = set(client.types())
    assert "session.output_audio.delta" not in kinds  # the audio rides the media track
    assert "session.input_transcript.delta" in kinds
    assert closed["client_event_id"] == "bye"
    assert closed["usage"]["seconds"] > 0
    assert (record.call_id, record.model, record.end_reason) == (session_id, "gpt-live-1", "closed")
    assert record.audio_frames_received > 0
    assert provider.active_calls == 0


async def test_sideband_sees_the_session_and_can_close_it(
    provider: MockProvider, client: RtcClient
) -> None:
    async with sdk(provider) as openai:
        session_id = await started(openai, client)
        async with openai.live.sideband.connect(session_id=session_id) as sideband:
            usage = await sideband.recv()  # nothing is replayed: the next event is new
            await sideband.session.close(event_id="from-sideband")
            closed = [event async for event in sideband]  # then 1000
        on_channel = await client.next_event("session.closed")
    assert usage.type == "session.usage.updated"
    assert [e.type for e in closed][-1] == "session.closed"
    assert on_channel["client_event_id"] == "from-sideband"
    assert provider.calls[0].sidebands == 1
    assert provider.calls[0].end_reason == "closed"


async def test_a_hangup_tells_the_sideband_session_closed(
    provider: MockProvider, client: RtcClient
) -> None:
    async with sdk(provider) as openai:
        session_id = await started(openai, client)
        async with openai.live.sideband.connect(session_id=session_id) as sideband:
            await openai.live.sessions.hangup(session_id)
            events = [event async for event in sideband]  # then 1000
    closed = events[-1]
    assert closed.type == "session.closed"
    assert closed.reason == "close_requested"
    assert provider.calls[0].end_reason == "hangup"


async def test_controls_recording_and_fork(provider: MockProvider, client: RtcClient) -> None:
    async with sdk(provider) as openai, RtcClient() as second:
        session_id = await started(openai, client, store=True)
        client.speak(speech_turn(800, lead_ms=200, tail_ms=800))
        await client.next_event("session.output_transcript.delta")
        await openai.live.sessions.refer(session_id, target_uri="tel:+14155550100")
        await openai.live.sessions.accept(session_id, session={"model": "gpt-live-1"})
        forked = await openai.live.sessions.fork(
            session_id, transport={"type": "webrtc", "sdp": await second.offer()}
        )
        await second.answer(forked.transport.sdp)
        fork_started = await second.next_event("session.started")
        await openai.live.sessions.hangup(forked.session.id)
        await openai.live.sessions.hangup(session_id)
        recording = await openai.live.sessions.download_recording(session_id)
        with pytest.raises(NotFoundError):
            await openai.live.sessions.hangup(session_id)

    assert forked.session.id != session_id
    assert fork_started["session"]["id"] == forked.session.id
    assert fork_started["session"]["instructions"] == SESSION["instructions"]
    with wave.open(io.BytesIO(recording.content)) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, 24000)
        assert wav.getnframes() > 0
    first, fork = provider.calls
    assert first.controls == ["refer", "accept", "fork", "hangup"]
    assert (first.end_reason, fork.end_reason) == ("hangup", "hangup")


async def test_refusals(provider: MockProvider, http: aiohttp.ClientSession) -> None:
    async with sdk(provider) as openai, RtcClient() as peer:
        offer = await peer.offer()
        with pytest.raises(BadRequestError) as wrong_model:
            await openai.live.create(
                session={"model": "gpt-realtime"}, transport={"type": "webrtc", "sdp": offer}
            )
        with pytest.raises(BadRequestError) as strict:
            await openai.live.create(
                session={**SESSION, "audio": {"format": {"type": "audio/pcm"}}},  # type: ignore[typeddict-item]
                transport={"type": "webrtc", "sdp": offer},
            )
        with pytest.raises(NotFoundError):
            await openai.live.sessions.hangup("sess_unknown")
    async with http.post(
        provider.http_url + LIVE_SESSIONS_PATH,
        json={"session": SESSION},
        headers={"Authorization": "Bearer sk-test"},
    ) as response:
        missing = (response.status, await response.json())
    assert wrong_model.value.code == "invalid_model"
    assert strict.value.code == "unknown_parameter"
    assert missing[0] == 400
    assert missing[1]["error"]["param"] == "transport"
    assert provider.calls == []


async def test_recording_needs_a_stored_session(provider: MockProvider, client: RtcClient) -> None:
    async with sdk(provider) as openai:
        session_id = await started(openai, client)
        with pytest.raises(BadRequestError) as not_stored:
            await openai.live.sessions.download_recording(session_id)
        await openai.live.sessions.hangup(session_id)
    assert not_stored.value.code == "session_not_stored"


async def test_reflected_audio_reaches_the_sideband_only() -> None:
    options = MockOptions(realtime_pacing=0, reply_audio_ms=400, live_reflect_audio=True)
    async with MockProvider(options) as provider, RtcClient() as client, sdk(provider) as openai:
        session_id = await started(openai, client)
        async with openai.live.sideband.connect(session_id=session_id) as sideband:
            client.speak(speech_turn(800, lead_ms=200, tail_ms=800))
            kinds: set[str] = set()
            async with asyncio.timeout(20):
                while not {"session.input_audio.append", "session.output_audio.delta"} <= kinds:
                    kinds.add((await sideband.recv()).type)
    assert "session.input_audio.append" not in client.types()
    assert "session.output_audio.delta" not in client.types()
