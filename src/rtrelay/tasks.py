"""Stopping a task we own: the one cancellation idiom (STYLE.md, "Swallowing CancelledError").

Cancelling a task and awaiting it ends in a ``CancelledError`` that is ours: it must not
escape. But the same exception also arrives when *our* caller cancels *us* while we
wait, and that one must escape, or a shutdown or a client's hang-up is silently turned
into "carry on". ``Task.cancelling()`` tells the two apart: it counts the cancel requests
aimed at the current task that are still pending. Comparing it with its value before
the wait (rather than testing it for zero) also keeps a cleanup that runs *after* the
caller was cancelled (a ``finally`` on the way out) from being cut short here.
"""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["cancel_and_wait"]


async def cancel_and_wait(task: asyncio.Future[Any]) -> None:
    """Cancel ``task`` (ours) and wait until it has finished.

    Returns normally when the task ended cancelled or returned (it may catch the
    cancel and finish its work). A task that *failed* is not swallowed: its
    exception is raised here, as awaiting it would, so a bug in a background loop
    surfaces where it is stopped rather than in a never-retrieved-exception log line.
    A cancel aimed at the caller wins over both.

    Raises:
        asyncio.CancelledError: the caller was cancelled while waiting (the task was
            asked to stop and may still be finishing; its own exception, if any, is
            chained as the cause).
        RuntimeError: ``task`` is the current task (it would wait for itself).
        Exception: whatever the task itself raised.
    """
    current = asyncio.current_task()
    if task is current:
        raise RuntimeError("a task cannot cancel and wait for itself")
    before = current.cancelling() if current is not None else 0

    def caller_cancelled() -> bool:
        return current is not None and current.cancelling() > before

    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        if caller_cancelled():
            raise
        return  # the one we caused
    except Exception as exc:
        if caller_cancelled():
            raise asyncio.CancelledError() from exc
        raise
    if caller_cancelled():
        # The task caught our cancel and returned; the caller's cancel, forwarded to the
        # task by ``await``, was spent there and must not be lost.
        raise asyncio.CancelledError()
