"""``SqlKeys``: the ``KeyStore`` job of the SQL store (API keys, their secrets and spend).

Keys change rarely and by an operator, so every change is an ordinary transaction
(``begin_write``) that reads and writes together; the handshake path only reads.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from rtrelay.ledger.engine import begin_write
from rtrelay.ledger.exceptions import KeyNotFound, KeyRevoked
from rtrelay.ledger.keys import (
    KeyRecord,
    KeySpec,
    hash_secret,
    new_key_id,
    new_secret,
    secret_matches,
    split_secret,
)
from rtrelay.ledger.schema import api_key_secrets, api_keys

__all__ = ["SqlKeys", "utcnow"]

_PREFIX_ATTEMPTS: Final = 5


def utcnow() -> datetime:
    return datetime.now(UTC)


class SqlKeys:
    """Create, find, change, revoke and rotate keys; read a key's spend.

    Args:
        clock: the aware UTC time stamped on keys (tests pass a fixed one).
    """

    def __init__(self, engine: AsyncEngine, *, clock: Callable[[], datetime] = utcnow) -> None:
        self._engine = engine
        self._clock = clock

    async def create_key(self, spec: KeySpec) -> tuple[KeyRecord, str]:
        now = self._clock()
        key_id = new_key_id()
        for attempt in range(_PREFIX_ATTEMPTS):
            prefix, secret = new_secret()
            try:
                async with begin_write(self._engine) as conn:
                    await conn.execute(
                        api_keys.insert().values(
                            id=key_id,
                            prefix=prefix,
                            spent_usd=Decimal(0),
                            created_at=now,
                            **_spec_values(spec),
                        )
                    )
                    await _add_secret(conn, key_id, prefix, secret, now)
            except IntegrityError:
                if attempt == _PREFIX_ATTEMPTS - 1:
                    raise
                continue  # a prefix collision (1 in 36**8): draw again
            record = await self.get_key(key_id)
            assert record is not None
            return record, secret
        raise AssertionError("unreachable")

    async def find_key(self, secret: str) -> KeyRecord | None:
        prefix = split_secret(secret)
        if prefix is None:
            return None
        query = (
            sa.select(api_keys, api_key_secrets.c.secret_sha256, api_key_secrets.c.retired_at)
            .join(api_key_secrets, api_key_secrets.c.key_id == api_keys.c.id)
            .where(api_key_secrets.c.prefix == prefix)
        )
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        if row is None or not secret_matches(secret, row.secret_sha256):
            return None
        record = _key_record(row)
        # A secret retired by rotation reads as revoked, so the caller can say why.
        retired = row.retired_at
        if retired is not None and (record.revoked_at is None or retired < record.revoked_at):
            return dataclasses.replace(record, prefix=prefix, revoked_at=retired)
        return dataclasses.replace(record, prefix=prefix)

    async def get_key(self, key_id: str) -> KeyRecord | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(sa.select(api_keys).where(api_keys.c.id == key_id))).first()
        return None if row is None else _key_record(row)

    async def get_key_by_prefix(self, prefix: str) -> KeyRecord | None:
        query = (
            sa.select(api_keys)
            .join(api_key_secrets, api_key_secrets.c.key_id == api_keys.c.id)
            .where(api_key_secrets.c.prefix == prefix)
        )
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else _key_record(row)

    async def list_keys(self) -> list[KeyRecord]:
        query = sa.select(api_keys).order_by(api_keys.c.created_at, api_keys.c.id)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [_key_record(r) for r in rows]

    async def revoke_key(self, key_id: str) -> KeyRecord:
        async with begin_write(self._engine) as conn:
            await conn.execute(
                api_keys.update()
                .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=self._clock())
            )
            row = (await conn.execute(sa.select(api_keys).where(api_keys.c.id == key_id))).first()
        if row is None:
            raise KeyNotFound(key_id)
        return _key_record(row)

    async def rotate_key(self, key_id: str) -> tuple[KeyRecord, str]:
        now = self._clock()
        for attempt in range(_PREFIX_ATTEMPTS):
            prefix, secret = new_secret()
            try:
                async with begin_write(self._engine) as conn:
                    # FOR UPDATE (PostgreSQL; SQLite's BEGIN IMMEDIATE already serialises):
                    # two rotations at once must not leave two live secrets.
                    locked = sa.select(api_keys).where(api_keys.c.id == key_id).with_for_update()
                    row = (await conn.execute(locked)).first()
                    if row is None:
                        raise KeyNotFound(key_id)
                    if row.revoked_at is not None:
                        raise KeyRevoked(key_id)
                    await conn.execute(
                        api_key_secrets.update()
                        .where(
                            api_key_secrets.c.key_id == key_id,
                            api_key_secrets.c.retired_at.is_(None),
                        )
                        .values(retired_at=now)
                    )
                    await _add_secret(conn, key_id, prefix, secret, now)
                    await conn.execute(
                        api_keys.update().where(api_keys.c.id == key_id).values(prefix=prefix)
                    )
            except IntegrityError:
                if attempt == _PREFIX_ATTEMPTS - 1:
                    raise
                continue
            record = await self.get_key(key_id)
            assert record is not None
            return record, secret
        raise AssertionError("unreachable")

    async def update_key(self, key_id: str, spec: KeySpec) -> KeyRecord:
        async with begin_write(self._engine) as conn:
            done = await conn.execute(
                api_keys.update().where(api_keys.c.id == key_id).values(**_spec_values(spec))
            )
            if done.rowcount == 0:
                raise KeyNotFound(key_id)
            row = (await conn.execute(sa.select(api_keys).where(api_keys.c.id == key_id))).one()
        return _key_record(row)

    async def spent_usd(self, key_id: str) -> Decimal:
        # A running total kept in the same transaction as each ledger row: O(1).
        query = sa.select(api_keys.c.spent_usd).where(api_keys.c.id == key_id)
        async with self._engine.connect() as conn:
            value = (await conn.execute(query)).scalar()
        return Decimal(0) if value is None else value


async def _add_secret(
    conn: AsyncConnection, key_id: str, prefix: str, secret: str, now: datetime
) -> None:
    await conn.execute(
        api_key_secrets.insert().values(
            prefix=prefix, key_id=key_id, secret_sha256=hash_secret(secret), created_at=now
        )
    )


def _spec_values(spec: KeySpec) -> dict[str, Any]:
    """A key's settings as its columns (creating it, or changing its limits)."""
    return {
        "name": spec.name,
        "models": _dump_names(spec.models),
        "max_sessions": spec.max_sessions,
        "sessions_per_minute": spec.sessions_per_minute,
        "budget_usd": spec.budget_usd,
        "origins": _dump_names(spec.origins),
        "expires_at": spec.expires_at,
    }


def _dump_names(names: Sequence[str] | None) -> str | None:
    return None if names is None else json.dumps(list(names))


def _load_names(text: str | None) -> tuple[str, ...] | None:
    return None if text is None else tuple(json.loads(text))


def _key_record(row: Row[Any]) -> KeyRecord:
    return KeyRecord(
        id=row.id,
        prefix=row.prefix,
        name=row.name,
        models=_load_names(row.models),
        max_sessions=row.max_sessions,
        sessions_per_minute=row.sessions_per_minute,
        budget_usd=row.budget_usd,
        origins=_load_names(row.origins),
        created_at=row.created_at,
        revoked_at=row.revoked_at,
        expires_at=row.expires_at,
    )
