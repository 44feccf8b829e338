"""rtrelay API keys: what a key allows, and how its secret is made, stored and checked.

A secret is ``rk_<prefix>_<random>``. Only the prefix (for lookup, and to name a
key in logs and listings) and a SHA-256 digest of the whole secret are stored.
The random part carries 256 bits, so an unsalted fast hash is enough: there is
nothing to brute-force, and a stolen database yields no usable key.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Final, Literal

__all__ = [
    "KEY_ID_PREFIX",
    "MAX_BUDGET_USD",
    "MAX_COUNT",
    "MAX_NAMES",
    "MAX_TEXT",
    "PREFIX_LENGTH",
    "SECRET_PREFIX",
    "KeyRecord",
    "KeySpec",
    "KeySpecError",
    "budget_problem",
    "count_problem",
    "hash_secret",
    "new_key_id",
    "new_secret",
    "secret_matches",
    "split_secret",
    "text_problem",
]

SECRET_PREFIX: Final = "rk_"
KEY_ID_PREFIX: Final = "key_"
PREFIX_LENGTH: Final = 8
_PREFIX_ALPHABET: Final = string.ascii_lowercase + string.digits
_RANDOM_BYTES: Final = 32  # 43 url-safe characters

# What a key may be given: one place for the admin API and the CLI alike. Beyond these a
# value is a typo, and past the stores' columns it used to be a 500 (PostgreSQL's INTEGER
# is 32-bit; SQLite keeps money as a 64-bit count of 1e-10 USD, about 9.2e8 USD).
MAX_COUNT: Final = 1_000_000
"""Largest ``max_sessions`` / ``sessions_per_minute``."""
MAX_BUDGET_USD: Final = Decimal(100_000_000)
"""Largest ``budget_usd``."""
MAX_TEXT: Final = 200
"""Longest name, model or origin, in characters."""
MAX_NAMES: Final = 100
"""Most models or origins one key may list."""


class KeySpecError(ValueError):
    """A ``KeySpec`` field is out of range; ``field`` names it (the admin API's ``param``)."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(message)


def count_problem(value: int) -> str | None:
    """Why ``value`` cannot be a ``max_sessions`` or ``sessions_per_minute``, if it cannot."""
    return None if 1 <= value <= MAX_COUNT else f"must be a whole number from 1 to {MAX_COUNT}"


def budget_problem(value: Decimal) -> str | None:
    """Why ``value`` cannot be a ``budget_usd``, if it cannot (NaN and infinities cannot)."""
    if value.is_finite() and 0 <= value <= MAX_BUDGET_USD:
        return None
    return f"must be an amount from 0 to {MAX_BUDGET_USD} USD"


def text_problem(value: str) -> str | None:
    """Why ``value`` cannot be a key's name, model or origin (it is stored and shown), if so."""
    if not value.strip():
        return "must not be empty"
    if len(value) > MAX_TEXT:
        return f"must be at most {MAX_TEXT} characters"
    # Control characters (NUL: PostgreSQL refuses it) and lone surrogates (not UTF-8).
    if any(unicodedata.category(c) in ("Cc", "Cs") for c in value):
        return "must not contain control characters"
    return None


@dataclass(frozen=True, slots=True, kw_only=True)
class KeySpec:
    """What a new key may do; ``None`` means no limit (or any model / origin).

    Raises:
        KeySpecError: a field is out of range (see ``MAX_*``); ``field`` names it.
    """

    name: str
    models: tuple[str, ...] | None = None
    max_sessions: int | None = None
    sessions_per_minute: int | None = None
    budget_usd: Decimal | None = None
    expires_at: datetime | None = None
    origins: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if (problem := text_problem(self.name)) is not None:
            raise KeySpecError("name", f"a key's name {problem}")
        for field in ("max_sessions", "sessions_per_minute"):
            value = getattr(self, field)
            if value is not None and (problem := count_problem(value)) is not None:
                raise KeySpecError(field, f"{field} {problem}")
        if self.budget_usd is not None and (problem := budget_problem(self.budget_usd)):
            raise KeySpecError("budget_usd", f"budget_usd {problem}")
        if self.expires_at is not None and self.expires_at.tzinfo is None:
            raise KeySpecError("expires_at", "expires_at must be timezone-aware")
        for field in ("models", "origins"):
            names = getattr(self, field)
            if names is None:
                continue
            if len(names) > MAX_NAMES:
                raise KeySpecError(field, f"{field} may list at most {MAX_NAMES} names")
            for name in names:
                if (problem := text_problem(name)) is not None:
                    raise KeySpecError(field, f"each of {field} {problem}")


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyRecord:
    """A stored key as the relay sees it. It never holds the secret."""

    id: str
    prefix: str
    name: str
    models: tuple[str, ...] | None
    max_sessions: int | None
    sessions_per_minute: int | None
    budget_usd: Decimal | None
    origins: tuple[str, ...] | None
    created_at: datetime
    revoked_at: datetime | None
    expires_at: datetime | None

    def inactive_reason(self, now: datetime) -> Literal["revoked", "expired"] | None:
        """Why the key may not be used at ``now``, or ``None`` when it may."""
        if self.revoked_at is not None and self.revoked_at <= now:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return None

    def is_active(self, now: datetime) -> bool:
        return self.inactive_reason(now) is None

    def allows_model(self, model: str) -> bool:
        return self.models is None or model in self.models


def new_key_id() -> str:
    return KEY_ID_PREFIX + secrets.token_hex(8)


def new_secret() -> tuple[str, str]:
    """A fresh ``(prefix, secret)``; the prefix never contains ``_``."""
    prefix = "".join(secrets.choice(_PREFIX_ALPHABET) for _ in range(PREFIX_LENGTH))
    return prefix, f"{SECRET_PREFIX}{prefix}_{secrets.token_urlsafe(_RANDOM_BYTES)}"


def split_secret(secret: str) -> str | None:
    """The lookup prefix of a well-formed secret, or ``None``."""
    if not secret.startswith(SECRET_PREFIX):
        return None
    prefix, sep, rest = secret[len(SECRET_PREFIX) :].partition("_")
    if not sep or len(prefix) != PREFIX_LENGTH or len(rest) < 32:
        return None
    if not all(c in _PREFIX_ALPHABET for c in prefix):
        return None
    return prefix


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(secret: str, digest: str) -> bool:
    """Constant-time comparison, so response timing leaks nothing about the digest."""
    return hmac.compare_digest(hash_secret(secret), digest)
