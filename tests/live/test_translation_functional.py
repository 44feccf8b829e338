"""Realtime translation and transcription sessions through rtrelay, metered by the second.

The official SDK is the client; the real simulated provider serves both protocols.
Translation reports no usage, so the relay bills the input audio it forwards; a
transcription session names its model in the session config, not the URL.
"""

from __future__ import annotations

import base64
from decimal import Decimal

import aiohttp
import pytest
from live_rig import live_settings, new_key, settled, usage_rows
from openai import AsyncOpenAI

from rtrelay.ledger.prices import money
from rtrelay.mock import MockProvider, silence_pcm16, speech_pcm16
from support import running_relay, upgrade_headers

CHUNK = 200 * 48  # 200 ms of pcm16 at 24 kHz


async def test_a_translation_session_is_relayed_and_billed_for_the_audio_it_translates(
    provider: MockProvider,
) -> None:
    pcm = silence_pcm16(400) + speech_pcm16(1200) + silence_pcm16(800)  # 2.4 s of audio
    async with running_relay(live_settings(provider)) as relay:
        key = await new_key(relay)
        client = AsyncOpenAI(api_key=key, websocket_base_url=f"{relay.ws_url}/v1")
        async with client.realtime.translations.connect(
            model="gpt-realtime-translate"
        ) as connection:
            created = await connection.recv()
            assert created.type == "session.created"
            await connection.session.update(session={"audio": {"output": {"language": "es"}}})
            assert (await connection.recv()).type == "session.updated"
            for i in range(0, len(pcm), CHUNK):
                chunk = base64.b64encode(pcm[i : i + CHUNK]).decode()
                await connection.session.input_audio_buffer.append(audio=chunk)
            await connection.session.close()
            kinds = [event.type async for event in connection]
        await settled(relay)
        rows = usage_rows(relay)
    assert "session.output_audio.delta" in kinds and kinds[-1] == "session.closed"
    assert {unit for _, unit, _, _ in rows} == {"seconds"}
    assert sum(seconds for _, _, seconds, _ in rows) == Decimal("2.4")
    # gpt-realtime-translate: $0.034 per minute (OpenAI's model page, ledger/prices.py).
    assert sum(cost or 0 for _, _, _, cost in rows) == money(Decimal("2.4") * Decimal("0.034") / 60)


async def test_a_translation_token_opens_translation_sessions_only(
    provider: MockProvider,
) -> None:
    async with running_relay(live_settings(provider)) as relay, aiohttp.ClientSession() as http:
        key = await new_key(relay)
        async with AsyncOpenAI(api_key=key, base_url=f"{relay.url}/v1", max_retries=0) as client:
            secret = await client.realtime.translations.client_secrets.create(
                session={"model": "gpt-realtime-translate"}
            )
        assert secret.value.startswith("ek_") and key not in secret.value
        assert (secret.session.type, secret.session.model) == (
            "translation",
            "gpt-realtime-translate",
        )
        token = {"Authorization": f"Bearer {secret.value}"}
        url = f"{relay.ws_url}/v1/realtime/translations?model=gpt-realtime-translate"
        async with http.ws_connect(url, headers=token) as ws:
            assert (await ws.receive_json(timeout=10))["type"] == "session.created"
        for path in ("/v1/realtime?model=gpt-realtime", "/v1/live/sessions?model=gpt-live-1"):
            async with http.get(relay.url + path, headers=upgrade_headers(**token)) as resp:
                assert resp.status == 403, path
                assert (await resp.json())["error"]["code"] == "model_not_allowed"


async def test_a_realtime_model_on_the_translation_route_is_told_where_to_go(
    provider: MockProvider,
) -> None:
    async with running_relay(live_settings(provider)) as relay, aiohttp.ClientSession() as http:
        key = await new_key(relay)
        async with http.get(
            f"{relay.url}/v1/realtime/translations?model=gpt-realtime",
            headers=upgrade_headers(Authorization=f"Bearer {key}"),
        ) as resp:
            body = await resp.json()
    assert (resp.status, body["error"]["code"]) == (400, "wrong_protocol_route")
    assert "/v1/realtime?model=" in body["error"]["message"]
    assert provider.handshakes == []


@pytest.mark.parametrize(
    ("transcriber", "unit"), [("gpt-realtime-whisper", "seconds"), ("gpt-4o-transcribe", "tokens")]
)
async def test_a_transcription_session_is_billed_as_its_model_is_priced(
    provider: MockProvider, transcriber: str, unit: str
) -> None:
    async with running_relay(live_settings(provider)) as relay, aiohttp.ClientSession() as http:
        key = await new_key(relay)
        async with http.ws_connect(
            f"{relay.ws_url}/v1/realtime?intent=transcription",
            headers={"Authorization": f"Bearer {key}"},
        ) as ws:
            await ws.send_json(
                {
                    "type": "session.update",
                    "session": {
                        "type": "transcription",
                        "audio": {
                            "input": {
                                "transcription": {"model": transcriber},
                                # gpt-realtime-whisper takes no VAD (the SDK's session type):
                                # the client commits its turns.
                                "turn_detection": None,
                            }
                        },
                    },
                }
            )
            pcm = speech_pcm16(800) + silence_pcm16(900)
            for i in range(0, len(pcm), CHUNK):
                audio = base64.b64encode(pcm[i : i + CHUNK]).decode()
                await ws.send_json({"type": "input_audio_buffer.append", "audio": audio})
            await ws.send_json({"type": "input_audio_buffer.commit"})
            while (await ws.receive_json(timeout=10))["type"] != (
                "conversation.item.input_audio_transcription.completed"
            ):
                pass
        await settled(relay)
        rows = usage_rows(relay)
    [(_, got_unit, seconds, cost)] = rows
    assert got_unit == unit
    assert cost is not None and cost > 0
    if unit == "seconds":  # the 1.7 s turn, at $0.017 a minute (ledger/prices.py)
        assert (seconds, cost) == (Decimal("1.7"), money(Decimal("1.7") * Decimal("0.017") / 60))
    else:
        assert seconds == 0
    [handshake] = provider.handshakes
    assert handshake.query == {"intent": "transcription"}
