"""The console over real sockets: a relay on 127.0.0.1 in front of the simulated provider,
with a SQLite store, signed in to as a browser would (cookie, CSRF token in the form)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest
from console_helpers import ADMIN_TOKEN, Console, console_stack, csrf_of
from yarl import URL

from rtrelay.ledger.keys import KeySpec
from rtrelay.ledger.render import render_usage

pytestmark = pytest.mark.timeout(60)

PAGES = [
    "/console/",
    "/console/overview/live",
    "/console/sessions",
    "/console/live-sessions",
    "/console/keys",
    "/console/usage",
    "/console/usage?by=day",
    "/console/usage?by=model",
    "/console/channels",
]


@pytest.fixture
async def console() -> AsyncIterator[Console]:
    async with console_stack() as running:
        yield running


@pytest.fixture
async def signed_in(console: Console) -> Console:
    resp = await console.sign_in()
    assert resp.status == 303
    return console


async def test_signing_in_sets_a_strict_httponly_cookie_without_the_token(console: Console) -> None:
    resp = await console.sign_in()
    assert resp.status == 303
    assert resp.headers["Location"] == "/console/"
    cookie = resp.cookies["rtrelay_console"]
    assert cookie["httponly"]
    assert cookie["samesite"] == "Strict"
    assert cookie["path"] == "/console"
    assert ADMIN_TOKEN not in cookie.value
    status, html = await console.get("/console/")
    assert status == 200
    assert "Connection success" in html


async def test_a_wrong_token_is_refused(console: Console) -> None:
    resp = await console.sign_in("not-the-token")
    assert resp.status == 401
    assert "rtrelay_console" not in resp.cookies
    status, _ = await console.get("/console/")
    assert status == 303  # still sent to the login page


async def test_pages_need_a_session(console: Console) -> None:
    for path in PAGES:
        status, _ = await console.get(path)
        assert status == 303, path
    async with console.http.get(
        console.url + "/console/overview/live", headers={"HX-Request": "true"}
    ) as resp:
        assert resp.status == 401
        assert resp.headers["HX-Redirect"] == "/console/login"


async def test_every_page_renders_with_its_security_headers(signed_in: Console) -> None:
    for path in PAGES:
        async with signed_in.http.get(signed_in.url + path) as resp:
            assert resp.status == 200, path
            csp = resp.headers["Content-Security-Policy"]
            assert "default-src 'self'" in csp and "unsafe-inline" not in csp
            assert resp.headers["Cache-Control"] == "no-store"
            assert resp.headers["X-Frame-Options"] == "DENY"


async def test_a_post_without_its_csrf_token_is_403(signed_in: Console) -> None:
    resp = await signed_in.post("/console/keys", {"name": "no-csrf"})
    assert resp.status == 403
    resp = await signed_in.post("/console/keys", {"name": "bad-csrf", "csrf_token": "x" * 43})
    assert resp.status == 403
    assert await signed_in.relay.relay.parts.store.list_keys() == []
    token = await signed_in.csrf()
    async with signed_in.http.post(
        signed_in.url + "/console/keys",
        data={"name": "by-header"},
        headers={"X-CSRF-Token": token},  # how htmx sends it
    ) as resp:
        assert resp.status == 200
    [key] = await signed_in.relay.relay.parts.store.list_keys()
    assert key.name == "by-header"


async def test_the_login_form_needs_its_own_csrf_token(console: Console) -> None:
    resp = await console.post("/console/login", {"token": ADMIN_TOKEN, "csrf_token": "forged"})
    assert resp.status == 403
    assert "rtrelay_console" not in resp.cookies


async def test_signing_out_ends_the_session(signed_in: Console) -> None:
    cookie = signed_in.http.cookie_jar.filter_cookies(URL(signed_in.url + "/console/"))
    stolen = cookie["rtrelay_console"].value
    resp = await signed_in.post("/console/logout", {"csrf_token": await signed_in.csrf()})
    assert resp.status == 303
    async with aiohttp.ClientSession() as other:
        async with other.get(
            signed_in.url + "/console/",
            headers={"Cookie": f"rtrelay_console={stolen}"},
            allow_redirects=False,
        ) as again:
            assert again.status == 303  # the old cookie no longer works


async def test_wrong_tokens_are_throttled(console: Console) -> None:
    for _ in range(10):
        assert (await console.sign_in("wrong")).status == 401
    assert (await console.sign_in(ADMIN_TOKEN)).status == 429


async def test_with_no_admin_token_the_console_is_off_and_says_so() -> None:
    async with console_stack(token=None) as console:
        status, html = await console.get("/console/login")
        assert status == 404
        assert "The console is off" in html
        assert "RTRELAY_ADMIN_TOKEN" in html
        status, _ = await console.get("/console/static/console.css")
        assert status == 200
        status, html = await console.get("/")
        assert status == 200
        assert "no admin token configured" in html


async def test_the_landing_page_links_everything(console: Console) -> None:
    status, html = await console.get("/")
    assert status == 200
    for link in ("/console/", "/metrics", "/healthz", "/readyz", "/admin/v1/docs"):
        assert f'href="{link}"' in html
    assert "ready" in html
    status, _ = await console.get("/console")
    assert status == 308


async def test_the_api_docs_page_is_public_but_the_document_still_needs_the_token(
    console: Console,
) -> None:
    async with console.http.get(console.url + "/admin/v1/docs") as resp:
        assert resp.status == 200
        html = await resp.text()
    assert "swagger-ui-bundle.js" in html
    assert '"/keys"' in html and '"/channels"' in html  # the admin app's document, embedded
    async with console.http.get(console.url + "/admin/v1/openapi.json") as resp:
        assert resp.status == 401
    async with console.http.get(
        console.url + "/admin/v1/openapi.json", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    ) as resp:
        assert resp.status == 200


async def test_usage_exports_are_what_rtrelay_usage_prints(signed_in: Console) -> None:
    store = signed_in.relay.relay.parts.store
    _, secret = await store.create_key(KeySpec(name="exported"))
    headers = {"Authorization": f"Bearer {secret}"}
    async with signed_in.http.ws_connect(signed_in.relay.realtime(), headers=headers) as ws:
        await ws.receive_json()
        await ws.send_json({"type": "response.create"})
        while (await ws.receive_json())["type"] != "response.done":
            pass
    await _until_written(signed_in)
    for by in ("key", "model", "day"):
        rows = await store.usage(by=by)
        for fmt in ("csv", "json"):
            async with signed_in.http.get(f"{signed_in.url}/console/usage.{fmt}?by={by}") as resp:
                assert resp.status == 200
                assert resp.headers["Content-Disposition"].endswith(f'by-{by}.{fmt}"')
                assert await resp.text() == render_usage(rows, fmt, by=by) + "\n"


async def _until_written(console: Console) -> None:
    store = console.relay.relay.parts.store
    async with asyncio.timeout(10):
        while not await store.usage():
            await asyncio.sleep(0.05)


async def test_static_assets_are_served_with_their_types(console: Console) -> None:
    for path, kind in [
        ("/console/static/vendor/htmx-2.0.11/htmx.min.js", "javascript"),
        ("/console/static/vendor/uplot-1.6.32/uPlot.min.css", "text/css"),
        ("/console/static/vendor/swagger-ui-5.35.0/swagger-ui-bundle.js", "javascript"),
        ("/console/static/LICENSES.md", ""),
    ]:
        async with console.http.get(console.url + path) as resp:
            assert resp.status == 200, path
            assert kind in resp.headers["Content-Type"], (path, resp.headers["Content-Type"])
            assert resp.headers["X-Content-Type-Options"] == "nosniff"
    outside = URL(console.url + "/console/static/%2e%2e/auth.py", encoded=True)
    async with console.http.get(outside, allow_redirects=False) as resp:
        assert resp.status in (403, 404)


async def test_a_key_form_with_errors_is_shown_again_with_them(signed_in: Console) -> None:
    resp_html = ""
    async with signed_in.http.post(
        signed_in.url + "/console/keys",
        data={"csrf_token": await signed_in.csrf(), "name": "x", "budget_usd": "lots"},
    ) as resp:
        assert resp.status == 400
        resp_html = await resp.text()
    assert 'aria-invalid="true"' in resp_html
    assert 'value="lots"' in resp_html
    assert csrf_of(resp_html)


async def test_editing_a_keys_limits_changes_them_in_the_store(signed_in: Console) -> None:
    store = signed_in.relay.relay.parts.store
    record, secret = await store.create_key(KeySpec(name="edit-me", max_sessions=1))
    status, html = await signed_in.get(f"/console/keys/{record.id}")
    assert status == 200
    assert (
        'value="edit-me"' in html and 'id="edit-max_sessions" name="max_sessions" value="1"' in html
    )
    form = {
        "csrf_token": csrf_of(html),
        "name": "edited",
        "models": "gpt-realtime",
        "max_sessions": "",
        "sessions_per_minute": "30",
        "budget_usd": "9.99",
        "expires": "",
        "origins": "",
    }
    resp = await signed_in.post(f"/console/keys/{record.id}", form)
    assert resp.status == 303
    assert resp.headers["Location"] == f"/console/keys/{record.id}?done=saved"
    updated = await store.get_key(record.id)
    assert updated is not None
    assert (updated.name, updated.models, updated.max_sessions) == (
        "edited",
        ("gpt-realtime",),
        None,
    )
    assert (updated.sessions_per_minute, str(updated.budget_usd)) == (30, "9.99")
    assert await store.find_key(secret) == updated  # same key, same secret
    resp = await signed_in.post(f"/console/keys/{record.id}", {**form, "max_sessions": "0"})
    assert resp.status == 400


async def test_unknown_sessions_and_keys_are_404_and_ending_one_not_live_is_409(
    signed_in: Console,
) -> None:
    assert (await signed_in.get("/console/sessions/rsess_nope"))[0] == 404
    assert (await signed_in.get("/console/keys/key_nope"))[0] == 404
    token = await signed_in.csrf()
    resp = await signed_in.post("/console/sessions/rsess_nope/end", {"csrf_token": token})
    assert resp.status == 409
    resp = await signed_in.post("/console/keys/key_nope/revoke", {"csrf_token": token})
    assert resp.status == 404
