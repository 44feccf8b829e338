"""Connection settings as small validated values, with their defaults in one place."""

from __future__ import annotations

import dataclasses
from typing import Final

__all__ = [
    "DEFAULT_CLOSE_TIMEOUT",
    "DEFAULT_CONNECTION_TIMEOUT",
    "DEFAULT_HEARTBEAT",
    "DEFAULT_MAX_ENQUEUED_MESSAGES",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "DEFAULT_MAX_QUEUED_EVENTS",
    "DEFAULT_MAX_RECONNECTION_DELAY",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_MIN_RECONNECTION_DELAY",
    "DEFAULT_MIN_UPTIME",
    "DEFAULT_RECONNECTION_DELAY_GROW_FACTOR",
    "Limits",
    "Reconnect",
]

# partysocket's names and meanings; its delays (1 s .. 10 s, x1.3) suit a realtime session.
DEFAULT_MAX_RETRIES: Final = 10
DEFAULT_MIN_RECONNECTION_DELAY: Final = 1.0
DEFAULT_MAX_RECONNECTION_DELAY: Final = 10.0
DEFAULT_RECONNECTION_DELAY_GROW_FACTOR: Final = 1.3
DEFAULT_MIN_UPTIME: Final = 5.0
# Longer than a relay's own dial timeout, so the relay's 504 arrives before ours fires.
DEFAULT_CONNECTION_TIMEOUT: Final = 15.0
DEFAULT_MAX_ENQUEUED_MESSAGES: Final = 1000
DEFAULT_MAX_QUEUED_EVENTS: Final = 1024
# websockets' (hence the openai SDK's) ping interval: finds a dead relay within ~30 s.
DEFAULT_HEARTBEAT: Final = 20.0
DEFAULT_CLOSE_TIMEOUT: Final = 5.0
# A server frame stays under 1 MiB (protocol.md §3); leave room for other endpoints.
DEFAULT_MAX_MESSAGE_SIZE: Final = 16 * 1024 * 1024


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Reconnect:
    """How a connection retries (partysocket's options).

    ``max_retries=None`` retries forever; ``0`` makes one attempt. A connection that
    stayed open for ``min_uptime`` seconds starts counting retries and delays afresh.
    """

    max_retries: int | None = DEFAULT_MAX_RETRIES
    min_reconnection_delay: float = DEFAULT_MIN_RECONNECTION_DELAY
    max_reconnection_delay: float = DEFAULT_MAX_RECONNECTION_DELAY
    reconnection_delay_grow_factor: float = DEFAULT_RECONNECTION_DELAY_GROW_FACTOR
    min_uptime: float = DEFAULT_MIN_UPTIME

    def __post_init__(self) -> None:
        if self.max_retries is not None and self.max_retries < 0:
            raise ValueError("max_retries must be >= 0 or None")
        if self.min_reconnection_delay < 0:
            raise ValueError("min_reconnection_delay must be >= 0")
        if self.max_reconnection_delay < self.min_reconnection_delay:
            raise ValueError("max_reconnection_delay must be >= min_reconnection_delay")
        if self.reconnection_delay_grow_factor < 1:
            raise ValueError("reconnection_delay_grow_factor must be >= 1")
        if self.min_uptime < 0:
            raise ValueError("min_uptime must be >= 0")


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """Time and size bounds of one connection; ``None`` turns a timeout off."""

    connection_timeout: float | None = DEFAULT_CONNECTION_TIMEOUT
    max_enqueued_messages: int = DEFAULT_MAX_ENQUEUED_MESSAGES
    max_queued_events: int = DEFAULT_MAX_QUEUED_EVENTS
    heartbeat: float | None = DEFAULT_HEARTBEAT
    close_timeout: float = DEFAULT_CLOSE_TIMEOUT
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE

    def __post_init__(self) -> None:
        if self.connection_timeout is not None and self.connection_timeout <= 0:
            raise ValueError("connection_timeout must be > 0 or None")
        if self.max_enqueued_messages < 0:
            raise ValueError("max_enqueued_messages must be >= 0")
        if self.max_queued_events < 1:
            raise ValueError("max_queued_events must be >= 1")
        if self.heartbeat is not None and self.heartbeat <= 0:
            raise ValueError("heartbeat must be > 0 or None")
        if self.close_timeout <= 0:
            raise ValueError("close_timeout must be > 0")
        if self.max_message_size < 1:
            raise ValueError("max_message_size must be >= 1")
