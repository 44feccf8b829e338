"""Fixtures for WebRTC calls through the relay: a simulated provider, a relay, a key."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from calls_rig import Rig

from rtrelay.ledger.keys import KeySpec
from rtrelay.mock import MockOptions, MockProvider
from support import mock_channel_settings, running_relay


@pytest.fixture
async def provider() -> AsyncIterator[MockProvider]:
    # Short replies: the audio plays in real time on the track whatever the pacing.
    async with MockProvider(MockOptions(realtime_pacing=0, reply_audio_ms=400)) as running:
        yield running


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def rig(provider: MockProvider) -> AsyncIterator[Rig]:
    async with running_relay(mock_channel_settings(provider.url)) as relay:
        _, key = await relay.relay.parts.store.create_key(KeySpec(name="calls"))
        yield Rig(provider, relay, key)
