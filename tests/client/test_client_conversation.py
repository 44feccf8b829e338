"""The conversation view is a pure fold over events; GA and beta names both count."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from rtrelay.client import Conversation, canonical_type


def _turn(ga: bool) -> list[dict[str, Any]]:
    audio = "response.output_audio" if ga else "response.audio"
    transcript = "response.output_audio_transcript" if ga else "response.audio_transcript"
    added = "conversation.item.added" if ga else "conversation.item.created"
    part = "output_audio" if ga else "audio"
    user = {
        "id": "item_u",
        "type": "message",
        "role": "user",
        "status": "completed",
        "content": [{"type": "input_audio", "transcript": None}],
    }
    bot = {
        "id": "item_a",
        "type": "message",
        "role": "assistant",
        "status": "in_progress",
        "content": [],
    }
    pcm = bytes(range(96))
    return [
        {"type": "session.created", "session": {"id": "sess_1"}},
        {"type": added, "previous_item_id": None, "item": user},
        {
            "type": "conversation.item.input_audio_transcription.delta",
            "item_id": "item_u",
            "delta": "Hel",
        },
        {
            "type": "conversation.item.input_audio_transcription.completed",
            "item_id": "item_u",
            "content_index": 0,
            "transcript": "Hello",
        },
        {"type": "response.created", "response": {"id": "resp_1", "status": "in_progress"}},
        {"type": "response.output_item.added", "response_id": "resp_1", "item": bot},
        {"type": added, "previous_item_id": "item_u", "item": bot},
        {
            "type": f"{transcript}.delta",
            "response_id": "resp_1",
            "item_id": "item_a",
            "delta": "Hi ",
        },
        {
            "type": f"{audio}.delta",
            "response_id": "resp_1",
            "item_id": "item_a",
            "delta": base64.b64encode(pcm[:48]).decode(),
        },
        {
            "type": f"{audio}.delta",
            "response_id": "resp_1",
            "item_id": "item_a",
            "delta": base64.b64encode(pcm[48:]).decode(),
        },
        {
            "type": f"{transcript}.delta",
            "response_id": "resp_1",
            "item_id": "item_a",
            "delta": "there",
        },
        {
            "type": f"{transcript}.done",
            "response_id": "resp_1",
            "item_id": "item_a",
            "transcript": "Hi there!",
        },
        {
            "type": "response.output_item.done",
            "response_id": "resp_1",
            "item": {
                **bot,
                "status": "completed",
                "content": [{"type": part, "transcript": "Hi there!"}],
            },
        },
        {
            "type": "response.done",
            "response": {
                "id": "resp_1",
                "status": "completed",
                "output": [{"id": "item_a", "status": "completed"}],
            },
        },
    ]


@pytest.mark.parametrize("ga", [True, False], ids=["ga", "beta"])
def test_a_turn_builds_the_view(ga: bool) -> None:
    view = Conversation()
    for event in _turn(ga):
        view.apply(event)
    assert [item.id for item in view.items] == ["item_u", "item_a"]
    user, bot = view.items
    assert (user.role, user.transcript) == ("user", "Hello")
    assert (bot.role, bot.status, bot.response_id) == ("assistant", "completed", "resp_1")
    assert bot.transcript == "Hi there!"
    assert bytes(bot.audio) == bytes(range(96))
    assert bot.audio_ms == 2
    assert view.session == {"id": "sess_1"}
    assert view.responses["resp_1"]["status"] == "completed"
    assert view.items_of_response("resp_1") == [bot]


def test_text_responses() -> None:
    view = Conversation()
    view.apply({"type": "response.output_text.delta", "item_id": "i", "delta": "a"})
    view.apply({"type": "response.text.delta", "item_id": "i", "delta": "b"})
    assert view.get("i").text == "ab"
    view.apply({"type": "response.output_text.done", "item_id": "i", "text": "abc"})
    assert view.get("i").text == "abc"


def test_order_follows_previous_item_id() -> None:
    view = Conversation()
    view.apply({"type": "conversation.item.added", "item": {"id": "a"}})
    view.apply({"type": "conversation.item.added", "item": {"id": "c"}, "previous_item_id": "a"})
    view.apply({"type": "conversation.item.added", "item": {"id": "b"}, "previous_item_id": "a"})
    assert [item.id for item in view.items] == ["a", "b", "c"]


def test_delete_and_truncate() -> None:
    view = Conversation()
    for event in _turn(ga=True):
        view.apply(event)
    view.apply(
        {
            "type": "conversation.item.truncated",
            "item_id": "item_a",
            "content_index": 0,
            "audio_end_ms": 1,
        }
    )
    assert len(view.get("item_a").audio) == 48
    assert view.get("item_a").transcript == ""
    view.apply({"type": "conversation.item.deleted", "item_id": "item_u"})
    assert [item.id for item in view.items] == ["item_a"]


def test_junk_is_ignored() -> None:
    view = Conversation()
    assert view.apply({"type": "conversation.item.added", "item": "nope"}) is None
    assert view.apply({"type": "response.output_audio.delta", "item_id": "x", "delta": "!!"})
    assert view.get("x").audio == bytearray()
    assert view.apply({"no": "type"}) is None
    assert len(view) == 1


@pytest.mark.parametrize(
    ("beta", "ga"),
    [
        ("response.audio.delta", "response.output_audio.delta"),
        ("response.text.done", "response.output_text.done"),
        ("response.audio_transcript.delta", "response.output_audio_transcript.delta"),
        ("conversation.item.created", "conversation.item.added"),
        ("response.done", "response.done"),
    ],
)
def test_canonical_names(beta: str, ga: str) -> None:
    assert canonical_type(beta) == ga
    assert canonical_type(ga) == ga
