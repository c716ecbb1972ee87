"""Which JSON decoder the kit's bounded reader should use: frames per second per decoder, measured.

Every venue frame is decoded by :class:`adapters.kit.wirejson.Reader` (stdlib ``json``'s C scanner,
fractions read into ``Decimal`` through a trapping context, a bracket scan for depth). The candidates
are measured on frames the size of real ones, built from the documents' examples in tests/fixtures/
(as benchmarks/fuzz.py seeds them):

- ``psx_tick``        the digest's tick line (PSX-1, placeholders filled as fuzz.py fills them)
- ``psx_book``        the digest's L2 book line with its ``[[price,qty,orders]]`` placeholder filled
                      with ten levels a side (a real snapshot; the digest shows one placeholder)
- ``pulse_book``      the ``book.{instrument_name}.{interval}`` example inside a subscription
                      notification, its ``[[null]]`` levels filled with ten ``["new", price, amount]``
                      a side (the document prints a placeholder level)
- ``pulse_trade``     the ``user.trades.{instrument_name}.raw`` example inside a notification, verbatim
- ``pulse_order``     the ``/private/buy`` 200 response example inside a JSON-RPC answer, verbatim
- ``optimus_order``   a section-12 success envelope around the OPT-3 order body (fuzz.py's seed)
- ``optimus_webhook`` an ``order.execution`` webhook body (fuzz.py's seed)

Decoders, each on the same frames (``str`` for the WebSocket venues, ``bytes`` for Optimus, as the
transports hand them over):

- ``stdlib_reader``    the Reader on stdlib ``json`` alone (``Reader.stdlib_loads``; the reader before
                       msgspec): every wirejson guarantee
- ``reader``           the Reader: the same pre-checks (UTF-8, size, bracket depth scan) around
                       ``msgspec.json.Decoder(float_hook=<the trapping Decimal context>)``, stdlib
                       deciding whatever msgspec refuses: every guarantee, the same answers
- ``orjson_walk``      ``orjson.loads`` then a walk turning each float into ``Decimal(repr(f))`` (the
                       work orjson then needs). It cannot keep the guarantee: orjson reads every
                       fraction as a binary double and an integer past 64 bits as a float, so
                       ``1.0000000000000000000000000001`` arrives as ``1.0`` (``values_differ`` marks
                       a frame it read into other values); measured to size the gap
- ``msgspec_struct``   typed ``msgspec.Struct`` for the hot frames (PSX tick and book, Pulse book
                       change), ``Decimal`` fields, then wirejson.amount on each number (msgspec's own
                       Decimal conversion has no digit or exponent bound); hot frames only
- ``stdlib_raw`` / ``orjson_raw`` / ``msgspec_raw``: the bare parsers with none of the guarantees,
                       for scale

``x`` figures are against ``stdlib_reader``. Then each codec's whole decode (JSON -> model objects,
what the adapter calls) with the Reader (``codec_per_s``) and on stdlib json alone, as before the
switch (``codec_on_stdlib_per_s``: a second copy of each codec module, loaded with the Reader's
stdlib path): decoding JSON is only part of it.

Each frame is decoded again and again, so the reader's number cache (a number text's Decimal is
remembered, issue 22) always hits here; a live feed repeats its prices too, but not every one:
benchmarks/bench_psx_feed.py and bench_pulse.py measure recorded bursts.

Run: ``python benchmarks/bench_json.py [--rounds R]`` (about a minute; ``orjson`` is optional and
skipped when absent). Prints ``key=value`` lines: frames per second, the best of R slices of 50 ms,
the decoders of a frame taking turns (the VM's two speeds then fall on all of them alike).
"""

from __future__ import annotations

import argparse
import gc
import importlib
import importlib.util
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from adapters.kit import wirejson  # noqa: E402
from adapters.kit.wirejson import Reader, WireError, amount  # noqa: E402

# fuzz.py (the seeds) imports the codecs: it is imported where needed, after this module is loaded

FIXTURES = REPO / "tests" / "fixtures"

# --------------------------------------------------------------------------------------------
# Frames


def _levels(count: int, start: Decimal, step: Decimal, pulse: bool) -> str:
    rows = []
    for k in range(count):
        price, qty = start + step * k, 100 * (k + 1)
        rows.append(f'["new",{price},{qty}]' if pulse else f"[{price},{qty},{k % 4 + 1}]")
    return "[" + ",".join(rows) + "]"


def frames() -> dict[str, str | bytes]:
    """The benchmark's frames, by name (see the module docstring for where each comes from)."""
    from fuzz import optimus_seeds, psx_feed_seeds
    psx = psx_feed_seeds()
    tick = next(s for s in psx if s.startswith('{"type":"tick"'))
    book = next(s for s in psx if s.startswith('{"type":"book"') and '"seq":124' in s)
    book = book.replace("[[187.45,1000,3]]", _levels(10, Decimal("187.45"), Decimal("-0.05"), False), 1)
    book = book.replace('"asks":["MEBL"]', '"asks":' + _levels(10, Decimal("187.55"), Decimal("0.05"), False))
    pulse_book = (FIXTURES / "pulse" / "book.instrument_name.interval.response.json").read_text(encoding="utf-8")
    pulse_book = pulse_book.replace('"asks": [\n    [\n      null\n    ]\n  ]',
                                    '"asks": ' + _levels(10, Decimal("50000.5"), Decimal("0.5"), True))
    pulse_book = pulse_book.replace('"bids": [\n    [\n      null\n    ]\n  ]',
                                    '"bids": ' + _levels(10, Decimal("49999.5"), Decimal("-0.5"), True))
    assert "null" not in pulse_book, "the fixture's placeholder levels changed shape"

    def note(channel: str, body: str) -> str:
        return '{"jsonrpc":"2.0","method":"subscription","params":{"channel":"' + channel + '","data":' + body + "}}"

    trade = (FIXTURES / "pulse" / "user.trades.instrument_name.raw.response.json").read_text(encoding="utf-8")
    buy = (FIXTURES / "pulse" / "private.buy.response.json").read_text(encoding="utf-8")
    optimus = optimus_seeds()
    order = next(s for s in optimus if s.startswith('{"status": "success"') and '"order_id": "OPT-1", "client' in s
                 and '"orders"' not in s)
    webhook = next(s for s in optimus if '"event": "order.execution"' in s)
    return {
        "psx_tick": tick, "psx_book": book,
        "pulse_book": note("book.BTC-PERPETUAL.raw", pulse_book),
        "pulse_trade": note("user.trades.BTC-PERPETUAL.raw", trade),
        "pulse_order": '{"jsonrpc":"2.0","id":7,"result":' + buy + "}",
        "optimus_order": order.encode(), "optimus_webhook": webhook.encode(),
    }


# --------------------------------------------------------------------------------------------
# Candidates


def orjson_walk() -> Callable[[str | bytes], Any] | None:
    """orjson.loads, the depth bound, and every float turned into a Decimal (lossy: see docstring)."""
    try:
        import orjson
    except ImportError:
        return None
    reader = Reader()
    max_depth, too_deep = reader.max_depth, reader.too_deep

    def convert(value: Any) -> Any:
        kind = type(value)
        if kind is float:
            return Decimal(repr(value))
        if kind is dict:
            return {k: convert(v) for k, v in value.items()}
        if kind is list:
            return [convert(v) for v in value]
        return value

    def loads(data: str | bytes) -> Any:
        text = data if type(data) is str else data.decode("utf-8")  # type: ignore[union-attr]
        if text.count("[") + text.count("{") > max_depth and too_deep(text):
            raise WireError("too deep", "too_deep")
        try:
            return convert(orjson.loads(data))
        except orjson.JSONDecodeError as exc:
            raise WireError(f"not JSON: {exc}", "not_json") from None

    return loads


try:
    import msgspec
except ImportError:  # the candidates are optional
    msgspec = None

if msgspec is not None:  # typed frames for msgspec_struct (module level: their annotations are strings)

    class Tick(msgspec.Struct):
        type: str
        symbol: str
        market: str
        ltp: Decimal
        ltq: int
        volume: int
        open: Decimal
        high: Decimal
        low: Decimal
        prev_close: Decimal
        bid: Decimal
        bid_qty: int
        ask: Decimal
        ask_qty: int
        ts: str
        seq: int

    class PsxBook(msgspec.Struct):
        type: str
        symbol: str
        snapshot: bool
        bids: list[tuple[Decimal, int, int]]
        asks: list[tuple[Decimal, int, int]]
        seq: int

    class PulseBook(msgspec.Struct):
        type: str
        instrument_name: str
        change_id: int
        prev_change_id: int
        timestamp: int
        bids: list[tuple[str, Decimal, Decimal]]
        asks: list[tuple[str, Decimal, Decimal]]

    class PulseParams(msgspec.Struct):
        channel: str
        data: PulseBook

    class PulseNote(msgspec.Struct):
        jsonrpc: str
        method: str
        params: PulseParams


def msgspec_structs() -> dict[str, Callable[[str | bytes], Any]]:
    """Typed decoders for the hot frames, each followed by the per-number bound of wirejson.amount."""
    try:
        import msgspec
    except ImportError:
        return {}

    tick_decode = msgspec.json.Decoder(Tick).decode
    psx_book_decode = msgspec.json.Decoder(PsxBook).decode
    pulse_book_decode = msgspec.json.Decoder(PulseNote).decode

    def tick(data: str | bytes) -> Any:
        msg = tick_decode(data)
        for name in ("ltp", "open", "high", "low", "prev_close", "bid", "ask"):
            amount(getattr(msg, name), name)
        return msg

    def psx_book(data: str | bytes) -> Any:
        msg = psx_book_decode(data)
        for side in (msg.bids, msg.asks):
            for price, _qty, _orders in side:
                amount(price, "price")
        return msg

    def pulse_book(data: str | bytes) -> Any:
        msg = pulse_book_decode(data)
        for side in (msg.params.data.bids, msg.params.data.asks):
            for _action, price, qty in side:
                amount(price, "price")
                amount(qty, "amount")
        return msg

    return {"psx_tick": tick, "psx_book": psx_book, "pulse_book": pulse_book}


def raw_parsers() -> dict[str, Callable[[str | bytes], Any]]:
    """The bare parsers, no guarantee kept, for scale."""
    found: dict[str, Callable[[str | bytes], Any]] = {"stdlib_raw": json.loads}
    try:
        import orjson
        found["orjson_raw"] = orjson.loads
    except ImportError:
        pass
    try:
        import msgspec
        found["msgspec_raw"] = msgspec.json.Decoder().decode
    except ImportError:
        pass
    return found


def codec_modules(on_stdlib: bool) -> tuple[ModuleType, ModuleType, ModuleType]:
    """The three codec modules (psx_feed, pulse, optimus). ``on_stdlib``: fresh copies whose
    ``Reader`` is one that reads with stdlib json alone (each codec makes its reader when loaded),
    so both kinds run in one process and take turns."""
    names = ("adapters.psx_feed.codec", "adapters.pulse.codec", "adapters.optimus.codec")
    if not on_stdlib:
        return tuple(importlib.import_module(name) for name in names)  # type: ignore[return-value]
    class StdlibReader(Reader):
        loads = Reader.stdlib_loads

    wirejson.Reader = StdlibReader  # type: ignore[misc]  # what each copy's "import Reader" binds
    try:
        copies = []
        for name in names:
            spec = importlib.util.find_spec(name)
            assert spec is not None and spec.origin is not None
            copy_spec = importlib.util.spec_from_file_location(name + "_on_stdlib", spec.origin)
            assert copy_spec is not None and copy_spec.loader is not None
            module = importlib.util.module_from_spec(copy_spec)
            sys.modules[copy_spec.name] = module  # dataclasses look their module up there
            copy_spec.loader.exec_module(module)
            copies.append(module)
    finally:
        wirejson.Reader = Reader  # type: ignore[misc]
    return tuple(copies)  # type: ignore[return-value]


def codec_paths(on_stdlib: bool) -> dict[str, Callable[[str | bytes], Any]]:
    """Each codec's whole decode of a frame (what the adapter calls)."""
    from fuzz import RECV_NS

    psx_feed, pulse, optimus = codec_modules(on_stdlib)
    feed = psx_feed.FeedDecoder("PSX", "L2")

    def psx(data: str | bytes) -> Any:
        feed.new_connection()  # every frame is the first of its connection: no gap events
        return feed.decode(data, RECV_NS)

    def pulse_book(data: str | bytes) -> Any:
        return pulse.decode_book(pulse.decode_message(data).data)

    def pulse_trade(data: str | bytes) -> Any:
        return pulse.decode_trades(pulse.decode_message(data).data)

    def pulse_order(data: str | bytes) -> Any:
        return pulse.decode_order(pulse.decode_message(data).result["order"])

    def optimus_order(data: str | bytes) -> Any:
        return optimus.decode_order(optimus.parse_envelope(200, data).data)

    def optimus_webhook(data: str | bytes) -> Any:
        return optimus.decode_webhook(data).execution()

    return {"psx_tick": psx, "psx_book": psx, "pulse_book": pulse_book, "pulse_trade": pulse_trade,
            "pulse_order": pulse_order, "optimus_order": optimus_order, "optimus_webhook": optimus_webhook}


# --------------------------------------------------------------------------------------------
# Measuring


def rates(decoders: dict[str, Callable[[str | bytes], Any]], frame: str | bytes, rounds: int,
          slice_s: float = 0.05) -> dict[str, float]:
    """Frames per second of each decoder: the best of ``rounds`` timed slices of about ``slice_s``,
    the decoders taking turns slice by slice. This VM runs at two speeds for seconds at a time
    (README, Benchmarks); turns spread both speeds over every decoder alike."""
    batches = {}
    for name, decode in decoders.items():
        decode(frame)
        start = time.perf_counter()
        for _ in range(200):
            decode(frame)
        batches[name] = max(100, int(slice_s * 200 / (time.perf_counter() - start)))
    best = dict.fromkeys(decoders, 0.0)
    for _ in range(rounds):
        gc.collect()
        for name, decode in decoders.items():
            batch = batches[name]
            start = time.perf_counter()
            for _ in range(batch):
                decode(frame)
            best[name] = max(best[name], batch / (time.perf_counter() - start))
    return best


def same_values(a: Any, b: Any) -> bool:
    """The candidate read the frame into the same values as the Reader (Decimal and int alike)."""
    return a == b and json.dumps(a, default=str, sort_keys=True) == json.dumps(b, default=str, sort_keys=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=20,
                        help="timed slices of 50 ms per decoder and frame (default 20)")
    args = parser.parse_args()
    print(f"machine={platform.machine()} cpus={os.cpu_count()} python={platform.python_version()}")
    all_frames = frames()
    reader = Reader()
    guarded: dict[str, Callable[[str | bytes], Any]] = {"stdlib_reader": reader.stdlib_loads, "reader": reader.loads}
    walk = orjson_walk()
    if walk is None:
        print("# orjson_walk: orjson not installed, skipped")
    else:
        guarded["orjson_walk"] = walk
    structs = msgspec_structs()
    for frame_name, frame in all_frames.items():
        print(f"# {frame_name}: {len(frame)} {'bytes' if isinstance(frame, bytes) else 'characters'}")
        expected = reader.stdlib_loads(frame)
        decoders = dict(guarded)
        if frame_name in structs:
            decoders["msgspec_struct"] = structs[frame_name]
        decoders.update(raw_parsers())
        figures = rates(decoders, frame, args.rounds)
        base = figures["stdlib_reader"]
        for name, figure in figures.items():
            differs = " values_differ" if name in guarded and not same_values(guarded[name](frame), expected) else ""
            print(f"{frame_name}.{name}_per_s={figure:.0f}  # x{figure / base:.2f}{differs}")
    print("# each codec's whole decode (JSON -> model objects), on stdlib json alone and with the Reader")
    before, after = codec_paths(on_stdlib=True), codec_paths(on_stdlib=False)
    for frame_name, frame in all_frames.items():
        figures = rates({"before": before[frame_name], "after": after[frame_name]}, frame, args.rounds)
        print(f"{frame_name}.codec_on_stdlib_per_s={figures['before']:.0f}")
        print(f"{frame_name}.codec_per_s={figures['after']:.0f}  # x{figures['after'] / figures['before']:.2f}")

if __name__ == "__main__":
    main()
