"""``rtrelay talk`` round trips: a WAV in, a valid 24 kHz WAV and a transcript out."""

from __future__ import annotations

import asyncio
import io
import sys
import wave
from pathlib import Path

import pytest

from conftest import Endpoint, LoopWatch
from rtrelay.cli.main import build_parser
from rtrelay.cli.talk import session_update, talk
from rtrelay.client import resample_pcm16, write_wav
from rtrelay.mock import MockOptions, speech_pcm16

pytestmark = pytest.mark.timeout(30)


def _speech_wav(path: Path, rate: int) -> None:
    write_wav(path, resample_pcm16(speech_pcm16(1500), 24_000, rate), rate)


async def test_talk_command_round_trip_in_a_subprocess(
    loop_watch: LoopWatch, endpoint: Endpoint, tmp_path: Path
) -> None:
    source, reply = tmp_path / "in.wav", tmp_path / "reply.wav"
    _speech_wav(source, 16_000)  # not 24 kHz: talk resamples
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-W",
        "error",
        "-m",
        "rtrelay.cli.main",
        "talk",
        endpoint.url,
        "--model",
        "gpt-realtime",
        "--wav",
        str(source),
        "--out",
        str(reply),
        "--voice",
        "marin",
        env={"RTRELAY_API_KEY": endpoint.api_key, "PATH": ""},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(25):
        stdout, stderr = await process.communicate()
    assert process.returncode == 0, stderr.decode()
    assert stdout.decode().startswith("Sure!")
    progress = stderr.decode()
    assert "resampling 16000 Hz to 24000 Hz" in progress
    assert "\rreceiving audio:" in progress
    assert "wrote 1.00 s of audio" in progress
    with wave.open(str(reply), "rb") as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, 24_000)
        assert wav.getnframes() == 24_000  # the mock's 1000 ms reply
    # The key went in the Authorization header (seen by the provider when it is the
    # endpoint), and the file was one manual turn.
    if endpoint.name == "mock":
        handshake = endpoint.provider.handshakes[-1]
        assert handshake.headers.get("Authorization") == f"Bearer {endpoint.api_key}"
    update = endpoint.provider.events_received[0]
    assert update["session"]["audio"] == {
        "input": {"turn_detection": None},
        "output": {"voice": "marin"},
    }


def _args(*argv: str) -> object:
    return build_parser().parse_args(["talk", *argv])


async def test_talk_text_with_subprotocol_auth(
    loop_watch: LoopWatch, endpoint: Endpoint, tmp_path: Path
) -> None:
    out, err = io.StringIO(), io.StringIO()
    reply = tmp_path / "reply.wav"
    args = _args(endpoint.url, "--text", "Hello", "--subprotocol-auth", "--out", str(reply))
    code = await talk(args, api_key=endpoint.api_key, stdout=out, stderr=err)
    assert code == 0, err.getvalue()
    assert out.getvalue().startswith("Sure!")
    assert reply.exists()
    if endpoint.name == "mock":
        assert endpoint.provider.handshakes[-1].subprotocols[:2] == (
            "realtime",
            f"openai-insecure-api-key.{endpoint.api_key}",
        )
    # Text needs no session.update: talk sends none.
    assert [e["type"] for e in endpoint.provider.events_received] == [
        "conversation.item.create",
        "response.create",
    ]


async def test_talk_reports_whose_fault_a_failure_is(
    loop_watch: LoopWatch, endpoint: Endpoint
) -> None:
    endpoint.provider.options = MockOptions(realtime_pacing=0, api_keys=frozenset({"sk-other"}))
    out, err = io.StringIO(), io.StringIO()
    code = await talk(
        _args(endpoint.url, "--text", "Hi"), api_key="sk-wrong", stdout=out, stderr=err
    )
    assert code == 1
    assert "invalid_api_key" in err.getvalue()
    assert "client's fault" in err.getvalue()
    assert "sk-wrong" not in err.getvalue() + out.getvalue()


async def test_talk_refuses_a_bad_wav(loop_watch: LoopWatch, tmp_path: Path) -> None:
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF nonsense")
    err = io.StringIO()
    code = await talk(
        _args("ws://127.0.0.1:9/v1", "--wav", str(bad)),
        api_key=None,
        stdout=io.StringIO(),
        stderr=err,
    )
    assert code == 2
    assert "WAV" in err.getvalue()
    code = await talk(
        _args("ws://127.0.0.1:9/v1", "--wav", str(tmp_path / "missing.wav")),
        api_key=None,
        stdout=io.StringIO(),
        stderr=err,
    )
    assert code == 2


@pytest.mark.parametrize(
    ("beta", "expected"),
    [
        (
            False,
            {
                "instructions": "x",
                "audio": {"output": {"voice": "v"}, "input": {"turn_detection": None}},
            },
        ),
        (True, {"instructions": "x", "voice": "v", "turn_detection": None}),
    ],
)
def test_session_update_shapes(beta: bool, expected: dict) -> None:
    assert session_update(beta=beta, voice="v", instructions="x", manual_turns=True) == expected
    assert session_update(beta=beta, voice=None, instructions=None, manual_turns=False) == {}
