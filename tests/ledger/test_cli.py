"""``rtrelay keys``, ``rtrelay usage`` and ``rtrelay db`` end to end through ``main()``."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from rtrelay.cli.main import main
from rtrelay.ledger import (
    KeyRecord,
    PriceTable,
    open_store,
)
from rtrelay.ledger.migrate import head_revision
from store_fixtures import EXAMPLE_USAGE, USAGE_T0, seed_usage

SECRET = re.compile(r"rk_[a-z0-9]{8}_[A-Za-z0-9_-]{32,}")
Run = Callable[..., tuple[int, str, str]]


def write_config(path: Path, url: str) -> Path:
    path.write_text(f'[store]\nurl = "{url}"\n')
    return path


@pytest.fixture
def sqlite_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("RTRELAY_STORE_URL", raising=False)
    return write_config(tmp_path / "rtrelay.toml", f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}")


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Run:
    def _run(*argv: str) -> tuple[int, str, str]:
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return _run


def find_key(config: Path, secret: str) -> KeyRecord | None:
    url = config.read_text().split('"')[1]

    async def go() -> KeyRecord | None:
        store = await open_store(url)
        try:
            return await store.find_key(secret)
        finally:
            await store.close()

    return asyncio.run(go())


def test_keys_create_prints_the_secret_once_and_list_never(run: Run, sqlite_config: Path) -> None:
    code, out, err = run("keys", "create", "--config", str(sqlite_config), "--name", "web app")
    assert code == 0, err
    secrets = SECRET.findall(out)
    assert len(secrets) == 1
    secret = secrets[0]
    assert out.count(secret) == 1 and "only time" in out
    record = find_key(sqlite_config, secret)
    assert record is not None and record.name == "web app" and record.models is None

    code, out, _ = run("keys", "list", "--config", str(sqlite_config))
    assert code == 0
    assert secret not in out and secret.split("_", 2)[2] not in out
    assert record.prefix in out and "web app" in out and "active" in out
    assert f"rk_{record.prefix}" not in out  # one spelling: the prefix as JSON and logs show it

    code, out, _ = run("keys", "list", "--config", str(sqlite_config), "--json")
    assert secret.split("_", 2)[2] not in out
    [view] = json.loads(out)["data"]
    assert (view["id"], view["prefix"], view["spent_usd"]) == (record.id, record.prefix, "0")
    assert "secret" not in view


def test_keys_create_with_every_limit(run: Run, sqlite_config: Path) -> None:
    code, out, err = run(
        "keys", "create", "--config", str(sqlite_config), "--name", "n",
        "--models", "gpt-realtime, gpt-realtime-mini", "--max-sessions", "3",
        "--sessions-per-minute", "20", "--budget-usd", "12.50", "--expires", "30d",
        "--origins", "https://a.example,https://b.example", "--json",
    )  # fmt: skip
    assert code == 0, err
    view = json.loads(out)
    assert SECRET.fullmatch(view["secret"])
    assert view["models"] == ["gpt-realtime", "gpt-realtime-mini"]
    assert view["origins"] == ["https://a.example", "https://b.example"]
    assert (view["max_sessions"], view["sessions_per_minute"]) == (3, 20)
    assert Decimal(view["budget_usd"]) == Decimal("12.5")
    expires = datetime.fromisoformat(view["expires_at"])
    assert timedelta(days=29) < expires - datetime.now(UTC) <= timedelta(days=30)

    code, out, _ = run("keys", "create", "--config", str(sqlite_config), "--name", "d",
                       "--expires", "2099-01-01", "--json")  # fmt: skip
    assert json.loads(out)["expires_at"].startswith("2099-01-01T00:00:00")


def test_keys_revoke_by_prefix_then_find_key_says_revoked(run: Run, sqlite_config: Path) -> None:
    _, out, _ = run("keys", "create", "--config", str(sqlite_config), "--name", "x")
    secret = SECRET.findall(out)[0]
    prefix = secret.split("_")[1]
    code, out, err = run("keys", "revoke", prefix, "--config", str(sqlite_config))
    assert code == 0, err
    assert "Revoked" in out and secret not in out
    record = find_key(sqlite_config, secret)
    assert record is not None
    assert record.inactive_reason(datetime.now(UTC) + timedelta(seconds=1)) == "revoked"
    _, out, _ = run("keys", "list", "--config", str(sqlite_config))
    assert "revoked" in out


def test_keys_rotate_by_id_prints_a_new_secret_and_retires_the_old(
    run: Run, sqlite_config: Path
) -> None:
    _, out, _ = run("keys", "create", "--config", str(sqlite_config), "--name", "x", "--json")
    created = json.loads(out)
    code, out, err = run("keys", "rotate", created["id"], "--config", str(sqlite_config))
    assert code == 0, err
    [new] = SECRET.findall(out)
    assert new != created["secret"]
    later = datetime.now(UTC) + timedelta(seconds=1)
    fresh = find_key(sqlite_config, new)
    old = find_key(sqlite_config, created["secret"])
    assert fresh is not None and fresh.is_active(later) and fresh.id == created["id"]
    assert old is not None and old.inactive_reason(later) == "revoked"


def test_keys_errors_are_one_line_and_exit_nonzero(
    run: Run, sqlite_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run("keys", "revoke", "key_nope", "--config", str(sqlite_config))
    assert (code, out) == (1, "") and "no key 'key_nope'" in err
    # An unusable argument is a usage error: exit 2 and one line naming the option.
    for option, value, why in [
        ("--expires", "someday", "cannot read"),
        ("--expires", "2001-01-01", "future"),
        ("--max-sessions", "0", "from 1 to"),
    ]:
        with pytest.raises(SystemExit) as caught:
            run("keys", "create", "--config", str(sqlite_config), "--name", "n", option, value)
        assert caught.value.code == 2
        err = capsys.readouterr().err
        assert option in err and why in err and "Traceback" not in err
    code, _, err = run("keys", "list", "--config", str(sqlite_config.parent / "missing.toml"))
    assert code == 1 and "cannot read config" in err


def test_store_url_comes_from_the_environment_too(
    run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RTRELAY_STORE_URL", f"sqlite+aiosqlite:///{tmp_path / 'env.db'}")
    code, _, err = run("keys", "create", "--name", "from-env")
    assert code == 0, err
    assert (tmp_path / "env.db").exists()


def test_db_upgrade_migrates_and_reports_the_revision(run: Run, sqlite_config: Path) -> None:
    code, out, err = run("db", "upgrade", "--config", str(sqlite_config))
    assert code == 0, err
    assert f"revision {head_revision()}" in out
    code, out, _ = run("db", "upgrade", "--config", str(sqlite_config))  # idempotent
    assert code == 0
    bad = write_config(
        sqlite_config.parent / "bad.toml", "postgresql+asyncpg://u:pw9@127.0.0.1:1/x"
    )
    code, _, err = run("db", "upgrade", "--config", str(bad))
    assert code == 1 and "pw9" not in err and "cannot open store" in err


# -- usage --------------------------------------------------------------------------------

T0 = USAGE_T0
EXAMPLE = EXAMPLE_USAGE


def seed(url: str) -> tuple[KeyRecord, KeyRecord]:
    async def go() -> tuple[KeyRecord, KeyRecord]:
        store = await open_store(url)
        try:
            return await seed_usage(store)
        finally:
            await store.close()

    return asyncio.run(go())


@pytest.fixture
def usage_config(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Path, KeyRecord, KeyRecord]:
    monkeypatch.delenv("RTRELAY_STORE_URL", raising=False)
    a, b = seed(store_url)
    return write_config(tmp_path / "usage.toml", store_url), a, b


def test_usage_json_by_key_model_and_day(
    run: Run, usage_config: tuple[Path, KeyRecord, KeyRecord]
) -> None:
    config, a, b = usage_config
    mini = PriceTable().cost("gpt-realtime-mini", EXAMPLE)
    assert mini is not None

    code, out, err = run("usage", "--config", str(config), "--by", "key", "--format", "json")
    assert code == 0, err
    report = json.loads(out)
    assert report["by"] == "key"
    rows = {r["group"]: r for r in report["data"]}
    assert Decimal(rows[a.id]["cost_usd"]) == Decimal("0.0069656") + mini
    assert (rows[a.id]["name"], rows[a.id]["sessions"], rows[a.id]["responses"]) == ("alpha", 2, 2)
    assert rows[b.id]["cost_usd"] == "0.0069656"

    _, out, _ = run("usage", "--config", str(config), "--by", "model", "--format", "json")
    models = {r["group"]: r["responses"] for r in json.loads(out)["data"]}
    assert models == {"gpt-realtime": 2, "gpt-realtime-mini": 1}

    _, out, _ = run("usage", "--config", str(config), "--by", "day", "--format", "json")
    days = [(r["group"], r["responses"]) for r in json.loads(out)["data"]]
    assert days == [("2026-03-01", 1), ("2026-03-02", 2)]

    _, out, _ = run("usage", "--config", str(config), "--key", b.prefix, "--by", "model",
                    "--format", "json")  # fmt: skip
    assert [r["group"] for r in json.loads(out)["data"]] == ["gpt-realtime"]

    _, out, _ = run("usage", "--config", str(config), "--since", "2026-03-02T00:00:00Z",
                    "--until", "2026-03-02T01:30:00Z", "--format", "json")  # fmt: skip
    assert [(r["name"], r["responses"]) for r in json.loads(out)["data"]] == [("alpha", 1)]


def test_usage_csv_has_a_header_and_one_line_per_group(
    run: Run, usage_config: tuple[Path, KeyRecord, KeyRecord]
) -> None:
    config, _, _ = usage_config
    code, out, err = run("usage", "--config", str(config), "--by", "model", "--format", "csv")
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["group"] for r in rows] == ["gpt-realtime", "gpt-realtime-mini"]
    assert rows[0]["cost_usd"] == "0.0139312" and rows[0]["output_audio"] == "182"


def test_usage_table_has_headers_rows_and_a_total(
    run: Run, usage_config: tuple[Path, KeyRecord, KeyRecord]
) -> None:
    config, a, _ = usage_config
    code, out, err = run("usage", "--config", str(config))
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split()[:2] == ["KEY", "NAME"] and "COST USD" in lines[0]
    assert any(line.startswith(a.id) and "alpha" in line for line in lines)
    total = lines[-1].split()
    assert total[0] == "TOTAL" and total[-2] == str(Decimal("0.0139312") + Decimal("0.00205884"))

    code, out, _ = run("usage", "--config", str(config), "--by", "day")
    assert out.splitlines()[0].startswith("DAY") and "2026-03-02" in out


def test_usage_refuses_unknown_keys_and_bad_times(
    run: Run, usage_config: tuple[Path, KeyRecord, KeyRecord], capsys: pytest.CaptureFixture[str]
) -> None:
    config, _, _ = usage_config
    code, _, err = run("usage", "--config", str(config), "--key", "zzzzzzzz")
    assert code == 1 and "no key" in err
    with pytest.raises(SystemExit) as caught:
        run("usage", "--config", str(config), "--since", "yesterday-ish")
    assert caught.value.code == 2
    assert "cannot read" in capsys.readouterr().err
