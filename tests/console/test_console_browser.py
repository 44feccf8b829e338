"""The console in a real headless Chromium (Debian's), against a real relay in front of the
real simulated provider, with SQLite: what an operator does, start to finish.

Every request the browser makes is recorded: none may leave 127.0.0.1 (no CDN, no font
host, no validator badge). Console errors are recorded too: a Content-Security-Policy
violation would mean an asset or a script the pages need is blocked.

``RTRELAY_CONSOLE_SCREENSHOTS=docs/console`` also saves a screenshot of each page there
(the README links them); otherwise they go to the test's temporary directory.
"""

from __future__ import annotations

import asyncio
import csv
import io
import os
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from console_helpers import ADMIN_TOKEN, Console, console_stack
from playwright.async_api import Browser, BrowserContext, Page, expect

from rtrelay.ledger.keys import KeySpec

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

ROOT = Path(__file__).resolve().parents[2]

PAGE_CHECKS = (Path(__file__).parent / "page_checks.js").read_text()
"""Defines ``rtrelayContrastFailures()`` and ``rtrelayUnlabelled()`` in the page."""


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    target = os.environ.get("RTRELAY_CONSOLE_SCREENSHOTS")
    path = ROOT / target if target else tmp_path / "shots"
    path.mkdir(parents=True, exist_ok=True)
    return path


class Recorder:
    """What the browser asked for and complained about."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.errors: list[str] = []

    def attach(self, context: BrowserContext) -> None:
        context.on("request", lambda request: self.requests.append(request.url))

    def watch(self, page: Page) -> None:
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        page.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))


@pytest.fixture
async def console() -> AsyncIterator[Console]:
    async with console_stack(reply_audio_ms=300) as running:
        yield running


async def sign_in(page: Page, base: str, token: str = ADMIN_TOKEN) -> None:
    await page.goto(base + "/console/")
    await expect(page).to_have_url(base + "/console/login?next=%2Fconsole%2F")
    await page.get_by_label("Admin token").fill(token)
    await page.get_by_role("button", name="Sign in").click()


async def talk(ws: aiohttp.ClientWebSocketResponse) -> None:
    """One response, as a client would: ask, read until it is done."""
    await ws.send_json({"type": "response.create"})
    async with asyncio.timeout(20):
        while (await ws.receive_json())["type"] != "response.done":
            pass


async def read_close(ws: aiohttp.ClientWebSocketResponse) -> tuple[dict[str, Any] | None, int]:
    error = None
    async with asyncio.timeout(20):
        while True:
            msg = await ws.receive()
            if msg.type is aiohttp.WSMsgType.TEXT:
                event = msg.json()
                if event["type"] == "error":
                    error = event
            elif msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
                return error, ws.close_code or 0


async def check_page(page: Page, recorder: Recorder, shots: Path, name: str) -> None:
    """Labels and contrast on the page as it is, then its screenshot."""
    await page.evaluate(PAGE_CHECKS)  # by DevTools: the pages' CSP allows no inline script
    assert await page.evaluate("rtrelayUnlabelled()") == [], name
    assert await page.evaluate("rtrelayContrastFailures()") == [], name
    await page.screenshot(path=str(shots / f"{name}.png"), full_page=True)


async def test_an_operator_signs_in_creates_a_key_watches_ends_and_revokes(
    browser: Browser, console: Console, shots: Path
) -> None:
    base, relay = console.url, console.relay
    store = relay.relay.parts.store
    recorder = Recorder()
    context = await browser.new_context(viewport={"width": 1280, "height": 860})
    recorder.attach(context)
    page = await context.new_page()
    recorder.watch(page)

    # The landing page and the API reference, signed out.
    await page.goto(base + "/")
    await expect(page.get_by_role("heading", name="Status: ready")).to_be_visible()
    await check_page(page, recorder, shots, "landing")
    await page.goto(base + "/admin/v1/docs")
    await expect(page.locator(".swagger-ui .info")).to_be_visible(timeout=20_000)
    await expect(page.get_by_text("/keys/{key}/rotate").first).to_be_visible()
    await page.screenshot(path=str(shots / "api-docs.png"), full_page=False)

    # A wrong token is refused, the right one signs in.
    await sign_in(page, base, "not-the-admin-token")
    await expect(page.get_by_role("alert")).to_have_text("Incorrect admin token.")
    await check_page(page, recorder, shots, "login")
    await page.get_by_label("Admin token").fill(ADMIN_TOKEN)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="Overview")).to_be_visible()

    # Create a key: its secret is shown once, with a copy button.
    await page.get_by_role("link", name="Keys").click()
    await page.locator("#new-name").fill("browser-made")
    await page.locator("#new-budget_usd").fill("5")
    await page.get_by_role("button", name="Create key").click()
    await expect(page.get_by_role("heading", name="Key created: browser-made")).to_be_visible()
    secret = await page.locator("#secret").input_value()
    assert secret.startswith("rk_")
    [key_id] = [k.id for k in await store.list_keys()]
    await page.get_by_role("button", name="Copy").click()
    await expect(page.get_by_role("status")).to_have_text("Copied.")
    await check_page(page, recorder, shots, "key-secret")

    # A client uses the key; while it talks, the overview and the sessions page show it.
    headers = {"Authorization": f"Bearer {secret}"}
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.WSServerHandshakeError):  # one refusal for the overview
            await http.ws_connect(relay.realtime(), headers={"Authorization": "Bearer rk_nope"})
        async with http.ws_connect(relay.realtime(), headers=headers) as ws:
            assert (await ws.receive_json())["type"] == "session.created"
            await talk(ws)
            [session_id] = list(relay.relay.sessions)
            async with asyncio.timeout(10):  # the response's ledger row, for the spend figures
                while not await store.session_usage(session_id):
                    await asyncio.sleep(0.05)
            await page.get_by_role("link", name="Overview").click()
            await expect(page.locator("[data-figure=active]")).to_have_text("1", timeout=15_000)
            await expect(page.locator("[data-kind='realtime/websocket']")).to_have_text("1")
            await expect(page.locator("[data-figure=success-5m]")).to_have_text("50.0 %")
            refusal = page.get_by_role("row", name="invalid_api_key")
            await expect(refusal).to_contain_text("Incorrect API key provided")
            spend = page.locator("[data-figure=spend-today]")  # cached 5 s, then polled
            await expect(spend).to_have_text(f"${await store.spent_usd(key_id):f}", timeout=15_000)
            await check_page(page, recorder, shots, "overview")
            await page.get_by_role("link", name="Sessions").click()
            row = page.locator(f"[data-live-session='{session_id}']")
            await expect(row).to_be_visible()
            await check_page(page, recorder, shots, "sessions")
            await page.get_by_role("link", name=session_id).first.click()
            await expect(page.locator("[data-figure=status]")).to_have_text("live")
            await expect(page.get_by_text("channel sim").first).to_be_visible()
            await check_page(page, recorder, shots, "session")

            # End it from the console: the client gets the table's event and close.
            await page.get_by_role("button", name="End this session").click()
            error, code = await read_close(ws)
    assert code == 1008
    assert error is not None
    assert error["error"]["code"] == "ended_by_operator"
    await expect(page.get_by_role("status")).to_contain_text("ended_by_operator")
    async with asyncio.timeout(10):
        while (row_now := await store.session(session_id)) is None or row_now.status == "live":
            await asyncio.sleep(0.1)
    assert (row_now.status, row_now.error_code) == ("completed", "ended_by_operator")
    assert row_now.client_close_code == 1008
    await page.reload()
    await expect(page.get_by_text("ended_by_operator").first).to_be_visible()

    # Revoke the key: the next handshake with it is refused.
    await page.get_by_role("link", name="Keys").click()
    await page.get_by_role("button", name="Revoke browser-made").click()
    await expect(page.get_by_role("status")).to_have_text("Key revoked.")
    await check_page(page, recorder, shots, "keys")
    await _refused_soon(relay.realtime(), headers)

    # Usage: the CSV export's rows are the ledger's.
    await page.get_by_role("link", name="Usage").click()
    await check_page(page, recorder, shots, "usage")
    async with page.expect_download() as info:
        await page.get_by_role("link", name="CSV").click()
    download = await info.value
    text = await asyncio.to_thread(Path(await download.path()).read_text)
    rows = list(csv.DictReader(io.StringIO(text)))
    ledger = await store.usage(by="key")
    assert [r["group"] for r in rows] == [r.group for r in ledger]
    assert [Decimal(r["cost_usd"]) for r in rows] == [r.cost_usd for r in ledger]
    assert [int(r["responses"]) for r in rows] == [r.responses for r in ledger]
    assert sum(Decimal(r["cost_usd"]) for r in rows) > 0
    await page.goto(base + "/console/usage?by=day")
    await page.wait_for_timeout(500)
    await page.screenshot(path=str(shots / "usage-by-day.png"), full_page=True)

    await page.get_by_role("link", name="Channels").click()
    await expect(page.get_by_role("heading", name="sim closed")).to_be_visible()
    await check_page(page, recorder, shots, "channels")

    # A POST without the CSRF token is refused, even from the signed-in browser.
    status = await page.evaluate(
        "fetch('/console/keys', {method: 'POST', body: new URLSearchParams({name: 'x'})})"
        ".then((r) => r.status)"
    )
    assert status == 403
    assert [k.name for k in await store.list_keys()] == ["browser-made"]

    # Sign out: the console asks for the token again.
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_role("status")).to_have_text("You are signed out.")
    await page.goto(base + "/console/keys")
    await expect(page.get_by_label("Admin token")).to_be_visible()
    await context.close()

    outside = [u for u in recorder.requests if not u.startswith(base + "/")]
    assert outside == [], outside
    assert len(recorder.requests) > 20
    assert [e for e in recorder.errors if "Content Security Policy" in e] == []
    # The refused sign-in (401) and the POST without a CSRF token (403) are the only failures.
    assert [e for e in recorder.errors if not e.startswith("Failed to load resource")] == []


async def _refused_soon(url: str, headers: dict[str, str]) -> None:
    """The gate caches a key for 5 s: within that a revoked key may still open a session."""
    status = None
    async with aiohttp.ClientSession() as http, asyncio.timeout(15):
        while status is None:
            try:
                async with http.ws_connect(url, headers=headers):
                    pass
            except aiohttp.WSServerHandshakeError as exc:
                status = exc.status
            else:
                await asyncio.sleep(0.5)
    assert status == 401


async def test_the_console_works_from_the_keyboard(browser: Browser, console: Console) -> None:
    _, secret = await console.relay.relay.parts.store.create_key(KeySpec(name="kb"))
    page = await browser.new_page()
    await page.goto(console.url + "/console/login")
    assert await page.evaluate("document.activeElement.id") == "token"  # autofocus
    await page.keyboard.type(ADMIN_TOKEN)
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    await page.keyboard.press("Tab")
    assert await page.evaluate("document.activeElement.textContent") == "Skip to content"
    await page.keyboard.press("Enter")
    assert await page.evaluate("document.activeElement.id") == "main"
    names = []
    await page.locator(".brand").focus()
    for _ in range(8):
        await page.keyboard.press("Tab")
        names.append(await page.evaluate("document.activeElement.textContent.trim()"))
    assert names[:6] == ["Overview", "Sessions", "Keys", "Usage", "Channels", "API docs"]
    await page.locator(".top nav a", has_text="Keys").focus()
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", name="Keys", exact=True)).to_be_visible()
    await page.close()
    assert secret
