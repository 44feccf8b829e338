"""The admin API on a real aiohttp server (127.0.0.1, port 0), mounted as the relay mounts it."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from admin_helpers import PREFIX, TOKEN, Admin, serve_admin
from aiohttp import web

from rtrelay.admin import OPENAPI, STORE, openapi_document
from rtrelay.ledger import (
    PriceTable,
    SessionEnd,
    SessionStart,
    Store,
)
from store_fixtures import EXAMPLE_USAGE, USAGE_T0, seed_usage

T0 = USAGE_T0
EXAMPLE = EXAMPLE_USAGE


def assert_error(status: int, body: Any, expected_status: int, code: str) -> None:
    assert status == expected_status, body
    assert set(body) == {"error"}
    assert set(body["error"]) == {"type", "code", "message", "param"}
    assert body["error"]["code"] == code and body["error"]["message"]


# -- auth ---------------------------------------------------------------------------------


async def test_every_route_needs_the_bearer_token(admin: Admin) -> None:
    for method, path in [
        ("GET", "/keys"),
        ("POST", "/keys"),
        ("GET", "/keys/key_x"),
        ("POST", "/keys/key_x/revoke"),
        ("POST", "/keys/key_x/rotate"),
        ("GET", "/usage"),
        ("GET", "/sessions"),
        ("GET", "/openapi.json"),
    ]:
        status, body, headers = await admin.call(method, path, token=None)
        assert_error(status, body, 401, "missing_api_key")
        assert headers["WWW-Authenticate"].startswith("Bearer")
        status, body, _ = await admin.call(method, path, token=TOKEN + "x")
        assert_error(status, body, 401, "invalid_api_key")
    basic = {"Authorization": "Basic " + TOKEN}
    status, body, _ = await admin.call("GET", "/keys", token=None, headers=basic)
    assert_error(status, body, 401, "missing_api_key")
    status, _, _ = await admin.call("GET", "/keys")
    assert status == 200


async def test_no_token_configured_turns_the_api_off(store: Store) -> None:
    async with serve_admin(store, token=None) as off:
        for path in ("/keys", "/openapi.json"):
            status, body, _ = await off.call("GET", path)
            assert_error(status, body, 403, "admin_api_disabled")
            assert "admin.token_env" in body["error"]["message"]
        assert await store.list_keys() == []


async def test_unknown_routes_and_methods_answer_json(admin: Admin) -> None:
    status, body, _ = await admin.call("GET", "/nope")
    assert_error(status, body, 404, "not_found")
    status, body, headers = await admin.call("DELETE", "/keys")
    assert_error(status, body, 405, "method_not_allowed")
    assert "GET" in headers["Allow"]


# -- keys ---------------------------------------------------------------------------------


async def test_key_crud(admin: Admin) -> None:
    status, created, headers = await admin.call(
        "POST",
        "/keys",
        json={
            "name": "mobile",
            "models": ["gpt-realtime"],
            "max_sessions": 2,
            "sessions_per_minute": 30,
            "budget_usd": "25.50",
            "expires_in": "30d",
            "origins": ["https://app.example"],
        },
    )
    assert status == 201, created
    assert headers["Cache-Control"] == "no-store"
    secret = created.pop("secret")
    assert re.fullmatch(rf"rk_{created['prefix']}_[A-Za-z0-9_-]{{32,}}", secret)
    assert created["object"] == "rtrelay.key" and created["status"] == "active"
    assert (created["name"], created["models"], created["origins"]) == (
        "mobile",
        ["gpt-realtime"],
        ["https://app.example"],
    )
    assert (created["max_sessions"], created["sessions_per_minute"]) == (2, 30)
    assert (created["budget_usd"], created["spent_usd"]) == ("25.5", "0")
    left = datetime.fromisoformat(created["expires_at"]) - datetime.now(UTC)
    assert timedelta(days=29) < left <= timedelta(days=30)
    found = await admin.store.find_key(secret)
    assert found is not None and found.id == created["id"]

    status, listing, _ = await admin.call("GET", "/keys")
    assert status == 200 and listing["object"] == "list"
    assert listing["data"] == [created]

    for ref in (created["id"], created["prefix"]):
        status, one, _ = await admin.call("GET", f"/keys/{ref}")
        assert (status, one) == (200, created)

    status, rotated, headers = await admin.call("POST", f"/keys/{created['id']}/rotate")
    assert status == 200 and headers["Cache-Control"] == "no-store"
    new_secret = rotated.pop("secret")
    assert new_secret != secret and rotated["id"] == created["id"]
    assert rotated["prefix"] != created["prefix"]

    status, revoked, _ = await admin.call("POST", f"/keys/{rotated['prefix']}/revoke")
    assert status == 200 and revoked["status"] == "revoked" and revoked["revoked_at"]
    later = datetime.now(UTC) + timedelta(seconds=1)
    for s in (secret, new_secret):
        record = await admin.store.find_key(s)
        assert record is not None and record.inactive_reason(later) == "revoked"

    status, body, _ = await admin.call("POST", f"/keys/{created['id']}/rotate")
    assert_error(status, body, 409, "key_revoked")

    # Secrets appear only in the create and rotate answers, never anywhere else.
    others = [b for b in admin.seen if '"secret"' not in b]
    assert len(others) == len(admin.seen) - 2
    assert not any(secret in b or new_secret in b for b in others)


async def test_unknown_keys_are_404(admin: Admin) -> None:
    for method, path in [
        ("GET", "/keys/key_nope"),
        ("GET", "/keys/zzzzzzzz"),
        ("POST", "/keys/key_nope/revoke"),
        ("POST", "/keys/key_nope/rotate"),
    ]:
        status, body, _ = await admin.call(method, path)
        assert_error(status, body, 404, "key_not_found")
        assert body["error"]["param"] == "key"


@pytest.mark.parametrize(
    ("body", "code", "param"),
    [
        ({}, "missing_required_parameter", "name"),
        ({"name": "  "}, "missing_required_parameter", "name"),
        ({"name": "n", "colour": "red"}, "unknown_parameter", "colour"),
        ({"name": "n", "max_sessions": "3"}, "invalid_value", "max_sessions"),
        ({"name": "n", "max_sessions": 0}, "invalid_value", "max_sessions"),
        ({"name": "n", "sessions_per_minute": True}, "invalid_value", "sessions_per_minute"),
        ({"name": "n", "budget_usd": "lots"}, "invalid_value", "budget_usd"),
        ({"name": "n", "budget_usd": -1}, "invalid_value", "budget_usd"),
        ({"name": "n", "models": "gpt-realtime"}, "invalid_type", "models"),
        ({"name": "n", "expires_at": "2001-01-01"}, "invalid_value", "expires_at"),
        ({"name": "n", "expires_in": "soon"}, "invalid_value", "expires_in"),
        ({"name": "n", "expires_in": "1d", "expires_at": "2099-01-01"}, "invalid_value", None),
    ],
)
async def test_create_key_validates_its_body(
    admin: Admin, body: dict[str, Any], code: str, param: str | None
) -> None:
    status, answer, _ = await admin.call("POST", "/keys", json=body)
    assert_error(status, answer, 400, code)
    if param is not None:
        assert answer["error"]["param"] == param
    assert await admin.store.list_keys() == []


async def test_create_key_refuses_non_json(admin: Admin) -> None:
    status, body, _ = await admin.call("POST", "/keys", data="name=x")
    assert_error(status, body, 400, "invalid_json")
    status, body, _ = await admin.call("POST", "/keys", json=["name"])
    assert_error(status, body, 400, "invalid_json")


async def test_budget_may_be_a_json_number(admin: Admin) -> None:
    status, created, _ = await admin.call("POST", "/keys", json={"name": "n", "budget_usd": 0.1})
    assert status == 201 and created["budget_usd"] == "0.1"


# -- usage and sessions -------------------------------------------------------------------


async def seed(store: Store) -> tuple[str, str]:
    a, b = await seed_usage(store)
    return a.id, b.id


async def test_usage_by_key_model_and_day_with_filters(admin: Admin) -> None:
    a, b = await seed(admin.store)
    status, body, _ = await admin.call("GET", "/usage")
    assert status == 200 and body["object"] == "list" and body["by"] == "key"
    rows = {r["group"]: r for r in body["data"]}
    assert rows[b]["cost_usd"] == "0.0069656" and rows[b]["name"] == "beta"
    assert rows[a]["responses"] == 2 and rows[a]["sessions"] == 2

    _, body, _ = await admin.call("GET", "/usage?by=model")
    assert {r["group"]: r["responses"] for r in body["data"]} == {
        "gpt-realtime": 2,
        "gpt-realtime-mini": 1,
    }
    _, body, _ = await admin.call("GET", "/usage?by=day")
    assert [(r["group"], r["responses"]) for r in body["data"]] == [
        ("2026-03-01", 1),
        ("2026-03-02", 2),
    ]
    key = await admin.store.get_key(a)
    assert key is not None
    query = f"/usage?by=model&key={key.prefix}&since=2026-03-02&until=2026-03-03"
    _, body, _ = await admin.call("GET", query)
    assert [(r["group"], r["cost_usd"]) for r in body["data"]] == [
        ("gpt-realtime-mini", str(PriceTable().cost("gpt-realtime-mini", EXAMPLE)))
    ]


async def test_usage_refuses_bad_parameters(admin: Admin) -> None:
    status, body, _ = await admin.call("GET", "/usage?by=week")
    assert_error(status, body, 400, "invalid_value")
    assert body["error"]["param"] == "by"
    status, body, _ = await admin.call("GET", "/usage?since=last-tuesday")
    assert_error(status, body, 400, "invalid_value")
    assert body["error"]["param"] == "since"
    status, body, _ = await admin.call("GET", "/usage?key=key_nope")
    assert_error(status, body, 404, "key_not_found")


async def test_sessions_live_and_past_with_this_relays_live_counters(store: Store) -> None:
    a, b = await seed(store)
    await store.open_sessions(
        [
            SessionStart(
                session_id="live1",
                key_id=b,
                key_prefix=None,
                model="gpt-realtime",
                channel="primary",
                started_at=T0 + timedelta(hours=4),
            )
        ]
    )
    for sid in ("s1", "s2", "s3"):
        await store.close_session(
            SessionEnd(
                session_id=sid,
                ended_at=T0 + timedelta(hours=5),
                status="completed",
                duration_s=3600.0,
            )
        )

    def live() -> list[dict[str, Any]]:
        return [{"id": "live1", "bytes_from_client": 123}]

    async with serve_admin(store, live=live) as admin:
        status, body, _ = await admin.call("GET", "/sessions")
        assert status == 200 and body["object"] == "list"
        assert [s["id"] for s in body["data"]] == ["live1", "s3", "s2", "s1"]
        first = body["data"][0]
        assert first["status"] == "live" and first["live"] == {
            "id": "live1",
            "bytes_from_client": 123,
        }
        assert "live" not in body["data"][1]
        assert body["data"][1]["cost_usd"] == "0.0069656" and body["data"][1]["responses"] == 1

        _, body, _ = await admin.call("GET", "/sessions?live=true")
        assert [s["id"] for s in body["data"]] == ["live1"]
        _, body, _ = await admin.call("GET", f"/sessions?key={a}")
        assert [s["id"] for s in body["data"]] == ["s2", "s1"]
        _, body, _ = await admin.call("GET", "/sessions?since=2026-03-02T01:30:00Z&limit=1")
        assert [s["id"] for s in body["data"]] == ["live1"]
        status, body, _ = await admin.call("GET", "/sessions?limit=0")
        assert_error(status, body, 400, "invalid_value")
        status, body, _ = await admin.call("GET", "/sessions?limit=ten")
        assert_error(status, body, 400, "invalid_value")


# -- OpenAPI and extension ----------------------------------------------------------------


def _routes(app: web.Application) -> set[tuple[str, str]]:
    out = set()
    for route in app.router.routes():
        if route.method == "HEAD":
            continue
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter")
        out.add((route.method.lower(), path.removeprefix(PREFIX)))  # mounted: prefixed
    return out


def _documented(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (method, path)
        for path, item in doc["paths"].items()
        for method in item
        if method in ("get", "post", "put", "patch", "delete")
    }


async def test_openapi_document_is_valid_and_matches_the_routes(admin: Admin) -> None:
    status, doc, _ = await admin.call("GET", "/openapi.json")
    assert status == 200
    assert doc["openapi"].startswith("3.1") and doc["servers"] == [{"url": PREFIX}]
    assert doc == openapi_document()
    assert _documented(doc) == _routes(admin.app)
    for item in doc["paths"].values():
        for method, op in item.items():
            if method != "parameters":
                assert {"200", "201"} & set(op["responses"]) and "401" in op["responses"]
    try:
        from openapi_spec_validator import validate
    except ImportError:  # structure checks above still hold
        refs = re.findall(r'"#/components/schemas/(\w+)"', str(doc).replace("'", '"'))
        assert refs and set(refs) <= set(doc["components"]["schemas"])
    else:
        validate(doc)


async def test_routes_added_later_are_protected_and_documented(store: Store) -> None:
    async def channels(request: web.Request) -> web.Response:
        assert request.app[STORE] is store
        return web.json_response({"object": "list", "data": []})

    def customize(app: web.Application) -> None:
        app.router.add_get("/channels", channels)
        app[OPENAPI]["paths"]["/channels"] = {
            "get": {"operationId": "listChannels", "responses": {"200": {"description": "ok"}}}
        }

    async with serve_admin(store, customize=customize) as admin:
        status, body, _ = await admin.call("GET", "/channels", token=None)
        assert_error(status, body, 401, "missing_api_key")
        status, body, _ = await admin.call("GET", "/channels")
        assert (status, body) == (200, {"object": "list", "data": []})
        _, doc, _ = await admin.call("GET", "/openapi.json")
        assert "/channels" in doc["paths"] and _documented(doc) == _routes(admin.app)
    assert "/channels" not in openapi_document()["paths"]  # the shared template is untouched


async def test_spent_usd_is_reported_per_key(admin: Admin) -> None:
    a, _ = await seed(admin.store)
    _, one, _ = await admin.call("GET", f"/keys/{a}")
    mini = PriceTable().cost("gpt-realtime-mini", EXAMPLE)
    assert mini is not None
    assert Decimal(one["spent_usd"]) == Decimal("0.0069656") + mini
