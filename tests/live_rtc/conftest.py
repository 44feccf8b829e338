"""Fixtures for GPT-Live WebRTC sessions through the relay."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from live_rtc_rig import Rig, live_rig


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    async with live_rig() as running:
        yield running
