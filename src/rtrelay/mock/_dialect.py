"""Event names and part types that differ between the GA and beta shapes (protocol.md §1)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from rtrelay.mock._options import Dialect

__all__ = ["BETA", "GA", "Names", "names_for"]


@dataclass(frozen=True, slots=True)
class Names:
    """The spelling of one dialect; ``item_done`` is ``None`` where beta has no such event."""

    dialect: Dialect
    item_added: str
    item_done: str | None
    text_delta: str
    text_done: str
    audio_delta: str
    audio_done: str
    transcript_delta: str
    transcript_done: str
    text_part: str
    audio_part: str


GA: Final = Names(
    dialect="ga",
    item_added="conversation.item.added",
    item_done="conversation.item.done",
    text_delta="response.output_text.delta",
    text_done="response.output_text.done",
    audio_delta="response.output_audio.delta",
    audio_done="response.output_audio.done",
    transcript_delta="response.output_audio_transcript.delta",
    transcript_done="response.output_audio_transcript.done",
    text_part="output_text",
    audio_part="output_audio",
)

BETA: Final = Names(
    dialect="beta",
    item_added="conversation.item.created",
    item_done=None,
    text_delta="response.text.delta",
    text_done="response.text.done",
    audio_delta="response.audio.delta",
    audio_done="response.audio.done",
    transcript_delta="response.audio_transcript.delta",
    transcript_done="response.audio_transcript.done",
    text_part="text",
    audio_part="audio",
)


def names_for(dialect: Dialect) -> Names:
    return GA if dialect == "ga" else BETA
