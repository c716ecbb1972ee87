"""PSX Live Feed throughput: messages decoded and dispatched per second over loopback.

Starts the Live Feed sandbox in its own process on 127.0.0.1 (no synthetic market, always open),
connects the real :class:`~adapters.psx_feed.adapter.LiveFeedAdapter` at L2 and asks the sandbox for
a burst of book changes (``GET /sandbox/fault?kind=burst``). The sink applies each ``BookUpdate`` to
a :class:`~engine.model.Book`, as the runtime does before it calls strategies. The figure is the
number of book messages the adapter received, decoded (JSON -> Decimal -> model) and dispatched,
divided by the time from the request to the last one; best of a few rounds.

Also prints the decoder alone on the same messages, without sockets (``psx_feed_decode_msgs_per_s``),
to show what the transport costs, and the recv-only floor (benchmarks/wsfloor.py): the frames of one
sandbox burst, recorded, are replayed pre-framed by a server that is never the limit; a websockets
client only receiving them is the floor (``psx_feed_floor_msgs_per_s``), the same client decoding
each with :class:`FeedDecoder` and applying it to a ``Book`` (as the adapter and the runtime do) is
the figure (``psx_feed_wire_msgs_per_s``), and ``psx_feed_wire_ratio`` = figure / floor.

Run: ``python benchmarks/bench_psx_feed.py [--messages N] [--rounds R]`` (about 10 s on 2 vCPUs).

Three more modes measure the paths alone, for instruction counts (callgrind) and profiles, as
bench_pulse.py's do:

- ``python benchmarks/bench_psx_feed.py record FILE [--messages N]``: the snapshot and the frames of
  one L2 burst of N changes (default 50000), as the sandbox sent them, one frame per line (the
  frames the floor replays);
- ``python benchmarks/bench_psx_feed.py decode FILE [--frames N] [--profile]``: the first N frames
  of FILE (the snapshot first) through :func:`decoding_sink` (the figure's path), nothing else;
  with ``--profile`` under cProfile;
- ``python benchmarks/bench_psx_feed.py floor FILE [--frames N] [--decode]``: the first N frames
  received by the floor's websockets client (benchmarks/wsfloor.py ``receive_once``: the replay
  server is a forked child that frames them itself, so this process counts the client alone);
  with ``--decode``, the figure's client (each frame through :func:`decoding_sink` too).

Instructions per frame: run ``decode`` or ``floor`` under
``PYTHONHASHSEED=0 valgrind --tool=callgrind --callgrind-out-file=/dev/null`` at two lengths (2000
and 6000) and divide the difference by 4000 (start-up and reading the file cancel); for ``floor``
take the parent process's count (valgrind prints one per process).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import anyio
from websockets.asyncio.client import connect as ws_connect

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from adapters.psx_feed.adapter import LiveFeedAdapter, LiveFeedOptions  # noqa: E402
from adapters.psx_feed.codec import FeedDecoder, encode_subscribe, feed_url, with_token_query  # noqa: E402
from benchmarks.wsfloor import (  # noqa: E402
    decode_file,
    floor_and_figure,
    read_frames,
    receive_once,
    write_frames,
)
from engine.clock import WallClock  # noqa: E402
from engine.model import Book, BookUpdate, Instrument  # noqa: E402

SYMBOL = "MEBL"


class CountingSink:
    """What the runtime does first with market data: apply the update to the instrument's book."""

    def __init__(self) -> None:
        self.books = {SYMBOL: Book("PSX", SYMBOL)}
        self.updates = 0
        self.done_at = 0.0
        self.target = 0

    def on_book(self, update: BookUpdate) -> None:
        self.books[update.symbol].apply(update)
        self.updates += 1
        if self.updates == self.target:
            self.done_at = time.perf_counter()

    def on_trade(self, trade: object) -> None: ...
    def on_order_update(self, update: object) -> None: ...
    def on_fill(self, fill: object) -> None: ...
    def on_venue_status(self, venue: str, status: str, detail: str = "") -> None: ...
    def on_instrument_status(self, status: object) -> None: ...


def start_sandbox(token_file: Path) -> tuple[subprocess.Popen, str]:
    command = [sys.executable, "-m", "adapters.psx_feed.sandbox", "--port", "0", "--no-market", "--always-open",
               "--token-file", str(token_file), "--log-level", "ERROR"]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if "listening on" in line:
            return process, line.split("listening on ", 1)[1].split()[0]
    process.kill()
    raise SystemExit("the sandbox did not start")


async def loopback(url: str, token_file: Path, messages: int, rounds: int) -> float:
    sink = CountingSink()
    options = LiveFeedOptions(url=url, access="l2", token_file=token_file)
    adapter = LiveFeedAdapter("PSX", options, [Instrument(SYMBOL, "PSX", previous_close=Decimal("100"))],
                              WallClock(), sink)
    control = url.replace("ws://", "http://") + f"/sandbox/fault?kind=burst&symbol={SYMBOL}&count={messages}"
    best = 0.0
    async with anyio.create_task_group() as tg:
        adapter.bind(tg)
        adapter.subscribe([SYMBOL])
        await adapter.connect()
        while sink.updates < 1:
            await anyio.sleep(0.01)
        for _ in range(rounds):
            base = sink.updates
            sink.target = base + messages
            sink.done_at = 0.0
            started = time.perf_counter()
            await anyio.to_thread.run_sync(lambda: urllib.request.urlopen(control, timeout=10).read())
            while not sink.done_at:
                await anyio.sleep(0.001)
            best = max(best, messages / (sink.done_at - started))
            while sink.updates < base + messages + 1:  # the closing snapshot
                await anyio.sleep(0.001)
        assert adapter.malformed == 0 and adapter.gaps == 0 and adapter.reconnects == 0
        await adapter.close()
        tg.cancel_scope.cancel()
    return best


async def record(url: str, token_file: Path, messages: int) -> list[str]:
    """The frames of one sandbox burst of ``messages`` book changes, as the sandbox sent them (the
    snapshot first, so a decoder starts synced)."""
    ws_url = with_token_query(feed_url(url, "l2"), token_file.read_text().strip())
    control = url.replace("ws://", "http://") + f"/sandbox/fault?kind=burst&symbol={SYMBOL}&count={messages}"
    frames: list[str] = []
    async with ws_connect(ws_url, compression=None, ping_interval=None, proxy=None) as ws:
        await ws.send(encode_subscribe([SYMBOL]))
        while not frames:  # wait for the snapshot
            text = await ws.recv()
            if '"type":"book"' in text and '"snapshot":true' in text:  # type: ignore[operator]
                frames.append(text)  # type: ignore[arg-type]
        await anyio.to_thread.run_sync(lambda: urllib.request.urlopen(control, timeout=10).read())
        while len(frames) < messages + 1:
            text = await ws.recv()
            if '"type":"book"' in text:  # type: ignore[operator]
                frames.append(text)  # type: ignore[arg-type]
    return frames


def decoding_sink() -> Callable[[str], None]:
    """The adapter's per-frame path (FeedDecoder.decode, then the runtime's Book.apply), fresh state."""
    decoder = FeedDecoder("PSX", "L2")
    book = Book("PSX", SYMBOL)
    decode = decoder.decode
    apply = book.apply
    now_ns = time.time_ns

    def handle(text: str) -> None:
        for event in decode(text, now_ns()):
            apply(event)
    return handle


def decode_only(messages: int) -> float:
    decoder = FeedDecoder("PSX", "L2")
    decoder.decode('{"type":"book","symbol":"MEBL","snapshot":true,"bids":[],"asks":[],"seq":0}', 0)
    texts = [
        f'{{"type":"book","symbol":"MEBL","snapshot":false,"bids":[[100.00,{100 + (i % 50) * 100},1]],'
        f'"asks":[[100.01,{200 + (i % 50) * 100},1]],"ts":"2026-03-02T05:00:00.000Z","seq":{i + 1}}}'
        for i in range(messages)
    ]
    book = Book("PSX", "MEBL")
    started = time.perf_counter()
    for text in texts:
        for event in decoder.decode(text, 0):
            book.apply(event)
    return messages / (time.perf_counter() - started)


def record_to(path: Path, messages: int) -> None:
    """``record``: the snapshot and one burst's frames into ``path``, one per line."""
    with tempfile.TemporaryDirectory() as folder:
        token_file = Path(folder) / "token"
        token_file.write_text("bench-" + os.urandom(8).hex())
        process, url = start_sandbox(token_file)
        try:
            frames = anyio.run(record, url, token_file, messages)
        finally:
            process.terminate()
            process.wait(timeout=10)
    write_frames(path, frames)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", nargs="?", choices=("loopback", "record", "decode", "floor"), default="loopback",
                        help="loopback (default): every figure; record / decode / floor: see the module's docstring")
    parser.add_argument("file", nargs="?", type=Path, help="record / decode / floor: the frames file")
    parser.add_argument("--messages", type=int, default=50_000, help="messages per round (default 50000)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; the best is reported (default 3)")
    parser.add_argument("--frames", type=int, default=4000, help="decode / floor: frames, the snapshot first")
    parser.add_argument("--profile", action="store_true", help="decode: under cProfile")
    parser.add_argument("--decode", action="store_true", help="floor: the figure's client (decoding each frame)")
    args = parser.parse_args(argv)
    if args.mode != "loopback" and args.file is None:
        parser.error(f"{args.mode} needs FILE")
    if args.mode == "record":
        record_to(args.file, args.messages)
        return 0
    if args.mode == "decode":
        decode_file(args.file, args.frames, decoding_sink(), "psx_feed_decode_path_msgs_per_s", args.profile)
        return 0
    if args.mode == "floor":
        rate = receive_once(read_frames(args.file, args.frames), decoding_sink() if args.decode else None)
        print(f"psx_feed_{'wire' if args.decode else 'floor'}_msgs_per_s={rate:.0f}")
        return 0
    with tempfile.TemporaryDirectory() as folder:
        token_file = Path(folder) / "token"
        token_file.write_text("bench-" + os.urandom(8).hex())
        process, url = start_sandbox(token_file)
        try:
            rate = anyio.run(loopback, url, token_file, args.messages, args.rounds)
            frames = anyio.run(record, url, token_file, args.messages)
        finally:
            process.terminate()
            process.wait(timeout=10)
    print(f"psx_feed_msgs_per_s={rate:.0f}")
    print(f"psx_feed_decode_msgs_per_s={decode_only(args.messages):.0f}")
    floor, figure = floor_and_figure(frames, decoding_sink, args.rounds)
    print(f"psx_feed_floor_msgs_per_s={floor:.0f}")
    print(f"psx_feed_wire_msgs_per_s={figure:.0f}")
    print(f"psx_feed_wire_ratio={figure / floor:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
