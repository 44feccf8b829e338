"""Spend news between relay processes, over Redis pub/sub, so budgets hold cluster-wide.

A budget is checked from memory on every ``response.create`` (``SpendBook.current``): the
session core does no I/O. What other relays spent reaches that memory when the key's
spend is reloaded from the store (every 10 s), so a budget spent through one host would
let another host start a response or two more. With Redis configured, every process
publishes what it bills (key, cost) the moment it bills it, and adds what the others
publish to its own ``SpendBook``: another host refuses at its next ``response.create``.

The news is an accelerator, never the record: the ledger is. A message lost (Redis down,
a full outbox) only means that spend arrives with the next reload from the store, as it
did without Redis; ``SpendBook`` takes the larger of the store's figure and its own, so
news already counted is never counted twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, Final

from rtrelay.log import gate_log
from rtrelay.tasks import cancel_and_wait

if TYPE_CHECKING:
    from rtrelay.ledger.writer import SpendBook

__all__ = ["CHANNEL", "SpendFeed"]

CHANNEL: Final = "rtrelay:spend"
_OUTBOX: Final = 4096
"""News waiting to be published; past it, news is dropped (the store carries the spend)."""
_MAX_NEWS: Final = Decimal(10**9)
"""No one bill is this large: news claiming more is not news from a relay."""
_RETRY: Final = (0.1, 0.5, 1.0, 2.0, 5.0)
"""Seconds before resubscribing after the subscription broke, growing to the last."""


class SpendFeed:
    """Publishes this process's spend and applies the other processes' to ``spend``.

    ``redis`` is a client of its own: a subscription blocks on reads, so it must not
    share the limiters' client and its short read timeout.
    """

    def __init__(self, redis: Any, spend: SpendBook) -> None:
        self._redis = redis
        self._spend = spend
        self._origin = secrets.token_hex(8)  # this process (a host's workers share a name)
        self._outbox: asyncio.Queue[bytes] = asyncio.Queue(_OUTBOX)
        self._tasks: list[asyncio.Task[None]] = []
        self._down = False
        self.dropped = 0
        """News not published: the outbox was full or Redis failed."""
        self.applied = 0
        """News from other processes added to this one's spend."""
        self.subscribed = asyncio.Event()

    def start(self) -> None:
        self._spend.on_add = self.announce
        self._tasks = [
            asyncio.create_task(self._publish(), name="rtrelay.spend-feed.publish"),
            asyncio.create_task(self._listen(), name="rtrelay.spend-feed.listen"),
        ]

    async def close(self) -> None:
        self._spend.on_add = None
        for task in self._tasks:
            await cancel_and_wait(task)
        await self._redis.aclose()

    def announce(self, key_id: str, cost: Decimal) -> None:
        """``SpendBook``'s hook: queue the news (no I/O on the caller's path)."""
        try:
            self._outbox.put_nowait(f"{self._origin} {key_id} {cost}".encode())
        except asyncio.QueueFull:
            self.dropped += 1

    async def _publish(self) -> None:
        while True:
            news = await self._outbox.get()
            try:
                await self._redis.publish(CHANNEL, news)
            except Exception:
                self.dropped += 1
                self._outage(
                    "spend news not published: other relays see it at their next "
                    "reload from the store"
                )
            else:
                self._recovered()

    async def _listen(self) -> None:
        attempt = 0
        while True:
            try:
                async with self._redis.pubsub() as pubsub:
                    await pubsub.subscribe(CHANNEL)
                    self.subscribed.set()
                    attempt = 0
                    self._recovered()
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            self._apply(message.get("data"))
            except asyncio.CancelledError:
                raise
            except Exception:
                self.subscribed.clear()
                self._outage("spend news subscription lost: retrying")
            await asyncio.sleep(_RETRY[min(attempt, len(_RETRY) - 1)])
            attempt += 1

    def _apply(self, data: object) -> None:
        if not isinstance(data, bytes):
            return
        parts = data.decode(errors="replace").split(" ")
        if len(parts) != 3 or parts[0] == self._origin:
            return  # malformed, or our own news coming back
        with contextlib.suppress(InvalidOperation):
            cost = Decimal(parts[2])
            if cost.is_finite() and 0 < cost < _MAX_NEWS:
                self._spend.add(parts[1], cost, announce=False)
                self.applied += 1

    def _outage(self, message: str) -> None:
        if not self._down:
            self._down = True
            gate_log.warning(message, extra={"event": "spend_feed_down"}, exc_info=True)

    def _recovered(self) -> None:
        if self._down:
            self._down = False
            gate_log.info("spend news flowing again", extra={"event": "spend_feed_up"})
