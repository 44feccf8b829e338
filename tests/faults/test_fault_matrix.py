"""The fault matrix: each row a fault, the outcome DESIGN.md promises, and what a client saw.

Every row runs against a fresh relay and simulated provider on 127.0.0.1; ``stage``
then checks that the relay still serves a metered session (with a one-session key, so
a leaked lease would show) and left no session, task or descriptor behind. The process
rows run ``rtrelay serve`` as a real process. ``scripts/reliability`` turns a run into
the table in docs/reliability.md (``RTRELAY_FAULT_REPORT=path`` collects the rows).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from harness import (
    FAST,
    SLOW,
    Seen,
    Stage,
    refused,
    scratch_dir,
    stage,
    until_closed,
    until_event,
)

from outages import proxied, redis_server
from rtrelay.mock import MockOptions, speech_pcm16
from store_fixtures import PG_ADMIN_URL, postgres_database
from support import free_port, serve_process, upgrade_headers

PROVIDER_ENV = {"TEST_PROVIDER_KEY": "sk-test"}
REFUSAL_BODY = (
    '{"error":{"type":"invalid_request_error","code":"nope","message":"provider says no"}}'
)


@dataclass(frozen=True, slots=True)
class Row:
    side: str
    fault: str
    promise: Seen
    run: Callable[[], Awaitable[Seen]]

    @property
    def id(self) -> str:
        return f"{self.side}: {self.fault}"


# -- provider faults -------------------------------------------------------------------------


def provider_refuses(status: int) -> Callable[[], Awaitable[Seen]]:
    async def run() -> Seen:
        options = MockOptions(realtime_pacing=0, refuse_status=status, refuse_body=REFUSAL_BODY)
        # A refused key opens the channel's circuit at once: a short cooldown shows it recover.
        async with stage(options, breaker={"base_cooldown": 0.1, "max_cooldown": 0.2}) as st:
            seen = await refused(st)
        return seen

    return run


async def provider_stalls() -> Seen:
    async with stage(
        MockOptions(stall_handshake=30), timeouts={"dial": 0.5, "handshake_deadline": 1}
    ) as st:
        st.provider.options = MockOptions(stall_handshake=30)
        seen = await refused(st)
    return seen


async def provider_port_closed() -> Seen:
    dead = f"ws://127.0.0.1:{free_port()}/v1"
    async with stage(channel_url=dead, serves=False) as st:
        seen = await refused(st)
    return seen


async def converse(
    st: Stage, options: MockOptions, *, then: Callable[[Any], Awaitable[None]] | None = None
) -> Seen:
    """Connect, switch the provider to ``options``, ask for a response, read to the end."""
    async with aiohttp.ClientSession() as http:
        st.provider.options = options
        async with http.ws_connect(st.relay.realtime(), headers=st.auth, max_msg_size=0) as ws:
            await until_event(ws, "session.created")
            await ws.send_json({"type": "response.create"})
            if then is not None:
                await then(ws)
            seen = await until_closed(ws)
    await st.settled()
    seen.billed = (await st.billed()) - 1  # the warm-up's response
    return seen


async def provider_resets_mid_response() -> Seen:
    async with stage() as st:
        # session.created, then response.created and a few more: the TCP reset lands mid-stream.
        return await converse(st, MockOptions(realtime_pacing=0, drop_after_events=5))


async def provider_sends_garbage() -> Seen:
    async with stage() as st:

        async def finish(ws: Any) -> None:
            events = await until_event(ws, "response.done")
            assert events[0]["type"] == "<not json>"  # the provider's frame, as it sent it
            await ws.close()

        seen = await converse(
            st, MockOptions(realtime_pacing=0, malformed_after_events=1), then=finish
        )
        seen.note = "frame forwarded as sent"
    return seen


async def provider_sends_20_mib() -> Seen:
    async with stage() as st:
        return await converse(st, MockOptions(realtime_pacing=0, oversized_after_events=1))


async def provider_stops_reading() -> Seen:
    async with stage(timeouts={"heartbeat": 0.5}) as st:
        return await converse(st, MockOptions(realtime_pacing=0, stop_reading_after_events=1))


async def provider_closes_4000() -> Seen:
    async with stage() as st:
        options = MockOptions(
            realtime_pacing=0,
            close_after_events=1,
            close_code=4000,
            close_reason="invalid_request_error.beta_api_shape_disabled",
        )
        return await converse(st, options)


# -- GPT-Live provider faults ----------------------------------------------------------------

LIVE_MODELS = ("gpt-realtime", "gpt-live-1")


async def live_converse(st: Stage, options: MockOptions, *, reports: int = 0) -> Seen:
    """A GPT-Live session: session.start, a spoken turn, then (with ``reports``) that many
    usage reports and session.close; read to the end. Live is billed in seconds, not
    responses: the row's note gives the seconds in the ledger."""
    audio = speech_pcm16(600) + bytes(48 * 800)
    st.provider.options = options
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(f"{st.relay.ws_url}/v1/live/sessions", headers=st.auth) as ws,
    ):
        await ws.send_json({"type": "session.start", "session": {"model": "gpt-live-1"}})
        await until_event(ws, "session.started")
        for i in range(0, len(audio), 4800):
            chunk = base64.b64encode(audio[i : i + 4800]).decode()
            await ws.send_json({"type": "session.input_audio.append", "audio": chunk})
        final = None
        if reports:
            for _ in range(reports):
                await until_event(ws, "session.usage.updated")
            await ws.send_json({"type": "session.close"})
            final = (await until_event(ws, "session.closed"))[-1]["usage"]["seconds"]
        seen = await until_closed(ws)
    await st.settled()
    seconds = (await st.seconds_billed()).normalize()
    assert await st.billed() == 1  # the warm-up's response: no response row for Live
    if final is not None:  # every reported second billed once, whatever the provider repeated
        assert seconds == Decimal(str(final)), (seconds, final)
        seen.note = f"{seconds} s in the ledger = the provider's last report"
    else:
        assert seconds > 0
        seen.note = f"{seconds} s in the ledger (the time it was open: no report came)"
    return seen


async def live_provider_resets() -> Seen:
    async with stage(models=LIVE_MODELS) as st:
        return await live_converse(st, MockOptions(realtime_pacing=0, drop_after_events=4))


def live_provider_lies(**fault: bool) -> Callable[[], Awaitable[Seen]]:
    async def run() -> Seen:
        options = MockOptions(realtime_pacing=0, live_usage_interval=0.2, **fault)
        async with stage(models=LIVE_MODELS) as st:
            return await live_converse(st, options, reports=6)

    return run


# -- client faults ---------------------------------------------------------------------------


async def client_vanishes() -> Seen:
    async with stage(SLOW) as st, aiohttp.ClientSession() as http:
        ws = await http.ws_connect(st.relay.realtime(), headers=st.auth)
        await until_event(ws, "session.created")
        await ws.send_json({"type": "response.create"})
        await until_event(ws, "response.created")
        transport = ws._conn.transport if ws._conn is not None else None
        assert transport is not None
        transport.abort()  # no close frame: the TCP connection just ends
        await st.settled()
        record = st.provider.sessions[-1]
        async with asyncio.timeout(10):
            await record.ended.wait()
        return Seen(
            close=record.close_code, billed=(await st.billed()) - 1, note="close the provider got"
        )


async def client_stops_reading() -> Seen:
    # 10-minute replies in 1 s chunks (64 KB frames): far more than any socket buffer.
    flood = MockOptions(realtime_pacing=0, reply_audio_ms=600_000, audio_chunk_ms=1000)
    async with stage(timeouts={"slow_consumer": 0.5}) as st, aiohttp.ClientSession() as http:
        st.provider.options = flood
        ws = await http.ws_connect(st.relay.realtime(), headers=st.auth, max_msg_size=0)
        await until_event(ws, "session.created")
        await ws.send_json({"type": "response.create"})
        record = st.provider.sessions[-1]
        async with asyncio.timeout(30):  # not reading; the relay gives up and frees the provider
            await record.ended.wait()
        seen = await until_closed(ws)
        await ws.close()
        await st.settled()
        seen.billed = (await st.billed()) - 1
        return seen


async def client_floods() -> Seen:
    chunk = base64.b64encode(speech_pcm16(20)).decode()
    count = 3000
    async with stage() as st, aiohttp.ClientSession() as http:
        async with http.ws_connect(st.relay.realtime(), headers=st.auth) as ws:
            await until_event(ws, "session.created")
            await ws.send_json(
                {
                    "type": "session.update",
                    "session": {"type": "realtime", "audio": {"input": {"turn_detection": None}}},
                }
            )
            for _ in range(count):
                await ws.send_str('{"type":"input_audio_buffer.append","audio":"' + chunk + '"}')
            await ws.send_json({"type": "response.create"})
            await until_event(ws, "response.done")
            received = st.provider.sessions[-1].events_received
            await ws.close()
        await st.settled()
        assert received >= count + 2, received
        return Seen(
            status=101, billed=(await st.billed()) - 1, note=f"all {count} appends forwarded"
        )


async def client_sends_oversized() -> Seen:
    async with (
        stage(limits={"max_frame_bytes": 1024 * 1024}) as st,
        aiohttp.ClientSession() as http,
    ):
        async with http.ws_connect(st.relay.realtime(), headers=st.auth, max_msg_size=0) as ws:
            await until_event(ws, "session.created")
            await ws.send_str(
                '{"type":"input_audio_buffer.append","audio":"' + "A" * (2 << 20) + '"}'
            )
            seen = await until_closed(ws)
        await st.settled()
        seen.billed = (await st.billed()) - 1
        return seen


async def client_slow_headers() -> Seen:
    async with stage(timeouts={"request": 1}) as st:
        port = int(st.relay.url.rsplit(":", 1)[1])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        head = b"GET /v1/realtime?model=gpt-realtime HTTP/1.1\r\nHost: x\r\n"

        async def trickle() -> None:
            with contextlib.suppress(ConnectionError):
                for byte in head:  # one byte every 0.1 s: the head would take 5 s
                    writer.write(bytes([byte]))
                    await writer.drain()
                    await asyncio.sleep(0.1)

        sending = asyncio.create_task(trickle())
        answer = b""
        with contextlib.suppress(ConnectionError):
            async with asyncio.timeout(10):
                answer = await reader.read()
        sending.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sending
        writer.transport.abort()
        status_line = answer.split(b"\r\n", 1)[0].decode()
        status = int(status_line.split()[1]) if status_line else None
        body = answer.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in answer else b""
        code = orjson.loads(body)["error"]["code"] if body else None
        return Seen(status=status, code=code)


async def client_half_open() -> Seen:
    """The upgrade completes, then the client's machine goes silent: no reads, no pongs."""
    async with stage(timeouts={"heartbeat": 0.5}) as st:
        port = int(st.relay.url.rsplit(":", 1)[1])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        headers = upgrade_headers(**st.auth)
        request = "GET /v1/realtime?model=gpt-realtime HTTP/1.1\r\nHost: x\r\n"
        request += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        writer.write(request.encode())
        status = int((await reader.readline()).split()[1])
        record = None
        async with asyncio.timeout(20):
            while record is None or not record.ended.is_set():
                record = st.provider.sessions[-1] if len(st.provider.sessions) > 1 else None
                await asyncio.sleep(0.05)
        writer.transport.abort()
        await st.settled()
        return Seen(status=status, close=record.close_code, note="close the provider got")


# -- process faults --------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def relay_process(config: Path, port: int) -> AsyncIterator[Any]:
    """``rtrelay serve --config`` as a real process, killed on exit if a row left it running."""
    async with serve_process("--config", str(config), port=port, env=PROVIDER_ENV) as (proc, _):
        yield proc


def write_config(directory: Path, provider_url: str, **sections: str) -> Path:
    lines = [
        "[store]",
        f'url = "sqlite+aiosqlite:///{directory}/relay.db"',
        f'journal = "{directory}/journal.jsonl"',
        "[auth]",
        'mode = "none"',
    ]
    for section, body in sections.items():
        lines += [f"[{section}]", body]
    lines += [
        "[[channels]]",
        'name = "sim"',
        'kind = "openai"',
        f'base_url = "{provider_url}"',
        'api_key_env = "TEST_PROVIDER_KEY"',
        'models = ["gpt-realtime"]',
    ]
    path = directory / "rtrelay.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def rows_in(db: Path, sql: str) -> list[tuple[Any, ...]]:
    import sqlite3

    with contextlib.closing(sqlite3.connect(db)) as conn:
        return conn.execute(sql).fetchall()


async def process_sigterm_mid_response() -> Seen:
    from rtrelay.mock import MockProvider

    directory = scratch_dir()
    async with MockProvider(SLOW) as provider:
        port = free_port()
        config = write_config(directory, provider.url, timeouts="drain = 4")
        async with relay_process(config, port) as proc, aiohttp.ClientSession() as http:
            async with http.ws_connect(
                f"ws://127.0.0.1:{port}/v1/realtime?model=gpt-realtime"
            ) as ws:
                await until_event(ws, "session.created")
                await ws.send_json({"type": "response.create"})
                await until_event(ws, "response.created")
                proc.send_signal(signal.SIGTERM)
                events = await until_event(ws, "response.done")
                assert events[-1]["response"]["status"] == "completed"
                seen = await until_closed(ws)
            async with asyncio.timeout(30):
                code = await proc.wait()
        seen.billed = len(rows_in(directory / "relay.db", "SELECT 1 FROM rtrelay_usage"))
        seen.note = f"response completed in the drain window; exit {code}"
    return seen


async def process_sigkill_mid_response() -> Seen:
    from rtrelay.mock import MockProvider

    directory = scratch_dir()
    async with MockProvider(SLOW) as provider:  # 2 s responses: one completes, one is cut
        port = free_port()
        config = write_config(directory, provider.url)
        async with aiohttp.ClientSession() as http:
            async with relay_process(config, port) as proc:
                ws = await http.ws_connect(f"ws://127.0.0.1:{port}/v1/realtime?model=gpt-realtime")
                await until_event(ws, "session.created")
                await ws.send_json({"type": "response.create"})
                await until_event(ws, "response.done")  # the first response completes
                await ws.send_json({"type": "response.create"})
                await until_event(ws, "response.created")
                proc.kill()  # mid-response
                seen = await until_closed(ws)
                await ws.close()
            provider.options = FAST
            async with relay_process(config, port):  # restart on the same store
                async with http.ws_connect(
                    f"ws://127.0.0.1:{port}/v1/realtime?model=gpt-realtime"
                ) as ws:
                    await until_event(ws, "session.created")
        statuses = rows_in(
            directory / "relay.db", "SELECT status FROM rtrelay_sessions ORDER BY started_at"
        )
        seen.billed = len(rows_in(directory / "relay.db", "SELECT 1 FROM rtrelay_usage"))
        seen.note = f"after restart the killed session is {statuses[0][0]}"
        assert statuses[0][0] == "interrupted"
    return seen


async def process_redis_down_up() -> Seen:
    port = free_port()
    redis = {"url": f"redis://127.0.0.1:{port}/0", "on_error": "closed"}
    async with contextlib.AsyncExitStack() as later:  # Redis outlives the stage's checks
        async with stage(redis=redis) as st:
            st.pooled_ports.add(port)
            down = await refused(st)  # nothing listens on the Redis port yet
            await later.enter_async_context(redis_server(port))
            async with asyncio.timeout(30):
                while (await refused(st)).status != 101:
                    await asyncio.sleep(0.2)
    down.note = (down.note + "; " if down.note else "") + "admitted again once Redis is back"
    return down


async def process_store_down_up() -> Seen:
    """PostgreSQL unreachable mid-session: the response is journaled, then replayed once."""
    with postgres_database(PG_ADMIN_URL) as url:
        journal = scratch_dir() / "journal.jsonl"
        async with proxied(url) as (link, via):
            async with stage(store={"url": via, "journal": str(journal)}, store_url=url) as st:
                st.pooled_ports.add(link.port)
                async with aiohttp.ClientSession() as http:
                    async with http.ws_connect(st.relay.realtime(), headers=st.auth) as ws:
                        await until_event(ws, "session.created")
                        link.cut()
                        await ws.send_json({"type": "response.create"})
                        events = await until_event(ws, "response.done")
                        assert events[-1]["response"]["status"] == "completed"
                        await ws.close()
                        seen = Seen(close=ws.close_code)
                    await asyncio.sleep(1)  # the writer meets the outage and journals
                    journaled = journal.exists() and journal.stat().st_size > 0
                    link.restore()
                    async with asyncio.timeout(60):
                        while await st.billed() < 2:  # the warm-up's and the journaled one
                            await asyncio.sleep(0.2)
                seen.billed = await st.billed() - 1
                seen.note = "journaled, replayed on recovery" if journaled else "written late"
    return seen


ROWS = [
    Row(
        "provider",
        "refuses 401 with a body",
        Seen(status=502, code="upstream_rejected"),
        provider_refuses(401),
    ),
    Row(
        "provider",
        "refuses 403 with a body",
        Seen(status=502, code="upstream_rejected"),
        provider_refuses(403),
    ),
    Row(
        "provider",
        "refuses 429 with a body",
        Seen(status=502, code="upstream_rejected"),
        provider_refuses(429),
    ),
    Row(
        "provider",
        "refuses 500 with a body",
        Seen(status=502, code="upstream_rejected"),
        provider_refuses(500),
    ),
    Row(
        "provider",
        "stalls the handshake",
        Seen(status=504, code="upstream_timeout"),
        provider_stalls,
    ),
    Row(
        "provider",
        "refuses TCP (port closed)",
        Seen(status=503, code="upstream_unavailable"),
        provider_port_closed,
    ),
    Row(
        "provider",
        "RST mid-response",
        Seen(code="upstream_disconnected", close=1011, billed=0),
        provider_resets_mid_response,
    ),
    Row("provider", "garbage frame", Seen(close=1000, billed=1), provider_sends_garbage),
    Row(
        "provider",
        "20 MiB frame",
        Seen(code="message_too_large", close=1009, billed=0),
        provider_sends_20_mib,
    ),
    Row(
        "provider",
        "stops reading",
        Seen(code="upstream_disconnected", close=1011),
        provider_stops_reading,
    ),
    Row("provider", "closes 4000", Seen(close=4000, billed=0), provider_closes_4000),
    Row(
        "provider",
        "GPT-Live: RST mid-session",
        Seen(code="upstream_disconnected", close=1011),
        live_provider_resets,
    ),
    Row(
        "provider",
        "GPT-Live: repeats every usage report",
        Seen(close=1000),
        live_provider_lies(repeat_usage=True),
    ),
    Row(
        "provider",
        "GPT-Live: sends a usage report out of order",
        Seen(close=1000),
        live_provider_lies(reorder_usage=True),
    ),
    Row("client", "vanishes mid-response", Seen(close=1001, billed=0), client_vanishes),
    Row(
        "client",
        "stops reading",
        Seen(code="slow_consumer", close=1008, billed=0),
        client_stops_reading,
    ),
    Row("client", "floods appends", Seen(status=101, billed=1), client_floods),
    Row(
        "client",
        "sends an oversized frame",
        Seen(code="message_too_large", close=1009, billed=0),
        client_sends_oversized,
    ),
    Row(
        "client",
        "sends headers slowly",
        Seen(status=408, code="request_timeout"),
        client_slow_headers,
    ),
    Row("client", "goes half-open", Seen(status=101, close=1001), client_half_open),
    Row(
        "process",
        "SIGTERM mid-response",
        Seen(code="relay_shutting_down", close=1001, billed=1),
        process_sigterm_mid_response,
    ),
    Row(
        "process",
        "SIGKILL mid-response, restart",
        Seen(close=1006, billed=1),
        process_sigkill_mid_response,
    ),
    Row(
        "process",
        "store down mid-session, then up",
        Seen(close=1000, billed=1),
        process_store_down_up,
    ),
    Row(
        "process",
        "Redis down, then up",
        Seen(status=503, code="limits_unavailable"),
        process_redis_down_up,
    ),
]


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
async def test_fault(row: Row, fault_report: list[dict[str, str]]) -> None:
    seen = await row.run()
    fault_report.append(
        {
            "side": row.side,
            "fault": row.fault,
            "promised": row.promise.render(),
            "observed": seen.render(),
        }
    )
    assert seen.matches(row.promise), f"promised {row.promise.render()}, observed {seen.render()}"
