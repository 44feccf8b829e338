"""``rtrelay bench --quick`` end to end: real processes on 127.0.0.1, figures that make sense.

Runs the real command (direct + rtrelay only: no nginx or LiteLLM install in a test) and
checks the results document, the table and the plots; that every process it started
is gone afterwards; and that the rtrelay key it created never reached a file.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import psutil
import pytest

from bench.bench_cli import assert_sessions_talked, run_bench_cli

pytestmark = pytest.mark.timeout(90)

SECRET = re.compile(rb"rk_[a-z0-9]{8}_[A-Za-z0-9_-]{20,}")


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path, str]:
    out = tmp_path_factory.mktemp("bench")
    doc, stdout = run_bench_cli(out, "--quick", "--targets", "direct,rtrelay,rtrelay-core")
    return doc, out, stdout


def _main(doc: dict[str, Any]) -> dict[str, Any]:
    (run,) = [r for r in doc["runs"] if r["phase"] == "main"]
    assert run["sessions"] == 8
    targets: dict[str, Any] = run["targets"]
    return targets


@pytest.mark.parametrize("name", ["direct", "rtrelay", "rtrelay-core"])
def test_every_session_talked_and_none_failed(quick_run: Any, name: str) -> None:
    figures = _main(quick_run[0])[name]
    assert_sessions_talked(figures, probes=50)
    assert figures["rtt_ms"]["p99"] <= figures["rtt_ms"]["p999"]


def test_relay_figures_are_sane(quick_run: Any) -> None:
    doc = quick_run[0]
    relay = _main(doc)["rtrelay"]
    assert relay["cpu_s"] > 0 and relay["cpu_us_per_frame"] > 0 and relay["cpu_s_per_gb"] > 0
    for key in ("added_rtt_ms", "added_per_frame_ms", "added_handshake_ms"):
        assert set(relay[key]) >= {"p50", "p99"}
        assert all(math.isfinite(v) for v in relay[key].values())
    assert relay["added_per_frame_ms"]["p50"] == pytest.approx(
        relay["added_rtt_ms"]["p50"] / 2, abs=1e-3
    )
    idle = doc["idle_rss"]["rtrelay"]
    assert idle["connected"] == idle["sessions"] > 0
    assert idle["kb_per_session"] >= 0
    assert relay["rss_kb_per_active_session"] >= 0
    # Direct has no relay process: no CPU or memory figures, rather than zeros.
    assert _main(doc)["direct"]["cpu_us_per_frame"] is None


def test_table_plots_and_goals_are_written(quick_run: Any) -> None:
    doc, out, stdout = quick_run
    assert "| rtrelay |" in stdout and "| direct |" in stdout
    assert (out / "results.md").read_text().startswith("rtrelay bench:")
    for plot in ("latency_vs_sessions.png", "cpu_per_frame.png"):
        assert (out / plot).read_bytes().startswith(b"\x89PNG")
    goals = {g["goal"]: g for g in doc["goals"]}
    relay, core = _main(doc)["rtrelay"], _main(doc)["rtrelay-core"]
    assert goals["relay CPU <= 45 µs per frame"]["value"] == relay["cpu_us_per_frame"]
    over_core = goals["with admission + ledger, CPU per frame within 10% of rtrelay-core"]
    assert over_core["value"] == pytest.approx(
        relay["cpu_us_per_frame"] / core["cpu_us_per_frame"], abs=1e-3
    )
    assert over_core["met"] is (over_core["value"] <= 1.1)
    assert "rtrelay vs rtrelay-core: CPU/frame" in stdout


def test_every_measured_window_reports_host_steal(quick_run: Any) -> None:
    doc, out, stdout = quick_run
    steal = doc["steal"]
    assert steal["threshold_pct"] == 5.0
    # 2 interleaved rounds of each of the 3 targets, in order.
    assert [(w["phase"], w["round"], w["target"]) for w in steal["windows"]] == [
        ("main", r, t) for r in (1, 2) for t in ("direct", "rtrelay", "rtrelay-core")
    ]
    for window in steal["windows"]:
        assert 0.0 <= window["steal_pct"] <= 100.0
        assert window["flagged"] is (window["steal_pct"] > 5.0)
    assert steal["flagged"] == sum(w["flagged"] for w in steal["windows"])
    relay = _main(doc)["rtrelay"]
    assert len(relay["steal_pct_by_round"]) == 2
    line = next(x for x in stdout.splitlines() if x.startswith("Host steal"))
    assert f"max {steal['max_pct']:.1f} % over 6 windows" in line
    assert line in (out / "results.md").read_text()


def test_every_process_is_stopped(quick_run: Any) -> None:
    doc = quick_run[0]
    pids = [
        doc["provider"]["pid"],
        *(doc["targets"][n]["pid"] for n in ("rtrelay", "rtrelay-core")),
    ]
    for pid in pids:
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_the_relay_key_never_reaches_a_file(quick_run: Any) -> None:
    out = quick_run[1]
    files = [p for p in out.rglob("*") if p.is_file()]
    assert {"rtrelay.log", "rtrelay-core.log"} <= {p.name for p in files}
    for path in files:
        assert SECRET.search(path.read_bytes()) is None, path
