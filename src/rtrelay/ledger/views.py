"""JSON-ready views of keys, usage rows and sessions: one shape for the CLI and the admin API.

Money is a decimal *string* (``"0.0069656"``) so no client parses it into a
float; times are ISO 8601 in UTC.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from decimal import Decimal
from typing import Any

from rtrelay.ledger.keys import KeyRecord
from rtrelay.ledger.records import ChannelAttempt, SessionRow, UsageRow

__all__ = ["key_view", "session_view", "usage_view"]


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _money(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


def key_view(
    record: KeyRecord, *, now: datetime, spent_usd: Decimal | None = None
) -> dict[str, Any]:
    """A key as shown to operators: never a secret, only its prefix."""
    view: dict[str, Any] = {
        "object": "rtrelay.key",
        "id": record.id,
        "prefix": record.prefix,
        "name": record.name,
        "status": record.inactive_reason(now) or "active",
        "models": None if record.models is None else list(record.models),
        "max_sessions": record.max_sessions,
        "sessions_per_minute": record.sessions_per_minute,
        "budget_usd": _money(record.budget_usd),
        "origins": None if record.origins is None else list(record.origins),
        "created_at": _iso(record.created_at),
        "revoked_at": _iso(record.revoked_at),
        "expires_at": _iso(record.expires_at),
    }
    if spent_usd is not None:
        view["spent_usd"] = _money(spent_usd)
    return view


def usage_view(row: UsageRow) -> dict[str, Any]:
    view: dict[str, Any] = dataclasses.asdict(row)
    view["seconds"] = _money(row.seconds)
    view["transcription_seconds"] = view["seconds"]  # the name before issue 14 (deprecated)
    view["cost_usd"] = _money(row.cost_usd)
    return view


def _attempt_view(attempt: ChannelAttempt) -> dict[str, Any]:
    return {"channel": attempt.channel, "outcome": attempt.outcome, "detail": attempt.detail}


def session_view(row: SessionRow) -> dict[str, Any]:
    view: dict[str, Any] = {"object": "rtrelay.session", "id": row.session_id}
    for field in dataclasses.fields(row):
        if field.name != "session_id":
            view[field.name] = getattr(row, field.name)
        if field.name == "duration_s":
            # Nothing ever recorded a client kind (issue 12 dropped the column); the
            # admin API's session object keeps the field, null as it always was.
            view["client_kind"] = None
    view["started_at"] = _iso(row.started_at)
    view["ended_at"] = _iso(row.ended_at)
    view["cost_usd"] = _money(row.cost_usd)
    view["seconds"] = _money(row.seconds)
    view["channels_tried"] = [_attempt_view(a) for a in row.channels_tried]
    return view
