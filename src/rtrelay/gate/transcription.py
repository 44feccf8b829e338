"""A transcription session's model policy: the model is in its config, not its URL.

``/v1/realtime?intent=transcription`` names no model (protocol.md §1), so admission can
check only the rest; the key's ``models`` list applies to the transcription model each
``session.update`` names, before it is forwarded (the session core's screen).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from rtrelay.errors import ModelNotAllowed, RelayError

__all__ = ["transcription_model", "transcription_screen"]


def transcription_model(event: Mapping[str, Any]) -> str | None:
    """The transcription model a session update names, if it names one.

    GA ``session.update``: ``session.audio.input.transcription.model``; beta
    ``transcription_session.update``: ``session.input_audio_transcription.model``.
    """
    node: Any = event.get("session")
    beta = event.get("type") == "transcription_session.update"
    path = ("input_audio_transcription",) if beta else ("audio", "input", "transcription")
    for name in (*path, "model"):
        if not isinstance(node, dict):
            return None
        node = node.get(name)
    return node if isinstance(node, str) else None


def transcription_screen(
    check_model: Callable[[str], None],
) -> Callable[[str, dict[str, Any]], RelayError | None]:
    """A session-core screen refusing a session update whose transcription model
    ``check_model`` rejects (it raises ``ModelNotAllowed``, as admission's check does)."""

    def screen(kind: str, event: dict[str, Any]) -> RelayError | None:
        model = transcription_model(event)
        if model is None:
            return None
        try:
            check_model(model)
        except ModelNotAllowed as error:
            return error
        return None

    return screen
