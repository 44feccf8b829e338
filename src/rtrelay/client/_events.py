"""Event names across API shapes: one canonical (GA) name for each beta name."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

__all__ = ["BETA_TO_GA", "WILDCARD", "canonical_type"]

WILDCARD: Final = "*"

BETA_TO_GA: Final[Mapping[str, str]] = {
    # protocol.md §1, "GA shape changes": renamed server events.
    "response.text.delta": "response.output_text.delta",
    "response.text.done": "response.output_text.done",
    "response.audio.delta": "response.output_audio.delta",
    "response.audio.done": "response.output_audio.done",
    "response.audio_transcript.delta": "response.output_audio_transcript.delta",
    "response.audio_transcript.done": "response.output_audio_transcript.done",
    # Beta's conversation.item.created became GA's conversation.item.added (+ .done).
    "conversation.item.created": "conversation.item.added",
    "transcription_session.created": "session.created",
    "transcription_session.updated": "session.updated",
}


def canonical_type(event_type: str) -> str:
    """The GA name of an event type; GA names and unknown names map to themselves."""
    return BETA_TO_GA.get(event_type, event_type)
