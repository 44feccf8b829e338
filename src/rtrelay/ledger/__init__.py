"""rtrelay.ledger: the store (keys, sessions, per-response usage), prices and reports.

``open_store(url)`` returns a ``Store``; everything else here is plain values.
"""

from __future__ import annotations

from rtrelay.ledger.exceptions import (
    KeyNotFound,
    KeyRevoked,
    StoreError,
    StoreUnavailable,
    UnknownSession,
)
from rtrelay.ledger.keys import KeyRecord, KeySpec
from rtrelay.ledger.prices import DEFAULT_PRICES, Price, PriceTable, Usage, cost
from rtrelay.ledger.records import (
    ChannelAttempt,
    Grouping,
    Refusal,
    ResponseRecord,
    SessionEnd,
    SessionRow,
    SessionStart,
    SessionStatus,
    TranscriptionRecord,
    UsageRow,
)
from rtrelay.ledger.store import Store, open_store

__all__ = [
    "DEFAULT_PRICES",
    "ChannelAttempt",
    "Grouping",
    "KeyNotFound",
    "KeyRecord",
    "KeyRevoked",
    "KeySpec",
    "Price",
    "PriceTable",
    "Refusal",
    "ResponseRecord",
    "SessionEnd",
    "SessionRow",
    "SessionStart",
    "SessionStatus",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "TranscriptionRecord",
    "UnknownSession",
    "Usage",
    "UsageRow",
    "cost",
    "open_store",
]
