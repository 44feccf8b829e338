"""Which protocol a model speaks, and the refusal that names the right route."""

from __future__ import annotations

import pytest

from rtrelay.config import Channel
from rtrelay.errors import WrongProtocolRoute
from rtrelay.route.families import Family, family_of, require_family, serves


@pytest.mark.parametrize(
    ("model", "family"),
    [
        ("gpt-realtime", "realtime"),
        ("gpt-realtime-2.1-mini", "realtime"),
        ("gpt-4o-realtime-preview", "realtime"),
        ("gpt-live-1", "live"),
        ("GPT-Live-1", "live"),
        ("gpt-realtime-translate", "translation"),
        ("gpt-live-transcribe", "transcription"),
        ("gpt-realtime-whisper", "transcription"),
        ("gpt-4o-mini-transcribe", "transcription"),
        ("whisper-1", "transcription"),
    ],
)
def test_a_model_belongs_to_its_protocol(model: str, family: Family) -> None:
    assert family_of(model) == family


@pytest.mark.parametrize(
    ("model", "route", "hint"),
    [
        ("gpt-live-1", "realtime", "/v1/live/sessions"),
        ("gpt-realtime-translate", "realtime", "/v1/realtime/translations"),
        ("gpt-realtime", "live", "/v1/realtime?model="),
        ("gpt-realtime", "translation", "/v1/realtime?model="),
        ("gpt-live-1", "translation", "/v1/live/sessions"),
    ],
)
def test_a_model_on_another_protocols_route_is_told_where_to_go(
    model: str, route: Family, hint: str
) -> None:
    with pytest.raises(WrongProtocolRoute) as caught:
        require_family(model, route)
    assert hint in caught.value.message
    assert model in caught.value.message
    assert (caught.value.http_status, caught.value.close_code) == (400, 4400)


@pytest.mark.parametrize(
    ("model", "route"),
    [
        ("gpt-realtime", "realtime"),
        ("gpt-4o-transcribe", "realtime"),  # a transcription session on the Realtime route
        ("gpt-live-1", "live"),
        ("gpt-realtime-translate", "translation"),
    ],
)
def test_a_model_on_its_own_route_passes(model: str, route: Family) -> None:
    require_family(model, route)


FAMILIES: tuple[Family, ...] = ("realtime", "transcription", "live", "translation")


def test_only_openai_and_mock_channels_carry_live_and_translation() -> None:
    def channel(kind: str) -> Channel:
        template = "wss://x/{model}" if kind == "openai-compatible" else None
        return Channel(
            name=kind,
            kind=kind,  # type: ignore[arg-type]
            base_url="ws://127.0.0.1:1/v1",
            url_template=template,
            models={"gpt-live-1": "gpt-live-1"},
            api_version="2025-04-01-preview" if kind == "azure" else None,
        )

    carried = {
        kind: [f for f in FAMILIES if serves(channel(kind), f)]
        for kind in ("openai", "mock", "azure", "openai-compatible")
    }
    assert (
        carried["openai"] == carried["mock"] == ["realtime", "transcription", "live", "translation"]
    )
    assert carried["azure"] == carried["openai-compatible"] == ["realtime", "transcription"]
