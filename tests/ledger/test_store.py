"""Every store operation, run on SQLite and on PostgreSQL (the ``store`` fixture).

Records are written through the methods ``LedgerWriter`` calls (``open_sessions``,
``record_usage``, ``close_session``, ``record_refusals``): the store has no others.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Literal

import pytest

from rtrelay.ledger import (
    ChannelAttempt,
    KeyNotFound,
    KeyRevoked,
    KeySpec,
    LedgerStore,
    PriceTable,
    Refusal,
    ReportStore,
    ResponseRecord,
    SessionEnd,
    SessionExists,
    SessionRow,
    SessionStart,
    Store,
    TranscriptionRecord,
    UnknownSession,
    Usage,
)
from rtrelay.ledger.records import UsageRecord
from rtrelay.ledger.store import resolve_key

T0 = datetime(2026, 3, 1, 23, 0, tzinfo=UTC)
PRICES = PriceTable()
EXAMPLE = Usage(input_text=119, input_audio=13, cached_text=64, output_text=30, output_audio=91)
EXAMPLE_COST = Decimal("0.0069656")


async def open_session(
    store: Store, session_id: str, key_id: str | None, *, model: str = "gpt-realtime", **kw: object
) -> None:
    key = await store.get_key(key_id) if key_id else None
    start = SessionStart(
        session_id=session_id,
        key_id=key_id,
        key_prefix=key.prefix if key else None,
        model=model,
        channel="primary",
        started_at=kw.pop("started_at", T0),  # type: ignore[arg-type]
        **kw,  # type: ignore[arg-type]
    )
    await store.open_sessions([start])


async def write_usage(store: LedgerStore, record: UsageRecord) -> bool:
    """Write one usage row as the writer does; ``True`` if it was new."""
    return await store.record_usage([record]) == 1


async def session_row(store: ReportStore, session_id: str) -> SessionRow | None:
    """The session as the sessions report lists it."""
    return next((s for s in await store.sessions(limit=1000) if s.session_id == session_id), None)


def response(
    session_id: str,
    response_id: str,
    *,
    model: str = "gpt-realtime",
    usage: Usage = EXAMPLE,
    at: datetime = T0,
) -> ResponseRecord:
    return ResponseRecord.priced_by(
        PRICES,
        session_id=session_id,
        response_id=response_id,
        model=model,
        status="completed",
        usage=usage,
        at=at,
    )


# -- keys ---------------------------------------------------------------------------------


async def test_create_and_find_key_roundtrips_every_limit(store: Store) -> None:
    expires = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    spec = KeySpec(
        name="prod app",
        models=("gpt-realtime", "gpt-realtime-mini"),
        max_sessions=3,
        sessions_per_minute=10,
        budget_usd=Decimal("12.3456789012"),
        expires_at=expires,
        origins=("https://app.example",),
    )
    created, secret = await store.create_key(spec)
    assert secret.startswith(f"rk_{created.prefix}_")
    assert created.id.startswith("key_")
    assert (created.name, created.models, created.origins) == (spec.name, spec.models, spec.origins)
    assert (created.max_sessions, created.sessions_per_minute) == (3, 10)
    assert created.budget_usd == Decimal("12.3456789012")
    assert created.expires_at == expires and created.revoked_at is None
    assert created.created_at.tzinfo is not None
    assert await store.find_key(secret) == created
    assert await store.get_key(created.id) == created
    assert await store.get_key_by_prefix(created.prefix) == created


async def test_limits_default_to_none_meaning_any(store: Store) -> None:
    _created, secret = await store.create_key(KeySpec(name="open"))
    found = await store.find_key(secret)
    assert found is not None
    assert found.models is None and found.origins is None and found.budget_usd is None
    assert found.max_sessions is None and found.expires_at is None


async def test_unknown_and_malformed_secrets_find_nothing(store: Store) -> None:
    _created, secret = await store.create_key(KeySpec(name="a"))
    forged = secret[:-4] + ("AAAA" if not secret.endswith("AAAA") else "BBBB")
    assert await store.find_key(forged) is None  # right prefix, wrong secret
    assert await store.find_key("rk_zzzzzzzz_" + "x" * 43) is None
    assert await store.find_key("sk-not-ours") is None
    assert await store.find_key("") is None


async def test_revoked_key_is_found_and_says_revoked(store: Store) -> None:
    created, secret = await store.create_key(KeySpec(name="a"))
    revoked = await store.revoke_key(created.id)
    assert revoked.revoked_at is not None
    found = await store.find_key(secret)
    assert found is not None and found.id == created.id
    assert found.inactive_reason(datetime.now(UTC) + timedelta(seconds=1)) == "revoked"
    again = await store.revoke_key(created.id)  # idempotent: keeps the first time
    assert again.revoked_at == revoked.revoked_at


async def test_expired_key_is_found_and_says_expired(store: Store) -> None:
    past = datetime.now(UTC) - timedelta(minutes=1)
    _created, secret = await store.create_key(KeySpec(name="a", expires_at=past))
    found = await store.find_key(secret)
    assert found is not None and found.inactive_reason(datetime.now(UTC)) == "expired"


async def test_rotate_keeps_identity_limits_and_spend_and_retires_the_old_secret(
    store: Store,
) -> None:
    created, old = await store.create_key(KeySpec(name="a", budget_usd=Decimal(5), max_sessions=2))
    await open_session(store, "s1", created.id)
    await write_usage(store, response("s1", "r1"))
    rotated, new = await store.rotate_key(created.id)
    assert new != old and rotated.prefix != created.prefix
    assert rotated.id == created.id
    assert (rotated.budget_usd, rotated.max_sessions, rotated.name) == (Decimal(5), 2, "a")
    assert await store.spent_usd(created.id) == EXAMPLE_COST
    now = datetime.now(UTC) + timedelta(seconds=1)
    fresh = await store.find_key(new)
    assert fresh is not None and fresh.is_active(now) and fresh.prefix == rotated.prefix
    stale = await store.find_key(old)
    assert stale is not None and stale.inactive_reason(now) == "revoked"
    assert stale.prefix == created.prefix
    # Either prefix still names the key, for operators reading old logs.
    assert (await store.get_key_by_prefix(created.prefix)) == rotated
    await store.revoke_key(created.id)
    with pytest.raises(KeyRevoked):
        await store.rotate_key(created.id)


async def test_concurrent_rotations_leave_exactly_one_live_secret(store: Store) -> None:
    created, first = await store.create_key(KeySpec(name="a"))
    results = await asyncio.gather(*(store.rotate_key(created.id) for _ in range(4)))
    later = datetime.now(UTC) + timedelta(seconds=1)
    live = []
    for secret in [first, *(s for _, s in results)]:
        found = await store.find_key(secret)
        assert found is not None
        if found.is_active(later):
            live.append(found.prefix)
    current = await store.get_key(created.id)
    assert current is not None and live == [current.prefix]


async def test_missing_keys_raise_key_not_found(store: Store) -> None:
    assert await store.get_key("key_nope") is None
    assert await store.get_key_by_prefix("zzzzzzzz") is None
    with pytest.raises(KeyNotFound):
        await store.revoke_key("key_nope")
    with pytest.raises(KeyNotFound):
        await store.rotate_key("key_nope")
    assert await store.spent_usd("key_nope") == 0


async def test_list_keys_in_creation_order(store: Store) -> None:
    a, _ = await store.create_key(KeySpec(name="a"))
    b, _ = await store.create_key(KeySpec(name="b"))
    assert [k.id for k in await store.list_keys()] == [a.id, b.id]


async def test_resolve_key_by_id_prefix_or_secret_start(store: Store) -> None:
    created, secret = await store.create_key(KeySpec(name="a"))
    for ref in (created.id, created.prefix, f"rk_{created.prefix}", secret):
        assert (await resolve_key(store, ref)) == created, ref
    assert await resolve_key(store, "nope") is None


# -- ledger -------------------------------------------------------------------------------


async def test_response_written_twice_is_stored_once(store: Store) -> None:
    key, _ = await store.create_key(KeySpec(name="a"))
    await open_session(store, "s1", key.id)
    record = response("s1", "resp_1")
    assert record.cost_usd == EXAMPLE_COST and record.priced
    assert await write_usage(store, record) is True
    assert await write_usage(store, record) is False
    rows = await store.usage(by="key")
    assert [(r.responses, r.cost_usd) for r in rows] == [(1, EXAMPLE_COST)]
    assert await store.spent_usd(key.id) == EXAMPLE_COST


async def test_concurrent_duplicates_are_stored_once(store: Store) -> None:
    key, _ = await store.create_key(KeySpec(name="a"))
    await open_session(store, "s1", key.id)
    results = await asyncio.gather(*(write_usage(store, response("s1", "r")) for _ in range(6)))
    assert sorted(results) == [False] * 5 + [True]
    assert await store.spent_usd(key.id) == EXAMPLE_COST


async def test_same_response_id_in_two_sessions_is_two_rows(store: Store) -> None:
    key, _ = await store.create_key(KeySpec(name="a"))
    await open_session(store, "s1", key.id)
    await open_session(store, "s2", key.id)
    assert await write_usage(store, response("s1", "resp_1"))
    assert await write_usage(store, response("s2", "resp_1"))
    assert await store.spent_usd(key.id) == 2 * EXAMPLE_COST


async def test_tokens_and_cost_are_stored_exactly(store: Store) -> None:
    key, _ = await store.create_key(KeySpec(name="a"))
    await open_session(store, "s1", key.id)
    big = Usage(
        input_text=3_000_000_000,
        input_audio=7,
        input_image=5,
        cached_text=1,
        cached_audio=2,
        cached_image=3,
        output_text=11,
        output_audio=13,
    )
    tiny = ResponseRecord(
        session_id="s1",
        response_id="tiny",
        model="m",
        status="completed",
        usage=Usage(input_text=1),
        cost_usd=Decimal("1E-10"),
        at=T0,
    )
    await write_usage(store, response("s1", "big", usage=big))
    await write_usage(store, tiny)
    [row] = await store.usage(by="key")
    assert (row.input_text, row.input_audio, row.input_image) == (3_000_000_001, 7, 5)
    assert (row.cached_text, row.cached_audio, row.cached_image) == (1, 2, 3)
    assert (row.output_text, row.output_audio) == (11, 13)
    expected = PRICES.cost("gpt-realtime", big)
    assert expected is not None
    assert row.cost_usd == expected + Decimal("1E-10")
    assert await store.spent_usd(key.id) == row.cost_usd


async def test_unknown_model_is_metered_and_flagged_unpriced(store: Store) -> None:
    key, _ = await store.create_key(KeySpec(name="a"))
    await open_session(store, "s1", key.id, model="gpt-9")
    record = response("s1", "r1", model="gpt-9")
    assert record.cost_usd is None and not record.priced
    await write_usage(store, record)
    await write_usage(store, response("s1", "r2"))
    by_model = {r.group: r for r in await store.usage(by="model")}
    assert by_model["gpt-9"].unpriced == 1 and by_model["gpt-9"].cost_usd == 0
    assert by_model["gpt-9"].output_audio == 91  # the tokens are still there
    assert by_model["gpt-realtime"].unpriced == 0
    assert await store.spent_usd(key.id) == EXAMPLE_COST
    [session] = await store.sessions()
    assert (session.responses, session.unpriced, session.cost_usd) == (2, 1, EXAMPLE_COST)


async def test_transcription_is_its_own_row_kind_keyed_by_item(store: Store) -> None:
    key, _ = await store.create_key(KeySpec(name="a"))
    await open_session(store, "s1", key.id)
    usage = Usage.from_transcription({"type": "duration", "seconds": 12.25})
    record = TranscriptionRecord.priced_by(
        PRICES, session_id="s1", item_id="item_1", model="whisper-1", usage=usage, at=T0
    )
    assert record.cost_usd == Decimal("0.001225")
    assert await write_usage(store, record)
    assert not await write_usage(store, record)
    # A response with the same id as the item is a different row kind.
    assert await write_usage(store, response("s1", "item_1"))
    [row] = await store.usage(by="key")
    assert (row.transcriptions, row.responses) == (1, 1)
    assert row.seconds == Decimal("12.25")
    assert row.cost_usd == EXAMPLE_COST + Decimal("0.001225")
    by_model = {r.group: r.cost_usd for r in await store.usage(by="model")}
    assert by_model == {"gpt-realtime": EXAMPLE_COST, "whisper-1": Decimal("0.001225")}


async def test_usage_for_a_session_never_opened_is_refused(store: Store) -> None:
    with pytest.raises(UnknownSession):
        await write_usage(store, response("ghost", "r1"))
    with pytest.raises(UnknownSession):
        await store.close_session(
            SessionEnd(session_id="ghost", ended_at=T0, status="completed", duration_s=1.0)
        )


async def test_sessions_without_a_key_are_metered(store: Store) -> None:
    await open_session(store, "anon", None)
    assert await write_usage(store, response("anon", "r1"))
    [row] = await store.usage(by="key")
    assert row.group is None and row.cost_usd == EXAMPLE_COST


async def test_opening_a_session_twice_says_it_exists(store: Store) -> None:
    await open_session(store, "s1", None)
    with pytest.raises(SessionExists) as caught:
        await open_session(store, "s1", None)
    assert caught.value.session_ids == ["s1"]


async def test_close_session_records_everything(store: Store) -> None:
    key, _ = await store.create_key(KeySpec(name="a"))
    tried = (
        ChannelAttempt(channel="east", outcome="upstream_timeout", detail="10000.0 ms"),
        ChannelAttempt(channel="primary", outcome="connected"),
    )
    await open_session(
        store,
        "s1",
        key.id,
        shape="beta",
        origin="https://app.example",
        request_id="req_1",
        node="host:1",
        channels_tried=tried,
    )
    [live] = await store.sessions(live_only=True)
    assert live.status == "live" and live.ended_at is None and live.channels_tried == tried
    end = SessionEnd(
        session_id="s1",
        ended_at=T0 + timedelta(seconds=95, milliseconds=250),
        status="failed",
        duration_s=95.25,
        frames_from_client=10,
        bytes_from_client=12_345,
        frames_from_upstream=20,
        bytes_from_upstream=9_876_543_210,
        client_close_code=None,
        upstream_close_code=1011,
        error_code="upstream_disconnected",
    )
    assert await store.close_session(end)
    assert not await store.close_session(end)  # the first close wins
    row = await session_row(store, "s1")
    assert row is not None
    assert (row.status, row.ended_at, row.duration_s) == ("failed", end.ended_at, 95.25)
    assert (row.frames_from_client, row.bytes_from_client) == (10, 12_345)
    assert (row.frames_from_upstream, row.bytes_from_upstream) == (20, 9_876_543_210)
    assert (row.client_close_code, row.upstream_close_code) == (None, 1011)
    assert row.error_code == "upstream_disconnected"
    assert (row.shape, row.origin) == ("beta", "https://app.example")
    assert (row.request_id, row.node, row.key_prefix) == ("req_1", "host:1", key.prefix)
    assert row.channels_tried == tried
    assert await store.sessions(live_only=True) == []


async def test_close_session_can_replace_the_channels_tried(
    store: Store,
) -> None:
    await open_session(store, "s1", None)
    tried = (ChannelAttempt(channel="b", outcome="connected"),)
    await store.close_session(
        SessionEnd(
            session_id="s1",
            ended_at=T0 + timedelta(seconds=5),
            status="completed",
            duration_s=4.5,
            channels_tried=tried,
            client_close_code=1000,
        )
    )
    row = await session_row(store, "s1")
    assert row is not None
    assert (row.duration_s, row.channels_tried, row.client_close_code) == (4.5, tried, 1000)


async def test_the_first_close_wins_a_late_one_settles_interrupted_and_ghosts_raise(
    store: Store,
) -> None:
    def end(session_id: str, status: Literal["completed", "failed"]) -> SessionEnd:
        return SessionEnd(session_id=session_id, ended_at=T0, status=status, duration_s=2.0)

    await open_session(store, "s1", None, node="n1")
    assert await store.close_session(end("s1", "failed"))
    assert not await store.close_session(end("s1", "completed"))  # the first close wins
    await open_session(store, "s2", None, node="n1")
    assert await store.mark_interrupted(node="n1") == 1
    assert await store.close_session(end("s2", "completed"))  # a late close still settles it
    statuses = {s.session_id: (s.status, s.duration_s) for s in await store.sessions()}
    assert statuses == {"s1": ("failed", 2.0), "s2": ("completed", 2.0)}
    with pytest.raises(UnknownSession):
        await store.close_session(end("ghost", "completed"))


async def test_mark_interrupted_settles_only_open_sessions(store: Store) -> None:
    key, _ = await store.create_key(KeySpec(name="a"))
    for sid, node in (("done", "n1"), ("open1", "n1"), ("open2", "n1"), ("other", "n2")):
        await open_session(store, sid, key.id, node=node)
    await write_usage(store, response("open1", "r1"))
    await store.close_session(
        SessionEnd(session_id="done", ended_at=T0, status="completed", duration_s=1.0)
    )
    assert await store.mark_interrupted(node="n1") == 2
    status = {s.session_id: s.status for s in await store.sessions()}
    assert status == {
        "done": "completed",
        "open1": "interrupted",
        "open2": "interrupted",
        "other": "live",
    }
    assert await store.mark_interrupted() == 1  # no node: every open session
    assert await store.mark_interrupted() == 0
    # Completed responses of an interrupted session are all still there.
    row = await session_row(store, "open1")
    assert row is not None and row.responses == 1 and row.cost_usd == EXAMPLE_COST


async def test_refusal_is_its_own_record_not_a_session(store: Store) -> None:
    key, _ = await store.create_key(KeySpec(name="a"))
    tried = (ChannelAttempt(channel="a", outcome="upstream_unavailable"),)
    await store.record_refusals(
        [
            Refusal(
                request_id="req_9",
                error_code="concurrency_limit_exceeded",
                http_status=429,
                at=T0,
                key_id=key.id,
                key_prefix=key.prefix,
                model="gpt-realtime",
                origin="https://x.example",
            ),
            Refusal(
                request_id="req_10",
                error_code="upstream_unavailable",
                http_status=None,
                close_code=4503,
                at=T0 + timedelta(seconds=1),
                channels_tried=tried,
            ),
        ]
    )
    assert await store.sessions() == []
    assert await store.usage() == []
    newest, oldest = await store.refusals()
    assert (newest.request_id, newest.close_code, newest.channels_tried) == ("req_10", 4503, tried)
    assert (oldest.error_code, oldest.http_status, oldest.key_id) == (
        "concurrency_limit_exceeded",
        429,
        key.id,
    )
    assert [r.request_id for r in await store.refusals(key_id=key.id)] == ["req_9"]


# -- reports ------------------------------------------------------------------------------


async def seed_report(store: Store) -> tuple[str, str]:
    """Two keys, two models, two UTC days (23:00 on Mar 1, 01:00 on Mar 2)."""
    a, _ = await store.create_key(KeySpec(name="alpha"))
    b, _ = await store.create_key(KeySpec(name="beta"))
    day2 = T0 + timedelta(hours=2)
    await open_session(store, "a1", a.id)
    await open_session(store, "a2", a.id, model="gpt-realtime-mini", started_at=day2)
    await open_session(store, "b1", b.id, started_at=day2)
    await write_usage(store, response("a1", "r1"))
    await write_usage(store, response("a1", "r2", at=T0 + timedelta(minutes=5)))
    await write_usage(store, response("a2", "r1", model="gpt-realtime-mini", at=day2))
    await write_usage(store, response("b1", "r1", at=day2))
    return a.id, b.id


async def test_usage_by_key_model_and_day(store: Store) -> None:
    a, b = await seed_report(store)
    mini = PRICES.cost("gpt-realtime-mini", EXAMPLE)
    assert mini is not None
    by_key = {r.group: r for r in await store.usage(by="key")}
    assert set(by_key) == {a, b}
    assert (by_key[a].name, by_key[a].sessions, by_key[a].responses) == ("alpha", 2, 3)
    assert by_key[a].cost_usd == 2 * EXAMPLE_COST + mini
    assert by_key[a].output_audio == 3 * 91
    assert (by_key[b].sessions, by_key[b].cost_usd) == (1, EXAMPLE_COST)

    by_model = {r.group: (r.responses, r.cost_usd) for r in await store.usage(by="model")}
    assert by_model == {"gpt-realtime": (3, 3 * EXAMPLE_COST), "gpt-realtime-mini": (1, mini)}

    by_day = [(r.group, r.responses, r.sessions) for r in await store.usage(by="day")]
    assert by_day == [("2026-03-01", 2, 1), ("2026-03-02", 2, 2)]


async def test_usage_filters_by_key_and_window(store: Store) -> None:
    a, _ = await seed_report(store)
    only_a = await store.usage(key_id=a, by="model")
    assert {r.group: r.responses for r in only_a} == {"gpt-realtime": 2, "gpt-realtime-mini": 1}
    # since inclusive, until exclusive
    window = await store.usage(since=T0 + timedelta(minutes=5), until=T0 + timedelta(hours=2))
    assert [(r.name, r.responses) for r in window] == [("alpha", 1)]
    assert await store.usage(since=T0 + timedelta(days=1)) == []
    with pytest.raises(ValueError, match="by"):
        await store.usage(by="week")  # type: ignore[arg-type]


async def test_sessions_listing_filters_and_orders_newest_first(store: Store) -> None:
    _a, b = await seed_report(store)
    # a2 and b1 started at the same instant: ties go by id.
    assert [s.session_id for s in await store.sessions()] == ["a2", "b1", "a1"]
    assert {s.session_id for s in await store.sessions(key_id=b)} == {"b1"}
    assert {s.session_id for s in await store.sessions(since=T0 + timedelta(hours=1))} == {
        "a2",
        "b1",
    }
    assert len(await store.sessions(limit=1)) == 1
    a1 = await session_row(store, "a1")
    assert a1 is not None and (a1.responses, a1.cost_usd) == (2, 2 * EXAMPLE_COST)
    assert await session_row(store, "nope") is None


async def test_ping_answers(store: Store) -> None:
    await store.ping()
