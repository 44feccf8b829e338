"""The fault matrix's report: rows appended by each test, written where asked."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

REPORT_ENV = "RTRELAY_FAULT_REPORT"


@pytest.fixture(scope="session")
def fault_report() -> Iterator[list[dict[str, str]]]:
    rows: list[dict[str, str]] = []
    yield rows
    target = os.environ.get(REPORT_ENV)
    if target and rows:
        Path(target).write_text(json.dumps(rows, indent=2) + "\n")
