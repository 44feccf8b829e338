"""Usage rows say their unit: ``rtrelay_usage.unit`` and ``seconds`` for every duration.

Revision ID: 0006
Revises: 0005
Create Date: 2027-03-01

Issue 14: GPT-Live is billed per second of audio and realtime translation per minute,
so seconds are no longer only a transcription's. ``transcription_seconds`` becomes
``seconds`` (a rename keeps every value and the usage triggers of 0002, which never
name it), and ``unit`` says whether a row counts tokens or seconds. Existing rows
with seconds and no tokens are the duration-priced transcriptions (``whisper-1``):
they become ``seconds``. The idempotency key ``(session_id, kind, ref)`` is unchanged;
Live and translation rows use the kind ``duration``.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TOKENS = (
    "input_text",
    "input_audio",
    "input_image",
    "cached_text",
    "cached_audio",
    "cached_image",
    "output_text",
    "output_audio",
)


def _rename(old: str, new: str) -> None:
    # Plain SQL: SQLite (>= 3.25) and PostgreSQL both rename in place, without the
    # table copy of a batch migration that would drop SQLite's triggers.
    op.execute(f"ALTER TABLE rtrelay_usage RENAME COLUMN {old} TO {new}")


def upgrade() -> None:
    _rename("transcription_seconds", "seconds")
    op.add_column(
        "rtrelay_usage",
        sa.Column(
            "unit",
            sa.String(8),
            nullable=False,
            server_default="tokens",
            comment="tokens | seconds",
        ),
    )
    no_tokens = " AND ".join(f"{c} = 0" for c in _TOKENS)
    op.execute(f"UPDATE rtrelay_usage SET unit = 'seconds' WHERE seconds > 0 AND {no_tokens}")


def downgrade() -> None:
    op.drop_column("rtrelay_usage", "unit")
    _rename("seconds", "transcription_seconds")
