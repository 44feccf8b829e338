"""Which voice protocol a model speaks, and so which route serves it.

OpenAI serves voice in three protocols (DESIGN.md "Protocols and transports",
protocol.md §10): the Realtime API (``gpt-realtime…``, and transcription sessions
opened with ``?intent=transcription``), GPT-Live (``gpt-live-…``, ``/v1/live/sessions``,
the model in ``session.start``) and realtime translation (``gpt-realtime-translate``,
``/v1/realtime/translations``). OpenAI answers a Live model on ``/v1/realtime`` with
``invalid_model``, which does not say where to go; the relay refuses a model sent to
another protocol's route *before dialing*, naming the right route
(``wrong_protocol_route``). The family is read from the model name the client uses.
"""

from __future__ import annotations

from typing import Final, Literal

from rtrelay.config import Channel
from rtrelay.errors import WrongProtocolRoute
from rtrelay.wire import LIVE_SESSIONS_PATH, OPENAI_PATH, TRANSLATIONS_PATH

__all__ = ["Family", "family_of", "require_family", "serves"]

Family = Literal["realtime", "transcription", "live", "translation"]
"""A protocol as the relay routes it; ``transcription`` is the Realtime protocol's
transcription-only session (``?intent=transcription``)."""

_ROUTE: Final[dict[Family, str]] = {
    "realtime": f"{OPENAI_PATH}?model=<model>",
    "transcription": f"{OPENAI_PATH}?intent=transcription (the model in the session config)",
    "live": f"{LIVE_SESSIONS_PATH} (the model in the first event, session.start)",
    "translation": f"{TRANSLATIONS_PATH}?model=<model>",
}
_NAME: Final[dict[Family, str]] = {
    "realtime": "a Realtime",
    "transcription": "a transcription",
    "live": "a GPT-Live",
    "translation": "a realtime translation",
}


def family_of(model: str) -> Family:
    """The protocol ``model`` speaks, from its name (OpenAI's model pages, protocol.md §10).

    ``gpt-live-transcribe`` and ``gpt-realtime-whisper`` are transcription models (used in
    a session's input transcription), not models a session runs on.
    """
    name = model.lower()
    if "transcribe" in name or "whisper" in name:
        return "transcription"
    if name.startswith("gpt-live"):
        return "live"
    if "translate" in name:
        return "translation"
    return "realtime"


def require_family(model: str, route: Family) -> None:
    """Refuse ``model`` on ``route`` when it speaks another protocol, naming its route.

    The Realtime route also carries transcription models (a session of the Realtime
    protocol), so only Live and translation models are refused there.

    Raises:
        WrongProtocolRoute: with the route ``model`` belongs on.
    """
    family = family_of(model)
    if family == route or (route == "realtime" and family == "transcription"):
        return
    raise WrongProtocolRoute(
        f"'{model}' is {_NAME[family]} model and this is {_NAME[route]} route: "
        f"connect to {_ROUTE[family]}.",
        param="model",
    )


def serves(channel: Channel, family: Family) -> bool:
    """Whether ``channel``'s kind can carry ``family``: Azure and OpenAI-compatible
    channels speak the Realtime protocol only."""
    return family in ("realtime", "transcription") or channel.kind in ("openai", "mock")
