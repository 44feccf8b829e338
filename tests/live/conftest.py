"""The simulated provider every test here runs against (fast pacing, usage every 0.3 s)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from live_rig import FAST

from rtrelay.mock import MockProvider


@pytest.fixture
async def provider() -> AsyncIterator[MockProvider]:
    async with MockProvider(FAST) as p:
        yield p
