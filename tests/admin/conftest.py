"""The admin API over the ``store`` fixture (SQLite and PostgreSQL, from ``store_fixtures``)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from admin_helpers import Admin, serve_admin

from rtrelay.ledger import Store


@pytest.fixture
async def admin(store: Store) -> AsyncIterator[Admin]:
    """The admin API over ``store`` (once per backend), with the test token."""
    async with serve_admin(store) as running:
        yield running
