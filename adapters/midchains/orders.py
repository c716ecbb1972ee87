"""MidChains FIX 4.2 order messages, sans I/O: the bodies of D, F and G we send, and the
ExecutionReports (8) and OrderCancelRejects (9) we read, mapped to the engine's words. The adapter
(:mod:`adapters.midchains.adapter`) only routes; every decision about the wire is here, so the
document's own example messages test it directly.

Decisions where document 001 is silent or wrong (VENUES.md section 2 gap numbers):

- **Quantities (MID-3).** ``38`` is an integer and the real quantity is ``38 / 43229`` of the SAME
  message; the gateway answers in the symbol's own fraction base (the D example sends ``43229=10``,
  the ER comes back with ``43229=10000``), so every report is rescaled by its own ``43229``, never
  by the one we sent. What we send: the symbol's fractionbase from 001's ``getsymbols`` (or the
  ``fraction_bases`` option), else ``10^(decimal places of the instrument's lot size)``; when the
  quantity has more decimals than that, the base is raised by powers of 10 until ``38`` is an
  integer (never rounded: a quantity that would need more than 10^18 is refused 2002). A quantity
  finer than the symbol's own base (001's or the option's) is refused 2002: the gateway would work
  it truncated to that base, a smaller order than asked (issue 23).
- **LastPx (31)** is missing from 001's ER table: an execution without it carries its price in
  AvgPx (6); the adapter derives it from 6 and the change in CumQty (14). A report with no quantity
  at all (a state-only one) needs no 43229.
- **Prices are never scaled**: ``44``, ``31``, ``6`` are plain decimals.
- **Market buy (MID-5)**: "We Only Support Market Sell Order Over Fix API": refused locally with
  2007 before anything is sent. A market sell goes with ``59=3`` (IOC) unless FOK was asked (001's
  table: Market takes IOC or FOK only).
- **TimeInForce (MID-6)**: GTC ``1``, IOC ``3``, FOK ``4``; a DAY order becomes GTD ``6`` with
  ``126`` ExpireTime at the next trading-day boundary (01:00 UTC, MID-13) as a full UTCTimestamp
  ``YYYYMMDD-HH:MM:SS.sss`` (001 shows a time-only ``17:18:02.544``), or GTC, or is refused
  (option ``day_tif``).
- **Cancel (MID-4)**: F carries a new ClOrdID and ``41``; the gateway's echoed F (and echoed G) is
  "pending", never done: an order is cancelled only by an ER ``39=4``, a cancel refused by a ``9``.
- **ClOrdID** (``11``, at most 32 characters, unique per session): the engine's client id when it
  fits in 28 characters of ``[A-Za-z0-9._:-]``, else ``h`` + 27 hex digits of its SHA-256; a cancel
  or replace appends ``~<n>`` (base 36), so every ClOrdID of an order names its root and the chain
  ``41 -> 11`` is followed by root, whatever order the reports arrive in.
- **Reject texts (``58``) to engine codes**: 001 lists no FIX reject texts; the WebSocket API's are
  the venue's vocabulary (VENUES.md 3.3), matched case-insensitively as substrings; anything else
  is 9002 (order rejected by the exchange) with the venue's text kept as the reason.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation

from adapters.midchains.codec import FixMessage
from adapters.midchains.store import DAY_BOUNDARY, trading_day
from engine.model import Instrument, Liquidity, OrderStatus, OrderType, Side, TimeInForce
from engine.venue.badinput import BAD_NUMBER, MALFORMED
from engine.venue.rejects import Reject

__all__ = [
    "DOCUMENT_FRACTION_BASES",
    "CancelReject",
    "ExecReport",
    "OrderError",
    "ReportError",
    "cancel_body",
    "clordid_root",
    "day_expiry",
    "format_decimal",
    "fraction_base",
    "new_order_body",
    "parse_cancel_reject",
    "parse_exec_report",
    "reject_code",
    "replace_body",
    "wire_root",
]

NS = 1_000_000_000
#: 001's ``getsymbols`` ``fractionbase`` per pair (VENUES.md 2.3): what the gateway answers in
DOCUMENT_FRACTION_BASES = {"LTCUSD": 10_000, "ETHUSD": 100_000, "BTCUSD": 100_000, "BCHUSD": 100_000}
#: the largest FractionBase we send: 10^18 keeps 38 within a 64-bit integer for any sane quantity
MAX_FRACTION_BASE = 10**18
MAX_CLORDID = 32
_ROOT_CHARS = re.compile(r"[A-Za-z0-9._:-]{1,28}")
CHAIN_MARK = "~"
_FIX_FLOAT = re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")

SIDE = {Side.BUY: "1", Side.SELL: "2"}
SIDE_OF = {"1": Side.BUY, "2": Side.SELL}
TIF = {TimeInForce.GTC: "1", TimeInForce.IOC: "3", TimeInForce.FOK: "4"}
GTD = "6"

#: OrdStatus (39) to the engine's state (001's ER table: 0,1,2,4,5,6,8,A,C,E)
ORD_STATUS: dict[str, OrderStatus] = {
    "0": OrderStatus.NEW,
    "1": OrderStatus.PARTIALLY_FILLED,
    "2": OrderStatus.FILLED,
    "4": OrderStatus.CANCELLED,
    "5": OrderStatus.NEW,  # Replaced: working on its new terms (the fills decide NEW or PARTIALLY_FILLED)
    "6": OrderStatus.PENDING_CANCEL,
    "8": OrderStatus.REJECTED,
    "A": OrderStatus.PENDING_NEW,
    "C": OrderStatus.EXPIRED,
    "E": OrderStatus.PENDING_REPLACE,
}
#: ExecType (150) values that carry an execution (FIX 4.2 partial fill / fill; 4.4's trade F too)
FILL_EXEC_TYPES = frozenset({"1", "2", "F"})

#: venue texts (lower case substrings) -> engine codes; first match wins
REJECT_TEXTS: tuple[tuple[str, Reject], ...] = (
    ("exceed order/sec limit", Reject.RATE_LIMIT_EXCEEDED),
    ("/sec limit", Reject.RATE_LIMIT_EXCEEDED),  # "exceed message/sec limit" (FIX's 10/s) too
    ("rate limit", Reject.RATE_LIMIT_EXCEEDED),
    ("market buy", Reject.ORDER_TYPE_NOT_SUPPORTED),
    ("not supported", Reject.ORDER_TYPE_NOT_SUPPORTED),
    ("marketable to existing quote", Reject.POST_ONLY_WOULD_TAKE),
    ("wash sale", Reject.SELF_TRADE_PREVENTED),
    ("no crypto pos", Reject.POSITION_NOT_HELD),
    ("no position", Reject.POSITION_NOT_HELD),
    ("margin limit", Reject.INSUFFICIENT_BUYING_POWER),
    ("insufficient", Reject.INSUFFICIENT_BUYING_POWER),
    ("order not found", Reject.ORDER_NOT_OPEN),
    ("unknown order", Reject.ORDER_NOT_OPEN),
    ("too late", Reject.ORDER_NOT_OPEN),
    ("not open", Reject.ORDER_NOT_OPEN),
    ("duplicate", Reject.IDEMPOTENCY_KEY_REUSED),  # ClOrdID "must be unique for each session"
    ("clordid", Reject.INVALID_ORDER),
    ("handlinst", Reject.INVALID_ORDER),
    ("side (54)", Reject.INVALID_ORDER),
    ("expiretime", Reject.INVALID_ORDER),
    ("is required", Reject.INVALID_ORDER),
    ("symbol", Reject.INVALID_SYMBOL),
    ("quantity", Reject.INVALID_QUANTITY),
    ("qty", Reject.INVALID_QUANTITY),
    ("tick", Reject.PRICE_OFF_TICK),
    ("price", Reject.INVALID_ORDER),
    ("halt", Reject.MARKET_CLOSED),
    ("closed", Reject.MARKET_CLOSED),
)


class OrderError(ValueError):
    """An order we cannot express on the wire; ``code`` is the engine's reject code."""

    def __init__(self, code: Reject, reason: str) -> None:
        super().__init__(reason)
        self.code = code


class ReportError(ValueError):
    """A report from the gateway that cannot be used (a field missing or unreadable); the text
    names the field. ``kind`` is the :mod:`engine.venue.badinput` kind it is counted under."""

    def __init__(self, reason: str, kind: str = MALFORMED) -> None:
        super().__init__(reason)
        self.kind = kind


def reject_code(text: str) -> int:
    """The engine code for the venue's text ``58`` (9002 when none matches)."""
    lowered = text.lower()
    for needle, code in REJECT_TEXTS:
        if needle in lowered:
            return int(code)
    return int(Reject.EXCHANGE_REJECT)


def format_decimal(value: Decimal) -> str:
    """Plain decimal text, no exponent, no trailing zeros: ``150``, ``0.1``."""
    text = format(value.normalize(), "f")
    return text


def fraction_base(instrument: Instrument | None, symbol: str, qty: Decimal, configured: dict[str, int]) -> int:
    """The FractionBase (43229) to send ``qty`` of ``symbol`` with (module docstring, MID-3)."""
    base = configured.get(symbol) or DOCUMENT_FRACTION_BASES.get(symbol)
    if base is not None and (qty * base) % 1:
        # the venue works the symbol in its own base and truncates a finer quantity (issue 23):
        # refused here rather than sent at a raised 43229 and worked as a smaller order
        raise OrderError(Reject.INVALID_QUANTITY, f"quantity {qty} is finer than {symbol}'s lot 1/{base} "
                         "(its FractionBase)")
    if base is None:
        places = 0
        if instrument is not None:
            exponent = instrument.lot_size.normalize().as_tuple().exponent
            places = max(0, -exponent) if isinstance(exponent, int) else 0
        base = 10**places
    while (qty * base) % 1:
        base *= 10
        if base > MAX_FRACTION_BASE:
            raise OrderError(Reject.INVALID_QUANTITY, f"quantity {qty} has more decimals than FIX OrderQty (38) "
                             f"can carry with a FractionBase up to 10^18")
    return base


def scaled_qty(qty: Decimal, base: int) -> str:
    """``38`` for ``qty`` at ``base``: an integer, never rounded."""
    value = qty * base
    if value % 1 or value <= 0:
        raise OrderError(Reject.INVALID_QUANTITY, f"quantity {qty} is not a positive multiple of 1/{base}")
    return str(int(value))


def wire_root(client_id: str) -> str:
    """The ClOrdID (11) of a new order: the client id, or a digest when it would not fit."""
    if _ROOT_CHARS.fullmatch(client_id) and CHAIN_MARK not in client_id:
        return client_id
    return "h" + hashlib.sha256(client_id.encode()).hexdigest()[:27]


def chained(root: str, n: int) -> str:
    """The ``n``-th cancel/replace ClOrdID of the order whose root is ``root``."""
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    text = ""
    while True:
        n, rest = divmod(n, 36)
        text = digits[rest] + text
        if not n:
            break
    clordid = f"{root}{CHAIN_MARK}{text}"
    if len(clordid) > MAX_CLORDID:
        raise OrderError(Reject.INVALID_ORDER, f"order {root}: too many cancel/replace requests for a 32-char ClOrdID")
    return clordid


def clordid_root(clordid: str) -> str:
    """The root of any ClOrdID this adapter sent (``root~n`` -> ``root``)."""
    return clordid.split(CHAIN_MARK, 1)[0]


def utc_timestamp(now_ns: int) -> str:
    """FIX UTCTimestamp with milliseconds: ``20210714-10:31:02.552``."""
    moment = datetime.fromtimestamp(now_ns // NS, tz=UTC)
    return f"{moment:%Y%m%d-%H:%M:%S}.{(now_ns // 1_000_000) % 1000:03d}"


def day_expiry(now_ns: int, boundary: timedelta = DAY_BOUNDARY) -> int:
    """The end of the trading day ``now_ns`` is in (the next 01:00 UTC), as epoch ns."""
    day = datetime.fromisoformat(trading_day(now_ns, boundary)).replace(tzinfo=UTC)
    return int((day + timedelta(days=1) + boundary).timestamp()) * NS


@dataclass(frozen=True, slots=True)
class OrderTerms:
    """What D, F and G repeat about an order."""

    clordid: str
    symbol: str
    side: Side
    qty: Decimal
    price: Decimal | None
    order_type: OrderType
    tif: TimeInForce
    base: int
    expire_ns: int | None = None


def tif_fields(terms: OrderTerms, day_tif: str) -> list[tuple[int, str]]:
    """``59`` (and ``126`` for GTD) for ``terms`` (module docstring, MID-6)."""
    if terms.order_type is OrderType.MARKET:
        return [(59, TIF[TimeInForce.FOK] if terms.tif is TimeInForce.FOK else TIF[TimeInForce.IOC])]
    if terms.tif is TimeInForce.DAY:
        if day_tif == "gtc":
            return [(59, TIF[TimeInForce.GTC])]
        if day_tif == "refuse" or terms.expire_ns is None:
            raise OrderError(Reject.ORDER_TYPE_NOT_SUPPORTED, "a DAY order is not sent (option day_tif: refuse)")
        return [(59, GTD), (126, utc_timestamp(terms.expire_ns))]
    return [(59, TIF[terms.tif])]


def new_order_body(terms: OrderTerms, handl_inst: str, account: str | None, day_tif: str,
                   now_ns: int) -> list[tuple[int, str]]:
    """NewOrderSingle ``D`` (001's field order: 11, 21, 38, 40, 44, 54, 55, 59, 60, 43229; 1 first)."""
    if terms.order_type is OrderType.MARKET and terms.side is Side.BUY:
        raise OrderError(Reject.ORDER_TYPE_NOT_SUPPORTED,
                         "market buy not supported over FIX (001: \"We Only Support Market Sell Order Over Fix "
                         "API\"); send a limit order")
    if terms.order_type is OrderType.LIMIT and terms.price is None:
        raise OrderError(Reject.PRICE_REQUIRED, "a limit order needs a price (44)")
    body: list[tuple[int, str]] = [(1, account)] if account else []
    body += [(11, terms.clordid), (21, handl_inst), (38, scaled_qty(terms.qty, terms.base)),
             (40, "1" if terms.order_type is OrderType.MARKET else "2")]
    if terms.order_type is OrderType.LIMIT and terms.price is not None:
        body.append((44, format_decimal(terms.price)))
    body += [(54, SIDE[terms.side]), (55, terms.symbol)]
    body += tif_fields(terms, day_tif)
    body += [(60, utc_timestamp(now_ns)), (43229, str(terms.base))]
    return body


def cancel_body(terms: OrderTerms, clordid: str, venue_order_id: str, handl_inst: str, day_tif: str,
                now_ns: int) -> list[tuple[int, str]]:
    """OrderCancelRequest ``F``: the required 41, 11, 55, 54, 38 (and 37 when known), plus the
    order's 21, 40, 44, 59, 60, 43229 as 001's example carries them."""
    body: list[tuple[int, str]] = [(11, clordid), (21, handl_inst), (38, scaled_qty(terms.qty, terms.base)),
                                   (40, "1" if terms.order_type is OrderType.MARKET else "2"), (41, terms.clordid)]
    if venue_order_id:
        body.append((37, venue_order_id))
    if terms.price is not None:
        body.append((44, format_decimal(terms.price)))
    body += [(54, SIDE[terms.side]), (55, terms.symbol)]
    body += _tif_or_gtc(terms, day_tif)
    body += [(60, utc_timestamp(now_ns)), (43229, str(terms.base))]
    return body


def replace_body(terms: OrderTerms, clordid: str, venue_order_id: str, account: str | None, handl_inst: str,
                 day_tif: str, now_ns: int) -> list[tuple[int, str]]:
    """OrderCancel/ReplaceRequest ``G``: ``terms`` are the NEW terms, ``terms.clordid`` the
    ClOrdID being replaced (41); ``clordid`` the new one (11)."""
    body: list[tuple[int, str]] = [(1, account)] if account else []
    body += [(11, clordid), (21, handl_inst), (38, scaled_qty(terms.qty, terms.base)), (40, "2"), (41, terms.clordid)]
    if venue_order_id:
        body.append((37, venue_order_id))
    if terms.price is not None:
        body.append((44, format_decimal(terms.price)))
    body += [(54, SIDE[terms.side]), (55, terms.symbol)]
    body += tif_fields(terms, day_tif)
    body += [(60, utc_timestamp(now_ns)), (43229, str(terms.base))]
    return body


def _tif_or_gtc(terms: OrderTerms, day_tif: str) -> list[tuple[int, str]]:
    try:
        return tif_fields(terms, day_tif)
    except OrderError:  # a cancel is never refused for its order's TIF
        return [(59, TIF[TimeInForce.GTC])]


@dataclass(frozen=True, slots=True)
class ExecReport:
    """An ExecutionReport ``8`` in the engine's terms: quantities already divided by the report's
    own ``43229``. ``last_qty``/``last_px`` are set only on an execution."""

    clordid: str
    orig_clordid: str
    venue_order_id: str
    exec_id: str
    exec_type: str
    ord_status: str
    status: OrderStatus
    symbol: str
    side: Side | None
    qty: Decimal | None
    cum_qty: Decimal
    leaves_qty: Decimal | None
    price: Decimal | None
    last_qty: Decimal | None
    last_px: Decimal | None  # None on an execution without 31 (001's ER table omits it): priced from 6 and 14
    liquidity: Liquidity
    text: str
    avg_px: Decimal | None = None

    @property
    def is_fill(self) -> bool:
        return self.last_qty is not None


@dataclass(frozen=True, slots=True)
class CancelReject:
    """An OrderCancelReject ``9``: ``response_to`` is ``F`` or ``G`` (434: 1 / 2)."""

    clordid: str
    orig_clordid: str
    venue_order_id: str
    status: OrderStatus | None
    response_to: str
    text: str
    code: int


def _decimal(message: FixMessage, tag: int, name: str, required: bool = True) -> Decimal | None:
    text = message.get(tag)
    if text is None or text == "":
        if required:
            raise ReportError(f"{name} ({tag}) missing")
        return None
    if len(text) > 40:
        raise ReportError(f"{name} ({tag}) is {len(text)} characters", BAD_NUMBER)
    if not _FIX_FLOAT.fullmatch(text):  # FIX 4.2 float: digits, one optional point and sign; no exponent
        raise ReportError(f"{name} ({tag}) is not a FIX number: {text[:20]!r}", BAD_NUMBER)
    try:
        return Decimal(text)
    except InvalidOperation:  # unreachable after the pattern; kept so nothing but ReportError escapes
        raise ReportError(f"{name} ({tag}) is not a number: {text[:20]!r}", BAD_NUMBER) from None


#: the quantity tags a report's 43229 scales
_QTY_TAGS = (38, 14, 151, 32)


def _base(message: FixMessage) -> int:
    text = message.get(43229)
    if text is None and not any(message.get(tag) for tag in _QTY_TAGS):
        return 1  # a state-only report (no quantity to scale): its status still counts
    if text is None:
        raise ReportError("FractionBase (43229) missing: the report's quantities cannot be read (MID-3)")
    if not text.isascii() or not text.isdigit() or len(text) > 19 or int(text) < 1:
        raise ReportError(f"FractionBase (43229) is not a positive integer: {text[:20]!r}", BAD_NUMBER)
    return int(text)


def parse_exec_report(message: FixMessage) -> ExecReport:
    """An ER's fields, quantities rescaled by its own 43229; :class:`ReportError` naming the field
    when it cannot be used."""
    clordid = message.get(11) or ""
    exec_id = message.get(17) or ""
    ord_status = message.get(39) or ""
    if not clordid:
        raise ReportError("ClOrdID (11) missing")
    if not exec_id:
        raise ReportError("ExecID (17) missing")
    status = ORD_STATUS.get(ord_status)
    if status is None:
        raise ReportError(f"OrdStatus (39) {ord_status[:10]!r} is not one of 001's values")
    base = Decimal(_base(message))
    exec_type = message.get(150) or ""
    qty = _decimal(message, 38, "OrderQty", required=False)
    cum = _decimal(message, 14, "CumQty", required=False) or Decimal(0)
    leaves = _decimal(message, 151, "LeavesQty", required=False)
    last_qty_raw = _decimal(message, 32, "LastShares", required=False)
    last_qty = last_px = None
    if exec_type in FILL_EXEC_TYPES or (not exec_type and last_qty_raw):
        if not last_qty_raw or last_qty_raw <= 0:
            raise ReportError(f"execution (150={exec_type}) without a positive LastShares (32)")
        last_qty = last_qty_raw / base
        last_px = _decimal(message, 31, "LastPx", required=False)  # 001's ER table has no 31: priced from 6/14
        if last_px is not None and last_px <= 0:
            raise ReportError("execution with a LastPx (31) that is not positive", BAD_NUMBER)
        if last_px is None and message.get(6) is None:
            raise ReportError("execution with neither LastPx (31) nor AvgPx (6): it cannot be priced")
    side_text = message.get(54) or ""
    liquidity = {"P": Liquidity.MAKER, "T": Liquidity.TAKER}.get(message.get(43214) or "", Liquidity.UNKNOWN)
    return ExecReport(
        clordid=clordid,
        orig_clordid=message.get(41) or "",
        venue_order_id=message.get(37) or "",
        exec_id=exec_id,
        exec_type=exec_type,
        ord_status=ord_status,
        status=status,
        symbol=message.get(55) or "",
        side=SIDE_OF.get(side_text),
        qty=None if qty is None else qty / base,
        cum_qty=cum / base,
        leaves_qty=None if leaves is None else leaves / base,
        price=_decimal(message, 44, "Price", required=False),
        last_qty=last_qty,
        last_px=last_px,
        liquidity=liquidity,
        text=message.get(58) or "",
        avg_px=_decimal(message, 6, "AvgPx", required=False),
    )


def parse_cancel_reject(message: FixMessage) -> CancelReject:
    clordid = message.get(11) or ""
    orig = message.get(41) or ""
    if not clordid and not orig:
        raise ReportError("OrderCancelReject without ClOrdID (11) or OrigClOrdID (41)")
    text = message.get(58) or "cancel rejected"
    response_to = {"1": "F", "2": "G"}.get(message.get(434) or "", "F")
    code = reject_code(text)
    if code == int(Reject.EXCHANGE_REJECT) and (message.get(102) or "") == "1":
        code = int(Reject.ORDER_NOT_OPEN)  # FIX CxlRejReason 1: unknown order
    return CancelReject(clordid, orig, message.get(37) or "", ORD_STATUS.get(message.get(39) or ""), response_to,
                        text, code)
