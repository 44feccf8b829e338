"""A realtime translation session's protocol logic (``/v1/realtime/translations?model=M``).

Sans-I/O like ``RealtimeProtocol``. Names and shapes are the SDK's
``openai/types/realtime/realtime_translation_*`` (protocol.md §10):

- ``session.created`` on open (``type: "translation"``, the model from the URL);
- ``session.update`` may change only ``audio.output.language``,
  ``audio.input.transcription`` and ``audio.input.noise_reduction``; anything else is an
  ``error`` (``model`` and ``type`` are fixed at creation);
- ``session.input_audio_buffer.append`` (24 kHz pcm16) feeds server VAD; each utterance
  heard is "translated" into output audio of the same length, streamed in paced chunks as
  ``session.output_audio.delta`` with ``session.output_transcript.delta``, and, when
  source transcription is configured, preceded by ``session.input_transcript.delta``;
- ``session.close`` flushes (an utterance still being spoken is translated, queued
  output is streamed), then ``session.closed``; the connection closes with 1000.

No usage event and no ``response.*`` events: OpenAI bills translation by duration.
Errors use the Realtime ``error`` shape (the SDK's translation server events include
``RealtimeErrorEvent``).
"""

from __future__ import annotations

import base64
import math
from collections.abc import Callable
from typing import Any, Final

from rtrelay.mock import _errors as errors
from rtrelay.mock._errors import ProviderError
from rtrelay.mock._ids import IdFactory
from rtrelay.mock._input_buffer import InputBuffer, TurnStarted
from rtrelay.mock._items import decode_base64
from rtrelay.mock._live_config import strict_object, string_value
from rtrelay.mock._options import DEFAULT_AUDIO_CHUNK_MS
from rtrelay.mock._protocol import SESSION_LIFETIME_S, error_event
from rtrelay.mock._response import Event, Step
from rtrelay.mock._session import Inbound, dispatch
from rtrelay.mock._session_config import TurnDetection
from rtrelay.mock._speech import SpeakingSession, SpeechOutput, heard_words

__all__ = ["TranslationProtocol"]

_IMMUTABLE: Final = frozenset({"model", "type"})
_NOISE_TYPES: Final = ("near_field", "far_field")
_FORMAT: Final = "audio/pcm"  # 24 kHz pcm16 in and out (realtime_translation_*_event.py)
_SAMPLE_RATE: Final = 24_000


class TranslationProtocol(SpeakingSession):
    """One translation session's state machine.

    Args:
        model: the translation model the URL names.
        now: Unix time at connect, for ``expires_at``.
        ids: where identifiers come from.
        audio_chunk_ms: audio per ``session.output_audio.delta``.
    """

    def __init__(
        self,
        *,
        model: str,
        now: float,
        ids: IdFactory | None = None,
        audio_chunk_ms: int = DEFAULT_AUDIO_CHUNK_MS,
    ) -> None:
        self._ids = ids if ids is not None else IdFactory()
        self._id = self._ids.session()
        self._model = model
        self._expires_at = int(now) + SESSION_LIFETIME_S
        self._language: str | None = None
        self._transcription: dict[str, Any] | None = None
        self._noise_reduction: dict[str, Any] | None = None
        self._input = InputBuffer(_FORMAT, TurnDetection())
        self._output = SpeechOutput(_FORMAT, audio_chunk_ms, self._audio_delta, self._transcript)
        self._speaking = False  # VAD heard speech start and not yet its end
        self._close_requested = False
        self._finished = False
        self._handlers: dict[str, Callable[[Event], list[Event]]] = {
            "session.update": self._update,
            "session.input_audio_buffer.append": self._append,
            "session.close": self._close,
        }

    # --- public surface ------------------------------------------------------------------

    def connect(self) -> list[Event]:
        return [self._event("session.created", session=self._render())]

    def receive_text(self, data: str | bytes) -> Inbound:
        """Handle one text frame; never raises for anything a client can send."""
        return dispatch(data, self._handlers, self._error, self._guard)

    def stream_step(self) -> Step:
        step = self._output.step()
        if self._close_requested and self._output.active_id is None and not self._finished:
            return Step([*step.events, *self._closed()], step.duration_ms, True, step.audio)
        return step

    def _error(self, error: ProviderError, client_event_id: str | None) -> Event:
        return error_event(error, self._ids, client_event_id)

    def _guard(self, kind: str) -> None:
        if self._close_requested:
            raise errors.invalid_event("The session is closing.", param="type")

    # --- handlers ------------------------------------------------------------------------

    def _update(self, event: Event) -> list[Event]:
        if "session" not in event:
            raise errors.missing_parameter("session")
        session = event["session"]
        if not isinstance(session, dict):
            raise errors.invalid_type("session", "an object", session)
        for key in session:
            if key in _IMMUTABLE:
                raise errors.immutable_parameter(f"session.{key}")
        session = strict_object(session, "session", frozenset({"audio"}))
        audio = strict_object(
            session.get("audio") or {}, "session.audio", frozenset({"input", "output"})
        )
        # Check everything before changing anything: an update applies whole or not at all.
        language = self._language
        transcription = self._transcription
        noise = self._noise_reduction
        if audio.get("output") is not None:
            output = strict_object(audio["output"], "session.audio.output", frozenset({"language"}))
            if "language" in output:
                language = string_value(output["language"], "session.audio.output.language")
        if audio.get("input") is not None:
            keys = frozenset({"noise_reduction", "transcription"})
            given = strict_object(audio["input"], "session.audio.input", keys)
            if "transcription" in given:
                transcription = _transcription(given["transcription"])
            if "noise_reduction" in given:
                noise = _noise_reduction(given["noise_reduction"], noise)
        self._language, self._transcription, self._noise_reduction = language, transcription, noise
        return [self._event("session.updated", session=self._render())]

    def _append(self, event: Event) -> list[Event]:
        if "audio" not in event:
            raise errors.missing_parameter("audio")
        replies: list[Event] = []
        for turn in self._input.append(decode_base64(event["audio"], "audio")):
            if isinstance(turn, TurnStarted):
                self._speaking = True
            else:
                self._speaking = False
                replies += self._translate(turn.audio_end_ms - turn.audio_ms, turn.audio_ms)
        return replies

    def _close(self, event: Event) -> list[Event]:
        """Flush: translate speech still in progress, stream what is queued, then close."""
        self._close_requested = True
        replies: list[Event] = []
        if self._speaking:
            self._speaking = False
            pending = self._input.buffered_ms
            if pending > 0:
                replies += self._translate(self._input.position_ms - pending, pending)
        if self._output.active_id is None:
            replies += self._closed()
        return replies

    # --- helpers -------------------------------------------------------------------------

    def _translate(self, start_ms: float, audio_ms: float) -> list[Event]:
        """The source transcript of one utterance; its translation is queued to speak."""
        replies: list[Event] = []
        if self._transcription is not None:
            words = heard_words(audio_ms)
            replies = [
                self._event(
                    "session.input_transcript.delta",
                    delta=word if index == 0 else " " + word,
                    elapsed_ms=_frame_ms(start_ms + audio_ms * index / len(words)),
                )
                for index, word in enumerate(words)
            ]
        # Whole 100 ms: the synthetic voice is cached by length (_audio.reply_audio).
        duration = max(100, round(audio_ms, -2))
        self._output.say(self._ids.item(), int(duration), start_ms + audio_ms)
        return replies

    def _closed(self) -> list[Event]:
        self._finished = True
        return [self._event("session.closed")]

    def _audio_delta(self, chunk: bytes, start_ms: int, end_ms: int) -> Event:
        return self._event(
            "session.output_audio.delta",
            delta=base64.b64encode(chunk).decode("ascii"),
            format="pcm16",
            sample_rate=_SAMPLE_RATE,
            channels=1,
            elapsed_ms=_frame_ms(start_ms),
        )

    def _transcript(self, text: str, start_ms: int, end_ms: int) -> Event:
        return self._event(
            "session.output_transcript.delta", delta=text, elapsed_ms=_frame_ms(start_ms)
        )

    def _render(self) -> dict[str, Any]:
        return {
            "id": self._id,
            "type": "translation",
            "model": self._model,
            "expires_at": self._expires_at,
            "audio": {
                "input": {
                    "noise_reduction": self._noise_reduction,
                    "transcription": self._transcription,
                },
                "output": {"language": self._language},
            },
        }

    def _event(self, kind: str, **fields: Any) -> Event:
        return {"type": kind, "event_id": self._ids.event(), **fields}


def _frame_ms(ms: float) -> int:
    """``elapsed_ms`` advances in 200 ms translation frames (the SDK's docstrings)."""
    return int(math.floor(ms / 200) * 200)


def _transcription(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    obj = strict_object(value, "session.audio.input.transcription", frozenset({"model"}))
    if "model" not in obj:
        raise errors.missing_parameter("session.audio.input.transcription.model")
    return {"model": string_value(obj["model"], "session.audio.input.transcription.model")}


def _noise_reduction(value: Any, current: dict[str, Any] | None) -> dict[str, Any] | None:
    if value is None:
        return None
    param = "session.audio.input.noise_reduction"
    obj = strict_object(value, param, frozenset({"type", "strength"}))
    kind = obj.get("type")
    if kind not in _NOISE_TYPES:
        raise errors.invalid_value(
            f"{param}.type",
            f"Invalid value: {kind!r}. Supported values are: 'near_field' and 'far_field'.",
        )
    # "Defaults to 1 when noise reduction is first enabled. Omitting strength from a
    # session update preserves the current strength."
    strength = obj.get("strength", 1.0 if current is None else current["strength"])
    if isinstance(strength, bool) or not isinstance(strength, int | float):
        raise errors.invalid_type(f"{param}.strength", "a number", strength)
    return {"type": kind, "strength": float(strength)}
