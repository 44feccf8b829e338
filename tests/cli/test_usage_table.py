"""``rtrelay usage``'s table fits the terminal; JSON and CSV keep every column."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from rtrelay.cli.usage import terminal_width
from rtrelay.ledger.records import UsageRow
from rtrelay.ledger.render import render_usage


def _row(group: str, name: str, **usage: Any) -> UsageRow:
    fields: dict[str, Any] = {
        "input_text": 0,
        "input_audio": 0,
        "input_image": 0,
        "cached_text": 0,
        "cached_audio": 0,
        "cached_image": 0,
        "output_text": 0,
        "output_audio": 0,
        "seconds": Decimal(0),
        "cost_usd": Decimal(0),
        "responses": 0,
        "transcriptions": 0,
        "unpriced": 0,
        "sessions": 0,
    }
    return UsageRow(group=group, name=name, **{**fields, **usage})


ROWS = [
    _row(
        "key_435b55d4498f8856",
        "demo",
        input_text=130,
        input_audio=52000,
        cached_text=64,
        output_text=20,
        output_audio=31000,
        cost_usd=Decimal("0.84"),
        responses=3,
        sessions=1,
    ),
    _row(
        "key_1f8567ee9f2bfb20",
        "web-frontend",
        input_text=1300,
        input_audio=2000,
        cached_audio=1000,
        output_text=200,
        output_audio=3100,
        cost_usd=Decimal("1.84"),
        responses=30,
        sessions=10,
    ),
]


def _widest(text: str) -> int:
    return max(len(line) for line in text.splitlines())


def test_without_a_width_every_column_is_shown() -> None:
    text = render_usage(ROWS, "table", by="key")
    assert "IMAGE IN" in text and "CACHED IMAGE" in text and "UNPRICED" in text


def test_a_wide_terminal_leaves_out_the_columns_that_are_zero_everywhere() -> None:
    text = render_usage(ROWS, "table", by="key", width=140)
    assert _widest(text) <= 140
    header = text.splitlines()[0].split("  ")
    assert "TEXT IN" in header and "CACHED AUDIO" in header and "IMAGE IN" not in header
    assert text.splitlines()[-1] == (
        "(0 in every row, not shown: IMAGE IN, CACHED IMAGE, SECONDS, UNPRICED; every "
        "column: --format json or csv)"
    )


@pytest.mark.parametrize("width", [80, 100])
def test_a_narrow_terminal_gets_tokens_summed_per_direction(width: int) -> None:
    text = render_usage(ROWS, "table", by="key", width=width)
    lines = text.splitlines()
    assert _widest(text) <= width
    header = "KEY NAME SESSIONS RESPONSES IN CACHED OUT COST USD"
    assert lines[0].split() == header.split()
    total = lines[3].split()
    assert total[0] == "TOTAL"
    assert total[-4:] == ["55430", "1064", "34320", "2.68"]  # the sums of the full table
    assert "summed over text, audio and image" in text


def test_json_and_csv_ignore_the_width() -> None:
    assert render_usage(ROWS, "json", by="key", width=40) == render_usage(ROWS, "json", by="key")
    data = json.loads(render_usage(ROWS, "json", by="key", width=40))["data"]
    assert data[0]["input_image"] == 0
    assert render_usage(ROWS, "csv", by="key", width=40) == render_usage(ROWS, "csv", by="key")


def test_the_width_is_the_terminals_or_none_for_a_pipe(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "91")
    assert terminal_width() == 91
    monkeypatch.delenv("COLUMNS")
    assert terminal_width() is None  # pytest captures stdout: not a terminal
