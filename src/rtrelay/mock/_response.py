"""One model response as a sequence of server events, produced a step at a time.

The sequence is protocol.md §4 "Typical sequences": response.created → rate_limits.updated
→ output_item.added → conversation.item.added → content_part.added → transcript/audio
deltas (one audio chunk per step) → the .done events → content_part.done →
output_item.done → conversation.item.done → response.done. The caller decides when each
step goes out; steps carry the audio duration they represent so it can pace them.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Literal

from rtrelay.mock._audio import AudioFormat, bytes_per_ms
from rtrelay.mock._dialect import Names
from rtrelay.mock._items import Item
from rtrelay.mock._session_config import format_beta, format_ga
from rtrelay.mock._usage import Tokens, Usage, assistant_audio_tokens, text_tokens

__all__ = ["TEXT_STEP_MS", "Event", "ResponsePlan", "ResponseStream", "Step", "reply_words"]

Event = dict[str, Any]
EventFactory = Callable[..., Event]

# Wall time one word of a text-only reply represents at realtime_pacing 1.0.
TEXT_STEP_MS: Final = 20
_TEXT_WORDS: Final = 12
_REPLY_TEXT: Final = (
    "Sure! This is the simulated realtime provider speaking. It answers every turn with a "
    "short synthetic reply, so that relays, gateways and clients can be tested end to end "
    "without a real model, a network connection or an account."
)
_REPLY: Final = tuple(_REPLY_TEXT.split())


def reply_words(audio_ms: int | None) -> tuple[str, ...]:
    """The reply's words: about three per second of audio, or a dozen for text."""
    count = _TEXT_WORDS if audio_ms is None else max(1, round(audio_ms / 330))
    return tuple(_REPLY[i % len(_REPLY)] for i in range(count))


@dataclass(frozen=True, slots=True, kw_only=True)
class ResponsePlan:
    """Everything one response will say, decided when it is created."""

    response_id: str
    item: Item
    conversation_id: str | None
    previous_item_id: str | None
    modality: Literal["audio", "text"]
    words: tuple[str, ...]
    audio: bytes
    audio_format: AudioFormat
    voice: Any
    chunk_ms: int
    max_output_tokens: int | Literal["inf"]
    temperature: float
    metadata: Any
    input_tokens: Tokens
    cached_tokens: Tokens
    # Over WebRTC the audio rides the media track, not ``response.output_audio.delta``
    # events (OpenAI's WebRTC guide: the data channel carries no audio deltas).
    audio_deltas: bool = True


@dataclass(frozen=True, slots=True)
class Step:
    """Events to send now, the audio they carry, and how much reply time they represent.

    ``audio`` is the step's raw chunk in the response's format, for a transport that
    plays it on a media track; a WebSocket sends it inside the events instead.
    """

    events: list[Event]
    duration_ms: float
    finished: bool
    audio: bytes = b""


class ResponseStream:
    """Produces one response's events; no I/O, no clock.

    Args:
        plan: what the response says.
        names: the dialect's event names.
        event: makes an event from a type and fields (adds the server ``event_id``).
    """

    __slots__ = (
        "_audio_chunks",
        "_audio_sent_ms",
        "_event",
        "_finished",
        "_names",
        "_plan",
        "_step",
        "_word_slices",
        "_words_sent",
    )

    def __init__(self, plan: ResponsePlan, names: Names, event: EventFactory) -> None:
        self._plan = plan
        self._names = names
        self._event = event
        self._step = 0
        self._audio_sent_ms = 0.0
        self._words_sent = 0
        self._finished = False
        if plan.modality == "audio":
            size = plan.chunk_ms * bytes_per_ms(plan.audio_format)
            self._audio_chunks = [
                plan.audio[i : i + size] for i in range(0, len(plan.audio), size)
            ] or [b""]
        else:
            self._audio_chunks = []
        steps = len(self._audio_chunks) or len(plan.words)
        count = len(plan.words)
        # Ceiling division: the transcript leads the audio, as a real model's does.
        self._word_slices = [
            (-(-i * count // steps), -(-(i + 1) * count // steps)) for i in range(steps)
        ]

    @property
    def id(self) -> str:
        return self._plan.response_id

    @property
    def item(self) -> Item:
        return self._plan.item

    @property
    def in_conversation(self) -> bool:
        return self._plan.conversation_id is not None

    @property
    def audio_format(self) -> AudioFormat:
        return self._plan.audio_format

    @property
    def audio_produced_ms(self) -> float:
        return self._audio_sent_ms

    def opening(self, rate_limits: Event) -> list[Event]:
        """The events that announce the response, up to ``content_part.added``."""
        plan, names = self._plan, self._names
        events = [
            self._event(
                "response.created", response=self._response("in_progress", None, None, None)
            ),
            rate_limits,
            self._event(
                "response.output_item.added",
                response_id=plan.response_id,
                output_index=0,
                item=plan.item.render(names.dialect),
            ),
        ]
        if self.in_conversation:
            events.append(
                self._event(
                    names.item_added,
                    previous_item_id=plan.previous_item_id,
                    item=plan.item.render(names.dialect),
                )
            )
        events.append(
            self._event(
                "response.content_part.added",
                **self._where(),
                part=self._part(""),
            )
        )
        return events

    def step(self) -> Step:
        """The next deltas, or the closing events once everything was sent."""
        if self._finished:
            raise RuntimeError("response already finished")
        if self._step >= len(self._word_slices):
            return Step(self._closing("completed", None), 0.0, True)
        index = self._step
        self._step += 1
        events: list[Event] = []
        start, stop = self._word_slices[index]
        if stop > start:
            text = " ".join(self._plan.words[start:stop])
            delta = text if start == 0 else " " + text
            kind = self._names.transcript_delta if self._audio_chunks else self._names.text_delta
            events.append(self._event(kind, **self._where(), delta=delta))
            self._words_sent = stop
        if not self._audio_chunks:
            return Step(events, TEXT_STEP_MS, False)
        chunk = self._audio_chunks[index]
        duration = len(chunk) / bytes_per_ms(self._plan.audio_format)
        if chunk and self._plan.audio_deltas:
            events.append(
                self._event(
                    self._names.audio_delta,
                    **self._where(),
                    delta=base64.b64encode(chunk).decode("ascii"),
                )
            )
        self._audio_sent_ms += duration
        return Step(events, duration, False, chunk)

    def cancel(self, reason: str) -> list[Event]:
        """Close the response now, keeping what was already sent; status ``cancelled``."""
        if self._finished:
            raise RuntimeError("response already finished")
        return self._closing("cancelled", {"type": "cancelled", "reason": reason})

    # --- internals -----------------------------------------------------------------------

    def _closing(self, status: str, details: dict[str, Any] | None) -> list[Event]:
        self._finished = True
        plan, names = self._plan, self._names
        text = " ".join(plan.words[: self._words_sent])
        audio = bool(self._audio_chunks)
        item = plan.item
        item.status = "completed" if status == "completed" else "incomplete"
        item.audio_ms = self._audio_sent_ms
        item.content = [self._part(text, internal=True)]
        where = self._where()
        events: list[Event] = []
        if audio:
            events.append(self._event(names.audio_done, **where))
            events.append(self._event(names.transcript_done, **where, transcript=text))
        else:
            events.append(self._event(names.text_done, **where, text=text))
        events.append(self._event("response.content_part.done", **where, part=self._part(text)))
        rendered = item.render(names.dialect)
        events.append(
            self._event(
                "response.output_item.done",
                response_id=plan.response_id,
                output_index=0,
                item=rendered,
            )
        )
        if self.in_conversation and names.item_done is not None:
            events.append(
                self._event(names.item_done, previous_item_id=plan.previous_item_id, item=rendered)
            )
        output = Tokens(
            text=text_tokens(text),
            audio=assistant_audio_tokens(self._audio_sent_ms) if audio else 0,
        )
        usage = Usage(input=plan.input_tokens, cached=plan.cached_tokens, output=output)
        events.append(
            self._event(
                "response.done",
                response=self._response(status, details, [rendered], usage.render(names.dialect)),
            )
        )
        return events

    def _where(self) -> dict[str, Any]:
        return {
            "response_id": self._plan.response_id,
            "item_id": self._plan.item.id,
            "output_index": 0,
            "content_index": 0,
        }

    def _part(self, text: str, *, internal: bool = False) -> dict[str, Any]:
        names = self._names
        if self._audio_chunks:
            kind = "output_audio" if internal else names.audio_part
            return {"type": kind, "transcript": text}
        kind = "output_text" if internal else names.text_part
        return {"type": kind, "text": text}

    def _response(
        self,
        status: str,
        details: dict[str, Any] | None,
        output: list[Any] | None,
        usage: dict[str, Any] | None,
    ) -> dict[str, Any]:
        plan = self._plan
        out: dict[str, Any] = {
            "object": "realtime.response",
            "id": plan.response_id,
            "status": status,
            "status_details": details,
            "output": output or [],
            "conversation_id": plan.conversation_id,
        }
        if self._names.dialect == "ga":
            out["output_modalities"] = [plan.modality]
            out["max_output_tokens"] = plan.max_output_tokens
            out["audio"] = {"output": {"format": format_ga(plan.audio_format), "voice": plan.voice}}
        else:
            out["modalities"] = ["text", "audio"] if plan.modality == "audio" else ["text"]
            out["voice"] = plan.voice
            out["output_audio_format"] = format_beta(plan.audio_format)
            out["temperature"] = plan.temperature
            out["max_output_tokens"] = plan.max_output_tokens
        out["usage"] = usage
        out["metadata"] = plan.metadata
        return out
