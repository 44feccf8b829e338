"""Sessions lose ``client_kind``: nothing ever wrote it.

Revision ID: 0004
Revises: 0003
Create Date: 2027-01-20

Issue 12: ``SessionStart.client_kind`` was never set, so the column held ``NULL``
in every row. PostgreSQL drops a column in its catalogue only. SQLite (3.35+)
rewrites the table's rows once, under the migration lock, at the first start of
this version; ``client_kind`` is in no index or trigger, which SQLite requires.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_column("rtrelay_sessions", "client_kind")


def downgrade() -> None:
    op.add_column("rtrelay_sessions", sa.Column("client_kind", sa.Text, nullable=True))
