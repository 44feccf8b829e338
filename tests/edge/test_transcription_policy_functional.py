"""A transcription session's model policy through the relay: the key's ``models`` list
applies to the transcription model its session config names (the real relay, the
simulated provider, a real socket)."""

from __future__ import annotations

import asyncio
import base64

import aiohttp

from rtrelay.ledger.keys import KeySpec
from rtrelay.mock import MockOptions, MockProvider, silence_pcm16, speech_pcm16
from support import mock_channel_settings, running_relay

CHUNK = 200 * 48  # 200 ms of pcm16 at 24 kHz


def update(model: str, event_id: str) -> dict[str, object]:
    return {
        "type": "session.update",
        "event_id": event_id,
        "session": {
            "type": "transcription",
            "audio": {"input": {"transcription": {"model": model}}},
        },
    }


async def test_a_transcription_model_the_key_may_not_use_is_refused_not_forwarded() -> None:
    async with MockProvider(MockOptions(realtime_pacing=0)) as provider:
        models = ("gpt-realtime-whisper", "gpt-4o-transcribe")
        settings = mock_channel_settings(provider.url, models=models)
        async with running_relay(settings) as relay, aiohttp.ClientSession() as http:
            spec = KeySpec(name="t", models=("gpt-4o-transcribe",))
            _, key = await relay.relay.parts.store.create_key(spec)
            async with http.ws_connect(
                f"{relay.ws_url}/v1/realtime?intent=transcription",
                headers={"Authorization": f"Bearer {key}"},
            ) as ws:
                created = await ws.receive_json(timeout=10)
                assert created["session"]["type"] == "transcription"
                await ws.send_json(update("gpt-realtime-whisper", "ev_denied"))
                refused = await ws.receive_json(timeout=10)
                assert refused["type"] == "error"
                assert refused["error"]["code"] == "model_not_allowed"
                assert refused["error"]["event_id"] == "ev_denied"
                # The session goes on: an allowed model is forwarded and transcribes.
                await ws.send_json(update("gpt-4o-transcribe", "ev_allowed"))
                updated = await ws.receive_json(timeout=10)
                assert updated["type"] == "session.updated"
                transcription = updated["session"]["audio"]["input"]["transcription"]
                assert transcription["model"] == "gpt-4o-transcribe"
                pcm = speech_pcm16(800) + silence_pcm16(900)
                for i in range(0, len(pcm), CHUNK):
                    audio = base64.b64encode(pcm[i : i + CHUNK]).decode()
                    await ws.send_json({"type": "input_audio_buffer.append", "audio": audio})
                async with asyncio.timeout(10):
                    while (event := await ws.receive_json())["type"] != (
                        "conversation.item.input_audio_transcription.completed"
                    ):
                        pass
                assert event["usage"]["type"] == "tokens"
        await provider.wait_idle()
        updates = [e for e in provider.events_received if e.get("type") == "session.update"]
        assert [u["event_id"] for u in updates] == ["ev_allowed"]
