"""The ledger journal: records the store cannot take wait on disk and are replayed, once."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from test_store import EXAMPLE_COST, T0, response, session_row, write_usage

from outages import TcpProxy, proxied
from rtrelay import config
from rtrelay.ledger import (
    ChannelAttempt,
    KeySpec,
    Refusal,
    SessionEnd,
    SessionStart,
    Store,
    TranscriptionRecord,
    Usage,
    open_store,
)
from rtrelay.ledger.journal import Journal, decode, encode, journal_path
from rtrelay.ledger.records import Record
from rtrelay.ledger.writer import LedgerWriter
from rtrelay.observe.metrics import Metrics
from store_fixtures import postgres_database


def start(session_id: str, key_id: str | None, prefix: str | None = None) -> SessionStart:
    return SessionStart(
        session_id=session_id,
        key_id=key_id,
        key_prefix=prefix,
        model="gpt-realtime",
        channel="c",
        started_at=T0,
        origin="https://app.example",
        channels_tried=(ChannelAttempt(channel="c", outcome="ok"),),
    )


def end(session_id: str) -> SessionEnd:
    return SessionEnd(session_id=session_id, ended_at=T0, status="completed", duration_s=1.5)


def refusal(request_id: str) -> Refusal:
    return Refusal(
        request_id=request_id, error_code="invalid_api_key", http_status=401, at=T0, model="m"
    )


async def until(check: Callable[[], bool], seconds: float = 30.0) -> None:
    async with asyncio.timeout(seconds):
        while not check():
            await asyncio.sleep(0.05)


def test_every_record_kind_reads_back_from_its_journal_line() -> None:
    records: list[Record] = [
        start("s1", "key_1", "abcd1234"),
        end("s1"),
        SessionEnd(
            session_id="s1",
            ended_at=T0,
            status="failed",
            duration_s=0.25,
            error_code="upstream_timeout",
            channels_tried=(ChannelAttempt(channel="c", outcome="timeout", detail="10 s"),),
        ),
        response("s1", "resp_1"),
        response("s1", "resp_2", model="someone-elses-model"),  # unpriced: cost None
        TranscriptionRecord(
            session_id="s1",
            item_id="item_1",
            model="whisper-1",
            usage=Usage(seconds=Decimal("12.25")),
            cost_usd=Decimal("0.001225"),
            at=T0,
        ),
        refusal("req_1"),
    ]
    for record in records:
        entry = decode(encode(record, tries=2))
        assert (entry.record, entry.tries) == (record, 2)
    with pytest.raises(ValueError, match="not a journal line"):
        decode(b'{"v": 1, "kind": "Nope", "record": {}}\n')


def test_the_journal_sits_beside_a_sqlite_store_and_can_be_turned_off(tmp_path: Path) -> None:
    assert journal_path(f"sqlite+aiosqlite:///{tmp_path}/r.db", "auto") == (
        tmp_path / "r.db.ledger-journal.jsonl"
    )
    assert journal_path("postgresql+asyncpg://u@h/db", "auto") == Path(
        "rtrelay-ledger-journal.jsonl"
    )
    assert journal_path("postgresql+asyncpg://u@h/db", str(tmp_path / "j")) == tmp_path / "j"
    assert journal_path("postgresql+asyncpg://u@h/db", "off") is None


def test_each_process_takes_its_own_file_and_finds_the_ones_the_dead_left(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    first, second = Journal(path), Journal(path)
    first.append([refusal("req_1")])
    second.append([refusal("req_2")])  # the first holds the lock on j.jsonl
    assert sorted(p.name for p in tmp_path.iterdir()) == ["j.jsonl", "j.jsonl.1"]
    assert [s.path for s in second.segments()] == [path.with_name("j.jsonl.1")]
    first.close()  # dies with a backlog: the file stays for whoever comes next
    segments = second.segments()
    assert [s.path.name for s in segments] == ["j.jsonl", "j.jsonl.1"]
    entries, bad, _ = segments[0].read(10)
    assert ([e.record for e in entries], bad) == ([refusal("req_1")], [])
    for segment in segments:
        segment.release()
    second.close()


async def test_a_store_that_keeps_up_leaves_no_journal_behind(tmp_path: Path) -> None:
    store = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'r.db'}")
    writer = LedgerWriter(store, journal=Journal(tmp_path / "j.jsonl"))
    writer.start()
    try:
        writer.submit(start("s1", None))
        writer.submit(response("s1", "r1"))
        await writer.flush()
    finally:
        await writer.close()
        await store.close()
    assert not (tmp_path / "j.jsonl").exists()
    assert writer.stats.written == 2


@pytest.fixture
async def outage_store(
    postgres_admin_url: str,
) -> AsyncIterator[tuple[TcpProxy, str, Store]]:
    """A fresh PostgreSQL database behind a proxy the test can cut, and a store on it."""
    with postgres_database(postgres_admin_url) as direct:
        async with proxied(direct) as (proxy, url):
            store = await open_store(url)
            try:
                yield proxy, url, store
            finally:
                proxy.restore()
                await store.close()


@pytest.mark.postgres
async def test_records_of_an_outage_are_journaled_then_replayed_once_it_ends(
    outage_store: tuple[TcpProxy, str, Store],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    proxy, _, store = outage_store
    key, _ = await store.create_key(KeySpec(name="k"))
    path = tmp_path / "j.jsonl"
    writer = LedgerWriter(store, journal=Journal(path))
    writer.start()
    try:
        writer.submit(start("s1", key.id, key.prefix))
        await writer.flush()
        proxy.cut()
        with caplog.at_level(logging.WARNING, logger="rtrelay.ledger"):
            for i in range(40):
                writer.submit(response("s1", f"r{i}"))
            writer.submit(start("s2", key.id, key.prefix))  # opened during the outage
            writer.submit(response("s2", "r0"))
            writer.submit(end("s1"))
            writer.submit(refusal("req_1"))
            async with asyncio.timeout(20):  # not 7.6 s of retries per record
                await writer.flush()
            assert writer.stats.journaled == 44
            assert len(path.read_bytes().splitlines()) == 44
            proxy.restore()
            await until(lambda: writer.snapshot()["journal_bytes"] == 0)
        messages = [r.getMessage() for r in caplog.records]
        assert "ledger store unreachable; records go to the journal until it answers" in messages
        assert "ledger store answers again; journal replayed" in messages
    finally:
        await writer.close()
    assert writer.stats.replayed == 44
    assert (writer.stats.dropped, writer.stats.rejected) == (0, 0)
    [row] = await store.usage(by="key")
    assert row.responses == 41
    assert await store.spent_usd(key.id) == 41 * EXAMPLE_COST
    s1 = await session_row(store, "s1")
    assert s1 is not None and s1.status == "completed"
    assert await session_row(store, "s2") is not None
    assert [r.request_id for r in await store.refusals()] == ["req_1"]
    assert not path.exists()  # caught up and closed: nothing left behind


@pytest.mark.postgres
async def test_what_close_cannot_write_is_replayed_at_the_next_start(
    outage_store: tuple[TcpProxy, str, Store],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    proxy, url, store = outage_store
    key, _ = await store.create_key(KeySpec(name="k"))
    path = tmp_path / "j.jsonl"
    writer = LedgerWriter(store, journal=Journal(path), queue_limit=8)
    writer.start()
    writer.submit(start("s1", key.id, key.prefix))
    await writer.flush()
    proxy.cut()
    for i in range(30):  # more than the queue holds: the rest spills to the journal
        writer.submit(response("s1", f"r{i}"))
    writer.submit(end("s1"))
    with caplog.at_level(logging.INFO, logger="rtrelay.ledger"):
        await writer.close()
    [closed] = [r for r in caplog.records if r.getMessage() == "ledger writer closed"]
    assert (closed.journaled, closed.dropped) == (31, 0)  # type: ignore[attr-defined]
    assert path.exists()
    proxy.restore()
    restarted = await open_store(url)
    try:
        again = LedgerWriter(restarted, journal=Journal(path))
        assert await again.recover() == 31
        await again.close()
        [row] = await restarted.usage(by="key")
        assert row.responses == 30
        assert await restarted.spent_usd(key.id) == 30 * EXAMPLE_COST
        s1 = await session_row(restarted, "s1")
        assert s1 is not None and s1.status == "completed"
        assert not path.exists()
    finally:
        await restarted.close()


async def test_replay_is_idempotent_and_waits_for_a_session_journaled_later(
    tmp_path: Path,
) -> None:
    store = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'r.db'}")
    try:
        key, _ = await store.create_key(KeySpec(name="k"))
        await store.open_sessions([start("s1", key.id, key.prefix)])
        await write_usage(store, response("s1", "r1"))
        await store.record_refusals([refusal("req_1")])
        path = tmp_path / "j.jsonl"
        dead = Journal(path)  # a process that died mid-replay, and out of order
        dead.append(
            [
                start("s1", key.id, key.prefix),  # already in the store
                response("s1", "r1"),  # already in the store
                refusal("req_1"),  # already in the store
                response("s2", "r1"),  # before its session
                end("s2"),
                start("s2", key.id, key.prefix),
                response("ghost", "r1"),  # a session that never was
            ]
        )
        dead.close()
        writer = LedgerWriter(store, journal=Journal(path))
        await writer.recover()
        writer.start()
        rejected = path.with_name("j.jsonl.rejected")
        await until(rejected.exists)
        await writer.close()
        [line] = rejected.read_bytes().splitlines()
        assert decode(line).record == response("ghost", "r1")
        [row] = await store.usage(by="key")
        assert row.responses == 2
        assert await store.spent_usd(key.id) == 2 * EXAMPLE_COST
        assert len(await store.refusals()) == 1
        s2 = await session_row(store, "s2")
        assert s2 is not None and s2.status == "completed"
        assert not path.exists()
        assert not path.with_name("j.jsonl.1").exists()
    finally:
        await store.close()


async def test_without_a_journal_lost_records_are_counted_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'r.db'}")
    writer = LedgerWriter(store, queue_limit=2)
    writer.start()
    try:
        with caplog.at_level(logging.ERROR, logger="rtrelay.ledger"):
            for i in range(5):  # the writer never ran: the queue overflows
                writer.submit(response("s1", f"r{i}"))
            await writer.flush()
    finally:
        await writer.close()
        await store.close()
    assert writer.stats.dropped == 5  # 3 with nowhere to spill, 2 for an unknown session
    assert any(
        r.getMessage() == "ledger records lost: no journal configured" for r in caplog.records
    )


async def test_the_writer_prunes_old_rows_but_never_usage(tmp_path: Path) -> None:
    store = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'r.db'}")
    old = T0 - timedelta(days=100)
    try:
        await store.open_sessions([start("billed", None)])
        await write_usage(store, response("billed", "r1", at=old))
        await store.open_sessions([
            SessionStart(
                session_id="empty", key_id=None, key_prefix=None, model="m", channel="c",
                started_at=old,
            )
        ])  # fmt: skip
        await store.close_session(end("empty"))
        writer = LedgerWriter(store, retention=timedelta(days=90), prune_first=0, clock=lambda: T0)
        writer.start()
        try:
            writer.submit(Refusal(request_id="req_old", error_code="x", http_status=401, at=old))
            writer.submit(refusal("req_new"))
            await writer.flush()
            await until(lambda: writer.stats.pruned >= 1)
        finally:
            await writer.close()
        assert [r.request_id for r in await store.refusals()] == ["req_new"]
        assert [s.session_id for s in await store.sessions()] == ["billed"]
        [row] = await store.usage()
        assert row.responses == 1
    finally:
        await store.close()


def test_store_settings_name_the_journal_and_the_retention() -> None:
    default = config.from_mapping({})
    assert (default.store.journal, default.store.retention_days) == ("auto", 90)
    off = config.from_mapping(
        {"store": {"retention_days": "off"}}, {"RTRELAY_STORE_JOURNAL": "off"}
    )
    assert (off.store.journal, off.store.retention_days) == ("off", None)
    with pytest.raises(config.ConfigError, match="retention_days"):
        config.from_mapping({"store": {"retention_days": -1}})


def test_ledger_metrics_fold_the_writers_running_totals() -> None:
    metrics = Metrics()
    snapshot = {"written": 5, "journaled": 3, "replayed": 0, "queue_depth": 7, "journal_bytes": 90}
    metrics.observe_ledger(snapshot)
    metrics.observe_ledger({**snapshot, "journaled": 4, "replayed": 4, "journal_bytes": 0})

    def value(name: str, **labels: str) -> float | None:
        return metrics.registry.get_sample_value(name, labels)

    assert value("rtrelay_ledger_records_total", fate="journaled") == 4
    assert value("rtrelay_ledger_records_total", fate="replayed") == 4
    assert value("rtrelay_ledger_records_total", fate="dropped") == 0
    assert value("rtrelay_ledger_queue_depth") == 7
    assert value("rtrelay_ledger_journal_bytes") == 0


@pytest.mark.postgres
async def test_a_journal_found_at_start_while_the_store_is_down_is_replayed_when_it_answers(
    outage_store: tuple[TcpProxy, str, Store], tmp_path: Path
) -> None:
    proxy, _, store = outage_store
    await store.open_sessions([start("s1", None)])
    path = tmp_path / "j.jsonl"
    dead = Journal(path)
    dead.append([response("s1", "r1"), end("s1")])
    dead.close()
    proxy.cut()
    writer = LedgerWriter(store, journal=Journal(path))
    assert await writer.recover() == 0
    writer.start()
    try:
        proxy.restore()
        await until(lambda: writer.stats.replayed == 2)
    finally:
        await writer.close()
    [row] = await store.usage()
    assert row.responses == 1
    assert not path.exists()
