"""Fatal errors, refusals and injected faults, seen from a real client."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses

import aiohttp
import pytest
from mock_wire import events_until, expect_close, next_event, open_session, send_all, types

from rtrelay.cli import mock as cli_mock
from rtrelay.mock import MockOptions, MockProvider

FAST = MockOptions(realtime_pacing=0)


async def test_unknown_key_gets_an_error_then_close_3000(http: aiohttp.ClientSession) -> None:
    options = dataclasses.replace(FAST, api_keys=frozenset({"sk-right"}))
    async with MockProvider(options) as provider:
        ws = await open_session(http, provider, headers={"Authorization": "Bearer sk-wrong-123456"})
        events = await expect_close(ws, 3000, "invalid_request_error.invalid_api_key")
        ws = await open_session(http, provider, headers={})
        missing = await expect_close(ws, 3000, "invalid_request_error.invalid_api_key")
    assert types(events) == ["error"]
    error = events[0]["error"]
    assert error["code"] == "invalid_api_key"
    assert "sk-wrong-123456" not in error["message"]
    assert missing[0]["error"]["message"].startswith("You didn't provide an API key.")
    assert [h.accepted for h in provider.handshakes] == [True, True]  # refused after the 101
    assert provider.sessions[0].server_close_code == 3000


@pytest.mark.parametrize(
    ("headers", "protocols"),
    [
        ({"Authorization": "Bearer k", "OpenAI-Beta": "realtime=v1"}, ("realtime",)),
        ({}, ("realtime", "openai-insecure-api-key.k", "openai-beta.realtime-v1")),
    ],
)
async def test_ga_only_answers_beta_with_4000(
    headers: dict[str, str], protocols: tuple[str, ...], http: aiohttp.ClientSession
) -> None:
    async with MockProvider(dataclasses.replace(FAST, ga_only=True)) as provider:
        ws = await open_session(http, provider, headers=headers, protocols=protocols)
        events = await expect_close(ws, 4000, "invalid_request_error.beta_api_shape_disabled")
    assert events[0]["error"] == {
        "type": "invalid_request_error",
        "code": "beta_api_shape_disabled",
        "message": "The Realtime Beta API is no longer supported. "
        "Please use /v1/realtime for the GA API.",
        "param": None,
        "event_id": None,
    }


async def test_refused_handshake_keeps_status_and_openai_body(http: aiohttp.ClientSession) -> None:
    async with MockProvider(dataclasses.replace(FAST, refuse_status=401)) as provider:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await open_session(http, provider)
        assert refused.value.status == 401
        async with http.get(provider.http_url + "/v1/realtime?model=m") as response:
            assert response.status == 401
            assert response.headers["x-request-id"].startswith("req_")
            body = await response.json()
        provider.options = dataclasses.replace(FAST, refuse_status=503, refuse_body="overloaded")
        async with http.get(provider.http_url + "/v1/realtime") as response:
            assert response.status == 503
            assert await response.text() == "overloaded"
    assert body["error"]["code"] == "invalid_api_key"
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert [h.accepted for h in provider.handshakes] == [False, False, False]


async def test_stalled_handshake_times_out_the_client(http: aiohttp.ClientSession) -> None:
    async with MockProvider(dataclasses.replace(FAST, stall_handshake=1.0)) as provider:
        with pytest.raises(asyncio.TimeoutError):
            async with asyncio.timeout(0.2):
                await open_session(http, provider)
        assert len(provider.handshakes) == 1  # seen, never answered
        provider.options = FAST
        async with await open_session(http, provider) as ws:
            assert (await next_event(ws))["type"] == "session.created"
    assert [h.accepted for h in provider.handshakes] == [False, True]


async def test_drop_after_events_aborts_without_a_close_frame(http: aiohttp.ClientSession) -> None:
    async with MockProvider(dataclasses.replace(FAST, drop_after_events=4)) as provider:
        ws = await open_session(http, provider)
        await send_all(ws, [{"type": "response.create"}])
        received = []
        async with asyncio.timeout(10):
            while (message := await ws.receive()).type is aiohttp.WSMsgType.TEXT:
                received.append(message)
        assert message.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)
        assert ws.close_code == 1006
        await provider.wait_idle()
    assert len(received) == 4
    assert provider.sessions[0].server_close_code is None


async def test_close_after_events_mid_response(http: aiohttp.ClientSession) -> None:
    options = dataclasses.replace(FAST, close_after_events=8, close_code=4001, close_reason="bye")
    async with MockProvider(options) as provider:
        ws = await open_session(http, provider)
        await send_all(ws, [{"type": "response.create"}])
        events = await expect_close(ws, 4001, "bye")
        await provider.wait_idle()
    assert len(events) == 8
    assert types(events)[:2] == ["session.created", "response.created"]
    assert provider.sessions[0].events_sent == 8


async def test_close_after_zero_events_closes_right_after_the_upgrade(
    http: aiohttp.ClientSession,
) -> None:
    async with MockProvider(dataclasses.replace(FAST, close_after_events=0)) as provider:
        ws = await open_session(http, provider)
        assert await expect_close(ws, 1000) == []


async def test_malformed_frame_then_the_session_goes_on(http: aiohttp.ClientSession) -> None:
    async with MockProvider(dataclasses.replace(FAST, malformed_after_events=1)) as provider:
        async with await open_session(http, provider) as ws:
            assert (await next_event(ws))["type"] == "session.created"
            bad = await ws.receive(timeout=5)
            assert bad.type is aiohttp.WSMsgType.TEXT
            with pytest.raises(ValueError):  # noqa: PT011 - any JSON decode error
                bad.json()
            await send_all(ws, [{"type": "response.create"}])
            assert (await next_event(ws))["type"] == "response.created"


async def test_session_expiry_sends_session_expired_then_1001(http: aiohttp.ClientSession) -> None:
    async with MockProvider(dataclasses.replace(FAST, max_session_seconds=120)) as provider:
        provider.options = dataclasses.replace(FAST, max_session_seconds=0.3)
        ws = await open_session(http, provider)
        message = "Your session hit the maximum duration of 0.005 minutes."
        events = await expect_close(ws, 1001, message)
    assert types(events) == ["session.created", "error"]
    assert events[1]["error"]["code"] == "session_expired"
    assert events[1]["error"]["message"] == message


async def test_new_options_apply_to_new_sessions_only(http: aiohttp.ClientSession) -> None:
    async with MockProvider(FAST) as provider:
        first = await open_session(http, provider)
        assert "output_modalities" in (await next_event(first))["session"]
        provider.options = dataclasses.replace(FAST, dialect="beta")
        second = await open_session(http, provider)
        assert "modalities" in (await next_event(second))["session"]
        await send_all(first, [{"type": "response.create"}])
        assert "response.output_audio.delta" in types([await next_event(first) for _ in range(7)])
        await first.close()
        await second.close()
        await provider.wait_idle()
    assert [s.dialect for s in provider.sessions] == ["ga", "beta"]


async def test_stopping_the_provider_closes_open_sessions_with_1001(
    http: aiohttp.ClientSession,
) -> None:
    async with MockProvider(FAST) as provider:
        ws = await open_session(http, provider)
        await next_event(ws)
        assert provider.active_sessions == 1
    await expect_close(ws, 1001)
    assert provider.active_sessions == 0


async def test_repeat_event_sends_that_event_twice_with_the_same_ids(
    http: aiohttp.ClientSession,
) -> None:
    options = dataclasses.replace(FAST, repeat_event="response.done")
    async with MockProvider(options) as provider:
        async with await open_session(http, provider) as ws:
            assert (await next_event(ws))["type"] == "session.created"
            turns = []
            for _ in range(2):
                await send_all(ws, [{"type": "response.create"}])
                events = await events_until(ws, "response.done")
                turns.append((events, await next_event(ws)))
        await provider.wait_idle()
    for events, again in turns:
        assert types(events).count("response.done") == 1
        assert again == events[-1]  # the same frame: same event id, same response id
    first, second = (events[-1]["response"]["id"] for events, _ in turns)
    assert first != second
    assert provider.sessions[0].events_sent == 1 + sum(len(e) + 1 for e, _ in turns)


def test_repeat_event_has_a_command_line_flag() -> None:
    parser = argparse.ArgumentParser()
    cli_mock.register(parser.add_subparsers())
    args = parser.parse_args(["mock", "--repeat-event", "response.done"])
    assert cli_mock.options_from_args(args).repeat_event == "response.done"
    with pytest.raises(ValueError, match="repeat_event"):
        MockOptions(repeat_event=" ")
