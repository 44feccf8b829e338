"""Audio the simulated provider hears and speaks: formats, G.711, levels, a synthetic voice.

Formats follow protocol.md §5: pcm16 is 16-bit signed little-endian mono at 24 kHz
(48 bytes per ms); G.711 μ-law/A-law is 8 kHz, one byte per sample (8 bytes per ms).
Pure Python on purpose: no numpy dependency, and these buffers are small.
"""

from __future__ import annotations

import functools
import math
import sys
from array import array
from typing import Final, Literal

__all__ = [
    "PCM16_RATE",
    "AudioFormat",
    "bytes_per_ms",
    "decode",
    "encode",
    "from_pcm16",
    "reply_audio",
    "resample_pcm16",
    "rms",
    "sample_rate",
    "silence_pcm16",
    "speech_pcm16",
    "to_pcm16",
]

AudioFormat = Literal["audio/pcm", "audio/pcmu", "audio/pcma"]

PCM16_RATE: Final = 24_000
G711_RATE: Final = 8_000
_BIG_ENDIAN: Final = sys.byteorder == "big"


def sample_rate(fmt: AudioFormat) -> int:
    return PCM16_RATE if fmt == "audio/pcm" else G711_RATE


def bytes_per_ms(fmt: AudioFormat) -> int:
    return 48 if fmt == "audio/pcm" else 8


# --- G.711 (ITU-T G.711; the classic Sun g711.c reference algorithm) -------------------

_ULAW_BIAS: Final = 0x84
_ULAW_CLIP: Final = 32635
_ALAW_SEG_END: Final = (0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF)


def _ulaw_to_linear(byte: int) -> int:
    u = ~byte & 0xFF
    exponent = (u >> 4) & 0x07
    sample = (((u & 0x0F) << 3) + _ULAW_BIAS) << exponent
    sample -= _ULAW_BIAS
    return -sample if u & 0x80 else sample


def _linear_to_ulaw(sample: int) -> int:
    sign = 0x80 if sample < 0 else 0
    magnitude = min(-sample if sample < 0 else sample, _ULAW_CLIP) + _ULAW_BIAS
    exponent = min(max(magnitude.bit_length() - 8, 0), 7)
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


def _alaw_to_linear(byte: int) -> int:
    a = byte ^ 0x55
    t = (a & 0x0F) << 4
    segment = (a & 0x70) >> 4
    if segment == 0:
        t += 8
    elif segment == 1:
        t += 0x108
    else:
        t = (t + 0x108) << (segment - 1)
    return t if a & 0x80 else -t


def _linear_to_alaw(sample: int) -> int:
    pcm = sample >> 3
    if pcm >= 0:
        mask = 0xD5
    else:
        mask = 0x55
        pcm = -pcm - 1
    segment = next((i for i, end in enumerate(_ALAW_SEG_END) if pcm <= end), 8)
    if segment >= 8:
        return 0x7F ^ mask
    value = segment << 4
    value |= (pcm >> 1) & 0x0F if segment < 2 else (pcm >> segment) & 0x0F
    return value ^ mask


_ULAW_TABLE: Final = array("h", (_ulaw_to_linear(b) for b in range(256)))
_ALAW_TABLE: Final = array("h", (_alaw_to_linear(b) for b in range(256)))


def decode(data: bytes, fmt: AudioFormat) -> array[int]:
    """Linear 16-bit samples from encoded audio; a trailing odd pcm16 byte is ignored."""
    if fmt == "audio/pcm":
        samples = array("h")
        samples.frombytes(data[: len(data) - len(data) % 2])
        if _BIG_ENDIAN:
            samples.byteswap()
        return samples
    table = _ULAW_TABLE if fmt == "audio/pcmu" else _ALAW_TABLE
    return array("h", (table[b] for b in data))


def encode(samples: array[int], fmt: AudioFormat) -> bytes:
    """Encoded audio from linear 16-bit samples at the format's own rate."""
    if fmt == "audio/pcm":
        if _BIG_ENDIAN:
            samples = array("h", samples)
            samples.byteswap()
        return samples.tobytes()
    convert = _linear_to_ulaw if fmt == "audio/pcmu" else _linear_to_alaw
    return bytes(convert(s) for s in samples)


def to_pcm16(data: bytes, fmt: AudioFormat) -> bytes:
    """``data`` as pcm16 at 24 kHz (what a WebRTC media track carries).

    G.711's 8 kHz samples are each repeated three times: a crude upsampling, enough for
    a synthetic voice that Opus re-encodes anyway.
    """
    if fmt == "audio/pcm":
        return data
    factor = PCM16_RATE // G711_RATE
    return encode(array("h", (s for s in decode(data, fmt) for _ in range(factor))), "audio/pcm")


def from_pcm16(pcm16: bytes, fmt: AudioFormat) -> bytes:
    """pcm16 at 24 kHz (a WebRTC track's audio) in ``fmt``.

    For G.711 every third sample is kept: no anti-aliasing filter, as only the VAD's
    energy measure reads this audio.
    """
    if fmt == "audio/pcm":
        return pcm16
    return encode(decode(pcm16, "audio/pcm")[:: PCM16_RATE // G711_RATE], fmt)


def resample_pcm16(pcm: bytes, src_rate: int, dst_rate: int) -> bytes:
    """pcm16 at ``src_rate`` as pcm16 at ``dst_rate``, by linear interpolation: enough for
    the VAD's energy measure and a synthetic voice (GPT-Live's 16 kHz WebSocket audio)."""
    if src_rate == dst_rate:
        return pcm
    samples = decode(pcm, "audio/pcm")
    count = len(samples) * dst_rate // src_rate
    step = src_rate / dst_rate
    last = len(samples) - 1
    out = array("h", bytes(2 * count))
    for i in range(count):
        position = i * step
        j = int(position)
        a, b = samples[j], samples[min(j + 1, last)]
        out[i] = int(a + (b - a) * (position - j))
    return encode(out, "audio/pcm")


def rms(samples: array[int]) -> float:
    """Root-mean-square level, 1.0 being a full-scale square wave."""
    if not samples:
        return 0.0
    return math.sqrt(sum(s * s for s in samples) / len(samples)) / 32768.0


# --- A synthetic voice -----------------------------------------------------------------


def _voice(duration_ms: int, rate: int, *, f0: float, amplitude: float) -> array[int]:
    """A voiced, speech-like signal: a vibrato harmonic tone under a syllable envelope.

    The envelope never falls to silence, so a VAD hears one continuous utterance.
    """
    count = rate * duration_ms // 1000
    fade = max(1, rate // 100)  # 10 ms ramps avoid clicks at the edges
    out = array("h", bytes(2 * count))
    phase = 0.0
    two_pi = 2.0 * math.pi
    for i in range(count):
        t = i / rate
        phase += two_pi * f0 * (1.0 + 0.04 * math.sin(two_pi * 5.0 * t)) / rate
        tone = (
            math.sin(phase)
            + math.sin(2 * phase) / 2
            + math.sin(3 * phase) / 3
            + math.sin(4 * phase) / 4
        ) / 1.9
        envelope = 0.6 + 0.4 * math.sin(two_pi * 3.0 * t)
        ramp = min(1.0, i / fade, (count - i) / fade)
        out[i] = int(32767 * amplitude * envelope * ramp * tone)
    return out


def speech_pcm16(duration_ms: int, *, amplitude: float = 0.3) -> bytes:
    """Speech-like pcm16 at 24 kHz, loud enough for the default server VAD to hear.

    Args:
        duration_ms: length of the utterance.
        amplitude: peak level, 0..1 of full scale.
    """
    return encode(_voice(duration_ms, PCM16_RATE, f0=140.0, amplitude=amplitude), "audio/pcm")


def silence_pcm16(duration_ms: int) -> bytes:
    """Digital silence as pcm16 at 24 kHz."""
    return bytes(bytes_per_ms("audio/pcm") * duration_ms)


@functools.lru_cache(maxsize=16)
def reply_audio(duration_ms: int, fmt: AudioFormat) -> bytes:
    """The assistant's voice, encoded in ``fmt``; cached because every reply reuses it."""
    return encode(_voice(duration_ms, sample_rate(fmt), f0=200.0, amplitude=0.25), fmt)
