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
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Final, Literal

__all__ = [
    "KEY_ID_PREFIX",
    "PREFIX_LENGTH",
    "SECRET_PREFIX",
    "KeyRecord",
    "KeySpec",
    "hash_secret",
    "new_key_id",
    "new_secret",
    "secret_matches",
    "split_secret",
]

SECRET_PREFIX: Final = "rk_"
KEY_ID_PREFIX: Final = "key_"
PREFIX_LENGTH: Final = 8
_PREFIX_ALPHABET: Final = string.ascii_lowercase + string.digits
_RANDOM_BYTES: Final = 32  # 43 url-safe characters


@dataclass(frozen=True, slots=True, kw_only=True)
class KeySpec:
    """What a new key may do; ``None`` means no limit (or any model / origin)."""

    name: str
    models: tuple[str, ...] | None = None
    max_sessions: int | None = None
    sessions_per_minute: int | None = None
    budget_usd: Decimal | None = None
    expires_at: datetime | None = None
    origins: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise ValueError("a key needs a name")
        for field in ("max_sessions", "sessions_per_minute"):
            value = getattr(self, field)
            if value is not None and value < 1:
                raise ValueError(f"{field} must be at least 1")
        if self.budget_usd is not None and (not self.budget_usd.is_finite() or self.budget_usd < 0):
            raise ValueError("budget_usd must be a non-negative amount")
        if self.expires_at is not None and self.expires_at.tzinfo is None:
            raise ValueError("expires_at must be timezone-aware")
        for field in ("models", "origins"):
            value = getattr(self, field)
            if value is not None and not all(v.strip() for v in value):
                raise ValueError(f"{field} must not contain empty names")


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
