"""Alembic migrations of the rtrelay store (run by ``rtrelay.ledger.migrate``)."""

from __future__ import annotations

__all__: list[str] = []
