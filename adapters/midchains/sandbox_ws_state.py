"""The MidChains sandbox's WebSocket side: users, their accounts and orders, the rate windows, and
the JSON forms of document 001 (issue 24). Built from the document alone: nothing of the adapter's
``ws_codec``/``ws_auth`` is imported, so a guess the adapter makes fails a test instead of being
mirrored.

Numbers are written as 001's samples write them (``"price":"472.33"``, ``"qty":"0.46"``: plain
decimal strings, :func:`adapters.midchains.sandbox_wire.plain`), with the exceptions the samples
show (VENUES.md 2.3): the book ``id``, ``rec_no``, ``total_rec`` (a string only in ``lshistory``),
``fractionbase``, the ``amount`` of the ``addorder`` ack and the booleans ``ismaker``, ``alo``,
``tradingsymbol``, ``fiat``, ``pair``. Times are epoch milliseconds as strings.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from adapters.midchains.sandbox_wire import plain
from engine.model import Side
from engine.venue.clock import Timer

__all__ = ["DEFAULT_BALANCE", "FIRM", "QUOTE_BALANCE", "Account", "Bucket", "WsOrder", "WsUser", "base_of",
           "compact", "dict_repr", "quote_of", "take_slot"]

D = Decimal
ZERO = D(0)
FIRM = "MIDC"  # 001's samples: "firm":"MIDC"
QUOTE_BALANCE = D(1_000_000)  # a user's starting USD unless told (001's login sample: "curpos":"1013057.59")
DEFAULT_BALANCE = D(100)  # a user's starting holding of every listed base asset unless told
DAILY_LIMIT = D(10_000_000)  # "Exceeds margin limit Exceed total Amount": the maximum daily notional (USD)


@dataclass(frozen=True)
class WsUser:
    """One WebSocket login. ``password`` is what the client RSA-encrypts; it never prints
    (``repr=False``) and is never logged. ``comp_id`` links the user to a FIX SenderCompID: the same
    account on both protocols (one 4/s order window, MID-9; the FIX fills move this user's
    positions; the two protocols' orders of it are one owner, so they cannot trade with each other:
    "wash sale prohibited"). ``balances`` (asset -> amount) replace the defaults: USD
    :data:`QUOTE_BALANCE`, every listed base asset :data:`DEFAULT_BALANCE`."""

    userid: str
    password: str = field(repr=False)
    comp_id: str | None = None
    balances: Mapping[str, Decimal] | None = None
    daily_limit: Decimal = DAILY_LIMIT


def base_of(symbol: str) -> str:
    """The asset a pair trades (``LTCUSD`` -> ``LTC``; 001's ``pair_first``)."""
    return symbol[:-3] if len(symbol) > 3 else symbol


def quote_of(symbol: str) -> str:
    """The asset a pair is priced in (``LTCUSD`` -> ``USD``; 001's ``pair_second``)."""
    return symbol[-3:] if len(symbol) > 3 else "USD"


def compact(message: Mapping[str, Any]) -> str:
    """One JSON message as the venue sends it: no spaces (001's samples are pretty-printed for
    reading; the wire form is the adapter's concern, not the spacing)."""
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False)


def dict_repr(message: Mapping[str, Any]) -> str:
    """001's ``exceed order/sec limit`` sample as the document prints it: a Python dict repr with
    single quotes and every value a string (``'alo': 'true'``), not JSON (venue-notes 3.4)."""
    def text(value: Any) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)

    return repr({key: text(value) for key, value in message.items()})


def take_slot(times: deque[float], limit: int, now: float) -> bool:
    """One event at ``now`` (seconds on the venue's clock) against a one-second sliding window of at
    most ``limit``: True when within it. The arrival is recorded either way (a client hammering the
    limit stays over it). The venue's clock, not the wall's: under ``--speed 60`` a venue second is a
    sixtieth of a real one, as it is for the engine's pacer."""
    while times and now - times[0] >= 1.0:
        times.popleft()
    within = len(times) < limit
    times.append(now)
    return within


class Bucket:
    """001's "N requests per second, up to M requests per second in bursts" as a token bucket:
    ``rate`` tokens a (venue clock) second, at most ``burst`` saved up; full at the first take."""

    __slots__ = ("rate", "burst", "tokens", "last")

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.last: float | None = None

    def take(self, now: float) -> bool:
        if self.last is not None:
            self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class WsOrder:
    """One order placed over the WebSocket API, as the venue keeps it (``orderstatus`` is one of
    001's Open / Executed / Rejected / Cancelled; a partial fill stays Open, MID-11)."""

    __slots__ = ("key", "account", "symbol", "side", "ordertype", "tif", "price", "qty", "amount", "exptime",
                 "alo", "clientorderid", "refno", "engine_id", "filled", "notional", "status", "text", "enttime",
                 "updtime", "open", "expiry", "expiring")

    def __init__(self, account: Account, symbol: str, side: Side, ordertype: str, tif: str, price: Decimal | None,
                 qty: Decimal, amount: Decimal | None, exptime: str, alo: bool, clientorderid: str | None,
                 now_ms: int) -> None:
        self.key = ""
        self.account = account
        self.symbol = symbol
        self.side = side
        self.ordertype = ordertype
        self.tif = tif
        self.price = price
        self.qty = qty
        self.amount = amount  # a market buy's fiat amount; its qty is provisional (001's example)
        self.exptime = exptime
        self.alo = alo
        self.clientorderid = clientorderid
        self.refno = ""
        self.engine_id = 0
        self.filled = ZERO
        self.notional = ZERO
        self.status = "Open"
        self.text = ""
        self.enttime = now_ms
        self.updtime = now_ms
        self.open = False
        self.expiry: Timer | None = None
        self.expiring = False  # its GTT time came: the cancel that follows is an expiry

    @property
    def leaves(self) -> Decimal:
        return self.qty - self.filled if self.open else ZERO

    def push(self) -> dict[str, Any]:
        """The ``order`` message (001's login and addorder samples, their key order)."""
        user = self.account.user.userid
        message: dict[str, Any] = {"refno": self.refno, "side": "B" if self.side is Side.BUY else "S"}
        if self.amount is not None:
            message["amount"] = plain(self.amount)
        message.update({
            "orderstatus": self.status, "type": "order", "userid": user, "execamount": plain(self.notional),
            "tif": self.tif, "firm": FIRM, "security": self.symbol,
            "price": plain(self.price) if self.price is not None else "0",
            "liveqty": plain(self.leaves), "qty": plain(self.qty), "updtime": str(self.updtime),
            "enttime": str(self.enttime), "category": "STAGE", "execqty": plain(self.filled), "account": user,
            "ordertype": self.ordertype,
        })
        if self.exptime:
            message["exptime"] = self.exptime
        if self.alo:
            message["alo"] = True
        if self.clientorderid is not None:
            message["clientorderid"] = self.clientorderid
        if self.text:
            message["text"] = self.text
        return message

    def query(self) -> dict[str, Any]:
        """``queryorder``'s ``data``: 001's sample keys, no ``orderstatus`` (MID-15)."""
        data: dict[str, Any] = {
            "updtime": str(self.updtime), "tif": self.tif, "execamount": plain(self.notional), "qty": plain(self.qty),
            "security": self.symbol, "type": "order",
        }
        if self.clientorderid is not None:
            data["clientorderid"] = self.clientorderid
        data.update({"liveqty": plain(self.leaves), "category": "CROX", "refno": self.refno,
                     "price": plain(self.price) if self.price is not None else "0", "execqty": plain(self.filled),
                     "side": "B" if self.side is Side.BUY else "S"})
        return data

    def record(self, rec_no: int) -> dict[str, Any]:
        """One ``querymultiorders`` record (001's sample keys, with ``orderstatus``)."""
        return {"updtime": str(self.updtime), "liveqty": plain(self.leaves), "orderstatus": self.status,
                "refno": self.refno, "category": "STAGE", "execqty": plain(self.filled),
                "price": plain(self.price) if self.price is not None else "0",
                "side": "B" if self.side is Side.BUY else "S", "execamount": plain(self.notional),
                "enttime": str(self.enttime), "tif": self.tif, "qty": plain(self.qty), "rec_no": rec_no,
                "security": self.symbol, "type": "order"}


class Account:
    """A user's balances (``curpos`` per asset), orders, fills and windows. ``cost`` is the running
    fiat cost of each asset: what buys paid minus what sells received (for USD the negative of the
    assets' sum), 001's ``position.cost`` in spirit; 001 does not define it."""

    def __init__(self, user: WsUser, assets: list[str], private_rate: tuple[float, float]) -> None:
        self.user = user
        self.owner = f"fix:{user.comp_id}" if user.comp_id else f"ws:{user.userid}"
        if user.balances is not None:
            self.curpos = {asset: D(value) for asset, value in user.balances.items()}
        else:
            self.curpos = {asset: (QUOTE_BALANCE if asset == "USD" else DEFAULT_BALANCE) for asset in assets}
        self.cost: dict[str, Decimal] = dict.fromkeys(self.curpos, ZERO)
        self.orders: list[WsOrder] = []
        self.by_refno: dict[str, WsOrder] = {}
        self.sales: list[dict[str, Any]] = []
        self.order_times: deque[float] = deque()
        self.private = Bucket(*private_rate)
        self.day = ""
        self.notional = ZERO  # today's order notional (the margin limit)

    def withheld(self, asset: str) -> Decimal:
        """What open orders hold of ``asset`` (001's ``managedpos``): a buy's leaves x price in the
        quote, a sell's leaves in the base."""
        held = ZERO
        for order in self.orders:
            if not order.open:
                continue
            if order.side is Side.BUY and quote_of(order.symbol) == asset and order.price is not None:
                held += order.leaves * order.price
            elif order.side is Side.SELL and base_of(order.symbol) == asset:
                held += order.leaves
        return held

    def available(self, asset: str) -> Decimal:
        return self.curpos.get(asset, ZERO) - self.withheld(asset)

    def move(self, asset: str, qty: Decimal, cost: Decimal) -> None:
        self.curpos[asset] = self.curpos.get(asset, ZERO) + qty
        self.cost[asset] = self.cost.get(asset, ZERO) + cost

    def position(self, asset: str) -> dict[str, Any]:
        """The ``position`` push (001's login sample, its key order)."""
        return {"firm": FIRM, "security": asset, "curpos": plain(self.curpos.get(asset, ZERO)),
                "cost": plain(self.cost.get(asset, ZERO)), "type": "position", "account": self.user.userid}
