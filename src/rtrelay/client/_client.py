"""``RealtimeClient``: handlers, waits, helpers and a conversation view over a connection."""

from __future__ import annotations

import asyncio
import base64
import inspect
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, Final, Self, overload

from ._connection import Event, RealtimeConnection, Sendable
from ._conversation import Conversation
from ._events import WILDCARD, canonical_type
from ._exceptions import ConnectionClosed, RealtimeError
from ._log import client_log

__all__ = ["Handler", "RealtimeClient"]

Handler = Callable[[Event], object]
"""An event handler: a function or a coroutine function taking the event."""

DEFAULT_AUDIO_CHUNK_BYTES: Final = 48_000
"""0.5 s of PCM16 at 24 kHz per ``input_audio_buffer.append`` (limit: 15 MiB per event)."""


class RealtimeClient:
    """The high-level client: handlers by event type, ``wait_for``, and helpers.

    Handlers and waits registered under either a GA or a beta name receive both
    (``response.audio.delta`` and ``response.output_audio.delta`` are one event).
    The client sends only what you ask for; in particular it never sends a
    ``session.update`` of its own.

    Args:
        connection: the transport; the client owns its lifecycle once entered.

    Use as ``async with RealtimeClient(RealtimeConnection(url, ...)) as client:``.
    """

    def __init__(self, connection: RealtimeConnection) -> None:
        self.connection = connection
        self.conversation = Conversation()
        self._handlers: dict[str, list[Handler]] = {}
        self._waiters: list[tuple[str, Callable[[Event], bool] | None, asyncio.Future[Event]]] = []
        self._task: asyncio.Task[None] | None = None
        self._ended: RealtimeError | None = None

    # -- lifecycle ---------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        self.start()
        try:
            await self.connection.__aenter__()
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def start(self) -> None:
        """Start dispatching events (``async with`` does this). Idempotent."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._dispatch(), name="rtrelay.client dispatch"
            )

    async def connect(self) -> None:
        """Start dispatching and connect (see :meth:`RealtimeConnection.connect`)."""
        self.start()
        await self.connection.connect()

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the connection and stop dispatching; idempotent."""
        await self.connection.close(code, reason)
        task = self._task
        if task is not None and task is not asyncio.current_task():
            await asyncio.wait([task])

    # -- handlers and waits ------------------------------------------------------------

    @overload
    def on(self, event_type: str) -> Callable[[Handler], Handler]: ...

    @overload
    def on(self, event_type: str, handler: Handler) -> Handler: ...

    def on(
        self, event_type: str, handler: Handler | None = None
    ) -> Handler | Callable[[Handler], Handler]:
        """Call ``handler(event)`` for each event of ``event_type`` (``"*"``: every event).

        Handlers run in order of registration, type-specific ones before wildcard
        ones; a coroutine handler is awaited before the next event is dispatched. A
        handler that raises is logged and does not stop dispatch. Usable as a
        decorator: ``@client.on("response.done")``.
        """

        def register(fn: Handler) -> Handler:
            self._handlers.setdefault(canonical_type(event_type), []).append(fn)
            return fn

        return register(handler) if handler is not None else register

    def off(self, event_type: str, handler: Handler) -> None:
        """Remove a handler added with :meth:`on`; absent handlers are ignored."""
        handlers = self._handlers.get(canonical_type(event_type), [])
        if handler in handlers:
            handlers.remove(handler)

    def wait_for(
        self, event_type: str, predicate: Callable[[Event], bool] | None = None
    ) -> asyncio.Future[Event]:
        """A future for the next event of ``event_type`` (matching ``predicate``).

        The wait is registered when this is *called*, so register before you send
        what triggers the event: ``done = client.wait_for("response.done")``,
        ``await client.create_response()``, ``await done``. Bound it with
        ``asyncio.timeout``. If the connection ends first, the future raises the
        connection's error (or :class:`ConnectionClosed`).
        """
        future: asyncio.Future[Event] = asyncio.get_running_loop().create_future()
        if self._ended is not None:
            future.set_exception(self._ended)
        else:
            self._waiters.append((canonical_type(event_type), predicate, future))
        future.add_done_callback(self._forget_waiter)
        return future

    def _forget_waiter(self, future: asyncio.Future[Event]) -> None:
        self._waiters = [waiter for waiter in self._waiters if waiter[2] is not future]
        if not future.cancelled():
            future.exception()  # retrieved: an abandoned wait never warns

    # -- sending -----------------------------------------------------------------------

    async def send(self, event: Sendable) -> None:
        """Send any event (see :meth:`RealtimeConnection.send`)."""
        await self.connection.send(event)

    async def update_session(self, session: Mapping[str, Any] | None = None, **fields: Any) -> None:
        """Send a ``session.update`` with ``session`` and/or keyword fields.

        In the GA shape a ``session.update`` must carry ``session.type``; when it is
        missing, ``"realtime"`` is filled in (protocol.md §1). Nothing else is added.
        """
        body = {**(session or {}), **fields}
        if not self.connection.beta:
            body.setdefault("type", "realtime")
        await self.send({"type": "session.update", "session": body})

    async def append_audio(
        self, pcm16: bytes, *, chunk_bytes: int = DEFAULT_AUDIO_CHUNK_BYTES
    ) -> None:
        """Append PCM16 audio (24 kHz mono, little-endian) to the input buffer.

        Split into ``input_audio_buffer.append`` events of at most ``chunk_bytes``
        each, base64-encoded.

        Raises:
            ValueError: an odd number of bytes (not whole 16-bit samples), or a bad chunk size.
        """
        if len(pcm16) % 2:
            raise ValueError("PCM16 audio must be a whole number of 16-bit samples")
        if chunk_bytes < 2 or chunk_bytes % 2:
            raise ValueError("chunk_bytes must be an even number >= 2")
        view = memoryview(pcm16)
        for start in range(0, len(view), chunk_bytes):
            chunk = base64.b64encode(view[start : start + chunk_bytes]).decode("ascii")
            await self.send({"type": "input_audio_buffer.append", "audio": chunk})

    async def commit_audio(self) -> None:
        await self.send({"type": "input_audio_buffer.commit"})

    async def clear_audio(self) -> None:
        await self.send({"type": "input_audio_buffer.clear"})

    async def create_response(self, response: Mapping[str, Any] | None = None) -> None:
        """Send ``response.create`` (with per-response overrides, if given)."""
        event: dict[str, Any] = {"type": "response.create"}
        if response:
            event["response"] = dict(response)
        await self.send(event)

    async def cancel_response(self, response_id: str | None = None) -> None:
        event: dict[str, Any] = {"type": "response.cancel"}
        if response_id is not None:
            event["response_id"] = response_id
        await self.send(event)

    async def send_text(self, text: str, *, respond: bool = True) -> None:
        """Add a user text message to the conversation and, by default, ask for a response."""
        await self.send(
            {
                "type": "conversation.item.create",
                "item": {
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "input_text", "text": text}],
                },
            }
        )
        if respond:
            await self.create_response()

    # -- dispatch ----------------------------------------------------------------------

    async def _dispatch(self) -> None:
        ended: RealtimeError
        try:
            async for event in self.connection:
                await self._deliver(event)
            ended = ConnectionClosed(self.connection.close_code, self.connection.close_reason)
        except RealtimeError as exc:
            ended = exc
        except Exception as exc:  # the task's top: a bug must not reach the loop
            client_log.error("rtrelay.client: dispatch failed", exc_info=True)
            ended = RealtimeError(f"internal error in rtrelay.client: {exc!r}")
            ended.__cause__ = exc
            await self.connection.close(1011, "client error")
        self._ended = ended
        waiters, self._waiters = self._waiters, []
        for _, _, future in waiters:
            if not future.done():
                future.set_exception(ended)

    async def _deliver(self, event: Event) -> None:
        self.conversation.apply(event)
        kind = canonical_type(event["type"])
        for waiter_type, predicate, future in list(self._waiters):
            if future.done() or waiter_type not in (kind, WILDCARD):
                continue
            if predicate is not None and not self._safe_predicate(predicate, event):
                continue
            future.set_result(event)
        for handler in (*self._handlers.get(kind, ()), *self._handlers.get(WILDCARD, ())):
            await self._call(handler, event)

    @staticmethod
    def _safe_predicate(predicate: Callable[[Event], bool], event: Event) -> bool:
        try:
            return bool(predicate(event))
        except Exception:  # a boundary: a user predicate must not stop dispatch
            client_log.error("rtrelay.client: wait_for predicate failed", exc_info=True)
            return False

    @staticmethod
    async def _call(handler: Handler, event: Event) -> None:
        try:
            result = handler(event)
            if inspect.isawaitable(result):
                await result
        except Exception:  # a boundary: a user handler must not stop dispatch
            client_log.error(
                "rtrelay.client: handler %r failed on %s",
                handler,
                event.get("type"),
                exc_info=True,
            )

    @property
    def ended(self) -> RealtimeError | None:
        """Why dispatch ended (``ConnectionClosed`` for a clean end), or ``None`` while running."""
        return self._ended
