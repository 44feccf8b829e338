"""A database that stops answering without refusing (a dead switch, packets dropped) must
hold up no ledger record: each record goes to the journal once its write times out.

Found by the cluster test (issue 16): pruning had no timeout, so when its hourly run
came due during such an outage it waited on the dead connection for as long as TCP
kept it, and every record queued behind it stayed in memory, neither written nor
journaled (a crash then would lose them).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from test_journal import start, until
from test_store import response

from outages import proxied
from rtrelay.ledger import open_store, writer
from rtrelay.ledger.journal import Journal
from rtrelay.ledger.writer import LedgerWriter
from store_fixtures import PG_ADMIN_URL, postgres_database

pytestmark = pytest.mark.postgres


async def test_records_reach_the_journal_while_the_database_is_black_holed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writer, "WRITE_TIMEOUT_S", 1.0)  # the test's patience, not the relay's
    with postgres_database(PG_ADMIN_URL) as url:
        async with proxied(url) as (proxy, through):
            store = await open_store(through)
            ledger = LedgerWriter(
                store,
                journal=Journal(tmp_path / "j.jsonl"),
                retention=timedelta(days=1),
                prune_first=0.5,  # pruning comes due during the outage
            )
            try:
                await store.open_sessions([start("s1", None)])
                ledger.start()
                proxy.stall()
                ledger.submit(response("s1", "r0"))
                await until(lambda: ledger.stats.journaled == 1, 20)
                for i in (1, 2):  # the journal has a backlog: straight there, no upkeep first
                    ledger.submit(response("s1", f"r{i}"))
                await until(lambda: ledger.stats.journaled == 3, 20)
                proxy.restore()
                await until(lambda: ledger.stats.replayed == 3, 30)
                assert [u.response_id for u in await store.session_usage("s1")] == [
                    "r0",
                    "r1",
                    "r2",
                ]
            finally:
                proxy.restore()
                await ledger.close()
                if ledger.journal is not None:
                    ledger.journal.close()
                await store.close()
