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
from typing import Any, Literal, Protocol

from rtrelay.bridge.metering import RealtimeMeter, SessionUsage
from rtrelay.bridge.taps import ClientTap, ServerTap, client_tap, server_tap
from rtrelay.errors import InvalidEvent
from rtrelay.ledger.prices import PriceTable, Usage
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
    name: Literal["realtime", "live", "translation"]
    client_tap: Callable[[bytes], ClientTap | InvalidEvent | None]
    server_tap: Callable[[bytes], ServerTap | None]
    close_frame: bytes | None
    """What ends the provider session cleanly before the relay closes it (``None``: the
    close frame alone)."""
    unit: Literal["tokens", "seconds"]
    """How the protocol's main usage is priced."""


REALTIME = WireProtocol("realtime", client_tap, server_tap, None, "tokens")
# Skeleton: the Live and translation taps and meters replace these (issue 14).
LIVE = WireProtocol("live", client_tap, server_tap, b'{"type":"session.close"}', "seconds")
TRANSLATION = WireProtocol(
    "translation", client_tap, server_tap, b'{"type":"session.close"}', "seconds"
)


def make_meter(
    protocol: WireProtocol,
    *,
    session_id: str,
    model: str,
    key_id: str | None,
    prices: PriceTable,
    writer: LedgerSink | None,
    spend: SpendBook | None,
    observe: Callable[[str, Usage, Decimal | None], None] | None,
) -> Meter:
    """The meter of one session of ``protocol``."""
    return RealtimeMeter(
        session_id=session_id,
        model=model,
        key_id=key_id,
        prices=prices,
        writer=writer,
        spend=spend,
        observe=observe,
    )
