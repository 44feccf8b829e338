"""GPT-Live through rtrelay: the official SDK as the client, the real simulated provider.

What is checked is what a team adopting GPT-Live relies on: the session runs through the
relay untouched, every second the provider reports is in the ledger once, a budget holds
mid-session, and every refusal says why (before the 101 as HTTP, after it in the Live
protocol's own ``error`` event and a close code from DESIGN's table).
"""

from __future__ import annotations

import asyncio
import base64
from decimal import Decimal
from typing import Any

import aiohttp
import orjson
import pytest
from live_rig import (
    CHUNK,
    START,
    live_settings,
    new_key,
    sdk,
    session_rows,
    settled,
    speak,
    usage_rows,
)

from rtrelay.mock import MockOptions, MockProvider, silence_pcm16, speech_pcm16
from support import read_error_and_close, running_relay, upgrade_headers


async def test_a_live_session_through_the_relay_is_metered_by_the_second(
    provider: MockProvider,
) -> None:
    async with running_relay(live_settings(provider)) as relay:
        key = await new_key(relay)
        async with sdk(relay, key).live.connect() as connection:
            await connection.session.start(session=START)
            started = await connection.recv()
            assert started.type == "session.started"
            assert started.session.model == "gpt-live-1"
            await speak(connection, silence_pcm16(300) + speech_pcm16(1000) + silence_pcm16(800))
            seen: list[Any] = []
            async with asyncio.timeout(20):
                while not (
                    seen
                    and seen[-1].type == "session.usage.updated"
                    and seen[-1].usage.seconds >= 3.1
                ):
                    seen.append(await connection.recv())
            await connection.session.close()
            closed = await connection.recv()
            assert closed.type == "session.closed"
        await settled(relay)
        rows = usage_rows(relay)
    kinds = {e.type for e in seen}
    assert {"session.output_audio.delta", "session.usage.updated"} <= kinds
    # The provider's session.start is the client's frame, byte-for-byte, not a rewrite.
    first = provider.events_received[0]
    assert first["type"] == "session.start"
    assert first["session"] == START
    # Every reported second billed once, in seconds, priced: the rows add up to the last
    # cumulative report.
    assert rows and {unit for _, unit, _, _ in rows} == {"seconds"}
    billed = sum(seconds for _, _, seconds, _ in rows)
    assert billed == pytest.approx(Decimal(str(closed.usage.seconds)), abs=Decimal("0.001"))
    assert all(cost is not None and cost > 0 for _, _, _, cost in rows)
    assert session_rows(relay) == [("gpt-live-1", None)]


@pytest.mark.parametrize("fault", ["repeat_usage", "reorder_usage"])
async def test_a_repeated_or_reordered_usage_report_bills_once(
    provider: MockProvider, fault: str
) -> None:
    provider.options = MockOptions(realtime_pacing=0, live_usage_interval=0.3, **{fault: True})
    async with running_relay(live_settings(provider)) as relay:
        key = await new_key(relay)
        async with sdk(relay, key).live.connect() as connection:
            await connection.session.start(session=START)
            await connection.recv()
            await speak(connection, speech_pcm16(600) + silence_pcm16(800))
            reports: list[float] = []
            async with asyncio.timeout(20):
                while len(reports) < 6:
                    event = await connection.recv()
                    if event.type == "session.usage.updated":
                        reports.append(event.usage.seconds)
            await connection.session.close()
            closed = await connection.recv()
        await settled(relay)
        rows = usage_rows(relay)
    # The client saw the provider's frames as sent: the fault is in what it reported.
    assert len(reports) != len(set(reports)) or reports != sorted(reports)
    billed = sum(seconds for _, _, seconds, _ in rows)
    assert billed == pytest.approx(Decimal(str(closed.usage.seconds)), abs=Decimal("0.001"))
    refs = [ref for ref, _, _, _ in rows]
    assert len(refs) == len(set(refs))


async def test_a_budget_spent_mid_session_closes_it_4429_and_closes_the_provider_session(
    provider: MockProvider,
) -> None:
    async with running_relay(live_settings(provider)) as relay:
        key = await new_key(relay, budget_usd=Decimal("0.000001"))
        async with aiohttp.ClientSession() as http:
            async with http.ws_connect(
                f"{relay.ws_url}/v1/live/sessions", headers={"Authorization": f"Bearer {key}"}
            ) as ws:
                await ws.send_json({"type": "session.start", "session": START})
                started = orjson.loads((await ws.receive(timeout=10)).data)
                assert started["type"] == "session.started"
                pcm = speech_pcm16(600) + silence_pcm16(800)
                for i in range(0, len(pcm), CHUNK):
                    chunk = base64.b64encode(pcm[i : i + CHUNK]).decode()
                    await ws.send_json({"type": "session.input_audio.append", "audio": chunk})
                error, code, reason = await read_error_and_close(ws)
        await settled(relay)
        rows = usage_rows(relay)
        [(_, error_code)] = session_rows(relay)
    assert error is not None
    assert error["error"]["code"] == "insufficient_quota"
    assert "client_event_id" in error["error"]  # the Live shape, not the Realtime one
    assert (code, reason) == (4429, "insufficient_quota.insufficient_quota")
    assert error_code == "insufficient_quota"
    assert rows  # what crossed the budget was billed
    # The provider session was ended cleanly, not just its socket.
    assert [e["type"] for e in provider.events_received][-1] == "session.close"


async def test_no_session_start_in_time_is_refused_after_the_101(
    provider: MockProvider,
) -> None:
    settings = live_settings(provider, timeouts={"session_start": 0.3})
    async with running_relay(settings) as relay, aiohttp.ClientSession() as http:
        key = await new_key(relay)
        async with http.ws_connect(
            f"{relay.ws_url}/v1/live/sessions", headers={"Authorization": f"Bearer {key}"}
        ) as ws:
            error, code, reason = await read_error_and_close(ws)
    assert error is not None and error["error"]["code"] == "session_start_timeout"
    assert (code, reason) == (4400, "invalid_request_error.session_start_timeout")
    assert provider.handshakes == []  # nothing was dialed


@pytest.mark.parametrize(
    ("start", "key_models", "code", "close"),
    [
        ({"model": "gpt-live-1"}, ["gpt-realtime"], "model_not_allowed", 4403),
        ({"model": "gpt-realtime"}, None, "wrong_protocol_route", 4400),
        ({"model": "gpt-live-9"}, None, "model_not_found", 4404),
        ({}, None, "missing_model", 4400),
    ],
)
async def test_a_session_start_the_relay_cannot_admit_is_refused_in_the_live_shape(
    provider: MockProvider,
    start: dict[str, Any],
    key_models: list[str] | None,
    code: str,
    close: int,
) -> None:
    async with running_relay(live_settings(provider)) as relay, aiohttp.ClientSession() as http:
        key = await new_key(relay, models=key_models)
        async with http.ws_connect(
            f"{relay.ws_url}/v1/live/sessions", headers={"Authorization": f"Bearer {key}"}
        ) as ws:
            await ws.send_json({"type": "session.start", "event_id": "evt_s", "session": start})
            error, got, _ = await read_error_and_close(ws)
    assert error is not None
    assert error["error"]["code"] == code
    assert error["client_event_id"] == error["error"]["client_event_id"] == "evt_s"
    assert got == close
    assert provider.handshakes == []  # refused before any dial
    if code == "wrong_protocol_route":
        assert "/v1/realtime?model=" in error["error"]["message"]


async def test_what_can_be_refused_before_the_101_is_http(provider: MockProvider) -> None:
    async with running_relay(live_settings(provider)) as relay, aiohttp.ClientSession() as http:
        key = await new_key(relay, models=["gpt-realtime"])
        url = f"{relay.url}/v1/live/sessions"
        cases = [
            ({}, "missing_api_key", 401),
            ({"Authorization": "Bearer sk-wrong"}, "invalid_api_key", 401),
        ]
        for headers, code, status in cases:
            async with http.get(url, headers=upgrade_headers(**headers)) as resp:
                assert (resp.status, (await resp.json())["error"]["code"]) == (status, code)
        auth = {"Authorization": f"Bearer {key}"}
        async with http.get(url + "?model=gpt-live-1", headers=upgrade_headers(**auth)) as resp:
            assert resp.status == 403
            assert (await resp.json())["error"]["code"] == "model_not_allowed"
        # A Live model on the Realtime route: told where to go, before any dial.
        anyone = {"Authorization": f"Bearer {await new_key(relay)}"}
        async with http.get(
            f"{relay.url}/v1/realtime?model=gpt-live-1", headers=upgrade_headers(**anyone)
        ) as resp:
            body = await resp.json()
            assert (resp.status, body["error"]["code"]) == (400, "wrong_protocol_route")
            assert "/v1/live/sessions" in body["error"]["message"]
    assert provider.handshakes == []


async def test_a_provider_refusal_keeps_its_status_and_body(provider: MockProvider) -> None:
    provider.options = MockOptions(
        refuse_status=429, refuse_body='{"error":{"code":"rate_limit_exceeded","message":"slow"}}'
    )
    async with running_relay(live_settings(provider)) as relay, aiohttp.ClientSession() as http:
        key = await new_key(relay)
        async with http.ws_connect(
            f"{relay.ws_url}/v1/live/sessions", headers={"Authorization": f"Bearer {key}"}
        ) as ws:
            await ws.send_json({"type": "session.start", "session": START})
            error, code, _ = await read_error_and_close(ws)
    assert error is not None and error["error"]["code"] == "upstream_rejected"
    assert "429" in error["error"]["message"] and "slow" in error["error"]["message"]
    assert code == 4502


async def test_a_browser_refused_before_the_101_reads_the_live_error_event(
    provider: MockProvider,
) -> None:
    async with running_relay(live_settings(provider)) as relay, aiohttp.ClientSession() as http:
        async with http.ws_connect(
            f"{relay.ws_url}/v1/live/sessions",
            protocols=("realtime", "openai-insecure-api-key.sk-wrong"),
            headers={"Origin": "http://127.0.0.1"},
        ) as ws:
            error, code, reason = await read_error_and_close(ws)
    assert error is not None and error["error"]["code"] == "invalid_api_key"
    assert "client_event_id" in error and "client_event_id" in error["error"]
    assert (code, reason) == (4401, "invalid_request_error.invalid_api_key")


async def test_a_first_frame_over_the_size_limit_is_refused_in_the_live_shape(
    provider: MockProvider,
) -> None:
    settings = live_settings(provider, limits={"max_frame_bytes": 4096})
    async with running_relay(settings) as relay, aiohttp.ClientSession() as http:
        key = await new_key(relay)
        async with http.ws_connect(
            f"{relay.ws_url}/v1/live/sessions", headers={"Authorization": f"Bearer {key}"}
        ) as ws:
            start = {"type": "session.start", "session": {**START, "instructions": "x" * 8192}}
            await ws.send_json(start)
            error, code, _ = await read_error_and_close(ws)
    assert error is not None and error["error"]["code"] == "message_too_large"
    assert "client_event_id" in error  # the Live shape
    assert code == 1009
    assert provider.handshakes == []  # nothing was dialed
