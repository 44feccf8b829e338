"""The simulated provider's protocol logic: client events in, server events out.

Like ``websockets``' ``Protocol`` this does no I/O and reads no clock: the connection layer
feeds it frames and the current time, sends what it returns, and drives response
streaming by calling ``stream_step()`` at the pace it chooses.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, Literal

from rtrelay.mock import _errors as errors
from rtrelay.mock._audio import AudioFormat, from_pcm16, reply_audio
from rtrelay.mock._dialect import names_for
from rtrelay.mock._errors import ProviderError
from rtrelay.mock._ids import IdFactory
from rtrelay.mock._input_buffer import InputBuffer, TurnEnded, TurnStarted
from rtrelay.mock._items import Conversation, Item, decode_base64, not_found, parse_item
from rtrelay.mock._options import DEFAULT_AUDIO_CHUNK_MS, DEFAULT_REPLY_AUDIO_MS, Dialect
from rtrelay.mock._response import Event, ResponsePlan, ResponseStream, Step, reply_words
from rtrelay.mock._response_params import parse_response_params
from rtrelay.mock._session import Inbound, dispatch
from rtrelay.mock._session_config import SessionConfig, apply_update
from rtrelay.mock._transcript import transcription_events
from rtrelay.mock._usage import Segment, Tokens, cached_prefix, text_tokens

__all__ = ["SESSION_LIFETIME_S", "Inbound", "RealtimeProtocol", "Transport", "error_event"]

Transport = Literal["websocket", "webrtc"]

# GA sessions last at most 60 minutes (protocol.md §3); expires_at reflects that.
SESSION_LIFETIME_S: Final = 3600
_RATE_REQUESTS: Final = 5000
_RATE_TOKENS: Final = 40_000
_DEFAULT_RESERVED_TOKENS: Final = 4096


def error_event(error: ProviderError, ids: IdFactory, client_event_id: str | None = None) -> Event:
    """An ``error`` server event (protocol.md §4)."""
    return {"type": "error", "event_id": ids.event(), "error": error.payload(client_event_id)}


class RealtimeProtocol:
    """One Realtime session's state machine, GA or beta shaped.

    Args:
        model: the model the client asked for, reported in the session.
        dialect: ``"ga"`` or ``"beta"`` event names and shapes.
        now: Unix time at connect, for ``expires_at``.
        ids: where identifiers come from (inject a seeded one for reproducible tests).
        reply_audio_ms: length of each spoken reply.
        audio_chunk_ms: audio per ``response.output_audio.delta`` (per step over WebRTC).
        transport: ``"webrtc"`` sends no audio deltas (the audio rides the media track;
            ``Step.audio`` carries it) and accepts the WebRTC-only client event
            ``output_audio_buffer.clear``, which the transport acts on.
    """

    def __init__(
        self,
        *,
        model: str,
        dialect: Dialect,
        now: float,
        ids: IdFactory | None = None,
        reply_audio_ms: int = DEFAULT_REPLY_AUDIO_MS,
        audio_chunk_ms: int = DEFAULT_AUDIO_CHUNK_MS,
        transport: Transport = "websocket",
    ) -> None:
        self._ids = ids if ids is not None else IdFactory()
        self._transport: Transport = transport
        self._dialect: Dialect = dialect
        self._names = names_for(dialect)
        self._reply_audio_ms = reply_audio_ms
        self._chunk_ms = audio_chunk_ms
        self.config = SessionConfig(
            id=self._ids.session(), model=model, expires_at=int(now) + SESSION_LIFETIME_S
        )
        self._conversation = Conversation(self._ids.conversation())
        self._input = InputBuffer(self.config.input_format, self.config.turn_detection)
        self._turn_item: str | None = None  # the user item of the turn VAD is hearing
        # Responses.
        self._response: ResponseStream | None = None
        self._previous_context: list[Segment] = []
        self._assistant_audio = False
        self._responses_created = 0
        self._handlers: dict[str, Callable[[dict[str, Any]], list[Event]]] = {
            "session.update": self._session_update,
            "input_audio_buffer.append": self._append,
            "input_audio_buffer.commit": self._commit_manual,
            "input_audio_buffer.clear": self._clear,
            "conversation.item.create": self._item_create,
            "conversation.item.retrieve": self._item_retrieve,
            "conversation.item.truncate": self._item_truncate,
            "conversation.item.delete": self._item_delete,
            "response.create": self._response_create,
            "response.cancel": self._response_cancel,
        }
        if transport == "webrtc":
            # protocol.md §4: WebRTC/SIP only. Cutting the audio is the media track's job.
            self._handlers["output_audio_buffer.clear"] = self._no_reply

    # --- public surface ------------------------------------------------------------------

    @property
    def dialect(self) -> Dialect:
        return self._dialect

    @property
    def session_id(self) -> str:
        return self.config.id

    @property
    def response_active(self) -> bool:
        return self._response is not None

    @property
    def finished(self) -> bool:
        """Never: a Realtime session ends when a socket closes, not by an event."""
        return False

    @property
    def active_response_id(self) -> str | None:
        return None if self._response is None else self._response.id

    @property
    def active_audio_format(self) -> AudioFormat | None:
        """The format of the active response's audio (``Step.audio``), if one is active."""
        return None if self._response is None else self._response.audio_format

    @property
    def buffered_ms(self) -> float:
        """Audio appended and not yet committed or cleared."""
        return self._input.buffered_ms

    def connect(self) -> list[Event]:
        """The events sent unprompted right after the upgrade."""
        return [self._event("session.created", session=self.config.render(self._dialect))]

    def receive_text(self, data: str | bytes) -> Inbound:
        """Handle one text frame; never raises for anything a client can send."""
        return dispatch(data, self._handlers, self._error)

    def receive_audio(self, pcm16: bytes) -> list[Event]:
        """Input audio heard on a WebRTC media track, handled as if appended.

        Args:
            pcm16: 16-bit mono at 24 kHz (the track's audio, decoded and resampled);
                converted here to the session's input format, which the VAD reads.
        """
        return self._heard(from_pcm16(pcm16, self.config.input_format))

    def receive_binary(self) -> list[Event]:
        """Handle a binary frame: the API speaks JSON text only."""
        error = errors.invalid_event(
            "Binary frames are not supported: send each event as a JSON text frame."
        )
        return [error_event(error, self._ids)]

    def stream_step(self) -> Step:
        """Advance the active response by one step (see ``ResponseStream.step``)."""
        if self._response is None:
            return Step([], 0.0, True)
        step = self._response.step()
        if step.finished:
            self._finish_response()
        return step

    def playout_events(self, kind: str, response_id: str) -> list[Event]:
        """WebRTC's ``output_audio_buffer.started|stopped|cleared`` (protocol.md §4)."""
        return [self._event(kind, response_id=response_id)]

    def reflected(self) -> list[Event]:
        """None: a Realtime call's sidebands see exactly what its data channel sees."""
        return []

    def error(self, error: ProviderError) -> Event:
        """An ``error`` event for a condition the connection layer detected."""
        return error_event(error, self._ids)

    def _error(self, error: ProviderError, client_event_id: str | None) -> Event:
        return error_event(error, self._ids, client_event_id)

    # --- session -------------------------------------------------------------------------

    def _session_update(self, event: dict[str, Any]) -> list[Event]:
        if "session" not in event:
            raise errors.missing_parameter("session")
        before = self.config
        self.config = apply_update(
            before, event["session"], self._dialect, audio_produced=self._assistant_audio
        )
        if (
            self.config.turn_detection != before.turn_detection
            or self.config.input_format != before.input_format
        ):
            self._input.configure(self.config.input_format, self.config.turn_detection)
            self._turn_item = None
        return [self._event("session.updated", session=self.config.render(self._dialect))]

    # --- input audio ---------------------------------------------------------------------

    def _append(self, event: dict[str, Any]) -> list[Event]:
        if "audio" not in event:
            raise errors.missing_parameter("audio")
        return self._heard(decode_base64(event["audio"], "audio"))

    def _heard(self, audio: bytes) -> list[Event]:
        """Buffer input audio in the session's format; server VAD may end or start turns."""
        replies: list[Event] = []
        for turn in self._input.append(audio):
            if isinstance(turn, TurnStarted):
                replies += self._turn_started(turn)
            else:
                replies += self._turn_ended(turn)
        return replies

    def _turn_started(self, turn: TurnStarted) -> list[Event]:
        self._turn_item = item_id = self._ids.item()
        replies = [
            self._event(
                "input_audio_buffer.speech_started",
                audio_start_ms=turn.audio_start_ms,
                item_id=item_id,
            )
        ]
        td = self.config.turn_detection
        if self._response is not None and td is not None and td.interrupt_response:
            replies += self._cancel_response("turn_detected")
        return replies

    def _turn_ended(self, turn: TurnEnded) -> list[Event]:
        item_id = self._turn_item or self._ids.item()
        self._turn_item = None
        replies = [
            self._event(
                "input_audio_buffer.speech_stopped", audio_end_ms=turn.audio_end_ms, item_id=item_id
            )
        ]
        replies += self._commit(item_id, turn.audio_ms)
        td = self.config.turn_detection
        if td is not None and td.create_response and self._response is None:
            replies += self._start_response(None)
        return replies

    def _commit_manual(self, event: dict[str, Any]) -> list[Event]:
        audio_ms = self._input.take_all()
        item_id = self._turn_item or self._ids.item()
        self._turn_item = None
        return self._commit(item_id, audio_ms)

    def _clear(self, event: dict[str, Any]) -> list[Event]:
        self._input.clear()
        self._turn_item = None
        return [self._event("input_audio_buffer.cleared")]

    def _commit(self, item_id: str, audio_ms: float) -> list[Event]:
        item = Item(
            id=item_id,
            role="user",
            content=[{"type": "input_audio", "transcript": None}],
            audio_ms=audio_ms,
        )
        previous = self._conversation.insert(item)
        replies = [
            self._event("input_audio_buffer.committed", previous_item_id=previous, item_id=item_id)
        ]
        replies += self._item_added(item, previous)
        replies += self._transcribe(item)
        return replies

    def _transcribe(self, item: Item) -> list[Event]:
        settings = self.config.transcription
        if settings is None:
            return []
        replies, transcript = transcription_events(
            self._event, item.id, settings["model"], item.audio_ms
        )
        item.content[0]["transcript"] = transcript
        return replies

    # --- conversation items --------------------------------------------------------------

    def _item_added(self, item: Item, previous: str | None) -> list[Event]:
        rendered = item.render(self._dialect)
        names = self._names
        replies = [self._event(names.item_added, previous_item_id=previous, item=rendered)]
        if names.item_done is not None:
            replies.append(self._event(names.item_done, previous_item_id=previous, item=rendered))
        return replies

    def _item_create(self, event: dict[str, Any]) -> list[Event]:
        if "item" not in event:
            raise errors.missing_parameter("item")
        item = parse_item(event["item"], self._dialect, self._ids, self.config.input_format)
        after = event.get("previous_item_id")
        if after is not None and not isinstance(after, str):
            raise errors.invalid_type("previous_item_id", "a string", after)
        previous = self._conversation.insert(item, after)
        return self._item_added(item, previous)

    def _item_id(self, event: dict[str, Any]) -> tuple[str, Item]:
        item_id = event.get("item_id")
        if item_id is None:
            raise errors.missing_parameter("item_id")
        if not isinstance(item_id, str):
            raise errors.invalid_type("item_id", "a string", item_id)
        item = self._conversation.get(item_id)
        if item is None:
            raise not_found(item_id)
        return item_id, item

    def _item_retrieve(self, event: dict[str, Any]) -> list[Event]:
        _, item = self._item_id(event)
        return [self._event("conversation.item.retrieved", item=item.render(self._dialect))]

    def _item_delete(self, event: dict[str, Any]) -> list[Event]:
        item_id, _ = self._item_id(event)
        self._conversation.delete(item_id)
        return [self._event("conversation.item.deleted", item_id=item_id)]

    def _item_truncate(self, event: dict[str, Any]) -> list[Event]:
        item_id, item = self._item_id(event)
        content_index = event.get("content_index", 0)
        audio_end_ms = event.get("audio_end_ms")
        if audio_end_ms is None:
            raise errors.missing_parameter("audio_end_ms")
        if isinstance(audio_end_ms, bool) or not isinstance(audio_end_ms, int):
            raise errors.invalid_type("audio_end_ms", "an integer", audio_end_ms)
        if not isinstance(content_index, int) or content_index != 0:
            raise errors.invalid_value("content_index", "Only content_index 0 can be truncated.")
        audio_parts = [p for p in item.content if p["type"] == "output_audio"]
        if item.role != "assistant" or not audio_parts:
            raise errors.invalid_value(
                "item_id", "Only assistant messages with audio content can be truncated."
            )
        if self._response is not None and self._response.item is item:
            raise errors.invalid_value(
                "item_id", "Cannot truncate an item while its response is in progress."
            )
        if audio_end_ms < 0 or audio_end_ms > item.audio_ms:
            raise errors.invalid_value(
                "audio_end_ms",
                f"Audio content of {item.audio_ms:.0f}ms is already shorter than {audio_end_ms}ms.",
            )
        item.audio_ms = float(audio_end_ms)
        audio_parts[0]["transcript"] = ""  # OpenAI drops the transcript of truncated audio
        return [
            self._event(
                "conversation.item.truncated",
                item_id=item_id,
                content_index=0,
                audio_end_ms=audio_end_ms,
            )
        ]

    # --- responses -----------------------------------------------------------------------

    def _response_create(self, event: dict[str, Any]) -> list[Event]:
        return self._start_response(event.get("response"))

    def _response_cancel(self, event: dict[str, Any]) -> list[Event]:
        wanted = event.get("response_id")
        if self._response is None or (wanted is not None and wanted != self._response.id):
            raise errors.cancel_not_active()
        return self._cancel_response("client_cancelled")

    def _cancel_response(self, reason: str) -> list[Event]:
        assert self._response is not None
        replies = self._response.cancel(reason)
        self._finish_response()
        return replies

    def _finish_response(self) -> None:
        assert self._response is not None
        if self._response.audio_produced_ms > 0:
            self._assistant_audio = True
        self._response = None

    def _start_response(self, raw: Any) -> list[Event]:
        if self._response is not None:
            raise errors.active_response(self._response.id)
        params = parse_response_params(
            raw, self.config, self._dialect, self._conversation, self._ids
        )
        if params.input is not None:
            context = params.input
        else:
            context = list(self._conversation.items) if params.in_conversation else []
        instructions = params.instructions
        segments = [
            Segment("instructions\0" + instructions, Tokens(text=text_tokens(instructions)))
        ]
        segments += [Segment(f"item\0{item.id}", item.tokens()) for item in context]
        input_tokens = sum((segment.tokens for segment in segments), Tokens())
        cached = cached_prefix(self._previous_context, segments)
        self._previous_context = segments

        audio = params.modality == "audio"
        item = Item(id=self._ids.item(), role="assistant", status="in_progress")
        previous = self._conversation.insert(item) if params.in_conversation else None
        plan = ResponsePlan(
            response_id=self._ids.response(),
            item=item,
            conversation_id=self._conversation.id if params.in_conversation else None,
            previous_item_id=previous,
            modality=params.modality,
            words=reply_words(self._reply_audio_ms if audio else None),
            audio=reply_audio(self._reply_audio_ms, params.format) if audio else b"",
            audio_format=params.format,
            voice=params.voice,
            chunk_ms=self._chunk_ms,
            max_output_tokens=params.max_output_tokens,
            temperature=params.temperature,
            metadata=params.metadata,
            input_tokens=input_tokens,
            cached_tokens=cached,
            audio_deltas=self._transport == "websocket",
        )
        self._response = ResponseStream(plan, self._names, self._event)
        self._responses_created += 1
        limit = params.max_output_tokens
        reserved = limit if isinstance(limit, int) else _DEFAULT_RESERVED_TOKENS
        return self._response.opening(self._rate_limits(reserved))

    def _rate_limits(self, reserved: int) -> Event:
        return self._event(
            "rate_limits.updated",
            rate_limits=[
                {
                    "name": "requests",
                    "limit": _RATE_REQUESTS,
                    "remaining": max(0, _RATE_REQUESTS - self._responses_created),
                    "reset_seconds": round(0.012 * self._responses_created, 3),
                },
                {
                    "name": "tokens",
                    "limit": _RATE_TOKENS,
                    "remaining": _RATE_TOKENS - reserved,
                    "reset_seconds": round(reserved * 60 / _RATE_TOKENS, 3),
                },
            ],
        )

    # --- helpers -------------------------------------------------------------------------

    def _no_reply(self, event: dict[str, Any]) -> list[Event]:
        return []

    def _event(self, kind: str, **fields: Any) -> Event:
        return {"type": kind, "event_id": self._ids.event(), **fields}
