"""call_with_deadline: free when a call never suspends, strict when it does."""

from __future__ import annotations

import asyncio

import pytest

from mofa_kernel._deadline import DeadlineExceeded, call_with_deadline


async def _immediate(value: int) -> int:
    return value


async def _raises() -> None:
    raise ValueError("inside")


async def _sleeps(seconds: float, value: str = "done") -> str:
    await asyncio.sleep(seconds)
    return value


async def test_result_of_a_coroutine_that_never_suspends() -> None:
    assert await call_with_deadline(_immediate(7), 0.001) == 7


async def test_exception_of_first_step_propagates() -> None:
    with pytest.raises(ValueError, match="inside"):
        await call_with_deadline(_raises(), 1.0)


async def test_suspending_coroutine_finishes_within_deadline() -> None:
    assert await call_with_deadline(_sleeps(0.01, "late"), 5.0) == "late"


async def test_suspending_coroutine_past_deadline_is_cancelled() -> None:
    cancelled = asyncio.Event()

    async def hangs() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(DeadlineExceeded):
        await call_with_deadline(hangs(), 0.05)
    assert cancelled.is_set()
    assert loop.time() - started < 2.0


async def test_no_deadline_waits() -> None:
    assert await call_with_deadline(_sleeps(0.01), None) == "done"


async def test_current_task_is_the_callers_throughout() -> None:
    caller = asyncio.current_task()
    seen = []

    async def looks() -> None:
        seen.append(asyncio.current_task())
        await asyncio.sleep(0)
        seen.append(asyncio.current_task())

    await call_with_deadline(looks(), 1.0)
    assert seen == [caller, caller]


async def test_plugin_own_timeout_inside_still_works() -> None:
    async def own_timeout() -> str:
        try:
            await asyncio.wait_for(asyncio.Event().wait(), 0.01)
        except asyncio.TimeoutError:
            return "own timeout handled"
        return "unexpected"

    assert await call_with_deadline(own_timeout(), 5.0) == "own timeout handled"


async def test_outside_cancellation_is_not_a_timeout() -> None:
    suspended = asyncio.Event()

    async def waits() -> None:
        suspended.set()
        await asyncio.Event().wait()

    async def caller() -> None:
        await call_with_deadline(waits(), 5.0)

    task = asyncio.create_task(caller())
    await suspended.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_non_coroutine_awaitable() -> None:
    future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().call_soon(future.set_result, 3)
    assert await call_with_deadline(future, 1.0) == 3


async def test_exception_thrown_after_suspension_reaches_caller() -> None:
    async def fails_late() -> None:
        await asyncio.sleep(0)
        raise KeyError("late")

    with pytest.raises(KeyError, match="late"):
        await call_with_deadline(fails_late(), 1.0)


@pytest.mark.skipif(not hasattr(asyncio.Task, "uncancel"), reason="uncancel() arrived in 3.11")
async def test_deadline_leaves_the_task_uncancelled() -> None:
    with pytest.raises(DeadlineExceeded):
        await call_with_deadline(_sleeps(10), 0.01)
    task = asyncio.current_task()
    assert task is not None
    assert task.cancelling() == 0
    assert await call_with_deadline(_sleeps(0.001, "again"), 1.0) == "again"
