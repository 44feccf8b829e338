"""The input audio buffer: how much audio is waiting, and where server VAD puts turns.

Only durations are kept, never the audio itself (nothing ever reads it back). Positions
are milliseconds of audio appended since the session began, the clock OpenAI uses for
``audio_start_ms``/``audio_end_ms``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from rtrelay.mock import _errors as errors
from rtrelay.mock._audio import AudioFormat, bytes_per_ms, decode, sample_rate
from rtrelay.mock._session_config import TurnDetection
from rtrelay.mock._vad import EnergyVad, SpeechStarted

__all__ = ["MIN_COMMIT_MS", "InputBuffer", "TurnEnded", "TurnStarted"]

MIN_COMMIT_MS: Final = 100  # less is input_audio_buffer_commit_empty (protocol.md §4)


@dataclass(frozen=True, slots=True)
class TurnStarted:
    """Server VAD heard speech; the turn's audio begins at ``audio_start_ms``."""

    audio_start_ms: int


@dataclass(frozen=True, slots=True)
class TurnEnded:
    """Server VAD ended the turn; its audio, now taken from the buffer, is ``audio_ms`` long."""

    audio_end_ms: int
    audio_ms: int


class InputBuffer:
    """Appended audio awaiting a commit, with server VAD when turn detection is on.

    Args:
        fmt: the session's input audio format.
        turn_detection: the session's turn detection; ``None`` for manual commits.
    """

    __slots__ = (
        "_carry",
        "_format",
        "_position_ms",
        "_start_ms",
        "_turn_detection",
        "_turn_start",
        "_vad",
    )

    def __init__(self, fmt: AudioFormat, turn_detection: TurnDetection | None) -> None:
        self._position_ms = 0.0
        self._start_ms = 0.0
        self._carry = b""  # a pcm16 sample split across two appends
        self._turn_start: int | None = None
        self._format = fmt
        self._turn_detection = turn_detection
        self._vad = self._make_vad()

    @property
    def buffered_ms(self) -> float:
        return self._position_ms - self._start_ms

    @property
    def position_ms(self) -> float:
        """Audio appended since the session began."""
        return self._position_ms

    def configure(self, fmt: AudioFormat, turn_detection: TurnDetection | None) -> None:
        """Apply new session settings; a turn in progress is forgotten."""
        self._format = fmt
        self._turn_detection = turn_detection
        self._carry = b""
        self._vad = self._make_vad()

    def append(self, audio: bytes) -> list[TurnStarted | TurnEnded]:
        """Add audio; return the turn boundaries it completes, in order."""
        self._position_ms += len(audio) / bytes_per_ms(self._format)
        if self._vad is None:
            return []
        data = self._carry + audio
        if self._format == "audio/pcm" and len(data) % 2:
            self._carry, data = data[-1:], data[:-1]
        else:
            self._carry = b""
        turns: list[TurnStarted | TurnEnded] = []
        for decision in self._vad.feed(decode(data, self._format)):
            if isinstance(decision, SpeechStarted):
                # Prefix padding never reaches back into audio already committed.
                start = max(decision.audio_start_ms, round(self._start_ms))
                self._turn_start = start
                turns.append(TurnStarted(start))
            elif self._turn_start is not None:
                end = decision.audio_end_ms
                turns.append(TurnEnded(end, end - self._turn_start))
                self._turn_start = None
                self._start_ms = end
        return turns

    def take_all(self) -> float:
        """Commit everything buffered (``input_audio_buffer.commit``); return its length.

        Raises:
            ProviderError: less than ``MIN_COMMIT_MS`` is buffered (nothing is taken).
        """
        taken = self.buffered_ms
        if taken < MIN_COMMIT_MS:
            raise errors.commit_empty(taken)
        self.clear()
        return taken

    def clear(self) -> None:
        """Drop everything buffered and any turn in progress."""
        self._start_ms = self._position_ms
        self._vad = self._make_vad()

    def _make_vad(self) -> EnergyVad | None:
        """A fresh detector from the current position: any turn in progress is dropped."""
        self._turn_start = None
        turn_detection = self._turn_detection
        if turn_detection is None:
            return None
        return EnergyVad(
            rate=sample_rate(self._format),
            threshold=turn_detection.threshold,
            prefix_padding_ms=turn_detection.prefix_padding_ms,
            silence_duration_ms=turn_detection.effective_silence_ms,
            origin_ms=self._position_ms,
        )
