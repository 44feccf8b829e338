"""The gate reads time only from the clocks it is given (no hidden ``time.time()``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from rtrelay.errors import InvalidApiKey
from rtrelay.gate.admission import Gate
from rtrelay.gate.limits import LeaseKeeper, MemoryLeases, MemoryRateLimiter
from rtrelay.gate.tokens import TokenSigner
from rtrelay.ledger import KeySpec, Store

SIGNER = TokenSigner(b"0123456789abcdef0123456789abcdef")
THEN = datetime(2031, 5, 1, 12, 0, tzinfo=UTC)
"""Years away from the real clock: a token judged by real time would be valid or not
for the wrong reason."""


def gate_at(store: Store, now: datetime) -> Gate:
    return Gate(
        keys=store,
        leases=LeaseKeeper(MemoryLeases()),
        rate=MemoryRateLimiter(),
        spend=None,
        tokens=SIGNER,
        wall_clock=lambda: now,
    )


async def test_token_expiry_is_judged_by_the_gates_wall_clock(store: Store) -> None:
    record, _ = await store.create_key(KeySpec(name="k"))
    expires_at = int((THEN + timedelta(minutes=10)).timestamp())
    token = SIGNER.mint(record.id, model="gpt-realtime", expires_at=expires_at)

    key, bound = await gate_at(store, THEN).authenticate(token)
    assert (key is not None and key.id, bound) == (record.id, "gpt-realtime")

    with pytest.raises(InvalidApiKey, match="expired"):
        await gate_at(store, THEN + timedelta(minutes=10)).authenticate(token)
