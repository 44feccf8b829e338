"""``rtrelay bench --soak --quick`` end to end, and the soak's plan and verdict on their own.

The smoke run is the real command (60 sessions, 10 at a time, through a real ``rtrelay
serve`` with key auth and the SQLite ledger, against ``rtrelay mock`` in its own
process): the results document has the relay's samples before, at checkpoints and
after, every kind of ending happened, the ledger matches what the clients saw, and
every process it started is gone.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import psutil
import pytest

from rtrelay.bench._soak import RelaySample, SoakOptions, block_ends, leak_verdict
from rtrelay.bench._soak_session import soak_kind

SECRET = re.compile(rb"rk_[a-z0-9]{8}_[A-Za-z0-9_-]{20,}")
SAMPLE_FIELDS = {"rss_kb", "fds", "threads", "tasks", "tcp_connections", "sessions"}


@pytest.fixture(scope="module")
def soak_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path, str]:
    out = tmp_path_factory.mktemp("soak")
    done = subprocess.run(
        [sys.executable, "-m", "rtrelay.cli.main", "bench", "--soak", "--quick", "--out", str(out)],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-3000:]
    doc = orjson.loads((out / "results.json").read_bytes())
    return doc, out, done.stdout.decode()


@pytest.mark.timeout(90)
def test_the_relay_is_sampled_before_at_checkpoints_and_after(soak_run: Any) -> None:
    doc = soak_run[0]
    assert doc["mode"] == "soak"
    before, after, checkpoints = doc["before"], doc["after"], doc["checkpoints"]
    assert before["sessions"] == 10 and after["sessions"] == 60
    assert [c["sessions"] for c in checkpoints] == [20, 40, 60]
    for sample in (before, *checkpoints, after):
        assert set(sample) >= SAMPLE_FIELDS
        assert sample["rss_kb"] > 0 and sample["fds"] > 0 and sample["threads"] > 0
        assert isinstance(sample["tasks"], int) and sample["tasks"] > 0  # the relay's gauge
        assert sample["quiet"] is True and sample["active_sessions"] == 0
    verdict = doc["verdict"]
    assert set(verdict["growth"]) >= {"rss_kb", "fds", "tasks", "threads"}
    assert verdict["rss_judged"] is False  # 60 sessions say nothing about RSS


@pytest.mark.timeout(90)
def test_every_ending_happened_and_the_ledger_matches_the_clients(soak_run: Any) -> None:
    doc = soak_run[0]
    sessions = doc["sessions"]
    assert sessions["started"] == 60 and sessions["failed"] == 0, sessions["failures"]
    assert sessions["refused"] == 1 and sessions["connected"] == 59
    assert set(sessions["endings"]) == {
        "client_closed",
        "provider_closed",
        "client_vanished",
        "refused_401",
    }
    assert sessions["client_close_codes"]["1001"] == sessions["endings"]["provider_closed"]
    ledger = doc["ledger"]
    assert ledger["ok"] is True, ledger
    checks = ledger["checks"]
    assert checks["session_rows"]["ledger"] == 59
    assert checks["response_usage_rows"]["ledger"] == sessions["responses"] > 0
    assert checks["refusals_recorded"]["ledger"] == 1
    assert checks["open_session_rows"]["ledger"] == 0


@pytest.mark.timeout(90)
def test_table_written_processes_stopped_key_never_in_a_file(soak_run: Any) -> None:
    doc, out, stdout = soak_run
    assert stdout.startswith("rtrelay bench --soak: 60 sessions")
    assert "| before | 10 |" in stdout and "| after | 60 |" in stdout
    assert (out / "results.md").read_text().startswith("rtrelay bench --soak:")
    # Host steal per block of sessions: up to the warm-up, then each checkpoint.
    windows = doc["steal"]["windows"]
    assert [w["sessions"] for w in windows] == [10, 20, 40, 60]
    assert all(0.0 <= w["steal_pct"] <= 100.0 for w in windows)
    assert "Host steal per measured window" in stdout
    for pid in (doc["provider"]["pid"], doc["relay"]["pid"]):
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    for path in (p for p in out.rglob("*") if p.is_file()):
        assert SECRET.search(path.read_bytes()) is None, path


def test_the_mix_ends_sessions_every_way_and_refuses_every_fiftieth() -> None:
    kinds = Counter(soak_kind(i, 50) for i in range(10_000))
    assert kinds == {
        "respond": 4_800,
        "audio": 2_000,
        "provider_close": 2_000,
        "vanish": 1_000,
        "refused": 200,
    }
    assert [i for i in range(200) if soak_kind(i, 50) == "refused"] == [49, 99, 149, 199]
    assert "refused" not in {soak_kind(i, 0) for i in range(100)}


def test_samples_are_taken_after_the_warm_up_and_at_every_checkpoint() -> None:
    assert block_ends(SoakOptions()) == [200, *range(1_000, 10_001, 1_000)]
    assert block_ends(SoakOptions(sessions=60, warmup=10, checkpoint_every=20)) == [10, 20, 40, 60]
    assert block_ends(SoakOptions(sessions=50, warmup=0, checkpoint_every=100)) == [0, 50]
    with pytest.raises(ValueError, match="warmup"):
        SoakOptions(sessions=100, warmup=100)


def _sample(
    sessions: int, rss_kb: int, *, fds: int = 20, tasks: int = 6, threads: int = 8
) -> RelaySample:
    return RelaySample(
        label="checkpoint",
        sessions=sessions,
        elapsed_s=0.0,
        rss_kb=rss_kb,
        fds=fds,
        threads=threads,
        tcp_connections=0,
        tcp_to_provider=0,
        tasks=tasks,
        active_sessions=0,
        files=(),
        quiet=True,
    )


def test_growth_that_keeps_going_is_a_leak_and_a_plateau_is_not() -> None:
    points = range(1_000, 10_001, 1_000)
    before = _sample(200, 80_000)
    # 2 MB per 1,000 sessions, all the way: what the soak found before the fix
    leaking = [_sample(n, 80_000 + 2 * n) for n in points]
    verdict = leak_verdict(before, leaking, leaking[-1])
    assert verdict["leak_suspected"] and "RSS grows 2000 KB" in verdict["reasons"][0]
    # a working set that grows, then stays: no leak
    plateau = [_sample(n, 80_000 + 4 * min(n, 3_000)) for n in points]
    verdict = leak_verdict(before, plateau, plateau[-1])
    assert not verdict["leak_suspected"], verdict["reasons"]
    assert verdict["rss_kb_per_1000_sessions_second_half"] == 0
    # one task or descriptor more in the second half is a leak, whatever RSS does
    verdict = leak_verdict(before, plateau, _sample(10_000, 92_000, fds=21, tasks=7))
    assert verdict["reasons"] == [
        "fds grew by 1 in the second half",
        "tasks grew by 1 in the second half",
    ]
    # a thread and two handles opened once, lazily, soon after the warm-up: not a leak
    lazy = [_sample(n, 90_000, fds=22, threads=9) for n in points]
    verdict = leak_verdict(before, lazy, lazy[-1])
    assert not verdict["leak_suspected"], verdict["reasons"]
    assert verdict["growth"]["fds"] == 2 and verdict["second_half_growth"]["fds"] == 0
