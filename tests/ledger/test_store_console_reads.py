"""What the console reads and changes beyond the admin API: one session with its usage
rows (the session page's timeline) and a key's new limits. SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from rtrelay.ledger import (
    KeyNotFound,
    KeySpec,
    PriceTable,
    ResponseRecord,
    SessionEnd,
    SessionStart,
    Store,
    TranscriptionRecord,
    Usage,
)

T0 = datetime(2026, 3, 1, 23, 0, tzinfo=UTC)
PRICES = PriceTable()


async def test_one_session_reads_back_with_its_usage_in_order(store: Store) -> None:
    key, _ = await store.create_key(KeySpec(name="k"))
    await store.open_sessions(
        [
            SessionStart(
                session_id=sid,
                key_id=key.id,
                key_prefix=key.prefix,
                model="gpt-realtime",
                channel="primary",
                started_at=T0,
            )
            for sid in ("sess_a", "sess_b")
        ]
    )
    usage = Usage(input_text=10, input_audio=5, cached_text=4, output_audio=20)
    first = ResponseRecord.priced_by(
        PRICES,
        session_id="sess_a",
        response_id="resp_1",
        model="gpt-realtime",
        status="completed",
        usage=usage,
        at=T0 + timedelta(seconds=2),
    )
    asr = TranscriptionRecord.priced_by(
        PRICES,
        session_id="sess_a",
        item_id="item_1",
        model="whisper-1",
        usage=Usage(seconds=Decimal("1.5")),
        at=T0 + timedelta(seconds=1),
    )
    other = ResponseRecord.priced_by(
        PRICES,
        session_id="sess_b",
        response_id="resp_9",
        model="gpt-realtime",
        status="completed",
        usage=usage,
        at=T0,
    )
    await store.record_usage([first, asr, other])
    await store.close_session(
        SessionEnd(
            session_id="sess_a",
            ended_at=T0 + timedelta(seconds=3),
            status="completed",
            duration_s=3.0,
            client_close_code=1008,
            upstream_close_code=1001,
            error_code="ended_by_operator",
        )
    )
    row = await store.session("sess_a")
    assert row is not None
    assert (row.session_id, row.status, row.error_code) == (
        "sess_a",
        "completed",
        "ended_by_operator",
    )
    assert (row.client_close_code, row.upstream_close_code) == (1008, 1001)
    assert row.responses == 1
    assert row.cost_usd == (first.cost_usd or 0) + (asr.cost_usd or 0)
    assert await store.session_usage("sess_a") == [asr, first]
    assert await store.session("sess_missing") is None
    assert await store.session_usage("sess_missing") == []


async def test_update_key_changes_its_limits_and_keeps_its_identity(store: Store) -> None:
    record, secret = await store.create_key(KeySpec(name="before", max_sessions=1))
    expires = T0 + timedelta(days=400)
    spec = KeySpec(
        name="after",
        models=("gpt-realtime",),
        max_sessions=5,
        sessions_per_minute=30,
        budget_usd=Decimal("12.50"),
        expires_at=expires,
        origins=("https://app.example",),
    )
    updated = await store.update_key(record.id, spec)
    assert (updated.id, updated.prefix, updated.created_at) == (
        record.id,
        record.prefix,
        record.created_at,
    )
    assert (updated.name, updated.models, updated.origins) == (
        "after",
        ("gpt-realtime",),
        ("https://app.example",),
    )
    assert (updated.max_sessions, updated.sessions_per_minute, updated.budget_usd) == (
        5,
        30,
        Decimal("12.50"),
    )
    assert updated.expires_at == expires
    assert await store.find_key(secret) == updated  # the secret still works
    cleared = await store.update_key(record.id, KeySpec(name="after"))
    assert (cleared.models, cleared.max_sessions, cleared.budget_usd, cleared.expires_at) == (
        None,
        None,
        None,
        None,
    )


async def test_update_key_of_an_unknown_key_raises(store: Store) -> None:
    with pytest.raises(KeyNotFound):
        await store.update_key("key_nope", KeySpec(name="x"))
