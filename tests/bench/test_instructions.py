"""``rtrelay bench --instructions`` and the host-steal reading every bench run reports.

Real tools only: ``/proc/stat`` as the kernel writes it, valgrind's callgrind counting a
real Python process steered by ``callgrind_control``, and a tiny ``--instructions --quick``
run of the real command through ``rtrelay serve`` under callgrind.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import psutil
import pytest

from rtrelay.bench._callgrind import Callgrind, ensure_valgrind, parse_dump
from rtrelay.bench._hoststat import (
    STEAL_FLAG_PCT,
    HostCpu,
    steal_markdown,
    steal_pct,
    steal_summary,
    steal_window,
)
from rtrelay.bench._instructions import run_figures, spread_pct, whole_periods

needs_valgrind = pytest.mark.skipif(
    shutil.which("valgrind") is None or shutil.which("callgrind_control") is None,
    reason="valgrind is not installed (apt-get install -y valgrind)",
)

_BENCH = (sys.executable, "-m", "rtrelay.cli.main", "bench")
# A process that keeps doing a little work until it is killed.
_SPIN = (
    "import time\nprint('ready', flush=True)\n"
    "while True:\n    sum(range(2000))\n    time.sleep(0.01)\n"
)


def test_proc_stat_is_read_and_steal_is_a_share_of_all_cpu_time() -> None:
    first = HostCpu.read()
    assert first is not None, "no /proc/stat on this Linux machine"
    assert first.total_s >= first.busy_s >= first.steal_s >= 0
    time.sleep(0.05)
    second = HostCpu.read()
    pct = steal_pct(first, second)
    assert pct is not None and 0.0 <= pct <= 100.0


def test_a_window_with_more_steal_than_the_threshold_is_flagged() -> None:
    # cpu user nice system idle iowait irq softirq steal guest guest_nice (ticks)
    start = HostCpu.parse("cpu  1000 0 500 8000 100 0 0 400 0 0")
    calm = HostCpu.parse("cpu  1100 0 550 8840 100 0 0 410 0 0")  # 10 of 1000 ticks
    noisy = HostCpu.parse("cpu  1100 0 550 8790 100 0 0 460 0 0")  # 60 of 1000 ticks
    assert start is not None and calm is not None and noisy is not None
    assert steal_pct(start, calm) == 1.0 and steal_pct(start, noisy) == 6.0
    ok = steal_window(start, calm, target="rtrelay", round=1)
    bad = steal_window(start, noisy, target="nginx", round=2)
    assert ok == {"target": "rtrelay", "round": 1, "steal_pct": 1.0, "flagged": False}
    assert bad["flagged"] is True and bad["steal_pct"] > STEAL_FLAG_PCT
    summary = steal_summary([ok, bad])
    assert summary["max_pct"] == 6.0 and summary["flagged"] == 1
    line = steal_markdown(summary)
    assert "1 above 5 %" in line and "nginx 2 6.0 %" in line
    assert steal_markdown(steal_summary([ok])).endswith("none above 5 %.")


def test_a_line_that_is_not_the_cpu_total_is_refused() -> None:
    assert HostCpu.parse("cpu0 1 2 3 4 5 6 7 8") is None
    assert HostCpu.parse("") is None
    assert steal_pct(None, HostCpu.parse("cpu  1 0 0 1 0 0 0 0")) is None


def test_windows_last_whole_timer_periods() -> None:
    assert whole_periods(0.0) == 10.0
    assert whole_periods(9.0) == 10.0
    assert whole_periods(10.1) == 10.0  # overran by 1 %: not another period
    assert whole_periods(13.0) == 20.0


def test_spread_is_max_minus_min_over_the_mean() -> None:
    assert spread_pct([99.0, 101.0]) == 2.0
    assert spread_pct([5.0]) is None


def test_the_idle_rate_is_taken_out_of_the_frame_window() -> None:
    windows = {
        "handshakes": {"instructions": 2_100_000, "syscalls": 210, "window_s": 10.0},
        "frames": {"instructions": 12_000_000, "syscalls": 1_200, "window_s": 20.0, "frames": 100},
        "idle": {"instructions": 1_000_000, "syscalls": 100, "window_s": 10.0},
    }
    figures = run_figures(windows, sessions=2)
    assert figures["instructions_per_frame_raw"] == 120_000
    assert figures["instructions_per_frame"] == 100_000  # 12 M - 20 s x 100 k/s
    assert figures["syscalls_per_frame"] == 10.0
    assert figures["instructions_per_session_setup"] == 550_000  # (2.1 M - 10 s x 100 k/s) / 2
    assert figures["idle_share_pct"] == pytest.approx(16.67, abs=0.01)


@needs_valgrind
@pytest.mark.timeout(60)
def test_callgrind_counts_only_between_begin_and_end(tmp_path: Path) -> None:
    tools = ensure_valgrind(install=False)
    out = tmp_path / "callgrind.out"
    proc = subprocess.Popen(
        [*tools.argv(out), sys.executable, "-c", _SPIN],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"ready\n"  # running: callgrind_control can find it

    async def windows() -> tuple[int, int, int | None]:
        meter = Callgrind(tools, proc.pid, out)
        await meter.begin()
        await asyncio.sleep(0.3)
        short = await meter.end("short")
        await asyncio.sleep(0.5)  # not counted
        await meter.begin()
        await asyncio.sleep(1.2)
        long = await meter.end("long")
        return short.instructions, long.instructions, long.syscalls

    try:
        short, long, syscalls = asyncio.run(windows())
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
    assert 0 < short < long  # each window counts from zero, only while it is open
    assert syscalls is not None and syscalls > 0  # the sleeps
    dumps = sorted(tmp_path.glob("callgrind.out.*"))
    assert len(dumps) == 2
    parsed = parse_dump(dumps[1].read_text())
    assert parsed.trigger == "dump long" and parsed.instructions == long
    assert set(parsed.events) >= {"Ir", "sysCount"}


def test_a_file_that_is_not_callgrind_output_is_refused() -> None:
    with pytest.raises(ValueError, match="not a callgrind output file"):
        parse_dump("# callgrind format\nversion: 1\n")


def test_without_valgrind_and_no_install_the_command_says_what_is_missing(
    tmp_path: Path,
) -> None:
    # A PATH with this interpreter's bin only: no valgrind on it.
    env = {**os.environ, "PATH": str(Path(sys.executable).parent)}
    done = subprocess.run(
        [*_BENCH, "--instructions", "--no-install", "--out", str(tmp_path)],
        capture_output=True,
        env=env,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2
    assert b"--instructions needs valgrind" in done.stderr
    assert b"apt-get install -y valgrind" in done.stderr


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str]:
    out = tmp_path_factory.mktemp("instructions")
    done = subprocess.run(
        [
            *_BENCH,
            "--instructions",
            "--quick",
            "--targets",
            "direct,rtrelay-core",
            "--repeats",
            "1",
            "--no-install",
            "--out",
            str(out),
        ],
        capture_output=True,
        timeout=150,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-3000:]
    return orjson.loads((out / "results.json").read_bytes()), done.stdout.decode()


@needs_valgrind
@pytest.mark.timeout(180)
def test_a_tiny_run_counts_the_relay_per_frame_and_stops_it(tiny_run: Any) -> None:
    doc, stdout = tiny_run
    assert doc["mode"] == "instructions"
    assert doc["skipped"] == {"direct": "no relay process: nothing to count"}
    core = doc["targets"]["rtrelay-core"]
    (run,) = core["runs"]
    frames = run["windows"]["frames"]
    # 2 sessions x (3 x (append + probe) + commit, probe, response.create, probe)
    assert frames["frames_sent"] == 20 and frames["responses"] == 2
    assert frames["frames_received"] > frames["frames_sent"]
    # A Python relay forwards a frame in tens of thousands of instructions, not 0, not 10 M.
    assert 5_000 < run["instructions_per_frame"] < 1_000_000
    assert run["instructions_per_frame"] < run["instructions_per_frame_raw"]
    assert run["instructions_per_session_setup"] > run["instructions_per_frame"]
    assert all(w["window_s"] > 0 for w in run["windows"].values())
    assert [w["window"] for w in doc["steal"]["windows"]] == ["handshakes", "frames", "idle"]
    assert "| rtrelay-core |" in stdout and "Host steal per measured window" in stdout
    pid = run["pid"]
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
