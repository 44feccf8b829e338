"""Keys, key secrets, sessions, usage (responses and transcriptions), refusals.

Revision ID: 0001
Revises:
Create Date: 2026-01-01

Types are spelled out rather than imported from ``rtrelay.ledger.schema`` so this
revision never changes when the code does: money is NUMERIC(28, 10) (a BIGINT of
1e-10 USD on SQLite), times are TIMESTAMPTZ (UTC text on SQLite).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_MONEY = sa.Numeric(28, 10).with_variant(sa.BigInteger(), "sqlite")
_TIME = sa.DateTime(timezone=True)
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "rtrelay_api_keys",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("models", sa.Text, nullable=True, comment="JSON list; NULL = any"),
        sa.Column("max_sessions", sa.Integer, nullable=True),
        sa.Column("sessions_per_minute", sa.Integer, nullable=True),
        sa.Column("budget_usd", _MONEY, nullable=True),
        sa.Column("origins", sa.Text, nullable=True, comment="JSON list; NULL = any"),
        sa.Column("spent_usd", _MONEY, nullable=False, server_default="0"),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("revoked_at", _TIME, nullable=True),
        sa.Column("expires_at", _TIME, nullable=True),
    )
    op.create_table(
        "rtrelay_api_key_secrets",
        sa.Column("prefix", sa.String(16), primary_key=True),
        sa.Column("key_id", sa.String(32), sa.ForeignKey("rtrelay_api_keys.id"), nullable=False),
        sa.Column("secret_sha256", sa.String(64), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("retired_at", _TIME, nullable=True),
    )
    op.create_index("ix_rtrelay_api_key_secrets_key_id", "rtrelay_api_key_secrets", ["key_id"])
    op.create_table(
        "rtrelay_sessions",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("key_id", sa.String(32), sa.ForeignKey("rtrelay_api_keys.id"), nullable=True),
        sa.Column("key_prefix", sa.String(16), nullable=True),
        sa.Column("model", sa.Text, nullable=False),
        sa.Column("channel", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("client_kind", sa.Text, nullable=True),
        sa.Column("shape", sa.String(8), nullable=False),
        sa.Column("origin", sa.Text, nullable=True),
        sa.Column("request_id", sa.String(128), nullable=True),
        sa.Column("node", sa.Text, nullable=True),
        sa.Column("started_at", _TIME, nullable=False),
        sa.Column("ended_at", _TIME, nullable=True),
        sa.Column("duration_ms", sa.BigInteger, nullable=True),
        sa.Column("frames_from_client", sa.BigInteger, nullable=True),
        sa.Column("bytes_from_client", sa.BigInteger, nullable=True),
        sa.Column("frames_from_upstream", sa.BigInteger, nullable=True),
        sa.Column("bytes_from_upstream", sa.BigInteger, nullable=True),
        sa.Column("client_close_code", sa.Integer, nullable=True),
        sa.Column("upstream_close_code", sa.Integer, nullable=True),
        sa.Column("error_code", sa.String(64), nullable=True),
        sa.Column("channels_tried", sa.Text, nullable=False, server_default="[]"),
    )
    op.create_index("ix_rtrelay_sessions_key_started", "rtrelay_sessions", ["key_id", "started_at"])
    op.create_index("ix_rtrelay_sessions_started", "rtrelay_sessions", ["started_at"])
    op.create_index("ix_rtrelay_sessions_status", "rtrelay_sessions", ["status"])
    op.create_table(
        "rtrelay_usage",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column(
            "session_id", sa.String(128), sa.ForeignKey("rtrelay_sessions.id"), nullable=False
        ),
        sa.Column("kind", sa.String(16), nullable=False, comment="response | transcription"),
        sa.Column("ref", sa.String(128), nullable=False, comment="response id | item id"),
        sa.Column("key_id", sa.String(32), nullable=True, comment="copied from the session"),
        sa.Column("model", sa.Text, nullable=False),
        sa.Column("status", sa.String(32), nullable=True),
        sa.Column("at", _TIME, nullable=False),
        sa.Column("input_text", sa.BigInteger, nullable=False),
        sa.Column("input_audio", sa.BigInteger, nullable=False),
        sa.Column("input_image", sa.BigInteger, nullable=False),
        sa.Column("cached_text", sa.BigInteger, nullable=False),
        sa.Column("cached_audio", sa.BigInteger, nullable=False),
        sa.Column("cached_image", sa.BigInteger, nullable=False),
        sa.Column("output_text", sa.BigInteger, nullable=False),
        sa.Column("output_audio", sa.BigInteger, nullable=False),
        sa.Column("transcription_seconds", _MONEY, nullable=False),
        sa.Column("cost_usd", _MONEY, nullable=True, comment="NULL when unpriced"),
        sa.Column("priced", sa.Boolean, nullable=False),
        sa.UniqueConstraint("session_id", "kind", "ref", name="uq_rtrelay_usage_session_kind_ref"),
    )
    op.create_index("ix_rtrelay_usage_key_at", "rtrelay_usage", ["key_id", "at"])
    op.create_index("ix_rtrelay_usage_at", "rtrelay_usage", ["at"])
    op.create_table(
        "rtrelay_refusals",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("request_id", sa.String(128), nullable=False),
        sa.Column("key_id", sa.String(32), nullable=True),
        sa.Column("key_prefix", sa.String(16), nullable=True),
        sa.Column("model", sa.Text, nullable=True),
        sa.Column("origin", sa.Text, nullable=True),
        sa.Column("error_code", sa.String(64), nullable=False),
        sa.Column("http_status", sa.Integer, nullable=True),
        sa.Column("close_code", sa.Integer, nullable=True),
        sa.Column("at", _TIME, nullable=False),
        sa.Column("channels_tried", sa.Text, nullable=False, server_default="[]"),
    )
    op.create_index("ix_rtrelay_refusals_at", "rtrelay_refusals", ["at"])
    op.create_index("ix_rtrelay_refusals_key_at", "rtrelay_refusals", ["key_id", "at"])


def downgrade() -> None:
    op.drop_table("rtrelay_refusals")
    op.drop_table("rtrelay_usage")
    op.drop_table("rtrelay_sessions")
    op.drop_table("rtrelay_api_key_secrets")
    op.drop_table("rtrelay_api_keys")
