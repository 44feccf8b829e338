"""Many relays opening one fresh SQLite file at once (``serve --workers N``) all succeed."""

from __future__ import annotations

import asyncio
from pathlib import Path

from rtrelay.ledger.store import open_store


async def test_eight_stores_opening_a_fresh_sqlite_file_together_all_succeed(
    tmp_path: Path,
) -> None:
    for round_ in range(5):
        url = f"sqlite+aiosqlite:///{tmp_path / f'fresh-{round_}.db'}"
        stores = await asyncio.gather(*(open_store(url) for _ in range(8)))
        try:
            assert len(stores) == 8
            await asyncio.gather(*(s.ping() for s in stores))
        finally:
            for store in stores:
                await store.close()
