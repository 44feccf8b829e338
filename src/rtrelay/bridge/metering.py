"""The Realtime protocol's meter: usage from ``response.done`` and transcriptions.

The session core (``session.py``) decides what a spent budget requires; this module
only turns the provider's completion events into ledger records and spend, from
memory: records go to the ledger's ``LedgerSink``, spend to the ``SpendBook``. A
repeated ``response.done`` (same response id) is billed once.

``Billing`` is what every protocol's meter shares (``duration_metering.py`` has GPT-Live's
and translation's): one place settles a record into the session's totals, the key's
spend, the ledger and the metrics, and makes an unpriced model loud (a rate-limited
WARNING; the metrics count it through ``observe``), never a silent $0.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Final, NotRequired, TypedDict, Unpack

from rtrelay.ledger.prices import PriceTable, Usage
from rtrelay.ledger.records import ResponseRecord, TranscriptionRecord, UsageRecord
from rtrelay.ledger.writer import LedgerSink, SpendBook
from rtrelay.log import bridge_log

__all__ = [
    "UNPRICED_WARNING_EVERY",
    "Billing",
    "BillingArgs",
    "Observe",
    "RealtimeMeter",
    "SessionUsage",
    "warn_unpriced",
]

_MAX_SEEN: Final = 4096
"""Response ids remembered per session to bill a repeated ``response.done`` once."""
UNPRICED_WARNING_EVERY: Final = timedelta(minutes=1)
"""At most one WARNING per model and unit in this long (the metric counts every row)."""

Observe = Callable[[str, Usage, Decimal | None], None]
"""The metrics hook: ``(model, usage, cost)`` for every metered record (cost ``None``:
unpriced). ``Metrics.observe_metered`` is one."""

_warned: dict[tuple[str, str], datetime] = {}  # (model, unit) → last WARNING, process-wide


class SessionUsage:
    """Running totals for one session (for its log line and metrics)."""

    __slots__ = ("cost_usd", "responses", "seconds", "tokens_in", "tokens_out", "unpriced")

    def __init__(self) -> None:
        self.responses = 0
        self.tokens_in = 0
        self.tokens_out = 0
        self.seconds = Decimal(0)
        self.cost_usd = Decimal(0)
        self.unpriced = 0


def warn_unpriced(model: str, usage: Usage, at: datetime) -> None:
    """A WARNING that ``model`` has no price for ``usage``, once a minute per model and unit."""
    unit = usage.unit
    last = _warned.get((model, unit))
    if last is not None and at - last < UNPRICED_WARNING_EVERY:
        return
    _warned[(model, unit)] = at
    bridge_log.warning(
        "usage of a model without a price: metered, not billed; add it under [prices]",
        extra={"event": "unpriced_usage", "model": model, "unit": unit},
    )


class BillingArgs(TypedDict):
    """What every meter is made with (``writer``/``spend``/``observe`` ``None``: it counts
    but writes no row and adds no spend)."""

    session_id: str
    model: str
    key_id: str | None
    prices: PriceTable
    writer: LedgerSink | None
    spend: SpendBook | None
    now: NotRequired[Callable[[], datetime]]
    observe: NotRequired[Observe | None]


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Billing:
    """What every meter shares: where records, spend and metrics go, and the totals."""

    def __init__(self, **args: Unpack[BillingArgs]) -> None:
        self.session_id = args["session_id"]
        self.model = args["model"]
        self.key_id = args["key_id"]
        self.prices = args["prices"]
        self.writer = args["writer"]
        self.spend = args["spend"]
        self.now = args.get("now", _utc_now)
        self.observe = args.get("observe")
        self.usage = SessionUsage()

    def spent(self) -> Decimal:
        if self.key_id is None or self.spend is None:
            return Decimal(0)
        return self.spend.current(self.key_id)

    def client_event(self, kind: str, event: dict[str, Any]) -> None:
        """A checked client event: a meter that learns nothing from it ignores it."""

    def usage_event(self, kind: str, event: dict[str, Any]) -> None:
        """A provider event the protocol's tap picked out: overridden by every meter."""

    def clock(self, elapsed: float) -> None:
        """Tokens are billed from events, not time: nothing to do."""

    def finish(self, elapsed: float) -> None:
        """Every usage event was billed as it came: nothing to do."""

    def _settle(self, record: UsageRecord, *, count_response: bool, store: bool) -> None:
        """Count a metered record in this session, the key's spend, the ledger and metrics."""
        u, usage, cost = self.usage, record.usage, record.cost_usd
        if count_response:
            u.responses += 1
        u.tokens_in += usage.input_tokens
        u.tokens_out += usage.output_tokens
        u.seconds += usage.seconds
        if cost is None:
            u.unpriced += 1
            warn_unpriced(record.model, usage, record.at)
        else:
            u.cost_usd += cost
            if self.key_id is not None and self.spend is not None:
                self.spend.add(self.key_id, cost)
        if store and self.writer is not None:
            self.writer.submit(record)
        if self.observe is not None:
            self.observe(record.model, usage, cost)


class RealtimeMeter(Billing):
    """Usage of one Realtime session (tokens), its ledger rows and the key's spend.

    A transcription session (``intent=transcription``) is metered here too: its
    completions carry tokens or, for duration-priced models (``usage.type ==
    "duration"``), seconds priced per minute of the session's transcription model.
    """

    def __init__(self, **args: Unpack[BillingArgs]) -> None:
        super().__init__(**args)
        self.transcription_model = "unknown"
        self._seen: dict[str, None] = {}  # response ids already metered (insertion-ordered)

    def client_event(self, kind: str, event: dict[str, Any]) -> None:
        """``session.update``: note the transcription model, which prices transcriptions."""
        self._note_transcription_model(event)

    def usage_event(self, kind: str, event: dict[str, Any]) -> None:
        """Meter ``response.done`` or a transcription completion."""
        if kind == "response.done":
            self._response_done(event)
        elif kind == "conversation.item.input_audio_transcription.completed":
            self._transcription_done(event)

    def _response_done(self, event: dict[str, Any]) -> None:
        response = event.get("response")
        if not isinstance(response, dict):
            return
        response_id = response.get("id")
        if isinstance(response_id, str):
            if response_id in self._seen:
                return  # the provider repeated itself: bill once
            self._seen[response_id] = None
            if len(self._seen) > _MAX_SEEN:
                del self._seen[next(iter(self._seen))]
        record = ResponseRecord.priced_by(
            self.prices,
            session_id=self.session_id,
            response_id=response_id if isinstance(response_id, str) else "",
            model=self.model,
            status=str(response.get("status", "unknown")),
            usage=Usage.from_response_done(response),
            at=self.now(),
        )
        # A response.done without an id still counts against the budget; it cannot be stored.
        self._settle(record, count_response=True, store=isinstance(response_id, str))

    def _transcription_done(self, event: dict[str, Any]) -> None:
        raw = event.get("usage")
        item_id = event.get("item_id")
        if not isinstance(raw, dict) or not isinstance(item_id, str):
            return
        record = TranscriptionRecord.priced_by(
            self.prices,
            session_id=self.session_id,
            item_id=item_id,
            model=self.transcription_model,
            usage=Usage.from_transcription(raw),
            at=self.now(),
        )
        self._settle(record, count_response=False, store=True)

    def _note_transcription_model(self, event: dict[str, Any]) -> None:
        session = event.get("session")
        if not isinstance(session, dict):
            return
        audio = session.get("audio")
        transcription = None
        if isinstance(audio, dict) and isinstance(audio.get("input"), dict):
            transcription = audio["input"].get("transcription")  # GA
        if transcription is None:
            transcription = session.get("input_audio_transcription")  # beta
        if isinstance(transcription, dict) and isinstance(transcription.get("model"), str):
            self.transcription_model = transcription["model"]
