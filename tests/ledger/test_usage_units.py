"""Every usage row says its unit; seconds of GPT-Live and translation are billed once,
on SQLite and PostgreSQL, and survive migration 0006 and the journal."""

from __future__ import annotations

from decimal import Decimal

import sqlalchemy as sa
from test_store import EXAMPLE_COST, PRICES, T0, open_session, response

from rtrelay.console.sessions import timeline
from rtrelay.ledger import KeySpec, Store, TranscriptionRecord, Usage, open_store
from rtrelay.ledger.engine import create_engine
from rtrelay.ledger.journal import decode, encode
from rtrelay.ledger.migrate import upgrade
from rtrelay.ledger.records import DurationRecord
from rtrelay.ledger.schema import TOKEN_COLUMNS, ExactDecimal, UTCDateTime, usage_records
from rtrelay.ledger.views import session_view


def live(session_id: str, ms: int, seconds: str) -> DurationRecord:
    return DurationRecord.priced_by(
        PRICES,
        session_id=session_id,
        ref=f"live:{ms}",
        model="gpt-live-1",
        seconds=Decimal(seconds),
        at=T0,
    )


async def test_duration_rows_are_billed_once_and_reported_in_seconds(store: Store) -> None:
    key, _ = await store.create_key(KeySpec(name="k"))
    await open_session(store, "s1", key.id, model="gpt-live-1")
    rows = [live("s1", 30_000, "30"), live("s1", 90_000, "60"), live("s1", 30_000, "30")]
    assert await store.record_usage(rows) == 2
    assert await store.record_usage(rows) == 0  # a replayed journal or event: nothing new
    assert await store.spent_usd(key.id) == Decimal("0.075")  # 90 s at $0.05 a minute
    [row] = await store.usage(by="model")
    assert (row.group, row.seconds, row.durations, row.responses) == (
        "gpt-live-1",
        Decimal(90),
        2,
        0,
    )
    assert row.cost_usd == Decimal("0.075")
    [listed] = await store.sessions()
    assert (listed.seconds, listed.cost_usd) == (Decimal(90), Decimal("0.075"))
    assert session_view(listed)["seconds"] == "90"
    back = await store.session_usage("s1")
    assert [(r.ref, r.usage.seconds) for r in back if isinstance(r, DurationRecord)] == [
        ("live:30000", Decimal(30)),
        ("live:90000", Decimal(60)),
    ]


async def test_each_row_stores_its_unit(store: Store) -> None:
    await open_session(store, "s1", None)
    whisper = TranscriptionRecord.priced_by(
        PRICES,
        session_id="s1",
        item_id="item_1",
        model="gpt-realtime-whisper",
        usage=Usage(seconds=Decimal("6")),
        at=T0,
    )
    assert whisper.cost_usd == Decimal("0.0017")  # $0.017 a minute
    await store.record_usage([response("s1", "r1"), whisper, live("s1", 1000, "1")])
    async with store._engine.connect() as conn:  # type: ignore[attr-defined]
        units = dict(
            (await conn.execute(sa.select(usage_records.c.ref, usage_records.c.unit))).all()
        )
    assert units == {"r1": "tokens", "item_1": "seconds", "live:1000": "seconds"}
    [row] = await store.usage(by="key")
    assert row.cost_usd == EXAMPLE_COST + Decimal("0.0017") + Decimal("0.0008333333")


def test_a_duration_record_round_trips_the_journal_and_old_lines_still_read() -> None:
    record = live("s1", 2500, "2.5")
    assert decode(encode(record)).record == record
    old = (
        b'{"v":1,"kind":"TranscriptionRecord","tries":0,"record":{"session_id":"s1",'
        b'"item_id":"i","model":"whisper-1","usage":{"transcription_seconds":"12.25"},'
        b'"cost_usd":"0.001225","at":"2026-03-01T23:00:00+00:00"}}'
    )
    assert decode(old).record.usage == Usage(seconds=Decimal("12.25"))  # type: ignore[union-attr]


async def test_revision_0006_keeps_seconds_and_marks_duration_rows(fresh_store_url: str) -> None:
    engine = create_engine(fresh_store_url)
    old_sessions = sa.table(
        "rtrelay_sessions",
        *(sa.column(name) for name in ("id", "model", "channel", "status", "shape")),
        sa.column("started_at", UTCDateTime()),
    )
    old_usage = sa.table(
        "rtrelay_usage",
        *(sa.column(name) for name in ("session_id", "kind", "ref", "model", "priced")),
        *(sa.column(name) for name in TOKEN_COLUMNS),
        sa.column("at", UTCDateTime()),
        sa.column("transcription_seconds", ExactDecimal()),
    )
    try:
        await upgrade(engine, "0005")
        async with engine.begin() as conn:
            await conn.execute(
                old_sessions.insert().values(
                    id="s_old",
                    model="m",
                    channel="c",
                    status="completed",
                    shape="ga",
                    started_at=T0,
                )
            )
            for ref, seconds, text_in in (("item_1", Decimal("5.5"), 0), ("r1", Decimal(0), 10)):
                tokens = {c: 0 for c in TOKEN_COLUMNS} | {"input_text": text_in}
                await conn.execute(
                    old_usage.insert().values(
                        session_id="s_old",
                        kind="transcription",
                        ref=ref,
                        model="m",
                        priced=True,
                        at=T0,
                        transcription_seconds=seconds,
                        **tokens,
                    )
                )
    finally:
        await engine.dispose()
    store = await open_store(fresh_store_url)  # migrates to head
    try:
        async with store._engine.connect() as conn:  # type: ignore[attr-defined]
            query = sa.select(usage_records.c.ref, usage_records.c.unit, usage_records.c.seconds)
            rows = (await conn.execute(query)).all()
        assert sorted(rows) == [("item_1", "seconds", Decimal("5.5")), ("r1", "tokens", 0)]
    finally:
        await store.close()


def test_the_console_timeline_shows_a_duration_row_in_seconds() -> None:
    [entry] = timeline(None, [live("s1", 90_000, "60")], None)
    assert entry.what == "audio live:90000"
    assert entry.detail == "gpt-live-1; 60 s of audio; $0.05"
