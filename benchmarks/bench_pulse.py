"""Pulse adapter over loopback: book notifications decoded and dispatched per second, and the
order round trip (submit -> the venue's acknowledgement reaches the sink).

Run: ``python benchmarks/bench_pulse.py`` (about 15 s). The sandbox runs in its own process (so the
two sides do not share one core), without background market, with its test methods on; the
adapter runs here with a sink that only counts. Prints ``key=value`` lines:

- ``pulse_book_msgs_per_s``: the sandbox sends a burst of real book changes (a far order entered
  and withdrawn, frames prepared first, then written back to back); the figure is how many
  ``book.*.raw`` messages per second the adapter received, decoded (JSON -> Decimal levels),
  checked for change-id continuity and delivered as ``BookUpdate`` to the sink, first to last.
- ``pulse_book_floor_msgs_per_s`` / ``pulse_book_wire_msgs_per_s`` / ``pulse_book_wire_ratio``:
  the frames of one such burst (recorded with the snapshot before it) replayed pre-framed by a
  server that is never the limit (benchmarks/wsfloor.py); a websockets client only receiving them
  is the floor, the same client passing each through the adapter's decode path
  (``PulseProtocol.receive`` = ``codec.decode_frame`` -> channel -> change-id check -> ``BookUpdate``)
  is the figure; the ratio is figure / floor.
- ``pulse_order_rtt_p50_us`` / ``..._p99_us``: ``private/buy`` of a passive limit order, one at a
  time, from ``adapter.submit`` to the NEW ``OrderUpdate`` in the sink (JSON-RPC answer over the
  socket, matching in the sandbox included); each order is cancelled before the next.

Two more modes measure the decode path alone, for instruction counts (callgrind) and profiles:

- ``python benchmarks/bench_pulse.py record FILE [--count N]``: the snapshot and the frames of one
  burst of N changes (default 40000), as the sandbox sent them, one frame per line (the same frames
  the floor replays);
- ``python benchmarks/bench_pulse.py decode FILE [--frames N] [--profile]``: the first N frames of FILE
  (the snapshot first) through ``decoding_path`` (the figure's path above), nothing else; with
  ``--profile`` under cProfile. Instructions per frame: run it under
  ``PYTHONHASHSEED=0 valgrind --tool=callgrind`` at two lengths (say 2000 and 6000) and divide the
  difference by 4000, so start-up and reading the file cancel.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
from websockets.asyncio.client import connect as ws_connect

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from adapters.pulse import codec  # noqa: E402
from adapters.pulse.adapter import PulseAdapter, PulseOptions  # noqa: E402
from adapters.pulse.codec import BookMsg  # noqa: E402
from adapters.pulse.protocol import APPLY, SNAPSHOT, PulseProtocol  # noqa: E402
from benchmarks.wsfloor import decode_file, floor_and_figure, write_frames  # noqa: E402
from engine.clock import WallClock  # noqa: E402
from engine.model import BookUpdate, Instrument, Order, OrderStatus, OrderUpdate, Side, TimeInForce  # noqa: E402
from engine.venue import RateLimit  # noqa: E402

SYMBOL = "BTC_USD-PERPETUAL"
SECRET_ENV = "PULSE_BENCH_SECRET"
BOOK_MESSAGES = int(os.environ.get("PULSE_BENCH_BOOK", "40000"))
ROUND_TRIPS = int(os.environ.get("PULSE_BENCH_ORDERS", "1500"))


class CountingSink:
    """The cheapest runtime stand-in: counts book updates, timestamps acks and cancels."""

    def __init__(self) -> None:
        self.books = 0
        self.first_ns = 0
        self.last_ns = 0
        self.acks: dict[str, int] = {}
        self.done: dict[str, int] = {}
        self.waiting: tuple[str, anyio.Event] | None = None

    def on_book(self, update: Any) -> None:
        self.books += 1
        now = time.perf_counter_ns()
        if not self.first_ns:
            self.first_ns = now
        self.last_ns = now

    def on_trade(self, trade: Any) -> None:
        pass

    def on_fill(self, fill: Any) -> None:
        pass

    def on_order_update(self, update: OrderUpdate) -> None:
        now = time.perf_counter_ns()
        if update.status is OrderStatus.NEW:
            self.acks[update.client_id] = now
        else:
            self.done[update.client_id] = now
        waiting = self.waiting
        if waiting is not None and waiting[0] == update.client_id:
            waiting[1].set()

    def on_venue_status(self, venue: str, status: str, detail: str = "") -> None:
        pass

    def on_instrument_status(self, status: Any) -> None:
        pass


def start_sandbox() -> tuple[subprocess.Popen[str], str]:
    env = dict(os.environ, **{SECRET_ENV: "bench-secret"})
    proc = subprocess.Popen(
        [sys.executable, "-m", "adapters.pulse.sandbox", "--port", "0", "--no-market", "--test-methods",
         "--client-id", "bench", "--client-secret-env", SECRET_ENV, "--log-level", "WARNING"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("pulse sandbox listening on "):
        proc.kill()
        raise SystemExit(f"sandbox did not start: {line!r}")
    return proc, line.rsplit(" ", 1)[1].strip()


async def wait_for(event: anyio.Event, seconds: float = 10) -> None:
    with anyio.fail_after(seconds):
        await event.wait()


async def run(url: str) -> dict[str, int]:
    os.environ[SECRET_ENV] = "bench-secret"
    sink = CountingSink()
    instrument = Instrument(SYMBOL, "pulse", tick_size=Decimal("0.5"), lot_size=Decimal(10))
    options = PulseOptions(url=url, client_id="bench", client_secret_env=SECRET_ENV, heartbeat_s=Decimal(10),
                           request_timeout_s=Decimal(30), public_trades=False)
    adapter = PulseAdapter("pulse", options, [instrument], WallClock(), sink)
    # the sandbox enforces no limit: lift the adapter's departure pacing (20/s assumed) so the
    # round trip measures the wire, not the budget
    adapter.set_rate_limits((RateLimit("all", 1_000_000, Decimal(1)),))
    results: dict[str, int] = {}
    async with anyio.create_task_group() as tg:
        adapter.bind(tg)
        await adapter.connect()
        adapter.subscribe([SYMBOL])
        with anyio.fail_after(10):
            while not sink.books:
                await anyio.sleep(0.01)

        # ---- book throughput
        await adapter._request("sandbox/blast_book", {"instrument_name": SYMBOL, "count": 2000})  # warm-up
        sink.books = 0
        sink.first_ns = 0
        await adapter._request("sandbox/blast_book", {"instrument_name": SYMBOL, "count": BOOK_MESSAGES})
        with anyio.fail_after(60):
            while sink.books < BOOK_MESSAGES:
                await anyio.sleep(0.01)
        elapsed = (sink.last_ns - sink.first_ns) / 1e9
        results["pulse_book_msgs_per_s"] = int((BOOK_MESSAGES - 1) / elapsed)
        if adapter.counters["book_gaps"]:
            raise SystemExit(f"book gaps during the burst: {adapter.counters['book_gaps']}")

        # ---- order round trip
        samples: list[int] = []
        for index in range(ROUND_TRIPS + 100):
            order = Order(f"b-{index}", "bench", "pulse", SYMBOL, Side.BUY, Decimal(10),
                          Decimal(40000) + Decimal("0.5") * (index % 20), tif=TimeInForce.GTC)
            acked = anyio.Event()
            sink.waiting = (order.client_id, acked)
            started = time.perf_counter_ns()
            adapter.submit(order)
            await wait_for(acked)
            if index >= 100:  # the first 100 warm up the path
                samples.append(sink.acks[order.client_id] - started)
            done = anyio.Event()
            sink.waiting = (order.client_id, done)
            order.transition(OrderStatus.NEW)
            order.transition(OrderStatus.PENDING_CANCEL)
            adapter.cancel(order)
            await wait_for(done)
        samples.sort()
        results["pulse_order_rtt_p50_us"] = int(statistics.median(samples) / 1000)
        results["pulse_order_rtt_p99_us"] = int(samples[int(len(samples) * 0.99) - 1] / 1000)
        await adapter.close()
        tg.cancel_scope.cancel()
    return results


async def record(url: str, count: int) -> list[str]:
    """The book channel's snapshot and then the frames of one ``sandbox/blast_book`` burst of
    ``count`` changes, as the sandbox sent them."""
    channel = codec.book_channel(SYMBOL)
    frames: list[str] = []
    async with ws_connect(url, compression=None, ping_interval=None, proxy=None, max_size=1 << 22) as ws:
        await ws.send(codec.encode_request(1, "public/subscribe", {"channels": [channel]}))
        while not frames:
            text = str(await ws.recv())
            if '"subscription"' in text and channel in text:
                frames.append(text)  # the snapshot (not the subscribe answer, which names the channel too)
        await ws.send(codec.encode_request(2, "sandbox/blast_book", {"instrument_name": SYMBOL, "count": count}))
        while len(frames) < count + 1:
            text = str(await ws.recv())
            if '"subscription"' in text and channel in text:
                frames.append(text)
    return frames


def decoding_path() -> Callable[[str], None]:
    """The adapter's per-frame path for book frames, with fresh state: the protocol reads the frame
    (``codec.decode_frame``: a book's payload comes decoded), the channel picks the handler, the
    change ids are checked, and a ``BookUpdate`` is built for the sink (as ``PulseAdapter._dispatch``,
    ``_on_book`` and ``_on_snapshot`` do)."""
    protocol = PulseProtocol([SYMBOL])
    receive = protocol.receive
    check = protocol.book
    decode_book = codec.decode_book
    channel = codec.book_channel(SYMBOL)
    now_ns = time.time_ns
    delivered: list[BookUpdate] = []

    def on_book(data: Any) -> None:  # as PulseAdapter._on_book and _on_snapshot
        msg = data if type(data) is BookMsg else decode_book(data)
        verdict, _state = check(msg)
        if verdict is APPLY:
            delivered.append(BookUpdate("pulse", msg.symbol, now_ns(), msg.change_id, msg.changes))
        elif verdict is SNAPSHOT:
            delivered.append(BookUpdate("pulse", msg.symbol, now_ns(), max(msg.change_id, 0), msg.changes, True))
        else:
            raise SystemExit(f"book frame not applied: {verdict}")
        if len(delivered) > 1000:
            delivered.clear()
    handlers = {channel: on_book}
    notification = codec.Notification

    def handle(raw: str) -> None:  # as PulseAdapter._dispatch
        msg = receive(raw)
        if type(msg) is notification:
            handlers[msg.channel](msg.data)  # type: ignore[union-attr]
    return handle


def record_to(path: Path, count: int) -> None:
    """``record``: the snapshot and one burst's frames into ``path``, one per line."""
    proc, url = start_sandbox()
    try:
        frames = anyio.run(record, url, count)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    write_frames(path, frames)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", nargs="?", choices=("loopback", "record", "decode"), default="loopback",
                        help="loopback (default): every figure; record / decode: see the module's docstring")
    parser.add_argument("file", nargs="?", type=Path, help="record / decode: the frames file")
    parser.add_argument("--count", type=int, default=BOOK_MESSAGES, help="record: changes in the burst")
    parser.add_argument("--frames", type=int, default=4000, help="decode: frames decoded, the snapshot first")
    parser.add_argument("--profile", action="store_true", help="decode: under cProfile")
    args = parser.parse_args(argv)
    if args.mode != "loopback" and args.file is None:
        parser.error(f"{args.mode} needs FILE")
    if args.mode == "record":
        record_to(args.file, args.count)
        return 0
    if args.mode == "decode":
        decode_file(args.file, args.frames, decoding_path(), "pulse_decode_msgs_per_s", args.profile)
        return 0
    proc, url = start_sandbox()
    try:
        started = time.perf_counter()
        results = anyio.run(run, url)
        frames = anyio.run(record, url, BOOK_MESSAGES)
        took = time.perf_counter() - started
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    print(f"# python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs; "
          f"sandbox in a separate process over 127.0.0.1; {BOOK_MESSAGES} book messages, "
          f"{ROUND_TRIPS} order round trips; {took:.1f} s")
    floor, figure = floor_and_figure(frames, decoding_path, int(os.environ.get("PULSE_BENCH_ROUNDS", "3")))
    results["pulse_book_floor_msgs_per_s"] = int(floor)
    results["pulse_book_wire_msgs_per_s"] = int(figure)
    print_ratio = f"pulse_book_wire_ratio={figure / floor:.3f}"
    for key, value in results.items():
        print(f"{key}={value}")
    print(print_ratio)
    return 0


if __name__ == "__main__":
    sys.exit(main())
