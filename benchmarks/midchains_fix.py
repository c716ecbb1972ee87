"""MidChains FIX market data throughput: X/W messages per second from the socket to engine book
events, beside the recv-only floor on the same bytes. Never part of the pass/fail tests.

A raw socket writer (its own process, 127.0.0.1) answers our Logon and then writes, in one
``sendall``, a pre-encoded stream of ``N`` market-data messages (built with simplefix before the
clock starts, so the writer is never the limit): X Incremental Refresh with one group (a New or a
Delete) or two (a change: Delete + New, MID-14), a trade print now and then, and a W every tenth
message, for one pair whose book random-walks around 121.

- ``floor``: a plain anyio TCP client sends the same Logon bytes and only receives until every
  byte of the stream is in.
- ``figure``: the adapter's path without the engine: the transport's :class:`FixConnection`
  (reads 64 KiB at a time), the sans-I/O :class:`FixSession` (codec: simplefix framing and the
  9/10 checks; sequence check; the store's write of the next expected number, to a SQLite file as
  in production) and :class:`MdFeed` (L3 book, L2 derived) publishing into a sink that applies
  every ``BookUpdate`` to the engine's :class:`Book`, as the runtime does before strategies.

Rounds alternate floor and figure (the shared VM's speed changes hit both alike); the best of each
is printed, with the ratio.

Then the order round trip: the order-entry adapter ``midchains_fix`` against the MidChains sandbox
(its own process, 127.0.0.1; its 001 rate limits raised so that pacing is not measured, and the
adapter's budget raised to match), one passive limit buy at a time: ``submit`` -> D on the wire ->
the sandbox's SimVenue -> ExecutionReport ``39=0`` -> the adapter's ``OrderUpdate(new)`` at the
sink. p50/p99 of ``--orders`` such (after ``--warmup``).

Run: ``python benchmarks/midchains_fix.py [--messages N] [--rounds R] [--orders N]`` (about 30 s
on 2 vCPUs).
"""

from __future__ import annotations

import argparse
import multiprocessing
import multiprocessing.queues
import multiprocessing.synchronize
import random
import socket
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

import anyio
import simplefix  # type: ignore[import-untyped]

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from adapters.midchains.adapter import MidChainsFixAdapter  # noqa: E402
from adapters.midchains.codec import FixMessage  # noqa: E402
from adapters.midchains.mdfeed import MdFeed  # noqa: E402
from adapters.midchains.options import MidChainsFixOptions  # noqa: E402
from adapters.midchains.sandbox import MidChainsSandbox  # noqa: E402
from adapters.midchains.session import FixSession, SessionConfig  # noqa: E402
from adapters.midchains.store import SequenceStore  # noqa: E402
from adapters.midchains.transport import FixConnection  # noqa: E402
from engine.clock import WallClock  # noqa: E402
from engine.model import (  # noqa: E402
    Book,
    BookUpdate,
    Instrument,
    Order,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Side,
    TimeInForce,
    Trade,
)
from engine.venue import RateLimit  # noqa: E402

GATEWAY, CLIENT, SYMBOL = "MIDCDEV1", "YOURSENDCOMP", "LTCUSD"


def frame(msg_type: str, seq: int, body: list[tuple[int, str]], sender: str = GATEWAY, target: str = CLIENT) -> bytes:
    message = simplefix.FixMessage()
    message.append_pair(8, "FIX.4.2", header=True)
    message.append_pair(35, msg_type, header=True)
    message.append_pair(49, sender, header=True)
    message.append_pair(56, target, header=True)
    message.append_pair(34, str(seq), header=True)
    message.append_pair(52, "20210713-14:06:54", header=True)
    for tag, value in body:
        message.append_pair(tag, value)
    data: bytes = message.encode()
    return data


def market(count: int, seed: int = 7) -> bytes:
    """The Logon answer then ``count`` market-data messages, numbered from 2."""
    rng = random.Random(seed)
    live: dict[str, tuple[str, Decimal]] = {}
    out = [frame("A", 1, [(98, "0"), (108, "60")])]
    next_id = 1
    for seq in range(2, count + 2):
        if seq % 10 == 0:
            out.append(frame("W", seq, [(55, SYMBOL), (262, "0"), (268, "1"), (269, "2"), (270, "121.05"),
                                        (271, "0.91")]))
            continue
        groups: list[tuple[int, str]] = []
        roll = rng.random()
        if roll < 0.05:
            groups += [(279, "0"), (269, "2"), (278, f"T{seq}"), (55, SYMBOL), (270, "121.05"), (271, "0.3")]
        else:
            if live and roll > 0.5:  # a Delete, and for a change the New that follows it
                order_id = rng.choice(list(live))
                side, _ = live.pop(order_id)
                groups += [(279, "2"), (269, side), (278, order_id), (55, SYMBOL)]
            if roll < 0.8 or not live:
                side = rng.choice("01")
                ticks = rng.randint(1, 100)
                price = Decimal(12100 - ticks if side == "0" else 12100 + ticks) / 100
                order_id = str(247697979505377327 + next_id)
                next_id += 1
                live[order_id] = (side, price)
                size = Decimal(rng.randint(1, 5000)) / 1000
                groups += [(279, "0"), (269, side), (278, order_id), (55, SYMBOL), (270, str(price)),
                           (271, str(size)), (58, f"62WM7F95Y{next_id}")]
        n = sum(1 for tag, _ in groups if tag == 279)
        out.append(frame("X", seq, [(262, "0"), (268, str(n)), *groups]))
    return b"".join(out)


def _serve(listener: socket.socket, blob: bytes, connections: int) -> None:
    """The writer (a child process): per connection, read the Logon, write ``blob``, drain."""
    for _ in range(connections):
        conn, _ = listener.accept()
        with conn:
            seen = b""
            while b"\x0110=" not in seen:
                seen += conn.recv(4096)
            conn.sendall(blob)
            try:
                while conn.recv(65536):
                    pass
            except OSError:
                pass


def logon_bytes() -> bytes:
    return frame("A", 1, [(98, "0"), (108, "60")], sender=CLIENT, target=GATEWAY)


async def floor(port: int, size: int) -> float:
    stream = await anyio.connect_tcp("127.0.0.1", port)
    async with stream:
        await stream.send(logon_bytes())
        got = 0
        start = 0.0
        while got < size:
            data = await stream.receive(65536)
            if not got:
                start = time.perf_counter()
            got += len(data)
        return time.perf_counter() - start


class CountingSink:
    """The runtime's first step with market data: apply the update to the book."""

    def __init__(self) -> None:
        self.book = Book("midchains", SYMBOL)
        self.events = 0

    def on_book(self, update: BookUpdate) -> None:
        self.book.apply(update)
        self.events += 1

    def on_trade(self, trade: Trade) -> None:
        self.events += 1


async def figure(port: int, count: int, store_dir: str, round_no: int) -> tuple[float, int]:
    """Seconds from the first byte to the last message through codec, session, L3 and L2 publish."""
    clock = WallClock()
    store = SequenceStore(Path(store_dir) / f"md-{round_no}.sqlite", f"{CLIENT}->{GATEWAY}")
    session = FixSession(SessionConfig(CLIENT, GATEWAY), store)
    feed = MdFeed("midchains", [SYMBOL], 0, 0)
    feed.start()
    feed.subscribe([SYMBOL], 0)
    sink = CountingSink()
    seen = 0
    start = 0.0
    done = anyio.Event()

    async def on_message(message: FixMessage) -> None:
        nonlocal seen, start
        if not seen:
            start = time.perf_counter()
            feed.logged_on(0)
            for event in feed.tick(0):  # settle at once: every later X is a delta
                sink.on_book(event)  # type: ignore[arg-type]
        seen += 1
        for event in feed.on_message(message, clock.now_ns()):
            if type(event) is BookUpdate:
                sink.on_book(event)
            else:
                sink.on_trade(event)  # type: ignore[arg-type]
        if seen == count:
            done.set()

    stream = await anyio.connect_tcp("127.0.0.1", port)
    connection = FixConnection(session, stream, clock, on_message)
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(connection.run)
        await done.wait()
        elapsed = time.perf_counter() - start
        tasks.cancel_scope.cancel()
    await stream.aclose()
    store.close()
    if feed.resync_reason is not None or feed.counters["refused_malformed"]:
        raise SystemExit(f"the feed refused the benchmark's stream: {feed.resync_reason} {dict(feed.counters)}")
    return elapsed, sink.events


def _sandbox(ports: multiprocessing.queues.Queue, stop: multiprocessing.synchronize.Event) -> None:  # type: ignore[name-defined]
    """The MidChains sandbox in its own process (so the round trip does not share our loop's CPU)."""

    async def serve() -> None:
        async with MidChainsSandbox(message_rate=1_000_000, order_rate=1_000_000) as venue:
            ports.put(venue.port)
            while not stop.is_set():
                await anyio.sleep(0.05)

    anyio.run(serve)


class AckSink:
    """Wakes the benchmark when the order it waits for is acknowledged (an ER 39=0)."""

    def __init__(self) -> None:
        self.waiting = ""
        self.acked = anyio.Event()
        self.refused: list[str] = []

    def on_order_update(self, update: OrderUpdate) -> None:
        if update.client_id == self.waiting:
            if update.status is OrderStatus.NEW:
                self.acked.set()
            else:
                self.refused.append(f"{update.status}: {update.reason}")
                self.acked.set()

    def on_fill(self, fill: object) -> None:
        return None

    def on_venue_status(self, venue: str, status: str, detail: str = "") -> None:
        return None

    def __getattr__(self, name: str) -> object:  # the other VenueEvents calls: nothing to do
        return lambda *args, **kwargs: None


async def order_rtt(port: int, orders: int, warmup: int, state: Path) -> list[int]:
    """Nanoseconds from ``submit`` to the acknowledgement at the sink, one order at a time."""
    sink = AckSink()
    options = MidChainsFixOptions(host="127.0.0.1", port=port, tls=False, sender_comp_id=CLIENT, heartbeat_s=30,
                                  state_file=state)
    instrument = Instrument(SYMBOL, "midchains", tick_size=Decimal("0.01"), lot_size=Decimal("0.0001"))
    rtts: list[int] = []
    async with anyio.create_task_group() as tasks:
        adapter = MidChainsFixAdapter("midchains", options, [instrument], WallClock(), sink)  # type: ignore[arg-type]
        adapter.set_rate_limits((RateLimit("all", 1_000_000, Decimal(1)), RateLimit("orders", 1_000_000, Decimal(1))))
        adapter.bind(tasks)
        await adapter.connect()
        for number in range(warmup + orders):
            order = Order(f"rtt-{number}", "bench", "midchains", SYMBOL, Side.BUY, Decimal("0.1"), Decimal(100),
                          OrderType.LIMIT, TimeInForce.GTC, False)
            sink.waiting, sink.acked = order.client_id, anyio.Event()
            start = time.perf_counter_ns()
            adapter.submit(order)
            with anyio.fail_after(10):
                await sink.acked.wait()
            if number >= warmup:
                rtts.append(time.perf_counter_ns() - start)
        await adapter.close()
        tasks.cancel_scope.cancel()
    if sink.refused:
        raise SystemExit(f"the sandbox refused benchmark orders: {sink.refused[:3]}")
    return rtts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--orders", type=int, default=500, help="order round trips measured (0: skip)")
    parser.add_argument("--warmup", type=int, default=50)
    args = parser.parse_args()
    blob = market(args.messages)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    port = listener.getsockname()[1]
    writer = multiprocessing.Process(target=_serve, args=(listener, blob, 2 * args.rounds), daemon=True)
    writer.start()
    floors: list[float] = []
    figures: list[float] = []
    events = 0
    with tempfile.TemporaryDirectory() as store_dir:
        for round_no in range(args.rounds):
            floors.append(anyio.run(floor, port, len(blob)))
            elapsed, events = anyio.run(figure, port, args.messages, store_dir, round_no)
            figures.append(elapsed)
    writer.join(timeout=5)
    messages = args.messages
    floor_rate = messages / min(floors)
    figure_rate = messages / min(figures)
    print(f"midchains_fix_md_messages={messages} bytes={len(blob)} ({len(blob) / messages:.0f} B/message)")
    print(f"midchains_fix_md_floor_msgs_per_s={floor_rate:,.0f}")
    print(f"midchains_fix_md_wire_msgs_per_s={figure_rate:,.0f}  (engine events: {events:,})")
    print(f"midchains_fix_md_wire_ratio={figure_rate / floor_rate:.4f}")
    if args.orders:
        ports: multiprocessing.queues.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
        stop = multiprocessing.Event()
        venue = multiprocessing.Process(target=_sandbox, args=(ports, stop), daemon=True)
        venue.start()
        try:
            with tempfile.TemporaryDirectory() as state_dir:
                rtts = sorted(anyio.run(order_rtt, ports.get(timeout=30), args.orders, args.warmup,
                                        Path(state_dir) / "oe.sqlite"))
        finally:
            stop.set()
            venue.join(timeout=10)
        p50, p99 = rtts[len(rtts) // 2], rtts[min(len(rtts) - 1, len(rtts) * 99 // 100)]
        print(f"midchains_fix_order_rtt_orders={len(rtts)}")
        print(f"midchains_fix_order_rtt_p50_us={p50 / 1000:.0f}")
        print(f"midchains_fix_order_rtt_p99_us={p99 / 1000:.0f}")


if __name__ == "__main__":
    main()
