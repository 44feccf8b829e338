"""The one write path: one dispatch on record kind, and a writer that stops without losing one."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import get_args

import pytest
from test_journal import end, refusal, start, until
from test_store import T0, response

from rtrelay.ledger import SessionExists, TranscriptionRecord, Usage, open_store
from rtrelay.ledger.journal import Journal, decode
from rtrelay.ledger.records import Record
from rtrelay.ledger.writer import KINDS, LedgerWriter, _runs


def test_every_record_kind_has_exactly_one_way_to_the_store() -> None:
    assert set(KINDS) == set(get_args(Record))
    # A response and a transcription are both usage rows: one statement between them.
    assert KINDS[TranscriptionRecord] is KINDS[type(response("s", "r"))]


def test_records_queued_back_to_back_batch_by_kind_and_a_session_end_goes_alone() -> None:
    transcription = TranscriptionRecord(
        session_id="s1", item_id="i1", model="whisper-1", usage=Usage(), cost_usd=None, at=T0
    )
    queued: list[Record] = [
        start("s1", None),
        start("s2", None),
        response("s1", "r1"),
        transcription,
        response("s2", "r1"),
        end("s1"),
        end("s2"),
        refusal("req_1"),
        refusal("req_2"),
        response("s2", "r2"),
    ]
    assert [len(run) for run in _runs(queued)] == [2, 3, 1, 1, 2, 1]


async def test_a_replayed_session_start_already_in_the_store_says_so(tmp_path: Path) -> None:
    store = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'r.db'}")
    try:
        await store.open_sessions([start("s1", None)])
        with pytest.raises(SessionExists):
            await store.open_sessions([start("s2", None), start("s1", None)])
        assert [s.session_id for s in await store.sessions()] == ["s1"]  # nothing of s2
    finally:
        await store.close()


async def test_a_close_cancelled_while_a_write_hangs_journals_what_it_held_and_stays_cancelled(
    tmp_path: Path,
) -> None:
    db = tmp_path / "r.db"
    store = await open_store(f"sqlite+aiosqlite:///{db}")
    path = tmp_path / "j.jsonl"
    writer = LedgerWriter(store, journal=Journal(path))
    other = sqlite3.connect(db, isolation_level=None)
    try:
        await store.open_sessions([start("s1", None)])
        writer.start()
        other.execute("BEGIN IMMEDIATE")  # another writer holds the lock: the write waits
        for i in range(3):
            writer.submit(response("s1", f"r{i}"))
        await until(lambda: writer.queue_depth == 0)  # taken, and in flight
        writer.submit(response("s1", "r3"))  # queued behind it
        closing = asyncio.create_task(writer.close())
        await asyncio.sleep(0.2)
        assert not closing.done()
        closing.cancel()  # a shutdown that will not wait
        with pytest.raises(asyncio.CancelledError):
            await closing
        assert writer.stats.journaled == 4
        lines = path.read_bytes().splitlines()
        assert [decode(line).record for line in lines] == [
            response("s1", f"r{i}") for i in range(4)
        ]
    finally:
        other.execute("COMMIT")
        other.close()
        if writer.journal is not None:
            writer.journal.close()
        await store.close()
