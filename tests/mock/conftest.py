"""Fixtures for the simulated provider's tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from rtrelay.mock import MockOptions, MockProvider


@pytest.fixture
async def provider() -> AsyncIterator[MockProvider]:
    async with MockProvider(MockOptions(realtime_pacing=0)) as running:
        yield running


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session
