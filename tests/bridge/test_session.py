"""The session core's decisions, without sockets, sleeps or clocks (DESIGN.md's tables)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal, cast

import orjson
import pytest

from rtrelay.bridge.metering import RealtimeMeter
from rtrelay.bridge.protocols import LIVE, make_meter
from rtrelay.bridge.session import CANCEL_GRACE, Actions, ClosePlan, End, Refuse, Session
from rtrelay.config import Timeouts
from rtrelay.errors import (
    IdleTimeout,
    InsufficientQuota,
    InvalidEvent,
    MessageTooLarge,
    RelayShuttingDown,
    SessionExpired,
    SlowConsumer,
    UpstreamDisconnected,
    UpstreamMessageTooLarge,
)
from rtrelay.ledger.prices import PriceTable
from rtrelay.ledger.store import Store
from rtrelay.ledger.writer import SpendBook

KEY = "key_1"


def core(
    *,
    budget: str | None = "0.01",
    on_spent: Literal["close", "keep_open"] = "close",
    **timeouts: float | None,
) -> Session:
    meter = RealtimeMeter(
        session_id="sess_1",
        model="gpt-realtime",
        key_id=KEY,
        prices=PriceTable(),
        writer=None,
        spend=SpendBook(cast(Store, None)),  # current()/add() never touch the store
    )
    limits: dict[str, float | None] = {"idle": None, "max_session": None, "slow_consumer": 10.0}
    limits.update(timeouts)
    return Session(
        meter=meter,
        timeouts=Timeouts(**limits),  # type: ignore[arg-type]
        budget=None if budget is None else Decimal(budget),
        on_spent=on_spent,
    )


def frame(event: dict[str, Any]) -> bytes:
    return orjson.dumps(event)


def created(rid: str) -> bytes:
    return frame({"type": "response.created", "response": {"id": rid, "status": "in_progress"}})


def done(rid: str, tokens: int = 1000, status: str = "completed") -> bytes:
    usage = {
        "input_tokens": tokens,
        "output_tokens": tokens,
        "input_token_details": {"text_tokens": tokens, "audio_tokens": 0},
        "output_token_details": {"text_tokens": 0, "audio_tokens": tokens},
    }
    response = {"id": rid, "status": status, "usage": usage}
    return frame({"type": "response.done", "response": response})


CREATE = frame({"type": "response.create", "event_id": "evt_1"})


def spend_all(s: Session) -> None:
    meter = cast(RealtimeMeter, s.meter)
    assert meter.spend is not None and s.budget is not None
    meter.spend.add(KEY, s.budget)


# -- forwarding ------------------------------------------------------------------------------


def test_audio_and_ordinary_events_are_forwarded_without_a_decision() -> None:
    s = core()
    assert s.client_frame(b'{"type":"input_audio_buffer.append","audio":"QUFB"}') is None
    assert s.client_frame(frame({"type": "conversation.item.create", "item": {}})) is None
    assert s.server_frame(b'{"type":"response.output_audio.delta","delta":"QUFB"}') is None


def test_a_frame_that_is_not_one_event_is_refused_not_forwarded() -> None:
    decision = core().client_frame(b'{"type":"a","type":"response.create"}')
    assert isinstance(decision, Refuse)
    assert isinstance(decision.error, InvalidEvent)


# -- budget ----------------------------------------------------------------------------------


def test_a_response_within_budget_is_left_alone() -> None:
    s = core()
    assert s.client_frame(CREATE) is None
    assert s.server_frame(created("r1")) is None
    assert s.in_flight == 1
    assert s.server_frame(done("r1", tokens=1)) is None
    assert s.in_flight == 0


def test_close_ends_the_session_when_a_response_crosses_the_budget() -> None:
    s = core(budget="0.000001")
    s.client_frame(CREATE)
    s.server_frame(created("r1"))
    decision = s.server_frame(done("r1"))
    assert isinstance(decision, End)
    assert isinstance(decision.error, InsufficientQuota)


def test_keep_open_stays_open_when_a_response_crosses_the_budget() -> None:
    s = core(budget="0.000001", on_spent="keep_open")
    s.server_frame(created("r1"))
    assert s.server_frame(done("r1")) is None


@pytest.mark.parametrize("policy", ["close", "keep_open"])
def test_a_response_the_provider_starts_on_a_spent_budget_is_cancelled(policy: str) -> None:
    s = core(on_spent=policy)  # type: ignore[arg-type]
    spend_all(s)
    decision = s.server_frame(created("r_vad"))  # server VAD: no response.create was sent
    assert isinstance(decision, Actions)
    assert decision.cancel == ("r_vad",)
    assert isinstance(decision.notify, InsufficientQuota)
    after = s.server_frame(done("r_vad", status="cancelled"))
    if policy == "close":
        assert isinstance(after, End) and isinstance(after.error, InsufficientQuota)
    else:
        assert after is None
    assert s.cancelled == 1


def test_a_cancel_is_sent_once_per_response() -> None:
    s = core(on_spent="keep_open")
    s.server_frame(created("r1"))
    spend_all(s)
    first = s.tick(0.0, 1, 0.0)
    assert isinstance(first, Actions) and first.cancel == ("r1",)
    assert s.tick(1.0, 1, 0.0) is None


def test_spend_elsewhere_ends_an_idle_session_at_the_next_tick() -> None:
    s = core()
    assert s.tick(0.0, 0, 0.0) is None
    spend_all(s)  # another session of the key crossed the budget
    decision = s.tick(1.0, 0, 0.0)
    assert isinstance(decision, End) and isinstance(decision.error, InsufficientQuota)


def test_close_gives_up_on_a_provider_that_never_confirms_a_cancel() -> None:
    s = core()
    s.server_frame(created("r1"))
    spend_all(s)
    first = s.tick(10.0, 1, 0.0)
    assert isinstance(first, Actions) and first.cancel == ("r1",)
    assert s.tick(10.0 + CANCEL_GRACE / 2, 1, 0.0) is None
    late = s.tick(10.0 + CANCEL_GRACE, 1, 0.0)
    assert isinstance(late, End) and isinstance(late.error, InsufficientQuota)


def test_response_create_on_a_spent_budget_is_refused_with_its_event_id() -> None:
    s = core(on_spent="keep_open")
    spend_all(s)
    decision = s.client_frame(CREATE)
    assert isinstance(decision, Refuse)
    assert isinstance(decision.error, InsufficientQuota)
    assert decision.client_event_id == "evt_1"
    assert s.refused == 1


def test_response_create_on_a_spent_budget_with_close_ends_at_once() -> None:
    s = core()
    spend_all(s)
    decision = s.client_frame(CREATE)
    assert isinstance(decision, End) and isinstance(decision.error, InsufficientQuota)


def test_a_repeated_response_done_is_billed_once() -> None:
    s = core(budget=None)
    meter = cast(RealtimeMeter, s.meter)
    s.server_frame(created("r1"))
    s.server_frame(done("r1"))
    s.server_frame(done("r1"))
    assert meter.usage.responses == 1
    assert meter.spent() == meter.usage.cost_usd > 0


def test_no_budget_means_no_enforcement() -> None:
    s = core(budget=None)
    cast(RealtimeMeter, s.meter).spend.add(KEY, Decimal(1000))  # type: ignore[union-attr]
    assert s.client_frame(CREATE) is None
    assert s.server_frame(created("r1")) is None
    assert s.tick(0.0, 0, 0.0) is None


# -- the watchdog ----------------------------------------------------------------------------


def test_nobody_speaking_for_the_idle_window_ends_with_idle_timeout() -> None:
    s = core(idle=30.0)
    assert s.tick(1.0, 5, 0.0) is None
    assert s.tick(30.0, 5, 0.0) is None  # 29 s of silence
    decision = s.tick(31.0, 5, 0.0)
    assert isinstance(decision, End) and isinstance(decision.error, IdleTimeout)


def test_speaking_resets_the_idle_window() -> None:
    s = core(idle=30.0)
    s.tick(1.0, 5, 0.0)
    assert s.tick(30.0, 6, 0.0) is None
    assert s.tick(59.0, 6, 0.0) is None


def test_a_blocked_send_is_not_idleness() -> None:
    s = core(idle=30.0, slow_consumer=None)
    s.tick(1.0, 5, 0.0)
    assert s.tick(100.0, 5, 2.0) is None


def test_the_maximum_length_ends_with_session_expired() -> None:
    s = core(max_session=60.0)
    assert s.tick(59.9, 1, 0.0) is None
    decision = s.tick(60.0, 2, 0.0)
    assert isinstance(decision, End) and isinstance(decision.error, SessionExpired)


def test_a_send_blocked_past_the_limit_is_a_slow_consumer() -> None:
    s = core(slow_consumer=10.0)
    assert s.tick(15.0, 1, 5.5) is None
    decision = s.tick(15.6, 1, 5.5)
    assert isinstance(decision, End) and isinstance(decision.error, SlowConsumer)


# -- the close-code table --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "client"),
    [
        (InsufficientQuota(), (4429, "insufficient_quota.insufficient_quota")),
        (MessageTooLarge(), (1009, "invalid_request_error.message_too_large")),
        (UpstreamMessageTooLarge(), (1009, "server_error.message_too_large")),
        (SlowConsumer(), (1008, "server_error.slow_consumer")),
        (IdleTimeout(), (1000, "invalid_request_error.idle_timeout")),
        (SessionExpired(), (1001, "invalid_request_error.session_expired")),
        (RelayShuttingDown(), (1001, "server_error.relay_shutting_down")),
        (UpstreamDisconnected(), (1011, "server_error.upstream_disconnected")),
    ],
    ids=lambda v: getattr(v, "code", None),
)
def test_a_table_error_is_explained_then_closed_and_frees_the_provider_first(
    error: Any, client: tuple[int, str]
) -> None:
    plan = core().close_plan(End("relay", error=error))
    assert plan == ClosePlan(
        error_event=error, client=client, upstream=(1001, "relay closed"), upstream_first=True
    )


@pytest.mark.parametrize(("code", "sent"), [(4000, 4000), (1001, 1001), (3000, 3000), (None, 1000)])
def test_the_providers_close_reaches_the_client_unchanged(code: int | None, sent: int) -> None:
    plan = core().close_plan(core().upstream_gone(code, "bye", dropped=False))
    assert plan.client == (sent, "bye")
    assert plan.error_event is None
    assert not plan.upstream_first


@pytest.mark.parametrize(("code", "sent"), [(4321, 4321), (1000, 1000), (1005, 1000), (None, 1000)])
def test_the_clients_close_goes_upstream_unchanged(code: int | None, sent: int) -> None:
    plan = core().close_plan(core().client_gone(code, "client says bye", dropped=False))
    assert plan.upstream == (sent, "client says bye")
    assert plan.error_event is None


def test_a_client_whose_connection_died_makes_the_provider_leg_1001() -> None:
    plan = core().close_plan(core().client_gone(None, "", dropped=True))
    assert plan == ClosePlan(None, None, (1001, "client disconnected"), True)


def test_a_provider_whose_connection_died_is_upstream_disconnected_1011() -> None:
    end = core().upstream_gone(None, "", dropped=True)
    assert isinstance(end.error, UpstreamDisconnected)
    assert core().close_plan(end).client == (1011, "server_error.upstream_disconnected")


def test_who_sent_the_oversized_frame_decides_the_error_type() -> None:
    ours, theirs = core().too_large("client").error, core().too_large("upstream").error
    assert type(ours) is MessageTooLarge
    assert type(theirs) is UpstreamMessageTooLarge


# -- GPT-Live --------------------------------------------------------------------------------


def live_core() -> Session:
    meter = make_meter(
        LIVE,
        session_id="sess_1",
        model="gpt-live-1",
        key_id=KEY,
        prices=PriceTable(),
        writer=None,
        spend=SpendBook(cast(Store, None)),
        observe=None,
    )
    limits = Timeouts(idle=None, max_session=None, slow_consumer=10.0)
    return Session(meter=meter, timeouts=limits, budget=Decimal("0.01"), protocol=LIVE)


def test_a_live_session_spent_after_a_delegated_response_ends_at_once() -> None:
    """Live wraps delegated responses in response.event: no response.created will confirm a
    response.create, so it is not counted in flight and the budget close does not wait."""
    s = live_core()
    assert s.client_frame(frame({"type": "response.create", "event_id": "evt_1"})) is None
    assert s.in_flight == 0
    usage = frame({"type": "session.usage.updated", "usage": {"seconds": 60.0}})  # $0.05
    end = s.server_frame(usage)
    assert isinstance(end, End) and end.error is not None
    assert end.error.code == "insufficient_quota"
    plan = s.close_plan(end)
    assert plan.client == (4429, "insufficient_quota.insufficient_quota")
    assert plan.farewell == b'{"type":"session.close"}'  # the provider session ends cleanly
