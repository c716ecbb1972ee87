"""The bus's wire: subjects and the encoding of market-data events between ``engine feed`` and the
``bus`` adapter.

Subjects (one NATS account; ``PREFIX`` is ``md`` unless configured):

- ``md.<venue>.<symbol>``: every normalised event of one symbol (book change, snapshot, trade,
  instrument status), each with the symbol's sequence number and the feed's epoch. JetStream
  stream ``MD_<VENUE>`` keeps a bounded window of ``md.<venue>.>`` for gap replay.
- ``mdhb.<venue>``: the feed's heartbeat (core NATS only): its epoch and what its own venue
  connection reports, so an engine tells "the feed is silent" from "the market is quiet".
- ``halt.<account>``: the kill switch broadcast (``engine halt``); the state is also kept in the
  key-value bucket ``HALT`` so an engine that starts after the broadcast starts halted.

Encoding: msgpack through msgspec, each event an array tagged by kind; prices and quantities as
decimal strings, so they arrive exactly as the venue sent them (a binary float would not; msgpack
has no decimal type). Measured in benchmarks/bench_bus.py against JSON with decimal strings:
smaller and faster to decode, see the README section "Many engines over NATS".
"""

from __future__ import annotations

import re
from decimal import Decimal

import msgspec

from engine.model import BookUpdate, InstrumentStatus, Side, Trade

PREFIX = "md"
HEARTBEAT_PREFIX = "mdhb"
HALT_PREFIX = "halt"
HALT_BUCKET = "HALT"

#: a subject token: NATS splits on dots and treats * and > as wildcards; whitespace ends a subject
_TOKEN = re.compile(r"^[A-Za-z0-9_\-]+$")


class BadSubjectToken(ValueError):
    """A venue, symbol or account name that cannot be one NATS subject token."""


def token(kind: str, value: str) -> str:
    """``value`` as one subject token, refused by name when it would split or wildcard a subject."""
    if not _TOKEN.match(value):
        raise BadSubjectToken(f"{kind} {value!r} cannot be a NATS subject token (letters, digits, _ and - only)")
    return value


async def connect_nats(url: str, name: str, timeout_s: float, **callbacks: object) -> object:
    """A nats-py connection that fails in ``timeout_s`` when the server is not there: nats-py's own
    first connect retries without end (and logs a traceback per try), which would leave ``engine
    halt``, ``engine feed`` or an engine's start hanging instead of saying why."""
    import asyncio
    import logging

    import nats

    quiet = logging.getLogger("engine.bus.nats")

    async def on_error(exc: Exception) -> None:
        quiet.debug("nats %s: %s", name, exc)

    try:
        return await asyncio.wait_for(
            nats.connect(url, name=name, connect_timeout=timeout_s, allow_reconnect=True, max_reconnect_attempts=-1,
                         error_cb=on_error, **callbacks),  # type: ignore[arg-type]
            timeout_s)
    except TimeoutError:
        raise ConnectionError(f"no NATS server answered at {url} within {timeout_s:g} s") from None


def symbol_subject(venue: str, symbol: str, prefix: str = PREFIX) -> str:
    return f"{prefix}.{token('venue', venue)}.{token('symbol', symbol)}"


def venue_wildcard(venue: str, prefix: str = PREFIX) -> str:
    return f"{prefix}.{token('venue', venue)}.>"


def heartbeat_subject(venue: str) -> str:
    return f"{HEARTBEAT_PREFIX}.{token('venue', venue)}"


def halt_subject(account: str) -> str:
    return f"{HALT_PREFIX}.{token('account', account)}"


def stream_name(venue: str) -> str:
    return f"MD_{token('venue', venue).upper().replace('-', '_')}"


class WireBook(msgspec.Struct, array_like=True, tag="b", frozen=True):
    epoch: int
    seq: int
    ts: int
    sent_ns: int  # the feed's wall clock at publish: feed-to-strategy latency
    snapshot: bool
    venue_seq: int
    changes: list[tuple[Side, Decimal, Decimal]]  # Side is a str enum: "buy"/"sell" on the wire, else refused


class WireTrade(msgspec.Struct, array_like=True, tag="t", frozen=True):
    epoch: int
    seq: int
    ts: int
    sent_ns: int
    price: Decimal
    qty: Decimal
    aggressor: Side | None
    trade_id: str


class WireStatus(msgspec.Struct, array_like=True, tag="s", frozen=True):
    epoch: int
    seq: int
    ts: int
    sent_ns: int
    halted: bool | None
    reason: str
    reference_price: Decimal | None
    closing_price: Decimal | None


class Heartbeat(msgspec.Struct, array_like=True, frozen=True):
    epoch: int
    sent_ns: int
    upstream: str  # what the feed's own venue adapter last reported: connected, stale, disconnected
    symbols: int


Wire = WireBook | WireTrade | WireStatus

_encoder = msgspec.msgpack.Encoder(decimal_format="string")
_decoder = msgspec.msgpack.Decoder(Wire)
_hb_decoder = msgspec.msgpack.Decoder(Heartbeat)


def encode(message: Wire | Heartbeat) -> bytes:
    return _encoder.encode(message)


def decode(data: bytes) -> Wire:
    """One event; raises ``msgspec.DecodeError``/``ValidationError`` naming what is wrong. msgpack
    carries decimals as strings and msgspec reads ``"NaN"`` and ``"Infinity"`` as Decimals: a price
    or quantity that is not a finite number is refused here, before it reaches a book."""
    message = _decoder.decode(data)
    if type(message) is WireBook:
        for _, price, qty in message.changes:
            if not (price.is_finite() and qty.is_finite()):
                raise msgspec.ValidationError("WireBook: a price or quantity is not a finite number")
    elif type(message) is WireTrade:
        if not (message.price.is_finite() and message.qty.is_finite()):
            raise msgspec.ValidationError("WireTrade: the price or quantity is not a finite number")
    elif any(n is not None and not n.is_finite() for n in (message.reference_price, message.closing_price)):
        raise msgspec.ValidationError("WireStatus: a reference or closing price is not a finite number")
    return message


def decode_heartbeat(data: bytes) -> Heartbeat:
    return _hb_decoder.decode(data)


def book_wire(update: BookUpdate, epoch: int, seq: int, sent_ns: int, snapshot: bool | None = None) -> WireBook:
    return WireBook(epoch, seq, update.ts, sent_ns, update.snapshot if snapshot is None else snapshot, update.seq,
                    list(update.changes))


def trade_wire(trade: Trade, epoch: int, seq: int, sent_ns: int) -> WireTrade:
    return WireTrade(epoch, seq, trade.ts, sent_ns, trade.price, trade.qty,
                     trade.aggressor, trade.trade_id)


def status_wire(status: InstrumentStatus, epoch: int, seq: int, sent_ns: int) -> WireStatus:
    return WireStatus(epoch, seq, status.ts, sent_ns, status.halted, status.reason, status.reference_price,
                      status.closing_price)


def to_book(venue: str, symbol: str, wire: WireBook) -> BookUpdate:
    return BookUpdate(venue, symbol, wire.ts, wire.venue_seq,
                      tuple(wire.changes), wire.snapshot)


def to_trade(venue: str, symbol: str, wire: WireTrade) -> Trade:
    return Trade(venue, symbol, wire.ts, wire.price, wire.qty,
                 wire.aggressor, wire.trade_id)


def to_status(venue: str, symbol: str, wire: WireStatus) -> InstrumentStatus:
    return InstrumentStatus(venue, symbol, wire.ts, wire.halted, wire.reason, wire.reference_price,
                            wire.closing_price)
