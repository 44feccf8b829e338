"""A GPT-Live session's configuration: ``session.start`` checked strictly, updates, rendering.

Shapes are the SDK's ``openai/types/live/session_config.py`` (what ``session.start`` may
carry), ``session_update_config.py`` (what ``session.update`` may change: delegation and
triggers) and ``session_resource.py`` (what ``session.started`` reports). The Live server
rejects unknown fields (protocol.md §10; the Azure GPT-Live event reference: "a strict
configuration object that rejects unknown fields") with ``unknown_parameter`` naming the
dotted path, e.g. ``session.voice``. Model, instructions, audio and startup input are
fixed for the session. Delegation and trigger contents are kept as given, unchecked
beyond their type: the simulator never runs them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Final

from rtrelay.mock import _errors as errors
from rtrelay.mock._audio import AudioFormat

__all__ = [
    "DEFAULT_VOICE",
    "TRIGGER_EVENTS",
    "LiveConfig",
    "apply_live_update",
    "is_live_model",
    "parse_live_start",
    "strict_object",
    "string_value",
]

DEFAULT_VOICE: Final = "marin"  # session_config.py: "Defaults to `marin`"
_START_KEYS: Final = frozenset(
    {
        "model",
        "audio",
        "client",
        "delegation",
        "input",
        "instructions",
        "safety_identifier",
        "store",
        "triggers",
    }
)
_UPDATE_KEYS: Final = frozenset({"delegation", "triggers"})
TRIGGER_EVENTS: Final = ("session.input_transcript.delta", "session.output_transcript.delta")
_DELEGATION_KEYS: Final = {
    "client": frozenset({"type", "acknowledgement_delay_ms"}),
    "responses": frozenset({"type", "responses", "acknowledgement_delay_ms"}),
    "decisions": frozenset({"type", "decisions", "acknowledgement_delay_ms"}),
}
_FORMATS: Final[dict[str, tuple[AudioFormat, tuple[int, ...]]]] = {
    # audio_format.py: PCM at 16000 or 24000 Hz, G.711 at 8000 Hz.
    "audio/pcm": ("audio/pcm", (24000, 16000)),
    "audio/pcmu": ("audio/pcmu", (8000,)),
    "audio/pcma": ("audio/pcma", (8000,)),
}


def is_live_model(model: str) -> bool:
    """Whether OpenAI serves ``model`` on ``/v1/live/sessions`` (``gpt-live-1``), not
    ``/v1/realtime``; ``gpt-live-transcribe`` is a Realtime transcription model."""
    name = model.lower()
    return name.startswith("gpt-live") and "transcribe" not in name


@dataclass(frozen=True, slots=True, kw_only=True)
class LiveConfig:
    """The resolved configuration of one Live session."""

    id: str
    expires_at: int
    model: str
    instructions: str | None = None
    audio_format: AudioFormat = "audio/pcm"
    rate: int = 24000  # of audio_format: pcm at 16 or 24 kHz, G.711 at 8 kHz
    voice: Any = DEFAULT_VOICE
    delegation: dict[str, Any] | None = None
    triggers: list[Any] | None = None
    input: list[Any] | None = None
    client: dict[str, Any] | None = None
    safety_identifier: str | None = None
    store: bool = False

    @property
    def delegation_type(self) -> str | None:
        return None if self.delegation is None else str(self.delegation["type"])

    def trigger(self, event_type: str) -> dict[str, Any] | None:
        """The Decisions trigger on transcript deltas of ``event_type``, if one is set."""
        for trigger in self.triggers or ():
            if trigger["event_type"] == event_type:
                return dict(trigger)
        return None

    def render(self) -> dict[str, Any]:
        """The ``SessionResource`` of ``session.started``/``updated``/``closed``."""
        fmt = self.audio_format
        return {
            "id": self.id,
            "expires_at": self.expires_at,
            "model": self.model,
            "status": "active",
            "audio": {
                "format": {"type": fmt, "rate": self.rate},
                "output": {"voice": self.voice},
            },
            "client": self.client,
            "delegation": self.delegation,
            "input": self.input,
            "instructions": self.instructions,
            "safety_identifier": self.safety_identifier,
            "store": self.store,
            "triggers": self.triggers,
        }


def parse_live_start(
    session: Any, *, session_id: str, expires_at: int, transport_format: bool = True
) -> LiveConfig:
    """The configuration ``session.start`` asks for.

    Args:
        session: the event's ``session`` value.
        transport_format: whether ``audio.format`` may be given (primary WebSockets only;
            WebRTC negotiates its media format).

    Raises:
        ProviderError: the first problem found, ``param`` naming its dotted path.
    """
    obj = strict_object(session, "session", _START_KEYS)
    if "model" not in obj:
        raise errors.missing_parameter("session.model")
    model = string_value(obj["model"], "session.model")
    if not is_live_model(model):
        raise errors.invalid_model(
            model,
            f"The model '{model}' is not a GPT-Live model. Use it on /v1/realtime; "
            "GPT-Live sessions take a Live model such as 'gpt-live-1'.",
        )
    config = LiveConfig(id=session_id, expires_at=expires_at, model=model)
    if obj.get("instructions") is not None:
        config = dataclasses.replace(
            config, instructions=string_value(obj["instructions"], "session.instructions")
        )
    if obj.get("audio") is not None:
        audio = strict_object(obj["audio"], "session.audio", frozenset({"format", "output"}))
        if audio.get("format") is not None:
            if not transport_format:
                raise errors.unknown_parameter("session.audio.format")
            fmt, rate = _format(audio["format"])
            config = dataclasses.replace(config, audio_format=fmt, rate=rate)
        if audio.get("output") is not None:
            output = strict_object(audio["output"], "session.audio.output", frozenset({"voice"}))
            if output.get("voice") is not None:
                config = dataclasses.replace(config, voice=_voice(output["voice"]))
    if obj.get("delegation") is not None:
        config = dataclasses.replace(
            config, delegation=_delegation(obj["delegation"], "session.delegation")
        )
    given: dict[str, Any] = {}
    if obj.get("triggers") is not None:
        given["triggers"] = _triggers(obj["triggers"])
    for name, kind, check in (
        ("input", "an array", list),
        ("client", "an object", dict),
        ("safety_identifier", "a string", str),
        ("store", "a boolean", bool),
    ):
        value = obj.get(name)
        if value is not None:
            if not isinstance(value, check):
                raise errors.invalid_type(f"session.{name}", kind, value)
            given[name] = value
    return dataclasses.replace(config, **given)


def apply_live_update(config: LiveConfig, session: Any) -> LiveConfig:
    """``config`` after ``session.update``: delegation settings and triggers only.

    Raises:
        ProviderError: a fixed or unknown field, or a change of delegation type.
    """
    if not isinstance(session, dict):
        raise errors.invalid_type("session", "an object", session)
    for key in session:
        if key not in _UPDATE_KEYS:
            if key in _START_KEYS:
                raise errors.immutable_parameter(f"session.{key}")
            raise errors.unknown_parameter(f"session.{key}")
    if session.get("triggers") is not None:
        config = dataclasses.replace(config, triggers=_triggers(session["triggers"]))
    update = session.get("delegation")
    if update is not None:
        delegation = _delegation(update, "session.delegation", partial=True)
        if delegation["type"] != config.delegation_type:
            raise errors.invalid_value(
                "session.delegation.type",
                "The delegation type cannot change after session.start "
                f"(the session delegates to {config.delegation_type or 'nobody'!s}).",
            )
        merged = dict(config.delegation or {})
        for key, value in delegation.items():
            if isinstance(value, dict) and isinstance(merged.get(key), dict):
                merged[key] = {**merged[key], **value}
            else:
                merged[key] = value
        config = dataclasses.replace(config, delegation=merged)
    return config


def strict_object(value: Any, param: str, keys: frozenset[str]) -> dict[str, Any]:
    """``value`` as an object with no field outside ``keys`` (``unknown_parameter``)."""
    if not isinstance(value, dict):
        raise errors.invalid_type(param, "an object", value)
    for key in value:
        if key not in keys:
            raise errors.unknown_parameter(f"{param}.{key}")
    return value


def string_value(value: Any, param: str) -> str:
    if not isinstance(value, str):
        raise errors.invalid_type(param, "a string", value)
    return value


def _format(value: Any) -> tuple[AudioFormat, int]:
    obj = strict_object(value, "session.audio.format", frozenset({"type", "rate"}))
    kind = obj.get("type")
    if kind not in _FORMATS:
        raise errors.invalid_value(
            "session.audio.format.type",
            f"Invalid value: {kind!r}. Supported values are: 'audio/pcm', 'audio/pcmu' and "
            "'audio/pcma'.",
        )
    fmt, rates = _FORMATS[kind]
    rate = obj.get("rate", rates[0])
    if rate not in rates:
        raise errors.invalid_value(
            "session.audio.format.rate", f"Unsupported sample rate {rate!r} for {kind}."
        )
    return fmt, rate


def _triggers(value: Any) -> list[dict[str, Any]]:
    """``triggers`` (``decision_trigger.py``): Decisions questions evaluated on transcript
    deltas, at most one per transcript event type."""
    if not isinstance(value, list):
        raise errors.invalid_type("session.triggers", "an array", value)
    seen: set[str] = set()
    for index, trigger in enumerate(value):
        param = f"session.triggers[{index}]"
        obj = strict_object(trigger, param, frozenset({"type", "event_type", "decisions"}))
        if obj.get("type") != "decisions":
            raise errors.invalid_value(f"{param}.type", "The trigger type must be 'decisions'.")
        event_type = obj.get("event_type")
        if event_type not in TRIGGER_EVENTS:
            raise errors.invalid_value(
                f"{param}.event_type",
                f"Invalid value: {event_type!r}. Supported values are: "
                + " and ".join(f"'{name}'" for name in TRIGGER_EVENTS)
                + ".",
            )
        if event_type in seen:
            raise errors.invalid_value(
                f"{param}.event_type", f"At most one trigger per event type: {event_type}."
            )
        seen.add(event_type)
        decisions = strict_object(
            obj.get("decisions"), f"{param}.decisions", frozenset({"questions"})
        )
        if not isinstance(decisions.get("questions"), list):
            raise errors.invalid_type(
                f"{param}.decisions.questions", "an array", decisions.get("questions")
            )
    return list(value)


def _voice(value: Any) -> Any:
    if isinstance(value, str):
        return value
    obj = strict_object(value, "session.audio.output.voice", frozenset({"id"}))
    string_value(obj.get("id"), "session.audio.output.voice.id")
    return obj


def _delegation(value: Any, param: str, *, partial: bool = False) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise errors.invalid_type(param, "an object", value)
    kind = value.get("type")
    if kind not in _DELEGATION_KEYS:
        raise errors.invalid_value(
            f"{param}.type",
            f"Invalid value: {kind!r}. Supported values are: 'client', 'responses' and "
            "'decisions'.",
        )
    strict_object(value, param, _DELEGATION_KEYS[kind])
    if kind != "client" and not partial and not isinstance(value.get(kind), dict):
        raise errors.missing_parameter(f"{param}.{kind}")
    return dict(value)
