"""Alembic migrations of the rtrelay store (run by ``rtrelay.ledger.migrate``)."""
