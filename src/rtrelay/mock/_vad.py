"""Server VAD by energy: speech starts and stops where the appended audio gets loud or quiet.

OpenAI's ``server_vad.threshold`` (0..1, default 0.5) is a detector probability; here it
maps linearly onto a level in dBFS, from -60 dBFS at 0 to -20 dBFS at 1 (so the default
asks for -40 dBFS, well under speech and well over digital silence). Levels are measured
as RMS over 20 ms windows; two loud windows in a row start speech, so a click does not.
"""

from __future__ import annotations

import math
from array import array
from dataclasses import dataclass
from typing import Final

from rtrelay.mock._audio import rms

__all__ = ["EnergyVad", "SpeechStarted", "SpeechStopped", "threshold_level"]

WINDOW_MS: Final = 20
_START_WINDOWS: Final = 2


def threshold_level(threshold: float) -> float:
    """The RMS level (0..1 of full scale) that counts as speech for a VAD ``threshold``."""
    return 10 ** ((-60.0 + 40.0 * threshold) / 20.0)


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    """Speech began; ``audio_start_ms`` already includes the prefix padding."""

    audio_start_ms: int


@dataclass(frozen=True, slots=True)
class SpeechStopped:
    """Silence lasted ``silence_duration_ms``; ``audio_end_ms`` is where that was decided."""

    audio_end_ms: int


class EnergyVad:
    """Turns linear samples into speech start/stop decisions; no I/O, no clock.

    Positions are milliseconds of audio fed since the VAD was created, which is how
    OpenAI reports ``audio_start_ms`` and ``audio_end_ms``.

    Args:
        rate: sample rate of the samples fed.
        threshold: OpenAI's 0..1 ``threshold``.
        prefix_padding_ms: audio kept before the first loud window.
        silence_duration_ms: quiet needed to end the turn.
        origin_ms: position of the first sample, when the VAD starts mid-session.
    """

    __slots__ = (
        "_in_speech",
        "_level",
        "_loud_run",
        "_pending",
        "_position",
        "_prefix",
        "_quiet_ms",
        "_silence",
        "_window",
    )

    def __init__(
        self,
        *,
        rate: int,
        threshold: float,
        prefix_padding_ms: int,
        silence_duration_ms: int,
        origin_ms: float = 0.0,
    ) -> None:
        self._window = rate * WINDOW_MS // 1000
        self._level = threshold_level(threshold)
        self._prefix = prefix_padding_ms
        self._silence = silence_duration_ms
        self._pending: array[int] = array("h")
        self._position = origin_ms  # ms, at the end of the last whole window
        self._in_speech = False
        self._loud_run = 0
        self._quiet_ms = 0

    @property
    def in_speech(self) -> bool:
        return self._in_speech

    def feed(self, samples: array[int]) -> list[SpeechStarted | SpeechStopped]:
        """Consume samples; return the decisions they complete, in order."""
        self._pending.extend(samples)
        decisions: list[SpeechStarted | SpeechStopped] = []
        size = self._window
        whole = len(self._pending) - len(self._pending) % size
        for offset in range(0, whole, size):
            loud = rms(self._pending[offset : offset + size]) >= self._level
            self._position += WINDOW_MS
            decision = self._step(loud)
            if decision is not None:
                decisions.append(decision)
        del self._pending[:whole]
        return decisions

    def _step(self, loud: bool) -> SpeechStarted | SpeechStopped | None:
        if not self._in_speech:
            self._loud_run = self._loud_run + 1 if loud else 0
            if self._loud_run < _START_WINDOWS:
                return None
            self._in_speech = True
            self._quiet_ms = 0
            first_loud = self._position - _START_WINDOWS * WINDOW_MS
            return SpeechStarted(max(0, math.floor(first_loud - self._prefix)))
        if loud:
            self._quiet_ms = 0
            return None
        self._quiet_ms += WINDOW_MS
        if self._quiet_ms < self._silence:
            return None
        self._in_speech = False
        self._loud_run = 0
        return SpeechStopped(math.floor(self._position))
