"""A real headless Chromium runs OpenAI's WebRTC browser code against rtrelay (ek_ token).

The page is served from another origin (http://127.0.0.1, as ``getUserMedia`` requires),
so the offer is a cross-origin POST: the preflight and CORS headers are exercised too.
Chromium gets a fake microphone and may use loopback for ICE (DESIGN.md, WebRTC on
loopback); no STUN server is configured anywhere.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from playwright.async_api import async_playwright

from chromium import PEER_JS
from rtrelay.edge.app import CALLS
from rtrelay.ledger.keys import KeySpec
from rtrelay.mock import MockOptions, MockProvider
from support import mock_channel_settings, running_relay, serving

pytestmark = pytest.mark.timeout(90)

# OpenAI's "Realtime API with WebRTC" sample, with the relay's URL and an ek_ token.
PAGE = f"""<!doctype html><title>rtrelay WebRTC test</title><script>{PEER_JS}"""
PAGE += """
window.call = async (url, token) => {
  const out = {events: [], status: null, location: null, packets: 0};
  const [pc, dc] = await window.newPeer();
  const done = new Promise((resolve) => {
    dc.onmessage = (e) => {
      const event = JSON.parse(e.data);
      out.events.push(event.type);
      if (event.type === "session.created") dc.send(JSON.stringify({type: "response.create"}));
      if (event.type === "response.done") resolve();
    };
  });
  await pc.setLocalDescription(await pc.createOffer());
  const answer = await fetch(url, {
    method: "POST",
    body: pc.localDescription.sdp,
    headers: {Authorization: `Bearer ${token}`, "Content-Type": "application/sdp"},
  });
  out.status = answer.status;
  out.location = answer.headers.get("Location");
  if (answer.status !== 201) { out.body = await answer.text(); return out; }
  await pc.setRemoteDescription({type: "answer", sdp: await answer.text()});
  await done;
  out.packets = await window.packetsReceived(pc);
  pc.close();
  return out;
};
</script>"""


async def _page(request: web.Request) -> web.Response:
    return web.Response(text=PAGE, content_type="text/html")


@pytest.fixture
async def provider() -> AsyncIterator[MockProvider]:
    async with MockProvider(MockOptions(realtime_pacing=0, reply_audio_ms=400)) as running:
        yield running


async def test_chromium_calls_through_rtrelay_with_an_ek_token_and_the_call_is_metered(
    provider: MockProvider, chromium_path: str
) -> None:
    async with running_relay(mock_channel_settings(provider.url)) as relay:
        store = relay.relay.parts.store
        _, key = await store.create_key(KeySpec(name="page"))
        async with aiohttp.ClientSession() as http:
            body = {"session": {"type": "realtime", "model": "gpt-realtime"}}
            headers = {"Authorization": f"Bearer {key}"}
            url = f"{relay.url}/v1/realtime/client_secrets"
            async with http.post(url, json=body, headers=headers) as resp:
                token = (await resp.json())["value"]
        assert token.startswith("ek_")
        app = web.Application()
        app.router.add_get("/", _page)
        async with serving(app) as page_url, async_playwright() as pw:
            browser = await pw.chromium.launch(
                executable_path=chromium_path,
                args=[
                    "--no-sandbox",
                    "--disable-gpu",
                    "--use-fake-ui-for-media-stream",
                    "--use-fake-device-for-media-stream",
                    "--allow-loopback-in-peer-connection",
                ],
            )
            try:
                page = await browser.new_page()
                await page.goto(page_url)
                out: dict[str, Any] = await page.evaluate(
                    "([u, t]) => window.call(u, t)",
                    [f"{relay.url}/v1/realtime/calls?model=gpt-realtime", token],
                )
            finally:
                await browser.close()
        assert out["status"] == 201, out
        assert out["location"].startswith("/v1/realtime/calls/rcall_")
        assert out["events"][0] == "session.created"
        assert "response.done" in out["events"]
        assert out["packets"] > 0
        async with asyncio.timeout(10):
            while relay.app[CALLS].calls:
                await asyncio.sleep(0.05)
        await relay.relay.parts.writer.flush()
        [session] = await store.sessions()
        assert session.transport == "webrtc"
        assert session.responses == 1
        assert session.cost_usd > 0
