"""A Realtime transcription session's protocol logic (``/v1/realtime?intent=transcription``).

Sans-I/O like ``RealtimeProtocol``. The URL names no model: the transcription model is
in the session config. Shapes are the SDK's (protocol.md §1, §4):

- ``session.created`` on open with a ``RealtimeTranscriptionSessionCreateResponse``
  (``type: "transcription"``, ``object: "realtime.transcription_session"``, no model);
- ``session.update`` must say ``session.type = "transcription"`` and may set
  ``audio.input.{format, transcription, turn_detection, noise_reduction}`` and ``include``;
- ``input_audio_buffer.append`` feeds server VAD (on by default); ``.commit`` and
  ``.clear`` work as in a Realtime session;
- each committed turn is ``input_audio_buffer.committed`` then, when a transcription
  model is set, ``conversation.item.input_audio_transcription.delta``/``.completed`` with
  ``usage`` in seconds or tokens as the model is priced.

No ``response.*`` events: a transcription session never responds, so ``response.create``
is an unknown event type here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from rtrelay.mock import _errors as errors
from rtrelay.mock._audio import AudioFormat
from rtrelay.mock._errors import ProviderError
from rtrelay.mock._ids import IdFactory
from rtrelay.mock._input_buffer import InputBuffer, TurnStarted
from rtrelay.mock._items import decode_base64
from rtrelay.mock._protocol import SESSION_LIFETIME_S, error_event
from rtrelay.mock._response import Event, Step
from rtrelay.mock._session import Inbound, dispatch
from rtrelay.mock._session_config import (
    TurnDetection,
    _choice,
    _format_ga,
    _noise_reduction,
    _object,
    _transcription,
    _turn_detection,
    format_ga,
)
from rtrelay.mock._transcript import transcription_events

__all__ = ["TranscriptionProtocol"]

_INPUT_KEYS: Final = ("format", "transcription", "turn_detection", "noise_reduction")


class TranscriptionProtocol:
    """One transcription session's state machine.

    Args:
        now: Unix time at connect, for ``expires_at``.
        ids: where identifiers come from.
    """

    def __init__(self, *, now: float, ids: IdFactory | None = None) -> None:
        self._ids = ids if ids is not None else IdFactory()
        self._id = self._ids.session()
        self._expires_at = int(now) + SESSION_LIFETIME_S
        self._format: AudioFormat = "audio/pcm"
        self._turn_detection: TurnDetection | None = TurnDetection()
        self._transcription: dict[str, Any] | None = None
        self._noise_reduction: dict[str, Any] | None = None
        self._include: Any = None
        self._input = InputBuffer(self._format, self._turn_detection)
        self._turn_item: str | None = None
        self._previous_item: str | None = None
        self._handlers: dict[str, Callable[[Event], list[Event]]] = {
            "session.update": self._update,
            "input_audio_buffer.append": self._append,
            "input_audio_buffer.commit": self._commit_manual,
            "input_audio_buffer.clear": self._clear,
        }

    # --- SessionProtocol -----------------------------------------------------------------

    @property
    def session_id(self) -> str:
        return self._id

    @property
    def transcription_model(self) -> str | None:
        """The model the session config names, once it names one."""
        return None if self._transcription is None else self._transcription["model"]

    @property
    def response_active(self) -> bool:
        return False  # nothing is ever streamed: every event is a direct reply

    @property
    def active_response_id(self) -> str | None:
        return None

    @property
    def finished(self) -> bool:
        """Never: like a Realtime session, it ends when a socket closes."""
        return False

    def connect(self) -> list[Event]:
        return [self._event("session.created", session=self._render())]

    def receive_text(self, data: str | bytes) -> Inbound:
        """Handle one text frame; never raises for anything a client can send."""
        return dispatch(data, self._handlers, self._error)

    def receive_binary(self) -> list[Event]:
        error = errors.invalid_event(
            "Binary frames are not supported: send each event as a JSON text frame."
        )
        return [self._error(error, None)]

    def stream_step(self) -> Step:
        return Step([], 0.0, True)

    def error(self, error: ProviderError) -> Event:
        return self._error(error, None)

    def _error(self, error: ProviderError, client_event_id: str | None) -> Event:
        return error_event(error, self._ids, client_event_id)

    # --- handlers ------------------------------------------------------------------------

    def _update(self, event: Event) -> list[Event]:
        """Apply a ``session.update`` whole or not at all."""
        if "session" not in event:
            raise errors.missing_parameter("session")
        session = _object(event["session"], "session")
        if "type" not in session:
            raise errors.missing_parameter("session.type")
        changes: dict[str, Any] = {}
        for key, value in session.items():
            param = f"session.{key}"
            if key == "type":
                _choice(value, param, ("transcription",))
            elif key == "include":
                changes["include"] = value
            elif key == "audio":
                audio = _object(value, param)
                for sub in audio:
                    if sub != "input":
                        raise errors.unknown_parameter(f"{param}.{sub}")
                if "input" in audio:
                    changes |= _input_changes(_object(audio["input"], f"{param}.input"))
            elif key not in ("id", "object", "expires_at"):  # echoed back from session.created
                raise errors.unknown_parameter(param)
        self._format = changes.get("format", self._format)
        self._transcription = changes.get("transcription", self._transcription)
        self._noise_reduction = changes.get("noise_reduction", self._noise_reduction)
        self._include = changes.get("include", self._include)
        if "format" in changes or "turn_detection" in changes:
            self._turn_detection = changes.get("turn_detection", self._turn_detection)
            self._input.configure(self._format, self._turn_detection)
            self._turn_item = None
        return [self._event("session.updated", session=self._render())]

    def _append(self, event: Event) -> list[Event]:
        if "audio" not in event:
            raise errors.missing_parameter("audio")
        replies: list[Event] = []
        for turn in self._input.append(decode_base64(event["audio"], "audio")):
            if isinstance(turn, TurnStarted):
                self._turn_item = item_id = self._ids.item()
                replies.append(
                    self._event(
                        "input_audio_buffer.speech_started",
                        audio_start_ms=turn.audio_start_ms,
                        item_id=item_id,
                    )
                )
            else:
                item_id = self._turn_item or self._ids.item()
                self._turn_item = None
                replies.append(
                    self._event(
                        "input_audio_buffer.speech_stopped",
                        audio_end_ms=turn.audio_end_ms,
                        item_id=item_id,
                    )
                )
                replies += self._commit(item_id, turn.audio_ms)
        return replies

    def _commit_manual(self, event: Event) -> list[Event]:
        audio_ms = self._input.take_all()
        item_id = self._turn_item or self._ids.item()
        self._turn_item = None
        return self._commit(item_id, audio_ms)

    def _clear(self, event: Event) -> list[Event]:
        self._input.clear()
        self._turn_item = None
        return [self._event("input_audio_buffer.cleared")]

    # --- helpers -------------------------------------------------------------------------

    def _commit(self, item_id: str, audio_ms: float) -> list[Event]:
        replies = [
            self._event(
                "input_audio_buffer.committed",
                previous_item_id=self._previous_item,
                item_id=item_id,
            )
        ]
        self._previous_item = item_id
        if self._transcription is not None:
            events, _ = transcription_events(
                self._event, item_id, self._transcription["model"], audio_ms
            )
            replies += events
        return replies

    def _render(self) -> dict[str, Any]:
        td = self._turn_detection
        return {
            "id": self._id,
            "object": "realtime.transcription_session",
            "type": "transcription",
            "expires_at": self._expires_at,
            "audio": {
                "input": {
                    "format": format_ga(self._format),
                    "transcription": self._transcription,
                    "noise_reduction": self._noise_reduction,
                    "turn_detection": None if td is None else td.render("ga"),
                }
            },
            "include": self._include,
        }

    def _event(self, kind: str, **fields: Any) -> Event:
        return {"type": kind, "event_id": self._ids.event(), **fields}


def _input_changes(given: dict[str, Any]) -> dict[str, Any]:
    """``session.audio.input`` parsed as a Realtime session parses it (GA shape)."""
    param = "session.audio.input"
    changes: dict[str, Any] = {}
    for key in given:
        if key not in _INPUT_KEYS:
            raise errors.unknown_parameter(f"{param}.{key}")
    if "format" in given:
        changes["format"] = _format_ga(given["format"], f"{param}.format")
    if "transcription" in given:
        changes["transcription"] = _transcription(given["transcription"], f"{param}.transcription")
    if "turn_detection" in given:
        changes["turn_detection"] = _turn_detection(
            given["turn_detection"], f"{param}.turn_detection", "ga"
        )
    if "noise_reduction" in given:
        changes["noise_reduction"] = _noise_reduction(
            given["noise_reduction"], f"{param}.noise_reduction"
        )
    return changes
