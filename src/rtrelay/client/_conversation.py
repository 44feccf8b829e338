"""The conversation as the events describe it: items, transcripts and audio per item.

A pure fold over server events (``Conversation.apply``), so it can be tested
without a socket and rebuilt from a recorded event log.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import dataclasses
from collections.abc import Callable
from typing import Any, Final

from ._events import canonical_type

__all__ = ["Conversation", "ConversationItem"]

PCM16_BYTES_PER_MS: Final = 48  # 24 kHz x 2 bytes (protocol.md §5)


@dataclasses.dataclass(slots=True, eq=False)
class ConversationItem:
    """One conversation item and what has streamed into it so far.

    ``transcript`` is the assistant's audio transcript or, for a user item, the
    input audio transcription; ``audio`` is the assistant's PCM16 at 24 kHz.
    """

    id: str
    type: str = "message"
    role: str | None = None
    status: str | None = None
    response_id: str | None = None
    text: str = ""
    transcript: str = ""
    audio: bytearray = dataclasses.field(default_factory=bytearray)
    raw: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def audio_ms(self) -> float:
        return len(self.audio) / PCM16_BYTES_PER_MS


class Conversation:
    """Items in conversation order, kept up to date from server events (GA or beta)."""

    def __init__(self) -> None:
        self._items: dict[str, ConversationItem] = {}
        self._order: list[str] = []
        self.session: dict[str, Any] | None = None
        self.responses: dict[str, dict[str, Any]] = {}

    @property
    def items(self) -> list[ConversationItem]:
        return [self._items[item_id] for item_id in self._order]

    def get(self, item_id: str) -> ConversationItem | None:
        return self._items.get(item_id)

    def items_of_response(self, response_id: str) -> list[ConversationItem]:
        return [item for item in self.items if item.response_id == response_id]

    def __len__(self) -> int:
        return len(self._order)

    def clear(self) -> None:
        self._items.clear()
        self._order.clear()
        self.responses.clear()

    def apply(self, event: dict[str, Any]) -> ConversationItem | None:
        """Fold one server event in; the item it touched, if any."""
        kind = canonical_type(str(event.get("type", "")))
        handler = _HANDLERS.get(kind)
        return handler(self, event) if handler is not None else None

    # -- per event ---------------------------------------------------------------------

    def _upsert(
        self,
        item: Any,
        previous_item_id: Any = None,
        response_id: str | None = None,
    ) -> ConversationItem | None:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            return None
        item_id = item["id"]
        current = self._items.get(item_id)
        if current is None:
            current = ConversationItem(id=item_id)
            self._items[item_id] = current
            if isinstance(previous_item_id, str) and previous_item_id in self._items:
                self._order.insert(self._order.index(previous_item_id) + 1, item_id)
            else:
                self._order.append(item_id)
        current.raw = item
        current.type = str(item.get("type", current.type))
        current.role = item.get("role", current.role)
        current.status = item.get("status", current.status)
        if response_id is not None:
            current.response_id = response_id
        for part in item.get("content") or ():
            if not isinstance(part, dict):
                continue
            # Completed items carry their final text; deltas may have been missed.
            if part.get("type") in ("output_text", "text") and part.get("text"):
                current.text = str(part["text"])
            if part.get("transcript") and (
                part.get("type") in ("output_audio", "audio", "input_audio")
            ):
                current.transcript = str(part["transcript"])
        return current

    def _item_for(self, event: dict[str, Any]) -> ConversationItem | None:
        item_id = event.get("item_id")
        if not isinstance(item_id, str):
            return None
        item = self._items.get(item_id)
        if item is None:  # a delta before its item event: keep it anyway
            item = ConversationItem(id=item_id, role="assistant")
            self._items[item_id] = item
            self._order.append(item_id)
        response_id = event.get("response_id")
        if isinstance(response_id, str):
            item.response_id = response_id
        return item

    def _on_session(self, event: dict[str, Any]) -> None:
        if isinstance(event.get("session"), dict):
            self.session = event["session"]

    def _on_item(self, event: dict[str, Any]) -> ConversationItem | None:
        return self._upsert(event.get("item"), event.get("previous_item_id"))

    def _on_output_item(self, event: dict[str, Any]) -> ConversationItem | None:
        response_id = event.get("response_id")
        return self._upsert(
            event.get("item"), None, response_id if isinstance(response_id, str) else None
        )

    def _on_deleted(self, event: dict[str, Any]) -> ConversationItem | None:
        item_id = event.get("item_id")
        if isinstance(item_id, str) and item_id in self._items:
            self._order.remove(item_id)
            return self._items.pop(item_id)
        return None

    def _on_truncated(self, event: dict[str, Any]) -> ConversationItem | None:
        item = self._items.get(str(event.get("item_id")))
        end_ms = event.get("audio_end_ms")
        if item is not None and isinstance(end_ms, int | float):
            del item.audio[int(end_ms) * PCM16_BYTES_PER_MS :]
            item.transcript = ""  # the server drops the transcript of truncated audio
        return item

    def _on_audio_delta(self, event: dict[str, Any]) -> ConversationItem | None:
        item = self._item_for(event)
        if item is not None:
            # A corrupt delta is skipped rather than allowed to break the view.
            with contextlib.suppress(binascii.Error):
                item.audio += base64.b64decode(str(event.get("delta", "")), validate=True)
        return item

    def _on_transcript_delta(self, event: dict[str, Any]) -> ConversationItem | None:
        item = self._item_for(event)
        if item is not None:
            item.transcript += str(event.get("delta", ""))
        return item

    def _on_transcript_done(self, event: dict[str, Any]) -> ConversationItem | None:
        item = self._item_for(event)
        if item is not None and isinstance(event.get("transcript"), str):
            item.transcript = event["transcript"]
        return item

    def _on_text_delta(self, event: dict[str, Any]) -> ConversationItem | None:
        item = self._item_for(event)
        if item is not None:
            item.text += str(event.get("delta", ""))
        return item

    def _on_text_done(self, event: dict[str, Any]) -> ConversationItem | None:
        item = self._item_for(event)
        if item is not None and isinstance(event.get("text"), str):
            item.text = event["text"]
        return item

    def _on_input_transcript_delta(self, event: dict[str, Any]) -> ConversationItem | None:
        item = self._items.get(str(event.get("item_id")))
        if item is not None:
            item.transcript += str(event.get("delta", ""))
        return item

    def _on_input_transcript_done(self, event: dict[str, Any]) -> ConversationItem | None:
        item = self._items.get(str(event.get("item_id")))
        if item is not None and isinstance(event.get("transcript"), str):
            item.transcript = event["transcript"]
        return item

    def _on_response(self, event: dict[str, Any]) -> ConversationItem | None:
        response = event.get("response")
        if isinstance(response, dict) and isinstance(response.get("id"), str):
            self.responses[response["id"]] = response
            for output in response.get("output") or ():
                if isinstance(output, dict) and output.get("id") in self._items:
                    item = self._items[output["id"]]
                    item.status = output.get("status", item.status)
                    item.response_id = response["id"]
        return None


def _session(conversation: Conversation, event: dict[str, Any]) -> None:
    conversation._on_session(event)


_Fold = Callable[[Conversation, dict[str, Any]], ConversationItem | None]

_HANDLERS: Final[dict[str, _Fold]] = {
    "session.created": _session,
    "session.updated": _session,
    "conversation.item.added": Conversation._on_item,
    "conversation.item.done": Conversation._on_item,
    "conversation.item.retrieved": Conversation._on_item,
    "conversation.item.deleted": Conversation._on_deleted,
    "conversation.item.truncated": Conversation._on_truncated,
    "response.output_item.added": Conversation._on_output_item,
    "response.output_item.done": Conversation._on_output_item,
    "response.output_audio.delta": Conversation._on_audio_delta,
    "response.output_audio_transcript.delta": Conversation._on_transcript_delta,
    "response.output_audio_transcript.done": Conversation._on_transcript_done,
    "response.output_text.delta": Conversation._on_text_delta,
    "response.output_text.done": Conversation._on_text_done,
    "conversation.item.input_audio_transcription.delta": (Conversation._on_input_transcript_delta),
    "conversation.item.input_audio_transcription.completed": (
        Conversation._on_input_transcript_done
    ),
    "response.created": Conversation._on_response,
    "response.done": Conversation._on_response,
}
