"""`rtrelay bench --targets direct,rtrelay` ends with a real summary, not "nothing to compare"."""

from __future__ import annotations

from typing import Any

from rtrelay.bench._report import summary_line


def _doc(**targets: dict[str, Any]) -> dict[str, Any]:
    return {"runs": [{"phase": "main", "sessions": 8, "targets": targets}]}


RTRELAY = {
    "added_per_frame_ms": {"p50": 0.0383, "p99": 0.0687},
    "added_handshake_ms": {"p50": 2.7808},
    "cpu_us_per_frame": 54.1,
    "sessions_failed": 0,
}


def test_direct_and_rtrelay_alone_summarise_what_rtrelay_adds() -> None:
    assert summary_line(_doc(direct={}, rtrelay=RTRELAY)) == (
        "Summary: rtrelay adds 0.038 ms per frame at p50 and 0.069 ms at p99 over direct, "
        "2.8 ms to the handshake (p50), 54.1 µs of CPU per frame, 0 failed sessions "
        "(--targets direct,rtrelay,nginx adds a relay to compare with)"
    )


def test_missing_figures_show_as_dashes() -> None:
    line = summary_line(_doc(direct={}, rtrelay={"sessions_failed": 3}))
    assert line.startswith("Summary: rtrelay adds - ms per frame at p50")
    assert "3 failed sessions" in line


def test_without_rtrelay_there_is_still_nothing_to_compare() -> None:
    assert summary_line(_doc(direct={})) == "Summary: no relay to compare"
