"""GPT-Live and translation meters: every second billed once, whatever order events come in.

Sans-I/O: events and elapsed times in, ledger records and spend out, no sockets.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Final, cast

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rtrelay.bridge.duration_metering import (
    BYTES_PER_SECOND,
    SILENT_GRACE_S,
    LiveMeter,
    TranslationMeter,
)
from rtrelay.bridge.metering import Billing
from rtrelay.bridge.protocols import LIVE, REALTIME, TRANSLATION, make_meter
from rtrelay.bridge.taps import AUDIO_BYTES, TRANSLATION_APPEND
from rtrelay.ledger.prices import PriceTable, Usage
from rtrelay.ledger.records import DurationRecord, Record, ResponseRecord, TranscriptionRecord
from rtrelay.ledger.store import Store
from rtrelay.ledger.writer import SpendBook
from rtrelay.observe.metrics import Metrics

T0 = datetime(2027, 3, 1, tzinfo=UTC)
KEY = "key_1"


class Sink:
    """A ``LedgerSink`` that keeps what it is given, keyed as the ledger's unique index is."""

    def __init__(self) -> None:
        self.records: list[Record] = []

    def submit(self, record: Record) -> None:
        self.records.append(record)

    def durations(self) -> list[DurationRecord]:
        return [r for r in self.records if isinstance(r, DurationRecord)]

    def rows(self) -> dict[tuple[str, str], Record]:
        """What the usage table ends with: a repeated (kind, ref) is a no-op there."""
        out: dict[tuple[str, str], Record] = {}
        for r in self.records:
            if isinstance(r, DurationRecord):
                out.setdefault(("duration", r.ref), r)
            elif isinstance(r, ResponseRecord):
                out.setdefault(("response", r.response_id), r)
        return out


def meter(kind: str = "live", model: str = "gpt-live-1", **kw: Any) -> tuple[Billing, Sink]:
    sink = Sink()
    protocol = {"live": LIVE, "translation": TRANSLATION, "realtime": REALTIME}[kind]
    m = make_meter(
        protocol,
        session_id="sess_1",
        model=model,
        key_id=KEY,
        prices=PriceTable(),
        writer=sink,
        spend=SpendBook(cast(Store, None)),  # current()/add() never touch the store
        observe=None,
        **kw,
    )
    cast(Billing, m).now = lambda: T0
    return cast(Billing, m), sink


def usage(seconds: Any) -> dict[str, Any]:
    return {"type": "session.usage.updated", "event_id": "e", "usage": {"seconds": seconds}}


def live_seconds(sink: Sink) -> Decimal:
    return sum(
        (r.usage.seconds for r in sink.rows().values() if isinstance(r, DurationRecord)),
        Decimal(0),
    )


# -- GPT-Live ------------------------------------------------------------------------------


def test_live_bills_the_increase_of_the_cumulative_seconds_at_the_per_minute_price() -> None:
    m, sink = meter()
    for seconds in (2.5, 6.0, 60.0):
        m.usage_event("session.usage.updated", usage(seconds))
    refs = [r.ref for r in sink.durations()]
    assert refs == ["live:2500", "live:6000", "live:60000"]
    assert [r.usage.seconds for r in sink.durations()] == [Decimal("2.5"), Decimal("3.5"), 54]
    assert all(r.usage.unit == "seconds" for r in sink.records if isinstance(r, DurationRecord))
    assert m.usage.seconds == 60
    assert m.usage.cost_usd == Decimal("0.05")  # gpt-live-1: $0.05 a minute, per second
    assert m.spent() == Decimal("0.05")


def test_live_repeated_and_older_reports_bill_nothing() -> None:
    m, sink = meter()
    for seconds in (5.0, 5.0, 3.0, 10.0, 7.5, 10.0):
        m.usage_event("session.usage.updated", usage(seconds))
    assert [r.ref for r in sink.durations()] == [
        "live:5000",
        "live:10000",
    ]
    assert m.usage.seconds == 10


@pytest.mark.parametrize("bad", [None, "12", True, -1.0, float("nan"), float("inf"), [3]])
def test_live_ignores_a_report_that_is_not_a_number_of_seconds(bad: Any) -> None:
    m, sink = meter()
    m.usage_event("session.usage.updated", usage(bad))
    m.usage_event("session.usage.updated", {"type": "session.usage.updated"})
    assert sink.records == []


@given(st.lists(st.integers(min_value=0, max_value=3_600_000), max_size=30), st.randoms())
def test_live_bills_the_highest_report_once_in_any_order(values: list[int], rnd: Any) -> None:
    """Delivered twice over, shuffled: the ledger holds exactly the highest value."""
    m, sink = meter()
    events = [usage(v / 1000) for v in values] * 2
    rnd.shuffle(events)
    for event in events:
        m.usage_event("session.usage.updated", event)
    assert live_seconds(sink) == Decimal(max(values, default=0)) / 1000
    assert len(sink.rows()) == len(sink.records)  # no row was written twice
    m.finish(1e6)  # the provider reported (or the session never started): nothing more
    assert live_seconds(sink) == Decimal(max(values, default=0)) / 1000


def test_live_bills_the_open_time_of_a_started_session_that_never_reported() -> None:
    m, sink = meter()
    m.usage_event("session.started", {"type": "session.started", "session": {}})
    m.finish(4.2)
    assert [(r.ref, r.usage.seconds) for r in sink.records] == [  # type: ignore[union-attr]
        ("live:unreported", Decimal("4.2"))
    ]


def test_live_finish_adds_nothing_after_a_report_or_before_a_start() -> None:
    m, sink = meter()
    m.usage_event("session.usage.updated", usage(3.0))
    m.finish(30.0)
    assert len(sink.records) == 1
    never_started, empty = meter()
    never_started.finish(30.0)  # the provider refused session.start
    assert empty.records == []


def test_live_a_session_whose_reports_stop_is_billed_by_the_relays_clock() -> None:
    """A budget must still cut a session that reports nothing: the relay's clock bills it,
    ``SILENT_GRACE_S`` behind, where the provider reported less."""
    m, sink = meter()
    m.clock(40.0)
    assert sink.records == []  # not started: the provider may yet refuse session.start
    m.usage_event("session.started", {"type": "session.started", "session": {}})
    m.usage_event("session.usage.updated", usage(12.0))
    m.clock(SILENT_GRACE_S + 10.0)  # the provider is ahead of the relay's clock: nothing
    assert [r.ref for r in sink.durations()] == ["live:12000"]
    m.clock(SILENT_GRACE_S + 20.0)  # reports stopped: billed up to 20 s
    m.clock(SILENT_GRACE_S + 20.5)
    m.usage_event("session.usage.updated", usage(19.0))  # late and lower: nothing
    m.usage_event("session.usage.updated", usage(26.0))  # higher: the increase only
    assert [(r.ref, r.usage.seconds) for r in sink.durations()] == [
        ("live:12000", 12),
        ("live:20000", 8),
        ("live:20500", Decimal("0.5")),
        ("live:26000", Decimal("5.5")),
    ]
    m.finish(90.0)  # the provider reported: its figures stand
    assert live_seconds(sink) == 26


def test_live_a_started_session_that_never_reports_is_billed_by_clock_then_to_its_end() -> None:
    m, sink = meter()
    m.usage_event("session.started", {"type": "session.started", "session": {}})
    m.clock(SILENT_GRACE_S + 5.0)
    m.finish(SILENT_GRACE_S + 7.0)
    assert [(r.ref, r.usage.seconds) for r in sink.durations()] == [
        ("live:5000", Decimal(5)),
        (f"live:{int((SILENT_GRACE_S + 7) * 1000)}", Decimal(str(SILENT_GRACE_S + 2))),
    ]


def test_live_webrtc_reporting_less_than_the_initialization_charge_pays_the_charge() -> None:
    """OpenAI credits the 15 s start charge against the session's duration: a session that
    reported 0.84 s still costs 15 s; one that reported more costs what it reported."""
    short, sink = meter(webrtc=True)
    short.usage_event("session.usage.updated", usage(0.84))
    short.finish(5.0)
    assert [(r.ref, r.usage.seconds) for r in sink.durations()] == [
        ("live:840", Decimal("0.84")),
        ("live:15000", Decimal("14.16")),
    ]
    long, sink = meter(webrtc=True)
    long.usage_event("session.usage.updated", usage(20.0))
    long.finish(25.0)
    assert live_seconds(sink) == 20


@pytest.mark.parametrize(("elapsed", "billed"), [(3.0, 15), (40.0, 40)])
def test_live_webrtc_without_a_report_costs_the_initialization_charge_at_least(
    elapsed: float, billed: int
) -> None:
    m, sink = meter(webrtc=True)
    m.finish(elapsed)
    assert [r.usage.seconds for r in sink.durations()] == [billed]


def completed(rid: str, model: str | None, usage: dict[str, Any]) -> dict[str, Any]:
    response: dict[str, Any] = {"id": rid, "status": "completed", "usage": usage}
    if model is not None:
        response["model"] = model
    return {
        "type": "response.event",
        "event_id": "e",
        "delegation_id": "dlg_1",
        "event": {"type": "response.completed", "response": response},
    }


RESPONSES_USAGE = {
    "input_tokens": 1000,
    "input_tokens_details": {"cached_tokens": 400},
    "output_tokens": 300,
    "output_tokens_details": {"reasoning_tokens": 200},
    "total_tokens": 1300,
}


def test_live_delegated_responses_bill_tokens_once_at_the_model_they_name() -> None:
    m, sink = meter()
    m.client_event(
        "session.start",
        {"session": {"delegation": {"type": "responses", "responses": {"model": "gpt-x"}}}},
    )
    m.usage_event("response.event", completed("resp_1", "gpt-realtime-2.1", RESPONSES_USAGE))
    m.usage_event("response.event", completed("resp_1", "gpt-realtime-2.1", RESPONSES_USAGE))
    m.usage_event("response.event", completed("resp_2", None, RESPONSES_USAGE))
    records = [r for r in sink.records if isinstance(r, ResponseRecord)]
    assert [(r.response_id, r.model) for r in records] == [
        ("resp_1", "gpt-realtime-2.1"),
        ("resp_2", "gpt-x"),  # no model in the snapshot: the session's delegation model
    ]
    first = records[0]
    assert first.usage == Usage(input_text=1000, cached_text=400, output_text=300)
    # 600 * $4 + 400 * $0.40 + 300 * $24 (reasoning included), per 1M tokens
    assert first.cost_usd == Decimal("0.00976")
    assert records[1].cost_usd is None  # gpt-x has no price: unpriced, never $0
    assert m.usage.responses == 2 and m.usage.unpriced == 1


def test_live_delegation_model_follows_session_updates() -> None:
    m, sink = meter()
    update = {"session": {"delegation": {"type": "responses", "responses": {"model": "gpt-y"}}}}
    m.client_event("session.update", update)
    m.usage_event("response.event", completed("resp_1", None, RESPONSES_USAGE))
    assert cast(ResponseRecord, sink.records[0]).model == "gpt-y"


# -- translation ---------------------------------------------------------------------------


def append(m: Billing, size: int) -> None:
    m.client_event(TRANSLATION_APPEND, {AUDIO_BYTES: size})


def test_translation_bills_measured_audio_each_interval_and_the_rest_at_the_end() -> None:
    m, sink = meter("translation", "gpt-realtime-translate")
    for _ in range(10):
        append(m, 9_600)  # 200 ms frames, as OpenAI recommends
    m.clock(1.0)
    assert sink.records == []  # no whole interval yet
    m.clock(5.0)
    append(m, 48_000)
    m.clock(9.9)
    m.finish(10.3)
    m.clock(20.0)  # nothing after finish
    assert [(r.ref, r.usage.seconds) for r in sink.records] == [  # type: ignore[union-attr]
        ("tr:2000", 2),
        ("tr:3000", 1),
    ]
    assert m.usage.cost_usd == Decimal("0.0017")  # 3 s at $0.034 a minute
    assert m.spent() == Decimal("0.0017")


def test_translation_faster_than_real_time_bills_without_waiting_for_the_clock() -> None:
    m, sink = meter("translation", "gpt-realtime-translate")
    append(m, 6 * BYTES_PER_SECOND)
    assert [r.usage.seconds for r in sink.durations()] == [6]


@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("append"), st.integers(min_value=0, max_value=200_000)),
            st.tuples(st.just("clock"), st.floats(min_value=0, max_value=100)),
        ),
        max_size=60,
    )
)
def test_translation_bills_every_whole_millisecond_appended_once(steps: list[Any]) -> None:
    m, sink = meter("translation", "gpt-realtime-translate")
    elapsed, total = 0.0, 0
    for op, value in steps:
        if op == "append":
            append(m, value)
            total += value
        else:
            elapsed = max(elapsed, value)
            m.clock(elapsed)
    m.finish(elapsed)
    assert live_seconds(sink) == Decimal(total // (BYTES_PER_SECOND // 1000)) / 1000
    assert len(sink.rows()) == len(sink.records)


def test_translation_meter_measures_only_appends() -> None:
    m, sink = meter("translation", "gpt-realtime-translate")
    m.client_event("session.update", {"session": {"audio": {"output": {"language": "fr"}}}})
    m.usage_event("session.updated", {})
    m.finish(60.0)
    assert sink.records == []


# -- shared ---------------------------------------------------------------------------------


def test_make_meter_gives_each_protocol_its_meter() -> None:
    assert isinstance(meter("live")[0], LiveMeter)
    assert isinstance(meter("translation")[0], TranslationMeter)
    assert type(meter("realtime", "gpt-realtime")[0]).__name__ == "RealtimeMeter"


def test_an_unpriced_model_is_metered_counted_and_logged_once_a_minute(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [T0]
    m, sink = meter(model="gpt-live-unknown-9")
    m.now = lambda: now[0]
    seen: list[tuple[str, Decimal | None]] = []
    m.observe = lambda model, u, cost: seen.append((u.unit, cost))
    with caplog.at_level(logging.WARNING, logger="rtrelay.bridge"):
        for i, step in enumerate((0, 10, 50, 61)):
            now[0] = T0 + timedelta(seconds=step)
            m.usage_event("session.usage.updated", usage(float(i + 1)))
    assert len(sink.records) == 4 and m.usage.unpriced == 4
    assert seen == [("seconds", None)] * 4
    warnings = [r for r in caplog.records if getattr(r, "event", "") == "unpriced_usage"]
    assert len(warnings) == 2  # at 0 s and at 61 s
    assert warnings[0].__dict__["model"] == "gpt-live-unknown-9"
    assert warnings[0].__dict__["unit"] == "seconds"


def test_metrics_show_seconds_and_unpriced_usage_by_unit() -> None:
    metrics = Metrics()
    metrics.observe_metered("gpt-live-1", Usage.of_seconds(Decimal("2.5")), Decimal("0.002"))
    metrics.observe_metered("gpt-live-x", Usage.of_seconds(Decimal(1)), None)
    metrics.observe_metered("gpt-x", Usage(input_text=5), None)
    r = metrics.registry
    assert r.get_sample_value("rtrelay_usage_seconds_total") == 3.5
    assert r.get_sample_value("rtrelay_cost_usd_total", {"model": "gpt-live-1"}) == 0.002
    unpriced = "rtrelay_unpriced_usage_total"
    assert r.get_sample_value(unpriced, {"model": "gpt-live-x", "unit": "seconds"}) == 1
    assert r.get_sample_value(unpriced, {"model": "gpt-x", "unit": "tokens"}) == 1


def test_live_session_closed_carries_the_final_cumulative_seconds() -> None:
    m, sink = meter()
    m.usage_event("session.usage.updated", usage(4.0))
    closed = {"type": "session.closed", "reason": "close_requested", "usage": {"seconds": 4.75}}
    m.usage_event("session.closed", closed)
    m.finish(10.0)
    assert [(r.ref, r.usage.seconds) for r in sink.durations()] == [
        ("live:4000", Decimal(4)),
        ("live:4750", Decimal("0.75")),
    ]


WHISPER: Final = {"model": "gpt-realtime-whisper"}


@pytest.mark.parametrize(
    "update",
    [
        {"session": {"type": "transcription", "audio": {"input": {"transcription": WHISPER}}}},
        {"session": {"input_audio_transcription": WHISPER}},  # beta transcription_session
    ],
)
def test_a_transcription_session_bills_duration_usage_at_its_models_minute_price(
    update: dict[str, Any],
) -> None:
    m, sink = meter("realtime", "")  # intent=transcription: no model in the URL
    m.client_event("session.update", update)
    done: dict[str, Any] = {
        "type": "conversation.item.input_audio_transcription.completed",
        "item_id": "item_1",
        "transcript": "hello",
        "usage": {"type": "duration", "seconds": 30},
    }
    m.usage_event("conversation.item.input_audio_transcription.completed", done)
    [record] = sink.records
    assert isinstance(record, TranscriptionRecord)
    assert (record.model, record.usage.unit) == ("gpt-realtime-whisper", "seconds")
    assert record.cost_usd == Decimal("0.0085")  # 30 s at $0.017 a minute


def test_live_completed_decisions_bill_their_tokens_once_per_event() -> None:
    m, sink = meter()
    decision = {
        "answers": [],
        "model": "gpt-realtime-2.1-mini",
        "usage": {
            "input_tokens": 1000,
            "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
            "output_tokens": 10,
            "output_tokens_details": {"reasoning_tokens": 4},
            "total_tokens": 1010,
        },
    }
    event = {
        "type": "decision.event",
        "event_id": "evt_7",
        "delegation_id": None,
        "trigger_id": "trg_1",
        "event": {"type": "decision.completed", "decision": decision},
    }
    m.usage_event("decision.event", event)
    m.usage_event("decision.event", event)
    [record] = sink.records
    assert isinstance(record, ResponseRecord)
    assert (record.response_id, record.model) == ("decision:evt_7", "gpt-realtime-2.1-mini")
    assert record.cost_usd == Decimal("0.000624")  # 1000 x $0.60 + 10 x $2.40 per 1M


@given(st.lists(st.integers(min_value=0, max_value=7_200_000), max_size=40))
def test_live_rows_add_up_to_the_price_of_the_total_rounded_once(values: list[int]) -> None:
    m, sink = meter()
    for v in values:
        m.usage_event("session.usage.updated", usage(v / 1000))
    total = Decimal(max(values, default=0)) / 1000
    assert sum((r.cost_usd or 0 for r in sink.durations()), Decimal(0)) == PriceTable().cost(
        "gpt-live-1", Usage.of_seconds(total)
    )


@given(st.lists(st.integers(min_value=0, max_value=100_000), max_size=40))
def test_translation_rows_add_up_to_the_price_of_the_total(sizes: list[int]) -> None:
    m, sink = meter("translation", "gpt-realtime-translate")
    for i, size in enumerate(sizes):
        append(m, size)
        m.clock(float(i))
    m.finish(float(len(sizes)))
    total = Decimal(sum(sizes) // 48) / 1000
    assert sum((r.cost_usd or 0 for r in sink.durations()), Decimal(0)) == PriceTable().cost(
        "gpt-realtime-translate", Usage.of_seconds(total)
    )
