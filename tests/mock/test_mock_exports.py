"""The public surface of ``rtrelay.mock``: complete, sorted, importable on its own."""

from __future__ import annotations

import subprocess
import sys

import rtrelay.mock

EXPECTED = {
    "Dialect",
    "HandshakeRecord",
    "Inbound",
    "MockOptions",
    "MockProvider",
    "RealtimeProtocol",
    "SessionRecord",
    "create_app",
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


def test_each_module_imports_in_a_fresh_interpreter() -> None:
    modules = [
        "rtrelay.mock",
        "rtrelay.mock._protocol",
        "rtrelay.mock._connection",
        "rtrelay.mock._provider",
        "rtrelay.cli.mock",
    ]
    for name in modules:
        subprocess.run(
            [sys.executable, "-W", "error", "-c", f"import {name}"], check=True, timeout=60
        )
