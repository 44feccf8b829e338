"""A real headless Chromium runs a GPT-Live WebRTC page against rtrelay.

As OpenAI's Live WebRTC guide has it, the page makes the offer and its own server creates
the session (``client.live.create`` of the openai SDK, with the server's rtrelay key:
the browser never holds a key) and hands back the answer; media and events then flow
browser ↔ provider, and the relay meters the session on its own sideband. The page is
served from 127.0.0.1 (``getUserMedia`` needs a secure or local origin); Chromium has a
fake microphone and may use loopback for ICE; no STUN server anywhere.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest
from aiohttp import web
from live_rtc_rig import SESSION, Rig, sdk, settled
from playwright.async_api import Browser

from chromium import PEER_JS
from rtrelay.edge.app import CALLS
from support import serving

pytestmark = pytest.mark.timeout(90)

PAGE = f"""<!doctype html><title>rtrelay GPT-Live WebRTC test</title><script>{PEER_JS}"""
PAGE += """
window.live = async () => {
  const out = {events: [], packets: 0};
  const [pc, dc] = await window.newPeer();
  const reported = new Promise((resolve) => {
    dc.onmessage = (e) => {
      const event = JSON.parse(e.data);
      out.events.push(event.type);
      if (event.type === "session.usage.updated" && event.usage.seconds > 0) resolve();
    };
  });
  await pc.setLocalDescription(await pc.createOffer());
  const created = await fetch("/session", {method: "POST", body: pc.localDescription.sdp});
  out.status = created.status;
  const answer = await created.json();
  out.id = answer.id;
  if (created.status !== 200) return out;
  await pc.setRemoteDescription({type: "answer", sdp: answer.sdp});
  await reported;
  out.packets = await window.packetsReceived(pc);
  await fetch("/hangup", {method: "POST", body: out.id});
  pc.close();
  return out;
};
</script>"""


def page_server(rig: Rig) -> web.Application:
    """The page and its server: Live sessions created and hung up through rtrelay."""

    async def page(request: web.Request) -> web.Response:
        return web.Response(text=PAGE, content_type="text/html")

    async def session(request: web.Request) -> web.Response:
        async with sdk(rig, rig.key) as openai:
            created = await openai.live.create(
                session=SESSION,  # type: ignore[arg-type]
                transport={"type": "webrtc", "sdp": await request.text()},
            )
        return web.json_response({"id": created.session.id, "sdp": created.transport.sdp})

    async def hangup(request: web.Request) -> web.Response:
        async with sdk(rig, rig.key) as openai:
            await openai.live.sessions.hangup(await request.text())
        return web.Response(status=204)

    app = web.Application()
    app.router.add_get("/", page)
    app.router.add_post("/session", session)
    app.router.add_post("/hangup", hangup)
    return app


async def test_chromium_runs_a_live_session_through_rtrelay_metered_by_its_sideband(
    rig: Rig, media_browser: Browser
) -> None:
    store, desk = rig.relay.relay.parts.store, rig.relay.app[CALLS]
    async with serving(page_server(rig)) as page_url:
        page = await media_browser.new_page()
        await page.goto(page_url)
        async with asyncio.timeout(60):
            out: dict[str, Any] = await page.evaluate("window.live()")
            while desk.calls:
                await asyncio.sleep(0.05)
    assert out["status"] == 200, out
    assert out["id"].startswith("rlive_")
    assert out["events"][0] == "session.started"
    assert "session.usage.updated" in out["events"]
    assert out["packets"] > 0
    [provider_session] = rig.provider.calls
    assert provider_session.controls == ["hangup"]
    await rig.relay.relay.parts.writer.flush()
    [started] = await store.sessions()
    row = await settled(rig, started.session_id)
    assert row.transport == "webrtc"
    assert row.model == "gpt-live-1"
    usage = await store.session_usage(row.session_id)
    assert usage and sum((u.usage.seconds for u in usage), Decimal(0)) > 0
    assert row.cost_usd > 0
