"""The voice protocols the bridge carries, each as the few things that differ between them.

One session engine serves them all (DESIGN.md "One session engine"): the same pumps,
session core and owner. What a protocol changes is which frames the taps pick out, how
its usage is metered, how its ``error`` event is shaped and what ends a provider session
cleanly. protocol.md §10 has the protocols; ``route/families.py`` which model speaks which.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final, Literal, Protocol

from rtrelay.bridge.duration_metering import LiveMeter, TranslationMeter
from rtrelay.bridge.metering import Billing, BillingArgs, Observe, RealtimeMeter, SessionUsage
from rtrelay.bridge.taps import (
    ClientTap,
    ServerTap,
    client_tap,
    live_client_tap,
    live_server_tap,
    server_tap,
    translation_client_tap,
    translation_server_tap,
)
from rtrelay.errors import InvalidEvent
from rtrelay.ledger.prices import PriceTable
from rtrelay.ledger.writer import LedgerSink, SpendBook

__all__ = ["LIVE", "REALTIME", "TRANSLATION", "Meter", "WireProtocol", "make_meter"]


class Meter(Protocol):
    """The per-protocol part of the session core: turns the few frames that carry usage
    (and, for duration-priced sessions, time) into ledger rows and spend."""

    @property
    def usage(self) -> SessionUsage:
        """The session's running totals (its log line, the admin API's live list)."""

    def client_event(self, kind: str, event: dict[str, Any]) -> None:
        """A checked client event about to be forwarded (e.g. ``session.update``)."""

    def usage_event(self, kind: str, event: dict[str, Any]) -> None:
        """Meter a usage event: the ledger row and the key's spend."""

    def spent(self) -> Decimal:
        """The key's spend as this process knows it (no I/O)."""

    def clock(self, elapsed: float) -> None:
        """About once a second, the seconds since the session opened upstream: a
        duration meter bills measured time here, in whole intervals."""

    def finish(self, elapsed: float) -> None:
        """Once, when the session ends: bill what is left."""


@dataclass(frozen=True, slots=True)
class WireProtocol:
    """One protocol's taps, clean ending and main unit (the edge picks it by route)."""

    name: Literal["realtime", "live", "translation"]
    client_tap: Callable[[bytes], ClientTap | InvalidEvent | None]
    server_tap: Callable[[bytes], ServerTap | None]
    close_frame: bytes | None
    """What ends the provider session cleanly before the relay closes it (``None``: the
    close frame alone)."""
    unit: Literal["tokens", "seconds"]
    """How the protocol's main usage is priced."""
    tracked_responses: bool = False
    """Whether the provider opens and ends every response with top-level
    ``response.created``/``response.done``, so the session core can count them in flight
    (Realtime). GPT-Live's delegated responses arrive wrapped in ``response.event``."""


_SESSION_CLOSE: Final = b'{"type":"session.close"}'

REALTIME: Final = WireProtocol(
    "realtime", client_tap, server_tap, None, "tokens", tracked_responses=True
)
"""``/v1/realtime``: tokens from ``response.done``; transcriptions in tokens or seconds."""
LIVE: Final = WireProtocol("live", live_client_tap, live_server_tap, _SESSION_CLOSE, "seconds")
"""``/v1/live/sessions``: cumulative seconds from ``session.usage.updated``, and the tokens
of delegated responses."""
TRANSLATION: Final = WireProtocol(
    "translation", translation_client_tap, translation_server_tap, _SESSION_CLOSE, "seconds"
)
"""``/v1/realtime/translations``: seconds of input audio, measured by the relay."""

_METERS: Final[dict[str, type[Billing]]] = {
    "realtime": RealtimeMeter,
    "live": LiveMeter,
    "translation": TranslationMeter,
}


def make_meter(
    protocol: WireProtocol,
    *,
    session_id: str,
    model: str,
    key_id: str | None,
    prices: PriceTable,
    writer: LedgerSink | None,
    spend: SpendBook | None,
    observe: Observe | None,
    webrtc: bool = False,
) -> Meter:
    """The meter of one session of ``protocol``.

    ``model`` prices the protocol's main usage: the session's model (``gpt-live-1``,
    ``gpt-realtime-translate``, a Realtime model). With ``writer``, ``spend`` and
    ``observe`` ``None`` the meter counts but writes no row and adds no spend. ``webrtc``:
    a GPT-Live session created by ``POST`` (metered on the relay's sideband), which OpenAI
    bills 15 s at least (``LiveMeter``).
    """
    args = BillingArgs(
        session_id=session_id,
        model=model,
        key_id=key_id,
        prices=prices,
        writer=writer,
        spend=spend,
        observe=observe,
    )
    if protocol.name == "live":
        return LiveMeter(webrtc=webrtc, **args)
    meter: Meter = _METERS[protocol.name](**args)
    return meter
