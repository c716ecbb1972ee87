"""A local Pulse API v2 venue: JSON-RPC 2.0 over WebSocket on the one simulated venue.

``engine sandbox pulse`` runs it; tests start it on 127.0.0.1 port 0 (``async with PulseSandbox()``).
It speaks the document's methods, channels and response shapes (shared/seeds/004_df0ce6c3f341e5af.txt,
digested in shared/VENUES.md section 5) plus the assumptions VENUES.md states where the document is
silent (Deribit's envelope, heartbeats, book level format, MMP and cancel-on-disconnect rules,
error statuses 1..13). It builds its frames from the matching engine's events itself and does not
import the adapter's codec, so a field the adapter misreads fails a test instead of being mirrored.

The exchange itself (books with ticks and amount steps, the synthetic market and its timers, the
24/7 session) is :class:`adapters.sim.venue.SimVenue`, as for every other sandbox: the sandbox
trades its clients' orders through it (``submit_for``/``cancel_for``/``amend_for``) and hears every
operation, its own and the background market's, through ``on_engine_events``.

What it keeps per account: orders (with the session that placed them), trades, linear positions,
MMP configs and freezes per ``index_name``. Per connection: authentication and token expiry,
cancel-on-disconnect (default off), subscriptions, heartbeat interval. A dropped socket (or a
heartbeat test_request left unanswered) cancels that session's open orders when COD is enabled;
``private/logout`` closes gracefully and cancels nothing ("when COD is enabled orders are not
cancelled"). Time is the given clock's (WallClock by default; the synthetic market's timers run on
it too): Pulse trades 24/7, so the venue is always in continuous trading.

Faults (``--fault`` or the methods of the same names; :data:`SUPPORTED_FAULTS` of the simulated
venue's one vocabulary, :mod:`adapters.sim.faults`, the others refused by name): ``drop`` (abort
every socket), ``stall`` (send nothing for a while), ``gap`` (lose the next book change of an
instrument), ``error`` (answer the next requests of a method with an error status), ``garbage``
(send a non-JSON frame and a truncated one), ``badframe`` (send hostile frames of one class,
:mod:`adapters.sim.badframes`: a book change whose ``type`` is a list, an array nested 100,000 deep,
a number with a 20-digit exponent, a heartbeat as a binary frame, half of a real book change (its
change_id used up, so the client sees a gap), a heartbeat padded to 10 MiB).

Everything it does beyond the document is a named switch of :class:`PulseExtensions`, each naming
the VENUES.md gap it stands for (the ``trades.{instrument}.raw`` channel, PUL-7; subscribe
answering the channel list, PUL-14; ``order_id``/``label``/``fee``/``liquidity`` in trade objects,
PUL-8; snapshots on subscribe, PUL-6; Deribit's heartbeat messages and ``public/test``; ...). All
are on by default (``PulseExtensions.everyday()``, the sandbox the project always ran);
``extensions=PulseExtensions.document_literal()`` (``--document-literal``) switches every one off,
and the venue answers exactly 004's shapes: what an adapter passes there does not rest on our own
guesses. ``--extension NAME`` / ``--no-extension NAME`` switch one. Two dialects beside them:
``mass_cancel_count`` (``--mass-cancel-count``: Deribit's count as the mass-cancel answer) and
``rate_limit`` (``--rate-limit``: VENUES.md 5.14's assumed budget enforced with status 11; off by
default, as 004 documents no limit, PUL-11). With ``--test-methods`` (either mode) the
``sandbox/*`` methods that tests and the benchmark use to inject orders, faults and bursts from
another process. ``--refuse-channel PATTERN`` (``refuse_channels=``) takes one more channel away:
left out of the subscribe result, or with ``refuse_with_error=True`` the whole subscribe request
answered with status 1.

Its log and the websockets server's (logger ``engine.pulse.sandbox.wire``) pass the same
credential filter as the adapter's (:mod:`adapters.pulse.wirelog`): a DEBUG log of the frames
shows no client secret and no token.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fnmatch
import hashlib
import hmac
import itertools
import json
import re
import secrets
import sys
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, ClassVar

import anyio
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from adapters.kit.credentials import sandbox_secret
from adapters.kit.wirejson import Reader, WireError
from adapters.pulse.wirelog import sandbox_log, sandbox_wire_log
from adapters.sim.badframes import HUGE_NUMBER, bad_frame, check_kind
from adapters.sim.cli import Port, VenueSandboxCommand, free_ports, listening, sandbox_clock, until_stopped
from adapters.sim.extensions import Extensions, add_extension_arguments, extensions_from_args, extensions_line
from adapters.sim.faults import (
    FAULT_KINDS,
    FaultSpec,
    canonical_kind,
    check_params,
    check_supported,
    fault_help,
    parse_fault_spec,
)
from adapters.sim.market import MarketOptions
from adapters.sim.matching import (
    Accepted,
    Cancelled,
    CancelRejected,
    EngineEvent,
    Execution,
    MatchingEngine,
    Rejected,
    Replaced,
    ReplaceRejected,
)
from adapters.sim.venue import Changes, SimVenue
from engine.model import Instrument, OrderType, Side, TimeInForce
from engine.venue import SandboxLink, venue_from_config
from engine.venue.clock import Clock, WallClock
from engine.venue.ratelimit import RateBucket
from engine.venue.rejects import Reject

__all__ = ["COMMAND", "SUPPORTED_FAULTS", "FaultSpec", "PulseExtensions", "PulseSandbox", "SandboxInstrument", "main",
           "parse_fault", "parse_instrument"]

log = sandbox_log  # "engine.pulse.sandbox"; it and the websockets server's log never show a credential

WS_PATH = "/ws/api/v2"
ZERO = Decimal(0)
NS_PER_MS = 1_000_000
NS_PER_S = 1_000_000_000
DEFAULT_SECRET_ENV = "PULSE_SANDBOX_SECRET"
DEFAULT_CLIENT_ID = "sandbox"
DEFAULT_SECRET = "sandbox-secret"  # a public test credential: the sandbox guards no money
SIGNATURE_WINDOW_MS = 60_000
VERSION = "2.0.0-sandbox"

# Error statuses: return_codes.CommonCodes 1..13 have no documented meanings (PUL-4); these are
# VENUES.md 5.12's, shared with the adapter by specification, not by import.
BAD_REQUEST, UNAUTHORIZED, FORBIDDEN, NOT_FOUND, BAD_INSTRUMENT = 1, 2, 3, 4, 5
NO_FUNDS, BAD_PRICE, BAD_AMOUNT, POST_ONLY, MMP_FROZEN, RATE_LIMITED, NOT_OPEN, INTERNAL = range(6, 14)
# the matching engine's reject codes (engine/rejects.py) as Pulse statuses
_ENGINE_TO_STATUS = {
    int(Reject.INVALID_QUANTITY): BAD_AMOUNT,
    int(Reject.PRICE_OUTSIDE_CIRCUIT_BREAKER): BAD_PRICE,
    int(Reject.POST_ONLY_WOULD_TAKE): POST_ONLY,
    int(Reject.ORDER_TYPE_NOT_SUPPORTED): BAD_REQUEST,
    int(Reject.MARKET_CLOSED): INTERNAL,
    int(Reject.ORDER_NOT_OPEN): NOT_OPEN,
    int(Reject.INVALID_ORDER): BAD_AMOUNT,
}
_TIFS = {
    "good_til_cancelled": TimeInForce.GTC,
    # good_til_day: "till the end of the trading session"; a 24/7 sandbox has no session end, so
    # such orders live until cancelled (documented in the sandbox notes)
    "good_til_day": TimeInForce.GTC,
    "immediate_or_cancel": TimeInForce.IOC,
    "fill_or_kill": TimeInForce.FOK,
}
_OK_MESSAGE = {"description": "ok", "response": None, "status": 200}
#: request arrival times kept for a test to count windows in (a day-long run stays bounded)
ARRIVALS_KEPT = 100_000
#: what clients send is read as the adapter reads the venue: one bounded, exact reader (adapters.kit.wirejson)
_DECODE = Reader().loads


class _Err(Exception):
    """A business error answered as a JSON-RPC error with a Pulse status."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# --------------------------------------------------------------------------------------------
# JSON: the sandbox's own writer (Decimal as plain numbers, never an exponent, never a float)


def _number(value: object) -> str:
    """A Decimal as a marked string the encoder writes quoted; ``_json`` unquotes it into a plain
    JSON number (positional notation, whole values without ".0")."""
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise TypeError(f"sandbox cannot encode {value}")
        text = format(value.normalize() if value == value.to_integral_value() else value, "f")
        return "\x00" + text + "\x00"
    raise TypeError(f"sandbox cannot encode {type(value).__name__}")


# the C encoder does the walking; Decimals come back as "\u0000<digits>\u0000" and are unquoted
_ENCODE = json.JSONEncoder(default=_number, separators=(",", ":"), check_circular=False).encode
_MARKED = re.compile(r'"\\u0000([-0-9.]+)\\u0000"')


def _json(value: Any) -> str:
    text = _ENCODE(value)
    return _MARKED.sub(r"\1", text) if "\\u0000" in text else text


def _dec(value: Any, field_name: str, code: int = BAD_REQUEST) -> Decimal:
    if isinstance(value, bool) or value is None:
        raise _Err(code, f"{field_name} is required and must be a number")
    if isinstance(value, (int, Decimal)):
        result = Decimal(value)
    elif isinstance(value, str):
        try:
            result = Decimal(value)
        except InvalidOperation:
            raise _Err(code, f"{field_name} {value!r} is not a number") from None
    else:
        raise _Err(code, f"{field_name} must be a number")
    if not result.is_finite():
        raise _Err(code, f"{field_name} must be finite")
    return result


def _index_of(name: str) -> str:
    head = name.split("-", 1)[0].lower()
    return head if "_" in head else f"{head}_usd"


# --------------------------------------------------------------------------------------------
# Configuration


@dataclass(frozen=True)
class SandboxInstrument:
    """One listed instrument: its name, a starting mid price, price tick and amount step."""

    name: str
    mid: Decimal = Decimal(50000)
    tick: Decimal = Decimal("0.5")
    step: Decimal = Decimal(10)
    index_name: str = ""
    kind: str = "future"

    @property
    def index(self) -> str:
        return self.index_name or _index_of(self.name)


DEFAULT_INSTRUMENTS = (
    SandboxInstrument("BTC_USD-PERPETUAL", Decimal(50000), Decimal("0.5"), Decimal(10)),
    SandboxInstrument("ETH_USD-PERPETUAL", Decimal(3000), Decimal("0.05"), Decimal(1)),
)


def parse_instrument(text: str) -> SandboxInstrument:
    """``NAME[=MID[:TICK[:STEP]]]``, e.g. ``BTC_USD-PERPETUAL=50000:0.5:10``."""
    name, _, rest = text.partition("=")
    if not name:
        raise ValueError(f"instrument {text!r}: empty name")
    base = next((i for i in DEFAULT_INSTRUMENTS if i.name == name), SandboxInstrument(name))
    parts = rest.split(":") if rest else []
    try:
        mid = Decimal(parts[0]) if len(parts) > 0 and parts[0] else base.mid
        tick = Decimal(parts[1]) if len(parts) > 1 and parts[1] else base.tick
        step = Decimal(parts[2]) if len(parts) > 2 and parts[2] else base.step
    except InvalidOperation:
        raise ValueError(f"instrument {text!r}: MID, TICK and STEP must be numbers") from None
    if mid <= 0 or tick <= 0 or step <= 0:
        raise ValueError(f"instrument {text!r}: MID, TICK and STEP must be positive")
    return SandboxInstrument(name, mid, tick, step)


@dataclass(frozen=True)
class PulseExtensions(Extensions):
    """Every behaviour of the sandbox that 004 does not show, one switch each, named after the
    VENUES.md gap it stands for. :meth:`everyday` (all on) is the sandbox the project grew up with;
    :meth:`document_literal` (all off) answers exactly the document's shapes and nothing more, so an
    adapter that passes against it does not depend on our own guesses (issue 20).

    Assumptions with no literal alternative stay in both modes, because 004 shows nothing a venue
    could do instead: the JSON-RPC envelope and method names (PUL-1), error statuses 1..13 with
    VENUES.md 5.12's meanings (PUL-4), ``expires_in`` in seconds (PUL-3), book levels
    ``["new"|"change"|"delete", price, amount]`` and ``[price, amount]`` in ``get_order_book``
    (PUL-6), MMP counting and freezes (PUL-9), cancel-on-disconnect per session, default off
    (PUL-10), post_only refused with another TIF than GTC (PUL-12)."""

    #: PUL-7: the public trades channel ``trades.{instrument}.raw`` (004 has no public trades channel)
    trades_channel: bool = True
    #: PUL-14: ``public/subscribe``/``private/subscribe`` answer the list of channels subscribed
    #: (Deribit); off: 004's example answer, the JSON string ``"string"``
    subscribe_lists_channels: bool = True
    #: PUL-14: ``public/unsubscribe``/``private/unsubscribe`` {channels} (004 has only unsubscribe_all)
    unsubscribe_methods: bool = True
    #: PUL-8: trade objects carry ``order_id``, ``label``, ``fee``, ``fee_currency``, ``liquidity``
    #: (and ``order_type``, ``state``, ``underlying_*``); off: ``user.trades``, ``user.changes``
    #: and ``get_user_trades_*`` send 004's Trade (TradesResponse) fields only, buy/sell/edit
    #: answers 004's TradeConfirmation fields only
    trade_order_fields: bool = True
    #: PUL-6: subscribing to ``book.{i}.raw`` sends a snapshot at once (004 shows a ``snapshot``
    #: type but never says when one comes); off: no snapshot, a client fetches private/get_order_book
    book_snapshot_on_subscribe: bool = True
    #: PUL-14: subscribing to ``quote.{i}`` or ``heartbeat_trade`` sends the current value at once
    #: (004 does not say so); off: the first notification is the next change
    current_value_on_subscribe: bool = True
    #: VENUES.md 5.11 (Deribit's keepalive; 004 documents set_heartbeat but no heartbeat message):
    #: ``heartbeat``/``test_request`` messages every interval, and a session that leaves a
    #: test_request unanswered is dropped (cancel-on-disconnect fires)
    heartbeat_messages: bool = True
    #: VENUES.md 5.11: ``public/test`` (Deribit's answer to a test_request; not a 004 method)
    public_test: bool = True
    #: VENUES.md 5.11: ``public/set_heartbeat`` takes a fractional interval (004: "interval integer");
    #: off: an interval that is not a whole number of seconds is refused with status 1
    fractional_heartbeat: bool = True
    #: PUL-5 / VENUES.md 5.8: a mass cancel answers the orders in their final state ``cancelled``;
    #: off: as 004's example, the orders as they stood when cancelled (``order_state`` "open")
    mass_cancel_final_states: bool = True
    #: VENUES.md 5.8: orders a mass cancel ends are reported on ``user.orders``/``user.changes``
    #: (Deribit does; 004 never says which events a private channel carries); off: the answer is
    #: the only word about them
    mass_cancel_notifications: bool = True
    #: PUL-10: enable/disable_cancel_on_disconnect answer ``"ok"`` (Deribit); off: 004's "200, no
    #: body", a null result
    cod_answers_ok: bool = True
    #: VENUES.md 5.4: ``private/get_instruments`` entries carry ``tick_size`` and
    #: ``min_trade_amount`` (Deribit; 004's example has neither)
    instrument_steps: bool = True


#: fields of 004's Trade (models.TradesResponse): user.trades, user.changes, get_user_trades_*
TRADE_FIELDS = frozenset({"amount", "api", "direction", "index_price", "instrument_name", "mark_iv", "mark_price",
                          "price", "tick_direction", "timestamp", "trade_id", "trade_seq"})
#: fields of 004's TradeConfirmation: the trades of a buy/sell/edit answer
TRADE_CONFIRMATION_FIELDS = frozenset({"advanced", "amount", "api", "direction", "index_price", "instrument_name",
                                       "label", "mark_price", "order_id", "order_type", "price", "state",
                                       "tick_direction", "timestamp", "trade_id", "trade_seq", "underlying_index",
                                       "underlying_price"})
#: VENUES.md 5.14's assumed budgets (PUL-11: 004 documents none), enforced with ``rate_limit=True``:
#: per connection, every request 20/s (burst 20); matching-engine methods 5/s (burst 20)
RATE_ALL = (20, Decimal(1), 20)
RATE_ORDERS = (5, Decimal(1), 20)
_ORDER_METHODS = frozenset({"private/buy", "private/sell", "private/edit"})


#: the kinds of :data:`adapters.sim.faults.FAULT_KINDS` the Pulse sandbox plays
SUPPORTED_FAULTS = frozenset({"drop", "stall", "gap", "error", "garbage", "badframe"})
#: what a babbling stall sends, and how often (``PulseSandbox.stall(..., babble=True)``)
BABBLE = "this is not json"
BABBLE_S = 0.1


def parse_fault(text: str) -> FaultSpec:
    """One ``--fault`` SPEC of the one vocabulary (:func:`adapters.sim.faults.parse_fault_spec`;
    Pulse's short form ``stall@5:2.5``, ``error@1:private/buy:11:3`` included), refused by name if
    Pulse does not play it. Pulse trades 24/7 on real time, so a fault starts S seconds after start."""
    spec = parse_fault_spec(text)
    check_supported(spec, "pulse", SUPPORTED_FAULTS)
    if spec.at_time is not None or spec.target:
        raise ValueError(f"fault {text!r}: the Pulse sandbox takes KIND@SECONDS (no time of day, no target)")
    return spec


# --------------------------------------------------------------------------------------------
# State


class _Order:
    """One of a client account's orders as the venue keeps it."""

    __slots__ = (
        "key", "order_id", "engine_id", "account", "conn_id", "book", "side", "amount", "filled", "notional",
        "price", "state", "label", "mmp", "post_only", "tif", "order_type", "created_ms", "updated_ms",
        "cancel_reason", "replaced", "trades",
    )

    def __init__(
        self, key: str, account: _Account, conn_id: int, book: _Book, side: Side, amount: Decimal,
        price: Decimal | None, label: str, mmp: bool, post_only: bool, tif: str, order_type: str, now_ms: int,
    ) -> None:
        self.key = key
        self.order_id = ""
        self.engine_id = 0
        self.account = account
        self.conn_id = conn_id
        self.book = book
        self.side = side
        self.amount = amount
        self.filled = ZERO
        self.notional = ZERO
        self.price = price
        self.state = "open"
        self.label = label
        self.mmp = mmp
        self.post_only = post_only
        self.tif = tif
        self.order_type = order_type
        self.created_ms = now_ms
        self.updated_ms = now_ms
        self.cancel_reason = ""
        self.replaced = False
        self.trades: list[dict[str, Any]] = []

    @property
    def is_open(self) -> bool:
        return self.state in ("open", "partially_filled", "untriggered")

    def to_json(self) -> dict[str, Any]:
        """``models.OrderConfirmation`` (linked-order fields: none, as no OTO/OTOCO is placed)."""
        average = (self.notional / self.filled) if self.filled else ZERO
        obj: dict[str, Any] = {
            "amount": self.amount,
            "api": True,
            "average_price": average,
            "creation_timestamp": self.created_ms,
            "direction": self.side.value,
            "filled_amount": self.filled,
            "instrument_name": self.book.inst.name,
            "is_primary_otoco": False,
            "is_secondary_oto": False,
            "label": self.label,
            "last_update_timestamp": self.updated_ms,
            "max_show": self.amount,
            "mmp": self.mmp,
            "order_id": self.order_id,
            "order_state": self.state,
            "order_type": self.order_type,
            "oto_order_ids": [],
            "post_only": self.post_only,
            "price": self.price,
            "reduce_only": False,
            "replaced": self.replaced,
            "time_in_force": self.tif,
        }
        if self.state == "cancelled":
            obj["cancel_reason"] = self.cancel_reason or "user_request"
        return obj


class _Mmp:
    """One account's MMP on one index (PUL-9 assumptions: absolute filled amount of mmp orders,
    both sides, every instrument of the index, over a trailing ``interval``)."""

    __slots__ = ("interval", "frozen_time", "quantity_limit", "fills", "total", "frozen", "frozen_until_ms")

    def __init__(self, interval: Decimal, frozen_time: Decimal, quantity_limit: Decimal) -> None:
        self.interval = interval
        self.frozen_time = frozen_time
        self.quantity_limit = quantity_limit
        self.fills: deque[tuple[int, Decimal]] = deque()
        self.total = ZERO
        self.frozen = False
        self.frozen_until_ms = 0

    def is_frozen(self, now_ms: int) -> bool:
        if self.frozen and self.frozen_until_ms and now_ms >= self.frozen_until_ms:
            self.frozen = False
        return self.frozen

    def add(self, now_ms: int, amount: Decimal) -> bool:
        """Count a fill; True when it crosses the limit (the caller freezes and cancels)."""
        if self.is_frozen(now_ms):
            return False
        horizon = now_ms - int(self.interval * 1000)
        while self.fills and self.fills[0][0] <= horizon:
            self.total -= self.fills.popleft()[1]
        self.fills.append((now_ms, amount))
        self.total += amount
        if self.total < self.quantity_limit:
            return False
        self.frozen = True
        self.frozen_until_ms = now_ms + int(self.frozen_time * 1000) if self.frozen_time > 0 else 0
        self.fills.clear()
        self.total = ZERO
        return True

    def to_json(self, index: str) -> dict[str, Any]:
        return {"frozen_time": self.frozen_time, "index_name": index, "interval": self.interval,
                "quantity_limit": self.quantity_limit}


class _Position:
    __slots__ = ("size", "average", "realized")

    def __init__(self) -> None:
        self.size = ZERO
        self.average = ZERO
        self.realized = ZERO

    def apply(self, side: Side, amount: Decimal, price: Decimal) -> None:
        """Linear position accounting (the sandbox does not model inverse-contract PnL)."""
        signed = amount if side is Side.BUY else -amount
        if self.size == 0 or (self.size > 0) == (signed > 0):
            total = self.size + signed
            self.average = (self.average * abs(self.size) + price * amount) / abs(total)
            self.size = total
            return
        closing = min(abs(signed), abs(self.size))
        direction = 1 if self.size > 0 else -1
        self.realized += (price - self.average) * closing * direction
        self.size += signed
        if self.size == 0:
            self.average = ZERO
        elif (self.size > 0) != (direction > 0):  # flipped: the rest opens at this price
            self.average = price


class _Account:
    __slots__ = ("client_id", "secret", "orders", "by_label", "trades", "positions", "mmp", "conns",
                 "created_ms", "balance")

    def __init__(self, client_id: str, secret: str, now_ms: int, balance: Decimal) -> None:
        self.client_id = client_id
        self.secret = secret
        self.orders: dict[str, _Order] = {}
        self.by_label: dict[str, list[_Order]] = {}
        self.trades: list[dict[str, Any]] = []
        self.positions: dict[str, _Position] = {}
        self.mmp: dict[str, _Mmp] = {}
        self.conns: set[_Conn] = set()
        self.created_ms = now_ms
        self.balance = balance


class _Book:
    """One instrument as the wire shows it: the simulated venue's engine behind it (read, never
    traded through), the book as last published, sequence ids."""

    __slots__ = ("inst", "engine", "change_id", "levels", "quote", "trade_seq", "last_trades", "drop_next")

    def __init__(self, inst: SandboxInstrument, engine: MatchingEngine) -> None:
        self.inst = inst
        self.engine = engine
        self.change_id = 1
        self.levels: dict[Side, dict[Decimal, Decimal]] = {Side.BUY: {}, Side.SELL: {}}
        self.quote: tuple[Any, ...] = ()
        self.trade_seq = 0
        self.last_trades: deque[dict[str, Any]] = deque(maxlen=200)
        self.drop_next = 0  # injected gap: changes to lose

    def mid(self) -> Decimal:
        bid, ask = self.engine.best_bid, self.engine.best_ask
        if bid is not None and ask is not None:
            return (bid + ask) / 2
        return bid or ask or self.inst.mid


_CLOSE = object()


class _Conn:
    """One WebSocket session."""

    __slots__ = ("id", "ws", "account", "token", "token_expiry_ns", "cod", "subs", "heartbeat_s", "last_recv",
                 "test_sent_at", "graceful", "out", "wake", "stalled_until", "babbling", "closed", "buckets")

    def __init__(self, conn_id: int, ws: ServerConnection) -> None:
        self.id = conn_id
        self.ws = ws
        self.account: _Account | None = None
        self.token = ""
        self.token_expiry_ns = 0
        self.cod = False  # PUL-10: default off, a property of this session
        self.subs: set[str] = set()
        self.heartbeat_s: float | None = None
        self.last_recv = time.monotonic()
        self.test_sent_at: float | None = None
        self.graceful = False
        self.out: deque[Any] = deque()
        self.wake = asyncio.Event()
        self.stalled_until = 0.0
        self.babbling = False  # during a stall: a non-JSON frame every BABBLE_S instead of silence
        self.closed = False
        self.buckets: tuple[RateBucket, RateBucket] | None = None  # (all, orders) with rate_limit

    def push(self, frame: Any) -> None:
        if not self.closed:
            self.out.append(frame)
            self.wake.set()


# --------------------------------------------------------------------------------------------
# The server


#: the sandbox's fee per trade, as a fraction of price x amount: the shipped broker-doc schedule's
#: commission, so a default engine finds the venue's fee and its schedule agree
DEFAULT_FEE_RATE = Decimal("0.0015")


class PulseSandbox:
    """A Pulse venue on localhost. Use ``async with PulseSandbox(...) as sandbox:``; ``sandbox.url``
    is then the WebSocket URL (port 0 picks a free port)."""

    def __init__(
        self,
        instruments: Iterable[SandboxInstrument] = DEFAULT_INSTRUMENTS,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int = 0,
        market: MarketOptions | None = None,
        credentials: dict[str, str] | None = None,
        token_ttl_s: float = 900.0,
        min_heartbeat_s: float = 10.0,
        balance: Decimal = Decimal(1_000_000),
        faults: Iterable[FaultSpec] = (),
        test_methods: bool = False,
        clock: Clock | None = None,
        refuse_channels: Iterable[str] = (),
        refuse_with_error: bool = False,
        fee_rate: Decimal = DEFAULT_FEE_RATE,
        extensions: PulseExtensions | None = None,
        mass_cancel_count: bool = False,
        rate_limit: bool = False,
    ) -> None:
        self.host = host
        #: what it does beyond 004 (:class:`PulseExtensions`; default every extension on)
        self.extensions = extensions if extensions is not None else PulseExtensions.everyday()
        #: Deribit's dialect: private/cancel_all(_by_instrument) answers the count of cancelled orders
        #: (004's example answers the orders)
        self.mass_cancel_count = mass_cancel_count
        #: refuse requests beyond VENUES.md 5.14's assumed budgets (RATE_ALL, RATE_ORDERS) per
        #: connection with status 11 (PUL-11: 004 documents no limit, so it is off by default)
        self.rate_limit = rate_limit
        absent = set()
        if not self.extensions.public_test:
            absent.add("public/test")
        if not self.extensions.unsubscribe_methods:
            absent |= {"public/unsubscribe", "private/unsubscribe"}
        #: methods of the table this venue does not offer (its extensions switched off)
        self._absent = frozenset(absent)
        #: > 0 while a mass cancel runs without mass_cancel_notifications: its orders go unreported
        self._quiet = 0
        #: the fee each trade reports (``fee``, a fraction of price x amount): the venue's own
        #: figure, which the engine takes at its word and compares with its fee schedule
        self.fee_rate = fee_rate
        self.port = port
        self.seed = seed
        self.clock = clock or WallClock()
        self.token_ttl_s = token_ttl_s
        self.min_heartbeat_s = min_heartbeat_s
        self.test_methods = test_methods
        self.faults = tuple(faults)
        # channels (fnmatch patterns, e.g. "trades.*") this venue does not offer, like the document's
        # Pulse has no trades.*.raw (PUL-7): left out of the subscribe result, or with
        # refuse_with_error the whole subscribe request is answered with status 1
        self.refuse_channels = list(refuse_channels)
        self.refuse_with_error = refuse_with_error
        self.market_options = market if market is not None else MarketOptions(enabled=False)
        now_ms = self._now_ms()
        creds = credentials if credentials is not None else {DEFAULT_CLIENT_ID: DEFAULT_SECRET}
        self.accounts = {cid: _Account(cid, secret, now_ms, balance) for cid, secret in creds.items()}
        prefix = (0x60C72B2F + seed) & 0xFFFFFFFF
        self._order_prefix = f"{prefix:08x}"
        self._trade_prefix = f"{(prefix ^ 0x06FA560B) & 0xFFFFFFFF:08x}"
        listed = {inst.name: inst for inst in instruments}
        #: the exchange this sandbox serves Pulse on: books (no circuit band: a crypto venue has none),
        #: the synthetic market and the session; every order in it belongs to an account kept here
        self.sim = SimVenue(
            "PULSE",
            [Instrument(inst.name, "PULSE", tick_size=inst.tick, lot_size=inst.step, previous_close=inst.mid)
             for inst in listed.values()],
            self.clock, account=None, market=self.market_options, seed=seed, circuit_bands=False,
            listeners=(self,),
        )
        self.books: dict[str, _Book] = {name: _Book(inst, self.sim.matching_engine(name))
                                        for name, inst in listed.items()}
        self._keys = itertools.count(1)
        self._trade_ids = itertools.count(1)
        self._conn_ids = itertools.count(1)
        self._by_key: dict[str, _Order] = {}
        self._by_engine_id: dict[int, _Order] = {}
        self._tokens: dict[str, tuple[_Account, int]] = {}
        self._refresh: dict[str, _Account] = {}
        self.conns: set[_Conn] = set()
        self._notes: list[tuple[_Conn, str]] = []
        #: > 0 while a request is answered (or a burst prepared): notifications wait in _notes;
        #: otherwise (the synthetic market's timers) they go out as the venue reports them
        self._holding = 0
        self._errors: list[list[Any]] = []  # [method, code, count]
        self._heartbeat_trade_active = True
        self._server: Server | None = None
        self._stack: contextlib.AsyncExitStack | None = None
        #: ``(arrival ns, connection id, method)`` of each request: a test counts the requests in every
        #: sliding window itself (the sandbox enforces no limit: none is documented, PUL-11)
        self.arrivals: deque[tuple[int, int, str]] = deque(maxlen=ARRIVALS_KEPT)
        self.counters: dict[str, int] = {"requests": 0, "bad_frames": 0, "cod_cancels": 0, "mmp_triggers": 0,
                                         "heartbeat_drops": 0, "logouts": 0, "rate_limited": 0}
        self.sim.always_open()  # Pulse trades 24/7: continuous trading from now on

    # ---- lifecycle -----------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}{WS_PATH}"

    async def __aenter__(self) -> PulseSandbox:
        stack = contextlib.AsyncExitStack()
        await stack.__aenter__()
        try:
            self._server = await stack.enter_async_context(
                serve(self._handle, self.host, self.port, ping_interval=None, compression=None,
                      max_size=2**22, max_queue=None, logger=sandbox_wire_log)
            )
            self.port = self._server.sockets[0].getsockname()[1]
            tg = await stack.enter_async_context(anyio.create_task_group())
            stack.callback(tg.cancel_scope.cancel)  # runs first on exit: the loops stop, then the group closes
            for fault in self.faults:
                tg.start_soon(self._scheduled_fault, fault)
            self.sim.start()  # the synthetic market's timers, on this loop
            stack.callback(self.sim.stop)
        except BaseException:
            await stack.aclose()
            raise
        self._stack = stack
        log.info("pulse sandbox listening on %s (%d instruments)", self.url, len(self.books))
        return self

    async def __aexit__(self, *exc: object) -> None:
        for conn in list(self.conns):
            conn.graceful = True  # shutting the sandbox down is not a client's disconnect
            self._abort(conn)
        if self._stack is not None:
            await self._stack.aclose()
            self._stack = None

    async def serve_forever(self) -> None:
        async with self:
            await anyio.sleep_forever()

    def _now_ms(self) -> int:
        return self.clock.now_ns() // NS_PER_MS

    # ---- connection handling -------------------------------------------------------------
    async def _handle(self, ws: ServerConnection) -> None:
        path = ws.request.path if ws.request is not None else ""
        if path.split("?", 1)[0] != WS_PATH:
            await ws.close(1008, f"unknown path {path!r}; use {WS_PATH}")
            return
        conn = _Conn(next(self._conn_ids), ws)
        self.conns.add(conn)
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._writer, conn)
                tg.start_soon(self._heartbeats, conn)
                try:
                    async for raw in ws:
                        conn.last_recv = time.monotonic()
                        self._on_frame(conn, raw)
                except ConnectionClosed:
                    pass
                finally:
                    tg.cancel_scope.cancel()
        finally:
            conn.closed = True
            self.conns.discard(conn)
            self._disconnected(conn)

    async def _writer(self, conn: _Conn) -> None:
        ws = conn.ws
        out = conn.out
        while True:
            stall = conn.stalled_until - time.monotonic()
            if stall > 0:
                if conn.babbling:  # a venue that is dead but for noise: nothing it sends is a frame
                    try:
                        await ws.send(BABBLE)
                    except ConnectionClosed:
                        return
                    await anyio.sleep(min(stall, BABBLE_S))
                else:
                    await anyio.sleep(stall)
                continue
            if not out:
                conn.wake.clear()
                await conn.wake.wait()
                continue
            frame = out.popleft()
            try:
                if frame is _CLOSE:
                    await ws.close(1000, "logout")
                    return
                await ws.send(frame)
            except ConnectionClosed:
                return

    async def _heartbeats(self, conn: _Conn) -> None:
        """Deribit's keepalive (VENUES.md 5.11): a heartbeat every interval; a test_request when the
        client has been silent for one; no answer within one more interval drops the connection,
        which fires cancel-on-disconnect. A document-literal venue sends none (004 describes no
        heartbeat message)."""
        if not self.extensions.heartbeat_messages:
            await anyio.sleep_forever()
        while True:
            interval = conn.heartbeat_s
            if interval is None:
                await anyio.sleep(0.05)
                continue
            await anyio.sleep(interval)
            if conn.heartbeat_s is None or conn.closed:
                continue
            now = time.monotonic()
            if conn.test_sent_at is not None and conn.last_recv < conn.test_sent_at:
                self.counters["heartbeat_drops"] += 1
                log.warning("pulse sandbox: session %d did not answer test_request; dropping it", conn.id)
                self._abort(conn)
                return
            if now - conn.last_recv >= interval:
                conn.test_sent_at = now
                conn.push('{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"test_request"}}')
            else:
                conn.test_sent_at = None
                conn.push('{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"heartbeat"}}')

    def _abort(self, conn: _Conn) -> None:
        """Drop the TCP connection without a close handshake (an ungraceful disconnect)."""
        transport = getattr(conn.ws, "transport", None)
        if transport is not None:
            transport.abort()

    def _disconnected(self, conn: _Conn) -> None:
        account = conn.account
        if account is None:
            return
        account.conns.discard(conn)
        if conn.graceful or not conn.cod:
            return
        # PUL-10: cancel every open order placed through this session, with cancel_reason
        # "cancel_on_disconnect"; other sessions of the account are told through their channels
        victims = [o for o in account.orders.values() if o.conn_id == conn.id and o.is_open]
        for order in victims:
            self.counters["cod_cancels"] += 1
            self._cancel(order, "cancel_on_disconnect")
        if victims:
            log.info("pulse sandbox: cancel-on-disconnect cancelled %d orders of session %d", len(victims), conn.id)
        self._flush()

    # ---- frames --------------------------------------------------------------------------
    def _on_frame(self, conn: _Conn, raw: str | bytes) -> None:
        self.counters["requests"] += 1
        try:
            msg = _DECODE(raw)
        except WireError:
            self.counters["bad_frames"] += 1
            conn.push(_json({"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "parse error"}}))
            return
        req_id = msg.get("id") if isinstance(msg, dict) else None
        method = msg.get("method") if isinstance(msg, dict) else None
        self.arrivals.append((self.clock.now_ns(), conn.id, method if isinstance(method, str) else ""))
        params = msg.get("params") if isinstance(msg, dict) else None
        if params is None:
            params = {}
        if not isinstance(method, str) or not isinstance(params, dict):
            self.counters["bad_frames"] += 1
            conn.push(_json({"jsonrpc": "2.0", "id": req_id,
                             "error": {"code": -32600, "message": "invalid request: method and params object needed"}}))
            return
        self._holding += 1  # the notifications it causes wait for its response
        try:
            self._injected_error(method)
            if self.rate_limit:
                self._take_budget(conn, method)
            handler = self._methods.get(method) if method not in self._absent else None
            if handler is None:
                if method.startswith("sandbox/") and self.test_methods:
                    handler = self._test_methods.get(method)
                if handler is None:
                    raise _Err(BAD_REQUEST, f"method {method!r} not found")
            if method.startswith("private/"):
                self._require_auth(conn)
            result = handler(self, conn, params)
            frame = _json({"jsonrpc": "2.0", "id": req_id, "result": result})
        except _Err as err:
            frame = _json({"jsonrpc": "2.0", "id": req_id, "error": {"code": err.code, "message": err.message}})
        except Exception as exc:  # a sandbox bug must not kill the session; the client sees status 13
            log.exception("pulse sandbox: %s failed", method)
            frame = _json({"jsonrpc": "2.0", "id": req_id, "error": {"code": INTERNAL, "message": f"internal: {exc}"}})
        finally:
            self._holding -= 1
        conn.push(frame)
        self._flush()  # notifications caused by the request follow its response
        if method == "private/logout" and conn.graceful:
            conn.push(_CLOSE)

    def _take_budget(self, conn: _Conn, method: str) -> None:
        """VENUES.md 5.14's assumed budgets, per connection: every request spends one of "all", a
        matching-engine method one of "orders" too; a request beyond either is refused, status 11."""
        if conn.buckets is None:
            conn.buckets = (RateBucket(f"session {conn.id} all", *RATE_ALL, self.clock, scope="all"),
                            RateBucket(f"session {conn.id} orders", *RATE_ORDERS, self.clock, scope="orders"))
        every, orders = conn.buckets
        if not every.try_take("cancel") or (method in _ORDER_METHODS and not orders.try_take("cancel")):
            self.counters["rate_limited"] += 1
            raise _Err(RATE_LIMITED, "too many requests")

    def _injected_error(self, method: str) -> None:
        for entry in self._errors:
            if entry[2] > 0 and (entry[0] == method or entry[0] == "*"):
                entry[2] -= 1
                raise _Err(entry[1], f"injected error for {method}")

    def _require_auth(self, conn: _Conn) -> _Account:
        account = conn.account
        if account is None:
            raise _Err(UNAUTHORIZED, "not authenticated: call public/auth first")
        if self.clock.now_ns() >= conn.token_expiry_ns:
            raise _Err(UNAUTHORIZED, "access token expired: refresh it with grant_type refresh_token")
        return account

    def _flush(self) -> None:
        notes = self._notes
        if notes:
            self._notes = []
            for conn, frame in notes:
                conn.push(frame)

    def _notify(self, conns: Iterable[_Conn], channel: str, data: Any) -> None:
        frame = None
        for conn in conns:
            if channel in conn.subs:
                if frame is None:
                    frame = _json({"jsonrpc": "2.0", "method": "subscription",
                                   "params": {"channel": channel, "data": data}})
                self._notes.append((conn, frame))

    # ---- authentication ------------------------------------------------------------------
    def _auth(self, conn: _Conn, p: dict[str, Any]) -> dict[str, Any]:
        grant = p.get("grant_type")
        if grant == "client_credentials":
            account = self.accounts.get(str(p.get("client_id", "")))
            if account is None or not hmac.compare_digest(str(p.get("client_secret", "")), account.secret):
                raise _Err(UNAUTHORIZED, "invalid client_id or client_secret")
        elif grant == "client_signature":
            account = self.accounts.get(str(p.get("client_id", "")))
            if account is None:
                raise _Err(UNAUTHORIZED, "invalid client_id")
            ts = p.get("timestamp")
            if isinstance(ts, bool) or not isinstance(ts, int):
                raise _Err(BAD_REQUEST, "timestamp (ms since the epoch) is required")
            if abs(ts - self._now_ms()) > SIGNATURE_WINDOW_MS:
                raise _Err(UNAUTHORIZED, f"timestamp {ts} is more than {SIGNATURE_WINDOW_MS} ms from server time")
            nonce, data = str(p.get("nonce") or ""), str(p.get("data") or "")
            expected = hmac.new(account.secret.encode(), f"{ts}\n{nonce}\n{data}".encode(), hashlib.sha256).hexdigest()
            if not hmac.compare_digest(str(p.get("signature", "")), expected):
                raise _Err(UNAUTHORIZED, "invalid signature")
        elif grant == "refresh_token":
            account = self._refresh.pop(str(p.get("refresh_token", "")), None)  # single use: rotated
            if account is None:
                raise _Err(UNAUTHORIZED, "invalid or used refresh_token")
        else:
            raise _Err(BAD_REQUEST,
                       f"grant_type {grant!r} is not client_credentials, client_signature or refresh_token")
        if conn.account is not None and conn.account is not account:
            raise _Err(FORBIDDEN, "this connection is authenticated as another client")
        access, refresh = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        ttl_ns = int(self.token_ttl_s * NS_PER_S)
        self._tokens.pop(conn.token, None)
        self._tokens[access] = (account, self.clock.now_ns() + ttl_ns)
        self._refresh[refresh] = account
        conn.account = account
        conn.token = access
        conn.token_expiry_ns = self.clock.now_ns() + ttl_ns
        account.conns.add(conn)
        # PUL-3: expires_in is a lifetime in seconds (the example's epoch-like value is not copied)
        expires_in = max(1, int(self.token_ttl_s)) if self.token_ttl_s >= 1 else Decimal(str(self.token_ttl_s))
        return {"access_token": access, "expires_in": expires_in, "refresh_token": refresh,
                "scope": "connection mainaccount", "token_type": "bearer"}

    def _logout(self, conn: _Conn, p: dict[str, Any]) -> dict[str, Any]:
        conn.graceful = True  # "when COD is enabled orders are not cancelled"
        if p.get("invalidate_token", True):
            self._tokens.pop(conn.token, None)
        self.counters["logouts"] += 1
        account = conn.account
        open_orders = sum(1 for o in account.orders.values() if o.is_open) if account is not None else 0
        log.info("pulse sandbox: session %d of %s logged out (%d open orders)", conn.id,
                 account.client_id if account is not None else "nobody", open_orders)
        return dict(_OK_MESSAGE)

    # ---- session methods -----------------------------------------------------------------
    def _set_heartbeat(self, conn: _Conn, p: dict[str, Any]) -> dict[str, Any]:
        interval = p.get("interval")
        if isinstance(interval, bool) or not isinstance(interval, (int, Decimal)):
            raise _Err(BAD_REQUEST, "interval (seconds) is required")
        if not self.extensions.fractional_heartbeat and interval != int(interval):
            raise _Err(BAD_REQUEST, f"interval {interval} is not an integer number of seconds")
        if interval < Decimal(str(self.min_heartbeat_s)):
            raise _Err(BAD_REQUEST, f"interval {interval} is below the minimum of {self.min_heartbeat_s} s")
        conn.heartbeat_s = float(interval)
        conn.test_sent_at = None
        return dict(_OK_MESSAGE)

    def _disable_heartbeat(self, conn: _Conn, p: dict[str, Any]) -> dict[str, Any]:
        conn.heartbeat_s = None
        return dict(_OK_MESSAGE)

    def _test(self, conn: _Conn, p: dict[str, Any]) -> dict[str, Any]:
        return {"version": VERSION}

    def _enable_cod(self, conn: _Conn, p: dict[str, Any]) -> str | None:
        conn.cod = True
        return self._cod_answer()

    def _disable_cod(self, conn: _Conn, p: dict[str, Any]) -> str | None:
        conn.cod = False
        return self._cod_answer()

    def _cod_answer(self) -> str | None:
        """004: "200, no body" (a null result); Deribit answers "ok" (extension cod_answers_ok)."""
        return "ok" if self.extensions.cod_answers_ok else None

    def _get_cod(self, conn: _Conn, p: dict[str, Any]) -> bool:
        return conn.cod

    # ---- subscriptions -------------------------------------------------------------------
    def _valid_channel(self, channel: str, private: bool) -> bool:
        parts = channel.split(".")
        if channel == "heartbeat_trade":
            return True  # the document does not say public or private; both are accepted
        if private:
            if len(parts) == 4 and parts[0] == "user" and parts[1] in ("orders", "trades", "changes"):
                return parts[2] in self.books and parts[3] == "raw"
            if channel.startswith("user.mmp_trigger."):
                return channel[len("user.mmp_trigger."):] in {b.inst.index for b in self.books.values()}
            return False
        if parts[0] == "trades" and not self.extensions.trades_channel:
            return False  # PUL-7: 004 has no public trades channel
        if len(parts) >= 3 and parts[-1] == "raw" and parts[0] in ("book", "trades"):
            return ".".join(parts[1:-1]) in self.books
        if channel.startswith("quote."):
            return channel[len("quote."):] in self.books
        return False

    def _subscribe(self, conn: _Conn, p: dict[str, Any], private: bool) -> list[str] | str:
        channels = p.get("channels")
        if not isinstance(channels, list) or not all(isinstance(c, str) for c in channels):
            raise _Err(BAD_REQUEST, "channels must be a list of channel names")
        if private:
            self._require_auth(conn)
        refused = [c for c in channels if any(fnmatch.fnmatchcase(c, p) for p in self.refuse_channels)]
        if refused and self.refuse_with_error:
            raise _Err(BAD_REQUEST, f"channel {refused[0]!r} is not available")
        accepted = [c for c in channels if self._valid_channel(c, private) and c not in refused]
        extensions = self.extensions
        for channel in accepted:
            conn.subs.add(channel)
            if channel.startswith("book.") and extensions.book_snapshot_on_subscribe:
                # assumption (PUL-6/PUL-14): (re)subscribing to a book channel always sends a
                # fresh snapshot, which is how a client recovers from a change-id gap
                self._notes.append((conn, self._snapshot_frame(self.books[channel[5:-4]], channel)))
            elif not extensions.current_value_on_subscribe:
                continue
            elif channel == "heartbeat_trade":
                status = "active" if self._heartbeat_trade_active else "inactive"
                self._notify([conn], channel, {"status_trade": status})
            elif channel.startswith("quote."):
                book = self.books[channel[6:]]
                if book.quote:
                    self._notify([conn], channel, self._quote_json(book))
        # PUL-14: the document's answer is "string"; Deribit returns the channels subscribed
        return accepted if extensions.subscribe_lists_channels else "string"

    def _unsubscribe(self, conn: _Conn, p: dict[str, Any]) -> list[str]:
        channels = p.get("channels")
        if not isinstance(channels, list):
            raise _Err(BAD_REQUEST, "channels must be a list")
        removed = [c for c in channels if c in conn.subs]
        conn.subs.difference_update(removed)
        return removed

    def _unsubscribe_all(self, conn: _Conn, p: dict[str, Any], private: bool) -> dict[str, Any]:
        conn.subs = {c for c in conn.subs if c.startswith("user.") != private}
        return dict(_OK_MESSAGE)

    def _snapshot_frame(self, book: _Book, channel: str) -> str:
        engine = book.engine
        data = {
            "asks": [["new", p, q] for p, q in engine.depth(Side.SELL)],
            "bids": [["new", p, q] for p, q in engine.depth(Side.BUY)],
            "change_id": book.change_id,
            "instrument_name": book.inst.name,
            "prev_change_id": book.change_id - 1,
            "timestamp": self._now_ms(),
            "type": "snapshot",
        }
        return _json({"jsonrpc": "2.0", "method": "subscription", "params": {"channel": channel, "data": data}})

    def _quote_json(self, book: _Book) -> dict[str, Any]:
        bid, bid_qty, ask, ask_qty = book.quote
        return {"best_ask_amount": ask_qty, "best_ask_price": ask, "best_bid_amount": bid_qty,
                "best_bid_price": bid, "instrument_name": book.inst.name, "timestamp": self._now_ms()}

    # ---- trading -------------------------------------------------------------------------
    def _book(self, p: dict[str, Any]) -> _Book:
        name = p.get("instrument_name")
        book = self.books.get(name) if isinstance(name, str) else None
        if book is None:
            raise _Err(BAD_INSTRUMENT, f"instrument {name!r} not found")
        return book

    def _buy(self, conn: _Conn, p: dict[str, Any]) -> dict[str, Any]:
        return self._new_order(conn, p, Side.BUY)

    def _sell(self, conn: _Conn, p: dict[str, Any]) -> dict[str, Any]:
        return self._new_order(conn, p, Side.SELL)

    def _new_order(self, conn: _Conn, p: dict[str, Any], side: Side) -> dict[str, Any]:
        account = self._require_auth(conn)
        book = self._book(p)
        amount = _dec(p.get("amount"), "amount", BAD_AMOUNT)
        if amount <= 0:
            raise _Err(BAD_AMOUNT, f"amount {amount} must be positive")
        order_type = p.get("type", "limit")
        if order_type not in ("limit", "market"):
            # PUL-13/PUL-15: trigger and linked orders are not offered by the sandbox
            raise _Err(BAD_REQUEST, f"order type {order_type!r} is not supported by the sandbox (limit, market)")
        tif = p.get("time_in_force", "good_til_cancelled")
        if tif not in _TIFS:
            raise _Err(BAD_REQUEST, f"time_in_force {tif!r} is not one of {', '.join(_TIFS)}")
        post_only = p.get("post_only") is True
        if post_only and tif != "good_til_cancelled":
            raise _Err(POST_ONLY, "post_only is only valid with time_in_force good_til_cancelled")  # PUL-12
        if p.get("reduce_only") is True:
            position = account.positions.get(book.inst.name)
            size = position.size if position is not None else ZERO
            if not ((side is Side.BUY and size < 0 and amount <= -size) or
                    (side is Side.SELL and size > 0 and amount <= size)):
                raise _Err(POST_ONLY, f"reduce_only order of {amount} would not reduce the position {size}")
        mmp = p.get("mmp") is True
        now_ms = self._now_ms()
        if mmp:
            state = account.mmp.get(book.inst.index)
            if state is not None and state.is_frozen(now_ms):
                until = f"until {state.frozen_until_ms}" if state.frozen_until_ms else "until reset"
                raise _Err(MMP_FROZEN, f"MMP frozen on {book.inst.index} {until}")
        price: Decimal | None = None
        if order_type == "limit":
            price = _dec(p.get("price"), "price", BAD_PRICE)
            if post_only:
                price = self._reprice(book, side, price)
        label = p.get("label") if isinstance(p.get("label"), str) else ""
        key = f"k{next(self._keys)}"
        order = _Order(key, account, conn.id, book, side, amount, price, label[:64], mmp, post_only, tif,
                       order_type, now_ms)
        self._by_key[key] = order
        first = len(order.trades)
        events = self.sim.submit_for(
            account.client_id, key, book.inst.name, side, amount, price,
            OrderType.MARKET if order_type == "market" else OrderType.LIMIT, _TIFS[tif], post_only,
        )
        rejection = self._refusal(events)
        if rejection is not None or not order.order_id:
            self._by_key.pop(key, None)
            code, reason = rejection or (INTERNAL, "order not accepted")
            raise _Err(code, reason)
        return {"order": order.to_json(), "trades": self._confirmations(order.trades[first:])}

    def _confirmations(self, trades: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The trades of a buy/sell/edit answer: 004's TradeConfirmation fields, or with
        ``trade_order_fields`` every field the sandbox keeps (fee, liquidity: PUL-8)."""
        if self.extensions.trade_order_fields:
            return trades
        return [{k: v for k, v in t.items() if k in TRADE_CONFIRMATION_FIELDS} for t in trades]

    def _trades_out(self, trades: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Trades on the private channels and queries: 004's Trade fields, or with
        ``trade_order_fields`` Deribit's order_id, label, fee and liquidity too (PUL-8)."""
        if self.extensions.trade_order_fields:
            return trades
        return [{k: v for k, v in t.items() if k in TRADE_FIELDS} for t in trades]

    def _reprice(self, book: _Book, side: Side, price: Decimal) -> Decimal:
        """Post-only: "If the new price would cause the order to be filled immediately (as taker),
        the price will be changed to be just below the spread" (VENUES.md 5.5: reprice, not reject)."""
        tick = book.inst.tick
        if side is Side.BUY:
            ask = book.engine.best_ask
            if ask is not None and price >= ask:
                price = ask - tick
        else:
            bid = book.engine.best_bid
            if bid is not None and price <= bid:
                price = bid + tick
        if price <= 0:
            raise _Err(POST_ONLY, "post-only order cannot be repriced to a positive price")
        return price

    def _owned(self, conn: _Conn, p: dict[str, Any]) -> _Order:
        account = self._require_auth(conn)
        order_id = p.get("order_id")
        order = account.orders.get(order_id) if isinstance(order_id, str) else None
        if order is None:
            raise _Err(NOT_FOUND, f"order {order_id!r} not found")
        return order

    def _cancel_method(self, conn: _Conn, p: dict[str, Any]) -> dict[str, Any]:
        order = self._owned(conn, p)
        if not order.is_open:
            raise _Err(NOT_OPEN, f"order {order.order_id} is {order.state}")
        self._cancel(order, "user_request")
        return order.to_json()

    def _cancel(self, order: _Order, reason: str) -> None:
        """Cancel one open order at the venue; its events come back through :meth:`on_engine_events`."""
        self.sim.cancel_for(order.book.inst.name, order.engine_id, reason)

    def _cancel_many(self, orders: list[_Order], reason: str) -> list[dict[str, Any]] | int:
        """A mass cancel's answer: the cancelled orders (final states, or with
        ``mass_cancel_final_states`` off as they stood, 004's example showing "open"), or with
        ``mass_cancel_count`` their count (Deribit). Without ``mass_cancel_notifications`` the
        private channels say nothing of them."""
        final = self.extensions.mass_cancel_final_states
        done = []
        if not self.extensions.mass_cancel_notifications:
            self._quiet += 1
        try:
            for order in orders:
                if order.is_open:
                    before = None if final else order.to_json()
                    self._cancel(order, reason)
                    done.append(before or order.to_json())
        finally:
            if not self.extensions.mass_cancel_notifications:
                self._quiet -= 1
        return len(done) if self.mass_cancel_count else done

    def _cancel_all(self, conn: _Conn, p: dict[str, Any]) -> list[dict[str, Any]] | int:
        account = self._require_auth(conn)
        # VENUES.md 5.8: the result is the list of cancelled orders (as in the examples); detailed ignored
        return self._cancel_many([o for o in account.orders.values() if o.is_open], "user_request")

    def _cancel_all_by_instrument(self, conn: _Conn, p: dict[str, Any]) -> list[dict[str, Any]] | int:
        account = self._require_auth(conn)
        book = self._book(p)
        kind = p.get("type") or "all"
        if kind in ("trigger_all", "stop_limit", "stop_market", "take_limit", "take_market"):
            return 0 if self.mass_cancel_count else []  # no trigger orders exist in the sandbox
        victims = [o for o in account.orders.values()
                   if o.is_open and o.book is book and (kind == "all" or o.order_type == kind)]
        return self._cancel_many(victims, "user_request")

    def _edit(self, conn: _Conn, p: dict[str, Any]) -> dict[str, Any]:
        order = self._owned(conn, p)
        if not order.is_open:
            raise _Err(NOT_OPEN, f"order {order.order_id} is {order.state}")
        amount = _dec(p.get("amount"), "amount", BAD_AMOUNT)  # required (PUL-5)
        price = _dec(p["price"], "price", BAD_PRICE) if p.get("price") is not None else None
        if order.order_type != "limit":
            raise _Err(BAD_REQUEST, "only limit orders can be edited")
        if amount <= order.filled:
            raise _Err(BAD_AMOUNT, f"amount {amount} must exceed the filled {order.filled}")
        if price is not None and order.post_only and price != order.price:
            price = self._reprice(order.book, order.side, price)
        first = len(order.trades)
        rejection = self._refusal(self.sim.amend_for(order.book.inst.name, order.engine_id, price, amount))
        if rejection is not None:
            raise _Err(*rejection)
        return {"order": order.to_json(), "trades": self._confirmations(order.trades[first:])}

    # ---- engine events -> venue state and notifications -----------------------------------
    def _refusal(self, events: list[EngineEvent]) -> tuple[int, str] | None:
        """The Pulse status and sentence of a client's operation the engine refused, if it did."""
        refusal: tuple[int, str] | None = None
        accounts = self.accounts
        for event in events:
            kind = type(event)
            if (kind is Rejected or kind is ReplaceRejected or kind is CancelRejected) and event.owner in accounts:
                refusal = (_ENGINE_TO_STATUS.get(event.code, INTERNAL), event.reason)
        return refusal

    def on_engine_events(self, symbol: str, events: list[EngineEvent], changes: Changes, ts: int) -> None:
        """The simulated venue's word on one operation (a client's, a background participant's or
        the synthetic market's): applied to the accounts and the wire (:meth:`_apply`)."""
        if events or changes:
            self._apply(self.books[symbol], events, changes, ts)
            if not self._holding:
                self._flush()

    def _apply(self, book: _Book, events: list[EngineEvent], changes: Changes, ts: int) -> None:
        """Apply one operation's events to the orders, trades, positions and MMP counters and queue
        the notifications (public trades, the account's orders and trades, the book change, the
        quote, MMP triggers, in that order)."""
        now_ms = ts // NS_PER_MS
        touched: dict[_Account, dict[str, _Order]] = {}
        new_trades: dict[_Account, list[dict[str, Any]]] = {}
        triggers: list[tuple[_Account, str]] = []
        accounts = self.accounts
        for event in events:
            kind = type(event)
            if kind is Execution:
                book.trade_seq += 1
                trade_id = f"{self._trade_prefix}{next(self._trade_ids):016x}"
                mid = book.mid()
                public = {
                    "amount": event.qty, "direction": event.taker_side.value, "index_price": mid,
                    "instrument_name": book.inst.name, "mark_price": mid, "price": event.price,
                    "tick_direction": 0, "timestamp": now_ms, "trade_id": trade_id, "trade_seq": book.trade_seq,
                }
                book.last_trades.append(public)
                self._notify(self.conns, f"trades.{book.inst.name}.raw", [public])
                for owner, key, liquidity in ((event.maker_owner, event.maker_client_id, "M"),
                                              (event.taker_owner, event.taker_client_id, "T")):
                    account = accounts.get(owner)
                    order = self._by_key.get(key) if account is not None else None
                    if order is None:
                        continue
                    order.filled += event.qty
                    order.notional += event.qty * event.price
                    order.state = "filled" if order.filled >= order.amount else "partially_filled"
                    order.updated_ms = now_ms
                    trade = {
                        "amount": event.qty, "api": True, "direction": order.side.value,
                        "fee": event.qty * event.price * self.fee_rate,
                        "fee_currency": "USD", "index_price": mid, "instrument_name": book.inst.name,
                        "label": order.label, "liquidity": liquidity, "mark_iv": ZERO, "mark_price": mid,
                        "order_id": order.order_id, "order_type": order.order_type, "price": event.price,
                        "state": order.state, "tick_direction": 0, "timestamp": now_ms, "trade_id": trade_id,
                        "trade_seq": book.trade_seq, "underlying_index": book.inst.index.upper().replace("_", ""),
                        "underlying_price": mid,
                    }
                    order.trades.append(trade)
                    account.trades.append(trade)
                    account.balance -= trade["fee"]  # the fee a trade states is charged, as at a real venue
                    account.positions.setdefault(book.inst.name, _Position()).apply(order.side, event.qty, event.price)
                    touched.setdefault(account, {})[order.key] = order
                    new_trades.setdefault(account, []).append(trade)
                    if order.mmp:
                        mmp = account.mmp.get(book.inst.index)
                        if mmp is not None and mmp.add(now_ms, event.qty):
                            triggers.append((account, book.inst.index))
                continue
            owner = getattr(event, "owner", "")
            account = accounts.get(owner)
            if account is None:
                continue
            if kind is Accepted:
                order = self._by_key[event.client_id]
                order.engine_id = event.order_id
                order.order_id = f"{self._order_prefix}{event.order_id:016x}"
                order.price = event.price if order.order_type == "limit" else None
                account.orders[order.order_id] = order
                if order.label:
                    account.by_label.setdefault(order.label, []).append(order)
                touched.setdefault(account, {})[order.key] = order
            elif kind is Cancelled:
                order = self._by_key[event.client_id]
                order.state = "cancelled"
                order.cancel_reason = _cancel_reason(event.reason)
                order.updated_ms = now_ms
                touched.setdefault(account, {})[order.key] = order
            elif kind is Replaced:
                order = self._by_key[event.client_id]
                order.price = event.price
                order.amount = event.qty
                order.replaced = True
                order.updated_ms = now_ms
                touched.setdefault(account, {})[order.key] = order
        for account, orders in touched.items():
            if self._quiet and not new_trades.get(account):
                continue  # a mass cancel a document-literal venue does not report
            trades = self._trades_out(new_trades.get(account, []))
            conns = account.conns
            name = book.inst.name
            order_objs = [o.to_json() for o in orders.values() if o.order_id]
            for obj in order_objs:
                self._notify(conns, f"user.orders.{name}.raw", obj)
            for trade in trades:
                self._notify(conns, f"user.trades.{name}.raw", trade)  # one TradesResponse per message (doc)
            if order_objs or trades:
                self._notify(conns, f"user.changes.{name}.raw", {"orders": order_objs, "trades": trades})
        if changes:
            self._publish_book(book, changes, now_ms)
        for account, index in triggers:
            self._mmp_trigger(account, index)

    def _publish_book(self, book: _Book, changes: Changes, now_ms: int) -> None:
        bids: list[list[Any]] = []
        asks: list[list[Any]] = []
        levels = book.levels
        for side, price, qty in changes:
            known = levels[side]
            if not qty:
                known.pop(price, None)
                entry = ["delete", price, ZERO]
            else:
                entry = ["change" if price in known else "new", price, qty]
                known[price] = qty
            (bids if side is Side.BUY else asks).append(entry)
        prev = book.change_id
        book.change_id += 1
        if book.drop_next:
            book.drop_next -= 1  # injected gap: this change is lost on the wire
        else:
            data = {"asks": asks, "bids": bids, "change_id": book.change_id, "instrument_name": book.inst.name,
                    "prev_change_id": prev, "timestamp": now_ms, "type": "change"}
            self._notify(self.conns, f"book.{book.inst.name}.raw", data)
        engine = book.engine
        bid, ask = engine.best_bid, engine.best_ask
        quote = (bid, engine.level_qty(Side.BUY, bid) if bid is not None else ZERO,
                 ask, engine.level_qty(Side.SELL, ask) if ask is not None else ZERO)
        if quote != book.quote:
            book.quote = quote
            self._notify(self.conns, f"quote.{book.inst.name}", self._quote_json(book))

    def _mmp_trigger(self, account: _Account, index: str) -> None:
        """PUL-9 (Std Deribit): every open mmp order of the account on the index is cancelled with
        cancel_reason "mmp_trigger"; new mmp orders are refused until frozen_until (ms; 0 = until
        set_mmp_config resets it)."""
        state = account.mmp[index]
        self.counters["mmp_triggers"] += 1
        victims = [o for o in account.orders.values() if o.is_open and o.mmp and o.book.inst.index == index]
        for order in victims:
            self._cancel(order, "mmp_trigger")
        log.info("pulse sandbox: MMP triggered for %s on %s; %d orders cancelled", account.client_id, index,
                 len(victims))
        self._notify(account.conns, f"user.mmp_trigger.{index}",
                     {"frozen_until": state.frozen_until_ms, "index_name": index})

    # ---- MMP config ----------------------------------------------------------------------
    def _set_mmp_config(self, conn: _Conn, p: dict[str, Any]) -> dict[str, Any]:
        account = self._require_auth(conn)
        index = p.get("index_name")
        if not isinstance(index, str) or index not in {b.inst.index for b in self.books.values()}:
            raise _Err(BAD_REQUEST, f"index_name {index!r} is not one of this venue's indexes")
        interval = _dec(p.get("interval"), "interval")
        frozen_time = _dec(p.get("frozen_time"), "frozen_time")
        quantity_limit = _dec(p.get("quantity_limit"), "quantity_limit")
        if interval <= 0 or frozen_time < 0 or quantity_limit <= 0:
            raise _Err(BAD_REQUEST, "interval and quantity_limit must be positive, frozen_time not negative")
        # "Set config for MMP - triggers MMP reset": a new state, unfrozen, counters empty
        account.mmp[index] = _Mmp(interval, frozen_time, quantity_limit)
        return account.mmp[index].to_json(index)

    def _get_mmp_config(self, conn: _Conn, p: dict[str, Any]) -> dict[str, Any]:
        account = self._require_auth(conn)
        index = p.get("index_name")
        state = account.mmp.get(index) if isinstance(index, str) else None
        if state is None:
            raise _Err(NOT_FOUND, f"no MMP config for index {index!r}")
        return state.to_json(index)  # type: ignore[arg-type]

    # ---- queries -------------------------------------------------------------------------
    def _open_orders(self, conn: _Conn, p: dict[str, Any]) -> list[dict[str, Any]]:
        account = self._require_auth(conn)
        book = self._book(p)
        kind = p.get("type") or "all"
        return [o.to_json() for o in account.orders.values()
                if o.is_open and o.book is book and (kind == "all" or o.order_type == kind)]

    def _order_state(self, conn: _Conn, p: dict[str, Any]) -> list[dict[str, Any]]:
        return [self._owned(conn, p).to_json()]  # an array, as the document's example (PUL-5)

    def _order_state_by_label(self, conn: _Conn, p: dict[str, Any]) -> list[dict[str, Any]]:
        account = self._require_auth(conn)
        if not isinstance(p.get("currency"), str):
            raise _Err(BAD_REQUEST, "currency is required")
        # the currency filter is not applied: the example passes "USD" for a BTC option (PUL-5)
        return [o.to_json() for o in account.by_label.get(str(p.get("label", "")), [])]

    def _trades_by_order(self, conn: _Conn, p: dict[str, Any]) -> list[dict[str, Any]]:
        order = self._owned(conn, p)
        trades = self._trades_out(order.trades)
        if p.get("sorting") == "desc":
            trades.reverse()
        count = p.get("count")
        return trades[:count] if isinstance(count, int) and count > 0 else trades

    def _trades_by_instrument(self, conn: _Conn, p: dict[str, Any]) -> list[dict[str, Any]]:
        account = self._require_auth(conn)
        book = self._book(p)
        start = p.get("start_timestamp") or 0
        end = p.get("end_timestamp") or 1 << 62
        trades = self._trades_out([t for t in account.trades
                                   if t["instrument_name"] == book.inst.name and start <= t["timestamp"] <= end])
        if p.get("sorting") == "desc":
            trades.reverse()
        count = p.get("count")
        return trades[:count] if isinstance(count, int) and count > 0 else trades

    def _positions(self, conn: _Conn, p: dict[str, Any]) -> list[dict[str, Any]]:
        account = self._require_auth(conn)
        out = []
        for name, position in account.positions.items():
            book = self.books[name]
            mark = book.mid()
            floating = (mark - position.average) * position.size if position.size else ZERO
            out.append({
                "average_price": position.average, "delta": position.size / mark if mark else ZERO,
                "direction": "buy" if position.size >= 0 else "sell", "estimated_liquidation_price": ZERO,
                "floating_profit_loss": floating, "index_price": mark, "initial_margin": ZERO,
                "instrument_name": name, "interest_value": ZERO, "kind": book.inst.kind, "leverage": 1,
                "maintenance_margin": ZERO, "mark_price": mark, "open_orders_margin": ZERO,
                "realized_profit_loss": position.realized, "settlement_price": ZERO, "size": position.size,
                "size_currency": int(position.size / mark) if mark else 0, "size_out": ZERO,
                "total_profit_loss": position.realized + floating,
            })
        return out

    def _account_summary(self, conn: _Conn, p: dict[str, Any]) -> dict[str, Any]:
        account = self._require_auth(conn)
        realized = sum((pos.realized for pos in account.positions.values()), ZERO)
        floating = sum(((self.books[n].mid() - pos.average) * pos.size
                        for n, pos in account.positions.items() if pos.size), ZERO)
        balance = account.balance + realized
        return {
            "balance": balance, "creation_timestamp": account.created_ms, "currency": p.get("currency") or "USD",
            "email": f"{account.client_id}@sandbox.invalid", "equity": balance + floating,
            "futures_session_rpl": realized, "futures_session_upl": floating, "id": account.client_id,
            "initial_margin": ZERO, "maintenance_margin": ZERO, "margin_balance": balance + floating,
            "options_session_rpl": ZERO, "options_session_upl": ZERO, "session_rpl": realized,
            "session_upl": floating, "total_pl": realized + floating,
        }

    def _order_book(self, conn: _Conn, p: dict[str, Any]) -> dict[str, Any]:
        book = self._book(p)
        depth = p.get("depth") if isinstance(p.get("depth"), int) else 20
        engine = book.engine
        bids = engine.depth(Side.BUY)[:depth]
        asks = engine.depth(Side.SELL)[:depth]
        mid = book.mid()
        return {
            "asks": [[px, q] for px, q in asks], "bids": [[px, q] for px, q in bids],
            "best_ask_amount": asks[0][1] if asks else ZERO, "best_ask_price": asks[0][0] if asks else None,
            "best_bid_amount": bids[0][1] if bids else ZERO, "best_bid_price": bids[0][0] if bids else None,
            "index_price": mid, "instrument_name": book.inst.name, "last_price": engine.last_trade_price,
            "settlement_price": book.inst.mid, "state": "open", "timestamp": self._now_ms(),
            "underlying_index": "index_price", "underlying_price": mid,
        }

    def _last_trades(self, conn: _Conn, p: dict[str, Any]) -> list[dict[str, Any]]:
        """The last 200 public trades of the instrument, filtered by ``start_seq``/``end_seq`` and
        ``start_timestamp``/``end_timestamp``; ``sorting`` asc: the first ``count`` from the start,
        oldest first; desc: the latest ``count``, newest first; default: the latest, oldest first."""
        book = self._book(p)
        start_seq = p.get("start_seq") or 0
        end_seq = p.get("end_seq") or 1 << 62
        start_ts = p.get("start_timestamp") or 0
        end_ts = p.get("end_timestamp") or 1 << 62
        trades = [t for t in book.last_trades
                  if start_seq <= t["trade_seq"] <= end_seq and start_ts <= t["timestamp"] <= end_ts]
        count = p.get("count")
        if not (isinstance(count, int) and count > 0):
            count = len(trades)
        sorting = p.get("sorting")
        if sorting == "asc":
            return trades[:count]
        if sorting == "desc":
            return trades[::-1][:count]
        return trades[-count:] if count else []

    def _instruments(self, conn: _Conn, p: dict[str, Any]) -> list[dict[str, Any]]:
        currency = p.get("currency")
        steps = self.extensions.instrument_steps  # tick_size, min_trade_amount: Deribit's, not 004's
        return [{"base_currency": b.inst.index.split("_")[0].upper(), "contract_size": 1,
                 "expiration_timestamp": 32503680000000, "instrument_name": b.inst.name, "is_active": True,
                 "kind": b.inst.kind, "price_index": b.inst.index, "quote_currency": "USD",
                 "settlement_currency": "USD", **({"tick_size": b.inst.tick, "min_trade_amount": b.inst.step}
                                                  if steps else {})}
                for b in self.books.values()
                if not isinstance(currency, str) or currency.upper() in (b.inst.index.split("_")[0].upper(), "ANY")]

    # ---- faults (also the sandbox/* test methods) ----------------------------------------
    def drop(self) -> int:
        """Abort every connection (no close handshake): cancel-on-disconnect fires where enabled."""
        conns = list(self.conns)
        for conn in conns:
            self._abort(conn)
        log.warning("pulse sandbox: injected drop of %d connections", len(conns))
        return len(conns)

    def stall(self, seconds: float, babble: bool = False) -> int:
        """Send nothing (not even heartbeats) on every connection for ``seconds``; ``babble``: nothing
        but a non-JSON frame every :data:`BABBLE_S` (a broken venue whose socket still talks)."""
        until = time.monotonic() + seconds
        for conn in self.conns:
            conn.stalled_until = until
            conn.babbling = babble
            conn.wake.set()
        log.warning("pulse sandbox: injected stall of %.1f s%s", seconds, " (babbling)" if babble else "")
        return len(self.conns)

    def gap(self, instrument: str = "", count: int = 1) -> None:
        """Lose the next ``count`` book changes of ``instrument`` (all instruments when empty)."""
        for name, book in self.books.items():
            if not instrument or name == instrument:
                book.drop_next += count

    def inject_error(self, method: str, code: int = INTERNAL, count: int = 1) -> None:
        """Answer the next ``count`` requests of ``method`` ("*" = any) with error status ``code``."""
        self._errors.append([method, code, count])

    def garbage(self) -> int:
        """Send every connection a non-JSON frame and a truncated JSON frame."""
        for conn in self.conns:
            conn.push("this is not json")
            conn.push('{"jsonrpc":"2.0","method":"subscription","params":{"channel":"book.')
        return len(self.conns)

    def badframe(self, frame: str, count: int = 1) -> int:
        """Send every connection ``count`` hostile frames of class ``frame`` (adapters.sim.badframes).
        A ``type_list`` frame is a change on the first subscribed book channel whose ``type`` is a list;
        a ``truncated`` one is half of a real change of that book, whose change_id it uses up."""
        check_kind(frame)
        heartbeat = '{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"heartbeat"}}'
        huge_number = ('{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"heartbeat","timestamp":'
                       f'{HUGE_NUMBER}}}}}')
        for conn in self.conns:
            book = next((b for name, b in sorted(self.books.items()) if f"book.{name}.raw" in conn.subs), None)
            for _ in range(count):
                good = heartbeat
                type_list = heartbeat
                if book is not None:
                    change = {"asks": [], "bids": [], "change_id": book.change_id + 1,
                              "instrument_name": book.inst.name, "prev_change_id": book.change_id,
                              "timestamp": self._now_ms(), "type": "change"}
                    type_list = _json({"jsonrpc": "2.0", "method": "subscription", "params": {
                        "channel": f"book.{book.inst.name}.raw", "data": {**change, "type": []}}})
                    if frame == "truncated":
                        book.change_id += 1  # a real change, lost on the wire: the next one shows the gap
                        good = _json({"jsonrpc": "2.0", "method": "subscription", "params": {
                            "channel": f"book.{book.inst.name}.raw", "data": change}})
                conn.push(bad_frame(frame, good, type_list=type_list, huge_number=huge_number))
            self.counters[f"badframe_{frame}"] = self.counters.get(f"badframe_{frame}", 0) + count
        log.warning("pulse sandbox: injected %d %s frame(s) on %d connection(s)", count, frame, len(self.conns))
        return len(self.conns)

    def set_trading(self, active: bool) -> None:
        """Publish ``heartbeat_trade`` with status_trade active/inactive."""
        self._heartbeat_trade_active = active
        self._notify(self.conns, "heartbeat_trade", {"status_trade": "active" if active else "inactive"})
        self._flush()

    def place(self, instrument: str, side: Side | str, amount: Decimal, price: Decimal | None = None,
              tif: TimeInForce = TimeInForce.IOC) -> None:
        """Another market participant's order (a background owner): to trade against a client's."""
        side = Side(side)
        order_type = OrderType.MARKET if price is None else OrderType.LIMIT
        owner = "~bg-buyer" if side is Side.BUY else "~bg-seller"  # two owners: no self-trade prevention
        self.sim.submit_for(owner, "", instrument, side, Decimal(amount), price, order_type, tif, False)
        self._flush()

    def blast_book(self, instrument: str, count: int) -> list[str]:
        """Run ``count`` real book changes (a background order entered and withdrawn far from the
        touch) and return their frames for the subscribed connections, unsent (the benchmark
        sends them back to back)."""
        book = self.books[instrument]
        engine = book.engine
        tick = book.inst.tick
        if engine.best_bid is None:  # a touch above the burst, so the burst changes depth, not the quote
            self.place(instrument, Side.BUY, book.inst.step, book.inst.mid - tick, TimeInForce.GTC)
        anchor = engine.best_bid - 50 * tick  # type: ignore[operator]
        frames: list[str] = []
        resting: list[int] = []
        submit, cancel, step = self.sim.submit_for, self.sim.cancel_for, book.inst.step
        self._holding += 1
        try:
            for index in range(count):
                if index % 2 == 0:
                    price = anchor - (index % 20) * tick
                    events = submit("~bg-bench", "", instrument, Side.BUY, step, price, OrderType.LIMIT,
                                    TimeInForce.GTC)
                    resting.extend(e.order_id for e in events if type(e) is Accepted)
                else:
                    cancel(instrument, resting.pop())
                frames.extend(frame for _, frame in self._notes)
                self._notes = []
        finally:
            self._holding -= 1
        return frames

    async def _scheduled_fault(self, fault: FaultSpec) -> None:
        await anyio.sleep(float(fault.after_s))
        self.apply_fault(fault)
        while fault.every_s is not None:
            await anyio.sleep(float(fault.every_s))
            self.apply_fault(fault)

    def apply_fault(self, fault: FaultSpec) -> None:
        """Play one fault of :data:`SUPPORTED_FAULTS` now (ValueError for another kind)."""
        check_supported(fault, "pulse", SUPPORTED_FAULTS)
        params = fault.params
        if fault.kind == "drop":
            self.drop()
        elif fault.kind == "stall":
            self.stall(float(params.get("duration_s", params.get("seconds", 5))))
        elif fault.kind == "gap":
            self.gap(params.get("instrument", ""), params.get("count", 1))
        elif fault.kind == "error":
            self.inject_error(params.get("method", "*"), params.get("code", INTERNAL), params.get("count", 1))
        elif fault.kind == "garbage":
            self.garbage()
        elif fault.kind == "badframe":
            self.badframe(params["frame"], params.get("count", 1))

    def _t_fault(self, conn: _Conn, p: dict[str, Any]) -> str:
        try:
            kind = canonical_kind(str(p.get("kind", "")))
            check_supported(kind, "pulse", SUPPORTED_FAULTS)
            taken = FAULT_KINDS[kind].params  # other keys were always ignored here
            defaults = {"method": "*"} if kind == "error" else {}
            spec = FaultSpec(kind, check_params(kind, {**defaults, **{k: v for k, v in p.items() if k in taken}}))
        except ValueError as exc:
            raise _Err(BAD_REQUEST, str(exc)) from None
        if kind == "drop" or kind == "stall":
            # after this response is written, so the caller hears the answer
            asyncio.get_running_loop().call_later(0.05, self.apply_fault, spec)
        else:
            self.apply_fault(spec)
        return "ok"

    def _t_place(self, conn: _Conn, p: dict[str, Any]) -> str:
        price = _dec(p["price"], "price") if p.get("price") is not None else None
        self.place(str(p.get("instrument_name")), str(p.get("side", "buy")), _dec(p.get("amount"), "amount"), price)
        return "ok"

    def _t_blast(self, conn: _Conn, p: dict[str, Any]) -> int:
        frames = self.blast_book(str(p.get("instrument_name")), int(p.get("count", 1000)))
        for frame in frames:
            conn.push(frame)
        return len(frames)

    # ---- method table --------------------------------------------------------------------
    _methods: ClassVar[dict[str, Callable[..., Any]]] = {
        "public/auth": _auth,
        "public/test": _test,
        "public/set_heartbeat": _set_heartbeat,
        "public/disable_heartbeat": _disable_heartbeat,
        "public/subscribe": lambda self, conn, p: self._subscribe(conn, p, False),
        "private/subscribe": lambda self, conn, p: self._subscribe(conn, p, True),
        "public/unsubscribe": _unsubscribe,  # extension (PUL-14)
        "private/unsubscribe": _unsubscribe,  # extension (PUL-14)
        "public/unsubscribe_all": lambda self, conn, p: self._unsubscribe_all(conn, p, False),
        "private/unsubscribe_all": lambda self, conn, p: self._unsubscribe_all(conn, p, True),
        "public/last_trades_by_instrument": _last_trades,
        "private/logout": _logout,
        "private/buy": _buy,
        "private/sell": _sell,
        "private/edit": _edit,
        "private/cancel": _cancel_method,
        "private/cancel_all": _cancel_all,
        "private/cancel_all_by_instrument": _cancel_all_by_instrument,
        "private/enable_cancel_on_disconnect": _enable_cod,
        "private/disable_cancel_on_disconnect": _disable_cod,
        "private/get_cancel_on_disconnect": _get_cod,
        "private/set_mmp_config": _set_mmp_config,
        "private/get_mmp_config": _get_mmp_config,
        "private/get_open_orders_by_instrument": _open_orders,
        "private/get_order_state": _order_state,
        "private/get_order_state_by_label": _order_state_by_label,
        "private/get_user_trades_by_order": _trades_by_order,
        "private/get_user_trades_by_instrument": _trades_by_instrument,
        "private/get_positions": _positions,
        "private/get_account_summary": _account_summary,
        "private/get_order_book": _order_book,
        "private/get_instruments": _instruments,
    }
    _test_methods: ClassVar[dict[str, Callable[..., Any]]] = {
        "sandbox/fault": _t_fault,
        "sandbox/place": _t_place,
        "sandbox/blast_book": _t_blast,
    }


def _cancel_reason(reason: str) -> str:
    """The engine's cancel sentence as a Pulse ``cancel_reason`` word."""
    if reason in ("cancel_on_disconnect", "mmp_trigger", "user_request"):
        return reason
    if "self-trade" in reason:
        return "self_trade_prevention"
    if "immediate-or-cancel" in reason or "fill-or-kill" in reason or "market order" in reason:
        return "immediate_or_cancel"
    return "user_request"


# --------------------------------------------------------------------------------------------
# Command line (``engine sandbox pulse``)


def _instrument_arg(text: str) -> SandboxInstrument:
    try:
        return parse_instrument(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _pulse_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags only this venue has: instruments, market pace, the account's credentials, token
    lifetime, heartbeats, channels it does not offer and the test methods."""
    parser.add_argument("--instruments", nargs="+", type=_instrument_arg, default=None,
                        metavar="NAME[=MID[:TICK[:STEP]]]",
                        help="listed instruments (default: --config's, else BTC_USD-PERPETUAL=50000:0.5:10 "
                        "ETH_USD-PERPETUAL=3000:0.05:1)")
    parser.add_argument("--step-interval", type=Decimal, default=Decimal("0.5"), metavar="S",
                        help="mean seconds between background market steps (default 0.5)")
    parser.add_argument("--flow-interval", type=Decimal, default=Decimal(5), metavar="S",
                        help="mean seconds between aggressive background orders (default 5)")
    parser.add_argument("--client-id", default=DEFAULT_CLIENT_ID,
                        help=f"the account's client_id (default {DEFAULT_CLIENT_ID})")
    parser.add_argument("--client-secret-env", default=DEFAULT_SECRET_ENV, metavar="NAME",
                        help=f"environment variable holding the account's client_secret (default {DEFAULT_SECRET_ENV}; "
                        f"unset: the public test secret {DEFAULT_SECRET!r}, or with --run a generated one)")
    parser.add_argument("--token-ttl", type=float, default=900.0, metavar="S",
                        help="access token lifetime in real seconds (default 900; the adapter times its refresh on "
                        "the real clock, so a faster --speed does not shorten it)")
    parser.add_argument("--min-heartbeat", type=float, default=10.0, metavar="S",
                        help="smallest public/set_heartbeat interval accepted, seconds (default 10)")
    parser.add_argument("--refuse-channel", action="append", default=[], metavar="PATTERN",
                        help="a channel this venue does not offer (fnmatch pattern, e.g. 'trades.*' as in the "
                        "document, which has no public trades channel); left out of subscribe results; repeatable")
    parser.add_argument("--test-methods", action="store_true",
                        help="enable the sandbox/* methods (fault, place, blast_book) for tests and benchmarks")
    add_extension_arguments(parser, PulseExtensions)
    parser.add_argument("--mass-cancel-count", action="store_true",
                        help="answer private/cancel_all(_by_instrument) with the count of cancelled orders "
                        "(Deribit's form) instead of the orders (004's example)")
    parser.add_argument("--rate-limit", action="store_true",
                        help="refuse requests beyond VENUES.md 5.14's assumed budget with status 11 (per connection: "
                        "20 requests/s, buy/sell/edit 5/s, bursts of 20); 004 documents no limit (PUL-11)")


def _fault_help() -> str:
    return (fault_help(SUPPORTED_FAULTS)
            + '\n  on request too (with --test-methods): {"method": "sandbox/fault", "params": {"kind": KIND, ...}}')


def _sandbox_from_args(args: argparse.Namespace, secret: str) -> PulseSandbox:
    """The venue the flags describe, on the clock of ``--speed``/``--start`` (Pulse trades 24/7)."""
    instruments: list[SandboxInstrument] = list(DEFAULT_INSTRUMENTS)
    balance = Decimal(1_000_000)
    held: dict[str, Decimal] = {}
    if args.config is not None:
        taken = venue_from_config(args.config, "pulse")
        instruments = [SandboxInstrument(i.symbol, i.previous_close, i.tick_size, i.lot_size)
                       for i in taken.instruments]
        # a derivatives account's equity and positions fund the venue's account (a cash account's cash)
        balance = taken.account.get("equity", taken.account.get("cash", balance))
        held = dict(taken.account.get("positions", {}))
    if args.instruments:
        instruments = list(args.instruments)
    args.always_open = True  # no session schedule: the clock starts now, or at --start
    clock, _text = sandbox_clock(args)
    market = MarketOptions(enabled=not args.no_market, step_interval_s=args.step_interval,
                           aggressive_interval_s=args.flow_interval, size_unit_shares=1)
    sandbox = PulseSandbox(
        instruments, host=args.host, port=args.port, seed=args.seed, market=market,
        credentials={args.client_id: secret}, token_ttl_s=args.token_ttl * args.speed,
        min_heartbeat_s=args.min_heartbeat, faults=args.fault, test_methods=args.test_methods,
        refuse_channels=args.refuse_channel, clock=clock, balance=balance,
        extensions=extensions_from_args(PulseExtensions, args), mass_cancel_count=args.mass_cancel_count,
        rate_limit=args.rate_limit,
    )
    mids = {i.name: i.mid for i in instruments}
    for name, size in held.items():  # held at the start price, as the engine's account enters them
        if name in mids and size:
            position = sandbox.accounts[args.client_id].positions.setdefault(name, _Position())
            position.size, position.average = size, mids[name]
    return sandbox


def _stopped_line(sandbox: PulseSandbox) -> str:
    return f"pulse sandbox: stopped; {json.dumps({k: v for k, v in sandbox.counters.items() if v})}"


@contextlib.asynccontextmanager
async def _listening(args: argparse.Namespace, secret: str) -> AsyncIterator[PulseSandbox]:
    """The sandbox of ``args`` listening, for ``_serve`` and ``_start`` alike; a port that cannot
    be listened on is a :class:`SandboxStartError`."""
    async with listening(_sandbox_from_args(args, secret), f"{args.host}:{args.port}") as sandbox:
        yield sandbox


async def _serve(args: argparse.Namespace) -> int:
    secret = sandbox_secret(args.client_secret_env, None, "client secret", lambda: DEFAULT_SECRET).value
    async with _listening(args, secret) as sandbox:
        print(f"pulse sandbox listening on {sandbox.url}", flush=True)
        if sandbox.extensions.off():
            print(f"pulse sandbox: {extensions_line(sandbox.extensions)}", flush=True)
        await until_stopped(args.duration)
    print(_stopped_line(sandbox), flush=True)
    return 0


@contextlib.asynccontextmanager
async def _start(args: argparse.Namespace, config: Path) -> AsyncIterator[SandboxLink]:
    free_ports(args, COMMAND.ports)
    args.config = args.config or config
    # nobody but the engine in this process logs in: a secret of its own, unless one is set
    secret = sandbox_secret(args.client_secret_env, None, "client secret", lambda: secrets.token_urlsafe(24)).value
    async with _listening(args, secret) as sandbox:
        yield SandboxLink(
            clock=sandbox.clock,
            adapter_options={"pulse": {"url": sandbox.url, "client_id": args.client_id, "client_id_env": None,
                                       "client_secret_env": args.client_secret_env, "client_secret_file": None}},
            environment={args.client_secret_env: secret}, secret_values=frozenset({secret}), order_adapter="pulse",
            description=f"pulse sandbox: {sandbox.url}, clock {sandbox.clock.describe()}"
            + (f"; {extensions_line(sandbox.extensions)}" if sandbox.extensions.off() else ""),
            stopped=lambda: _stopped_line(sandbox),
        )


COMMAND = VenueSandboxCommand(
    name="pulse",
    description="Run a local Pulse API v2 venue (JSON-RPC over WebSocket at /ws/api/v2) on the paper "
    "matching engine, with a synthetic market, MMP, cancel-on-disconnect, heartbeats and faults. Pulse "
    "trades 24/7: the venue is always in continuous trading.",
    epilog="Two terminals (real time):\n"
    "  engine sandbox pulse                        # terminal 1\n"
    "  PULSE_CLIENT_SECRET=sandbox-secret engine run config.pulse-sandbox.yaml   # terminal 2\n"
    "One command:\n"
    "  engine sandbox pulse --run config.pulse-sandbox.yaml --speed 60 --duration 30 --report report.json",
    ports=(Port("port", 8765, "WebSocket"),),
    add_arguments=_pulse_arguments,
    parse_fault=parse_fault,
    fault_syntax="SPEC = KIND[@S[/EVERY]][,key=value...] of the one vocabulary (below; S = seconds after start, "
    "Pulse trades 24/7 so no time of day), or Pulse's short form KIND@S:ARG[:ARG...], e.g. stall@5:2.5, "
    "error@1:private/buy:11:3, badframe@2:deep:7",
    fault_help=_fault_help,
    serve_async=_serve,
    start=_start,
    config_help="take the instruments (previous close as the starting mid, tick, lot as the amount step) and the "
    "account's cash from this engine config",
    noisy_loggers=(),
)


#: ``python -m adapters.<venue>.sandbox ARGS``: the venue alone until Ctrl-C (exit 0); 2 for bad
#: arguments or a port that cannot be listened on
main = COMMAND.main


if __name__ == "__main__":
    sys.exit(main())
