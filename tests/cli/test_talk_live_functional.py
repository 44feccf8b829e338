"""``rtrelay talk --live``: a GPT-Live turn from a WAV file through the real relay and the
simulated provider (its reply audio, both transcripts, the billed seconds)."""

from __future__ import annotations

import asyncio
import io
import sqlite3
import wave
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from rtrelay.cli.main import build_parser
from rtrelay.cli.talk import talk
from rtrelay.client import write_wav
from rtrelay.ledger.keys import KeySpec
from rtrelay.mock import MockOptions, MockProvider, silence_pcm16, speech_pcm16
from support import RunningRelay, mock_channel_settings, running_relay

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def provider() -> AsyncIterator[MockProvider]:
    async with MockProvider(MockOptions(realtime_pacing=0, live_usage_interval=0.3)) as p:
        yield p


@pytest.fixture
async def relay(provider: MockProvider) -> AsyncIterator[RunningRelay]:
    settings = mock_channel_settings(provider.url, models=("gpt-realtime", "gpt-live-1"))
    async with running_relay(settings) as relay:
        yield relay


def speech_wav(path: Path) -> None:
    write_wav(path, silence_pcm16(300) + speech_pcm16(1200), 24_000)


def billed_seconds(relay: RunningRelay) -> Decimal:
    """The seconds in the ledger's usage rows (SQLite keeps decimals as integers of 1e-10)."""
    path = relay.relay.settings.store.url.split(":///", 1)[1]
    with sqlite3.connect(path) as db:
        [(total,)] = db.execute(
            "SELECT COALESCE(SUM(seconds), 0) FROM rtrelay_usage WHERE unit = 'seconds'"
        ).fetchall()
    return Decimal(total).scaleb(-10)


async def test_a_live_turn_from_a_wav_file(
    relay: RunningRelay, provider: MockProvider, tmp_path: Path
) -> None:
    _, key = await relay.relay.parts.store.create_key(KeySpec(name="talk"))
    source, reply = tmp_path / "in.wav", tmp_path / "reply.wav"
    speech_wav(source)
    argv = ["--wav", str(source), "--out", str(reply), "--voice", "cedar"]
    argv += ["--instructions", "Be brief."]
    args = build_parser().parse_args(["talk", "--live", relay.ws_url + "/v1", *argv])
    out, err = io.StringIO(), io.StringIO()
    code = await talk(args, api_key=key, stdout=out, stderr=err)
    log = err.getvalue()
    assert code == 0, log
    assert out.getvalue().strip()  # the reply's transcript
    assert "heard: " in log  # the input transcript
    assert "\rreceiving audio:" in log
    with wave.open(str(reply), "rb") as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, 24_000)
        assert wav.getnframes() == 24_000  # the simulated provider's 1000 ms reply
    # session.start as talk sent it, the audio paced after it, session.close last.
    events = provider.events_received
    assert events[0] == {
        "type": "session.start",
        "session": {
            "model": "gpt-live-1",
            "audio": {
                "format": {"type": "audio/pcm", "rate": 24_000},
                "output": {"voice": "cedar"},
            },
            "instructions": "Be brief.",
        },
    }
    assert {e["type"] for e in events[1:-1]} == {"session.input_audio.append"}
    assert events[-1]["type"] == "session.close"
    # The seconds shown are the provider's final cumulative figure: 1.5 s of file and 1 s
    # of trailing silence heard, 1 s of reply spoken; the relay billed the same.
    [usage_line] = [line for line in log.splitlines() if line.startswith("usage: ")]
    assert usage_line.startswith("usage: 3.5 s of audio")
    async with asyncio.timeout(10):  # the relay may end its session after talk has returned
        while relay.relay.sessions:
            await asyncio.sleep(0.02)
    await relay.relay.parts.writer.flush()
    assert billed_seconds(relay) == Decimal("3.5")


async def test_a_refused_live_model_is_reported(relay: RunningRelay, tmp_path: Path) -> None:
    _, key = await relay.relay.parts.store.create_key(
        KeySpec(name="talk", models=("gpt-realtime",))
    )
    source = tmp_path / "in.wav"
    speech_wav(source)
    args = build_parser().parse_args(["talk", "--live", relay.ws_url + "/v1", "--wav", str(source)])
    out, err = io.StringIO(), io.StringIO()
    assert await talk(args, api_key=key, stdout=out, stderr=err) == 1
    assert "model_not_allowed" in err.getvalue()
    assert "did not start" in err.getvalue()
    assert key not in err.getvalue() + out.getvalue()


async def test_live_takes_a_wav_file_and_a_header_key(tmp_path: Path) -> None:
    args = build_parser().parse_args(["talk", "--live", "ws://127.0.0.1:9/v1", "--text", "Hi"])
    err = io.StringIO()
    assert await talk(args, api_key=None, stdout=io.StringIO(), stderr=err) == 2
    assert "--live speaks a WAV file" in err.getvalue()
