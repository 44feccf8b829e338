"""Stream a session's responses a step at a time, paced against the loop's clock.

Shared by both transports of the simulated provider: the WebSocket ``Connection`` sends
each step's events; a WebRTC call also plays each step's audio on its media track.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from rtrelay.mock._response import Step
from rtrelay.mock._session import SessionProtocol

__all__ = ["stream_responses"]


async def stream_responses(
    protocol: SessionProtocol,
    wake: asyncio.Event,
    pacing: float,
    send: Callable[[str, Step], Awaitable[None]],
    closed: Callable[[], bool],
) -> None:
    """Run until ``closed()``: each time ``wake`` is set, stream the active response.

    Args:
        protocol: the session; its active response is advanced by ``stream_step()``.
        wake: set by the transport whenever a response may have started.
        pacing: speed relative to real time (``MockOptions.realtime_pacing``); 0 unpaced.
        send: delivers one step of the response whose id it is given.
        closed: whether the transport is gone.
    """
    loop = asyncio.get_running_loop()
    while not closed():
        await wake.wait()
        wake.clear()
        current: str | None = None
        started = 0.0
        elapsed_ms = 0.0
        while not closed():
            response_id = protocol.active_response_id
            if response_id is None:
                break
            if response_id != current:
                current = response_id
                started = loop.time()
                elapsed_ms = 0.0
            step = protocol.stream_step()
            await send(response_id, step)
            elapsed_ms += step.duration_ms
            delay = 0.0
            if pacing > 0:
                delay = started + elapsed_ms / 1000 / pacing - loop.time()
            # Even unpaced, yield so a response.cancel can land between steps.
            await asyncio.sleep(max(delay, 0.0))
