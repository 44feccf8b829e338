"""The tables, as SQLAlchemy Core metadata, and the column types that store rtrelay's values.

The migrations in ``migrations/versions`` create exactly these tables; a test
compares them. SQLite has neither exact decimals nor time zones, so money is an
integer count of ``MONEY_QUANTUM`` there (exact, and ``SUM`` stays exact) and
times are naive UTC strings; PostgreSQL gets ``NUMERIC`` and ``TIMESTAMPTZ``. The
channels a session or a refusal tried are a JSON list in a text column
(``AttemptList``), so the writes and the reports that read them back share one codec.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import TypeEngine

from rtrelay.ledger.prices import MONEY_QUANTUM, money
from rtrelay.ledger.records import ChannelAttempt

__all__ = [
    "TOKEN_COLUMNS",
    "AttemptList",
    "ExactDecimal",
    "UTCDateTime",
    "api_key_secrets",
    "api_keys",
    "calls",
    "metadata",
    "refusal_counts",
    "refusals",
    "sessions",
    "usage_records",
    "utc_day",
]

_SCALE: Final = Decimal(1) / MONEY_QUANTUM  # 10**10


class ExactDecimal(sa.types.TypeDecorator[Decimal]):
    """``Decimal`` with 10 places: NUMERIC(28, 10), or a scaled BIGINT on SQLite."""

    impl = sa.Numeric(28, 10)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(sa.BigInteger())
        return dialect.type_descriptor(sa.Numeric(28, 10, asdecimal=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        exact = Decimal(value).quantize(MONEY_QUANTUM)
        if dialect.name == "sqlite":
            return int(exact * _SCALE)
        return exact

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return money(Decimal(int(value)) / _SCALE)
        return money(Decimal(value))


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, on both databases."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime) or value.tzinfo is None:
            raise ValueError(f"expected a timezone-aware datetime, got {value!r}")
        utc = value.astimezone(UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class AttemptList(sa.types.TypeDecorator[tuple[ChannelAttempt, ...]]):
    """``ChannelAttempt``s as a JSON list in a ``TEXT`` column; ``NULL`` reads as none."""

    impl = sa.Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return json.dumps(
            [{"channel": a.channel, "outcome": a.outcome, "detail": a.detail} for a in value]
        )

    def process_result_value(self, value: Any, dialect: Dialect) -> tuple[ChannelAttempt, ...]:
        if not value:
            return ()
        return tuple(
            ChannelAttempt(channel=a["channel"], outcome=a["outcome"], detail=a.get("detail"))
            for a in json.loads(value)
        )


class utc_day(FunctionElement[str]):  # lower case: reads like the SQL function it renders
    """``YYYY-MM-DD`` of a ``UTCDateTime`` column, in UTC."""

    type = sa.String()
    name = "utc_day"
    inherit_cache = True


@compiles(utc_day, "sqlite")
def _utc_day_sqlite(element: utc_day, compiler: Any, **kw: Any) -> str:
    # Stored as 'YYYY-MM-DD HH:MM:SS.ffffff' in UTC.
    return f"substr({compiler.process(element.clauses, **kw)}, 1, 10)"


@compiles(utc_day, "postgresql")
def _utc_day_postgresql(element: utc_day, compiler: Any, **kw: Any) -> str:
    arg = compiler.process(element.clauses, **kw)
    return f"to_char(({arg}) AT TIME ZONE 'UTC', 'YYYY-MM-DD')"


_BIGINT_ID: Final = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
"""SQLite only auto-increments an ``INTEGER PRIMARY KEY``."""

metadata: Final = sa.MetaData()

api_keys: Final = sa.Table(
    "rtrelay_api_keys",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("prefix", sa.String(16), nullable=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("models", sa.Text, nullable=True, comment="JSON list; NULL = any"),
    sa.Column("max_sessions", sa.Integer, nullable=True),
    sa.Column("sessions_per_minute", sa.Integer, nullable=True),
    sa.Column("budget_usd", ExactDecimal, nullable=True),
    sa.Column("origins", sa.Text, nullable=True, comment="JSON list; NULL = any"),
    sa.Column("spent_usd", ExactDecimal, nullable=False, server_default="0"),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("revoked_at", UTCDateTime, nullable=True),
    sa.Column("expires_at", UTCDateTime, nullable=True),
)

api_key_secrets: Final = sa.Table(
    "rtrelay_api_key_secrets",
    metadata,
    sa.Column("prefix", sa.String(16), primary_key=True),
    sa.Column("key_id", sa.String(32), sa.ForeignKey("rtrelay_api_keys.id"), nullable=False),
    sa.Column("secret_sha256", sa.String(64), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("retired_at", UTCDateTime, nullable=True),
    sa.Index("ix_rtrelay_api_key_secrets_key_id", "key_id"),
)

sessions: Final = sa.Table(
    "rtrelay_sessions",
    metadata,
    sa.Column("id", sa.String(128), primary_key=True),
    sa.Column("key_id", sa.String(32), sa.ForeignKey("rtrelay_api_keys.id"), nullable=True),
    sa.Column("key_prefix", sa.String(16), nullable=True),
    sa.Column("model", sa.Text, nullable=False),
    sa.Column("channel", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("shape", sa.String(8), nullable=False),
    sa.Column("origin", sa.Text, nullable=True),
    sa.Column("request_id", sa.String(128), nullable=True),
    sa.Column("node", sa.Text, nullable=True),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("ended_at", UTCDateTime, nullable=True),
    sa.Column("duration_ms", sa.BigInteger, nullable=True),
    sa.Column("frames_from_client", sa.BigInteger, nullable=True),
    sa.Column("bytes_from_client", sa.BigInteger, nullable=True),
    sa.Column("frames_from_upstream", sa.BigInteger, nullable=True),
    sa.Column("bytes_from_upstream", sa.BigInteger, nullable=True),
    sa.Column("client_close_code", sa.Integer, nullable=True),
    sa.Column("upstream_close_code", sa.Integer, nullable=True),
    sa.Column("error_code", sa.String(64), nullable=True),
    sa.Column("channels_tried", AttemptList, nullable=False, server_default="[]"),
    sa.Column("transport", sa.String(16), nullable=False, server_default="websocket"),
    sa.Index("ix_rtrelay_sessions_key_started", "key_id", "started_at"),
    sa.Index("ix_rtrelay_sessions_started", "started_at"),
    sa.Index("ix_rtrelay_sessions_status", "status"),
)

usage_records: Final = sa.Table(
    "rtrelay_usage",
    metadata,
    sa.Column("id", _BIGINT_ID, primary_key=True, autoincrement=True),
    sa.Column("session_id", sa.String(128), sa.ForeignKey("rtrelay_sessions.id"), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False, comment="response | transcription"),
    sa.Column("ref", sa.String(128), nullable=False, comment="response id | item id"),
    sa.Column("key_id", sa.String(32), nullable=True, comment="copied from the session"),
    sa.Column("model", sa.Text, nullable=False),
    sa.Column("status", sa.String(32), nullable=True),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("input_text", sa.BigInteger, nullable=False),
    sa.Column("input_audio", sa.BigInteger, nullable=False),
    sa.Column("input_image", sa.BigInteger, nullable=False),
    sa.Column("cached_text", sa.BigInteger, nullable=False),
    sa.Column("cached_audio", sa.BigInteger, nullable=False),
    sa.Column("cached_image", sa.BigInteger, nullable=False),
    sa.Column("output_text", sa.BigInteger, nullable=False),
    sa.Column("output_audio", sa.BigInteger, nullable=False),
    sa.Column("seconds", ExactDecimal, nullable=False),
    sa.Column(
        "unit", sa.String(8), nullable=False, server_default="tokens", comment="tokens | seconds"
    ),
    sa.Column("cost_usd", ExactDecimal, nullable=True, comment="NULL when unpriced"),
    sa.Column("priced", sa.Boolean, nullable=False),
    sa.UniqueConstraint("session_id", "kind", "ref", name="uq_rtrelay_usage_session_kind_ref"),
    sa.Index("ix_rtrelay_usage_key_at", "key_id", "at"),
    sa.Index("ix_rtrelay_usage_at", "at"),
)

TOKEN_COLUMNS: Final = (
    "input_text",
    "input_audio",
    "input_image",
    "cached_text",
    "cached_audio",
    "cached_image",
    "output_text",
    "output_audio",
)
"""The usage table's token counts, named as ``Usage``'s fields."""

refusals: Final = sa.Table(
    "rtrelay_refusals",
    metadata,
    sa.Column("id", _BIGINT_ID, primary_key=True, autoincrement=True),
    sa.Column("request_id", sa.String(128), nullable=False),
    sa.Column("key_id", sa.String(32), nullable=True),
    sa.Column("key_prefix", sa.String(16), nullable=True),
    sa.Column("model", sa.Text, nullable=True),
    sa.Column("origin", sa.Text, nullable=True),
    sa.Column("error_code", sa.String(64), nullable=False),
    sa.Column("http_status", sa.Integer, nullable=True),
    sa.Column("close_code", sa.Integer, nullable=True),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("channels_tried", AttemptList, nullable=False, server_default="[]"),
    sa.Index("ix_rtrelay_refusals_at", "at"),
    sa.Index("ix_rtrelay_refusals_key_at", "key_id", "at"),
    # Request ids are unique per handshake: a journal replayed twice writes a refusal once.
    sa.Index("uq_rtrelay_refusals_request_id", "request_id", unique=True),
)

refusal_counts: Final = sa.Table(
    "rtrelay_refusal_counts",
    metadata,
    sa.Column("id", _BIGINT_ID, primary_key=True, autoincrement=True),
    sa.Column("minute", UTCDateTime, nullable=False, comment="UTC, seconds zeroed"),
    sa.Column("error_code", sa.String(64), nullable=False),
    sa.Column("key_prefix", sa.String(16), nullable=False, comment="'' without a key"),
    sa.Column("key_id", sa.String(32), nullable=True),
    sa.Column("count", sa.BigInteger, nullable=False),
    sa.UniqueConstraint(
        "minute", "error_code", "key_prefix", name="uq_rtrelay_refusal_counts_minute_code_prefix"
    ),
    sa.Index("ix_rtrelay_refusal_counts_key_minute", "key_id", "minute"),
)

calls: Final = sa.Table(
    "rtrelay_calls",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True, comment="the relay's id (rcall_…)"),
    sa.Column("provider_call_id", sa.Text, nullable=False),
    sa.Column("channel", sa.Text, nullable=False),
    sa.Column("model", sa.Text, nullable=False),
    sa.Column("key_id", sa.String(32), nullable=True),
    sa.Column("session_id", sa.String(128), nullable=False),
    sa.Column("node", sa.Text, nullable=True),
    sa.Column("pid", sa.Integer, nullable=True),
    sa.Column("state", sa.String(16), nullable=False, comment="live | ended"),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("ended_at", UTCDateTime, nullable=True),
    sa.Index("ix_rtrelay_calls_node_state", "node", "state"),
)
"""WebRTC calls: a relay call id resolves here from any relay sharing the store."""
