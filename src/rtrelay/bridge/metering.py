"""The per-session tap consumer: usage into the ledger, and the budget held mid-session.

It answers the bridge's questions (``Meter``) from memory only; records go to
the ``LedgerWriter`` queue, spend to the ``SpendBook``. Budget policy (DESIGN.md
"Usage and money"): once the key's spend reaches its budget, no further response
completes and is billed, whoever started it:

- a client ``response.create`` is refused with ``insufficient_quota`` and not
  forwarded;
- a response the provider starts itself (server VAD's ``create_response``, a
  tool-call continuation) is cancelled the moment its ``response.created``
  arrives: the relay sends ``response.cancel`` upstream and tells the client why.
  Its ``response.done`` (status ``cancelled``) is still metered as the provider
  reports it, so the ledger matches the provider's bill;
- responses in flight when the spend crosses the budget are cancelled the same way.

With ``close`` the session then ends with ``insufficient_quota`` + 4429 as soon as
no response is in flight (at once if none is, and at most ``CANCEL_GRACE`` seconds
after the cancels if the provider never confirms them). With ``keep_open`` the
session stays open, and every new response is refused or cancelled until the
budget grows. The watchdog calls ``tick`` so spend by other sessions and relays
(``SpendBook`` refreshes) is noticed without waiting for this session's next event.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final, Literal

from rtrelay.bridge.pump import Verdict
from rtrelay.errors import InsufficientQuota, RelayError
from rtrelay.ledger.prices import PriceTable, Usage
from rtrelay.ledger.records import ResponseRecord, TranscriptionRecord
from rtrelay.ledger.writer import LedgerWriter, SpendBook

__all__ = ["CANCEL_GRACE", "SessionMeter", "SessionUsage"]

CANCEL_GRACE: Final = 5.0
"""Seconds a ``close`` session waits for the provider to confirm cancelled responses."""

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
        self.transcription_model = "unknown"
        self.refused = 0
        """Client ``response.create`` events refused for a spent budget."""
        self.cancelled = 0
        """Responses the relay cancelled for a spent budget."""
        self.closing: RelayError | None = None
        self._requested = 0  # client response.create forwarded, response.created not yet seen
        self._active: set[str] = set()  # responses created and not done
        self._cancel_sent: set[str] = set()
        self._closing_at: float | None = None
        self._seen: dict[str, None] = {}  # response ids already metered (insertion-ordered)

    @property
    def in_flight(self) -> int:
        return self._requested + len(self._active)

    # -- client → upstream -------------------------------------------------
    def on_client_event(self, kind: str, event: dict[str, Any]) -> RelayError | None:
        """Refuse a ``response.create`` on a spent budget; note the transcription model."""
        if kind != "response.create":
            self._note_transcription_model(event)
            return None
        if self._budget_spent():
            self.refused += 1
            error = InsufficientQuota(
                "This key's budget is spent; the response was not created.", param="budget"
            )
            if self.on_spent == "close" and self.closing is None:
                self.closing = error
            return error
        self._requested += 1
        return None

    def ending(self) -> RelayError | None:
        """An error that should end the session now (closing, nothing in flight)."""
        if self.closing is not None and self.in_flight <= 0:
            return self.closing
        return None

    # -- upstream → client -------------------------------------------------
    def on_server_event(self, kind: str, event: dict[str, Any]) -> Verdict | None:
        """Meter a completion; cancel what a spent budget may not pay for; say when to end."""
        if kind == "response.created":
            return self._response_created(event)
        if kind == "response.done":
            self._response_done(event)
        else:
            self._transcription_done(event)
        return self._enforce()

    def tick(self, now: float) -> Verdict | None:
        """The watchdog's periodic check: spend elsewhere, cancels never confirmed."""
        verdict = self._enforce()
        if self.closing is None or (verdict is not None and verdict.end is not None):
            return verdict
        if self._closing_at is None:
            self._closing_at = now
        elif now - self._closing_at >= CANCEL_GRACE:
            return Verdict(end=self.closing)
        return verdict

    def _response_created(self, event: dict[str, Any]) -> Verdict | None:
        response = event.get("response")
        rid = response.get("id") if isinstance(response, dict) else None
        if self._requested:
            self._requested -= 1
        if not isinstance(rid, str):
            return None
        self._active.add(rid)
        if not self._budget_spent():
            return None
        return self._enforce(
            "This key's budget is spent; the relay cancelled a response the provider started."
        )

    def _enforce(self, message: str | None = None) -> Verdict | None:
        """What a spent budget requires now: cancel the active responses, maybe end."""
        if not self._budget_spent():
            return None
        if self.on_spent == "close" and self.closing is None:
            self.closing = InsufficientQuota(
                "This key's budget is spent; the session was closed.", param="budget"
            )
        to_cancel = tuple(rid for rid in self._active if rid not in self._cancel_sent)
        self._cancel_sent.update(to_cancel)
        self.cancelled += len(to_cancel)
        end = self.ending()
        if not to_cancel and end is None:
            return None
        notify = None
        if to_cancel and end is None:
            notify = InsufficientQuota(
                message or "This key's budget is spent; the relay cancelled the response.",
                param="budget",
            )
        return Verdict(cancel=to_cancel, notify=notify, end=end)

    def _budget_spent(self) -> bool:
        if self.budget_usd is None or self.key_id is None or self.spend is None:
            return False
        return self.spend.current(self.key_id) >= self.budget_usd

    def _response_done(self, event: dict[str, Any]) -> None:
        response = event.get("response")
        if not isinstance(response, dict):
            return
        response_id = response.get("id")
        if isinstance(response_id, str):
            if response_id in self._active:
                self._active.discard(response_id)
                self._cancel_sent.discard(response_id)
            elif self._requested:
                self._requested -= 1
            if response_id in self._seen:
                return  # the provider repeated itself: bill once
            self._seen[response_id] = None
            if len(self._seen) > _MAX_SEEN:
                del self._seen[next(iter(self._seen))]
        elif self._requested:
            self._requested -= 1
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
