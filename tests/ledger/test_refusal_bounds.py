"""What a client without a key can cost the ledger: clipped text, counted floods, retention."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from test_store import T0, open_session, response, write_usage

from rtrelay.ledger import Refusal, SessionEnd, Store
from rtrelay.ledger.records import (
    TEXT_LIMITS,
    ChannelAttempt,
    RefusalCount,
    SessionStart,
    minute_of,
)
from rtrelay.ledger.schema import refusal_counts, refusals
from rtrelay.ledger.sqlstore import SqlStore
from rtrelay.ledger.writer import REFUSAL_ROWS_PER_MINUTE, LedgerWriter
from rtrelay.mock import MockOptions, MockProvider
from support import mock_channel_settings, running_relay

HUGE = "m" * 8000
"""About the most a request line or header may carry (aiohttp refuses 8190 bytes and up)."""


def refusal(i: int, *, code: str = "invalid_api_key", minute: int = 0) -> Refusal:
    return Refusal(
        request_id=f"req_{code}_{minute}_{i}",
        error_code=code,
        http_status=401,
        at=T0 + timedelta(minutes=minute, seconds=i % 60),
        model=HUGE,
        origin="https://" + HUGE,
    )


async def refused(store: Store, *, since: datetime | None = None) -> dict[str, int]:
    """Refused handshakes per error code, rows and counters together, read from the tables."""
    assert isinstance(store, SqlStore)
    rows = sa.select(refusals.c.error_code, sa.func.count())
    counted = sa.select(refusal_counts.c.error_code, sa.func.sum(refusal_counts.c["count"]))
    if since is not None:
        rows = rows.where(refusals.c.at >= since)
        counted = counted.where(refusal_counts.c.minute >= minute_of(since))
    totals: dict[str, int] = {}
    async with store.engine.connect() as conn:
        for query in (
            rows.group_by(refusals.c.error_code),
            counted.group_by(refusal_counts.c.error_code),
        ):
            for code, n in (await conn.execute(query)).all():
                totals[code] = totals.get(code, 0) + int(n)
    return totals


def test_text_a_client_chose_is_clipped_when_the_record_is_made() -> None:
    r = Refusal(
        request_id="req_1",
        error_code="invalid_api_key",
        http_status=401,
        at=T0,
        model=HUGE,
        origin="https://\x00" + HUGE,
        channels_tried=(ChannelAttempt(channel="c", outcome="refused:500", detail=HUGE),),
    )
    assert r.model is not None and len(r.model) == TEXT_LIMITS["model"]
    assert r.model.endswith("\u2026")
    assert r.origin is not None and len(r.origin) == TEXT_LIMITS["origin"]
    assert r.origin.startswith("https://\ufffd")  # PostgreSQL refuses NUL in text
    assert len(r.channels_tried[0].detail or "") == TEXT_LIMITS["detail"]
    start = SessionStart(
        session_id="s", key_id=None, key_prefix=None, model="m", channel="c", started_at=T0,
        origin=HUGE,
    )  # fmt: skip
    assert start.origin is not None and len(start.origin) == TEXT_LIMITS["origin"]
    assert len(response("s", "resp_" + HUGE).response_id) == TEXT_LIMITS["id"]
    short = Refusal(request_id="req_2", error_code="x", http_status=401, at=T0, model="gpt")
    assert short.model == "gpt"


async def test_a_flood_of_refusals_keeps_a_few_rows_a_minute_and_counts_the_rest(
    store: Store,
) -> None:
    writer = LedgerWriter(store)
    writer.start()
    try:
        for minute in (0, 1):
            for i in range(150):
                writer.submit(refusal(i, minute=minute))
        for i in range(5):
            writer.submit(refusal(i, code="missing_api_key"))
        await writer.flush()
    finally:
        await writer.close()  # writes the counters still in memory
    rows = await store.refusals(limit=1000)
    assert len(rows) == 2 * REFUSAL_ROWS_PER_MINUTE + 5
    assert all(len(r.model or "") <= TEXT_LIMITS["model"] for r in rows)
    assert await refused(store) == {"invalid_api_key": 300, "missing_api_key": 5}
    assert await refused(store, since=T0 + timedelta(minutes=1)) == {"invalid_api_key": 150}
    assert writer.stats.aggregated == 2 * (150 - REFUSAL_ROWS_PER_MINUTE)


async def test_counters_of_one_minute_add_up_across_writes(store: Store) -> None:
    count = RefusalCount(
        minute=T0, error_code="invalid_api_key", key_prefix=None, key_id=None, count=7
    )
    await store.record_refusal_counts([count])
    await store.record_refusal_counts([count])
    assert await refused(store) == {"invalid_api_key": 14}


async def test_pruning_goes_in_bounded_batches_and_never_touches_usage(store: Store) -> None:
    old = T0 - timedelta(days=100)
    await store.record_refusals(
        [Refusal(request_id=f"req_{i}", error_code="x", http_status=401, at=old) for i in range(25)]
    )
    await store.record_refusal_counts(
        [RefusalCount(minute=old, error_code="x", key_prefix=None, key_id=None, count=9)]
    )
    await open_session(store, "billed", None, started_at=old)
    assert await write_usage(store, response("billed", "r1", at=old))
    await open_session(store, "unbilled", None, started_at=old)
    await store.close_session(
        SessionEnd(session_id="unbilled", ended_at=old, status="completed", duration_s=1.0)
    )
    await open_session(store, "live", None, started_at=old)
    cutoff = T0 - timedelta(days=90)
    first = await store.prune(cutoff, limit=10)
    assert first == {"refusals": 10, "refusal_counts": 1, "sessions": 1}
    assert (await store.prune(cutoff, limit=10))["refusals"] == 10
    assert (await store.prune(cutoff, limit=10))["refusals"] == 5
    assert await store.prune(cutoff, limit=10) == {
        "refusals": 0,
        "refusal_counts": 0,
        "sessions": 0,
    }
    assert sorted(s.session_id for s in await store.sessions()) == ["billed", "live"]
    [row] = await store.usage()
    assert row.responses == 1
    assert await refused(store) == {}


@pytest.fixture
async def provider() -> AsyncIterator[MockProvider]:
    async with MockProvider(MockOptions(realtime_pacing=0)) as p:
        yield p


def _db_bytes(db: Path) -> int:
    return sum(p.stat().st_size for p in (db, db.with_name(db.name + "-wal")) if p.exists())


async def test_5000_bad_key_handshakes_with_8_kb_model_and_origin_grow_the_store_under_1_mb(
    provider: MockProvider,
) -> None:
    settings = mock_channel_settings(provider.url)  # auth: keys
    db = Path(make_url(settings.store.url).database or "")
    total, concurrency = 5000, 50
    async with running_relay(settings) as relay, aiohttp.ClientSession() as http:
        url = relay.realtime(model=HUGE)
        store = relay.relay.parts.store
        before = _db_bytes(db)
        codes: list[int | None] = []
        todo = iter(range(total))

        async def client() -> None:
            for _ in todo:
                async with http.ws_connect(
                    url,
                    headers={"Authorization": "Bearer rk_nobody00_not-a-real-secret"},
                    origin="https://" + HUGE,
                ) as ws:
                    message = await ws.receive(timeout=10)  # the error event, then the close
                    while message.type is aiohttp.WSMsgType.TEXT:
                        message = await ws.receive(timeout=10)
                    codes.append(ws.close_code)

        started = time.monotonic()
        async with asyncio.timeout(120):
            await asyncio.gather(*(client() for _ in range(concurrency)))
        elapsed = time.monotonic() - started
        await relay.relay.parts.writer.flush()
        async with asyncio.timeout(30):  # the counters are written every few seconds
            while (await refused(store)).get("invalid_api_key", 0) < total:
                await asyncio.sleep(0.2)
        grown = _db_bytes(db) - before
        rows = await store.refusals(limit=10 * total)
    print(f"\n{total} bad-key handshakes in {elapsed:.1f} s grew the store by {grown} bytes")
    assert codes == [4401] * total
    assert grown < 1_000_000
    assert len(rows) < total // 10
    assert all(len(r.origin or "") <= TEXT_LIMITS["origin"] for r in rows)
