"""A key's secret is never stored: not in the SQLite file (and its WAL), not in any PG row."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest

from rtrelay.ledger import KeySpec, open_store
from rtrelay.ledger.keys import hash_secret
from rtrelay.ledger.schema import metadata


def _needles(secret: str) -> list[bytes]:
    # rk_<prefix>_<random>: the random part may itself contain "_".
    random_part = secret.split("_", 2)[2]
    assert len(random_part) >= 32
    return [secret.encode(), random_part.encode(), random_part[:16].encode()]


def _read_store_files(directory: Path) -> bytes:
    """The database, its WAL and shared-memory file, whatever exists now."""
    return b"".join(p.read_bytes() for p in directory.iterdir() if p.name.startswith("store"))


async def test_sqlite_file_never_holds_a_secret(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    store = await open_store(f"sqlite+aiosqlite:///{path}")
    try:
        created, secret = await store.create_key(KeySpec(name="a"))
        _rotated, second = await store.rotate_key(created.id)
        # Read the files while the store is open: recent writes sit in the WAL.
        blobs = _read_store_files(tmp_path)
    finally:
        await store.close()
    blobs += _read_store_files(tmp_path)
    assert hash_secret(secret).encode() in blobs  # we are looking at the right bytes
    for s in (secret, second):
        for needle in _needles(s):
            assert needle not in blobs


@pytest.mark.postgres
async def test_postgres_rows_never_hold_a_secret(postgres_session_url: str) -> None:
    store = await open_store(postgres_session_url)
    try:
        created, secret = await store.create_key(KeySpec(name="a"))
        _, second = await store.rotate_key(created.id)
    finally:
        await store.close()
    conn = await asyncpg.connect(postgres_session_url.replace("+asyncpg", "", 1))
    try:
        dump = []
        for table in metadata.sorted_tables:
            rows = await conn.fetch(f'SELECT t::text AS row FROM "{table.name}" t')
            dump += [r["row"] for r in rows]
    finally:
        await conn.close()
    text = "\n".join(dump)
    assert hash_secret(secret) in text and created.prefix in text
    for s in (secret, second):
        for needle in _needles(s):
            assert needle.decode() not in text
