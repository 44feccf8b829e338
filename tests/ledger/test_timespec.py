"""Times as typed on the command line and in admin query strings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from rtrelay.ledger.timespec import parse_duration, parse_when

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "delta"),
    [
        ("90s", timedelta(seconds=90)),
        ("15m", timedelta(minutes=15)),
        ("12h", timedelta(hours=12)),
        ("30d", timedelta(days=30)),
        ("2w", timedelta(weeks=2)),
    ],
)
def test_durations(text: str, delta: timedelta) -> None:
    assert parse_duration(text) == delta
    assert parse_when(text, now=NOW, future=True) == NOW + delta
    assert parse_when(text, now=NOW, future=False) == NOW - delta


def test_dates_and_iso_times_are_utc() -> None:
    assert parse_when("2027-01-01", now=NOW, future=True) == datetime(2027, 1, 1, tzinfo=UTC)
    assert parse_when("2027-01-01T10:00:00Z", now=NOW, future=True) == datetime(
        2027, 1, 1, 10, tzinfo=UTC
    )
    plus2 = parse_when("2027-01-01T10:00:00+02:00", now=NOW, future=True)
    assert plus2 == datetime(2027, 1, 1, 10, tzinfo=timezone(timedelta(hours=2)))
    assert plus2.tzinfo == UTC
    assert parse_when("2027-01-01T10:00", now=NOW, future=True).tzinfo == UTC
    assert parse_when("now", now=NOW, future=False) == NOW


@pytest.mark.parametrize("text", ["", "soon", "30x", "2027-13-01", "-5d"])
def test_nonsense_is_refused_with_examples(text: str) -> None:
    assert parse_duration(text) is None
    with pytest.raises(ValueError, match="30d"):
        parse_when(text, now=NOW, future=True)
