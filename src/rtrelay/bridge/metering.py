"""The per-session tap consumer: budgets on ``response.create``, usage on completions.

It answers the bridge's two questions (``Meter``) from memory only; records go
to the ``LedgerWriter`` queue, spend to the ``SpendBook``. Budget policy
(DESIGN.md "Usage and money"): once the key's spend reaches its budget, a
``response.create`` is refused with ``insufficient_quota`` and not forwarded;
with ``close`` the session then ends with 4429 as soon as no response is in flight.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

from rtrelay.errors import InsufficientQuota, RelayError
from rtrelay.ledger.prices import PriceTable, Usage
from rtrelay.ledger.records import ResponseRecord, TranscriptionRecord
from rtrelay.ledger.writer import LedgerWriter, SpendBook

__all__ = ["SessionMeter", "SessionUsage"]


class SessionUsage:
    """Running totals for one session (for its log line and metrics)."""

    __slots__ = ("cost_usd", "responses", "tokens_in", "tokens_out", "unpriced")

    def __init__(self) -> None:
        self.responses = 0
        self.tokens_in = 0
        self.tokens_out = 0
        self.cost_usd = Decimal(0)
        self.unpriced = 0


class SessionMeter:
    def __init__(
        self,
        *,
        session_id: str,
        model: str,
        key_id: str | None,
        budget_usd: Decimal | None,
        prices: PriceTable,
        writer: LedgerWriter | None,
        spend: SpendBook | None,
        on_spent: Literal["close", "keep_open"] = "close",
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        observe: Callable[[str, Usage, Decimal | None], None] | None = None,
    ) -> None:
        self.session_id = session_id
        self.model = model
        self.key_id = key_id
        self.budget_usd = budget_usd
        self.prices = prices
        self.writer = writer
        self.spend = spend
        self.on_spent = on_spent
        self.now = now
        self.observe = observe
        self.usage = SessionUsage()
        self.in_flight = 0
        self.closing: RelayError | None = None
        self.transcription_model = "unknown"
        self.refused = 0

    # -- client → upstream -------------------------------------------------
    def on_client_event(self, kind: str, event: dict[str, Any]) -> RelayError | None:
        if kind == "session.update":
            self._note_transcription_model(event)
            return None
        # response.create
        if self._budget_spent():
            self.refused += 1
            error = InsufficientQuota(
                "This key's budget is spent; the response was not created.", param="budget"
            )
            if self.on_spent == "close":
                self.closing = error
            return error
        self.in_flight += 1
        return None

    def ending(self) -> RelayError | None:
        """An error that should end the session now (budget spent, nothing in flight)."""
        if self.closing is not None and self.in_flight <= 0:
            return self.closing
        return None

    # -- upstream → client -------------------------------------------------
    def on_server_event(self, kind: str, event: dict[str, Any]) -> RelayError | None:
        if kind == "response.done":
            self._response_done(event)
            self.in_flight = max(0, self.in_flight - 1)
            return self.ending()
        self._transcription_done(event)
        return None

    def _budget_spent(self) -> bool:
        if self.budget_usd is None or self.key_id is None or self.spend is None:
            return False
        return self.spend.current(self.key_id) >= self.budget_usd

    def _response_done(self, event: dict[str, Any]) -> None:
        response = event.get("response")
        if not isinstance(response, dict):
            return
        response_id = response.get("id")
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
