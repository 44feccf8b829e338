"""rtrelay.ledger: the store (keys, sessions, per-response usage), prices and reports.

``open_store(url)`` returns a ``Store`` (its jobs: ``KeyStore``, ``LedgerStore``,
``ReportStore``); the relay writes records through a ``LedgerSink`` (``LedgerWriter``);
everything else here is plain values.
"""

from __future__ import annotations

from rtrelay.ledger.exceptions import (
    KeyNotFound,
    KeyRevoked,
    SessionExists,
    StoreError,
    StoreUnavailable,
    UnknownSession,
)
from rtrelay.ledger.keys import KeyRecord, KeySpec
from rtrelay.ledger.prices import DEFAULT_PRICES, Price, PriceTable, Usage, cost
from rtrelay.ledger.records import (
    CallRecord,
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
from rtrelay.ledger.store import CallStore, KeyStore, LedgerStore, ReportStore, Store, open_store
from rtrelay.ledger.writer import LedgerSink, LedgerWriter

__all__ = [
    "DEFAULT_PRICES",
    "CallRecord",
    "CallStore",
    "ChannelAttempt",
    "Grouping",
    "KeyNotFound",
    "KeyRecord",
    "KeyRevoked",
    "KeySpec",
    "KeyStore",
    "LedgerSink",
    "LedgerStore",
    "LedgerWriter",
    "Price",
    "PriceTable",
    "Refusal",
    "ReportStore",
    "ResponseRecord",
    "SessionEnd",
    "SessionExists",
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
