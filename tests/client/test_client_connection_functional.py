"""RealtimeConnection against real sockets: queueing, closing in every state, auth forms,
reconnection after a restart or a drop, and what never leaks (keys, tasks, errors)."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest
from aiohttp import web
from client_servers import Served, drain, websocket_server

from conftest import Endpoint, LoopWatch
from rtrelay.client import (
    ConnectionClosed,
    ConnectionState,
    InvalidStateError,
    NetworkError,
    QueueFullError,
    RealtimeConnection,
    RealtimeError,
    UpstreamError,
)
from rtrelay.mock import MockOptions, MockProvider

pytestmark = pytest.mark.timeout(30)

SECRET = "sk-very-secret-key-0123456789"


async def until(condition: Any, timeout: float = 5.0) -> None:
    """Poll ``condition()`` until true; generous bound, no timing assert."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


async def test_sends_before_open_are_queued_and_flushed_in_order(loop_watch: LoopWatch) -> None:
    async with websocket_server() as served:
        conn = RealtimeConnection(served.base_url, start_closed=True)
        async with conn:
            assert conn.state is ConnectionState.CLOSED
            await conn.send({"type": "one"})
            await conn.send('{"type": "two"}')
            await conn.send(b'{"type": "three"}')
            assert conn.enqueued == 3
            assert served.attempts == 0  # start_closed: nothing dialled yet
            await conn.connect()
            assert conn.state is ConnectionState.OPEN
            await conn.send({"type": "four"})
            await until(lambda: len(served.received) == 4)
        assert [e["type"] for e in served.received] == ["one", "two", "three", "four"]


async def test_the_send_queue_is_bounded(loop_watch: LoopWatch) -> None:
    conn = RealtimeConnection("ws://127.0.0.1:9/v1", start_closed=True, max_enqueued_messages=2)
    await conn.send({"type": "a"})
    await conn.send({"type": "b"})
    with pytest.raises(QueueFullError, match="max_enqueued_messages"):
        await conn.send({"type": "c"})
    assert conn.enqueued == 2
    await conn.close()


async def test_close_in_every_state_is_safe_and_idempotent(loop_watch: LoopWatch) -> None:
    # Never started.
    never = RealtimeConnection("ws://127.0.0.1:9/v1")
    await never.close()
    await never.close()
    assert never.state is ConnectionState.CLOSED
    with pytest.raises(InvalidStateError):
        await never.send({"type": "x"})
    with pytest.raises(InvalidStateError):
        await never.connect()

    async with websocket_server() as served:
        # Open: the close frame carries our code and reason.
        states: list[ConnectionState] = []
        conn = RealtimeConnection(served.base_url, on_state=states.append)
        await conn.connect()
        await conn.close(4000, "done here")
        await conn.close()
        await until(lambda: served.closes)
        assert served.closes == [(4000, "done here")]
        assert states == [
            ConnectionState.CONNECTING,
            ConnectionState.OPEN,
            ConnectionState.CLOSING,
            ConnectionState.CLOSED,
        ]
        assert conn.close_code == 4000

        # Closing: concurrent closes all return once closed.
        conn = RealtimeConnection(served.base_url)
        await conn.connect()
        await asyncio.gather(conn.close(), conn.close(), conn.close())
        assert conn.state is ConnectionState.CLOSED

        # Inside `async with`, then again after it.
        async with RealtimeConnection(served.base_url) as conn:
            await conn.close()
        await conn.close()


async def test_close_rejects_codes_an_endpoint_may_not_send(loop_watch: LoopWatch) -> None:
    conn = RealtimeConnection("ws://127.0.0.1:9/v1")
    with pytest.raises(ValueError, match="1006"):
        await conn.close(1006)
    await conn.close()


async def test_after_close_recv_reports_the_end_and_iteration_stops(loop_watch: LoopWatch) -> None:
    async with websocket_server() as served:
        conn = RealtimeConnection(served.base_url)
        async with conn:
            first = await conn.recv()
            assert first["type"] == "session.created"
            reader = asyncio.create_task(conn.recv())
            await asyncio.sleep(0.05)
            await conn.close()
            with pytest.raises(ConnectionClosed):
                await reader
        assert [event async for event in conn] == []
        with pytest.raises(ConnectionClosed):
            await conn.recv()


@pytest.mark.parametrize(
    ("options", "header", "protocols"),
    [
        ({}, ("Authorization", f"Bearer {SECRET}"), []),
        ({"azure": True}, ("api-key", SECRET), []),
        ({"beta": True}, ("OpenAI-Beta", "realtime=v1"), []),
        ({"auth": "subprotocol"}, None, ["realtime", f"openai-insecure-api-key.{SECRET}"]),
        (
            {"auth": "subprotocol", "beta": True},
            None,
            ["realtime", f"openai-insecure-api-key.{SECRET}", "openai-beta.realtime-v1"],
        ),
    ],
    ids=["bearer", "azure", "beta-header", "subprotocol", "subprotocol-beta"],
)
async def test_credential_forms(
    options: dict[str, Any],
    header: tuple[str, str] | None,
    protocols: list[str],
    loop_watch: LoopWatch,
) -> None:
    async with websocket_server() as served:
        async with RealtimeConnection(
            served.base_url, api_key=SECRET, model="gpt-realtime", **options
        ) as conn:
            assert conn.subprotocol == ("realtime" if protocols else None)
            assert conn.request_id == "req_test"
        seen = served.headers[0]
        if header is not None:
            assert seen.get(header[0]) == header[1]
        if options.get("auth") == "subprotocol":
            assert "Authorization" not in seen
        assert served.protocols[0] == protocols
        assert seen["User-Agent"].startswith("rtrelay-client/")


async def test_the_key_never_appears_in_logs_reprs_or_errors(
    loop_watch: LoopWatch, caplog: pytest.LogCaptureFixture
) -> None:
    errors: list[RealtimeError] = []
    with caplog.at_level(logging.DEBUG):
        async with websocket_server() as served:
            conn = RealtimeConnection(
                served.base_url, api_key=SECRET, auth="subprotocol", on_error=errors.append
            )
            async with conn:
                assert SECRET not in repr(conn)
            port = served.port
        # The server is gone: the failures are logged and reported.
        conn = RealtimeConnection(
            f"ws://127.0.0.1:{port}/v1",
            api_key=SECRET,
            max_retries=1,
            min_reconnection_delay=0,
            on_error=errors.append,
        )
        with pytest.raises(NetworkError) as info:
            await conn.connect()
        await conn.close()
    assert errors
    text = caplog.text + "".join(f"{e!s}{e!r}" for e in errors) + str(info.value)
    assert SECRET not in text
    with pytest.raises(ValueError, match="subprotocol") as bad:
        RealtimeConnection("ws://x/v1", api_key="sk bad key", auth="subprotocol")
    assert "sk bad key" not in str(bad.value)


async def test_non_json_frames_are_reported_and_skipped(loop_watch: LoopWatch) -> None:
    async def session(ws: web.WebSocketResponse, served: Served) -> None:
        await ws.send_str("not json")
        await ws.send_str("[1, 2]")
        await ws.send_str(json.dumps({"type": "session.created"}))
        await ws.close()

    errors: list[RealtimeError] = []
    async with websocket_server(session) as served:
        received = await drain(RealtimeConnection(served.base_url, on_error=errors.append))
    assert [e["type"] for e in received] == ["session.created"]
    assert len(errors) == 2


async def test_a_slow_reader_loses_nothing(loop_watch: LoopWatch) -> None:
    async def session(ws: web.WebSocketResponse, served: Served) -> None:
        for n in range(300):
            await ws.send_str(json.dumps({"type": "tick", "n": n}))
        await ws.close()

    async with websocket_server(session) as served:
        conn = RealtimeConnection(served.base_url, max_queued_events=4)
        received = await drain(conn)
    assert [e["n"] for e in received] == list(range(300))


async def test_a_server_that_stops_answering_pings_is_detected(loop_watch: LoopWatch) -> None:
    release = asyncio.Event()

    async def session(ws: web.WebSocketResponse, served: Served) -> None:
        await ws.send_str(json.dumps({"type": "session.created"}))
        await release.wait()  # never reads, so never answers a ping

    async with websocket_server(session) as served:
        conn = RealtimeConnection(served.base_url, heartbeat=0.2, max_retries=0)
        with pytest.raises(NetworkError, match="ping"):
            await drain(conn)
        release.set()


async def test_reconnect_after_the_endpoint_restarts_on_the_same_port(
    loop_watch: LoopWatch,
) -> None:
    options = MockOptions(realtime_pacing=0)
    first = MockProvider(options)
    await first.start()
    port = first.port
    second = MockProvider(options, port=port)
    states: list[ConnectionState] = []
    conn = RealtimeConnection(
        first.url,
        api_key=SECRET,
        model="gpt-realtime",
        max_retries=None,
        min_reconnection_delay=0.05,
        max_reconnection_delay=0.2,
        on_state=states.append,
    )
    try:
        async with conn:
            update = {
                "type": "session.update",
                "session": {"type": "realtime", "instructions": "Be brief."},
            }
            await conn.send(update)
            events = [await conn.recv(), await conn.recv()]
            assert [e["type"] for e in events] == ["session.created", "session.updated"]

            await first.close()  # the mock says 1001 "server shutting down" and goes away
            await until(lambda: conn.state is ConnectionState.CONNECTING)
            texts = ["one", "two", "three"]
            for text in texts:
                await conn.send(_user_text(text))
            assert conn.enqueued == 3

            await second.start()
            seen: list[dict[str, Any]] = []
            async with asyncio.timeout(10):
                while len([e for e in seen if e["type"] == "conversation.item.added"]) < 3:
                    seen.append(await conn.recv())
    finally:
        await first.close()
        await second.close()
    assert conn.reconnects == 1
    reconnected = [e for e in seen if e["type"] == "reconnected"]
    assert reconnected == [
        {
            "type": "reconnected",
            "reconnects": 1,
            "retries": reconnected[0]["retries"],
            "session_update_resent": True,
        }
    ]
    assert reconnected[0]["retries"] >= 1
    # The new provider session got the last session.update first, then the queue in order.
    received = second.events_received
    assert received[0] == update
    assert [e["item"]["content"][0]["text"] for e in received[1:4]] == texts
    assert ConnectionState.OPEN in states[states.index(ConnectionState.CONNECTING, 2) :]


async def test_reconnect_after_a_dropped_tcp_connection(
    loop_watch: LoopWatch, endpoint: Endpoint
) -> None:
    endpoint.provider.options = MockOptions(realtime_pacing=0, drop_after_events=2)
    errors: list[RealtimeError] = []
    conn = RealtimeConnection(
        endpoint.url,
        api_key=endpoint.api_key,
        model="gpt-realtime",
        min_reconnection_delay=0.01,
        max_reconnection_delay=0.05,
        on_error=errors.append,
    )
    update = '{"type": "session.update", "session": {"type": "realtime", "instructions": "x"}}'
    async with conn:
        await conn.send(update)  # as text: still recognised as the session.update to re-send
        endpoint.provider.options = MockOptions(realtime_pacing=0)
        types: list[str] = []
        async with asyncio.timeout(10):
            while "reconnected" not in types or types[-1] != "session.updated":
                types.append((await conn.recv())["type"])
    # Through rtrelay a provider drop is explained first: error upstream_disconnected, then 1011.
    explained = ["error"] if endpoint.name == "relay" else []
    assert types == [
        "session.created",
        "session.updated",
        *explained,
        "reconnected",
        "session.created",
        "session.updated",
    ]
    assert len(errors) == 1
    if endpoint.name == "mock":  # the TCP drop itself
        assert isinstance(errors[0], NetworkError)
        assert errors[0].close_code == 1006
    else:  # a relay explains the provider's drop: upstream_disconnected, 1011
        assert isinstance(errors[0], UpstreamError)
        assert errors[0].close_code == 1011


async def test_resend_session_update_can_be_turned_off(
    loop_watch: LoopWatch, endpoint: Endpoint
) -> None:
    endpoint.provider.options = MockOptions(realtime_pacing=0, drop_after_events=2)
    conn = RealtimeConnection(
        endpoint.url,
        api_key=endpoint.api_key,
        model="gpt-realtime",
        min_reconnection_delay=0.01,
        resend_session_update=False,
    )
    async with conn:
        await conn.send({"type": "session.update", "session": {"type": "realtime"}})
        endpoint.provider.options = MockOptions(realtime_pacing=0)
        types: list[str] = []
        async with asyncio.timeout(10):
            while types[-2:] != ["reconnected", "session.created"]:
                types.append((await conn.recv())["type"])
        event = {"type": "input_audio_buffer.clear"}
        await conn.send(event)
        assert (await conn.recv())["type"] == "input_audio_buffer.cleared"
    sessions = endpoint.provider.sessions
    assert len(sessions) == 2
    assert endpoint.provider.events_received[-1] == event
    assert [e["type"] for e in endpoint.provider.events_received] == [
        "session.update",
        "input_audio_buffer.clear",
    ]


def _user_text(text: str) -> dict[str, Any]:
    return {
        "type": "conversation.item.create",
        "item": {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": text}],
        },
    }
