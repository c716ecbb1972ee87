"""The ``midchains_ws`` adapter over loopback against the MidChains sandbox's WebSocket API, both in
this process (so the figures include the sandbox's matching and JSON writing: they say how fast the
adapter is fed end to end on one machine, not what the venue could do).

Run: ``python benchmarks/bench_midchains_ws.py`` (about 10 s). No synthetic market; the sandbox's
order and private-request limits are raised (so the round trip is not the 4/s throttle's, and the
adapter's pacer is given the same raised limits). Prints ``key=value`` lines:

- ``midchains_ws_book_msgs_per_s``: a participant's resting orders placed back to back at the
  sandbox (one ``book`` push with one ``U`` each), received by the adapter, decoded, applied to
  the L3 book and delivered as L2 ``BookUpdate`` deltas to a counting sink, first to last;
- ``midchains_ws_book_floor_msgs_per_s``: the same pushes received by a bare websockets client
  that only counts them (logged in with its own user): what the sandbox and the socket allow;
- ``midchains_ws_order_rtt_p50_us`` / ``..._p99_us``: ``addorder`` of a passive limit order, one at
  a time, from ``adapter.submit`` to the NEW ``OrderUpdate`` in the sink (the ``addorder`` answer
  and the ``order`` push over the socket, the sandbox's matching included); each order is
  cancelled (``cancelorder`` -> ``order`` Cancelled) before the next.
"""

from __future__ import annotations

import base64
import json
import platform
import statistics
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.serialization import load_der_public_key
from websockets.asyncio.client import connect as ws_connect

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from adapters.midchains.sandbox import MidChainsSandbox, WsUser  # noqa: E402
from adapters.midchains.ws_adapter import MidChainsWsAdapter, MidChainsWsOptions  # noqa: E402
from engine.clock import WallClock  # noqa: E402
from engine.model import BookUpdate, Instrument, Order, OrderStatus, OrderUpdate, Side, TimeInForce  # noqa: E402
from engine.venue import RateLimit  # noqa: E402

D = Decimal
LTC = "LTCUSD"
CHANGES = 5000
ORDERS = 300
PASSWORD = "bench-password-0123456789"
BIG = (RateLimit("all", 100_000, D(1), 100_000), RateLimit("orders", 100_000, D(1), 100_000),
       RateLimit("public", 3, D(1), 6))


class CountingSink:
    """The runtime's stand-in: counts books, remembers when each order reached a status."""

    def __init__(self) -> None:
        self.books = 0
        self.book_done = anyio.Event()
        self.book_target = 0
        self.status: dict[str, tuple[OrderStatus, int]] = {}
        self.changed = anyio.Event()

    def on_book(self, update: BookUpdate) -> None:
        self.books += 1
        if self.book_target and self.books >= self.book_target:
            self.book_done.set()

    def on_order_update(self, update: OrderUpdate) -> None:
        self.status[update.client_id] = (update.status, time.perf_counter_ns())
        self.changed.set()

    def on_trade(self, trade: Any) -> None: ...
    def on_fill(self, fill: Any) -> None: ...
    def on_venue_status(self, venue: str, status: str, detail: str = "") -> None: ...
    def on_instrument_status(self, status: Any) -> None: ...
    def on_account_event(self, event: Any) -> None: ...
    def on_anomaly(self, venue: str, kind: str, detail: str) -> None: ...


async def floor(url: str, count: int, place: Any) -> float:
    """Pushes per second a bare client receives (logged in as its own user, subscribed to LTCUSD)."""
    async with ws_connect(url, max_size=None) as ws:
        await ws.send('{"type":"challenge"}')
        key = load_der_public_key(base64.b64decode(json.loads(await ws.recv())["key"]))
        sealed = base64.b64encode(key.encrypt(PASSWORD.encode(), padding.PKCS1v15())).decode()  # type: ignore[union-attr]
        await ws.send(json.dumps({"type": "login", "userid": "floor", "pass": sealed}))
        await ws.send(json.dumps({"type": "subscribe", "request": [{"msg": "book", "security": LTC, "dest": "CROX"}]}))
        with anyio.move_on_after(1):  # the login pushes and the snapshot burst
            while True:
                await ws.recv()
        started = time.perf_counter()
        place(count)
        seen = 0
        while seen < count:
            if '"type":"book"' in await ws.recv():
                seen += 1
        return count / (time.perf_counter() - started)


async def main() -> None:
    users = (WsUser("bench", PASSWORD), WsUser("floor", PASSWORD))
    async with MidChainsSandbox(ws_users=users, order_rate=10**6, ws_private_rate=(10**6, 10**6)) as venue:
        prices = iter(range(10**9))

        def place(count: int) -> None:
            for _ in range(count):
                venue.place(LTC, Side.BUY, D("0.1"), D(100) - D(next(prices) % 400) / 100)

        floor_rate = await floor(venue.ws_url, CHANGES, place)
        with tempfile.TemporaryDirectory() as folder:
            secret = Path(folder) / "password"
            secret.write_text(PASSWORD)
            sink = CountingSink()
            options = MidChainsWsOptions(url=venue.ws_url, userid="bench", password_file=secret, book_quiet_ms=50)
            adapter = MidChainsWsAdapter("midchains", options, [Instrument(LTC, "midchains", lot_size=D("0.0001"))],
                                         WallClock(), sink)  # type: ignore[arg-type]
            adapter.set_rate_limits(BIG)
            async with anyio.create_task_group() as tasks:
                adapter.bind(tasks)
                await adapter.connect()
                adapter.subscribe([LTC])
                with anyio.fail_after(30):
                    while sink.books == 0:  # the snapshot: the book is whole
                        await anyio.sleep(0.01)
                sink.book_target = sink.books + CHANGES
                started = time.perf_counter()
                place(CHANGES)
                with anyio.fail_after(60):
                    await sink.book_done.wait()
                book_rate = CHANGES / (time.perf_counter() - started)
                rtts = []
                for n in range(ORDERS):
                    order = Order(f"b{n}", "bench", "midchains", LTC, Side.BUY, D("0.1"), D(50), tif=TimeInForce.GTC)
                    sent = time.perf_counter_ns()
                    adapter.submit(order)
                    with anyio.fail_after(10):
                        while sink.status.get(order.client_id, (None,))[0] is not OrderStatus.NEW:
                            sink.changed = anyio.Event()
                            await sink.changed.wait()
                    rtts.append((sink.status[order.client_id][1] - sent) / 1000)
                    order.transition(OrderStatus.NEW)
                    order.transition(OrderStatus.PENDING_CANCEL)
                    adapter.cancel(order)
                    with anyio.fail_after(10):
                        while sink.status[order.client_id][0] is not OrderStatus.CANCELLED:
                            sink.changed = anyio.Event()
                            await sink.changed.wait()
                await adapter.close()
                tasks.cancel_scope.cancel()
    cuts = statistics.quantiles(rtts, n=100)
    print(f"machine={platform.machine()} python={platform.python_version()} changes={CHANGES} orders={ORDERS}")
    print(f"midchains_ws_book_msgs_per_s={book_rate:.0f}")
    print(f"midchains_ws_book_floor_msgs_per_s={floor_rate:.0f}")
    print(f"midchains_ws_order_rtt_p50_us={statistics.median(rtts):.0f}")
    print(f"midchains_ws_order_rtt_p99_us={cuts[98]:.0f}")


if __name__ == "__main__":
    anyio.run(main)
