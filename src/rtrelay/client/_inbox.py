"""A bounded FIFO of received events that can be ended, waking every waiter."""

from __future__ import annotations

import asyncio
import collections
from typing import Generic, TypeVar

__all__ = ["EndOfStream", "Inbox"]

T = TypeVar("T")


class EndOfStream(Exception):
    """:meth:`Inbox.get` found the inbox ended and empty."""


class Inbox(Generic[T]):
    """Events waiting for the user, bounded so that a reader who stops reading
    stops the socket being read (TCP backpressure) instead of growing memory.

    ``asyncio.Queue`` cannot wake its getters when the stream ends, hence this.
    """

    def __init__(self, maxsize: int) -> None:
        self._items: collections.deque[T] = collections.deque()
        self._maxsize = maxsize
        self._not_empty = asyncio.Event()
        self._not_full = asyncio.Event()
        self._not_full.set()
        self._ended = False

    def __len__(self) -> int:
        return len(self._items)

    @property
    def ended(self) -> bool:
        return self._ended

    async def put(self, item: T) -> None:
        """Append ``item``, waiting while the inbox is full; dropped once ended."""
        while len(self._items) >= self._maxsize and not self._ended:
            self._not_full.clear()
            await self._not_full.wait()
        if self._ended:
            return
        self._items.append(item)
        self._not_empty.set()

    async def get(self) -> T:
        """The oldest item; items put before :meth:`end` are still returned.

        Raises:
            EndOfStream: ended and empty.
        """
        while not self._items:
            if self._ended:
                raise EndOfStream
            self._not_empty.clear()
            await self._not_empty.wait()
        item = self._items.popleft()
        self._not_full.set()
        return item

    def end(self) -> None:
        """No more items will come: wake every waiting ``get`` and ``put``."""
        self._ended = True
        self._not_empty.set()
        self._not_full.set()
