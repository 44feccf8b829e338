"""Reading the console's query strings and forms: filters, key settings. Pure functions.

A value that cannot be read becomes a message for the page, never a 500. The ranges
a key's limits must be in are ``KeySpec``'s to check (``ledger/keys.py``), and times
are read by ``parse_when`` as ``rtrelay keys``/``usage`` and the admin API read them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from rtrelay.ledger.keys import KeyRecord, KeySpec, KeySpecError
from rtrelay.ledger.timespec import parse_when

__all__ = ["KeyForm", "SessionFilter", "key_form", "key_form_values", "session_filter"]

_SPLIT: Final = re.compile(r"[\s,]+")
_FIELD_TEXT_LIMIT: Final = 4000


@dataclass(frozen=True, slots=True)
class SessionFilter:
    """What the sessions page lists; ``errors`` says which fields could not be read."""

    key: str = ""
    model: str = ""
    close_code: int | None = None
    since: datetime | None = None
    until: datetime | None = None
    status: str = "all"
    values: dict[str, str] = field(default_factory=dict)
    """The fields as typed, to fill the form again."""
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def narrows_rows(self) -> bool:
        """Whether rows are dropped after the store's query (so more are fetched)."""
        return (
            bool(self.model)
            or self.close_code is not None
            or self.until is not None
            or self.status == "ended"
        )

    def keeps(
        self, *, model: str, codes: tuple[int | None, ...], started: datetime, live: bool
    ) -> bool:
        if self.status != "all" and live != (self.status == "live"):
            return False
        if self.model and model != self.model:
            return False
        if self.close_code is not None and self.close_code not in codes:
            return False
        return self.until is None or started < self.until


def _time(query: Mapping[str, str], name: str, now: datetime, errors: dict[str, str]) -> Any:
    text = query.get(name, "").strip()
    if not text:
        return None
    try:
        return parse_when(text, now=now, future=False)
    except ValueError as exc:
        errors[name] = str(exc)
        return None


def session_filter(query: Mapping[str, str], now: datetime) -> SessionFilter:
    values = {k: query.get(k, "").strip()[:200] for k in ("key", "model", "code", "since", "until")}
    errors: dict[str, str] = {}
    code: int | None = None
    if values["code"]:
        if values["code"].isdigit() and len(values["code"]) <= 4:
            code = int(values["code"])
        else:
            errors["code"] = "a close code is a number such as 1000 or 4429"
    status = query.get("status", "all")
    values["status"] = status if status in ("all", "live", "ended") else "all"
    return SessionFilter(
        key=values["key"],
        model=values["model"],
        close_code=code,
        since=_time(query, "since", now, errors),
        until=_time(query, "until", now, errors),
        status=values["status"],
        values=values,
        errors=errors,
    )


@dataclass(frozen=True, slots=True)
class KeyForm:
    """A key form as read: the spec when it is valid, else what to say per field."""

    spec: KeySpec | None
    values: dict[str, str]
    errors: dict[str, str]


_KEY_FIELDS: Final = (
    "name",
    "models",
    "origins",
    "max_sessions",
    "sessions_per_minute",
    "budget_usd",
    "expires",
)


def _names(text: str) -> tuple[str, ...] | None:
    names = tuple(n for n in _SPLIT.split(text) if n)
    return names or None


def _count(text: str, name: str, errors: dict[str, str]) -> int | None:
    if not text:
        return None
    if not text.isdigit():
        errors[name] = "a whole number, or empty for no limit"
        return None
    return int(text)


def _usd(text: str, errors: dict[str, str]) -> Decimal | None:
    if not text:
        return None
    try:
        amount = Decimal(text.removeprefix("$").replace(",", ""))
    except InvalidOperation:
        errors["budget_usd"] = "an amount in USD such as 25 or 12.50, or empty for no budget"
        return None
    if not amount.is_finite():
        errors["budget_usd"] = "an amount in USD such as 25 or 12.50"
        return None
    return amount


def key_form(form: Mapping[str, Any], now: datetime) -> KeyForm:
    """A create or edit form of the keys page as a ``KeySpec`` (empty field = no limit)."""
    values = {name: str(form.get(name, "")).strip()[:_FIELD_TEXT_LIMIT] for name in _KEY_FIELDS}
    errors: dict[str, str] = {}
    if not values["name"]:
        errors["name"] = "a key needs a name"
    expires_at = None
    if values["expires"]:
        try:
            expires_at = parse_when(values["expires"], now=now, future=True)
        except ValueError as exc:
            errors["expires"] = str(exc)
        else:
            if expires_at <= now:
                errors["expires"] = "must be in the future"
    max_sessions = _count(values["max_sessions"], "max_sessions", errors)
    per_minute = _count(values["sessions_per_minute"], "sessions_per_minute", errors)
    budget = _usd(values["budget_usd"], errors)
    if errors:
        return KeyForm(None, values, errors)
    try:
        spec = KeySpec(
            name=values["name"],
            models=_names(values["models"]),
            origins=_names(values["origins"]),
            max_sessions=max_sessions,
            sessions_per_minute=per_minute,
            budget_usd=budget,
            expires_at=expires_at,
        )
    except KeySpecError as exc:
        field_name = "expires" if exc.field == "expires_at" else exc.field
        return KeyForm(None, values, {field_name: str(exc)})
    return KeyForm(spec, values, {})


def key_form_values(record: KeyRecord) -> dict[str, str]:
    """A stored key's settings as the edit form shows them."""

    def text(value: object) -> str:
        return "" if value is None else str(value)

    return {
        "name": record.name,
        "models": " ".join(record.models or ()),
        "origins": " ".join(record.origins or ()),
        "max_sessions": text(record.max_sessions),
        "sessions_per_minute": text(record.sessions_per_minute),
        "budget_usd": "" if record.budget_usd is None else format(record.budget_usd, "f"),
        "expires": "" if record.expires_at is None else record.expires_at.isoformat(),
    }
