"""Refusal floods become counters; a refusal is written once per request id.

Revision ID: 0003
Revises: 0002
Create Date: 2027-01-10

Issue 11, defect 4: every refused handshake wrote a row, so an anonymous client
could grow the ledger without bound. Past a rate per minute the relay now adds to
one ``rtrelay_refusal_counts`` row per (UTC minute, error code, key prefix)
instead. Refusal rows get a unique request id, so replaying the ledger journal
after a crash (defect 10) cannot write one twice; duplicates a database may
already hold are removed first (request ids are random, so there should be none).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TIME = sa.DateTime(timezone=True)
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "rtrelay_refusal_counts",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("minute", _TIME, nullable=False, comment="UTC, seconds zeroed"),
        sa.Column("error_code", sa.String(64), nullable=False),
        sa.Column("key_prefix", sa.String(16), nullable=False, comment="'' without a key"),
        sa.Column("key_id", sa.String(32), nullable=True),
        sa.Column("count", sa.BigInteger, nullable=False),
        sa.UniqueConstraint(
            "minute",
            "error_code",
            "key_prefix",
            name="uq_rtrelay_refusal_counts_minute_code_prefix",
        ),
    )
    op.create_index(
        "ix_rtrelay_refusal_counts_key_minute", "rtrelay_refusal_counts", ["key_id", "minute"]
    )
    op.execute(
        "DELETE FROM rtrelay_refusals WHERE id NOT IN "
        "(SELECT min(id) FROM rtrelay_refusals GROUP BY request_id)"
    )
    op.create_index(
        "uq_rtrelay_refusals_request_id", "rtrelay_refusals", ["request_id"], unique=True
    )


def downgrade() -> None:
    op.drop_index("uq_rtrelay_refusals_request_id", "rtrelay_refusals")
    op.drop_table("rtrelay_refusal_counts")
