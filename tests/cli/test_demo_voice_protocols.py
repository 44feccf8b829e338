"""``rtrelay serve --demo``'s simulated channel carries GPT-Live, translation and the
duration-priced transcription models, and the provider it runs speaks those protocols."""

from __future__ import annotations

from openai import AsyncOpenAI

from rtrelay import config
from rtrelay.cli._demo import DEMO_MODELS, demo_settings
from rtrelay.mock import MockOptions, MockProvider

VOICE_MODELS = (
    "gpt-live-1",
    "gpt-realtime-translate",
    "gpt-realtime-whisper",
    "gpt-live-transcribe",
)


def test_demo_channel_offers_the_live_translation_and_transcription_models() -> None:
    [channel] = demo_settings(config.Settings()).channels
    assert channel.kind == "mock"
    for model in VOICE_MODELS:
        assert model in DEMO_MODELS
        assert channel.models[model] == model


async def test_the_demo_provider_serves_live_and_translation_sessions() -> None:
    # As edge/app.py starts a mock channel's provider.
    async with MockProvider(MockOptions(), record=False) as provider:
        client = AsyncOpenAI(api_key="sk-demo", websocket_base_url=provider.url)
        async with client.live.connect() as live:
            await live.session.start(session={"model": "gpt-live-1"})
            started = await live.recv()
        translations = client.realtime.translations.connect(model="gpt-realtime-translate")
        async with translations as translation:
            created = await translation.recv()
    assert started.type == "session.started"
    assert created.type == "session.created"
