"""WebRTC calls: ``rtrelay_sessions.transport`` and the ``rtrelay_calls`` registry.

Revision ID: 0005
Revises: 0004
Create Date: 2027-02-01

Issue 13: a call's media runs device ↔ provider and the relay meters it on its own
sideband, so a session row says which transport it was (existing rows are WebSocket
sessions: the server default). ``rtrelay_calls`` maps the relay's call id to the
provider's, so any relay sharing the store resolves it, and lets a restarted relay
find the calls it owned (by ``node`` and ``state``). Types are spelled out, as in 0001,
so this revision never changes when the code does.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column(
        "rtrelay_sessions",
        sa.Column("transport", sa.String(16), nullable=False, server_default="websocket"),
    )
    op.create_table(
        "rtrelay_calls",
        sa.Column("id", sa.String(64), primary_key=True, comment="the relay's id (rcall_…)"),
        sa.Column("provider_call_id", sa.Text, nullable=False),
        sa.Column("channel", sa.Text, nullable=False),
        sa.Column("model", sa.Text, nullable=False),
        sa.Column("key_id", sa.String(32), nullable=True),
        sa.Column("session_id", sa.String(128), nullable=False),
        sa.Column("node", sa.Text, nullable=True),
        sa.Column("pid", sa.Integer, nullable=True),
        sa.Column("state", sa.String(16), nullable=False, comment="live | ended"),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("ended_at", _TIME, nullable=True),
    )
    op.create_index("ix_rtrelay_calls_node_state", "rtrelay_calls", ["node", "state"])


def downgrade() -> None:
    op.drop_index("ix_rtrelay_calls_node_state", table_name="rtrelay_calls")
    op.drop_table("rtrelay_calls")
    op.drop_column("rtrelay_sessions", "transport")
