"""Admin inputs that overflow, or are merely strange, get 400 naming the parameter: never a 500.

Every numeric and time field of the admin API, each with values that overflow Python's
``datetime``, the database's columns or ``Decimal``'s context (``since=99999999d``,
``budget_usd=1e999999``, ``max_sessions=10^30``, NaN, infinities), then a broader sweep of
weird values through every parameter. Both stores: the columns differ (PostgreSQL's
``INTEGER`` is 32-bit, SQLite keeps money as a scaled 64-bit integer).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from admin_helpers import TOKEN, Admin

from rtrelay.cli.main import main

# -- overflow: each numeric or time field x values that overflow something ------------------

BIG_INTS = ["1" + "0" * 30, "2147483648", "9223372036854775808", "-" + "1" * 30]
NON_FINITE = ["1e999999", "-1e999999", "NaN", "Infinity", "-Infinity"]
BODY_NUMBERS = [*BIG_INTS, *NON_FINITE, "1e30", "-1"]
"""Raw JSON number text (Python's json module reads NaN/Infinity and 1e999999 as inf)."""
BUDGET_STRINGS = [
    '"1e999999"',
    '"1E+999999999999"',
    '"-1e999999"',
    '"99999999999999999999999999999"',
    '"NaN"',
    '"sNaN"',
    '"Infinity"',
    '"-0.0000000001"',
]
TIMES = [
    "99999999d",
    "999999999999999999999999d",
    "9999999999w",
    "100000000000000000000s",
    "9999-12-31T23:59:59-05:00",
    "0001-01-01T00:00:00+05:00",
    "10000-01-01",
    "+275760-09-13",
]
LIMITS = ["1e999999", "99999999999999999999", "-99999999999999999999", "NaN", "inf", "1" * 5000]

BODY_CASES = [
    *[("max_sessions", v) for v in BODY_NUMBERS],
    *[("sessions_per_minute", v) for v in BODY_NUMBERS],
    *[("budget_usd", v) for v in [*BODY_NUMBERS, *BUDGET_STRINGS]],
    *[("expires_in", f'"{v}"') for v in TIMES],
    *[("expires_at", f'"{v}"') for v in TIMES],
]
QUERY_CASES = [
    *[("/usage", "since", v) for v in TIMES],
    *[("/usage", "until", v) for v in TIMES],
    *[("/sessions", "since", v) for v in TIMES],
    *[("/sessions", "limit", v) for v in LIMITS],
]
# Times that are merely far away are fine as a query bound (they select nothing, or all).
FAR_BUT_VALID_QUERY = {"9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+05:00"}


async def raw_post(admin: Admin, path: str, body: str) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    async with admin.http.post(admin.url + path, data=body.encode(), headers=headers) as resp:
        assert resp.content_type == "application/json", await resp.text()
        return resp.status, await resp.json()


def assert_names(status: int, body: Any, param: str | None) -> None:
    assert status == 400, body
    error = body["error"]
    assert set(error) == {"type", "code", "message", "param"}
    assert error["code"] in ("invalid_value", "invalid_type", "invalid_json"), error
    assert error["message"]
    if error["code"] != "invalid_json":
        assert error["param"] == param, error


@pytest.mark.parametrize(("field", "value"), BODY_CASES)
async def test_an_overflowing_key_field_is_400_naming_it(
    admin: Admin, field: str, value: str
) -> None:
    status, body = await raw_post(admin, "/keys", f'{{"name": "n", "{field}": {value}}}')
    assert_names(status, body, field)
    assert await admin.store.list_keys() == []


@pytest.mark.parametrize(("path", "param", "value"), QUERY_CASES)
async def test_an_overflowing_query_parameter_is_400_naming_it(
    admin: Admin, path: str, param: str, value: str
) -> None:
    status, body, _ = await admin.call("GET", f"{path}?{param}={quote(value)}")
    if param in ("since", "until") and value in FAR_BUT_VALID_QUERY:
        assert status == 400 or (status == 200 and body["data"] == []), body
        return
    assert_names(status, body, param)


# -- weird values through every parameter: never a 500 -------------------------------------

WEIRD_JSON = [
    "null",
    "true",
    "false",
    "0",
    "-0",
    "-0.0",
    "1.5",
    "1e-999999",
    "1e308",
    "-1e308",
    '""',
    '" "',
    '"\\u0000"',
    '"a\\u0000b"',
    '"\\ud800"',
    '"\\udfff\\ud800"',
    '"\\u0661\\u0662"',
    '"1_000"',
    '" 5 "',
    '"0x10"',
    '"1e3"',
    '"\\n"',
    '"\\u202e"',
    '"' + "x" * 100_000 + '"',
    "[]",
    "{}",
    "[null]",
    '["\\u0000"]',
    '["\\ud800"]',
    '[""]',
    "[1, 2]",
    '{"a": 1}',
    "[" * 50 + "]" * 50,
]
BODY_FIELDS = [
    "name",
    "models",
    "origins",
    "max_sessions",
    "sessions_per_minute",
    "budget_usd",
    "expires_in",
    "expires_at",
]


@pytest.mark.parametrize("field", BODY_FIELDS)
async def test_weird_values_in_each_key_field_never_fail_the_server(
    admin: Admin, field: str
) -> None:
    failures = []
    for value in [*WEIRD_JSON, *BODY_NUMBERS]:
        body = f'{{"name": "n", "{field}": {value}}}' if field != "name" else f'{{"name": {value}}}'
        status, answer = await raw_post(admin, "/keys", body)
        if status == 201:
            continue
        if status != 400 or (
            answer["error"]["code"] != "invalid_json" and answer["error"]["param"] != field
        ):
            failures.append((value[:40], status, answer["error"]))
    assert failures == []


WEIRD_BODIES = [
    "",
    "{",
    "nul",
    '"\\ud800"',
    "[" * 100_000,
    "[" * 100_000 + "]" * 100_000,
    '{"name": "n"' + ', "name": "m"' * 1000 + "}",
    "1" + "0" * 5000,
    '{"name": "n", "max_sessions": ' + "9" * 5000 + "}",
    '{"name": "n"}\x00',
    "\xff\xfe",
]


@pytest.mark.parametrize("body", WEIRD_BODIES, ids=range(len(WEIRD_BODIES)))
async def test_weird_bodies_are_400_or_created(admin: Admin, body: str) -> None:
    status, answer = await raw_post(admin, "/keys", body)
    assert status in (201, 400), answer


WEIRD_TEXT = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "\udcff",
    "\u0661",
    "-1",
    "0",
    "1e999999",
    "NaN",
    "inf",
    "99999999d",
    "0001-01-01T00:00:00+05:00",
    "9999-12-31T23:59:59-05:00",
    "9" * 5000,
    "key_" + "\x00" * 10,
    "rk_\x00\x00\x00\x00\x00\x00\x00\x00",
    "%",
    "../../etc/passwd",
    "x" * 4000,
]
QUERY_PARAMS = [
    ("/usage", "by"),
    ("/usage", "key"),
    ("/usage", "since"),
    ("/usage", "until"),
    ("/sessions", "key"),
    ("/sessions", "since"),
    ("/sessions", "limit"),
    ("/sessions", "live"),
]


@pytest.mark.parametrize(("path", "param"), QUERY_PARAMS)
async def test_weird_query_values_never_fail_the_server(
    admin: Admin, path: str, param: str
) -> None:
    failures = []
    for value in WEIRD_TEXT:
        query = quote(value, errors="surrogatepass")
        status, answer, _ = await admin.call("GET", f"{path}?{param}={query}")
        if status == 200:
            continue
        if status not in (400, 404) or answer["error"]["param"] != param:
            failures.append((value[:40], status, answer["error"]))
    assert failures == []


@pytest.mark.parametrize("action", ["", "/revoke", "/rotate"])
async def test_weird_key_references_are_404(admin: Admin, action: str) -> None:
    failures = []
    for value in WEIRD_TEXT:
        if not value.strip() or value in ("%", "../../etc/passwd"):
            continue  # routing, not a key reference
        ref = quote(value, safe="", errors="surrogatepass")
        status, answer, _ = await admin.call("POST" if action else "GET", f"/keys/{ref}{action}")
        if status != 404 or answer["error"]["param"] != "key":
            failures.append((value[:40], status, answer["error"]))
    assert failures == []


# -- the same inputs through the CLI: exit 2 and one line naming the option ------------------

CLI_CASES = [
    *[
        (["keys", "create", "--name", "n", option, value], option)
        for option in ("--max-sessions", "--sessions-per-minute")
        for value in [*BIG_INTS, "0", "1e999999", "NaN"]
    ],
    *[
        (["keys", "create", "--name", "n", "--budget-usd", value], "--budget-usd")
        for value in [*NON_FINITE, "sNaN", "1e30", "-0.01", "9" * 5000, "1E+999999999999"]
    ],
    *[(["keys", "create", "--name", "n", "--expires", value], "--expires") for value in TIMES],
    *[(["usage", option, value], option) for option in ("--since", "--until") for value in TIMES],
    (["keys", "create", "--name", "x" * 300], "--name"),
    (["keys", "create", "--name", "n", "--models", "gpt\x01realtime"], "--models"),
    (["keys", "create", "--name", "n", "--origins", "https://a.example," + "o" * 300], "--origins"),
]


@pytest.mark.parametrize(("argv", "option"), CLI_CASES)
def test_the_cli_refuses_the_same_inputs_with_exit_2(
    argv: list[str],
    option: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("RTRELAY_STORE_URL", f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}")
    with pytest.raises(SystemExit) as caught:
        main(argv)
    err = capsys.readouterr().err
    assert caught.value.code == 2, err
    assert "Traceback" not in err
    assert f"error: argument {option}: " in err.strip().splitlines()[-1]  # one line says why
    assert not (tmp_path / "cli.db").exists()  # refused before any store was opened
