"""The relay over real sockets: dial before accept, close relay, drops, limits.

The upstream is a scripted provider stand-in (tests/support.py); nothing of
rtrelay's own is replaced.
"""

from __future__ import annotations

import asyncio
import contextlib

import aiohttp
import orjson
import pytest

from support import (
    free_port,
    read_error_and_close,
    running_relay,
    scripted_upstream,
    settings_for,
)

PROVIDER_KEY = "sk-test-provider-secret-0123456789"


async def test_provider_refusal_keeps_status_and_body_and_hides_the_key() -> None:
    async with scripted_upstream() as up:
        body = orjson.dumps(
            {"error": {"message": f"Incorrect API key provided: {PROVIDER_KEY}", "code": "x"}}
        )
        up.refuse = (401, body)
        async with running_relay(settings_for(up.url)) as relay, aiohttp.ClientSession() as http:
            async with http.get(relay.realtime(), headers=_upgrade_headers()) as resp:
                assert resp.status == 502
                assert resp.headers["X-Request-Id"].startswith("req_")
                error = (await resp.json())["error"]
                assert error["code"] == "upstream_rejected"
                assert error["type"] == "server_error"
                assert "HTTP 401" in error["message"]
                assert "Incorrect API key provided" in error["message"]
                assert PROVIDER_KEY not in error["message"]


async def test_stalled_provider_handshake_is_upstream_timeout() -> None:
    async with scripted_upstream() as up:
        up.stall = 5
        settings = settings_for(up.url, timeouts={"dial": 0.3, "handshake_deadline": 1})
        async with running_relay(settings) as relay, aiohttp.ClientSession() as http:
            async with http.get(relay.realtime(), headers=_upgrade_headers()) as resp:
                assert resp.status == 504
                assert (await resp.json())["error"]["code"] == "upstream_timeout"


async def test_unreachable_provider_is_upstream_unavailable_with_retry_after() -> None:
    port = free_port()
    settings = settings_for(f"ws://127.0.0.1:{port}/v1")
    async with running_relay(settings) as relay, aiohttp.ClientSession() as http:
        async with http.get(relay.realtime(), headers=_upgrade_headers()) as resp:
            assert resp.status == 503
            assert int(resp.headers["Retry-After"]) >= 1
            assert (await resp.json())["error"]["code"] == "upstream_unavailable"


async def test_event_style_refusal_for_browser_like_clients() -> None:
    port = free_port()
    settings = settings_for(f"ws://127.0.0.1:{port}/v1")
    async with running_relay(settings) as relay, aiohttp.ClientSession() as http:
        async with http.ws_connect(
            relay.realtime(), protocols=("realtime", "openai-insecure-api-key.null")
        ) as ws:
            assert ws.protocol == "realtime"
            error, code, reason = await read_error_and_close(ws)
    assert error is not None
    assert error["error"]["code"] == "upstream_unavailable"
    assert (code, reason) == (4503, "server_error.upstream_unavailable")


async def test_missing_model_is_400_and_unknown_model_404() -> None:
    async with scripted_upstream() as up:
        async with running_relay(settings_for(up.url)) as relay, aiohttp.ClientSession() as http:
            async with http.get(f"{relay.url}/v1/realtime", headers=_upgrade_headers()) as resp:
                assert resp.status == 400
                assert (await resp.json())["error"]["code"] == "missing_model"
            async with http.get(relay.realtime("nope"), headers=_upgrade_headers()) as resp:
                assert resp.status == 404
                assert (await resp.json())["error"]["code"] == "model_not_found"
        assert up.handshakes == []  # nothing was dialed


async def test_provider_gets_its_key_and_the_beta_header_never_the_clients() -> None:
    async with scripted_upstream() as up:
        async with running_relay(settings_for(up.url)) as relay, aiohttp.ClientSession() as http:
            async with http.ws_connect(
                relay.realtime(),
                protocols=(
                    "realtime",
                    "openai-insecure-api-key.rk_client",
                    "openai-beta.realtime-v1",
                ),
            ) as ws:
                assert ws.protocol == "realtime"
                await ws.receive()
        seen = up.handshakes[0]
        assert seen["Authorization"] == f"Bearer {PROVIDER_KEY}"
        assert seen["OpenAI-Beta"] == "realtime=v1"
        assert "rk_client" not in repr(seen)
        assert "Sec-WebSocket-Protocol" not in seen


async def test_frames_are_forwarded_byte_for_byte_both_ways() -> None:
    odd_text = '{ "type" : "x",  "a":[1,2 ,3], "u":"\\u00e9é" }'
    binary = b'{"type":"y","blob":"' + bytes(range(0x23, 0x5C)) * 4 + b'"}'
    async with scripted_upstream() as up:
        async with running_relay(settings_for(up.url)) as relay, aiohttp.ClientSession() as http:
            async with http.ws_connect(relay.realtime()) as ws:
                first = await ws.receive()
                assert orjson.loads(first.data)["type"] == "session.created"
                for i in range(50):
                    await ws.send_str(f'{{"type":"n","i":{i}}}')
                await ws.send_str(odd_text)
                await ws.send_bytes(binary)
                got = [(await ws.receive()).data for _ in range(52)]
    assert got[:50] == [f'{{"type":"n","i":{i}}}' for i in range(50)]
    assert got[50] == odd_text
    assert got[51] == binary


async def test_a_frame_that_is_not_one_json_event_is_refused_not_forwarded() -> None:
    async with scripted_upstream() as up:
        async with running_relay(settings_for(up.url)) as relay, aiohttp.ClientSession() as http:
            async with http.ws_connect(relay.realtime()) as ws:
                await ws.receive()
                await ws.send_bytes(bytes(range(256)))
                await ws.send_str('{"type":"input_audio_buffer.append","type":"response.create"}')
                await ws.send_str('{"type":"after"}')
                got = [await ws.receive_json() for _ in range(3)]
    assert [g["type"] for g in got] == ["error", "error", "after"]  # only the last was echoed
    assert {g["error"]["code"] for g in got[:2]} == {"invalid_event"}
    assert got[1]["error"]["param"] == "type"


async def test_client_close_code_and_reason_reach_the_provider() -> None:
    async with scripted_upstream() as up:
        async with running_relay(settings_for(up.url)) as relay, aiohttp.ClientSession() as http:
            async with http.ws_connect(relay.realtime()) as ws:
                await ws.receive()
                await ws.close(code=4321, message=b"client says bye")
                assert ws.close_code == 4321
            await _until(lambda: up.closes)
    assert up.closes == [(4321, "client says bye")]


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        (4000, "invalid_request_error.beta_api_shape_disabled"),
        (3000, "invalid_request_error.invalid_api_key"),
        (1001, "bye"),
    ],
)
async def test_provider_close_is_relayed_unchanged(code: int, reason: str) -> None:
    async with scripted_upstream() as up:
        async with running_relay(settings_for(up.url)) as relay, aiohttp.ClientSession() as http:
            async with http.ws_connect(relay.realtime()) as ws:
                await ws.receive()
                await ws.send_json({"type": "x.close", "code": code, "reason": reason})
                msg = await ws.receive()
    assert (msg.type, msg.data, msg.extra) == (aiohttp.WSMsgType.CLOSE, code, reason)


async def test_provider_tcp_drop_becomes_error_event_and_1011() -> None:
    async with scripted_upstream() as up:
        async with running_relay(settings_for(up.url)) as relay, aiohttp.ClientSession() as http:
            async with http.ws_connect(relay.realtime()) as ws:
                await ws.receive()
                await ws.send_json({"type": "x.drop"})
                error, code, reason = await read_error_and_close(ws)
    assert error is not None and error["error"]["code"] == "upstream_disconnected"
    assert (code, reason) == (1011, "server_error.upstream_disconnected")


async def test_client_tcp_drop_closes_the_provider_leg_with_1001() -> None:
    async with scripted_upstream() as up:
        async with running_relay(settings_for(up.url)) as relay:
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", int(relay.url.rsplit(":", 1)[1])
            )
            writer.write(
                b"GET /v1/realtime?model=gpt-realtime HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
            )
            assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 101")
            writer.transport.abort()
            await _until(lambda: up.closes)
            await _until(lambda: not relay.relay.sessions)
    assert up.closes == [(1001, "client disconnected")]


async def test_oversized_client_frame_is_message_too_large_1009() -> None:
    async with scripted_upstream() as up:
        settings = settings_for(up.url, limits={"max_frame_bytes": 1024 * 1024})
        async with running_relay(settings) as relay, aiohttp.ClientSession() as http:
            async with http.ws_connect(relay.realtime(), max_msg_size=0) as ws:
                await ws.receive()
                await ws.send_bytes(b"x" * (2 * 1024 * 1024))
                error, code, reason = await read_error_and_close(ws)
            await _until(lambda: up.closes)
    assert error is not None and error["error"]["code"] == "message_too_large"
    assert (code, reason) == (1009, "invalid_request_error.message_too_large")
    assert up.closes == [(1001, "relay closed")]


async def test_twenty_mib_frame_with_the_default_limit_is_refused() -> None:
    async with scripted_upstream() as up:
        async with running_relay(settings_for(up.url)) as relay, aiohttp.ClientSession() as http:
            async with http.ws_connect(relay.realtime(), max_msg_size=0) as ws:
                await ws.receive()
                frame = '{"type":"input_audio_buffer.append","audio":"' + "A" * (20 << 20) + '"}'
                # The relay refuses at the frame header and closes while we still write.
                sending = asyncio.create_task(ws.send_str(frame))
                error, code, _ = await read_error_and_close(ws)
                with contextlib.suppress(ConnectionError):
                    await sending
    assert error is not None and error["error"]["code"] == "message_too_large"
    assert code == 1009


async def test_idle_session_is_closed_with_idle_timeout() -> None:
    async with scripted_upstream() as up:
        settings = settings_for(up.url, timeouts={"idle": 0.4})
        async with running_relay(settings) as relay, aiohttp.ClientSession() as http:
            async with http.ws_connect(relay.realtime()) as ws:
                error, code, reason = await read_error_and_close(ws)
    assert error is not None and error["error"]["code"] == "idle_timeout"
    assert (code, reason) == (1000, "invalid_request_error.idle_timeout")


async def test_max_session_length_is_session_expired_1001() -> None:
    async with scripted_upstream() as up:
        settings = settings_for(up.url, timeouts={"max_session": 0.4, "idle": 60})
        async with running_relay(settings) as relay, aiohttp.ClientSession() as http:
            async with http.ws_connect(relay.realtime()) as ws:
                error, code, reason = await read_error_and_close(ws)
    assert error is not None and error["error"]["code"] == "session_expired"
    assert (code, reason) == (1001, "invalid_request_error.session_expired")


async def test_drain_ends_live_sessions_with_relay_shutting_down() -> None:
    async with scripted_upstream() as up:
        settings = settings_for(up.url)
        async with running_relay(settings) as relay, aiohttp.ClientSession() as http:
            async with http.ws_connect(relay.realtime()) as ws:
                await ws.receive()
                drain = asyncio.create_task(relay.relay.drain(0.3))
                await asyncio.sleep(0.05)
                async with http.get(f"{relay.url}/readyz") as resp:
                    assert resp.status == 503
                async with http.get(relay.realtime(), headers=_upgrade_headers()) as resp:
                    assert resp.status == 503
                    assert (await resp.json())["error"]["code"] == "relay_shutting_down"
                error, code, reason = await read_error_and_close(ws)
                await drain
    assert error is not None and error["error"]["code"] == "relay_shutting_down"
    assert (code, reason) == (1001, "server_error.relay_shutting_down")


def _upgrade_headers() -> dict[str, str]:
    return {
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
    }


async def _until(predicate, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)
