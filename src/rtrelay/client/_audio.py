"""PCM16 audio in and out of WAV files, and a linear resampler to the API's 24 kHz.

Pure Python on purpose: a terminal client should not need numpy. The Realtime
API's PCM format is 16-bit signed little-endian mono at 24 kHz (protocol.md §5).
"""

from __future__ import annotations

import array
import dataclasses
import sys
import wave
from pathlib import Path
from typing import BinaryIO, Final

__all__ = ["PCM16_RATE", "Pcm16", "read_wav", "resample_pcm16", "write_wav"]

PCM16_RATE: Final = 24_000


@dataclasses.dataclass(frozen=True, slots=True)
class Pcm16:
    """Mono 16-bit little-endian samples and their rate."""

    samples: bytes
    rate: int

    @property
    def seconds(self) -> float:
        return len(self.samples) / 2 / self.rate


def _to_array(pcm: bytes) -> array.array[int]:
    samples = array.array("h")
    samples.frombytes(pcm)
    if sys.byteorder == "big":
        samples.byteswap()
    return samples


def _to_bytes(samples: array.array[int]) -> bytes:
    if sys.byteorder == "big":
        samples = array.array("h", samples)
        samples.byteswap()
    return samples.tobytes()


def read_wav(source: str | Path | BinaryIO) -> Pcm16:
    """Read a 16-bit PCM WAV file as mono (channels are averaged).

    Raises:
        ValueError: not a WAV file, or not 16-bit PCM.
    """
    try:
        with wave.open(source if not isinstance(source, Path) else str(source), "rb") as wav:
            if wav.getsampwidth() != 2 or wav.getcomptype() != "NONE":
                raise ValueError("only 16-bit PCM WAV files are supported")
            channels = wav.getnchannels()
            rate = wav.getframerate()
            frames = wav.readframes(wav.getnframes())
    except (wave.Error, EOFError) as exc:
        raise ValueError(f"not a readable WAV file: {exc}") from exc
    if channels == 1:
        return Pcm16(frames, rate)
    interleaved = _to_array(frames)
    mono = array.array(
        "h",
        (
            sum(interleaved[i : i + channels]) // channels
            for i in range(0, len(interleaved) - channels + 1, channels)
        ),
    )
    return Pcm16(_to_bytes(mono), rate)


def write_wav(target: str | Path | BinaryIO, pcm16: bytes, rate: int = PCM16_RATE) -> None:
    """Write mono PCM16 samples as a WAV file."""
    with wave.open(target if not isinstance(target, Path) else str(target), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(pcm16)


def resample_pcm16(pcm16: bytes, from_rate: int, to_rate: int = PCM16_RATE) -> bytes:
    """Resample mono PCM16 by linear interpolation.

    Good enough for speech sent to a model (it is what the API itself expects
    callers to get right, not a mastering tool); no anti-alias filter.
    """
    if from_rate <= 0 or to_rate <= 0:
        raise ValueError("sample rates must be positive")
    if from_rate == to_rate or not pcm16:
        return pcm16
    source = _to_array(pcm16)
    count = len(source)
    out_count = max(1, round(count * to_rate / from_rate))
    step = from_rate / to_rate
    last = count - 1
    out = array.array("h", bytes(2 * out_count))
    for i in range(out_count):
        position = i * step
        left = int(position)
        if left >= last:
            out[i] = source[last]
            continue
        frac = position - left
        a = source[left]
        out[i] = round(a + (source[left + 1] - a) * frac)
    return _to_bytes(out)
