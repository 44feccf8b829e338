"""A benchmark target: where sessions connect, how they authenticate, which process to meter."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from rtrelay.bench._options import TargetName

__all__ = ["MODEL", "Target"]

MODEL = "gpt-realtime"
"""The model every session asks for; each target routes it to the simulated provider."""


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
