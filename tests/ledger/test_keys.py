"""Key secrets and records, without a database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from rtrelay.ledger.keys import (
    KeyRecord,
    KeySpec,
    hash_secret,
    new_secret,
    secret_matches,
    split_secret,
)

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def record(**changes: object) -> KeyRecord:
    values: dict[str, object] = {
        "id": "key_1",
        "prefix": "abcd1234",
        "name": "n",
        "models": None,
        "max_sessions": None,
        "sessions_per_minute": None,
        "budget_usd": None,
        "origins": None,
        "created_at": NOW - timedelta(days=1),
        "revoked_at": None,
        "expires_at": None,
    }
    values.update(changes)
    return KeyRecord(**values)  # type: ignore[arg-type]


def test_secret_has_the_documented_shape_and_its_prefix() -> None:
    prefix, secret = new_secret()
    assert secret.startswith(f"rk_{prefix}_")
    assert len(prefix) == 8 and "_" not in prefix
    assert len(secret) - len(f"rk_{prefix}_") >= 32
    assert split_secret(secret) == prefix


def test_secrets_differ_each_time() -> None:
    assert len({new_secret()[1] for _ in range(50)}) == 50


@pytest.mark.parametrize(
    "text",
    ["", "sk-abc", "rk_short_" + "x" * 40, "rk_ABCD1234_" + "x" * 40, "rk_abcd1234_tooshort"],
)
def test_malformed_secrets_have_no_prefix(text: str) -> None:
    assert split_secret(text) is None


def test_hash_matches_only_its_secret() -> None:
    _, secret = new_secret()
    digest = hash_secret(secret)
    assert secret not in digest and len(digest) == 64
    assert secret_matches(secret, digest)
    assert not secret_matches(secret + "x", digest)


def test_active_revoked_and_expired() -> None:
    assert record().inactive_reason(NOW) is None and record().is_active(NOW)
    assert record(revoked_at=NOW - timedelta(seconds=1)).inactive_reason(NOW) == "revoked"
    assert record(expires_at=NOW).inactive_reason(NOW) == "expired"
    assert record(expires_at=NOW + timedelta(seconds=1)).is_active(NOW)


def test_models_none_means_any() -> None:
    # The Origin rule is the gate's (Gate.check_origin; tests/gate/test_origin_functional.py).
    assert record().allows_model("anything")
    bound = record(models=("gpt-realtime",), origins=("https://a.example",))
    assert bound.allows_model("gpt-realtime") and not bound.allows_model("gpt-realtime-mini")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"name": " "}, "name"),
        ({"max_sessions": 0}, "max_sessions"),
        ({"sessions_per_minute": -1}, "sessions_per_minute"),
        ({"budget_usd": Decimal(-1)}, "budget_usd"),
        ({"budget_usd": Decimal("NaN")}, "budget_usd"),
        ({"expires_at": datetime(2030, 1, 1)}, "timezone"),
        ({"models": ("",)}, "models"),
    ],
)
def test_key_spec_refuses_nonsense(changes: dict[str, object], message: str) -> None:
    values: dict[str, object] = {"name": "ok", **changes}
    with pytest.raises(ValueError, match=message):
        KeySpec(**values)  # type: ignore[arg-type]
