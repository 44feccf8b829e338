"""The session meter's budget decisions, without sockets (DESIGN.md "Usage and money")."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal, cast

from rtrelay.bridge.metering import CANCEL_GRACE, SessionMeter
from rtrelay.bridge.pump import Verdict
from rtrelay.errors import InsufficientQuota
from rtrelay.ledger.prices import PriceTable
from rtrelay.ledger.store import Store
from rtrelay.ledger.writer import SpendBook

KEY = "key_1"


def meter(
    *, budget: str | None = "0.01", on_spent: Literal["close", "keep_open"] = "close"
) -> SessionMeter:
    return SessionMeter(
        session_id="sess_1",
        model="gpt-realtime",
        key_id=KEY,
        budget_usd=None if budget is None else Decimal(budget),
        prices=PriceTable(),
        writer=None,
        spend=SpendBook(cast(Store, None)),  # current()/add() never touch the store
        on_spent=on_spent,
    )


def created(rid: str) -> dict[str, Any]:
    return {"type": "response.created", "response": {"id": rid, "status": "in_progress"}}


def done(rid: str, tokens: int = 1000, status: str = "completed") -> dict[str, Any]:
    usage = {
        "input_tokens": tokens,
        "output_tokens": tokens,
        "input_token_details": {"text_tokens": tokens, "audio_tokens": 0},
        "output_token_details": {"text_tokens": 0, "audio_tokens": tokens},
    }
    return {"type": "response.done", "response": {"id": rid, "status": status, "usage": usage}}


def spend_all(m: SessionMeter) -> None:
    assert m.spend is not None and m.budget_usd is not None
    m.spend.add(KEY, m.budget_usd)


def test_a_response_within_budget_is_left_alone() -> None:
    m = meter()
    assert m.on_client_event("response.create", {}) is None
    assert m.on_server_event("response.created", created("r1")) is None
    assert m.in_flight == 1
    assert m.on_server_event("response.done", done("r1", tokens=1)) is None
    assert m.in_flight == 0
    assert m.usage.responses == 1


def test_close_ends_the_session_when_a_response_crosses_the_budget() -> None:
    m = meter(budget="0.000001")
    m.on_client_event("response.create", {})
    m.on_server_event("response.created", created("r1"))
    verdict = m.on_server_event("response.done", done("r1"))
    assert verdict is not None and isinstance(verdict.end, InsufficientQuota)
    assert verdict.cancel == ()


def test_keep_open_stays_open_when_a_response_crosses_the_budget() -> None:
    m = meter(budget="0.000001", on_spent="keep_open")
    m.on_server_event("response.created", created("r1"))
    assert m.on_server_event("response.done", done("r1")) is None


def test_a_response_the_provider_starts_on_a_spent_budget_is_cancelled() -> None:
    for policy in ("close", "keep_open"):
        m = meter(on_spent=policy)  # type: ignore[arg-type]
        spend_all(m)
        verdict = m.on_server_event("response.created", created("r_vad"))
        assert verdict is not None
        assert verdict.cancel == ("r_vad",)
        assert isinstance(verdict.notify, InsufficientQuota)
        assert verdict.end is None  # wait for the provider's cancelled response.done
        after = m.on_server_event("response.done", done("r_vad", status="cancelled"))
        if policy == "close":
            assert after is not None and isinstance(after.end, InsufficientQuota)
        else:
            assert after is None
        assert m.cancelled == 1


def test_a_cancel_is_sent_once_per_response() -> None:
    m = meter(on_spent="keep_open")
    m.on_server_event("response.created", created("r1"))
    spend_all(m)
    first = m.tick(0.0)
    assert first is not None and first.cancel == ("r1",)
    assert m.tick(1.0) is None


def test_spend_elsewhere_is_noticed_by_the_tick() -> None:
    m = meter()
    assert m.tick(0.0) is None
    spend_all(m)  # another session of the key crossed the budget
    verdict = m.tick(1.0)
    assert verdict == Verdict(end=m.closing)
    assert isinstance(m.closing, InsufficientQuota)


def test_close_gives_up_on_a_provider_that_never_confirms_a_cancel() -> None:
    m = meter()
    m.on_server_event("response.created", created("r1"))
    spend_all(m)
    verdict = m.tick(10.0)
    assert verdict is not None and verdict.cancel == ("r1",) and verdict.end is None
    assert m.tick(10.0 + CANCEL_GRACE / 2) is None
    late = m.tick(10.0 + CANCEL_GRACE)
    assert late is not None and isinstance(late.end, InsufficientQuota)


def test_response_create_on_a_spent_budget_is_refused_and_counted() -> None:
    m = meter(on_spent="keep_open")
    spend_all(m)
    error = m.on_client_event("response.create", {"type": "response.create"})
    assert isinstance(error, InsufficientQuota)
    assert m.refused == 1
    assert m.ending() is None
    closing = meter()
    spend_all(closing)
    closing.on_client_event("response.create", {})
    assert isinstance(closing.ending(), InsufficientQuota)


def test_a_repeated_response_done_is_billed_once() -> None:
    m = meter(budget=None)
    m.on_server_event("response.created", created("r1"))
    m.on_server_event("response.done", done("r1"))
    m.on_server_event("response.done", done("r1"))
    assert m.usage.responses == 1
    assert m.spend is not None and m.spend.current(KEY) == m.usage.cost_usd > 0


def test_no_budget_means_no_enforcement() -> None:
    m = meter(budget=None)
    m.spend.add(KEY, Decimal(1000))  # type: ignore[union-attr]
    assert m.on_client_event("response.create", {}) is None
    assert m.on_server_event("response.created", created("r1")) is None
    assert m.tick(0.0) is None
