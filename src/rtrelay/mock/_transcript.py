"""The transcription of one committed user turn, shared by Realtime and transcription sessions.

Event names and fields are the SDK's ``conversation.item.input_audio_transcription.*``
(protocol.md §4): word deltas, then ``.completed`` with the transcript and its ``usage``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rtrelay.mock._response import Event
from rtrelay.mock._speech import heard_words
from rtrelay.mock._usage import transcription_usage

__all__ = ["transcription_events"]

MakeEvent = Callable[..., Event]


def transcription_events(
    make_event: MakeEvent, item_id: str, model: str, audio_ms: float
) -> tuple[list[Event], str]:
    """The delta and completed events for ``audio_ms`` of speech, and the transcript."""
    words = heard_words(audio_ms)
    events = [
        make_event(
            "conversation.item.input_audio_transcription.delta",
            item_id=item_id,
            content_index=0,
            delta=word if index == 0 else " " + word,
        )
        for index, word in enumerate(words)
    ]
    transcript = " ".join(words)
    usage: dict[str, Any] = transcription_usage(model, audio_ms, transcript)
    events.append(
        make_event(
            "conversation.item.input_audio_transcription.completed",
            item_id=item_id,
            content_index=0,
            transcript=transcript,
            usage=usage,
        )
    )
    return events, transcript
