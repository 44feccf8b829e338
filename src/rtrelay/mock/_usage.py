"""Token accounting that a ledger can check against the audio and text actually exchanged.

Rates from protocol.md §5 (OpenAI's realtime-costs guide): user audio is 1 token per
100 ms, assistant audio 1 token per 50 ms. Text is approximated as ceil(characters / 4).
Partial units round up. Cached tokens are the prefix of this response's context that the
previous response already processed (a subset of input tokens, as in §4).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from rtrelay.mock._options import Dialect

__all__ = [
    "DURATION_TRANSCRIBERS",
    "Segment",
    "Tokens",
    "Usage",
    "assistant_audio_tokens",
    "cached_prefix",
    "text_tokens",
    "transcription_usage",
    "user_audio_tokens",
]


def text_tokens(text: str) -> int:
    return math.ceil(len(text) / 4)


def user_audio_tokens(ms: float) -> int:
    return math.ceil(ms / 100 - 1e-9)


def assistant_audio_tokens(ms: float) -> int:
    return math.ceil(ms / 50 - 1e-9)


@dataclass(frozen=True, slots=True)
class Tokens:
    text: int = 0
    audio: int = 0

    def __add__(self, other: Tokens) -> Tokens:
        return Tokens(self.text + other.text, self.audio + other.audio)

    @property
    def total(self) -> int:
        return self.text + self.audio


@dataclass(frozen=True, slots=True)
class Segment:
    """One piece of a response's input context; ``key`` identifies it across responses."""

    key: str
    tokens: Tokens


def cached_prefix(previous: Sequence[Segment], current: Sequence[Segment]) -> Tokens:
    """Tokens of the leading segments ``current`` shares with ``previous``."""
    cached = Tokens()
    for before, now in zip(previous, current, strict=False):
        if before != now:
            break
        cached += now.tokens
    return cached


@dataclass(frozen=True, slots=True)
class Usage:
    """``response.usage`` of one response."""

    input: Tokens
    cached: Tokens
    output: Tokens

    def render(self, dialect: Dialect) -> dict[str, Any]:
        ga = dialect == "ga"
        input_details: dict[str, Any] = {
            "text_tokens": self.input.text,
            "audio_tokens": self.input.audio,
        }
        cached_details: dict[str, Any] = {
            "text_tokens": self.cached.text,
            "audio_tokens": self.cached.audio,
        }
        if ga:
            input_details["image_tokens"] = 0
            cached_details["image_tokens"] = 0
        input_details["cached_tokens"] = self.cached.total
        input_details["cached_tokens_details"] = cached_details
        return {
            "total_tokens": self.input.total + self.output.total,
            "input_tokens": self.input.total,
            "output_tokens": self.output.total,
            "input_token_details": input_details,
            "output_token_details": {
                "text_tokens": self.output.text,
                "audio_tokens": self.output.audio,
            },
        }


# Transcription models OpenAI prices by audio duration (per minute on their model pages);
# their completed events report ``{"type": "duration", "seconds"}``, the others tokens.
DURATION_TRANSCRIBERS: Final = frozenset(
    {"whisper-1", "gpt-realtime-whisper", "gpt-live-transcribe"}
)


def transcription_usage(model: str, audio_ms: float, transcript: str) -> dict[str, Any]:
    """``usage`` of a transcription: seconds for duration-priced models, else tokens.

    Shapes: the SDK's ``ConversationItemInputAudioTranscriptionCompletedEvent.usage``.
    """
    if model in DURATION_TRANSCRIBERS:
        return {"type": "duration", "seconds": round(audio_ms / 1000, 3)}
    audio = user_audio_tokens(audio_ms)
    output = text_tokens(transcript)
    return {
        "type": "tokens",
        "total_tokens": audio + output,
        "input_tokens": audio,
        "input_token_details": {"text_tokens": 0, "audio_tokens": audio},
        "output_tokens": output,
    }
