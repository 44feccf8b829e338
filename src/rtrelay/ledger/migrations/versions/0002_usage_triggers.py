"""The database settles each usage row: it copies the session's key and adds the cost to its spend.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22

Before this revision the relay read the session's key, inserted the usage row and
updated the key's spend: three statements in one transaction per response. With
triggers a usage write is one ``INSERT … ON CONFLICT DO NOTHING`` of any number of
rows, atomic on its own, and no code path can insert usage without billing it.
Only rows actually inserted add spend (a replayed response conflicts, fires no
AFTER INSERT trigger, and costs nothing twice).
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SQLITE_UP = (
    # SQLite cannot change NEW in a BEFORE trigger: set key_id on the fresh row instead.
    """
    CREATE TRIGGER rtrelay_usage_settle AFTER INSERT ON rtrelay_usage
    BEGIN
        UPDATE rtrelay_usage
           SET key_id = (SELECT key_id FROM rtrelay_sessions WHERE id = NEW.session_id)
         WHERE id = NEW.id;
        UPDATE rtrelay_api_keys
           SET spent_usd = spent_usd + NEW.cost_usd
         WHERE NEW.cost_usd IS NOT NULL
           AND id = (SELECT key_id FROM rtrelay_sessions WHERE id = NEW.session_id);
    END
    """,
)
_SQLITE_DOWN = ("DROP TRIGGER IF EXISTS rtrelay_usage_settle",)

_POSTGRES_UP = (
    """
    CREATE FUNCTION rtrelay_usage_key() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        SELECT key_id INTO NEW.key_id FROM rtrelay_sessions WHERE id = NEW.session_id;
        RETURN NEW;
    END $$
    """,
    """
    CREATE TRIGGER rtrelay_usage_key BEFORE INSERT ON rtrelay_usage
    FOR EACH ROW EXECUTE FUNCTION rtrelay_usage_key()
    """,
    """
    CREATE FUNCTION rtrelay_usage_spend() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE rtrelay_api_keys SET spent_usd = spent_usd + NEW.cost_usd WHERE id = NEW.key_id;
        RETURN NULL;
    END $$
    """,
    """
    CREATE TRIGGER rtrelay_usage_spend AFTER INSERT ON rtrelay_usage
    FOR EACH ROW WHEN (NEW.key_id IS NOT NULL AND NEW.cost_usd IS NOT NULL)
    EXECUTE FUNCTION rtrelay_usage_spend()
    """,
)
_POSTGRES_DOWN = (
    "DROP TRIGGER IF EXISTS rtrelay_usage_spend ON rtrelay_usage",
    "DROP FUNCTION IF EXISTS rtrelay_usage_spend()",
    "DROP TRIGGER IF EXISTS rtrelay_usage_key ON rtrelay_usage",
    "DROP FUNCTION IF EXISTS rtrelay_usage_key()",
)


def _run(sqlite: Sequence[str], postgres: Sequence[str]) -> None:
    for statement in sqlite if op.get_bind().dialect.name == "sqlite" else postgres:
        op.execute(statement)


def upgrade() -> None:
    _run(_SQLITE_UP, _POSTGRES_UP)


def downgrade() -> None:
    _run(_SQLITE_DOWN, _POSTGRES_DOWN)
