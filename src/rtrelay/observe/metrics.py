"""Prometheus metrics, defined once, cheap enough to leave on under load.

Nothing here runs per frame: the bridge counts frames and bytes in plain integer
attributes, samples relay-added latency on one frame in 64, and ``Metrics``
folds those into the Prometheus series at session end and every few seconds
for live sessions. With ``--workers N`` each process writes to
``PROMETHEUS_MULTIPROC_DIR`` and ``/metrics`` on any worker shows the sum.

Connection success rate = ``rtrelay_handshakes_total{outcome="success"}`` /
``sum(rtrelay_handshakes_total)``.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from decimal import Decimal
from typing import Final

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as prom_multiprocess

from rtrelay.errors import ERROR_CLASSES
from rtrelay.ledger.prices import Usage

__all__ = [
    "CONTENT_TYPE_LATEST",
    "HANDSHAKE_OUTCOMES",
    "LEDGER_FATES",
    "PRE_UPGRADE_REASONS",
    "Metrics",
    "multiprocess_dir",
]

HANDSHAKE_OUTCOMES: Final = ("success", *(cls.code for cls in ERROR_CLASSES))
"""Every outcome is exported from the start (at 0), so rates never miss a series."""

PRE_UPGRADE_REASONS: Final = ("request_timeout", "pending_cap", "malformed_request")
"""Why the edge closed a connection before any handler saw a request (``edge.server``)."""

LEDGER_FATES: Final = ("written", "journaled", "replayed", "rejected", "dropped")
"""What became of ledger records (``LedgerWriter.snapshot``): see ``rtrelay_ledger_records``."""

_LATENCY_BUCKETS: Final = (
    0.00005,
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
)
_DIAL_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20)
_DURATION_BUCKETS: Final = (1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600)
CIRCUIT_STATES: Final = {"closed": 0, "half-open": 1, "open": 2}


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class Metrics:
    """All of rtrelay's series, on their own registry (tests make one per relay)."""

    def __init__(self) -> None:
        self.multiprocess = multiprocess_dir() is not None
        r = self.registry = CollectorRegistry(auto_describe=True)
        livesum: dict[str, str] = {"multiprocess_mode": "livesum"} if self.multiprocess else {}
        self.handshakes = Counter(
            "rtrelay_handshakes",
            "Client handshakes by outcome: success or the error code that refused them.",
            ["outcome"],
            registry=r,
        )
        for outcome in HANDSHAKE_OUTCOMES:
            self.handshakes.labels(outcome)
        self.active_sessions = Gauge(
            "rtrelay_active_sessions",
            "Sessions open now.",
            registry=r,
            **livesum,  # type: ignore[arg-type]
        )
        self.session_duration = Histogram(
            "rtrelay_session_duration_seconds",
            "Length of relayed sessions.",
            buckets=_DURATION_BUCKETS,
            registry=r,
        )
        self.dial_latency = Histogram(
            "rtrelay_upstream_dial_seconds",
            "Provider handshake time per channel (successful dials).",
            ["channel"],
            buckets=_DIAL_BUCKETS,
            registry=r,
        )
        self.dial_failures = Counter(
            "rtrelay_upstream_dial_failures",
            "Failed provider handshakes per channel and outcome.",
            ["channel", "outcome"],
            registry=r,
        )
        self.active_calls = Gauge(
            "rtrelay_active_calls",
            "WebRTC calls open now (each metered on the relay's own sideband).",
            registry=r,
            **livesum,  # type: ignore[arg-type]
        )
        self.sideband_attach_latency = Histogram(
            "rtrelay_sideband_attach_seconds",
            "Time to attach the relay's metering sideband to a new WebRTC call, per channel.",
            ["channel"],
            buckets=_DIAL_BUCKETS,
            registry=r,
        )
        self.sideband_attach_failures = Counter(
            "rtrelay_sideband_attach_failures",
            "WebRTC calls hung up because the relay's metering sideband could not be "
            "attached, per channel and outcome (refused, timeout, connect).",
            ["channel", "outcome"],
            registry=r,
        )
        self.first_event = Histogram(
            "rtrelay_first_event_seconds",
            "Time from the client's upgrade request to the first provider event it receives.",
            buckets=_DIAL_BUCKETS,
            registry=r,
        )
        self.frames = Counter("rtrelay_frames", "Frames forwarded.", ["direction"], registry=r)
        self.bytes = Counter("rtrelay_bytes", "Bytes forwarded.", ["direction"], registry=r)
        self.added_latency = Histogram(
            "rtrelay_relay_added_seconds",
            "Time a forwarded frame spends in the relay (provider to client, sampled 1/64).",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.closes = Counter(
            "rtrelay_close_codes",
            "Close codes by the side that received them from the relay or sent them.",
            ["side", "code"],
            registry=r,
        )
        self.session_errors = Counter(
            "rtrelay_session_errors",
            "Sessions the relay ended on an error, by code.",
            ["code"],
            registry=r,
        )
        self.tokens = Counter(
            "rtrelay_tokens",
            "Metered tokens by model and modality.",
            ["model", "modality"],
            registry=r,
        )
        self.cost = Counter(
            "rtrelay_cost_usd", "Metered cost in USD by model.", ["model"], registry=r
        )
        self.usage_seconds = Counter(
            "rtrelay_usage_seconds",
            "Metered seconds of audio billed by duration (GPT-Live, translation, ASR); their "
            "cost is in rtrelay_cost_usd by model.",
            registry=r,
        )
        self.unpriced = Counter(
            "rtrelay_unpriced_usage",
            "Usage rows metered for a model with no price, by model and unit (tokens|seconds).",
            ["model", "unit"],
            registry=r,
        )
        self.budget_refusals = Counter(
            "rtrelay_budget_refusals",
            "Refusals for a spent budget: at connect, on response.create, responses cancelled.",
            ["stage"],
            registry=r,
        )
        self.limits_fallback = Counter(
            "rtrelay_limits_fallback",
            "Admission decisions made on this process's own limits because Redis was "
            "unreachable ([redis] on_error = open), by limit: concurrency or rate.",
            ["limit"],
            registry=r,
        )
        for limit in ("concurrency", "rate"):
            self.limits_fallback.labels(limit)
        self.circuit_state = Gauge(
            "rtrelay_channel_circuit_state",
            "Circuit breaker state per channel: 0 closed, 1 half-open, 2 open.",
            ["channel"],
            registry=r,
            **({"multiprocess_mode": "max"} if self.multiprocess else {}),  # type: ignore[arg-type]
        )
        self.pre_upgrade_closed = Counter(
            "rtrelay_pre_upgrade_closed",
            "Connections closed before a request was handled: request deadline passed, "
            "pending-connection cap reached (oldest evicted), or an unreadable request.",
            ["reason"],
            registry=r,
        )
        for reason in PRE_UPGRADE_REASONS:
            self.pre_upgrade_closed.labels(reason)
        self.ledger_records = Counter(
            "rtrelay_ledger_records",
            "Ledger records by fate: written to the store; journaled while it was unreachable; "
            "replayed from the journal; rejected by it (kept in the journal's .rejected file); "
            "dropped (lost, and logged).",
            ["fate"],
            registry=r,
        )
        for fate in LEDGER_FATES:
            self.ledger_records.labels(fate)
        self.ledger_queue_depth = Gauge(
            "rtrelay_ledger_queue_depth",
            "Ledger records waiting in memory for the writer.",
            registry=r,
            **livesum,  # type: ignore[arg-type]
        )
        self.ledger_journal_bytes = Gauge(
            "rtrelay_ledger_journal_bytes",
            "Bytes in the ledger journal not yet replayed into the store (0 when it keeps up).",
            registry=r,
            **livesum,  # type: ignore[arg-type]
        )
        self.refusals_aggregated = Counter(
            "rtrelay_refusals_aggregated",
            "Refused handshakes past the per-minute rate: counted in a per-minute counter row "
            "of the ledger instead of a row each.",
            registry=r,
        )
        self.ledger_pruned = Counter(
            "rtrelay_ledger_pruned_rows",
            "Ledger rows deleted by retention: refusals, refusal counters, sessions without usage.",
            registry=r,
        )
        self.event_loop_tasks = Gauge(
            "rtrelay_event_loop_tasks",
            "asyncio tasks alive in this process, counted at each scrape: steady while idle, "
            "so growth from one idle scrape to the next is a leak.",
            registry=r,
            **livesum,  # type: ignore[arg-type]
        )
        self._ledger_folded: dict[str, int] = {}
        self.frames_in = self.frames.labels("client_to_upstream")
        self.frames_out = self.frames.labels("upstream_to_client")
        self.bytes_in = self.bytes.labels("client_to_upstream")
        self.bytes_out = self.bytes.labels("upstream_to_client")

    def observe_usage(
        self, model: str, tokens: dict[str, int], cost: Decimal | None, unit: str = "tokens"
    ) -> None:
        for modality, count in tokens.items():
            if count:
                self.tokens.labels(model, modality).inc(count)
        if cost is not None:
            self.cost.labels(model).inc(float(cost))
            return
        self.unpriced.labels(model, unit).inc()

    def observe_metered(self, model: str, usage: Usage, cost: Decimal | None) -> None:
        """A meter's ``observe`` hook (``bridge.metering.Observe``): one metered record's
        tokens by modality, seconds, cost, or that it has no price."""
        self.observe_usage(
            model,
            {
                "text_in": usage.input_text - usage.cached_text,
                "audio_in": usage.input_audio - usage.cached_audio,
                "image_in": usage.input_image - usage.cached_image,
                "cached_in": usage.cached_text + usage.cached_audio + usage.cached_image,
                "text_out": usage.output_text,
                "audio_out": usage.output_audio,
            },
            cost,
            usage.unit,
        )
        if usage.seconds:
            self.usage_seconds.inc(float(usage.seconds))

    def observe_ledger(self, snapshot: Mapping[str, int]) -> None:
        """Fold the ledger writer's running totals (``LedgerWriter.snapshot()``) into the series."""
        self.ledger_queue_depth.set(snapshot.get("queue_depth", 0))
        self.ledger_journal_bytes.set(snapshot.get("journal_bytes", 0))
        counters = {fate: self.ledger_records.labels(fate) for fate in LEDGER_FATES}
        counters["aggregated"] = self.refusals_aggregated
        counters["pruned"] = self.ledger_pruned
        for name, counter in counters.items():
            total = snapshot.get(name, 0)
            delta = total - self._ledger_folded.get(name, 0)
            if delta > 0:
                self._ledger_folded[name] = total
                counter.inc(delta)

    def count_tasks(self) -> None:
        """Set ``rtrelay_event_loop_tasks`` from the running loop (none running: left as is)."""
        try:
            tasks = asyncio.all_tasks()
        except RuntimeError:
            return
        self.event_loop_tasks.set(len(tasks))

    def exposition(self) -> bytes:
        self.count_tasks()
        if self.multiprocess:
            registry = CollectorRegistry()
            prom_multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return generate_latest(registry)
        return generate_latest(self.registry)
