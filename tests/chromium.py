"""The ``browser`` fixture: Debian's Chromium (``/usr/bin/chromium``) driven by Playwright.

Never a browser Playwright downloads: the machine's own, installed by
``scripts/bootstrap --test``. A plugin of the top conftest: any test may ask for ``browser``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Final

import pytest
from playwright.async_api import Browser, async_playwright

__all__ = ["CHROMIUM", "MEDIA_FLAGS", "PEER_JS", "browser", "chromium_path", "media_browser"]

CHROMIUM: Final = "/usr/bin/chromium"
FLAGS: Final = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)
MEDIA_FLAGS: Final = (
    "--use-fake-ui-for-media-stream",  # getUserMedia allowed without asking
    "--use-fake-device-for-media-stream",  # a fake microphone
    "--allow-loopback-in-peer-connection",  # ICE may pair on 127.0.0.1 (no STUN anywhere)
)

PEER_JS: Final = """
window.newPeer = async () => {
  const pc = new RTCPeerConnection();
  const audio = document.createElement("audio");
  audio.autoplay = true;
  pc.ontrack = (e) => { audio.srcObject = e.streams[0]; };
  const mic = await navigator.mediaDevices.getUserMedia({audio: true});
  pc.addTrack(mic.getTracks()[0]);
  return [pc, pc.createDataChannel("oai-events")];
};
window.packetsReceived = async (pc) => {
  let packets = 0;
  for (let i = 0; i < 50 && packets === 0; i++) {
    await new Promise((r) => setTimeout(r, 100));
    (await pc.getStats()).forEach((s) => {
      if (s.type === "inbound-rtp" && s.kind === "audio") packets = s.packetsReceived;
    });
  }
  return packets;
};
"""
"""A WebRTC page's peer as OpenAI's WebRTC guide builds it (the microphone, the remote audio
played, the ``oai-events`` channel), and the audio packets it received within 5 s."""


@pytest.fixture(scope="module")
def chromium_path() -> str:
    if not Path(CHROMIUM).exists():
        if os.environ.get("RTRELAY_TEST_BROWSER") == "0":
            pytest.skip("RTRELAY_TEST_BROWSER=0")
        pytest.fail(f"{CHROMIUM} is missing: scripts/bootstrap --test installs Debian's chromium")
    return CHROMIUM


@pytest.fixture
async def browser(chromium_path: str) -> AsyncIterator[Browser]:
    async with _launched(chromium_path, FLAGS) as launched:
        yield launched


@pytest.fixture
async def media_browser(chromium_path: str) -> AsyncIterator[Browser]:
    """Chromium for WebRTC pages: a fake microphone, and ICE allowed on loopback."""
    async with _launched(chromium_path, (*FLAGS, *MEDIA_FLAGS)) as launched:
        yield launched


@contextlib.asynccontextmanager
async def _launched(path: str, flags: Sequence[str]) -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=path, args=list(flags))
        try:
            yield browser
        finally:
            await browser.close()
