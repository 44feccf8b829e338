"""rtrelay.client: a Realtime API client that reconnects, never crashes, and says whose fault.

Works against rtrelay and directly against any OpenAI-compatible realtime endpoint::

    from rtrelay.client import RealtimeClient, RealtimeConnection

    async with RealtimeClient(RealtimeConnection(url, api_key=key, model=model)) as client:
        done = client.wait_for("response.done")
        await client.send_text("Hello!")
        await done

App servers of WebRTC calls post the caller's offer and join with a sideband::

    async with RealtimeCalls(url, api_key=key) as calls:
        answer = await calls.create(offer_sdp, model=model)  # answer.sdp to the caller
        async with RealtimeClient(calls.sideband(answer.call_id)) as sideband:
            ...

See docs/client.md for the full guide.
"""

from __future__ import annotations

import inspect

from ._audio import PCM16_RATE, Pcm16, read_wav, resample_pcm16, write_wav
from ._backoff import RetryDecision, RetryPolicy, backoff_delays, default_retry_policy
from ._calls import CallAnswer, RealtimeCalls
from ._client import Handler, RealtimeClient
from ._connection import ConnectionState, Event, RealtimeConnection, Sendable
from ._conversation import Conversation, ConversationItem
from ._events import canonical_type
from ._exceptions import (
    APIError,
    AuthenticationError,
    BadRequestError,
    ConnectionClosed,
    ConnectionClosedError,
    ConnectTimeoutError,
    Fault,
    InvalidStateError,
    NetworkError,
    NotFoundError,
    PermissionDeniedError,
    QueueFullError,
    QuotaExceededError,
    RateLimitError,
    RealtimeError,
    ServerError,
    SessionExpiredError,
    UpstreamError,
)

__all__ = [
    "PCM16_RATE",
    "APIError",
    "AuthenticationError",
    "BadRequestError",
    "CallAnswer",
    "ConnectTimeoutError",
    "ConnectionClosed",
    "ConnectionClosedError",
    "ConnectionState",
    "Conversation",
    "ConversationItem",
    "Event",
    "Fault",
    "Handler",
    "InvalidStateError",
    "NetworkError",
    "NotFoundError",
    "Pcm16",
    "PermissionDeniedError",
    "QueueFullError",
    "QuotaExceededError",
    "RateLimitError",
    "RealtimeCalls",
    "RealtimeClient",
    "RealtimeConnection",
    "RealtimeError",
    "RetryDecision",
    "RetryPolicy",
    "Sendable",
    "ServerError",
    "SessionExpiredError",
    "UpstreamError",
    "backoff_delays",
    "canonical_type",
    "default_retry_policy",
    "read_wav",
    "resample_pcm16",
    "write_wav",
]

# Present the public classes and functions as rtrelay.client's own (as httpx does), so
# reprs, docs and pickles name the public path rather than a private module.
for _name in __all__:
    _obj = globals()[_name]
    if isinstance(_obj, type) or inspect.isfunction(_obj):
        _obj.__module__ = __name__
del _name, _obj
