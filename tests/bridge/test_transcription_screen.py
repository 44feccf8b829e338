"""A transcription session's model policy in the session core: the screen on session updates."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, cast

import orjson
import pytest

from rtrelay.bridge.metering import RealtimeMeter
from rtrelay.bridge.session import Refuse, Session
from rtrelay.config import Timeouts
from rtrelay.errors import ModelNotAllowed
from rtrelay.gate.transcription import transcription_model, transcription_screen
from rtrelay.ledger.prices import PriceTable
from rtrelay.ledger.store import Store
from rtrelay.ledger.writer import SpendBook

ALLOWED = ("gpt-4o-transcribe",)


def check(model: str) -> None:
    if model not in ALLOWED:
        raise ModelNotAllowed(f"This API key may not use the model '{model}'.")


def ga_update(model: str | None, **extra: Any) -> dict[str, Any]:
    transcription = {} if model is None else {"model": model}
    session = {"type": "transcription", "audio": {"input": {"transcription": transcription}}}
    return {"type": "session.update", "session": session, **extra}


class CountingMeter(RealtimeMeter):
    """The real Realtime meter, counting the client events it is shown."""

    seen: list[str]

    def client_event(self, kind: str, event: dict[str, Any]) -> None:
        self.seen.append(kind)
        super().client_event(kind, event)


def core() -> tuple[Session, CountingMeter]:
    meter = CountingMeter(
        session_id="sess_1",
        model="",
        key_id="key_1",
        prices=PriceTable(),
        writer=None,
        spend=SpendBook(cast(Store, None)),
    )
    meter.seen = []
    session = Session(
        meter=meter,
        timeouts=Timeouts(idle=None, max_session=None, slow_consumer=10.0),
        budget=Decimal("1"),
        screen=transcription_screen(check),
    )
    return session, meter


@pytest.mark.parametrize(
    ("event", "model"),
    [
        (ga_update("gpt-realtime-whisper"), "gpt-realtime-whisper"),
        (ga_update(None), None),
        ({"type": "session.update", "session": {"type": "transcription"}}, None),
        ({"type": "session.update", "session": "nonsense"}, None),
        ({"type": "session.update", "session": {"audio": {"input": {"transcription": 3}}}}, None),
        (
            {
                "type": "transcription_session.update",
                "session": {"input_audio_transcription": {"model": "whisper-1"}},
            },
            "whisper-1",
        ),
        # A beta update names its model in the beta place only.
        ({**ga_update("whisper-1"), "type": "transcription_session.update"}, None),
    ],
)
def test_the_model_a_session_update_names(event: dict[str, Any], model: str | None) -> None:
    assert transcription_model(event) == model


def test_an_update_naming_a_model_the_key_may_not_use_is_refused_and_not_metered() -> None:
    session, meter = core()
    decision = session.client_frame(orjson.dumps(ga_update("gpt-realtime-whisper", event_id="e1")))
    assert isinstance(decision, Refuse)
    assert isinstance(decision.error, ModelNotAllowed)
    assert decision.error.code == "model_not_allowed"
    assert "gpt-realtime-whisper" in decision.error.message
    assert decision.client_event_id == "e1"
    assert meter.seen == []


def test_an_allowed_model_or_none_at_all_is_forwarded() -> None:
    session, meter = core()
    assert session.client_frame(orjson.dumps(ga_update("gpt-4o-transcribe"))) is None
    assert session.client_frame(orjson.dumps(ga_update(None))) is None
    assert meter.seen == ["session.update", "session.update"]
    # Events other than session updates never reach the screen.
    append = {"type": "input_audio_buffer.append", "audio": ""}
    assert session.client_frame(orjson.dumps(append)) is None
