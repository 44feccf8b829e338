"""``rtrelay bench --webrtc`` end to end, tiny: 2 calls per target, 2 open at once.

The real command: ``rtrelay mock`` and ``rtrelay serve`` (key auth, SQLite ledger) in
processes of their own, aiortc callers in the bench's. The report's fields are checked,
never the speed: setup times per target and added by the relay, the relay's memory and
CPU per call over two batches, its traced heap (``--trace-memory``), the goals, and
every process gone.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import psutil
import pytest

SECRET = re.compile(rb"rk_[a-z0-9]{8}_[A-Za-z0-9_-]{20,}")
POINTS = {"count", "p50", "p90", "p99", "max"}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path, str]:
    out = tmp_path_factory.mktemp("webrtc")
    argv = [sys.executable, "-m", "rtrelay.cli.main", "bench", "--webrtc", "--quick"]
    argv += ["--calls", "2", "--concurrency", "2", "--batches", "2", "--trace-memory"]
    argv += ["--out", str(out)]
    done = subprocess.run(argv, capture_output=True, timeout=150, check=False)
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-3000:]
    doc = orjson.loads((out / "results.json").read_bytes())
    return doc, out, done.stdout.decode()


@pytest.mark.timeout(180)
def test_setup_is_timed_through_the_relay_and_direct_in_one_run(run: Any) -> None:
    doc, _, table = run
    assert doc["mode"] == "webrtc"
    setup = doc["setup"]
    for name in ("direct", "rtrelay"):
        figures = setup[name]
        assert figures["calls"] == 2 and figures["failed"] == 0, figures["failures"]
        assert set(figures["answer_ms"]) == POINTS and set(figures["created_ms"]) == POINTS
        # session.created comes after the answer it follows from
        assert figures["created_ms"]["p50"] > figures["answer_ms"]["p50"] > 0
    assert (
        set(setup["added"]["answer_ms"])
        == set(setup["added"]["created_ms"])
        == {
            "p50",
            "p90",
            "p99",
        }
    )
    assert setup["relay_cpu_ms_per_call"] > 0
    assert "| added by rtrelay |" in table and "offer → session.created" in table


@pytest.mark.timeout(180)
def test_the_relays_memory_and_cpu_per_open_call_and_its_heap_are_reported(run: Any) -> None:
    doc = run[0]
    per_call = doc["relay_per_call"]
    assert per_call["calls"] == per_call["open"] == per_call["responses"] == 2
    assert per_call["setup"]["failed"] == 0
    for field in ("rss_kb_per_call", "uss_kb_per_call", "rss_kb_per_call_after_hangup"):
        assert isinstance(per_call[field], float), field
    assert per_call["cpu_ms_per_call_opened"] > 0
    assert per_call["cpu_pct_core_per_open_call"] >= 0
    assert per_call["relay_quiet_after"] is True  # every call ended on the relay too
    [again] = doc["later_batches"]  # the same again on the same relay: the steady cost
    assert again["batch"] == 2 and again["open"] == again["responses"] == 2
    for batch in (per_call, again):
        heap = batch["heap"]
        assert heap["traced_kb_per_call"] > 0
        assert heap["top_lines"] and heap["top_rtrelay_lines"]
        assert all(":" in line["where"] for line in heap["top_lines"])
    # A traced relay's RSS holds the traces: the goal is judged on the last batch's heap.
    assert [g["goal"] for g in doc["goals"]] == [
        "added setup to session.created p50 <= 20 ms",
        "relay heap per open call <= 50 KB (traced, last batch)",
    ]
    assert doc["goals"][1]["value"] == again["heap"]["traced_kb_per_call"]
    assert all(isinstance(g["met"], bool) for g in doc["goals"])


@pytest.mark.timeout(180)
def test_every_process_is_stopped_and_no_key_is_written(run: Any) -> None:
    doc, out, table = run
    for pid in (doc["provider"]["pid"], doc["relay"]["pid"]):
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert SECRET.search(table.encode()) is None
    for path in out.rglob("*"):
        if path.is_file() and path.suffix in (".json", ".md", ".log", ".toml"):
            assert SECRET.search(path.read_bytes()) is None, path
