"""Alembic environment: runs on a connection handed over by ``rtrelay.ledger.migrate``.

rtrelay never runs Alembic from an ``alembic.ini``: ``migrate.upgrade()`` opens the
async engine, takes a lock, and passes its connection in ``config.attributes``.
"""

from __future__ import annotations

from alembic import context

from rtrelay.ledger.migrate import VERSION_TABLE

connection = context.config.attributes.get("connection")
if connection is None or context.is_offline_mode():
    raise RuntimeError("run rtrelay migrations with 'rtrelay db upgrade' or rtrelay.ledger.migrate")

context.configure(
    connection=connection,
    version_table=VERSION_TABLE,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite cannot ALTER most things
)
with context.begin_transaction():
    context.run_migrations()
