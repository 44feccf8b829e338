"""The WebRTC pieces of the simulated provider that need no socket: decisions and audio."""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest

from rtrelay.ice import keep_loopback_candidates
from rtrelay.mock import MockOptions, silence_pcm16, speech_pcm16
from rtrelay.mock._audio import from_pcm16, to_pcm16
from rtrelay.mock._calls import parse_offer
from rtrelay.mock._errors import ProviderError
from rtrelay.mock._handshake import decide_http
from rtrelay.mock._protocol import RealtimeProtocol, Transport
from rtrelay.mock._rtc import FRAME_BYTES, ReplyTrack

OFFER = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"


def protocol(transport: Transport) -> RealtimeProtocol:
    return RealtimeProtocol(
        model="gpt-realtime", dialect="ga", now=0.0, reply_audio_ms=300, transport=transport
    )


def run_response(session: RealtimeProtocol) -> tuple[list[dict[str, Any]], bytes]:
    events = list(session.receive_text(b'{"type":"response.create"}').replies)
    audio = b""
    while session.response_active:
        step = session.stream_step()
        events += step.events
        audio += step.audio
    return events, audio


# --- the offer -------------------------------------------------------------------------------


def test_raw_offer_takes_its_model_from_the_query() -> None:
    offer = parse_offer("application/sdp", {"sdp": OFFER}, {"model": "gpt-realtime-mini"})
    assert (offer.sdp, offer.model, offer.session) == (OFFER, "gpt-realtime-mini", None)


def test_raw_offer_without_a_model_gets_the_default() -> None:
    assert parse_offer("application/sdp", {"sdp": OFFER}, {}).model == "gpt-realtime"


def test_multipart_session_model_wins_over_the_query() -> None:
    session = {"type": "realtime", "model": "gpt-realtime-2"}
    fields = {"sdp": OFFER, "session": orjson.dumps(session).decode()}
    offer = parse_offer("multipart/form-data", fields, {"model": "gpt-realtime"})
    assert offer.model == "gpt-realtime-2"
    assert offer.session == session


@pytest.mark.parametrize(
    ("content_type", "fields", "code", "param"),
    [
        ("application/json", {"sdp": OFFER}, "unsupported_content_type", None),
        ("application/sdp", {"sdp": "  "}, "missing_required_parameter", "sdp"),
        ("multipart/form-data", {"session": "{}"}, "missing_required_parameter", "sdp"),
        ("application/sdp", {"sdp": "hello"}, "invalid_offer", "sdp"),
        ("application/sdp", {"sdp": "v=0\r\ns=-\r\n"}, "invalid_offer", "sdp"),
        ("multipart/form-data", {"sdp": OFFER, "session": "{"}, "invalid_value", "session"),
        ("multipart/form-data", {"sdp": OFFER, "session": "[]"}, "invalid_type", "session"),
        (
            "multipart/form-data",
            {"sdp": OFFER, "session": '{"model": 7}'},
            "invalid_type",
            "session.model",
        ),
    ],
)
def test_unusable_offer_requests_are_refused(
    content_type: str, fields: dict[str, str], code: str, param: str | None
) -> None:
    with pytest.raises(ProviderError) as refused:
        parse_offer(content_type, fields, {})
    assert (refused.value.code, refused.value.param) == (code, param)


def test_http_requests_are_refused_by_the_fault_first_then_by_key() -> None:
    options = MockOptions(api_keys=frozenset({"sk-good-key-1234"}))
    assert decide_http({"Authorization": "Bearer sk-good-key-1234"}, options) is None
    refused = decide_http({"Authorization": "Bearer sk-wrong-key-5678"}, options)
    assert refused is not None and refused.status == 401
    error = orjson.loads(refused.body)["error"]
    assert error["code"] == "invalid_api_key"
    assert "event_id" not in error
    assert "sk-wrong-key-5678" not in refused.body
    missing = decide_http({}, options)
    assert missing is not None and missing.status == 401
    faulty = MockOptions(api_keys=frozenset({"k"}), refuse_status=429, refuse_body="slow down")
    refusal = decide_http({"Authorization": "Bearer k"}, faulty)
    assert refusal is not None and (refusal.status, refusal.body) == (429, "slow down")
    assert decide_http({}, MockOptions()) is None


# --- candidates ------------------------------------------------------------------------------


def test_only_loopback_candidates_survive_and_end_of_candidates_goes_with_the_rest() -> None:
    sdp = (
        "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"
        "a=candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host\r\n"
        "a=candidate:2 1 udp 2130706431 192.168.1.20 50001 typ host\r\n"
        "a=candidate:3 1 udp 2130706431 3f2c9e1a-0000-4e2b.local 50002 typ host\r\n"
        "a=candidate:4 1 udp 1694498815 203.0.113.9 50003 typ srflx raddr 0.0.0.0 rport 0\r\n"
        "a=candidate:5 1 udp 2130706431 ::1 50004 typ host\r\n"
        "a=end-of-candidates\r\n"
    )
    kept = keep_loopback_candidates(sdp)
    assert "127.0.0.1 50000" in kept and "::1 50004" in kept
    for gone in ("192.168.1.20", ".local", "203.0.113.9", "end-of-candidates"):
        assert gone not in kept
    assert kept.endswith("typ host\r\n")


def test_an_offer_of_loopback_candidates_only_is_unchanged() -> None:
    sdp = (
        "v=0\r\na=candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host\r\na=end-of-candidates\r\n"
    )
    assert keep_loopback_candidates(sdp) == sdp
    assert keep_loopback_candidates(OFFER) == OFFER


# --- the protocol over WebRTC ----------------------------------------------------------------


def test_over_webrtc_a_response_has_no_audio_deltas_and_its_steps_carry_the_audio() -> None:
    events, audio = run_response(protocol("webrtc"))
    types = [e["type"] for e in events]
    assert "response.output_audio.delta" not in types
    assert "response.output_audio_transcript.delta" in types
    assert types[-1] == "response.done"
    assert len(audio) == 300 * 48
    usage = events[-1]["response"]["usage"]
    assert usage["output_token_details"]["audio_tokens"] == 6  # 1 per 50 ms, as over a socket


def test_over_a_websocket_the_audio_is_in_the_deltas() -> None:
    events, audio = run_response(protocol("websocket"))
    deltas = [e["delta"] for e in events if e["type"] == "response.output_audio.delta"]
    assert b"".join(base64.b64decode(d) for d in deltas) == audio
    assert len(audio) == 300 * 48


def test_output_audio_buffer_clear_is_a_webrtc_only_event() -> None:
    clear = b'{"type":"output_audio_buffer.clear"}'
    assert protocol("webrtc").receive_text(clear).replies == []
    (error,) = protocol("websocket").receive_text(clear).replies
    assert error["error"]["code"] == "invalid_event"


def test_audio_heard_on_the_track_drives_server_vad_as_appended_audio_does() -> None:
    session = protocol("webrtc")
    replies: list[dict[str, Any]] = []
    audio = silence_pcm16(200) + speech_pcm16(800) + silence_pcm16(900)
    for start in range(0, len(audio), 960):  # 20 ms frames, as the track delivers them
        replies += session.receive_audio(audio[start : start + 960])
    types = [e["type"] for e in replies]
    assert types[:3] == [
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
    ]
    assert "response.created" in types
    assert session.response_active


def test_track_audio_reaches_a_g711_session_in_its_own_format() -> None:
    session = protocol("webrtc")
    update = {
        "type": "session.update",
        "session": {"type": "realtime", "audio": {"input": {"format": {"type": "audio/pcmu"}}}},
    }
    session.receive_text(orjson.dumps(update))
    replies = session.receive_audio(speech_pcm16(600) + silence_pcm16(900))
    assert [e["type"] for e in replies][:2] == [
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
    ]


def test_g711_round_trips_through_the_tracks_rate() -> None:
    pcmu = from_pcm16(speech_pcm16(100), "audio/pcmu")
    assert len(pcmu) == 800  # 8 kHz, one byte per sample
    assert len(to_pcm16(pcmu, "audio/pcmu")) == 100 * 48
    assert to_pcm16(b"\x01\x02", "audio/pcm") == b"\x01\x02"


# --- the reply track -------------------------------------------------------------------------


async def test_reply_track_marks_playout_start_and_stop_and_plays_silence_between() -> None:
    marks: list[tuple[str, str]] = []
    track = ReplyTrack(lambda kind, response_id: marks.append((kind, response_id)))
    try:
        track.play("resp_1", b"\x10\x00" * (FRAME_BYTES // 2 + 10))  # a frame and a bit
        first = await track.recv()
        assert marks == [("output_audio_buffer.started", "resp_1")]
        assert bytes(first.planes[0]) == b"\x10\x00" * (FRAME_BYTES // 2)
        assert first.sample_rate == 24_000 and first.samples == FRAME_BYTES // 2
        second = await track.recv()  # the tail, then silence: the response is not done yet
        assert bytes(second.planes[0])[:20] == b"\x10\x00" * 10
        assert bytes(second.planes[0])[20:] == bytes(FRAME_BYTES - 20)
        assert len(marks) == 1
        track.end("resp_1")
        await track.recv()
        assert marks[-1] == ("output_audio_buffer.stopped", "resp_1")
        assert second.pts == first.pts + FRAME_BYTES // 2
    finally:
        track.stop()


async def test_reply_track_clear_cuts_the_audio_and_names_the_response() -> None:
    marks: list[tuple[str, str]] = []
    track = ReplyTrack(lambda kind, response_id: marks.append((kind, response_id)))
    try:
        assert track.clear() is None
        track.play("resp_1", b"\x10\x00" * FRAME_BYTES * 3)
        await track.recv()
        assert track.clear() == "resp_1"
        track.play("resp_1", b"\x10\x00" * FRAME_BYTES)  # late steps of a cut response
        frame = await track.recv()
        assert bytes(frame.planes[0]) == bytes(FRAME_BYTES)
        assert marks == [("output_audio_buffer.started", "resp_1")]
    finally:
        track.stop()
