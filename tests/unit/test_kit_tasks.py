"""adapters.kit.tasks: the loops an adapter's ``close`` stops, and a failed ``connect`` leaves none
running (what the Pulse and MidChains WebSocket adapters each did with their own cancel scopes)."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from adapters.kit.tasks import StoppableTasks


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def _forever(started: list[str], ended: list[str], name: str) -> None:
    started.append(name)
    try:
        await anyio.sleep_forever()
    finally:
        ended.append(name)


@pytest.mark.anyio
async def test_cancel_stops_every_loop_and_leaves_the_group_running() -> None:
    started: list[str] = []
    ended: list[str] = []
    async with anyio.create_task_group() as tg:

        def start_task(fn: Any, *args: Any, name: str | None = None) -> None:
            tg.start_soon(fn, *args, name=name)

        tasks = StoppableTasks(start_task)
        tasks.spawn(_forever, started, ended, "writer", name="writer")
        tasks.spawn(_forever, started, ended, "ticker")
        with anyio.fail_after(5):
            while len(started) < 2:
                await anyio.sleep(0.001)
        tasks.cancel()
        with anyio.fail_after(5):
            while len(ended) < 2:
                await anyio.sleep(0.001)
        assert sorted(ended) == ["ticker", "writer"]
        assert not tg.cancel_scope.cancel_called  # the engine's group goes on


@pytest.mark.anyio
async def test_a_failed_connect_stops_the_loops_started_for_it_and_raises() -> None:
    started: list[str] = []
    ended: list[str] = []

    async def refused() -> None:
        await anyio.sleep(0.01)
        raise ConnectionError("refused")

    async with anyio.create_task_group() as tg:
        tasks = StoppableTasks(lambda fn, *args, name=None: tg.start_soon(fn, *args, name=name))
        tasks.spawn(_forever, started, ended, "writer")
        with pytest.raises(ConnectionError, match="refused"):
            await tasks.or_cancel(refused)
        with anyio.fail_after(5):
            while not ended:
                await anyio.sleep(0.001)
    assert ended == ["writer"]


@pytest.mark.anyio
async def test_a_connect_that_succeeds_leaves_the_loops_running() -> None:
    started: list[str] = []
    ended: list[str] = []

    async def ok() -> None:
        await anyio.sleep(0)

    async with anyio.create_task_group() as tg:
        tasks = StoppableTasks(lambda fn, *args, name=None: tg.start_soon(fn, *args, name=name))
        tasks.spawn(_forever, started, ended, "writer")
        await tasks.or_cancel(ok)
        await anyio.sleep(0.05)
        assert ended == []
        tasks.cancel()
    assert ended == ["writer"]
