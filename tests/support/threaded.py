"""A counterpart (a sandbox venue, a scripted gateway) served from a thread and event loop of its own.

Why: a counterpart on the test's own loop reads a frame only when that loop gets to it, so whatever
the code under test does right after a write (a store write, a burst of report handling, the process
descheduled on a loaded machine) delays the read and the arrival stamp. A rate-limit test counting
arrivals then sees frames bunched that left the client apart: CI saw a 4 orders/s count broken that
way with every departure 1.1 s apart. In a thread of its own the counterpart reads as soon as the
bytes are there (blocking I/O releases the GIL, which is handed over every 5 ms otherwise), as a
venue on another machine would, and its arrival times are the wire's.

    async with served_in_thread(lambda: MidChainsSandbox(...)) as served:
        venue = served.it                      # its port etc., read-only from the test
        served.call(venue.violations)          # anything else runs on the counterpart's own loop
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

import anyio
import anyio.abc
import anyio.to_thread

T = TypeVar("T")
R = TypeVar("R")

#: how long the counterpart may take to start or stop before the test fails naming it
START_STOP_S = 30.0


@dataclass
class Served(Generic[T]):
    """The counterpart ``it`` and its loop: :meth:`call` runs a function there and returns its result."""

    it: T
    loop: asyncio.AbstractEventLoop

    def call(self, function: Callable[[], R], timeout_s: float = 10.0) -> R:
        async def run() -> R:
            return function()

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout_s)

    async def run(self, function: Callable[[], Awaitable[R]]) -> R:
        """Await ``function()`` on the counterpart's loop (its streams belong to that loop)."""
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(function(), self.loop))  # type: ignore[arg-type]


@asynccontextmanager
async def served_in_thread(open_: Callable[[], AbstractAsyncContextManager[T]]) -> AsyncIterator[Served[T]]:
    """Enter ``open_()`` on a new thread's asyncio loop, yield it while it serves, exit it there."""
    started = threading.Event()
    box: list[Served[T]] = []
    failure: list[BaseException] = []
    stop: list[asyncio.Event] = []

    async def serve() -> None:
        stop.append(asyncio.Event())
        async with open_() as it:
            box.append(Served(it, asyncio.get_running_loop()))
            started.set()
            await stop[0].wait()

    def main() -> None:
        try:
            asyncio.run(serve())
        except BaseException as exc:  # reported to the test, which would otherwise wait for nothing
            failure.append(exc)
        finally:
            started.set()

    thread = threading.Thread(target=main, name="counterpart", daemon=True)
    thread.start()
    await anyio.to_thread.run_sync(started.wait, START_STOP_S)
    if not box:
        if failure:
            raise RuntimeError("the counterpart did not start") from failure[0]
        raise RuntimeError(f"the counterpart did not start within {START_STOP_S:.0f} s")
    served = box[0]
    try:
        yield served
    finally:
        if thread.is_alive() and not failure:
            try:
                served.loop.call_soon_threadsafe(stop[0].set)
            except RuntimeError:  # its loop closed meanwhile: it failed, and says so below
                pass
        await anyio.to_thread.run_sync(thread.join, START_STOP_S)
        if failure:
            raise RuntimeError("the counterpart failed while serving") from failure[0]
        if thread.is_alive():
            raise RuntimeError(f"the counterpart did not stop within {START_STOP_S:.0f} s")


class Startable(Protocol):
    """A counterpart started into a task group and stopped (the scripted gateways)."""

    async def start(self, tasks: anyio.abc.TaskGroup) -> None: ...

    async def stop(self) -> None: ...


S = TypeVar("S", bound=Startable)


@asynccontextmanager
async def serving(counterpart: S) -> AsyncIterator[S]:
    """``counterpart`` started in a task group for as long as the context lasts: the scripted
    gateways as an async context manager, for :func:`served_in_thread`."""
    async with anyio.create_task_group() as tasks:
        await counterpart.start(tasks)
        try:
            yield counterpart
        finally:
            await counterpart.stop()
            tasks.cancel_scope.cancel()
