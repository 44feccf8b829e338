"""One benchmark session in GPT-Live (``/v1/live/sessions``): full-duplex audio, paced.

The client opens with ``session.start`` naming the model (it is not in the URL) and the
session is open at ``session.started``; the handshake time covers both, since a relay
admits the model and dials the provider in between. Then the microphone never stops:
an append every ``chunk_ms``, a tone for each turn but its last ``LIVE_PAUSE_MS``,
which are silence. The provider's VAD hears the pause, ends the turn and speaks a reply
in real time while the client goes on streaming: there is no commit and no
``response.create`` in Live. Probes are the Realtime session's: the provider answers an
unknown event type at once with a Live ``error`` quoting it as ``client_event_id``.
"""

from __future__ import annotations

import functools
import time
from typing import Any, ClassVar, Final

import aiohttp

from rtrelay.bench._frames import LIVE_APPEND, Audio, append_frame, live_start_frame
from rtrelay.bench._options import LIVE_PAUSE_MS
from rtrelay.bench._session import BenchSession
from rtrelay.bench._target import LIVE_MODEL

__all__ = ["LiveBenchSession"]

_REPLY_TRANSCRIPT: Final = "session.output_transcript.delta"


@functools.cache
def _silent(ms: int) -> Audio:
    """Silence as long as a chunk, encoded once per run like the tone."""
    return Audio(ms, level=0.0)


class LiveBenchSession(BenchSession):
    """A ``BenchSession`` speaking GPT-Live; ``text`` sessions do not exist in Live."""

    FIRST_EVENT: ClassVar[bytes] = b"session.started"

    def _opening_frame(self) -> bytes | None:
        return live_start_frame(time.monotonic_ns(), LIVE_MODEL)

    async def _opened(self, ws: aiohttp.ClientWebSocketResponse[bool]) -> None:
        """Nothing to configure: server VAD is how Live takes turns."""

    async def _speak(self, ws: aiohttp.ClientWebSocketResponse[bool], chunk: int) -> bool:
        plan = self._plan
        spoken = plan.chunks_per_turn - -(-LIVE_PAUSE_MS // plan.chunk_ms)
        quiet = (chunk - 1) % plan.chunks_per_turn >= spoken
        audio = _silent(plan.chunk_ms) if quiet else plan.audio
        return await self._send(ws, append_frame(audio, time.monotonic_ns(), LIVE_APPEND))

    def _probe_id(self, event: dict[str, Any]) -> Any:
        return event.get("client_event_id")

    def _other_event(self, kind: Any, event: dict[str, Any]) -> None:
        """A reply's first transcript delta (no leading space) counts a reply begun."""
        if kind == _REPLY_TRANSCRIPT and not str(event.get("delta", " ")).startswith(" "):
            self._rec.tally.responses += 1
