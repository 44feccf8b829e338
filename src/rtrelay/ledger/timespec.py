"""Points in time as people type them: ``30d``, ``12h``, ``2027-01-01``, ISO 8601.

Used for ``--expires``, ``--since``/``--until`` and the admin API's query
parameters, so all three read times the same way. ``now`` is passed in. A time
outside what ``datetime`` holds (``99999999d`` back from now, year 10000 once in
UTC) is a ``ValueError`` like any other unreadable time, never an ``OverflowError``.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Final

__all__ = ["parse_duration", "parse_when"]

_DURATION: Final = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS: Final = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str) -> timedelta | None:
    """``90s``, ``15m``, ``12h``, ``30d``, ``2w`` → a ``timedelta``; anything else → ``None``.

    Raises:
        ValueError: a duration longer than ``timedelta`` holds (999,999,999 days).
    """
    match = _DURATION.match(text)
    if match is None:
        return None
    amount, unit = match.groups()
    try:
        return timedelta(**{_UNITS[unit]: int(amount)})
    except (OverflowError, ValueError):  # more than 999,999,999 days, or digits beyond int()'s
        raise ValueError(f"{_shown(text)} is too long a duration") from None


def parse_when(text: str, *, now: datetime, future: bool) -> datetime:
    """An aware UTC datetime from a duration relative to ``now``, a date, or an ISO time.

    Args:
        future: a duration counts forward (``--expires 30d``) or back (``--since 7d``).

    Raises:
        ValueError: the text is none of those forms, or names a time out of range.
    """
    text = text.strip()
    try:
        return _parse_when(text, now=now, future=future)
    except OverflowError:
        raise ValueError(f"{_shown(text)} is out of range (years 1 to 9999 in UTC)") from None


def _shown(text: str) -> str:
    """The text as an error message quotes it: bounded, whatever the client sent."""
    return repr(text if len(text) <= 40 else text[:40] + "…")


def _parse_when(text: str, *, now: datetime, future: bool) -> datetime:
    if text == "now":
        return now.astimezone(UTC)
    delta = parse_duration(text)
    if delta is not None:
        return (now + delta if future else now - delta).astimezone(UTC)
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"cannot read {_shown(text)} as a time: use e.g. 30d, 12h, 2027-01-01 "
            "or 2027-01-01T12:00:00Z"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)
