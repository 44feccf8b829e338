"""Admission, metering and the ledger through the real relay and simulated provider."""

from __future__ import annotations

import asyncio
import base64
import logging
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from multidict import CIMultiDict
from openai import AsyncOpenAI

from rtrelay.ledger.keys import KeySpec
from rtrelay.ledger.prices import PriceTable, Usage
from rtrelay.mock import MockOptions, MockProvider, silence_pcm16, speech_pcm16
from support import (
    RunningRelay,
    mock_channel_settings,
    read_error_and_close,
    running_relay,
    upgrade_headers,
)

PROVIDER_KEY = "sk-test-provider-secret-0123456789"


@pytest.fixture
async def provider() -> AsyncIterator[MockProvider]:
    async with MockProvider(MockOptions(realtime_pacing=0, reply_audio_ms=600)) as p:
        yield p


@pytest.fixture
async def relay(provider: MockProvider) -> AsyncIterator[RunningRelay]:
    async with running_relay(mock_channel_settings(provider.url)) as r:
        yield r


async def make_key(relay: RunningRelay, **spec: object) -> str:
    _, secret = await relay.relay.parts.store.create_key(KeySpec(name="t", **spec))  # type: ignore[arg-type]
    return secret


async def refused(
    relay: RunningRelay, **headers: str
) -> tuple[int, CIMultiDict[str], dict[str, Any]]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(relay.realtime(), headers=upgrade_headers(**headers)) as resp,
    ):
        return resp.status, resp.headers.copy(), (await resp.json())["error"]


async def test_missing_and_unknown_keys_are_401(relay: RunningRelay) -> None:
    status, headers, error = await refused(relay)
    assert (status, error["code"]) == (401, "missing_api_key")
    assert headers["X-Request-Id"].startswith("req_")
    status, _, error = await refused(relay, Authorization="Bearer rk_nope_nope")
    assert (status, error["code"]) == (401, "invalid_api_key")


async def test_revoked_and_expired_keys_are_401(relay: RunningRelay) -> None:
    store = relay.relay.parts.store
    record, secret = await store.create_key(KeySpec(name="r"))
    await store.revoke_key(record.id)
    status, _, error = await refused(relay, Authorization=f"Bearer {secret}")
    assert (status, error["code"]) == (401, "invalid_api_key")
    expired = await make_key(relay, expires_at=datetime.now(UTC) - timedelta(seconds=1))
    status, _, error = await refused(relay, Authorization=f"Bearer {expired}")
    assert (status, error["code"]) == (401, "invalid_api_key")


async def test_model_not_allowed_is_403(relay: RunningRelay) -> None:
    key = await make_key(relay, models=("gpt-realtime-mini",))
    status, _, error = await refused(relay, Authorization=f"Bearer {key}")
    assert (status, error["code"]) == (403, "model_not_allowed")


async def test_origin_not_allowed_is_event_4403_for_a_browser(relay: RunningRelay) -> None:
    key = await make_key(relay, origins=("https://app.example",))
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(
            relay.realtime(),
            protocols=("realtime", f"openai-insecure-api-key.{key}"),
            origin="https://evil.example",
        ) as ws,
    ):
        error, code, reason = await read_error_and_close(ws)
    assert error is not None
    assert error["error"]["code"] == "origin_not_allowed"
    assert (code, reason) == (4403, "invalid_request_error.origin_not_allowed")


async def test_concurrency_lease_is_released_when_the_session_ends(
    relay: RunningRelay, provider: MockProvider
) -> None:
    key = await make_key(relay, max_sessions=1)
    auth = {"Authorization": f"Bearer {key}"}
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(relay.realtime(), headers=auth) as ws:
            await ws.receive()
            status, headers, error = await refused(relay, **auth)
            assert (status, error["code"]) == (429, "concurrency_limit_exceeded")
            assert "Retry-After" in headers
        await _until(lambda: not relay.relay.sessions)
        async with http.ws_connect(relay.realtime(), headers=auth) as ws:
            assert (await ws.receive()).type is aiohttp.WSMsgType.TEXT
            # a provider drop ends the session; the lease goes back too
            provider.options = MockOptions(realtime_pacing=0, drop_after_events=1)
        async with http.ws_connect(relay.realtime(), headers=auth) as ws:
            error_event, code, _ = await read_error_and_close(ws)
            assert error_event is not None
            assert (error_event["error"]["code"], code) == ("upstream_disconnected", 1011)
        await _until(lambda: not relay.relay.sessions)
        provider.options = MockOptions(realtime_pacing=0)
        async with http.ws_connect(relay.realtime(), headers=auth) as ws:
            assert (await ws.receive()).type is aiohttp.WSMsgType.TEXT


async def test_session_start_rate_limit_is_429_with_retry_after(relay: RunningRelay) -> None:
    key = await make_key(relay, sessions_per_minute=2)
    auth = {"Authorization": f"Bearer {key}"}
    async with aiohttp.ClientSession() as http:
        for _ in range(2):
            async with http.ws_connect(relay.realtime(), headers=auth) as ws:
                await ws.receive()
    status, headers, error = await refused(relay, **auth)
    assert (status, error["code"]) == (429, "rate_limit_exceeded")
    assert 1 <= int(headers["Retry-After"]) <= 60


async def test_spent_budget_is_refused_at_connect(relay: RunningRelay) -> None:
    key = await make_key(relay, budget_usd=Decimal(0))
    status, _, error = await refused(relay, Authorization=f"Bearer {key}")
    assert (status, error["code"]) == (429, "insufficient_quota")


async def test_refusals_are_recorded_as_refused_attempts(relay: RunningRelay) -> None:
    await refused(relay)
    await refused(relay, Authorization="Bearer rk_bad_key")
    await relay.relay.parts.writer.flush()
    rows = await relay.relay.parts.store.refusals()
    assert sorted(r.error_code for r in rows) == ["invalid_api_key", "missing_api_key"]
    assert all(r.http_status == 401 for r in rows)
    assert await relay.relay.parts.store.sessions() == []  # never a $0 "session"


async def test_sdk_audio_and_text_turns_are_metered_exactly(
    relay: RunningRelay, provider: MockProvider
) -> None:
    key = await make_key(relay)
    client = AsyncOpenAI(api_key=key, websocket_base_url=relay.ws_url + "/v1")
    done = []
    async with client.realtime.connect(model="gpt-realtime") as conn:
        assert (await conn.recv()).type == "session.created"
        await conn.session.update(session={"type": "realtime", "output_modalities": ["audio"]})
        audio = speech_pcm16(800) + silence_pcm16(800)
        for i in range(0, len(audio), 4800):
            await conn.input_audio_buffer.append(
                audio=base64.b64encode(audio[i : i + 4800]).decode()
            )
        deltas = 0
        async for event in conn:
            if event.type == "response.output_audio.delta":
                deltas += 1
            if event.type == "response.done":
                done.append(event.response)
                break
        assert deltas > 0
        await conn.session.update(session={"type": "realtime", "output_modalities": ["text"]})
        await conn.conversation.item.create(
            item={
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "And in text, please."}],
            }
        )
        await conn.response.create()
        async for event in conn:
            if event.type == "response.done":
                done.append(event.response)
                break
    await _until(lambda: not relay.relay.sessions)
    await relay.relay.parts.writer.flush()
    store = relay.relay.parts.store
    [session] = await store.sessions()
    assert session.status == "completed"
    rows = await store.usage(by="model")
    assert len(rows) == 1
    prices = PriceTable()
    usages = [Usage.from_response_done(r.model_dump()) for r in done]
    expected = sum((prices.cost("gpt-realtime", u) or Decimal(0) for u in usages), Decimal(0))
    row = rows[0]
    assert row.responses == 2
    assert row.cost_usd == expected
    assert expected > 0
    assert row.unpriced == 0
    for field in ("input_text", "input_audio", "cached_text", "output_text", "output_audio"):
        assert getattr(row, field) == sum(getattr(u, field) for u in usages), field
    assert row.input_audio > 0
    assert row.output_audio > 0


async def test_budget_crossed_mid_session_closes_4429_right_after_that_response(
    relay: RunningRelay, provider: MockProvider
) -> None:
    key = await make_key(relay, budget_usd=Decimal("0.000001"))
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(relay.realtime(), headers={"Authorization": f"Bearer {key}"}) as ws,
    ):
        await ws.receive()
        await ws.send_json({"type": "response.create"})
        while (await ws.receive_json()).get("type") != "response.done":
            pass
        error, code, reason = await read_error_and_close(ws)
    assert error is not None
    assert error["error"]["code"] == "insufficient_quota"
    assert (code, reason) == (4429, "insufficient_quota.insufficient_quota")


async def test_budget_spent_by_another_session_closes_this_one_4429(
    relay: RunningRelay, provider: MockProvider
) -> None:
    key = await make_key(relay, budget_usd=Decimal("0.000001"))
    auth = {"Authorization": f"Bearer {key}"}
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(relay.realtime(), headers=auth) as idle,
        http.ws_connect(relay.realtime(), headers=auth) as spender,
    ):
        await idle.receive()
        await spender.receive()
        await spender.send_json({"type": "response.create"})
        while (await spender.receive_json()).get("type") != "response.done":
            pass
        # The idle session sent nothing: the relay closes it as soon as it sees the spend.
        error, code, reason = await read_error_and_close(idle)
    assert error is not None
    assert error["error"]["code"] == "insufficient_quota"
    assert (code, reason) == (4429, "insufficient_quota.insufficient_quota")
    creates = [e for e in provider.events_received if e.get("type") == "response.create"]
    assert len(creates) == 1


async def test_client_token_admits_a_browser_and_is_bound_to_its_model(
    relay: RunningRelay,
) -> None:
    key = await make_key(relay)
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{relay.url}/v1/realtime/client_secrets",
            headers={"Authorization": f"Bearer {key}"},
            json={"session": {"type": "realtime", "model": "gpt-realtime"}},
        ) as resp:
            assert resp.status == 200
            body = await resp.json()
        token = body["value"]
        assert token.startswith("ek_")
        assert body["session"]["model"] == "gpt-realtime"
        async with http.ws_connect(
            relay.realtime(), protocols=("realtime", f"openai-insecure-api-key.{token}")
        ) as ws:
            assert ws.protocol == "realtime"
            assert (await ws.receive_json())["type"] == "session.created"
        async with http.ws_connect(
            relay.realtime("gpt-realtime-mini"),
            protocols=("realtime", f"openai-insecure-api-key.{token}"),
        ) as ws:
            error, code, _ = await read_error_and_close(ws)
        assert error is not None
        assert (error["error"]["code"], code) == ("model_not_allowed", 4403)
        async with http.post(
            f"{relay.url}/v1/realtime/sessions",
            headers={"Authorization": f"Bearer {key}"},
            json={"model": "gpt-realtime"},
        ) as resp:
            beta = await resp.json()
        assert beta["client_secret"]["value"].startswith("ek_")


async def test_no_secret_reaches_logs_database_or_responses(
    provider: MockProvider, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    db = tmp_path / "relay.db"
    settings = mock_channel_settings(provider.url, store={"url": f"sqlite+aiosqlite:///{db}"})
    seen: list[str] = []
    async with running_relay(settings) as relay:
        key = await make_key(relay)
        async with aiohttp.ClientSession() as http:
            async with http.ws_connect(
                relay.realtime(), protocols=("realtime", f"openai-insecure-api-key.{key}")
            ) as ws:
                seen.append(str(ws._response.headers))  # what the relay echoed
                await ws.send_json({"type": "response.create"})
                while (msg := await ws.receive()).type is aiohttp.WSMsgType.TEXT:
                    seen.append(msg.data)
                    if '"response.done"' in msg.data:
                        break
            async with http.get(
                relay.realtime(), headers=upgrade_headers(Authorization=f"Bearer {key}x")
            ) as resp:
                seen.append(await resp.text())
        await relay.relay.parts.writer.flush()
    logs = caplog.text + "".join(str(r.__dict__) for r in caplog.records)
    database = (
        db.read_bytes() + (tmp_path / "relay.db-wal").read_bytes()
        if (tmp_path / "relay.db-wal").exists()
        else db.read_bytes()
    )
    for secret in (key, PROVIDER_KEY):
        assert secret not in logs
        assert secret.encode() not in database
        assert all(secret not in s for s in seen)
    assert provider.handshakes[0].headers["Authorization"] == f"Bearer {PROVIDER_KEY}"


async def _until(predicate, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


async def test_sdk_beta_client_gets_the_beta_shape_through_the_relay(
    relay: RunningRelay, provider: MockProvider
) -> None:
    key = await make_key(relay)
    client = AsyncOpenAI(api_key=key, websocket_base_url=relay.ws_url + "/v1")
    async with client.beta.realtime.connect(model="gpt-realtime") as conn:
        assert (await conn.recv()).type == "session.created"
        await conn.session.update(session={"modalities": ["text", "audio"]})
        audio = speech_pcm16(600) + silence_pcm16(800)
        for i in range(0, len(audio), 4800):
            chunk = base64.b64encode(audio[i : i + 4800]).decode()
            await conn.input_audio_buffer.append(audio=chunk)
        types = []
        async for event in conn:
            types.append(event.type)
            if event.type == "response.done":
                usage = event.response.usage
                break
    assert "conversation.item.created" in types  # beta names, not GA's item.added
    assert "response.audio.delta" in types
    assert usage is not None
    assert usage.output_tokens > 0
    assert provider.handshakes[-1].headers["OpenAI-Beta"] == "realtime=v1"


async def test_a_failing_dependency_is_a_json_503_with_details_only_in_the_log(
    provider: MockProvider, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as s:  # Redis "configured" on a port where nothing listens
        s.bind(("127.0.0.1", 0))
        dead_redis = f"redis://:hunter2-secret@127.0.0.1:{s.getsockname()[1]}/0"
    settings = mock_channel_settings(provider.url, redis={"url": dead_redis})
    async with running_relay(settings) as relay:
        key = await make_key(relay, max_sessions=2)
        status, _, error = await refused(relay, Authorization=f"Bearer {key}")
        async with aiohttp.ClientSession() as http, http.get(f"{relay.url}/healthz") as resp:
            assert resp.status == 200
    # [redis] on_error = "closed" (the default); tests/gate/test_limits_outage_functional.py
    assert (status, error["code"], error["type"]) == (503, "limits_unavailable", "server_error")
    assert "redis" not in error["message"].lower()  # details stay in the log
    assert "Redis unreachable" in caplog.text and "hunter2" not in caplog.text
    assert relay.relay.sessions == {}


async def test_a_refusal_after_authentication_is_recorded_against_the_key(
    relay: RunningRelay,
) -> None:
    record, key = await relay.relay.parts.store.create_key(
        KeySpec(name="narrow", models=("gpt-realtime-mini",))
    )
    status, _, _ = await refused(relay, Authorization=f"Bearer {key}")
    assert status == 403
    await relay.relay.parts.writer.flush()
    [refusal] = await relay.relay.parts.store.refusals(key_id=record.id)
    assert (refusal.error_code, refusal.key_prefix) == ("model_not_allowed", record.prefix)
