"""Structured logs: one JSON line per session start/end and refusal, never a secret.

"Never" covers every logger in the process (aiohttp's, asyncio's, SQLAlchemy's,
the root's), at DEBUG, through rtrelay's own handler, and the requests a hostile
or broken client sends (a control byte in a header, a key-only subprotocol offer).
"""

from __future__ import annotations

import asyncio
import io
import logging
import sys
from collections.abc import Iterator
from urllib.parse import urlsplit

import aiohttp
import orjson
import pytest

from rtrelay.ledger.keys import KeySpec
from rtrelay.log import TextFormatter, log_handler
from rtrelay.mock import MockOptions, MockProvider
from support import mock_channel_settings, running_relay, upgrade_headers

PROVIDER_KEY = "sk-test-provider-secret-0123456789"


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    """Every logger of the process at DEBUG into rtrelay's JSON handler (as ``serve`` builds it)."""
    stream = io.StringIO()
    handler = log_handler(stream, "json")
    root = logging.getLogger()
    loggers = [root] + [
        lg for lg in root.manager.loggerDict.values() if isinstance(lg, logging.Logger)
    ]
    saved = [(lg, lg.level, lg.propagate, lg.disabled) for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.NOTSET)  # inherit the root's DEBUG, whatever a library set
        lg.propagate, lg.disabled = True, False
    root.setLevel(logging.DEBUG)
    root.addHandler(handler)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        for lg, level, propagate, disabled in saved:
            lg.setLevel(level)
            lg.propagate, lg.disabled = propagate, disabled


async def raw_request(url: str, head: bytes) -> bytes:
    """Send ``head`` on a fresh connection to ``url``'s host; return all the server answers."""
    parts = urlsplit(url)
    assert parts.hostname == "127.0.0.1" and parts.port is not None
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        writer.write(head)
        await writer.drain()
        async with asyncio.timeout(10):
            return await reader.read()
    finally:
        writer.close()
        await writer.wait_closed()


async def test_secrets_fed_through_every_path_never_reach_the_logs(
    json_logs: io.StringIO,
) -> None:
    async with MockProvider(MockOptions(realtime_pacing=0, reply_audio_ms=200)) as provider:
        settings = mock_channel_settings(provider.url)
        async with running_relay(settings) as relay, aiohttp.ClientSession() as http:
            _, key = await relay.relay.parts.store.create_key(KeySpec(name="logs"))
            secrets = [key, PROVIDER_KEY]
            # a full session authenticated by subprotocol
            async with http.ws_connect(
                relay.realtime(), protocols=("realtime", f"openai-insecure-api-key.{key}")
            ) as ws:
                await ws.send_json({"type": "response.create"})
                while (await ws.receive_json())["type"] != "response.done":
                    pass
            # by header, with a secret in the query string too
            query_secret = "sk-query-secret-abcdef0123456789"
            secrets.append(query_secret)
            async with http.ws_connect(
                relay.realtime() + f"&api_key={query_secret}",
                headers={"api-key": key},
            ) as ws:
                await ws.receive_json()
            # a token minted and used
            async with http.post(
                f"{relay.url}/v1/realtime/client_secrets",
                headers={"Authorization": f"Bearer {key}"},
                json={},
            ) as resp:
                token = (await resp.json())["value"]
            secrets.append(token)
            async with http.ws_connect(
                relay.realtime(), protocols=("realtime", f"openai-insecure-api-key.{token}")
            ) as ws:
                await ws.receive_json()
            # the key subprotocol without "realtime": nothing to echo, and no warning listing it
            async with http.ws_connect(
                relay.realtime(), protocols=(f"openai-insecure-api-key.{key}",)
            ) as ws:
                assert ws.protocol is None
                assert (await ws.receive_json())["type"] == "session.created"
            # one stray control byte in the header that carries the key
            answer = await raw_request(
                relay.url,
                b"GET /v1/realtime?model=gpt-realtime HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                b"Authorization: Bearer " + key.encode() + b"\x01\r\n\r\n",
            )
            head, _, body = answer.partition(b"\r\n\r\n")
            assert head.split(b" ", 2)[1] == b"400"
            assert b"\r\nx-request-id: req_" in head.lower()
            assert orjson.loads(body)["error"]["code"] == "malformed_request"
            assert key.encode() not in answer
            assert b"Authorization" not in answer
            # wrong keys, in every credential place
            wrong = "rk_wrongpfx_" + "z" * 32
            secrets.append(wrong)
            async with http.get(
                relay.realtime(), headers=upgrade_headers(Authorization=f"Bearer {wrong}")
            ) as resp:
                assert resp.status == 401
            # a provider whose refusal body quotes our provider key
            provider.options = MockOptions(
                refuse_status=401,
                refuse_body=f'{{"error": {{"message": "bad key {PROVIDER_KEY}"}}}}',
            )
            async with http.get(
                relay.realtime(), headers=upgrade_headers(Authorization=f"Bearer {key}")
            ) as resp:
                body = await resp.text()
                assert resp.status == 502
                assert "bad key" in body
                assert PROVIDER_KEY not in body
            while relay.relay.sessions:
                await asyncio.sleep(0.01)
            await relay.relay.parts.writer.flush()

    output = json_logs.getvalue()
    for secret in secrets:
        assert secret not in output
        assert secret[-12:] not in output  # not even the random tail
    lines = [orjson.loads(line) for line in output.splitlines()]
    ends = [line for line in lines if line.get("event") == "session_end"]
    starts = [line for line in lines if line.get("event") == "session_start"]
    refusals = [line for line in lines if line.get("event") == "refused"]
    assert len(starts) == len(ends) == 4
    first = ends[0]
    for field in (
        "request_id",
        "key_prefix",
        "model",
        "channel",
        "duration_s",
        "bytes_in",
        "bytes_out",
        "frames_in",
        "frames_out",
        "client_close_code",
        "upstream_close_code",
        "responses",
        "tokens_in",
        "tokens_out",
        "cost_usd",
    ):
        assert field in first, field
    assert first["responses"] == 1
    assert first["key_prefix"] and first["key_prefix"] in key
    assert {r["code"] for r in refusals} == {"invalid_api_key", "upstream_rejected"}
    assert all(r["request_id"].startswith("req_") for r in refusals)
    early = [line for line in lines if line.get("event") == "pre_upgrade_closed"]
    assert [(e["reason"], e["level"]) for e in early] == [("malformed_request", "info")]
    loggers = {line["logger"] for line in lines}
    assert {"sqlalchemy.engine.Engine", "aiohttp.server", "root"} & loggers, loggers
    assert "aiohttp.websocket" not in loggers  # its "protocols don't overlap" warning
    assert not [line for line in lines if line["level"] in ("warning", "error", "critical")]


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_a_third_party_record_is_scrubbed_before_any_formatter_sees_it(fmt: str) -> None:
    key, token = "rk_abcdefgh_" + "s" * 30, "ek_" + "p" * 40 + "." + "g" * 20
    odd_key = "Zq9vN3xT7wLm"  # no key shape at all: caught by where it sits
    stream = io.StringIO()
    handler = log_handler(stream, fmt)
    later_stream = io.StringIO()  # a handler added after rtrelay's sees the scrubbed record
    later = logging.StreamHandler(later_stream)
    logger = logging.getLogger("aiohttp.server.test-scrub")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    logger.addHandler(later)
    try:
        try:
            raise ValueError(f"b'Authorization: Bearer {key}\\x01'")
        except ValueError:
            logger.exception(
                "Error handling request: %r offered %s",
                {"api-key": odd_key},
                [f"openai-insecure-api-key.{odd_key}", "realtime", token],
                extra={"header": f"Authorization: {odd_key}"},
            )
        logger.warning("raw %s", "x" * 3, stack_info=True)
        logger.info("network_errors task_queue")  # words that only contain a key's prefix
    finally:
        logger.removeHandler(handler)
        logger.removeHandler(later)
    output, later_output = stream.getvalue(), later_stream.getvalue()
    assert "Error handling request" in output
    assert "ValueError" in output  # the traceback is kept, scrubbed
    assert "Authorization: ***" in output
    assert "network_errors task_queue" in output
    for secret in (key, token, odd_key, "s" * 30, "g" * 20):
        assert secret not in output
        assert secret not in later_output
    assert sys.exc_info() == (None, None, None)


async def test_a_flood_of_long_client_text_makes_short_log_lines(json_logs: io.StringIO) -> None:
    async with MockProvider(MockOptions(realtime_pacing=0)) as provider:
        settings = mock_channel_settings(provider.url)
        async with running_relay(settings) as relay, aiohttp.ClientSession() as http:
            for _ in range(20):
                url = relay.realtime(model="m" * 8000)
                headers = upgrade_headers(Authorization="Bearer rk_bad_key", Origin="o" * 8000)
                async with http.get(url, headers=headers) as resp:
                    assert resp.status in (101, 401)
    lines = [orjson.loads(line) for line in json_logs.getvalue().splitlines()]
    refused = [line for line in lines if line.get("event") == "refused"]
    assert len(refused) == 20
    assert max(len(line) for line in json_logs.getvalue().splitlines()) < 2000


def test_text_format_is_readable() -> None:
    record = logging.LogRecord("rtrelay.edge", logging.INFO, "x", 1, "session open", (), None)
    record.model = "gpt-realtime"
    line = TextFormatter().format(record)
    assert "session open" in line
    assert "model=gpt-realtime" in line
