"""A benchmark target: where sessions connect, how they authenticate, which process to meter."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field

from rtrelay.bench._options import TargetName

__all__ = ["LIVE_MODEL", "LIVE_PATH", "MODEL", "Target", "live_target"]

MODEL = "gpt-realtime"
"""The model every session asks for; each target routes it to the simulated provider."""
LIVE_MODEL = "gpt-live-1"
"""The model a GPT-Live session names in its ``session.start`` (not in the URL)."""
LIVE_PATH = "/v1/live/sessions"


@dataclass(frozen=True, slots=True)
class Target:
    """A running target.

    Args:
        name: ``direct``, ``rtrelay``, ``nginx`` or ``litellm``.
        url: the WebSocket URL a session opens (``…/v1/realtime?model=…``).
        headers: handshake headers; they carry the credential, so ``repr`` leaves them out.
        pid: the process whose CPU and memory count as the target's (``None`` for direct).
        workers: processes serving it, for "per relay core" figures.
    """

    name: TargetName
    url: str
    headers: Mapping[str, str] = field(repr=False)
    pid: int | None = None
    workers: int = 1


def live_target(target: Target) -> Target:
    """The same target's GPT-Live route: every target serves both under one ``/v1`` base."""
    base = target.url.split("/v1/realtime", 1)[0]
    return dataclasses.replace(target, url=f"{base}{LIVE_PATH}")
