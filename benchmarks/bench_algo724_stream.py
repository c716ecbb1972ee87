"""Algo724 streams throughput: Centrifugo publications per second into engine events over loopback.

Starts the project's Centrifugo server (adapters/algo724/centrifugo.py) in its own process on
127.0.0.1, connects :class:`~adapters.algo724.streams.Algo724Streams` (the real centrifuge-python
client, JSON protocol) and asks the server for a burst of book DELTAs on
``market:orderBook:BINANCE:BTC/USDT`` (ALG-3 payloads, one level changed each). Every publication
goes the whole client path: the library's frame parse and callback, the hand-off into the anyio
memory stream, the payload codec (decimal strings -> Decimal), the sequence check and the
``BookUpdate`` the sink applies to a :class:`~engine.model.Book` as the runtime does. The figure
(``algo724_stream_msgs_per_s``) is book updates delivered / (time of the last one - time the burst
was asked for); best of a few rounds. ``algo724_stream_route_msgs_per_s`` is the codec + router
alone on the same payloads (no socket, no library), to show what the transport and the library
cost.

Run: ``python benchmarks/bench_algo724_stream.py [--messages N] [--rounds R]`` (about 10 s on 2 vCPUs).
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import anyio

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from adapters.algo724.centrifugo import CentrifugoServer, Grant  # noqa: E402
from adapters.algo724.streams import Algo724Streams, StreamRouter  # noqa: E402
from adapters.algo724.streams_codec import book_channel, book_payload  # noqa: E402
from engine.clock import WallClock  # noqa: E402
from engine.model import Book, BookUpdate  # noqa: E402

INSTRUMENT = "BINANCE:BTC/USDT"
SYMBOL = "BTCUSDT"
TOKEN = "bench-token"
TS_MS = 1_700_000_000_000


def delta(sequence: int) -> dict:
    price = Decimal(100) + Decimal(sequence % 500) / 100
    return book_payload(INSTRUMENT, "BINANCE", sequence, False, [(price, Decimal(sequence % 7 + 1))], [], TS_MS)


def snapshot(sequence: int) -> dict:
    return book_payload(INSTRUMENT, "BINANCE", sequence, True, [(Decimal(99), Decimal(1))],
                        [(Decimal(101), Decimal(1))], TS_MS)


# ---- the server process ---------------------------------------------------------------------------
async def serve(port_file: Path) -> None:
    """Publish bursts on request: a line "N" on stdin publishes N deltas (in slices, so the writer
    sends while the next slice is made); EOF ends."""
    state = {"sequence": 0}
    server = CentrifugoServer(lambda token: Grant("bench"), subscribe_data=lambda ch: snapshot(state["sequence"]),
                              max_outbox=10_000_000)
    await server.start()
    port_file.write_text(str(server.port))
    loop = asyncio.get_running_loop()
    channel = book_channel(INSTRUMENT)
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            break
        for n in range(int(line)):
            state["sequence"] += 1
            server.publish(channel, delta(state["sequence"]))
            if n % 500 == 499:
                await asyncio.sleep(0)
    await server.stop()


# ---- the client -----------------------------------------------------------------------------------
class CountingSink:
    """What the runtime does first with market data: apply the update to the instrument's book."""

    def __init__(self) -> None:
        self.book = Book("algo724", SYMBOL)
        self.updates = 0
        self.target = 0
        self.done_at = 0.0
        self.done = anyio.Event()

    def on_book(self, update: BookUpdate) -> None:
        self.book.apply(update)
        self.updates += 1
        if self.updates == self.target:
            self.done_at = time.perf_counter()
            self.done.set()

    def on_venue_status(self, venue: str, status: str, detail: str = "") -> None:
        pass


async def over_loopback(messages: int, rounds: int) -> tuple[float, dict[str, int]]:
    port_file = Path(f"/tmp/bench_algo724_stream.{id(messages)}.port")
    port_file.unlink(missing_ok=True)
    proc = subprocess.Popen([sys.executable, __file__, "--serve", str(port_file)], stdin=subprocess.PIPE, text=True)
    try:
        for _ in range(200):
            if port_file.exists() and port_file.read_text():
                break
            await anyio.sleep(0.05)
        url = f"ws://127.0.0.1:{port_file.read_text()}/connection/websocket"
        sink = CountingSink()

        async def token() -> str:
            return TOKEN

        client = Algo724Streams("algo724", url, "", {SYMBOL: INSTRUMENT}, sink, WallClock(), token,  # type: ignore[arg-type]
                                queue_size=messages * 2, stale_s=float("inf"))
        best = 0.0
        async with anyio.create_task_group() as tg:
            tg.start_soon(client.run)
            with anyio.fail_after(30):
                while sink.updates < 1:  # the subscribe's snapshot
                    await anyio.sleep(0.01)
            for _ in range(rounds):
                sink.target = sink.updates + messages
                sink.done = anyio.Event()
                started = time.perf_counter()
                assert proc.stdin is not None
                proc.stdin.write(f"{messages}\n")
                proc.stdin.flush()
                with anyio.fail_after(120):
                    await sink.done.wait()
                best = max(best, messages / (sink.done_at - started))
            await client.close()
            tg.cancel_scope.cancel()
        return best, client.stats()
    finally:
        if proc.stdin:
            proc.stdin.close()
        await anyio.to_thread.run_sync(proc.wait, 20)  # the loop goes on: our socket's close is answered
        port_file.unlink(missing_ok=True)


def route_only(messages: int) -> float:
    """Codec + sequence check + BookUpdate + Book.apply on the same payloads, no socket."""
    sink = CountingSink()
    router = StreamRouter("algo724", {SYMBOL: INSTRUMENT}, sink, WallClock(), lambda i: None, lambda r: None)  # type: ignore[arg-type]
    channel = book_channel(INSTRUMENT)
    router.subscribed(channel, snapshot(0), False, False)
    payloads = [delta(n) for n in range(1, messages + 1)]
    started = time.perf_counter()
    for payload in payloads:
        router.publication(channel, payload)
    elapsed = time.perf_counter() - started
    assert sink.updates == messages + 1, router.counts
    return messages / elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        asyncio.run(serve(args.serve))
        return 0
    rate, stats = anyio.run(over_loopback, args.messages, args.rounds)
    print(f"algo724_stream_msgs_per_s={rate:.0f}")
    print(f"algo724_stream_route_msgs_per_s={route_only(args.messages):.0f}")
    print(f"algo724_stream_dropped={stats['dropped']} gaps={stats.get('gaps', 0)}")
    print(f"machine={platform.machine()} cpus={__import__('os').cpu_count()} python={platform.python_version()} "
          f"processor={platform.processor() or 'unknown'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
