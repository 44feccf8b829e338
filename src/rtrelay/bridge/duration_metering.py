"""Meters for the protocols billed by the second: GPT-Live and realtime translation.

Like ``metering.py`` these are sans-I/O: events and elapsed times in, ledger records
and spend out (``Billing._settle``). Every row's ``ref`` is derived from what was
measured, so the ledger's unique key ``(session, kind, ref)`` makes a replayed event or
journal line a no-op, and spend is added as rows are billed, so the session core's
budget check (on each usage event and on its timer) sees it.

**GPT-Live** reports its own usage: ``session.usage.updated`` carries the session's
*cumulative* audio seconds (``openai/types/live/session_usage.py``: "Do not sum this
value across usage events"), and ``session.closed`` the final figure. The meter bills
the increase over the highest value seen, in whole milliseconds, as a row
``live:<cumulative ms>``: a repeated or older (out-of-order) report bills nothing.
Delegated work is billed from ``response.event`` frames that wrap a finished Responses
response with ``usage``: tokens, at the price of the model that response names
(``response.model``, what OpenAI bills), else of the session's delegation model
(``delegation.responses.model`` from ``session.start``, ``session.started`` or
``session.update``), once per response id; a completed Decision (``decision.event``) the
same way, at the model it names, once per Live event id. A session that was started but ended before
its first usage report (they come every few seconds) is billed on ``finish`` by the
relay's own measure, the seconds it was open upstream (``live:unreported``): OpenAI
bills a Live session's whole open time, silence included (its "voice latency and cost"
guide), so a short session is never free. A WebRTC session costs at least
``LIVE_WEBRTC_START_S`` (OpenAI's initialization charge, credited against reported
seconds, so only a session that never reports pays it apart).

**Translation** reports no usage. OpenAI bills it per minute of audio translated; the
model consumes the client's input stream as contiguous model time ("If a client stops
sending audio and later resumes, model time treats the resumed audio as contiguous",
``realtime_translation_input_audio_buffer_append_event.py``), so the meter measures the
input audio the client appends: decoded bytes of 24 kHz mono PCM16, 48,000 per second
(the only WebSocket format the API accepts). Wall-clock time would bill a paused client
for audio never sent; appended audio is what the provider processes. Measured audio is
billed every ``INTERVAL_S`` of session time (``clock``), as soon as that much audio is
waiting (a client sending faster than real time), and the rest on ``finish``, as a row
``tr:<cumulative ms billed>``; a budget is overrun by at most one interval's audio.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any, Final, Unpack

from rtrelay.bridge.metering import _MAX_SEEN, Billing, BillingArgs
from rtrelay.bridge.taps import AUDIO_BYTES, TRANSLATION_APPEND
from rtrelay.ledger.prices import LIVE_WEBRTC_START_S, Usage
from rtrelay.ledger.records import DurationRecord, ResponseRecord

__all__ = [
    "BYTES_PER_SECOND",
    "INTERVAL_S",
    "SILENT_GRACE_S",
    "LiveMeter",
    "TranslationMeter",
    "delegation_model",
]

BYTES_PER_SECOND: Final = 48_000
"""24 kHz mono PCM16: the translation API's input audio."""
_BYTES_PER_MS: Final = BYTES_PER_SECOND // 1000
INTERVAL_S: Final = 5.0
"""Translation audio is billed every this many seconds of session time (Live reports
usage "every few seconds"; the same order of overrun past a budget)."""
_MS: Final = Decimal(1000)
SILENT_GRACE_S: Final = 30.0
"""How far behind its own clock the relay bills a GPT-Live session the provider stopped
reporting: two of OpenAI's ~15 s usage intervals (protocol.md §10)."""


def delegation_model(session: Any) -> str | None:
    """``session.delegation.responses.model`` of a Live session config, if it names one."""
    if not isinstance(session, dict):
        return None
    delegation = session.get("delegation")
    if not isinstance(delegation, dict):
        return None
    responses = delegation.get("responses")
    model = responses.get("model") if isinstance(responses, dict) else None
    return model if isinstance(model, str) and model else None


def _milliseconds(value: Any) -> int | None:
    """Seconds as reported (a JSON number) in whole milliseconds; ``None`` if not one."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not math.isfinite(value) or value < 0:
        return None
    return round(value * 1000)


class LiveMeter(Billing):
    """Usage of one GPT-Live session: cumulative audio seconds and delegated responses."""

    def __init__(self, *, webrtc: bool = False, **args: Unpack[BillingArgs]) -> None:
        super().__init__(**args)
        self.webrtc = webrtc
        """Created by ``POST /v1/live/sessions``: started on creation, 15 s at least."""
        self.delegation_model: str | None = None
        self.started = False
        self.reports = 0
        """``session.usage.updated`` events seen (billed or not)."""
        self.billed_ms = 0
        """The highest cumulative audio time billed."""
        self._seen: dict[str, None] = {}  # delegated response ids already billed

    def client_event(self, kind: str, event: dict[str, Any]) -> None:
        """``session.start``/``session.update``: note the delegation model."""
        self._note_delegation(event.get("session"))

    def usage_event(self, kind: str, event: dict[str, Any]) -> None:
        if kind in ("session.usage.updated", "session.closed"):
            self._usage_updated(event)
        elif kind == "response.event":
            self._delegated(event)
        elif kind == "decision.event":
            self._decided(event)
        elif kind == "session.started":
            self.started = True
            self._note_delegation(event.get("session"))

    def clock(self, elapsed: float) -> None:
        """Bill a started session by the relay's own clock, ``SILENT_GRACE_S`` behind it,
        where the provider has reported less: its reports (every ~15 s) keep ahead of that
        clock, so this bills only a session whose reports stopped or never came, and a
        budget still cuts it (DESIGN.md: "on a timer for duration-priced sessions")."""
        if not (self.started or self.webrtc):
            return
        ms = _milliseconds(elapsed - SILENT_GRACE_S)
        if ms is not None and ms > self.billed_ms:
            self._bill_up_to(ms)

    def finish(self, elapsed: float) -> None:
        """Bill the open time of a started session that never reported usage, and a WebRTC
        session's initialization charge where its reported time fell short of it."""
        if self.reports:
            ms = 0  # the provider's own figures stand (session.closed carries the last)
        else:
            ms = (_milliseconds(elapsed) or 0) if self.started or self.webrtc else 0
        if self.webrtc:
            ms = max(ms, LIVE_WEBRTC_START_S * 1000)
        if ms > self.billed_ms:
            self._bill_up_to(ms, None if self.billed_ms else "live:unreported")

    def _usage_updated(self, event: dict[str, Any]) -> None:
        usage = event.get("usage")
        ms = _milliseconds(usage.get("seconds")) if isinstance(usage, dict) else None
        if ms is None:
            return
        self.started = True
        self.reports += 1
        if ms <= self.billed_ms:
            return  # repeated or out of order: already billed
        self._bill_up_to(ms)

    def _bill_up_to(self, ms: int, ref: str | None = None) -> None:
        """Bill cumulative audio time from what is billed up to ``ms``, as row ``live:<ms>``."""
        delta, self.billed_ms = ms - self.billed_ms, ms
        self._bill_ms(ref or f"live:{ms}", delta)

    def _bill_ms(self, ref: str, ms: int) -> None:
        """A row of ``ms`` more audio, priced as the session's total (``billed_ms``, which
        counts it already) less what was billed before it."""
        before = self.billed_ms - ms
        record = DurationRecord.priced_by(
            self.prices,
            session_id=self.session_id,
            ref=ref,
            model=self.model,
            seconds=Decimal(ms) / _MS,
            billed_before=Decimal(before) / _MS,
            at=self.now(),
        )
        self._settle(record, count_response=False, store=True)

    def _delegated(self, event: dict[str, Any]) -> None:
        inner = event.get("event")
        response = inner.get("response") if isinstance(inner, dict) else None
        if not isinstance(response, dict) or not isinstance(response.get("usage"), dict):
            return
        response_id = response.get("id")
        if isinstance(response_id, str):
            if response_id in self._seen:
                return
            self._remember(response_id)
        named = response.get("model")
        model = named if isinstance(named, str) and named else self.delegation_model
        record = ResponseRecord.priced_by(
            self.prices,
            session_id=self.session_id,
            response_id=response_id if isinstance(response_id, str) else "",
            model=model or "unknown",
            status=str(response.get("status", "unknown")),
            usage=Usage.from_responses(response["usage"]),
            at=self.now(),
        )
        self._settle(record, count_response=True, store=isinstance(response_id, str))

    def _decided(self, event: dict[str, Any]) -> None:
        """A completed Decision: its tokens at the model it names, once per event id (a
        Decision has no id of its own; the Live event that carries it has)."""
        inner = event.get("event")
        decision = inner.get("decision") if isinstance(inner, dict) else None
        event_id = event.get("event_id")
        if not isinstance(decision, dict) or not isinstance(decision.get("usage"), dict):
            return
        ref = f"decision:{event_id}" if isinstance(event_id, str) else None
        if ref is not None:
            if ref in self._seen:
                return
            self._remember(ref)
        named = decision.get("model")
        record = ResponseRecord.priced_by(
            self.prices,
            session_id=self.session_id,
            response_id=ref or "",
            model=named if isinstance(named, str) and named else "unknown",
            status="completed",
            usage=Usage.from_responses(decision["usage"]),
            at=self.now(),
        )
        self._settle(record, count_response=True, store=ref is not None)

    def _remember(self, ref: str) -> None:
        self._seen[ref] = None
        if len(self._seen) > _MAX_SEEN:
            del self._seen[next(iter(self._seen))]

    def _note_delegation(self, session: Any) -> None:
        if (model := delegation_model(session)) is not None:
            self.delegation_model = model


class TranslationMeter(Billing):
    """Usage of one translation session: the input audio the client appends, in seconds."""

    def __init__(self, *, interval: float = INTERVAL_S, **args: Unpack[BillingArgs]) -> None:
        super().__init__(**args)
        self.interval = interval
        self.audio_bytes = 0
        """Decoded input audio appended so far."""
        self.billed_ms = 0
        """Input audio billed so far."""
        self._unbilled = 0  # bytes measured and not yet billed
        self._period = 0  # the last whole interval of session time billed
        self._finished = False

    def client_event(self, kind: str, event: dict[str, Any]) -> None:
        """An input audio append (``taps.translation_client_tap``): measure it."""
        if kind == TRANSLATION_APPEND:
            size = event.get(AUDIO_BYTES)
            if isinstance(size, int) and size > 0:
                self.audio_bytes += size
                self._unbilled += size
                if self._unbilled >= self.interval * BYTES_PER_SECOND:
                    self._bill()

    def usage_event(self, kind: str, event: dict[str, Any]) -> None:
        """Translation has no usage event."""

    def clock(self, elapsed: float) -> None:
        """Bill the audio measured so far once per whole interval of session time."""
        period = int(elapsed // self.interval) if elapsed > 0 else 0
        if period > self._period:
            self._period = period
            self._bill()

    def finish(self, elapsed: float) -> None:
        """Bill the rest (a part millisecond of audio is not billed)."""
        self._bill()
        self._finished = True

    def _bill(self) -> None:
        if self._finished:
            return
        ms, self._unbilled = divmod(self._unbilled, _BYTES_PER_MS)
        if not ms:
            return
        self.billed_ms += ms
        record = DurationRecord.priced_by(
            self.prices,
            session_id=self.session_id,
            ref=f"tr:{self.billed_ms}",
            model=self.model,
            seconds=Decimal(ms) / _MS,
            billed_before=Decimal(self.billed_ms - ms) / _MS,
            at=self.now(),
        )
        self._settle(record, count_response=False, store=True)
