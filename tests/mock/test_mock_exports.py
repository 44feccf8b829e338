"""The public surface of ``rtrelay.mock``: complete, sorted, importable on its own."""

from __future__ import annotations

import rtrelay.mock

EXPECTED = {
    "CallRecord",
    "Dialect",
    "HandshakeRecord",
    "Inbound",
    "LiveProtocol",
    "MockOptions",
    "MockProvider",
    "RealtimeProtocol",
    "SessionRecord",
    "TranslationProtocol",
    "create_app",
    "loopback_candidates",
    "serve",
    "silence_pcm16",
    "speech_pcm16",
}


def test_all_is_sorted_and_complete() -> None:
    assert rtrelay.mock.__all__ == sorted(rtrelay.mock.__all__)
    assert set(rtrelay.mock.__all__) == EXPECTED
    for name in rtrelay.mock.__all__:
        assert hasattr(rtrelay.mock, name)


def test_public_classes_report_the_package() -> None:
    assert rtrelay.mock.MockProvider.__module__ == "rtrelay.mock"
    assert rtrelay.mock.MockOptions.__module__ == "rtrelay.mock"
