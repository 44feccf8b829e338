"""Readable output from a results document: the markdown table, ratios, and the issue's goals."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from rtrelay.bench._hoststat import steal_markdown
from rtrelay.bench._relay import sources_markdown

__all__ = ["GOALS", "goals", "markdown", "ratios", "summary_line"]

Figures = dict[str, Any]


def _get(figures: Figures | None, *path: str) -> Any:
    value: Any = figures
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _main_run(doc: dict[str, Any]) -> dict[str, Figures]:
    for run in doc.get("runs", []):
        if run["phase"] == "main":
            targets: dict[str, Figures] = run["targets"]
            return targets
    return {}


def _capacity_per_core(doc: dict[str, Any], name: str) -> int | None:
    value = _get(doc.get("capacity"), "targets", name, "per_core")
    return value if isinstance(value, int) else None


def _capacity_cell(doc: dict[str, Any], name: str) -> str | None:
    """``400``, ``>=800`` (never failed) or ``<50`` (failed at the first step)."""
    c = _get(doc.get("capacity"), "targets", name)
    if not isinstance(c, dict):
        return None
    if c.get("per_core") is None:
        return f"<{c['failed_at']}" if c.get("failed_at") else None
    return f">={c['per_core']}" if c.get("lower_bound") else str(c["per_core"])


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


_COLUMNS: Final[tuple[tuple[str, Callable[[dict[str, Any], str, Figures], Any], int], ...]] = (
    ("added/frame p50 ms", lambda d, n, f: _get(f, "added_per_frame_ms", "p50"), 3),
    ("p99 ms", lambda d, n, f: _get(f, "added_per_frame_ms", "p99"), 3),
    ("p999 ms", lambda d, n, f: _get(f, "added_per_frame_ms", "p999"), 3),
    (
        "RTT p50 / p99 ms",
        lambda d, n, f: _pair(_get(f, "rtt_ms", "p50"), _get(f, "rtt_ms", "p99")),
        3,
    ),
    (
        "handshake p50 / p99 ms",
        lambda d, n, f: _pair(_get(f, "handshake_ms", "p50"), _get(f, "handshake_ms", "p99")),
        2,
    ),
    ("CPU µs/frame", lambda d, n, f: _get(f, "cpu_us_per_frame"), 1),
    ("CPU s/GB", lambda d, n, f: _get(f, "cpu_s_per_gb"), 1),
    ("KB/idle session", lambda d, n, f: _get(d, "idle_rss", n, "kb_per_session"), 1),
    ("KB/active session", lambda d, n, f: _get(f, "rss_kb_per_active_session"), 1),
    ("failed", lambda d, n, f: _get(f, "sessions_failed"), 0),
    ("capacity/core", lambda d, n, f: _capacity_cell(d, n), 0),
)


def _pair(a: Any, b: Any) -> str:
    return f"{_fmt(a, 3)} / {_fmt(b, 3)}"


def markdown(doc: dict[str, Any]) -> str:
    """The main run as a markdown table, then the ratios and the skipped targets."""
    run = _main_run(doc)
    sessions = next((r["sessions"] for r in doc.get("runs", []) if r["phase"] == "main"), 0)
    live = _get(doc, "meta", "options", "protocol") == "live"
    lines = [
        f"rtrelay bench: {sessions} concurrent {'GPT-Live ' if live else ''}sessions, "
        f"{_get(doc, 'meta', 'options', 'duration_s')} s measured per target "
        f"({_get(doc, 'meta', 'options', 'rounds')} interleaved rounds)",
        "",
        "| target | " + " | ".join(c[0] for c in _COLUMNS) + " |",
        "|---|" + "---:|" * len(_COLUMNS),
    ]
    for name, figures in run.items():
        cells = [_fmt(get(doc, name, figures), digits) for _, get, digits in _COLUMNS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    capacity = doc.get("capacity")
    if capacity:
        lines.append("")
        lines.append(
            f"Capacity (added RTT p99 < {capacity['latency_limit_ms']:g} ms, no failures):"
        )
        for name, c in capacity["targets"].items():
            why = (
                f"missed at {c['failed_at']}: {c['reason']}" if c.get("failed_at") else c["reason"]
            )
            lines.append(f"- {name}: {_capacity_cell(doc, name)} sessions per relay core ({why})")
    lines.append("")
    lines.append(summary_line(doc))
    lines.append(steal_markdown(doc.get("steal")))
    meta = doc.get("meta", {})
    lines += sources_markdown(meta)
    for name, why in doc.get("skipped", {}).items():
        lines.append(f"- {name} skipped: {why}")
    return "\n".join(lines)


def ratios(doc: dict[str, Any], other: str) -> dict[str, float | None]:
    """rtrelay's figures divided by ``other``'s (below 1: rtrelay uses less / is faster)."""
    run = _main_run(doc)
    ours, theirs = run.get("rtrelay"), run.get(other)

    def ratio(a: Any, b: Any) -> float | None:
        return _ratio(a, b, digits=2)

    return {
        "cpu_per_frame": ratio(_get(ours, "cpu_us_per_frame"), _get(theirs, "cpu_us_per_frame")),
        "added_p50": ratio(_get(ours, "added_rtt_ms", "p50"), _get(theirs, "added_rtt_ms", "p50")),
        "added_p99": ratio(_get(ours, "added_rtt_ms", "p99"), _get(theirs, "added_rtt_ms", "p99")),
        "rss_per_idle_session": ratio(
            _get(doc, "idle_rss", "rtrelay", "kb_per_session"),
            _get(doc, "idle_rss", other, "kb_per_session"),
        ),
        "capacity": ratio(_capacity_per_core(doc, "rtrelay"), _capacity_per_core(doc, other)),
    }


def summary_line(doc: dict[str, Any]) -> str:
    parts = []
    for other in ("baseline", "rtrelay-core", "nginx", "litellm"):
        if other not in _main_run(doc) or "rtrelay" not in _main_run(doc):
            continue
        r = ratios(doc, other)
        shown = ", ".join(
            f"{label} {_fmt(r[key])}x"
            for key, label in (
                ("cpu_per_frame", "CPU/frame"),
                ("added_p50", "added p50"),
                ("added_p99", "added p99"),
                ("rss_per_idle_session", "RSS/idle session"),
                ("capacity", "capacity"),
            )
            if r[key] is not None
        )
        parts.append(f"rtrelay vs {other}: {shown}")
    return "Summary: " + ("; ".join(parts) if parts else _against_direct(_main_run(doc)))


def _against_direct(run: dict[str, Figures]) -> str:
    """With no other relay in the run, what rtrelay costs over dialing the provider direct."""
    ours = run.get("rtrelay")
    if ours is None or "direct" not in run:
        return "no relay to compare"
    added = ours.get("added_per_frame_ms") or {}
    shown = [
        f"rtrelay adds {_fmt(added.get('p50'), 3)} ms per frame at p50 and "
        f"{_fmt(added.get('p99'), 3)} ms at p99 over direct",
        f"{_fmt(_get(ours, 'added_handshake_ms', 'p50'), 1)} ms to the handshake (p50)",
        f"{_fmt(ours.get('cpu_us_per_frame'), 1)} µs of CPU per frame",
        f"{_fmt(ours.get('sessions_failed'), 0)} failed sessions",
    ]
    return ", ".join(shown) + " (--targets direct,rtrelay,nginx adds a relay to compare with)"


def _capacity_ratio(doc: dict[str, Any], other: str) -> tuple[str | None, bool | None]:
    """rtrelay's capacity over ``other``'s, as a bound when either search was cut short."""
    ours = _get(doc.get("capacity"), "targets", "rtrelay")
    theirs = _get(doc.get("capacity"), "targets", other)
    if not isinstance(ours, dict) or not isinstance(theirs, dict) or not ours.get("per_core"):
        return None, None
    mine = ours["per_core"]
    if theirs.get("per_core") is None:  # missed the very first step
        if not theirs.get("failed_at"):
            return None, None
        ratio = mine / theirs["failed_at"]
        return f">{ratio:.1f}", True if ratio >= 3 else None
    if theirs.get("lower_bound"):
        ratio = mine / theirs["per_core"]
        return f"<={ratio:.1f}", False if ratio < 3 else None
    ratio = mine / theirs["per_core"]
    prefix = ">=" if ours.get("lower_bound") else ""
    return f"{prefix}{ratio:.1f}", ratio >= 3 or (None if ours.get("lower_bound") else False)


GOALS: Final = (
    ("added latency p50 per frame <= 0.2 ms", ("added_per_frame_ms", "p50"), 0.2),
    ("added latency p99 per frame <= 1 ms", ("added_per_frame_ms", "p99"), 1.0),
    ("relay CPU <= 45 µs per frame", ("cpu_us_per_frame",), 45.0),
)


def goals(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Issue 7's targets for rtrelay, each with the measured value and whether it was met."""
    run = _main_run(doc)
    ours = run.get("rtrelay")
    if ours is None:
        return []
    out: list[dict[str, Any]] = []

    def check(goal: str, value: Any, met: bool | None) -> None:
        out.append({"goal": goal, "value": value, "met": met})

    for goal, path, bound in GOALS:
        value = _get(ours, *path)
        check(goal, value, None if value is None else value <= bound)
    nginx_ratio = ratios(doc, "nginx")["cpu_per_frame"] if "nginx" in run else None
    check(
        "CPU per frame <= 2.5x nginx",
        nginx_ratio,
        None if nginx_ratio is None else nginx_ratio <= 2.5,
    )
    capacity = _capacity_cell(doc, "rtrelay")
    per_core = _capacity_per_core(doc, "rtrelay") or 0
    bounded = bool(_get(doc.get("capacity"), "targets", "rtrelay", "lower_bound"))
    check(
        ">= 300 audio sessions per relay core",
        capacity,
        None if capacity is None or (bounded and per_core < 300) else per_core >= 300,
    )
    ratio, met = _capacity_ratio(doc, "litellm")
    check(">= 3x LiteLLM's capacity", ratio, met)
    idle = _get(doc, "idle_rss", "rtrelay", "kb_per_session")
    check("<= 40 KB RSS per idle session", idle, None if idle is None else idle <= 40)
    core = run.get("rtrelay-core")
    for goal, path in CORE_GOALS:
        over = _ratio(_get(ours, *path), _get(core, *path))
        check(goal, over, None if over is None else over <= 1 + CORE_MARGIN)
    return out


CORE_MARGIN: Final = 0.10
CORE_GOALS: Final = (
    ("with admission + ledger, CPU per frame within 10% of rtrelay-core", ("cpu_us_per_frame",)),
    (
        "with admission + ledger, added p50 per frame within 10% of rtrelay-core",
        ("added_per_frame_ms", "p50"),
    ),
    (
        "with admission + ledger, added p99 per frame within 10% of rtrelay-core",
        ("added_per_frame_ms", "p99"),
    ),
)
"""Issue 3: what the gateway's admission and ledger may cost over the bare relay."""


def _ratio(a: Any, b: Any, *, digits: int = 3) -> float | None:
    if not isinstance(a, int | float) or not isinstance(b, int | float) or b <= 0:
        return None
    return round(a / b, digits)
