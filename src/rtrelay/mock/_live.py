"""A GPT-Live session's protocol logic (``/v1/live/sessions``): client events in, events out.

Sans-I/O like ``RealtimeProtocol``: the connection feeds frames, sends what comes back,
paces ``stream_step()`` and asks for ``usage_event()`` on its timer. Event names and
shapes are the SDK's ``openai/types/live/*`` (protocol.md §10):

- the first client event must be ``session.start`` (checked strictly, ``_live_config``),
  answered by ``session.started``; anything else first is an ``error``;
- ``session.input_audio.append`` feeds server VAD; each utterance it hears yields
  ``session.input_transcript.delta`` events and a spoken reply
  (``session.output_audio.delta`` + ``session.output_transcript.delta``), streamed in
  chunks the connection paces like a Realtime reply;
- ``session.usage.updated`` carries CUMULATIVE ``usage.seconds``. The simulator counts
  audio duration: input audio received plus output audio sent, both exact, so a test
  can predict the figure (``usage_seconds``) without reading a clock;
- ``response.create`` (Responses delegation only) answers with ``response.event``
  events wrapping a Responses API stream whose ``response.completed`` carries token usage;
  ``decision.create`` (Decisions delegation only) with a ``decision.event`` whose
  ``decision.completed`` Decision carries token usage (``_decisions``);
- ``session.update`` changes delegation and triggers only; ``session.close`` →
  ``session.closed`` (reason ``close_requested``, final usage), then the connection
  closes with 1000; a session ended otherwise (expiry, a WebRTC hang-up or a lost peer)
  still gets ``session.closed`` with its reason (``closed_events``);
- audio is pcm16 at 24 or 16 kHz or G.711 on a WebSocket (``audio.format``); over WebRTC
  (``_live_calls``) the creation request starts the session and the tracks carry audio.

Errors use the Live ``error`` shape: ``error.client_event_id`` (not the Realtime
``error.event_id``) and a top-level ``client_event_id`` when the client supplied one.
"""

from __future__ import annotations

import base64
import dataclasses
import math
from collections.abc import Callable
from typing import Any, Final

from rtrelay.mock import _errors as errors
from rtrelay.mock._audio import (
    PCM16_RATE,
    AudioFormat,
    bytes_per_ms,
    from_pcm16,
    resample_pcm16,
)
from rtrelay.mock._delegates import Delegates, parse_item
from rtrelay.mock._errors import ProviderError
from rtrelay.mock._ids import IdFactory
from rtrelay.mock._input_buffer import InputBuffer, TurnEnded
from rtrelay.mock._items import decode_base64
from rtrelay.mock._live_config import LiveConfig, apply_live_update, parse_live_start
from rtrelay.mock._options import DEFAULT_AUDIO_CHUNK_MS, DEFAULT_REPLY_AUDIO_MS
from rtrelay.mock._protocol import SESSION_LIFETIME_S, Transport
from rtrelay.mock._response import Event, Step
from rtrelay.mock._session import Inbound, client_event_id, dispatch
from rtrelay.mock._session_config import TurnDetection
from rtrelay.mock._speech import AudioEvent, SpeakingSession, SpeechOutput, heard_words

__all__ = ["LiveProtocol", "live_error_event"]

_REFLECT_INPUT_BYTES: Final = 100 * 48  # 100 ms of pcm16 at 24 kHz per reflected append
_DEFAULT_DECISIONS_MODEL: Final = "gpt-5.5-mini"  # a trigger's, without Decisions delegation


def live_error_event(
    error: ProviderError, ids: IdFactory, client_event_id: str | None = None
) -> Event:
    """An ``error`` event in the Live shape (``openai/types/live/error_event.py``)."""
    event: Event = {
        "type": "error",
        "event_id": ids.event(),
        "error": {
            "type": error.type,
            "code": error.code,
            "message": error.message,
            "param": error.param,
            "client_event_id": client_event_id,
        },
    }
    if client_event_id is not None:
        event["client_event_id"] = client_event_id
    return event


class LiveProtocol(SpeakingSession):
    """One GPT-Live session's state machine.

    Args:
        now: Unix time at connect, for ``expires_at`` and delegated responses' ``created_at``.
        ids: where identifiers come from.
        reply_audio_ms: length of each spoken reply.
        audio_chunk_ms: audio per ``session.output_audio.delta``.
        transport: ``"webrtc"`` sends no audio deltas (the media track carries the audio,
            ``Step.audio``) and takes no ``audio.format``.
        delegate_turns: the model delegates every turn it hears to the session's
            delegate (``session.delegation.created``; Responses and Decisions answer with
            billable ``response.event``/``decision.event``s no client event asked for).
        reflect_audio: over WebRTC, reflect the session's audio to its sidebands
            (``reflected()``): the caller's as ``session.input_audio.append`` (100 ms each,
            as heard, muted or not) and the model's as ``session.output_audio.delta`` with
            ``start_ms``/``end_ms``, both pcm16 at 24 kHz (``server_event.py``,
            ``output_audio_delta_event.py``).
    """

    def __init__(
        self,
        *,
        now: float,
        ids: IdFactory | None = None,
        reply_audio_ms: int = DEFAULT_REPLY_AUDIO_MS,
        audio_chunk_ms: int = DEFAULT_AUDIO_CHUNK_MS,
        transport: Transport = "websocket",
        delegate_turns: bool = False,
        reflect_audio: bool = False,
    ) -> None:
        self._ids = ids if ids is not None else IdFactory()
        self._delegate_turns = delegate_turns
        self._reflect = reflect_audio and transport == "webrtc"
        self._reflected: list[Event] = []
        self._reflect_input = bytearray()
        self._id = self._ids.session()
        self._now = int(now)
        self._reply_audio_ms = reply_audio_ms
        self._chunk_ms = audio_chunk_ms
        self._transport: Transport = transport
        self.config: LiveConfig | None = None
        # Made again for the format session.start asks for.
        self._input = InputBuffer("audio/pcm", TurnDetection())
        self._output = self._speech_output("audio/pcm")
        self._input_ms = 0.0
        self._muted = False
        self._heard: list[str] = []
        self._delegates = Delegates(self._ids, self._event, self._now, self._heard)
        self._decision_ids: set[str] = set()
        self._last_output_delta: Event | None = None
        self._finished = False
        self._handlers: dict[str, Callable[[Event], list[Event]]] = {
            "session.start": self._start,
            "session.update": self._update,
            "session.input_audio.append": self._append,
            "session.input_audio.mute": self._mute,
            "session.input_audio.unmute": self._unmute,
            "response.create": self._response_create,
            "decision.create": self._decision_create,
            "decision.item.create": self._decision_item_create,
            "decision.item.delete": self._decision_item_delete,
            "response.item.create": self._response_item_create,
            "session.instructions.append": self._context_append,
            "session.thinking.append": self._context_append,
            "session.commentary.append": self._context_append,
            "session.close": self._close,
        }

    # --- public surface ------------------------------------------------------------------

    @property
    def started(self) -> bool:
        return self.config is not None

    @property
    def model(self) -> str | None:
        return None if self.config is None else self.config.model

    @property
    def spoken_ms(self) -> float:
        """Output audio streamed so far (what a recording holds)."""
        return self._output.produced_ms

    @property
    def usage_seconds(self) -> float:
        """Cumulative audio duration: input received plus output sent, in seconds."""
        return round((self._input_ms + self._output.produced_ms) / 1000, 3)

    @property
    def active_audio_format(self) -> AudioFormat | None:
        if self.config is None or not self.response_active:
            return None
        return self.config.audio_format

    def connect(self) -> list[Event]:
        """Nothing on a WebSocket, whose client sends ``session.start``; a WebRTC session,
        started by its creation request, announces ``session.started`` on its data channel."""
        if self.config is None:
            return []
        return [self._event("session.started", None, session=self.config.render())]

    def stream_step(self) -> Step:
        """The next chunk of speech; an output transcript trigger fires as a reply ends."""
        step = self._output.step()
        if not step.finished or self._last_output_delta is None:
            return step
        fired = self._triggered(self._last_output_delta)
        self._last_output_delta = None
        return Step([*step.events, *fired], step.duration_ms, True, step.audio)

    def playout_events(self, kind: str, response_id: str) -> list[Event]:
        """None: Live has no ``output_audio_buffer.*`` events."""
        return []

    def reflected(self) -> list[Event]:
        events, self._reflected = self._reflected, []
        return events

    def receive_text(self, data: str | bytes) -> Inbound:
        """Handle one text frame; never raises for anything a client can send."""
        return dispatch(data, self._handlers, self._error, self._guard)

    def receive_audio(self, pcm16: bytes) -> list[Event]:
        """Input audio from a WebRTC media track (pcm16, 24 kHz), handled as if appended."""
        if self.config is None:
            return []
        if self._reflect:
            pending = self._reflect_input
            pending += pcm16
            while len(pending) >= _REFLECT_INPUT_BYTES:
                chunk = base64.b64encode(pending[:_REFLECT_INPUT_BYTES]).decode("ascii")
                del pending[:_REFLECT_INPUT_BYTES]
                self._reflected.append({"type": "session.input_audio.append", "audio": chunk})
        return self._heard_audio(from_pcm16(pcm16, self.config.audio_format))

    def usage_event(self, seconds: float | None = None) -> Event:
        """``session.usage.updated`` with the cumulative seconds (or ``seconds``: faults)."""
        value = self.usage_seconds if seconds is None else seconds
        return self._event("session.usage.updated", None, usage={"seconds": value})

    def _error(self, error: ProviderError, client_event_id: str | None) -> Event:
        return live_error_event(error, self._ids, client_event_id)

    def _guard(self, kind: str) -> None:
        if self._finished:
            raise errors.invalid_event("The session is closed.", param="type")
        if kind != "session.start" and self.config is None:
            raise errors.session_not_started()

    def start(self, session: Any, client_id: str | None = None) -> list[Event]:
        """Start the session (``session.start``, or a WebRTC session's creation request).

        Raises:
            ProviderError: the configuration is not acceptable.
        """
        if self.config is not None:
            raise errors.session_already_started()
        config = parse_live_start(
            session,
            session_id=self._id,
            expires_at=self._now + SESSION_LIFETIME_S,
            transport_format=self._transport == "websocket",
        )
        self._begin(config)
        return [self._event("session.started", client_id, session=config.render())]

    def fork(self, parent: LiveConfig, overrides: Any) -> None:
        """Start as a fork of a stored session: its configuration under this session's id,
        with ``overrides`` (``session_fork_params.py``: delegation settings, ``client``).

        Raises:
            ProviderError: the overrides are not acceptable.
        """
        if overrides is None:
            overrides = {}
        if not isinstance(overrides, dict):
            raise errors.invalid_type("session", "an object", overrides)
        if "audio" in overrides and self._transport == "webrtc":
            raise errors.unknown_parameter("session.audio")  # WebRTC forks must omit it
        client = overrides.get("client")
        update = {key: value for key, value in overrides.items() if key != "client"}
        config = apply_live_update(parent, update)
        if client is not None:
            if not isinstance(client, dict):
                raise errors.invalid_type("session.client", "an object", client)
            config = dataclasses.replace(config, client=client)
        expires_at = self._now + SESSION_LIFETIME_S
        self._begin(dataclasses.replace(config, id=self._id, expires_at=expires_at))

    def _begin(self, config: LiveConfig) -> None:
        self.config = config
        self._input = InputBuffer(config.audio_format, TurnDetection())
        self._output = self._speech_output(config.audio_format)

    # --- handlers ------------------------------------------------------------------------

    def _start(self, event: Event) -> list[Event]:
        if "session" not in event:
            raise errors.missing_parameter("session")
        return self.start(event["session"], client_event_id(event))

    def _update(self, event: Event) -> list[Event]:
        assert self.config is not None
        if "session" not in event:
            raise errors.missing_parameter("session")
        self.config = apply_live_update(self.config, event["session"])
        session = self.config.render()
        return [self._event("session.updated", client_event_id(event), session=session)]

    def _append(self, event: Event) -> list[Event]:
        if "audio" not in event:
            raise errors.missing_parameter("audio")
        audio = decode_base64(event["audio"], "audio")
        assert self.config is not None
        if self.config.audio_format == "audio/pcm":  # pcm at 16 kHz runs at 24 kHz inside
            audio = resample_pcm16(audio, self.config.rate, PCM16_RATE)
        return self._heard_audio(audio)

    def _mute(self, event: Event) -> list[Event]:
        self._muted = True
        return [self._event("session.input_audio.muted", client_event_id(event))]

    def _unmute(self, event: Event) -> list[Event]:
        self._muted = False
        return [self._event("session.input_audio.unmuted", client_event_id(event))]

    def _close(self, event: Event) -> list[Event]:
        return self._closed("close_requested", client_event_id(event))

    def closed_events(self, reason: str) -> list[Event]:
        """``session.closed`` for an end the client did not ask for (``expired``,
        ``connection_lost``...); nothing if the session never started."""
        return [] if self.config is None else self._closed(reason, None)

    def _closed(self, reason: str, client_id: str | None) -> list[Event]:
        assert self.config is not None
        self._output.clear()  # what was not spoken yet never will be
        self._finished = True
        return [
            self._event(
                "session.closed",
                client_id,
                reason=reason,
                session=self.config.render(),
                usage={"seconds": self.usage_seconds},
            )
        ]

    def _response_create(self, event: Event) -> list[Event]:
        """A Responses request the client asks for (Responses delegation only)."""
        delegation = self._require_delegation("response.create", "responses")
        response_id = self._ids.response()
        return self._delegates.responses(delegation, response_id, client_event_id(event), None)

    def _delegate(self, offset_ms: int) -> list[Event]:
        """The model hands the turn it heard to the session's delegate as a task
        (``delegate_turns``): ``session.delegation.created``, then, for Responses or
        Decisions delegation, the backend's billable answer tagged with the delegation."""
        assert self.config is not None
        delegation = self.config.delegation
        if not self._delegate_turns or delegation is None:
            return []
        target = delegation["type"]
        delegation_id = self._ids.new("deleg")
        response_id = self._ids.response() if target == "responses" else None
        created = self._event(
            "session.delegation.created",
            None,
            delegation={
                "id": delegation_id,
                "target": target,
                "type": "delegation",
                "response_id": response_id,
            },
            offset_ms=offset_ms,
        )
        if response_id is not None:
            answer = self._delegates.responses(delegation, response_id, None, delegation_id)
            return [created, *answer]
        if target == "decisions":
            config = delegation.get("decisions") or {}
            return [created, self._delegates.decision(config, None, delegation_id)]
        return [created]  # client delegation: the application does the task

    def _decision_create(self, event: Event) -> list[Event]:
        """Evaluate the Decisions delegation's questions now (``decision.event``)."""
        delegation = self._require_delegation("decision.create", "decisions")
        event_id = client_event_id(event)
        if event_id is None:
            raise errors.missing_parameter("event_id")
        if event_id in self._decision_ids:  # "Reusing an event_id is rejected"
            raise errors.invalid_value("event_id", f"The event_id '{event_id}' was already used.")
        self._decision_ids.add(event_id)
        return [self._delegates.decision(delegation.get("decisions") or {}, None, None)]

    def _triggered(self, source: Event) -> list[Event]:
        """The Decision a trigger on ``source``'s event type fires, once per utterance
        (on its last transcript delta), with the delegation's Decisions model if any."""
        assert self.config is not None
        trigger = self.config.trigger(source["type"])
        if trigger is None:
            return []
        delegation = self.config.delegation or {}
        model = (delegation.get("decisions") or {}).get("model", _DEFAULT_DECISIONS_MODEL)
        questions = trigger["decisions"]["questions"]
        config = {"model": model, "questions": questions}
        return [self._delegates.decision(config, source, None)]

    def _response_item_create(self, event: Event) -> list[Event]:
        """An input item for the next Responses request (a tool result, say); no reply."""
        self._require_delegation("response.item.create", "responses")
        self._delegates.response_items.append(parse_item(event))
        return []

    def _decision_item_create(self, event: Event) -> list[Event]:
        """An input item for later Decisions: stored with an id, ``decision.item.created``."""
        self._require_delegation("decision.item.create", "decisions")
        item = parse_item(event)
        item = {**item, "id": item.get("id") or self._ids.item()}
        self._delegates.decision_items[str(item["id"])] = item
        return [self._event("decision.item.created", client_event_id(event), item=item)]

    def _decision_item_delete(self, event: Event) -> list[Event]:
        self._require_delegation("decision.item.delete", "decisions")
        item_id = event.get("item_id")
        if item_id is None:
            raise errors.missing_parameter("item_id")
        if not isinstance(item_id, str):
            raise errors.invalid_type("item_id", "a string", item_id)
        if self._delegates.decision_items.pop(item_id, None) is None:
            raise errors.invalid_value("item_id", f"Item with id '{item_id}' not found.")
        return [self._event("decision.item.deleted", client_event_id(event), item_id=item_id)]

    def _require_delegation(self, event: str, delegation: str) -> dict[str, Any]:
        """The session's delegation, which ``event`` needs to be of type ``delegation``."""
        assert self.config is not None
        if self.config.delegation is None or self.config.delegation_type != delegation:
            raise errors.delegation_required(event, delegation)
        return self.config.delegation

    def _context_append(self, event: Event) -> list[Event]:
        """``session.instructions|thinking|commentary.append``: text added to the model's
        context now, acknowledged with ``….appended`` at the session's current time."""
        content = event.get("content")
        if content is None:
            raise errors.missing_parameter("content")
        if not isinstance(content, str):
            raise errors.invalid_type("content", "a string", content)
        kind = str(event["type"]).removesuffix(".append") + ".appended"
        now = math.floor(self._input_ms)
        return [self._event(kind, client_event_id(event), start_ms=now, end_ms=now)]

    # --- audio ---------------------------------------------------------------------------

    def _heard_audio(self, audio: bytes) -> list[Event]:
        assert self.config is not None
        # Muted audio still counts as session audio, but no one hears it.
        self._input_ms += len(audio) / bytes_per_ms(self.config.audio_format)
        turns = [] if self._muted else self._input.append(audio)
        replies: list[Event] = []
        for turn in turns:
            if isinstance(turn, TurnEnded):
                replies += self._turn_ended(turn)
        return replies

    def _turn_ended(self, turn: TurnEnded) -> list[Event]:
        words = heard_words(turn.audio_ms)
        self._heard += words
        start = turn.audio_end_ms - turn.audio_ms
        span = turn.audio_ms / len(words)
        replies = [
            self._event(
                "session.input_transcript.delta",
                None,
                delta=word if index == 0 else " " + word,
                start_ms=math.floor(start + index * span),
                end_ms=math.floor(start + (index + 1) * span),
            )
            for index, word in enumerate(words)
        ]
        replies += self._triggered(replies[-1])
        replies += self._delegate(turn.audio_end_ms)
        self._output.say(self._ids.item(), self._reply_audio_ms, turn.audio_end_ms)
        return replies

    # --- helpers -------------------------------------------------------------------------

    def _speech_output(self, fmt: AudioFormat) -> SpeechOutput:
        # Over WebRTC the media track carries the audio: no audio delta events (but
        # reflected ones for the sidebands, if asked for).
        audio_event: AudioEvent | None = None
        if self._transport == "websocket":
            audio_event = self._audio_delta
        elif self._reflect:
            audio_event = self._reflect_output
        return SpeechOutput(fmt, self._chunk_ms, audio_event, self._output_transcript)

    def _reflect_output(self, chunk: bytes, start_ms: int, end_ms: int) -> None:
        delta = base64.b64encode(chunk).decode("ascii")
        reflected = {"type": "session.output_audio.delta", "delta": delta}
        self._reflected.append({**reflected, "start_ms": start_ms, "end_ms": end_ms})

    def _audio_delta(self, chunk: bytes, start_ms: int, end_ms: int) -> Event:
        # Primary WebSocket deltas carry no timestamps (output_audio_delta_event.py).
        config = self.config
        if config is not None and config.audio_format == "audio/pcm":
            chunk = resample_pcm16(chunk, PCM16_RATE, config.rate)  # pcm runs at 24 kHz inside
        delta = base64.b64encode(chunk).decode("ascii")
        return self._event("session.output_audio.delta", None, delta=delta)

    def _output_transcript(self, text: str, start_ms: int, end_ms: int) -> Event:
        event = self._event(
            "session.output_transcript.delta", None, delta=text, start_ms=start_ms, end_ms=end_ms
        )
        self._last_output_delta = event
        return event

    def _event(self, kind: str, client_event_id: str | None, **fields: Any) -> Event:
        event: Event = {"type": kind, "event_id": self._ids.event(), **fields}
        if client_event_id is not None:
            event["client_event_id"] = client_event_id
        return event


class UsageTicker:
    """The Live usage timer's events, with the usage faults applied.

    ``reorder_usage`` sends, once, the previous cumulative value again right after a
    larger one (with a new event id): what a relay sees when updates arrive out of order.
    ``repeat_usage`` is the connection's (the same frame twice); ``no_usage_events``
    means no ticker at all.
    """

    __slots__ = ("_previous", "_protocol", "_reorder")

    def __init__(self, protocol: LiveProtocol, *, reorder: bool) -> None:
        self._protocol = protocol
        self._reorder = reorder
        self._previous: float | None = None

    def tick(self) -> list[Event]:
        if not self._protocol.started:
            return []
        event = self._protocol.usage_event()
        events = [event]
        seconds = event["usage"]["seconds"]
        previous, self._previous = self._previous, seconds
        if self._reorder and previous is not None and previous < seconds:
            self._reorder = False
            events.append(self._protocol.usage_event(previous))
        return events
