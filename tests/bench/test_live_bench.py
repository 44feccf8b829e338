"""``rtrelay bench --protocol live`` end to end: GPT-Live sessions through rtrelay vs direct.

A tiny run of the real command (2 sessions, a few seconds; direct and rtrelay, LiteLLM
asked for and left out without installing anything) against the real simulated
provider. Checks the results document's fields, the relay's ledger (the sessions were
GPT-Live sessions, billed in seconds) and that no process is left; never speed.
"""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path
from typing import Any

import psutil
import pytest

from bench.bench_cli import assert_sessions_talked, run_bench_cli
from rtrelay.bench import BenchOptions

pytestmark = pytest.mark.timeout(90)


@pytest.fixture(scope="module")
def live_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path, str]:
    out = tmp_path_factory.mktemp("live-bench")
    doc, stdout = run_bench_cli(
        out,
        *("--protocol", "live", "--quick", "--sessions", "2"),
        *("--targets", "direct,rtrelay,litellm", "--no-plots"),
    )
    return doc, out, stdout


def _main(doc: dict[str, Any]) -> dict[str, Any]:
    (run,) = [r for r in doc["runs"] if r["phase"] == "main"]
    assert run["sessions"] == 2
    targets: dict[str, Any] = run["targets"]
    return targets


def test_every_target_is_asked_on_the_live_route(live_run: Any) -> None:
    doc, _, stdout = live_run
    assert doc["meta"]["options"]["protocol"] == "live"
    assert set(doc["targets"]) == {"direct", "rtrelay"}
    for target in doc["targets"].values():
        assert target["url"].endswith("/v1/live/sessions")
    assert stdout.startswith("rtrelay bench: 2 concurrent GPT-Live sessions")
    assert "live" in doc["skipped"]["litellm"]


@pytest.mark.parametrize("name", ["direct", "rtrelay"])
def test_every_session_talked_both_ways_and_none_failed(live_run: Any, name: str) -> None:
    # Full duplex: the provider's VAD ended turns and spoke replies while we streamed
    # (audio deltas, replies); probes came back as Live errors quoting client_event_id.
    assert_sessions_talked(_main(live_run[0])[name], probes=10)


def test_relay_latency_and_cpu_per_frame_are_reported(live_run: Any) -> None:
    doc = live_run[0]
    relay = _main(doc)["rtrelay"]
    assert relay["cpu_s"] > 0 and relay["cpu_us_per_frame"] > 0
    for key in ("added_rtt_ms", "added_per_frame_ms", "added_handshake_ms"):
        assert set(relay[key]) >= {"p50", "p99"}
        assert all(math.isfinite(v) for v in relay[key].values())
    assert relay["added_per_frame_ms"]["p99"] == pytest.approx(
        relay["added_rtt_ms"]["p99"] / 2, abs=1e-3
    )
    assert len(relay["steal_pct_by_round"]) == 2
    goals = {g["goal"]: g for g in doc["goals"]}
    assert goals["relay CPU <= 45 µs per frame"]["value"] == relay["cpu_us_per_frame"]
    assert _main(doc)["direct"]["cpu_us_per_frame"] is None


def test_the_relay_billed_gpt_live_seconds(live_run: Any) -> None:
    ledger = live_run[1] / "logs" / "rtrelay.db"
    with sqlite3.connect(ledger) as db:
        rows = db.execute(
            "SELECT model, unit, kind, seconds FROM rtrelay_usage WHERE model = 'gpt-live-1'"
        ).fetchall()
    assert rows
    assert {(model, unit, kind) for model, unit, kind, _ in rows} == {
        ("gpt-live-1", "seconds", "duration")
    }
    assert all(seconds > 0 for *_, seconds in rows)


def test_every_process_is_stopped(live_run: Any) -> None:
    doc = live_run[0]
    for pid in (doc["provider"]["pid"], doc["targets"]["rtrelay"]["pid"]):
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_live_sessions_have_no_typed_turns_and_leave_room_for_a_pause() -> None:
    with pytest.raises(ValueError, match="text_sessions"):
        BenchOptions(protocol="live", text_sessions=1)
    with pytest.raises(ValueError, match="turn_ms"):
        BenchOptions(protocol="live", turn_ms=600, chunk_ms=100)
