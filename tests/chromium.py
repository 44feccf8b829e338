"""The ``browser`` fixture: Debian's Chromium (``/usr/bin/chromium``) driven by Playwright.

Never a browser Playwright downloads: the machine's own, installed by
``scripts/bootstrap --test``. A plugin of the top conftest: any test may ask for ``browser``.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Final

import pytest
from playwright.async_api import Browser, async_playwright

__all__ = ["CHROMIUM", "browser", "chromium_path"]

CHROMIUM: Final = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def chromium_path() -> str:
    if not Path(CHROMIUM).exists():
        if os.environ.get("RTRELAY_TEST_BROWSER") == "0":
            pytest.skip("RTRELAY_TEST_BROWSER=0")
        pytest.fail(f"{CHROMIUM} is missing: scripts/bootstrap --test installs Debian's chromium")
    return CHROMIUM


@pytest.fixture
async def browser(chromium_path: str) -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=chromium_path,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        try:
            yield browser
        finally:
            await browser.close()
