"""``cancel_and_wait``: swallow the cancel we caused, never one aimed at the caller."""

from __future__ import annotations

import asyncio

import pytest

from rtrelay.tasks import cancel_and_wait


async def forever() -> None:
    await asyncio.Event().wait()


async def started(coro: object) -> asyncio.Task[None]:
    task = asyncio.create_task(coro)  # type: ignore[arg-type]
    await asyncio.sleep(0)  # let it reach its first await
    return task


async def test_a_running_task_is_cancelled_and_its_cancel_swallowed() -> None:
    task = await started(forever())
    await cancel_and_wait(task)
    assert task.cancelled()


async def test_a_task_that_already_ended_is_just_collected() -> None:
    done = await started(asyncio.sleep(0))
    await asyncio.sleep(0)
    await cancel_and_wait(done)
    cancelled = await started(forever())
    cancelled.cancel()
    await asyncio.sleep(0)
    await cancel_and_wait(cancelled)
    assert done.done() and cancelled.cancelled()


async def test_a_cancel_aimed_at_the_caller_propagates() -> None:
    async def slow_to_stop() -> None:
        try:
            await forever()
        finally:
            await forever()  # a cleanup that takes its time

    task = await started(slow_to_stop())
    stopper = await started(cancel_and_wait(task))
    await asyncio.sleep(0)  # the task is in its cleanup now
    stopper.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stopper
    assert stopper.cancelled()
    assert task.cancelled()  # the caller's cancel reached the task too


async def test_a_task_that_returns_on_cancel_does_not_eat_the_callers_cancel() -> None:
    stop = asyncio.Event()

    async def stops_gracefully() -> None:
        try:
            await forever()
        except asyncio.CancelledError:
            await stop.wait()  # finishing its work; absorbs a second cancel as well
            return

    async def absorbs() -> None:
        try:
            await stops_gracefully()
        except asyncio.CancelledError:
            return

    task = await started(absorbs())
    stopper = await started(cancel_and_wait(task))
    await asyncio.sleep(0)  # the task is finishing its work now
    stopper.cancel()  # forwarded to the task, which swallows it and returns
    with pytest.raises(asyncio.CancelledError):
        await stopper
    assert not task.cancelled()


async def test_the_tasks_own_exception_is_raised_not_swallowed() -> None:
    async def fails_on_cancel() -> None:
        try:
            await forever()
        except asyncio.CancelledError:
            raise LookupError("cleanup failed") from None

    task = await started(fails_on_cancel())
    with pytest.raises(LookupError, match="cleanup failed"):
        await cancel_and_wait(task)


async def test_a_task_that_had_already_failed_raises_its_exception() -> None:
    async def fails() -> None:
        raise LookupError("crashed earlier")

    task = await started(fails())
    assert task.done()
    with pytest.raises(LookupError, match="crashed earlier"):
        await cancel_and_wait(task)


async def test_a_cleanup_after_the_caller_was_cancelled_runs_to_the_end() -> None:
    """Called from a ``finally`` on the way out of a cancel, it still finishes its work."""
    helper = await started(forever())
    finished = False

    async def owner() -> None:
        nonlocal finished
        try:
            await forever()
        finally:
            await cancel_and_wait(helper)  # cancelling() is already 1 here
            finished = True

    task = await started(owner())
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert finished and helper.cancelled()


async def test_a_task_cannot_cancel_and_wait_for_itself() -> None:
    me = asyncio.current_task()
    assert me is not None
    with pytest.raises(RuntimeError, match="itself"):
        await cancel_and_wait(me)
    assert me.cancelling() == 0  # and it did not cancel itself either
