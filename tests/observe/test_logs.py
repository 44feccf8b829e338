"""Structured logs: one JSON line per session start/end and refusal, never a secret."""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Iterator

import aiohttp
import orjson
import pytest

from rtrelay.ledger.keys import KeySpec
from rtrelay.log import JsonFormatter, TextFormatter
from rtrelay.mock import MockOptions, MockProvider
from support import mock_channel_settings, running_relay, upgrade_headers

PROVIDER_KEY = "sk-test-provider-secret-0123456789"


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


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
    assert len(starts) == len(ends) == 3
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


def test_text_format_is_readable() -> None:
    record = logging.LogRecord("rtrelay.edge", logging.INFO, "x", 1, "session open", (), None)
    record.model = "gpt-realtime"
    line = TextFormatter().format(record)
    assert "session open" in line
    assert "model=gpt-realtime" in line
