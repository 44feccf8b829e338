"""PNG plots of a results document (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["write_plots"]

_STYLES = {
    "direct": "black",
    "rtrelay": "tab:blue",
    "rtrelay-core": "tab:cyan",
    "nginx": "tab:green",
    "litellm": "tab:red",
}


def write_plots(doc: dict[str, Any], out: Path) -> list[Path]:
    """Write the latency-vs-sessions and CPU-per-frame plots; returns the files written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written: list[Path] = []
    absolute = _series(doc, "rtt_ms")
    added = _series(doc, "added_rtt_ms")
    if absolute:
        fig, (left, right) = plt.subplots(1, 2, figsize=(12, 5))
        for ax, series, keys in (
            (left, absolute, ("p50", "p99", "p999")),
            (right, added, ("p50", "p99")),
        ):
            for name, points in series.items():
                xs = [n for n, _ in points]
                for key, style in zip(keys, ("-", "--", ":"), strict=False):
                    ys = [_number(f.get(key)) for _, f in points]
                    if any(y == y for y in ys):  # NaN marks a missing value
                        ax.plot(
                            xs,
                            ys,
                            style,
                            marker="o",
                            color=_STYLES.get(name),
                            label=f"{name} {key}",
                        )
            ax.set_xlabel("concurrent audio sessions")
            ax.set_yscale("symlog", linthresh=0.1)
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize="small", ncol=2)
        left.set_ylabel("probe round trip (ms)")
        left.set_title("Round trip through each target")
        right.set_ylabel("added round trip over direct (ms)")
        right.set_title("Added latency (target minus direct)")
        limit = _limit(doc)
        if limit is not None:
            right.axhline(limit, color="grey", linewidth=0.8)
        path = out / "latency_vs_sessions.png"
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    cpu = _cpu_series(doc)
    if cpu:
        fig, ax = plt.subplots(figsize=(8, 5))
        for name, values in cpu.items():
            ax.plot(
                [n for n, _ in values],
                [v for _, v in values],
                marker="o",
                color=_STYLES.get(name),
                label=name,
            )
        ax.set_xlabel("concurrent audio sessions")
        ax.set_ylabel("relay CPU per forwarded frame (µs)")
        ax.set_title("CPU per forwarded frame")
        ax.set_ylim(bottom=0)
        ax.grid(True, alpha=0.3)
        ax.legend()
        path = out / "cpu_per_frame.png"
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written


def _number(value: Any) -> float:
    return float("nan") if value is None else float(value)


def _limit(doc: dict[str, Any]) -> float | None:
    capacity = doc.get("capacity")
    return None if not capacity else float(capacity["latency_limit_ms"])


def _series(doc: dict[str, Any], key: str) -> dict[str, list[tuple[int, dict[str, Any]]]]:
    """Per target: (sessions, percentiles under ``key``), one point per session count."""
    series: dict[str, dict[int, dict[str, Any]]] = {}
    for run in doc.get("runs", []):
        for name, figures in run["targets"].items():
            value = figures.get(key)
            points = series.setdefault(name, {})
            # The main run has the most samples: a capacity step at the same N does not replace it.
            if value and (run["phase"] == "main" or run["sessions"] not in points):
                points[run["sessions"]] = value
    return {name: sorted(points.items()) for name, points in series.items() if points}


def _cpu_series(doc: dict[str, Any]) -> dict[str, list[tuple[int, float]]]:
    series: dict[str, dict[int, float]] = {}
    for run in doc.get("runs", []):
        for name, figures in run["targets"].items():
            value = figures.get("cpu_us_per_frame")
            points = series.setdefault(name, {})
            if value is not None and (run["phase"] == "main" or run["sessions"] not in points):
                points[run["sessions"]] = value
    return {name: sorted(points.items()) for name, points in series.items() if points}
