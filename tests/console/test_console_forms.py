"""Reading the console's forms and filters: values kept, errors per field, no exceptions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from rtrelay.console.filters import key_form, key_form_values, session_filter
from rtrelay.ledger.keys import KeyRecord

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def test_a_full_key_form_becomes_a_spec() -> None:
    form = key_form(
        {
            "name": " web app ",
            "models": "gpt-realtime, gpt-realtime-mini",
            "origins": "https://a.example\nhttps://b.example",
            "max_sessions": "5",
            "sessions_per_minute": "60",
            "budget_usd": "$12.50",
            "expires": "30d",
        },
        NOW,
    )
    assert form.errors == {}
    spec = form.spec
    assert spec is not None
    assert spec.name == "web app"
    assert spec.models == ("gpt-realtime", "gpt-realtime-mini")
    assert spec.origins == ("https://a.example", "https://b.example")
    assert (spec.max_sessions, spec.sessions_per_minute) == (5, 60)
    assert spec.budget_usd == Decimal("12.50")
    assert spec.expires_at == NOW + timedelta(days=30)


def test_empty_fields_mean_no_limit() -> None:
    spec = key_form({"name": "n"}, NOW).spec
    assert spec is not None
    assert (spec.models, spec.max_sessions, spec.budget_usd, spec.expires_at) == (None,) * 4


def test_every_unreadable_field_is_named_and_the_values_are_kept() -> None:
    form = key_form(
        {"name": "", "max_sessions": "-1", "budget_usd": "lots", "expires": "yesterday"}, NOW
    )
    assert form.spec is None
    assert set(form.errors) == {"name", "max_sessions", "budget_usd", "expires"}
    assert form.values["budget_usd"] == "lots"


def test_ranges_are_keyspecs_to_check() -> None:
    form = key_form({"name": "n", "max_sessions": "0"}, NOW)
    assert form.spec is None
    assert "max_sessions" in form.errors
    form = key_form({"name": "n", "budget_usd": "1e12"}, NOW)
    assert "budget_usd" in form.errors


def test_an_expiry_in_the_past_is_refused() -> None:
    assert "expires" in key_form({"name": "n", "expires": "2020-01-01"}, NOW).errors


def test_a_stored_key_fills_the_edit_form_and_reads_back_the_same() -> None:
    record = KeyRecord(
        id="key_1",
        prefix="abcd1234",
        name="svc",
        models=("gpt-realtime",),
        max_sessions=3,
        sessions_per_minute=None,
        budget_usd=Decimal("7.25"),
        origins=None,
        created_at=NOW,
        revoked_at=None,
        expires_at=NOW + timedelta(days=2),
    )
    spec = key_form(key_form_values(record), NOW).spec
    assert spec is not None
    assert (spec.name, spec.models, spec.max_sessions, spec.budget_usd, spec.expires_at) == (
        "svc",
        ("gpt-realtime",),
        3,
        Decimal("7.25"),
        NOW + timedelta(days=2),
    )


def test_session_filters_read_times_and_codes() -> None:
    f = session_filter({"code": "4429", "since": "1h", "model": "gpt-realtime"}, NOW)
    assert f.errors == {}
    assert f.close_code == 4429
    assert f.since == NOW - timedelta(hours=1)
    assert f.narrows_rows
    assert f.keeps(model="gpt-realtime", codes=(4429, None), started=NOW, live=False)
    assert not f.keeps(model="gpt-realtime", codes=(1000, 1000), started=NOW, live=False)
    assert not f.keeps(model="other", codes=(4429,), started=NOW, live=False)


def test_unreadable_filters_are_named_not_raised() -> None:
    f = session_filter({"code": "abc", "since": "last tuesday", "status": "weird"}, NOW)
    assert set(f.errors) == {"code", "since"}
    assert f.status == "all"


def test_status_filter_splits_live_from_ended() -> None:
    live = session_filter({"status": "live"}, NOW)
    ended = session_filter({"status": "ended"}, NOW)
    assert live.keeps(model="m", codes=(), started=NOW, live=True)
    assert not live.keeps(model="m", codes=(), started=NOW, live=False)
    assert ended.keeps(model="m", codes=(), started=NOW, live=False)
    assert not ended.keeps(model="m", codes=(), started=NOW, live=True)
