"""The values that go into the ledger and come out of its reports.

Plain frozen dataclasses: the relay builds them from what it saw, the store writes
them, reports read them back. Times are timezone-aware (UTC), money is ``Decimal``.

Text that a client or a provider chose (a model name, an ``Origin`` header, a
response id) is clipped here, when the record is made, by ``clip``: one place,
so no column holds more than ``TEXT_LIMITS`` allows, whatever arrived (issue 11:
an anonymous client sending 8 KB model names cost 22 KB of ledger per request).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Final, Literal, overload

from rtrelay.ledger.prices import PriceTable, Usage

__all__ = [
    "TEXT_LIMITS",
    "CallRecord",
    "ChannelAttempt",
    "DurationRecord",
    "Grouping",
    "Record",
    "Refusal",
    "RefusalCount",
    "ResponseRecord",
    "SessionEnd",
    "SessionRow",
    "SessionStart",
    "SessionStatus",
    "TranscriptionRecord",
    "Transport",
    "UsageRecord",
    "UsageRow",
    "clip",
    "minute_of",
]

SessionStatus = Literal["live", "completed", "failed", "interrupted"]
Grouping = Literal["key", "model", "day"]
Transport = Literal["websocket", "webrtc"]

TEXT_LIMITS: Final = {
    "model": 128,
    "origin": 256,
    "id": 128,  # request, response and item ids: their columns are VARCHAR(128)
    "status": 32,
    "code": 64,
    "prefix": 16,
    "detail": 256,
}
"""Characters kept of each kind of outside text; the rest is cut and marked ``…``."""


@overload
def clip(text: str, kind: str) -> str: ...
@overload
def clip(text: None, kind: str) -> None: ...
@overload
def clip(text: str | None, kind: str) -> str | None: ...
def clip(text: str | None, kind: str) -> str | None:
    """``text`` cut to ``TEXT_LIMITS[kind]`` characters, with NUL replaced.

    PostgreSQL refuses NUL in text; a record it refuses would be retried and
    journaled for nothing, so it never gets that far.
    """
    if text is None:
        return None
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    limit = TEXT_LIMITS[kind]
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _clip_fields(record: object, **kinds: str) -> None:
    """Clip a frozen record's text fields in place (from ``__post_init__``)."""
    for name, kind in kinds.items():
        value = getattr(record, name)
        clipped = clip(value, kind)
        if clipped is not value:
            object.__setattr__(record, name, clipped)


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelAttempt:
    """One upstream channel tried for a session, and how it went."""

    channel: str
    outcome: str
    """``ok``, ``skipped:open`` (circuit open), ``timeout``, ``connect`` or ``refused:<status>``."""
    detail: str | None = None

    def __post_init__(self) -> None:
        _clip_fields(self, channel="model", outcome="code", detail="detail")


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionStart:
    """A client was admitted and upstream answered: the 101 is about to be sent."""

    session_id: str
    key_id: str | None
    """``None`` when auth is off (``auth.mode = "none"``)."""
    key_prefix: str | None
    model: str
    channel: str
    started_at: datetime
    shape: Literal["ga", "beta"] = "ga"
    origin: str | None = None
    request_id: str | None = None
    node: str | None = None
    """Which relay process holds the session; ``mark_interrupted(node=…)`` scopes by it."""
    channels_tried: tuple[ChannelAttempt, ...] = ()
    transport: Transport = "websocket"
    """How the client's media flows: through the relay (``websocket``) or device ↔ provider
    (``webrtc``: the relay meters the call on its own sideband)."""

    def __post_init__(self) -> None:
        _clip_fields(
            self,
            session_id="id",
            model="model",
            channel="model",
            origin="origin",
            request_id="id",
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionEnd:
    """How a session ended. ``status`` is ``failed`` when rtrelay ended it on an error."""

    session_id: str
    ended_at: datetime
    status: Literal["completed", "failed"]
    duration_s: float
    """Measured by the relay with a monotonic clock (``ended_at - started_at`` would take
    a wall clock's steps with it)."""
    frames_from_client: int = 0
    bytes_from_client: int = 0
    frames_from_upstream: int = 0
    bytes_from_upstream: int = 0
    client_close_code: int | None = None
    upstream_close_code: int | None = None
    error_code: str | None = None
    channels_tried: tuple[ChannelAttempt, ...] | None = None
    """``None`` keeps what ``open_sessions`` stored."""

    def __post_init__(self) -> None:
        _clip_fields(self, session_id="id", error_code="code")


@dataclass(frozen=True, slots=True, kw_only=True)
class ResponseRecord:
    """One ``response.done``: written once per (session, response id)."""

    session_id: str
    response_id: str
    model: str
    status: str
    usage: Usage
    cost_usd: Decimal | None
    """``None`` when the model has no price: metered in tokens, flagged unpriced."""
    at: datetime

    def __post_init__(self) -> None:
        _clip_fields(self, session_id="id", response_id="id", model="model", status="status")

    @property
    def priced(self) -> bool:
        return self.cost_usd is not None

    @classmethod
    def priced_by(
        cls,
        prices: PriceTable,
        *,
        session_id: str,
        response_id: str,
        model: str,
        status: str,
        usage: Usage,
        at: datetime,
    ) -> ResponseRecord:
        return cls(
            session_id=session_id,
            response_id=response_id,
            model=model,
            status=status,
            usage=usage,
            cost_usd=prices.cost(model, usage),
            at=at,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class TranscriptionRecord:
    """One input-audio transcription: written once per (session, item id)."""

    session_id: str
    item_id: str
    model: str
    """The ASR model (``whisper-1``, ``gpt-4o-transcribe``…), priced on its own."""
    usage: Usage
    cost_usd: Decimal | None
    at: datetime

    def __post_init__(self) -> None:
        _clip_fields(self, session_id="id", item_id="id", model="model")

    @property
    def priced(self) -> bool:
        return self.cost_usd is not None

    @classmethod
    def priced_by(
        cls,
        prices: PriceTable,
        *,
        session_id: str,
        item_id: str,
        model: str,
        usage: Usage,
        at: datetime,
    ) -> TranscriptionRecord:
        return cls(
            session_id=session_id,
            item_id=item_id,
            model=model,
            usage=usage,
            cost_usd=prices.cost(model, usage),
            at=at,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class DurationRecord:
    """Seconds of a duration-priced session (GPT-Live, translation): once per (session, ref).

    ``ref`` is derived from what was measured, never from when it was written, so a
    replayed event or journal line names the same row: Live uses the cumulative
    seconds reported (``live:<ms>``), translation the interval number (``tr:<n>``).
    """

    session_id: str
    ref: str
    model: str
    usage: Usage
    """``Usage.of_seconds``: the seconds this row adds, not a running total."""
    cost_usd: Decimal | None
    at: datetime

    def __post_init__(self) -> None:
        _clip_fields(self, session_id="id", ref="id", model="model")

    @property
    def priced(self) -> bool:
        return self.cost_usd is not None

    @classmethod
    def priced_by(
        cls,
        prices: PriceTable,
        *,
        session_id: str,
        ref: str,
        model: str,
        seconds: Decimal,
        at: datetime,
        billed_before: Decimal = Decimal(0),
    ) -> DurationRecord:
        """``seconds`` more after ``billed_before`` seconds of the session were billed.

        The cost is the price of the session's total after this row less the price of
        the total before it, so a session's rows add up to its total's price rounded
        once, however many rows it takes (each rounded alone, 720 rows of 5 s would
        drift by up to 3.6e-8 USD).
        """
        after = prices.cost(model, Usage.of_seconds(billed_before + seconds))
        before = prices.cost(model, Usage.of_seconds(billed_before)) if billed_before else 0
        return cls(
            session_id=session_id,
            ref=ref,
            model=model,
            usage=Usage.of_seconds(seconds),
            cost_usd=None if after is None or before is None else after - before,
            at=at,
        )


UsageRecord = ResponseRecord | TranscriptionRecord | DurationRecord
"""What ``LedgerStore.record_usage`` writes: one billable row each."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Refusal:
    """A handshake rtrelay refused: a refused attempt, never a $0 session."""

    request_id: str
    error_code: str
    http_status: int | None
    """``None`` when the refusal was sent as an event after accepting (event style)."""
    at: datetime
    key_id: str | None = None
    key_prefix: str | None = None
    model: str | None = None
    origin: str | None = None
    close_code: int | None = None
    channels_tried: tuple[ChannelAttempt, ...] = ()

    def __post_init__(self) -> None:
        _clip_fields(
            self,
            request_id="id",
            error_code="code",
            key_prefix="prefix",
            model="model",
            origin="origin",
        )


def minute_of(at: datetime) -> datetime:
    """The UTC minute ``at`` falls in: what a ``RefusalCount`` is kept per."""
    return at.astimezone(UTC).replace(second=0, microsecond=0)


@dataclass(frozen=True, slots=True, kw_only=True)
class RefusalCount:
    """Refusals of one code and key prefix in one UTC minute, past the rate kept row by row.

    A flood of refused handshakes costs one counter row per minute instead of a row
    each (see ``LedgerWriter``); counts add up when the same minute is written twice.
    """

    minute: datetime
    """``minute_of`` the refusals counted."""
    error_code: str
    key_prefix: str | None
    key_id: str | None
    count: int


@dataclass(frozen=True, slots=True, kw_only=True)
class UsageRow:
    """Usage summed over one group of a report (a key, a model or a UTC day)."""

    group: str | None
    """Key id, model or ``YYYY-MM-DD``; ``None`` for sessions without a key."""
    name: str | None
    """The key's name when grouped by key."""
    input_text: int
    input_audio: int
    input_image: int
    cached_text: int
    cached_audio: int
    cached_image: int
    output_text: int
    output_audio: int
    seconds: Decimal
    """Seconds of audio billed by duration (Live, translation, ASR priced per minute)."""
    cost_usd: Decimal
    """Sum over priced rows only; see ``unpriced``."""
    responses: int
    transcriptions: int
    unpriced: int
    """Rows metered (in tokens or seconds) but without a price (unknown model)."""
    sessions: int
    durations: int = 0
    """Rows of GPT-Live or translation seconds (``DurationRecord``)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionRow:
    """A session as listed by ``ReportStore.sessions()``, with its usage summed."""

    session_id: str
    key_id: str | None
    key_prefix: str | None
    model: str
    channel: str
    status: SessionStatus
    started_at: datetime
    ended_at: datetime | None
    duration_s: float | None
    shape: str
    origin: str | None
    request_id: str | None
    node: str | None
    frames_from_client: int | None
    bytes_from_client: int | None
    frames_from_upstream: int | None
    bytes_from_upstream: int | None
    client_close_code: int | None
    upstream_close_code: int | None
    error_code: str | None
    channels_tried: tuple[ChannelAttempt, ...]
    responses: int
    cost_usd: Decimal
    unpriced: int
    transport: Transport = "websocket"
    seconds: Decimal = Decimal(0)
    """Seconds of audio billed by duration (GPT-Live, translation, ASR priced per minute)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CallRecord:
    """A WebRTC call in the registry: the relay's id, the provider's, and who owns it."""

    call_id: str
    provider_call_id: str
    channel: str
    model: str
    """The public model the call was admitted for (an app sideband is admitted for it)."""
    key_id: str | None
    session_id: str
    node: str | None
    created_at: datetime
    pid: int | None = None
    """The process on ``node`` that meters the call: a restart hangs up only the calls of
    processes that are gone (``serve --workers N`` shares one node name)."""
    state: Literal["live", "ended"] = "live"
    ended_at: datetime | None = None


Record = SessionStart | SessionEnd | ResponseRecord | TranscriptionRecord | DurationRecord | Refusal
"""What the relay hands the ledger (``LedgerSink.submit``), and what its journal holds.

The one list of record kinds: the journal reads its kinds from it and the writer's
dispatch table must cover it (a test checks both). Adding a kind takes a class here, a
row in ``writer.KINDS`` and the ``LedgerStore`` method that writes it.
"""
