"""The simulated OpenAI Realtime provider: GA and beta shapes, OpenAI and Azure URLs, faults.

Usage::

    async with MockProvider(MockOptions(realtime_pacing=0)) as provider:
        client = AsyncOpenAI(api_key="sk-test", websocket_base_url=provider.url)
        async with client.realtime.connect(model="gpt-realtime") as conn:
            ...

``RealtimeProtocol``, ``LiveProtocol`` (GPT-Live, ``/v1/live/sessions``) and
``TranslationProtocol`` (``/v1/realtime/translations``) are the socket-free session logic
(events in, events out) that the aiohttp layer drives; ``speech_pcm16``/``silence_pcm16``
make audio its VAD reacts to.

WebRTC: ``provider.calls_url`` answers SDP offers with an aiortc peer on loopback
(``CallRecord`` per call); a client peer on this machine must gather its candidates
within ``loopback_candidates()``.
"""

from __future__ import annotations

from rtrelay.ice import loopback_candidates
from rtrelay.mock._app import create_app
from rtrelay.mock._audio import silence_pcm16, speech_pcm16
from rtrelay.mock._live import LiveProtocol
from rtrelay.mock._options import Dialect, MockOptions
from rtrelay.mock._protocol import Inbound, RealtimeProtocol
from rtrelay.mock._provider import MockProvider, serve
from rtrelay.mock._records import CallRecord, HandshakeRecord, SessionRecord
from rtrelay.mock._translation import TranslationProtocol

__all__ = [
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
]

# Public names report the package, not the private module they live in (as httpx does).
for _public in (
    CallRecord,
    HandshakeRecord,
    Inbound,
    LiveProtocol,
    MockOptions,
    MockProvider,
    RealtimeProtocol,
    SessionRecord,
    TranslationProtocol,
    create_app,
    loopback_candidates,
    serve,
    silence_pcm16,
    speech_pcm16,
):
    _public.__module__ = __name__
del _public
