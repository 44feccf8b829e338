"""A real headless Chromium talks to the relay, as a browser app would (protocol.md §2).

Browsers can only authenticate with subprotocols and never see the status or
body of a refused handshake, so these are the cases a relay most often gets wrong.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from playwright.async_api import Browser

from rtrelay.ledger.keys import KeySpec
from rtrelay.mock import MockOptions, MockProvider
from support import RunningRelay, mock_channel_settings, running_relay, serving

PAGE = """<!doctype html><title>rtrelay browser test</title><script>
window.run = (url, protocols) => new Promise((resolve) => {
  const out = {events: [], protocol: null, close: null};
  const ws = new WebSocket(url, protocols);
  ws.onopen = () => { out.protocol = ws.protocol; };
  ws.onmessage = (e) => {
    const event = JSON.parse(e.data);
    out.events.push(event);
    if (event.type === "session.created") ws.send(JSON.stringify({type: "response.create"}));
    if (event.type === "response.done") ws.close(1000, "done");
  };
  ws.onclose = (e) => { out.close = {code: e.code, reason: e.reason}; resolve(out); };
});
</script>"""


@pytest.fixture
async def stack() -> AsyncIterator[tuple[RunningRelay, str]]:
    async with MockProvider(MockOptions(realtime_pacing=0, reply_audio_ms=300)) as provider:
        async with running_relay(mock_channel_settings(provider.url)) as relay:
            page = web.Application()
            page.router.add_get("/", _page)
            async with serving(page) as page_url:
                yield relay, page_url


async def _page(request: web.Request) -> web.Response:
    return web.Response(text=PAGE, content_type="text/html")


async def run_in_page(browser: Browser, page_url: str, url: str, protocols: list[str]) -> Any:
    page = await browser.new_page()
    try:
        await page.goto(page_url)
        return await page.evaluate("([u, p]) => window.run(u, p)", [url, protocols])
    finally:
        await page.close()


async def test_browser_completes_a_response_with_subprotocol_auth(
    browser: Browser, stack: tuple[RunningRelay, str]
) -> None:
    relay, page_url = stack
    _, key = await relay.relay.parts.store.create_key(KeySpec(name="browser"))
    out = await run_in_page(
        browser, page_url, relay.realtime(), ["realtime", f"openai-insecure-api-key.{key}"]
    )
    types = [e["type"] for e in out["events"]]
    assert out["protocol"] == "realtime"
    assert types[0] == "session.created"
    assert "response.output_audio.delta" in types
    assert types[-1] == "response.done"
    assert out["events"][-1]["response"]["usage"]["output_tokens"] > 0
    assert out["close"] == {"code": 1000, "reason": "done"}


async def test_browser_sees_the_error_event_and_4401_for_a_bad_key(
    browser: Browser, stack: tuple[RunningRelay, str]
) -> None:
    relay, page_url = stack
    out = await run_in_page(
        browser, page_url, relay.realtime(), ["realtime", "openai-insecure-api-key.rk_wrong_key"]
    )
    assert out["protocol"] == "realtime"
    [event] = out["events"]
    assert event["type"] == "error"
    assert event["error"]["code"] == "invalid_api_key"
    assert out["close"] == {"code": 4401, "reason": "invalid_request_error.invalid_api_key"}
