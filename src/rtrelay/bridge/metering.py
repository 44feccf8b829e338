"""The Realtime protocol's meter: usage from ``response.done`` and transcriptions.

The session core (``session.py``) decides what a spent budget requires; this module
only turns the provider's completion events into ledger records and spend, from
memory: records go to the ledger's ``LedgerSink``, spend to the ``SpendBook``. A
repeated ``response.done`` (same response id) is billed once.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final

from rtrelay.ledger.prices import PriceTable, Usage
from rtrelay.ledger.records import ResponseRecord, TranscriptionRecord
from rtrelay.ledger.writer import LedgerSink, SpendBook

__all__ = ["RealtimeMeter", "SessionUsage"]

_MAX_SEEN: Final = 4096
"""Response ids remembered per session to bill a repeated ``response.done`` once."""


class SessionUsage:
    """Running totals for one session (for its log line and metrics)."""

    __slots__ = ("cost_usd", "responses", "tokens_in", "tokens_out", "unpriced")

    def __init__(self) -> None:
        self.responses = 0
        self.tokens_in = 0
        self.tokens_out = 0
        self.cost_usd = Decimal(0)
        self.unpriced = 0


class RealtimeMeter:
    """Usage of one Realtime session (tokens), its ledger rows and the key's spend."""

    def __init__(
        self,
        *,
        session_id: str,
        model: str,
        key_id: str | None,
        prices: PriceTable,
        writer: LedgerSink | None,
        spend: SpendBook | None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        observe: Callable[[str, Usage, Decimal | None], None] | None = None,
    ) -> None:
        self.session_id = session_id
        self.model = model
        self.key_id = key_id
        self.prices = prices
        self.writer = writer
        self.spend = spend
        self.now = now
        self.observe = observe
        self.usage = SessionUsage()
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

    def spent(self) -> Decimal:
        if self.key_id is None or self.spend is None:
            return Decimal(0)
        return self.spend.current(self.key_id)

    def clock(self, elapsed: float) -> None:
        """Tokens are billed from events, not time: nothing to do."""

    def finish(self, elapsed: float) -> None:
        """Every usage event was billed as it came: nothing to do."""

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

    def _settle(
        self,
        record: ResponseRecord | TranscriptionRecord,
        *,
        count_response: bool,
        store: bool,
    ) -> None:
        """Count a metered record in this session, the key's spend, the ledger and metrics."""
        u, usage, cost = self.usage, record.usage, record.cost_usd
        if count_response:
            u.responses += 1
        u.tokens_in += usage.input_tokens
        u.tokens_out += usage.output_tokens
        if cost is None:
            u.unpriced += 1
        else:
            u.cost_usd += cost
            if self.key_id is not None and self.spend is not None:
                self.spend.add(self.key_id, cost)
        if store and self.writer is not None:
            self.writer.submit(record)
        if self.observe is not None:
            self.observe(record.model, usage, cost)

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
