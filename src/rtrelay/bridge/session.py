"""The session core: every decision about a live session, without sockets or clocks.

The bridge (``pump.py``) feeds it what happens and acts on what it returns; nothing
here does I/O, reads a clock or knows aiohttp, so every rule is unit-tested directly
(tests/bridge/test_session.py), in the manner of ``websockets``' sans-I/O protocol.

Inputs and what they return:

- ``client_frame(data)``: ``None`` (forward it, the common case: no allocation) or a
  ``Refuse`` (do not forward; tell the client why) or an ``End``.
- ``server_frame(data)``: ``None`` or, after the frame is forwarded, ``Actions``
  (cancel responses upstream, tell the client) or an ``End``.
- ``tick(now, activity, sending_since)``: the watchdog's questions (idle, max session
  length, slow consumer, a budget spent elsewhere): ``None``, ``Actions`` or an ``End``.
- ``close_plan(end)``: the close-code table: what each side is sent when it ends.

Budgets (DESIGN.md "Usage and money"): once the key's spend reaches its budget, no
further response completes and is billed, whoever started it. A client
``response.create`` is refused and not forwarded; a response the provider starts itself
(server VAD, a tool-call continuation) is cancelled the moment its ``response.created``
arrives; responses in flight when the spend crosses the budget are cancelled the same
way. Their ``response.done`` (status ``cancelled``) is still metered as the provider
reports it, so the ledger matches the provider's bill. With ``close`` the session ends
with ``insufficient_quota`` + 4429 as soon as no response is in flight (at once if none
is, at most ``CANCEL_GRACE`` s after the cancels if the provider never confirms them);
with ``keep_open`` it stays open and every new response is refused or cancelled.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final, Literal

from rtrelay.bridge.protocols import REALTIME, Meter, WireProtocol
from rtrelay.bridge.taps import ClientTap, ServerTap
from rtrelay.config import Timeouts
from rtrelay.errors import (
    CloseCode,
    IdleTimeout,
    InsufficientQuota,
    MessageTooLarge,
    RelayError,
    SessionExpired,
    SlowConsumer,
    UpstreamDisconnected,
    UpstreamMessageTooLarge,
    is_sendable_close_code,
)

__all__ = [
    "CANCEL_GRACE",
    "Actions",
    "ClosePlan",
    "Closer",
    "End",
    "Meter",
    "Refuse",
    "Screen",
    "Session",
    "State",
]

CANCEL_GRACE: Final = 5.0
"""Seconds a ``close`` session waits for the provider to confirm cancelled responses."""

Closer = Literal["client", "upstream", "relay"]
Screen = Callable[[str, dict[str, Any]], RelayError | None]
"""A policy on checked client events other than ``response.create`` (a transcription
session's model): the error to refuse the event with, or ``None`` to let it through."""


class State(enum.Enum):
    OPEN = "open"
    CLOSING = "closing"
    """An ``End`` was decided; the bridge is closing both legs."""


@dataclass(frozen=True, slots=True)
class Refuse:
    """Do not forward the client's event; send this error event instead (the session goes on)."""

    error: RelayError
    client_event_id: str | None = None


@dataclass(frozen=True, slots=True)
class Actions:
    """Besides forwarding: cancel these responses upstream and tell the client why."""

    cancel: tuple[str, ...] = ()
    notify: RelayError | None = None


@dataclass(frozen=True, slots=True)
class End:
    """The session ends: who closed, with which code, or which table error."""

    closer: Closer
    code: int | None = None
    reason: str = ""
    dropped: bool = False
    """The side's connection died without a close frame."""
    error: RelayError | None = None


@dataclass(frozen=True, slots=True)
class ClosePlan:
    """What the bridge sends each side (``None``: that side gets nothing, it is gone)."""

    error_event: RelayError | None
    client: tuple[int, str] | None
    upstream: tuple[int, str] | None
    upstream_first: bool
    """Free the provider before explaining to a client that may be slow to read."""
    farewell: bytes | None = None
    """Sent to the provider before its close frame (GPT-Live's and translation's
    ``session.close``), so the provider ends the session, not just the socket."""


class Session:
    """One session's rules. Args: ``budget``: the key's budget in USD, ``None`` for none;
    ``screen``: a policy the other checked client events must pass (``None``: none)."""

    def __init__(
        self,
        *,
        meter: Meter,
        timeouts: Timeouts,
        budget: Decimal | None,
        on_spent: Literal["close", "keep_open"] = "close",
        started: float = 0.0,
        protocol: WireProtocol = REALTIME,
        screen: Screen | None = None,
    ) -> None:
        self.meter = meter
        self.screen = screen
        self.protocol = protocol
        self.timeouts = timeouts
        self.budget = budget
        self.on_spent = on_spent
        self.state = State.OPEN
        self.refused = 0
        """Client ``response.create`` events refused for a spent budget."""
        self.cancelled = 0
        """Responses the relay cancelled for a spent budget."""
        self.closing: RelayError | None = None
        self._started = started
        self._requested = 0  # response.create forwarded, response.created not yet seen
        self._active: set[str] = set()  # responses created and not done
        self._cancel_sent: set[str] = set()
        self._closing_at: float | None = None
        self._last_activity = -1
        self._last_change = started

    @property
    def in_flight(self) -> int:
        return self._requested + len(self._active)

    # -- frames ------------------------------------------------------------------------------
    def client_frame(self, data: bytes) -> Refuse | End | None:
        """Decide on a client frame before it is forwarded (``None``: forward it)."""
        tap = self.protocol.client_tap(data)
        return None if tap is None else self.client_tapped(tap)

    def client_tapped(self, tap: ClientTap | RelayError) -> Refuse | End | None:
        """``client_frame`` for a frame the tap picked out. The pump calls the tap itself
        and comes here only then: forwarding a frame unchanged costs one call, not two
        (``rtrelay bench --instructions`` saw the extra call as +0.6 % per frame)."""
        if isinstance(tap, RelayError):
            return Refuse(tap)
        kind, event = tap
        if kind != "response.create":
            if self.screen is not None and (error := self.screen(kind, event)) is not None:
                return Refuse(error, _event_id(event))
            self.meter.client_event(kind, event)
            return None
        if not self._budget_spent():
            if self.protocol.tracked_responses:  # its response.created will confirm it
                self._requested += 1
            return None
        self.refused += 1
        error = InsufficientQuota(
            "This key's budget is spent; the response was not created.", param="budget"
        )
        if self.on_spent == "close" and self.closing is None:
            self.closing = error
        if (end := self._ending()) is not None:
            return end
        return Refuse(error, _event_id(event))

    def server_frame(self, data: bytes) -> Actions | End | None:
        """Meter a provider frame; what to do once it is forwarded (``None``: nothing)."""
        tap = self.protocol.server_tap(data)
        return None if tap is None else self.server_tapped(tap)

    def server_tapped(self, tap: ServerTap) -> Actions | End | None:
        """``server_frame`` for a frame the tap picked out (see ``client_tapped``)."""
        kind, event = tap
        if kind == "response.created":
            return self._response_created(event)
        if kind == "response.done":
            self._response_done(event)
        self.meter.usage_event(kind, event)
        return self._enforce()

    # -- time --------------------------------------------------------------------------------
    def tick(self, now: float, activity: int, sending_since: float) -> Actions | End | None:
        """The watchdog's periodic questions.

        Args:
            now: the bridge's clock.
            activity: frames forwarded so far, both ways (a change means someone spoke).
            sending_since: when the send to the client now blocked started (0: none is).
        """
        t = self.timeouts
        if sending_since and t.slow_consumer is not None and now - sending_since > t.slow_consumer:
            return End("relay", error=SlowConsumer())
        if t.max_session is not None and now - self._started >= t.max_session:
            message = f"The session hit the relay's maximum duration of {t.max_session:g} s."
            return End("relay", error=SessionExpired(message))
        if activity != self._last_activity:
            self._last_activity, self._last_change = activity, now
        elif t.idle is not None and now - self._last_change >= t.idle and not sending_since:
            return End("relay", error=IdleTimeout())
        self.meter.clock(now - self._started)  # duration-priced sessions bill time here
        return self._budget_tick(now)

    def finish(self, now: float) -> None:
        """The session is over: the meter bills what is left of its measured time."""
        self.meter.finish(now - self._started)

    def _budget_tick(self, now: float) -> Actions | End | None:
        decision = self._enforce()
        if self.closing is None or isinstance(decision, End):
            return decision
        if self._closing_at is None:
            self._closing_at = now
        elif now - self._closing_at >= CANCEL_GRACE:
            return End("relay", error=self.closing)
        return decision

    # -- endings -----------------------------------------------------------------------------
    def client_gone(self, code: int | None, reason: str, *, dropped: bool) -> End:
        return End("client", code=code, reason=reason, dropped=dropped)

    def upstream_gone(self, code: int | None, reason: str, *, dropped: bool) -> End:
        if dropped:
            return End("upstream", dropped=True, error=UpstreamDisconnected())
        return End("upstream", code=code, reason=reason)

    def too_large(self, side: Literal["client", "upstream"]) -> End:
        if side == "client":
            return End("relay", code=CloseCode.MESSAGE_TOO_BIG, error=MessageTooLarge())
        return End("relay", error=UpstreamMessageTooLarge())

    def close_plan(self, end: End) -> ClosePlan:
        """The close-code table (DESIGN.md): what each side is sent when the session ends.

        - a table error: the client gets the ``error`` event and its close code and
          ``<type>.<code>`` reason; the provider 1001 "relay closed", first;
        - the client closed: its code and reason go upstream unchanged (1005 "no code"
          becomes 1000); a client whose TCP died makes it 1001 "client disconnected";
        - the provider closed: its code and reason reach the client unchanged.
        """
        self.state = State.CLOSING
        if end.error is not None:
            error = end.error
            return ClosePlan(
                error_event=error,
                client=(error.close_code, error.close_reason()),
                upstream=(CloseCode.GOING_AWAY, "relay closed"),
                upstream_first=True,
                # the relay ends it: close the provider session cleanly where the protocol can
                farewell=self.protocol.close_frame if end.closer == "relay" else None,
            )
        if end.closer == "client":
            if end.dropped:
                return ClosePlan(None, None, (CloseCode.GOING_AWAY, "client disconnected"), True)
            code = relayable(end.code)
            return ClosePlan(None, (code, end.reason), (code, end.reason), True)
        code = relayable(end.code)
        return ClosePlan(None, (code, end.reason), (code, ""), False)

    # -- budget ------------------------------------------------------------------------------
    def _ending(self) -> End | None:
        if self.closing is not None and self.in_flight <= 0:
            return End("relay", error=self.closing)
        return None

    def _budget_spent(self) -> bool:
        return self.budget is not None and self.meter.spent() >= self.budget

    def _response_created(self, event: dict[str, Any]) -> Actions | End | None:
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

    def _response_done(self, event: dict[str, Any]) -> None:
        response = event.get("response")
        rid = response.get("id") if isinstance(response, dict) else None
        if isinstance(rid, str) and rid in self._active:
            self._active.discard(rid)
            self._cancel_sent.discard(rid)
        elif self._requested:
            self._requested -= 1

    def _enforce(self, message: str | None = None) -> Actions | End | None:
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
        if (end := self._ending()) is not None:
            return end
        if not to_cancel:
            return None
        notify = InsufficientQuota(
            message or "This key's budget is spent; the relay cancelled the response.",
            param="budget",
        )
        return Actions(cancel=to_cancel, notify=notify)


def _event_id(event: dict[str, Any]) -> str | None:
    event_id = event.get("event_id")
    return event_id if isinstance(event_id, str) else None


def relayable(code: int | None) -> int:
    """A peer's close code as we may send it on (1005 "no code" becomes 1000)."""
    if code is None or not is_sendable_close_code(code):
        return CloseCode.NORMAL
    return code
