"""Budgets by time: the session core with the GPT-Live and translation meters ends a session
on the usage report or the tick that spends the budget, never a whole interval later.

Sans-I/O: frames and clock values in, the session core's decisions out.
"""

from __future__ import annotations

import base64
from decimal import Decimal
from typing import Any, cast

import orjson
from hypothesis import given
from hypothesis import strategies as st

from rtrelay.bridge.protocols import LIVE, TRANSLATION, WireProtocol, make_meter
from rtrelay.bridge.session import End, Session
from rtrelay.config import Timeouts
from rtrelay.errors import InsufficientQuota
from rtrelay.ledger.prices import PriceTable
from rtrelay.ledger.store import Store
from rtrelay.ledger.writer import SpendBook

KEY = "key_1"
PER_SECOND = Decimal("0.05") / 60  # gpt-live-1
ROUNDING = Decimal("1e-6")
"""Each row's cost is rounded to 1e-10 USD (600 rows: 3e-8 at most), so budgets here sit
just below a whole second's worth."""


def core(protocol: WireProtocol, model: str, budget: Decimal) -> Session:
    meter = make_meter(
        protocol,
        session_id="sess_1",
        model=model,
        key_id=KEY,
        prices=PriceTable(),
        writer=None,
        spend=SpendBook(cast(Store, None)),  # current()/add() never touch the store
        observe=None,
    )
    return Session(
        meter=meter,
        timeouts=Timeouts(idle=None, max_session=None, slow_consumer=10.0),
        budget=budget,
        protocol=protocol,
    )


def server(session: Session, event: dict[str, Any]) -> Any:
    tap = session.protocol.server_tap(orjson.dumps(event))
    return None if tap is None else session.server_tapped(tap)


def usage(seconds: float) -> dict[str, Any]:
    return {"type": "session.usage.updated", "event_id": "e", "usage": {"seconds": seconds}}


def quota_end(decision: Any) -> bool:
    return isinstance(decision, End) and isinstance(decision.error, InsufficientQuota)


@given(st.integers(min_value=1, max_value=600), st.integers(min_value=1, max_value=10))
def test_live_ends_on_the_first_report_past_the_budget(budget_s: int, every_s: int) -> None:
    """Reports every ``every_s`` seconds: the session ends at the first one at or past the
    budget, so at most one report interval is billed beyond it."""
    session = core(LIVE, "gpt-live-1", budget_s * PER_SECOND - ROUNDING)
    seconds = 0
    while True:
        seconds += every_s
        decision = server(session, usage(float(seconds)))
        if decision is not None:
            break
    assert quota_end(decision)
    assert budget_s <= seconds < budget_s + every_s


def test_a_live_budget_spent_elsewhere_ends_a_session_on_the_timer() -> None:
    """A session that reports nothing is still cut: the timer sees the key's spend."""
    session = core(LIVE, "gpt-live-1", Decimal("0.01"))
    assert session.tick(1.0, 1, 0) is None
    cast(Any, session.meter).spend.add(KEY, Decimal("0.01"))  # another session spent it
    assert quota_end(session.tick(2.0, 2, 0))


def append(seconds: float) -> bytes:
    pcm = bytes(round(seconds * 48_000))
    audio = base64.b64encode(pcm).decode()
    return orjson.dumps({"type": "session.input_audio_buffer.append", "audio": audio})


@given(st.integers(min_value=1, max_value=120))
def test_translation_ends_on_the_tick_after_the_measured_audio_spends_the_budget(
    budget_s: int,
) -> None:
    """Real-time audio, 200 ms appends, a tick a second: the tick that bills the audio past
    the budget ends the session, at most one 5 s interval past it."""
    budget = budget_s * Decimal("0.034") / 60 - ROUNDING
    session = core(TRANSLATION, "gpt-realtime-translate", budget)
    frame = append(0.2)
    elapsed, ended = 0, None
    while ended is None:
        for _ in range(5):
            tap = session.protocol.client_tap(frame)
            assert tap is not None and not isinstance(tap, Exception)
            assert session.client_tapped(tap) is None  # appends are forwarded
        elapsed += 1
        decision = session.tick(float(elapsed), elapsed, 0)
        ended = decision if quota_end(decision) else None
    assert budget_s <= elapsed <= budget_s + 5
