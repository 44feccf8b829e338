"""WAV in and out, and the linear resampler."""

from __future__ import annotations

import array
import io
import math
import wave

import pytest

from rtrelay.client import PCM16_RATE, read_wav, resample_pcm16, write_wav


def _tone(rate: int, ms: int, hz: float = 220.0) -> bytes:
    n = rate * ms // 1000
    return array.array(
        "h", (int(8000 * math.sin(2 * math.pi * hz * i / rate)) for i in range(n))
    ).tobytes()


def test_write_then_read_round_trips() -> None:
    pcm = _tone(PCM16_RATE, 100)
    buffer = io.BytesIO()
    write_wav(buffer, pcm)
    buffer.seek(0)
    with wave.open(buffer, "rb") as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, 24000)
    buffer.seek(0)
    audio = read_wav(buffer)
    assert (audio.samples, audio.rate) == (pcm, PCM16_RATE)
    assert audio.seconds == pytest.approx(0.1)


def test_stereo_is_averaged_to_mono(tmp_path) -> None:
    left, right = array.array("h", [100, 200, -300]), array.array("h", [300, 0, -100])
    frames = array.array("h", [s for pair in zip(left, right, strict=True) for s in pair])
    path = tmp_path / "stereo.wav"
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(2)
        wav.setsampwidth(2)
        wav.setframerate(16000)
        wav.writeframes(frames.tobytes())
    audio = read_wav(path)
    assert array.array("h", audio.samples).tolist() == [200, 100, -200]
    assert audio.rate == 16000


def test_non_pcm16_is_refused(tmp_path) -> None:
    path = tmp_path / "8bit.wav"
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(1)
        wav.setframerate(8000)
        wav.writeframes(b"\x80" * 10)
    with pytest.raises(ValueError, match="16-bit"):
        read_wav(path)
    (tmp_path / "junk.wav").write_bytes(b"not a wav")
    with pytest.raises(ValueError, match="WAV"):
        read_wav(tmp_path / "junk.wav")


@pytest.mark.parametrize("rate", [8000, 16000, 44100, 48000])
def test_resampling_keeps_duration_and_pitch(rate: int) -> None:
    out = resample_pcm16(_tone(rate, 200), rate)
    assert len(out) // 2 == pytest.approx(PCM16_RATE * 0.2, abs=1)
    # Same tone at the new rate, sample for sample (within interpolation error); the last
    # few samples lie past the final input sample and just hold it.
    expected = array.array("h", _tone(PCM16_RATE, 200))
    got = array.array("h", out)
    worst = max(abs(a - b) for a, b in zip(got[:-6], expected, strict=False))
    assert worst < 8000 * 0.05


def test_resampling_edge_cases() -> None:
    assert resample_pcm16(b"", 16000) == b""
    pcm = _tone(PCM16_RATE, 10)
    assert resample_pcm16(pcm, PCM16_RATE) is pcm
    assert len(resample_pcm16(b"\x01\x00", 8000)) == 6
    with pytest.raises(ValueError, match="positive"):
        resample_pcm16(pcm, 0)
