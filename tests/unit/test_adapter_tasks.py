"""An adapter's background task that fails ends alone: the engine's task group, and with it the
run, its shutdown cancels and its report, goes on (issue 17: one exception ended the process and
left orders working)."""

from __future__ import annotations

import logging
from decimal import Decimal

import anyio
import pytest

from adapters.paper.adapter import PaperAdapter
from engine.clock import SimClock
from engine.model import Instrument
from engine.runtime import Runtime
from engine.venue import AdapterOptions

T0 = 1_790_000_000_000_000_000


def test_a_failing_background_task_is_logged_and_the_task_group_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    clock = SimClock(T0)
    listed = [Instrument("MEBL", "psx", tick_size=Decimal("0.01"), lot_size=Decimal(1),
                         previous_close=Decimal(100))]
    adapter = PaperAdapter("psx", AdapterOptions(), listed, clock, Runtime(clock))
    survived: list[str] = []

    async def broken() -> None:
        raise TypeError("unhashable type: 'list'")

    async def neighbour() -> None:
        await anyio.sleep(0.05)
        survived.append("neighbour")

    async def main() -> None:
        async with anyio.create_task_group() as tg:
            adapter.bind(tg)
            adapter.start_task(broken, name="broken")
            tg.start_soon(neighbour)
        survived.append("task group")

    anyio.run(main, backend="asyncio")
    assert survived == ["neighbour", "task group"]
    failed = [r for r in caplog.records if "background task" in r.getMessage()]
    assert len(failed) == 1 and failed[0].levelno == logging.ERROR and failed[0].exc_info is not None
    assert "broken" in failed[0].getMessage() and "psx" in failed[0].getMessage()


def test_cancellation_still_ends_a_contained_task() -> None:
    clock = SimClock(T0)
    adapter = PaperAdapter("psx", AdapterOptions(), [], clock, Runtime(clock))
    ended: list[str] = []

    async def forever() -> None:
        try:
            await anyio.sleep_forever()
        finally:
            ended.append("cancelled")

    async def main() -> None:
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                adapter.bind(tg)
                adapter.start_task(forever)
                await anyio.sleep(0.01)
                tg.cancel_scope.cancel()

    anyio.run(main, backend="asyncio")
    assert ended == ["cancelled"]
