"""Audio formats, the synthetic voice and the energy VAD."""

from __future__ import annotations

from array import array

import pytest

from rtrelay.mock import silence_pcm16, speech_pcm16
from rtrelay.mock._audio import decode, encode, reply_audio, rms
from rtrelay.mock._vad import EnergyVad, SpeechStarted, SpeechStopped, threshold_level


def vad(**overrides: float) -> EnergyVad:
    settings = {"threshold": 0.5, "prefix_padding_ms": 300, "silence_duration_ms": 200}
    settings.update(overrides)
    return EnergyVad(rate=24000, **settings)  # type: ignore[arg-type]


def test_speech_is_pcm16_at_24khz_and_clearly_above_the_default_threshold() -> None:
    pcm = speech_pcm16(1000)
    assert len(pcm) == 48_000
    level = rms(decode(pcm, "audio/pcm"))
    assert level > 5 * threshold_level(0.5)  # about 19 dB of margin
    assert rms(decode(silence_pcm16(100), "audio/pcm")) == 0.0


@pytest.mark.parametrize("fmt", ["audio/pcmu", "audio/pcma"])
def test_g711_round_trip_keeps_the_signal(fmt: str) -> None:
    samples = decode(speech_pcm16(200), "audio/pcm")[::3]  # 24 kHz -> 8 kHz
    back = decode(encode(samples, fmt), fmt)  # type: ignore[arg-type]
    assert len(back) == len(samples)
    # G.711 is logarithmic: the error stays within a few percent of full scale.
    assert max(abs(a - b) for a, b in zip(samples, back, strict=True)) < 1100
    assert rms(back) == pytest.approx(rms(samples), rel=0.02)


def test_reply_audio_has_the_requested_length_in_each_format() -> None:
    assert len(reply_audio(500, "audio/pcm")) == 500 * 48
    assert len(reply_audio(500, "audio/pcmu")) == 500 * 8
    assert rms(decode(reply_audio(500, "audio/pcma"), "audio/pcma")) > threshold_level(0.5)


def test_vad_reports_start_with_prefix_padding_and_stop_after_silence() -> None:
    detector = vad()
    decisions = detector.feed(decode(silence_pcm16(1000) + speech_pcm16(500), "audio/pcm"))
    assert decisions == [SpeechStarted(700)]  # speech at 1000 ms, minus 300 ms padding
    assert detector.in_speech
    decisions = detector.feed(decode(silence_pcm16(400), "audio/pcm"))
    assert decisions == [SpeechStopped(1700)]  # speech ended at 1500 ms, 200 ms of silence


def test_vad_ignores_a_click_shorter_than_two_windows() -> None:
    detector = vad()
    click = decode(silence_pcm16(100) + speech_pcm16(20) + silence_pcm16(500), "audio/pcm")
    assert detector.feed(click) == []


def test_vad_threshold_one_ignores_quiet_speech() -> None:
    quiet = decode(speech_pcm16(500, amplitude=0.1) + silence_pcm16(300), "audio/pcm")
    assert vad(threshold=1.0).feed(quiet) == []
    assert len(vad(threshold=0.5).feed(array("h", quiet))) == 2


def test_vad_decisions_do_not_depend_on_how_audio_is_split() -> None:
    pcm = decode(silence_pcm16(300) + speech_pcm16(700) + silence_pcm16(500), "audio/pcm")
    whole = vad().feed(pcm)
    split = vad()
    pieces = []
    for start in range(0, len(pcm), 1000):  # 41.7 ms pieces, not window-aligned
        pieces += split.feed(pcm[start : start + 1000])
    assert pieces == whole
    assert len(whole) == 2


def test_input_buffer_takes_each_turn_and_forgets_a_cleared_one() -> None:
    from rtrelay.mock._input_buffer import InputBuffer, TurnEnded, TurnStarted
    from rtrelay.mock._session_config import TurnDetection

    buffer = InputBuffer("audio/pcm", TurnDetection())
    turns = buffer.append(silence_pcm16(500) + speech_pcm16(600) + silence_pcm16(300))
    assert turns == [TurnStarted(200), TurnEnded(1300, 1100)]
    assert buffer.buffered_ms == pytest.approx(100)  # audio after the turn stays
    assert buffer.append(speech_pcm16(300)) == [TurnStarted(1300)]  # padding stops at the commit
    buffer.clear()
    assert buffer.buffered_ms == 0
    assert buffer.append(silence_pcm16(500)) == []  # the cleared turn never ends
    assert buffer.take_all() == pytest.approx(500)
