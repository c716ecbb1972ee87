"""The REST adapters' requests written through the pacer's write hold (adapters/kit/rest.py
``exchange(hold=...)``), judged by a server that stamps each request with the kernel's receive time
(tests/support/stamped_http.py): what the venue would count, however late the server reads.

The pacer decides when a request may leave; the client writes it later, and a stall in between
(the loop blocked, the process descheduled) moves the write. Without the hold, the requests a
stall delayed and those the pacer's next window lets go reach the venue inside one of its windows
(a loaded CI run counted 108 where Optimus allows 100)."""

from __future__ import annotations

import logging
import time
from collections import Counter
from decimal import Decimal
from typing import Any

import anyio
import httpx
import pytest
from support.stamped_http import STAMPED, StampedHttpServer

from adapters.kit import rest
from adapters.kit.pacing import ORDER_LANES, WirePacer, max_in_window
from engine.clock import NS_PER_S, WallClock
from engine.venue import RateLimit

pytestmark = pytest.mark.skipif(not STAMPED, reason="kernel receive stamps (SO_TIMESTAMPNS) are Linux's")

STALL_S = 0.8
LIMIT = 5


class _Sink:
    def on_venue_status(self, venue: str, status: str, detail: str) -> None:
        pass


class _Refused:
    http_status = 0

    def describe(self) -> str:
        return "refused"


def _link() -> rest.RestLink:
    return rest.RestLink("test", "v", _Sink(), Counter(), logging.getLogger("test"), 3,  # type: ignore[arg-type]
                         is_closed=lambda: False, has_session=lambda: True)


async def _burst_after_a_stall(server: StampedHttpServer, held: bool) -> int:
    """Ten orders against 5 a second; the pacer lets five go at once and, before any of them is
    written, the loop stalls STALL_S, so those five reach the socket late. Returns the most in any
    1 s window of the kernel's receive times."""
    pacer = WirePacer("v", [RateLimit("orders", LIMIT, Decimal(1))], ORDER_LANES, WallClock(), max_in_flight=10)
    requests: list[httpx.Request] = []

    async def stall(request: httpx.Request) -> None:
        requests.append(request)
        if len(requests) == LIMIT:  # the other four wait for their connections: none written yet
            time.sleep(STALL_S)  # blocks the loop, as a slow hook or a descheduled process does

    link = _link()
    async with httpx.AsyncClient(base_url=server.url, event_hooks={"request": [stall]},
                                 limits=httpx.Limits(max_connections=10)) as client:

        async def order() -> None:
            async with pacer.sending("order"):
                answer: Any = await rest.exchange(
                    link, client, "POST", "/orders", "order", headers={}, content=b"{}",
                    parse=lambda status, body: body, failure=_Refused, parse_error=ValueError,
                    kind_of=lambda exc: "malformed", withhold=False,
                    hold=pacer.hold if held else None, lane="order")
                assert answer == b"{}"

        async with anyio.create_task_group() as tasks:
            for _ in range(2 * LIMIT):
                tasks.start_soon(order)
    arrivals = server.arrivals_ns()
    assert len(arrivals) == 2 * LIMIT
    if held:
        assert pacer.hold.held >= 1  # the second five waited for the window counted from the writes
    return max_in_window(arrivals, NS_PER_S)


@pytest.mark.anyio
async def test_a_stall_between_release_and_write_never_bunches_the_venues_window() -> None:
    """Counted on the kernel's receive times: no 1 s window holds more than five. The pacer let
    the second five go one (guarded) window after the first five's release, 0.25 s after they
    were written; the hold kept them until a window after the writes."""
    with StampedHttpServer() as server:
        most = await _burst_after_a_stall(server, held=True)
    assert most <= LIMIT


@pytest.mark.anyio
async def test_without_the_hold_the_same_stall_breaks_the_window() -> None:
    """The control: the same workload with the hold off puts all ten in one second on the wire,
    so the test above measures the hold, not a quiet machine."""
    with StampedHttpServer() as server:
        most = await _burst_after_a_stall(server, held=False)
    assert most > LIMIT


@pytest.mark.anyio
async def test_writes_with_room_run_together_and_a_failed_one_still_counts() -> None:
    """Two requests on two connections write at once while the budget has room for both (no lock
    between them: a busy loop would otherwise make every request wait out the others' writes); a
    third waits, since both will spend. The first write fails (the trace's failure event): its
    token is spent all the same (a write cut short may have reached the venue), so when the second
    returns the third still waits, for the window. Ending twice (the failure event, then
    ``exchange``'s own cleanup) ends once."""
    pacer = WirePacer("v", [RateLimit("orders", 2, Decimal(60))], ORDER_LANES, WallClock())
    first, second, third = (rest.HeldWrite(pacer.hold, "order") for _ in range(3))
    with anyio.fail_after(5):
        await first("http11.send_request_headers.started", {})
        await second("http11.send_request_headers.started", {})
    entered = anyio.Event()

    async def begin_third() -> None:
        await third("http11.send_request_headers.started", {})
        entered.set()

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(begin_third)
        await anyio.wait_all_tasks_blocked()
        assert not entered.is_set()
        await first("http11.send_request_headers.failed", {})
        first.end()
        await anyio.wait_all_tasks_blocked()
        assert not entered.is_set()
        await second("http11.send_request_body.complete", {})
        await anyio.wait_all_tasks_blocked()
        assert not entered.is_set()  # two tokens spent, not one: the third waits for the window
        tasks.cancel_scope.cancel()
    assert first.traced and second.traced and not rest.HeldWrite(pacer.hold, "order").traced
