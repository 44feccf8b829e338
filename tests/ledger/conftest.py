"""The store fixtures (SQLite and PostgreSQL) for this directory; see ``store_fixtures``."""

from __future__ import annotations

from store_fixtures import (  # noqa: F401 -- imported fixtures register with pytest
    fresh_store_url,
    postgres_admin_url,
    postgres_session_url,
    store,
    store_url,
)
