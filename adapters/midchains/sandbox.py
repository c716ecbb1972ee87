"""A local MidChains venue speaking FIX 4.2 and the WebSocket JSON API as document 001 describes
(``engine sandbox midchains``): one simulated venue behind both protocols (issue 24).

Python API (stable; the conformance harnesses and tests use exactly this)::

    async with MidChainsSandbox(pairs=DEFAULT_PAIRS, *, host="127.0.0.1", port=0, md_port=0,
                                seed=0, market=None, clock=None, gateway_comp_id="MIDCDEV1",
                                client_comp_ids=("YOURSENDCOMP",), extensions=None,
                                report_fraction_base="pair", day_boundary=timedelta(hours=1),
                                logout_timeout_s=2.0, faults=(), tls=None,
                                message_rate=10, order_rate=4,
                                ws_port=0, ws_users=(WsUser("USERNAME", "PASSWORD"),),
                                ws_login_timeout_s=30.0, ws_rsa_bits=1024,
                                ws_public_rate=(3, 6), ws_private_rate=(5, 10)) as venue:
        venue.host, venue.port, venue.md_port      # the two acceptors (port 0 = a free port)
        venue.ws_port, venue.ws_url                 # the WebSocket API (ws_port=None: not served)
        venue.ws.orders("USERNAME"), venue.ws.positions("USERNAME")  # a WebSocket user's orders, balances
        venue.ws.announce_status("LTCUSD", "PreOpening")   # a symbolstatus push (Halt/PreOpening/Normal)
        venue.order_window("YOURSENDCOMP")          # the 4/s order window FIX and a linked WS user share
        venue.place("LTCUSD", "sell", Decimal("0.5"), Decimal(140))   # another participant's order
        venue.depth("LTCUSD")                       # ([(px, qty) bids best first], [asks])
        venue.orders("YOURSENDCOMP")                # the client's orders as the venue holds them
        venue.counters                              # what happened: logons, resends, violations...
        venue.violations()                          # {"messages": n, "orders": n}: rate-limit breaches
        venue.received("oe")                        # application messages received, in order
        # faults (also --fault SPEC, adapters/sim/faults.py vocabulary; target "broker" = order
        # entry, "feed" = market data, "ws" = the WebSocket API, "" = both FIX ones, and for
        # drop and stall the WebSocket too):
        venue.drop(target="")                       # abort every connection, no Logout
        venue.stall(seconds, target="")             # send nothing (queued, not lost) for a while
        venue.gap(count=1, target="", instrument="")  # number the next messages but never send them
        venue.logout(text="Session closed", target="")  # gateway-initiated Logout
        venue.stale_test_requests(count=1, delay_s=0)   # leave the client's TestRequests unanswered / late
        venue.day_reset()                           # the 01:00 UTC reset now: logout, both sides back to 1
        venue.reject(count=1, reason=...)           # the next new orders are refused (ER 39=8)
        venue.reject_cancels(duration_s, reason=...)  # cancels/replaces refused with a 9 meanwhile
        venue.duplicate_reports(count=None)         # send the next count (None: every) ER twice
        venue.apply_fault(spec)                     # any of the above from a FaultSpec
        # WebSocket faults (target "ws", :mod:`.sandbox_ws`): drop, stall, garbage (001's invalid JSON
        # forms), slow (late / never-answered logins), reject, reject_cancels; ``halt`` (no target)
        # halts a pair on the venue: symbolstatus Halt/Normal on the WebSocket, refusals on both

The WebSocket JSON API (001 "WEBSOCKET API", :mod:`.sandbox_ws`: RSA challenge and login, the L3
book, trades, pair status, addorder/cancelorder, queries, rate limits) is served on ``ws_port`` by
the same object, on the same books: a WebSocket order shows in the FIX market data, a FIX order
fills against it, and a :class:`WsUser` with ``comp_id`` is the same account as that SenderCompID.

It serves two acceptors on ``host`` (:mod:`.sandbox_session`): order entry (001: sandbox port
44323) and market data (001: port 44325), each its own FIX session with its own sequence numbers,
for every SenderCompID in ``client_comp_ids`` (the only identity 001's Logon carries; from the
environment or a file on the command line, never logged). Frames are written and read by
:mod:`.sandbox_wire`; nothing of the adapter's codec or session is imported (issue 23 section 3),
so a guess the adapter makes fails a test instead of being mirrored.

The exchange is :class:`adapters.sim.venue.SimVenue`, as for every sandbox: orders trade through
``submit_for``/``cancel_for``/``amend_for`` against each other, :meth:`place` and the synthetic
market, and every operation (ours, the market's) arrives through ``on_engine_events``: that makes
the ExecutionReports of our clients and the market data of everyone. MidChains trades 24/7, so the
venue is always in continuous trading.

Order entry (001 "FIX Order Placement"; VENUES.md 2.6):

- ``D``: 11, 21 (1/2/3), 55, 54, 38 + 43229 (real quantity = 38 / 43229 of the same message,
  MID-3), 40 (1 market, 2 limit), 44 (limit), 59 (1 GTC, 3 IOC, 4 FOK, 6 GTD + 126; a market order
  is IOC unless 59=4, and GTC/GTD market orders are refused, 001's table), 1 echoed. A market BUY is
  refused with ER ``39=8`` "market buy not supported" (MID-5: "We Only Support Market Sell Order
  Over Fix API"). 126 may be a full UTCTimestamp or, as 001 shows it, a time of day (the next such
  moment, MID-6). A duplicate ClOrdID is refused (001: "Must be unique for each session"), except
  a PossDup resend of one we have, which is ignored.
- ``8`` ExecutionReports with 001's tags (6, 11, 14, 17 unique ExecID, 20=0, 31/32 on fills, 37,
  38, 39, 40, 41 on cancel/replace, 44, 54, 55, 58 on refusals, 59, 60, 126 for GTD, 150, 151,
  43211=CROX/43212=MIDC/43214=P|T on fills, 43229): NEW ``150=0``, partial ``1``, fill ``2``,
  cancelled ``4`` (also an IOC/FOK/market remainder), replaced ``5``, rejected ``8``, expired
  ``C`` (GTD). Quantities in reports use the PAIR's own FractionBase, as 001's example does (it
  sends ``38=1,43229=10`` and gets ``38=1000,43229=10000``); ``report_fraction_base="order"``
  answers in the order's own 43229 instead (where a quantity is a whole number in it).
- ``F`` cancel (new 11, 41 = the order's current ClOrdID, or 37): ER ``150=4``/``39=4``; ``G``
  cancel/replace (new 38/43229 and 44): ER ``150=5``/``39=5`` (MID-4); either refused with a ``9``
  OrderCancelReject (41, 37, 11, 39 the order's status, 102 ``0`` too late / ``1`` unknown order /
  ``2`` other, 58, 434 ``1`` for F / ``2`` for G, 17). 001 shows the gateway's answer to F and G as
  an echo of the request: in document-literal mode the echo (the request's body as received) comes
  first, then the report.
- Throttle (MID-9): 001's 10 messages per second per session (every mode) and the WebSocket
  reject text's 4 orders (D, G) per second (``order_rate_limit``). Beyond either, a D is refused
  with ER ``39=8`` (58 "exceed message/sec limit" / "exceed order/sec limit", the document's text),
  an F or G with a ``9``, anything else with a session Reject ``3``; every breach is counted
  (:meth:`violations`) so a test can assert an adapter never caused one.
- Messages the gateway generates while the client is logged out (fills of its resting orders,
  GTD expiries) wait in the session's queue and go out after its next Logon of the same trading
  day (001, Logout); the daily reset discards them (MID-13).

Smaller decisions where 001 is silent: SendingTime (52) must be present but its format is not
checked (001's own D example has ``52=20210714-10:31:02568``); ResetSeqNumFlag (141) is not
honoured (001 does not document it; a new trading day starts both sides at 1); orders survive a
disconnect (001 documents no cancel-on-disconnect); ClOrdIDs are unique per SenderCompID for the
sandbox's life (001: "unique for each session"); OrderIDs look like 001's (``62`` + 12 base-36
digits) and fill ExecIDs like ``<OrderID>2_<match>``. TLS (001's "secure tcp+ssl") when given a
certificate (``tls=``, ``--tls-cert``), else clear TCP as behind the stunnel 001 suggests.

Market data (001 "FIX Market Data"; VENUES.md 2.7, MID-14): after Logon the session gets, for every
pair and without asking, the whole book as ``X`` "new" entries (279=0, 269 0 bid / 1 offer, 278 =
the order's MDEntryID, 55, 270, 271 a plain decimal, 58 = the OrderID of order entry's 37; at most
50 entries a message), then ``W`` top of book (262=0, 55, 268, 269 0/1 at the best price with its
level's size, and 2 = the last trade, as 001's W example carries), then increments: one ``X`` per
operation (an order that changes is a delete + new: 001 allows only 0 and 2 in 279) with trades as
``269=2`` entries (278 a trade id, 58 the resting order's OrderID), and a ``W`` when the top of
book or the last trade changed. ``65`` SymbolSfx is never sent: 001 lists it, shows no value, and
crypto pairs have no suffix. 001 documents no MarketDataRequest ``V``; with ``market_data_request``
(everyday) a ``V`` (262, 146/55) is answered with a ``W`` per known pair carrying its 262, and a
``Y`` (262, 58 text, 281=0) for an unknown one. 001 puts the reason in "268 Text"; the sandbox puts
it in 58, the standard's Text, because 268 is NoMDEntries (venue-notes 3.4). Document-literal mode
ignores a ``V`` (001: an application message not in the document "is ignored").
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import logging
import re
import secrets
import ssl
import sys
from collections import deque
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from adapters.kit.credentials import MissingSecret, sandbox_secret
from adapters.midchains.sandbox_session import FixAcceptor, SessionState
from adapters.midchains.sandbox_wire import FixMessage, utc_timestamp
from adapters.midchains.sandbox_wire import base36 as _b36
from adapters.midchains.sandbox_wire import order_ref as _order_ref
from adapters.midchains.sandbox_wire import plain as _plain
from adapters.midchains.sandbox_ws import DEFAULT_WS_USER, WS_PORT, MidChainsWsServer, WsUser
from adapters.midchains.sandbox_ws_state import take_slot
from adapters.sim.cli import (
    Port,
    VenueSandboxCommand,
    at_least,
    free_ports,
    listening,
    sandbox_clock,
    until_stopped,
)
from adapters.sim.extensions import Extensions, add_extension_arguments, extensions_from_args, extensions_line
from adapters.sim.faults import (
    FAULT_KINDS,
    FaultSpec,
    FaultTimers,
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
    Expired,
    Rejected,
    Replaced,
    ReplaceRejected,
)
from adapters.sim.venue import Changes, SimVenue
from engine.model import Instrument, OrderType, Side, TimeInForce
from engine.venue import SandboxLink, SandboxStartError, venue_from_config
from engine.venue.clock import Clock, Timer, WallClock

__all__ = ["COMMAND", "DEFAULT_PAIRS", "SUPPORTED_FAULTS", "MidChainsExtensions", "MidChainsSandbox", "Pair",
           "WsUser", "main", "parse_fault"]

log = logging.getLogger("engine.midchains.sandbox")

D = Decimal
ZERO = D(0)
GATEWAY_COMP_ID = "MIDCDEV1"  # 001's examples
CLIENT_COMP_ID = "YOURSENDCOMP"  # 001's examples: a public test identity, the sandbox guards no money
COMP_ID_ENV = "MIDCHAINS_SANDBOX_SENDER_COMP_ID"
WS_USERS_ENV = "MIDCHAINS_SANDBOX_WS_USERS"  # USERID:PASSWORD lines (a newline-separated value)
ORDER_ADAPTER, MD_ADAPTER = "midchains_fix", "midchains_fix_md"  # the adapters a --run config points here
WS_ADAPTER = "midchains_ws"  # ... and the WebSocket one; a config's orders go through it when a venue uses it
WS_PASSWORD_ENV = "MIDCHAINS_SANDBOX_WS_PASSWORD"  # where --run puts the WebSocket login's password
OE_PORT, MD_PORT = 44323, 44325  # 001: "Port: 44323" for testing, "Port: 44325" for market data
ORDER_RATE = 4  # MID-9: the WebSocket reject text "exceed order/sec limit" = "more than 4 orders per second"
MESSAGE_RATE = 10  # 001: "10 commands per second by default"
MD_CHUNK = 50  # X entries per message in a snapshot
#: hostile numbers are refused before they reach the engine: at most this price or quantity, and
#: a price with at most this many decimals (001 gives no bound; a venue has one)
LIMIT = D(10) ** 12
DECIMALS = 8
MD_ID_BASE = 247_697_979_505_370_000  # 278 MDEntryIDs look like 001's example (247697979505377327)


@dataclass(frozen=True)
class Pair:
    """One listed pair: its start mid, price tick and its own FractionBase (the quantity step is
    1 / FractionBase; VENUES.md 2.3: LTCUSD 10000, ETHUSD/BTCUSD/BCHUSD 100000)."""

    symbol: str
    mid: Decimal
    tick: Decimal = Decimal("0.01")
    fraction_base: int = 100_000

    @property
    def lot(self) -> Decimal:
        return D(1) / D(self.fraction_base)


DEFAULT_PAIRS = (
    Pair("LTCUSD", D(140), D("0.01"), 10_000),
    Pair("BTCUSD", D(50_000), D("0.01"), 100_000),
    Pair("ETHUSD", D(3_000), D("0.01"), 100_000),
    Pair("BCHUSD", D(500), D("0.01"), 100_000),
)


@dataclass(frozen=True)
class MidChainsExtensions(Extensions):
    """What the sandbox does beyond 001, one switch each, named after its gap. Standard FIX 4.2
    session behaviour 001 relies on (ResendRequest, SequenceReset, TestRequest, Reject) is in both
    modes: the document's Logon text cannot work without it (VENUES.md 2.5)."""

    #: MID-4: F and G are answered with an ExecutionReport (150=4 / 150=5) or a 9 alone; off: as
    #: 001's examples, the gateway first echoes the request (35=F / 35=G, its body as received)
    cancel_answer_is_report: bool = True
    #: MID-9: at most 4 orders (D, G) per second per session, the WebSocket reject text's limit;
    #: off: only 001's 10 messages per second (breaches of 4/s are still counted)
    order_rate_limit: bool = True
    #: MID-14: a MarketDataRequest V is answered (W per known pair with its 262, Y for an unknown
    #: one); off: a V is ignored like every message 001 does not document
    market_data_request: bool = True
    #: venue-notes 3.4: WebSocket answers are valid JSON; off: the two server messages 001 prints
    #: as invalid JSON go out in that form (the login answer's trailing comma, the dict repr of
    #: "exceed order/sec limit")
    ws_valid_json: bool = True
    #: MID-10: the login answer says need2FA false / use2fa "N" (no 2FA step exists); off: 001's
    #: sample values need2FA true / use2fa "Y"
    ws_no_2fa: bool = True
    #: subscribesymbolstatus is followed by the current status of every pair; off: only changes
    #: are pushed (001: "Messages are sent anytime the status is updated")
    ws_status_snapshot: bool = True
    #: MID-2: a GTT exptime with non-zero milliseconds is kept; off: refused, as 001's Time
    #: Format says ("'1614331055123' is not supported")
    ws_exptime_ms: bool = True


#: the kinds of :data:`adapters.sim.faults.FAULT_KINDS` this venue plays
SUPPORTED_FAULTS = frozenset({"drop", "stall", "gap", "reject", "reject_cancels", "duplicate_reports",
                              "stale_test_request", "logout", "day_reset", "garbage", "slow", "halt"})
_TARGETS = {"": ("oe", "md"), "broker": ("oe",), "feed": ("md",), "ws": ()}
#: what each target plays: the FIX acceptors their session faults, the WebSocket API its own (issue 24)
_WS_FAULTS = frozenset({"drop", "stall", "garbage", "slow", "reject", "reject_cancels"})
_FIX_ONLY = SUPPORTED_FAULTS - _WS_FAULTS - {"halt"}


def parse_fault(text: str) -> FaultSpec:
    """One ``--fault`` SPEC of the one vocabulary; ``broker.`` aims it at order entry, ``feed.`` at
    market data (default both), ``ws.`` at the WebSocket API. A kind MidChains does not play, or
    not on that target, is refused by name."""
    spec = parse_fault_spec(text, "midchains", SUPPORTED_FAULTS)
    if spec.at_time is not None:
        raise ValueError(f"fault {text!r}: MidChains trades 24/7; give seconds after start, not a time of day")
    if spec.target == "ws" and spec.kind not in _WS_FAULTS:
        raise ValueError(f"fault {text!r}: the WebSocket API plays {', '.join(sorted(_WS_FAULTS))}, not {spec.kind}")
    if spec.kind in ("garbage", "slow") and spec.target != "ws":
        raise ValueError(f"fault {text!r}: {spec.kind} is a WebSocket fault; write ws.{spec.kind}")
    if spec.kind == "halt" and spec.target:
        raise ValueError(f"fault {text!r}: a halt is the venue's, for both protocols; write halt,symbol=...")
    return spec


# --------------------------------------------------------------------------------------------
# numbers on the wire


def _px(value: Decimal) -> str:
    """A price as 001 writes it: plain, a whole one with ".0" (``44=150.0``, ``6=0.0``)."""
    if value == value.to_integral_value():
        return f"{value.to_integral_value():f}.0"
    return format(value.normalize(), "f")


_TIME_ONLY = re.compile(r"(\d\d):(\d\d):(\d\d)(?:\.(\d{1,3}))?")
_STAMP = re.compile(r"(\d{8})-(\d\d):(\d\d):(\d\d)(?:\.(\d{1,3}))?")


def _expire_ns(text: str, now_ns: int) -> int:
    """126 ExpireTime as epoch ns: a UTCTimestamp, or 001's time of day (the next such moment, MID-6)."""
    match = _STAMP.fullmatch(text)
    if match is not None:
        day, hh, mm, ss, ms = match.groups()
        moment = datetime.strptime(f"{day} {hh}:{mm}:{ss}", "%Y%m%d %H:%M:%S").replace(tzinfo=UTC)
    else:
        match = _TIME_ONLY.fullmatch(text)
        if match is None:
            raise ValueError(f"ExpireTime {text!r} is not YYYYMMDD-HH:MM:SS[.sss] or HH:MM:SS[.sss]")
        hh, mm, ss, ms = match.groups()
        today = datetime.fromtimestamp(now_ns // 1_000_000_000, tz=UTC)
        moment = today.replace(hour=int(hh), minute=int(mm), second=int(ss), microsecond=0)
        if int(moment.timestamp()) * 1_000_000_000 <= now_ns:
            moment += timedelta(days=1)
    return int(moment.timestamp()) * 1_000_000_000 + int((ms or "0").ljust(3, "0")) * 1_000_000


class _Refusal(Exception):
    """A request refused with a text (ER 39=8 for D, 9 for F/G)."""

    def __init__(self, text: str, reason: str = "2") -> None:
        super().__init__(text)
        self.text = text
        self.reason = reason  # 102 CxlRejReason for a 9


# --------------------------------------------------------------------------------------------
# state


class _Order:
    """One client order as the venue holds it (every ClOrdID of its chain maps to it)."""

    __slots__ = ("key", "client", "cl_ord_id", "orig_cl_ord_id", "order_id", "engine_id", "pair", "side",
                 "ord_type", "price", "qty", "tif", "expire_time", "account", "handl_inst", "base_in", "filled",
                 "notional", "status", "open", "pending", "expiry")

    def __init__(self, key: str, client: str, cl_ord_id: str, pair: Pair, side: Side, ord_type: str,
                 price: Decimal | None, qty: Decimal, tif: str, expire_time: str, account: str,
                 handl_inst: str, base_in: int) -> None:
        self.key = key
        self.client = client
        self.cl_ord_id = cl_ord_id
        self.orig_cl_ord_id = ""
        self.order_id = ""
        self.engine_id = 0
        self.pair = pair
        self.side = side
        self.ord_type = ord_type
        self.price = price
        self.qty = qty
        self.tif = tif
        self.expire_time = expire_time
        self.account = account
        self.handl_inst = handl_inst
        self.base_in = base_in
        self.filled = ZERO
        self.notional = ZERO
        self.status = "A"  # PendingNew until the engine accepts it
        self.open = False
        #: the cancel/replace being answered: (new ClOrdID, OrigClOrdID, "F"|"G"|"expire")
        self.pending: tuple[str, str, str] | None = None
        self.expiry: Timer | None = None


class _Client:
    """One SenderCompID's orders and order-rate window."""

    def __init__(self) -> None:
        self.by_cl_ord_id: dict[str, _Order] = {}
        self.orders: list[_Order] = []
        self.order_times: deque[float] = deque()


class MidChainsSandbox:
    """The MidChains FIX venue on localhost; see the module docstring for its API."""

    def __init__(
        self,
        pairs: Iterable[Pair] = DEFAULT_PAIRS,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        md_port: int = 0,
        seed: int = 0,
        market: MarketOptions | None = None,
        clock: Clock | None = None,
        gateway_comp_id: str = GATEWAY_COMP_ID,
        client_comp_ids: Iterable[str] = (CLIENT_COMP_ID,),
        extensions: MidChainsExtensions | None = None,
        report_fraction_base: str = "pair",
        day_boundary: timedelta = timedelta(hours=1),
        logout_timeout_s: float = 2.0,
        faults: Iterable[FaultSpec] = (),
        tls: ssl.SSLContext | None = None,
        message_rate: int = MESSAGE_RATE,
        order_rate: int = ORDER_RATE,
        ws_port: int | None = 0,
        ws_users: Iterable[WsUser] = (DEFAULT_WS_USER,),
        ws_login_timeout_s: float = 30.0,
        ws_rsa_bits: int = 1024,
        ws_public_rate: tuple[float, float] = (3, 6),
        ws_private_rate: tuple[float, float] = (5, 10),
    ) -> None:
        if report_fraction_base not in ("pair", "order"):
            raise ValueError(f"report_fraction_base must be 'pair' or 'order', got {report_fraction_base!r}")
        self.host = host
        self._ports = (port, md_port)
        #: 001's "secure tcp+ssl connection": both acceptors serve TLS with this context (MID-12:
        #: a self-signed certificate is the adapter's CA bundle); None = clear TCP, as through a
        #: local stunnel, which 001 names as the way for a FIX engine without TLS
        self.tls = tls
        #: 001: "10 commands per second by default. This can be increased as needed."; orders 4/s (MID-9)
        self.order_rate = order_rate
        self.clock = clock or WallClock()
        self.extensions = extensions if extensions is not None else MidChainsExtensions.everyday()
        self.report_fraction_base = report_fraction_base
        self.faults = tuple(faults)
        for fault in self.faults:
            check_supported(fault, "midchains", SUPPORTED_FAULTS)
        self.pairs = {pair.symbol: pair for pair in pairs}
        self.counters: dict[str, int] = {}
        clients = set(client_comp_ids)
        common: dict[str, Any] = {"gateway": gateway_comp_id, "clients": clients, "clock": self.clock,
                                  "counters": self.counters, "day_boundary": day_boundary,
                                  "message_rate": message_rate, "logout_timeout_s": logout_timeout_s}
        self.oe = FixAcceptor("oe", _OrderEntry(self), queue_while_away=True, **common)
        self.md = FixAcceptor("md", _MarketData(self), queue_while_away=False, **common)
        self.market_options = market if market is not None else MarketOptions(enabled=False)
        self.sim = SimVenue(
            "MIDCHAINS",
            [Instrument(p.symbol, "MIDCHAINS", tick_size=p.tick, lot_size=p.lot, previous_close=p.mid)
             for p in self.pairs.values()],
            self.clock, account=None, market=self.market_options, seed=seed, circuit_bands=False,
            listeners=(self,),
        )
        self._clients: dict[str, _Client] = {}
        self._by_key: dict[str, _Order] = {}
        self._keys = itertools.count(1)
        self._exec_ids = itertools.count(30_005)
        self._match_ids = itertools.count(1)
        self._rejects: deque[str] = deque()
        self._cancel_refusals: list[str] = []
        self._duplicates: int | None = 0  # None: every report twice
        #: per pair: resting orders as market data last published them, engine id -> (side, px, leaves)
        self._published: dict[str, dict[int, tuple[Side, Decimal, Decimal]]] = {}
        self._tops: dict[str, tuple[Any, ...]] = {}
        self._last_trade: dict[str, tuple[Decimal, Decimal]] = {}
        self._received: dict[str, deque[FixMessage]] = {"oe": deque(maxlen=10_000), "md": deque(maxlen=10_000)}
        self._timers: FaultTimers | None = None
        self._day_task: asyncio.Task[None] | None = None
        #: 001's WebSocket JSON API on this same venue (issue 24; :mod:`.sandbox_ws`); None: not served
        self.ws: MidChainsWsServer | None = None
        if ws_port is not None:
            self.ws = MidChainsWsServer(self, ws_users, host=host, port=ws_port, tls=tls,
                                        login_timeout_s=ws_login_timeout_s, rsa_bits=ws_rsa_bits,
                                        public_rate=ws_public_rate, private_rate=ws_private_rate)
            self.sim.add_listener(self.ws)
        self.sim.always_open()  # 24/7: continuous trading from now on

    # ---- lifecycle -----------------------------------------------------------------------
    @property
    def port(self) -> int:
        """The order-entry acceptor's port."""
        return self.oe.port

    @property
    def md_port(self) -> int:
        """The market-data acceptor's port."""
        return self.md.port

    async def __aenter__(self) -> MidChainsSandbox:
        await self.oe.start(self.host, self._ports[0], self.tls)
        try:
            await self.md.start(self.host, self._ports[1], self.tls)
            if self.ws is not None:
                await self.ws.start()
        except BaseException:
            await self.oe.stop()
            await self.md.stop()
            raise
        for symbol in self.pairs:
            self._published[symbol] = {}
        self.sim.start()
        self._timers = FaultTimers(self.clock, self.apply_fault, log)
        self._timers.arm(self.faults)
        self._day_task = asyncio.create_task(self._watch_day())
        log.info("midchains sandbox: order entry on %s:%d, market data on %s:%d (%d pairs)",
                 self.host, self.port, self.host, self.md_port, len(self.pairs))
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._timers is not None:
            self._timers.cancel()
        for order in self._by_key.values():
            self._stop_expiry(order)
        if self._day_task is not None:
            self._day_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._day_task
        self.sim.stop()
        if self.ws is not None:
            await self.ws.stop()
        await self.oe.stop()
        await self.md.stop()

    @property
    def ws_port(self) -> int:
        """The WebSocket API's port (0 when it is not served)."""
        return self.ws.port if self.ws is not None else 0

    @property
    def ws_url(self) -> str:
        """``ws://host:port/`` (``wss://`` with TLS) of the WebSocket API."""
        if self.ws is None:
            raise RuntimeError("this sandbox does not serve the WebSocket API (ws_port=None)")
        return self.ws.url

    async def _watch_day(self) -> None:
        while True:
            await asyncio.sleep(0.5)
            self.oe.check_day()
            self.md.check_day()

    # ---- views for tests and harnesses -----------------------------------------------------
    def depth(self, symbol: str) -> tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]:
        engine = self.sim.matching_engine(symbol)
        return engine.depth(Side.BUY), engine.depth(Side.SELL)

    def orders(self, client: str = CLIENT_COMP_ID) -> list[dict[str, Any]]:
        """The client's orders: ClOrdID, OrderID, status (39), real quantities, open or not."""
        found = self._clients.get(client)
        return [{"cl_ord_id": o.cl_ord_id, "order_id": o.order_id, "symbol": o.pair.symbol, "side": o.side.value,
                 "status": o.status, "qty": o.qty, "filled": o.filled, "price": o.price, "open": o.open}
                for o in (found.orders if found is not None else [])]

    def received(self, role: str = "oe") -> list[FixMessage]:
        """Application messages received on ``role`` ("oe" / "md"), in order."""
        return list(self._received[role])

    def violations(self) -> dict[str, int]:
        """Rate-limit breaches counted on the wire (MID-9): messages (FIX beyond 10/s, WebSocket
        requests beyond their public / private buckets) and orders beyond 4/s (FIX and WebSocket);
        ``ws.*_violations`` in :attr:`counters` tell the WebSocket's apart."""
        return {"messages": sum(self.counters.get(name, 0) for name in (
                    "oe.message_rate_violations", "md.message_rate_violations", "ws.public_rate_violations",
                    "ws.private_rate_violations")),
                "orders": self.counters.get("oe.order_rate_violations", 0)
                + self.counters.get("ws.order_rate_violations", 0)}

    def order_window(self, comp_id: str) -> deque[float]:
        """The 4/s order window (MID-9) of a SenderCompID: its FIX D and G count in it, and so do
        the addorders of a WebSocket user linked to it (one user, one limit, both protocols)."""
        return self._client(comp_id).order_times

    def sessions(self, role: str = "oe") -> dict[str, tuple[int, int]]:
        """Per SenderCompID: (next MsgSeqNum we send, next we expect)."""
        acceptor = self.oe if role == "oe" else self.md
        return {client: (s.next_out, s.next_in) for client, s in acceptor.sessions.items()}

    def _acceptors(self, target: str) -> list[FixAcceptor]:
        if target not in _TARGETS:
            raise ValueError(f"target must be broker, feed or empty, got {target!r}")
        return [self.oe if role == "oe" else self.md for role in _TARGETS[target]]

    # ---- participants ----------------------------------------------------------------------
    def place(self, symbol: str, side: Side | str, qty: Decimal, price: Decimal | None = None,
              tif: TimeInForce = TimeInForce.GTC) -> list[EngineEvent]:
        """Another participant's order (to rest liquidity, or to cross a client's)."""
        side = Side(side)
        order_type = OrderType.MARKET if price is None else OrderType.LIMIT
        owner = "~bg-buyer" if side is Side.BUY else "~bg-seller"  # two owners: no self-trade prevention
        if price is None:
            tif = TimeInForce.IOC
        return self.sim.submit_for(owner, "", symbol, side, D(qty), price, order_type, tif, False)

    # ---- faults ----------------------------------------------------------------------------
    def drop(self, target: str = "") -> int:
        count = sum(acceptor.drop() for acceptor in self._acceptors(target))
        if self.ws is not None and target in ("", "ws"):
            count += self.ws.drop()
        log.warning("midchains sandbox: injected drop of %d connections", count)
        return count

    def stall(self, seconds: float, target: str = "") -> int:
        count = sum(acceptor.stall(seconds) for acceptor in self._acceptors(target))
        if self.ws is not None and target in ("", "ws"):
            count += self.ws.stall(seconds)
        return count

    def gap(self, count: int = 1, target: str = "", instrument: str = "") -> None:
        """The next ``count`` application messages (of ``instrument``'s market data, if given) are
        numbered and stored but not sent: the client's next message shows the gap and its
        ResendRequest gets them."""
        def wanted(msg_type: str, body: list[tuple[int, str]]) -> bool:
            return not instrument or (55, instrument) in body

        for acceptor in self._acceptors(target):
            acceptor.lose(count, wanted if instrument else None)

    def logout(self, text: str = "Session closed", target: str = "") -> int:
        """A gateway-initiated Logout (001: "Session closed"), then the socket closes."""
        return sum(acceptor.logout_all(text) for acceptor in self._acceptors(target))

    def stale_test_requests(self, count: int = 1, delay_s: float = 0.0, target: str = "") -> None:
        for acceptor in self._acceptors(target):
            acceptor.stale_test_requests(count, delay_s)

    def day_reset(self) -> None:
        """The daily sequence reset now (MID-13): every session logged out, both sides back to 1."""
        for acceptor in (self.oe, self.md):
            for session in list(acceptor.sessions.values()):
                acceptor.reset_session(session, session.day)

    def reject(self, count: int = 1, reason: str = "order rejected") -> None:
        self._rejects.extend([reason] * count)

    def reject_cancels(self, duration_s: float, reason: str = "cancel refused") -> None:
        self._cancel_refusals.append(reason)
        asyncio.get_running_loop().call_later(duration_s, self._cancel_refusals.remove, reason)

    def duplicate_reports(self, count: int | None = None) -> None:
        """Send the next ``count`` ExecutionReports twice, same ExecID (None: every one from now)."""
        self._duplicates = None if count is None else (self._duplicates or 0) + count

    def apply_fault(self, fault: FaultSpec) -> None:
        """Play one fault of :data:`SUPPORTED_FAULTS` now."""
        check_supported(fault, "midchains", SUPPORTED_FAULTS)
        params = FAULT_KINDS[fault.kind].with_defaults(fault.params)
        target = fault.target
        log.warning("midchains sandbox: injected %s", fault)
        if fault.kind == "halt":
            self.sim.inject(fault)  # the venue's: symbolstatus on the WebSocket, refusals on both
            return
        if target == "ws" and fault.kind not in ("drop", "stall"):
            self._apply_ws_fault(fault, params)
            return
        if fault.kind == "drop":
            self.drop(target)
        elif fault.kind == "stall":
            self.stall(float(params.get("duration_s", params.get("seconds", 5))), target)
        elif fault.kind == "gap":
            self.gap(params.get("count", 1), target, params.get("instrument", ""))
        elif fault.kind == "logout":
            self.logout(params.get("text", "Session closed"), target)
        elif fault.kind == "stale_test_request":
            self.stale_test_requests(params.get("count", 1), float(params.get("delay_s", 0)), target)
        elif fault.kind == "day_reset":
            self.day_reset()
        elif fault.kind == "reject":
            self.reject(params["count"], params["reason"])
        elif fault.kind == "reject_cancels":
            self.reject_cancels(float(params["duration_s"]), params["reason"])
        elif fault.kind == "duplicate_reports":
            self.duplicate_reports(params.get("count", 1))

    def _apply_ws_fault(self, fault: FaultSpec, params: dict[str, Any]) -> None:
        ws = self.ws
        if ws is None:
            raise ValueError(f"fault {fault}: this sandbox does not serve the WebSocket API")
        if fault.kind == "garbage":
            ws.garbage(params.get("text", ""), params.get("count", 1))
        elif fault.kind == "slow":
            ws.slow_logins(params.get("count", 1), float(params.get("delay_s", 1)))
        elif fault.kind == "reject":
            ws.reject(params["count"], params["reason"])
        elif fault.kind == "reject_cancels":
            ws.reject_cancels(float(params["duration_s"]))
        else:
            raise ValueError(f"fault {fault}: the WebSocket API plays {', '.join(sorted(_WS_FAULTS))}")

    # ---- order entry -----------------------------------------------------------------------
    def _client(self, name: str) -> _Client:
        client = self._clients.get(name)
        if client is None:
            client = self._clients[name] = _Client()
        return client

    def _send_report(self, order: _Order, body: list[tuple[int, str]]) -> None:
        session = self.oe.session_of(order.client)
        session.send("8", body)
        if self._duplicates is None or self._duplicates > 0:
            if self._duplicates is not None:
                self._duplicates -= 1
            session.send("8", body)
            self.counters["oe.duplicates_sent"] = self.counters.get("oe.duplicates_sent", 0) + 1

    def _base(self, order: _Order, *quantities: Decimal) -> int:
        if self.report_fraction_base == "order":
            base = D(order.base_in)
            if all((q * base) == (q * base).to_integral_value() for q in quantities):
                return order.base_in
        return order.pair.fraction_base

    def _report(self, order: _Order, exec_type: str, status: str, *, cl_ord_id: str | None = None,
                orig: str = "", last: tuple[Decimal, Decimal] | None = None, liquidity: str = "",
                text: str = "", exec_id: str = "") -> list[tuple[int, str]]:
        """One ExecutionReport's body in 001's tag order (its examples list tags by number)."""
        leaves = order.qty - order.filled if status in ("0", "1", "5", "A") else ZERO
        quantities = [order.qty, order.filled, leaves] + ([last[1]] if last else [])
        base = self._base(order, *quantities)

        def scaled(q: Decimal) -> str:
            return str(int(q * base))

        avg = (order.notional / order.filled).quantize(D("0.00000001"), ROUND_HALF_EVEN) if order.filled else ZERO
        fields: list[tuple[int, str]] = [
            (6, _px(avg)), (11, cl_ord_id or order.cl_ord_id), (14, scaled(order.filled)),
            (17, exec_id or f"{next(self._exec_ids)}_{order.engine_id}"), (20, "0"),
            (37, order.order_id or "NONE"), (38, scaled(order.qty)), (39, status), (40, order.ord_type),
            (54, "1" if order.side is Side.BUY else "2"), (55, order.pair.symbol), (59, order.tif),
            (60, utc_timestamp(self.clock.now_ns())), (150, exec_type), (151, scaled(leaves)), (43229, str(base)),
        ]
        if order.account:
            fields.append((1, order.account))
        if order.price is not None:
            fields.append((44, _px(order.price)))
        if orig:
            fields.append((41, orig))
        if last is not None:
            fields += [(31, _px(last[0])), (32, scaled(last[1])), (43211, "CROX"), (43212, "MIDC"),
                       (43214, liquidity)]
        if text:
            fields.append((58, text))
        if order.expire_time:
            fields.append((126, order.expire_time))
        fields.sort(key=lambda pair: pair[0])
        return fields

    def on_order_entry(self, session: SessionState, message: FixMessage, throttled: bool) -> None:
        self._received["oe"].append(message)
        kind = message.msg_type
        if kind == "D":
            self._new_order(session, message, throttled)
        elif kind in ("F", "G"):
            self._cancel_or_replace(session, message, throttled)
        elif throttled:
            conn = session.conn
            if conn is not None:
                conn.send_admin("3", [(45, message.get(34) or "0"), (372, kind), (58, "exceed message/sec limit")])
        else:
            self.counters["oe.ignored"] = self.counters.get("oe.ignored", 0) + 1  # 001: not documented, ignored

    def _order_budget(self, client: _Client) -> bool:
        """True when this order is within 4/s (MID-9); a breach is counted in every mode."""
        over = not take_slot(client.order_times, self.order_rate, self.clock.now_ns() / 1e9)
        if over:
            self.counters["oe.order_rate_violations"] = self.counters.get("oe.order_rate_violations", 0) + 1
        return not over or not self.extensions.order_rate_limit

    def _new_order(self, session: SessionState, message: FixMessage, throttled: bool) -> None:
        client = self._client(session.client)
        cl_ord_id = message.get(11, "") or ""
        if not cl_ord_id:
            conn = session.conn
            if conn is not None:
                conn.send_admin("3", [(45, message.get(34) or "0"), (372, "D"), (373, "1"),
                                      (58, "ClOrdID (11) is required")])
            return
        if cl_ord_id in client.by_cl_ord_id:
            if message.get(43) == "Y":
                return  # a resend of an order we have
            self._refuse_new(session, message, cl_ord_id, "duplicate ClOrdID")
            return
        within = self._order_budget(client)
        try:
            if throttled:
                raise _Refusal("exceed message/sec limit")
            if not within:
                raise _Refusal("exceed order/sec limit")
            order = self._read_order(session.client, message, cl_ord_id)
        except _Refusal as refusal:
            self._refuse_new(session, message, cl_ord_id, refusal.text)
            return
        if self._rejects:
            self._refuse_new(session, message, cl_ord_id, self._rejects.popleft())
            return
        client.by_cl_ord_id[cl_ord_id] = order
        client.orders.append(order)
        self._by_key[order.key] = order
        tif = {"1": TimeInForce.GTC, "3": TimeInForce.IOC, "4": TimeInForce.FOK, "6": TimeInForce.GTC}[order.tif]
        events = self.sim.submit_for(f"fix:{order.client}", order.key, order.pair.symbol, order.side, order.qty,
                                     order.price, OrderType.MARKET if order.ord_type == "1" else OrderType.LIMIT,
                                     tif, False)
        for event in events:
            if type(event) is Rejected:
                order.status = "8"
                self._send_report(order, self._report(order, "8", "8", text=event.reason))
        if order.tif == "6" and order.open:
            when = _expire_ns(order.expire_time, self.clock.now_ns())
            order.expiry = self.clock.call_at(when, self._expire, order)

    def _read_order(self, client: str, message: FixMessage, cl_ord_id: str) -> _Order:
        """A D's fields checked as 001 lists them; :class:`_Refusal` naming the first problem."""
        if len(cl_ord_id) > 32:
            raise _Refusal("ClOrdID (11) longer than 32 characters")
        for tag, name in ((21, "HandlInst"), (55, "Symbol"), (54, "Side"), (38, "OrderQty"),
                          (43229, "FractionBase"), (40, "OrdType")):
            if not message.get(tag):
                raise _Refusal(f"{name} ({tag}) is required")
        handl_inst = message.get(21, "")
        if handl_inst not in ("1", "2", "3"):
            raise _Refusal(f"HandlInst (21) must be 1, 2 or 3, got {handl_inst}")
        pair = self.pairs.get(message.get(55, ""))
        if pair is None:
            raise _Refusal("unknown symbol")
        side_text = message.get(54)
        if side_text not in ("1", "2"):
            raise _Refusal(f"Side (54) must be 1 or 2, got {side_text}")
        side = Side.BUY if side_text == "1" else Side.SELL
        qty, base = self._quantity(message, pair)
        ord_type = message.get(40, "")
        if ord_type not in ("1", "2"):
            raise _Refusal(f"OrdType (40) {ord_type} is not supported (1 market, 2 limit)")
        price: Decimal | None = None
        tif = message.get(59) or ("1" if ord_type == "2" else "3")
        if tif not in ("1", "3", "4", "6"):
            raise _Refusal(f"TimeInForce (59) {tif} is not supported (1 GTC, 3 IOC, 4 FOK, 6 GTD)")
        if ord_type == "1":
            if side is Side.BUY:
                raise _Refusal("market buy not supported")  # MID-5
            if tif not in ("3", "4"):
                raise _Refusal("market orders are IOC (59=3) or FOK (59=4)")
        else:
            price = self._price(message)
        expire_time = ""
        if tif == "6":
            expire_time = message.get(126, "") or ""
            if not expire_time:
                raise _Refusal("ExpireTime (126) is required with TimeInForce 6 (GTD)")
            try:
                when = _expire_ns(expire_time, self.clock.now_ns())
            except ValueError as exc:
                raise _Refusal(str(exc)) from None
            if when <= self.clock.now_ns():
                raise _Refusal("ExpireTime (126) is in the past")
        order = _Order(f"m{next(self._keys)}", client, cl_ord_id, pair, side, ord_type, price, qty, tif,
                       expire_time, message.get(1, "") or "", handl_inst, base)
        return order

    @staticmethod
    def _quantity(message: FixMessage, pair: Pair) -> tuple[Decimal, int]:
        text, base_text = message.get(38, ""), message.get(43229, "")
        if not text.isdigit() or not base_text.isdigit() or int(base_text) <= 0:
            raise _Refusal("OrderQty (38) and FractionBase (43229) must be positive whole numbers")
        if len(text) > 18 or len(base_text) > 18:
            raise _Refusal("OrderQty (38) and FractionBase (43229) have at most 18 digits")
        qty = D(text) / D(base_text)  # MID-3: the message's own FractionBase
        if qty <= 0 or qty > LIMIT:
            raise _Refusal(f"OrderQty (38) / FractionBase (43229) must be positive and at most {LIMIT}")
        if (qty * pair.fraction_base) != (qty * pair.fraction_base).to_integral_value():
            raise _Refusal(f"quantity {qty} is finer than {pair.symbol}'s FractionBase {pair.fraction_base}")
        return qty, int(base_text)

    @staticmethod
    def _price(message: FixMessage) -> Decimal:
        text = message.get(44, "")
        if not text:
            raise _Refusal("Price (44) is required for a limit order")
        try:
            price = D(text)
        except InvalidOperation:
            raise _Refusal(f"Price (44) {text!r} is not a number") from None
        if not price.is_finite() or price <= 0 or price > LIMIT or -int(price.as_tuple().exponent) > DECIMALS:
            raise _Refusal(f"Price (44) must be positive, at most {LIMIT} with at most {DECIMALS} decimals")
        return price

    def _refuse_new(self, session: SessionState, message: FixMessage, cl_ord_id: str, text: str) -> None:
        """ER 39=8 for a D that never reached the book, built from the request's own fields."""
        self.counters["oe.orders_rejected"] = self.counters.get("oe.orders_rejected", 0) + 1
        body: list[tuple[int, str]] = [
            (6, "0.0"), (11, cl_ord_id), (14, "0"), (17, f"{next(self._exec_ids)}_0"), (20, "0"), (37, "NONE"),
            (39, "8"), (58, text), (60, utc_timestamp(self.clock.now_ns())), (150, "8"), (151, "0"),
        ]
        for tag in (1, 38, 40, 44, 54, 55, 59, 126, 43229):
            value = message.get(tag)
            if value:
                body.append((tag, value))
        body.sort(key=lambda pair: pair[0])
        session.send("8", body)

    def _cancel_or_replace(self, session: SessionState, message: FixMessage, throttled: bool) -> None:
        kind = message.msg_type
        client = self._client(session.client)
        cl_ord_id = message.get(11, "") or ""
        orig = message.get(41, "") or ""
        if cl_ord_id in client.by_cl_ord_id and message.get(43) == "Y":
            return  # a resend we have answered
        order = client.by_cl_ord_id.get(orig)
        if order is None and message.get(37):
            order = next((o for o in client.orders if o.order_id == message.get(37)), None)
        if not self.extensions.cancel_answer_is_report:
            session.send(kind, [pair for pair in message.pairs if pair[0] not in _HEADER_TAGS])  # 001's echo
        try:
            if throttled:
                raise _Refusal("exceed message/sec limit")
            if kind == "G" and not self._order_budget(client):
                raise _Refusal("exceed order/sec limit")
            if not cl_ord_id or not orig:
                raise _Refusal("ClOrdID (11) and OrigClOrdID (41) are required")
            if order is None:
                raise _Refusal("unknown order", "1")
            if cl_ord_id in client.by_cl_ord_id:
                raise _Refusal("duplicate ClOrdID")
            if not order.open:
                raise _Refusal(f"order is not open (39={order.status})", "0")
            if message.get(55) and message.get(55) != order.pair.symbol:
                raise _Refusal("Symbol (55) does not match the order")
            if message.get(54) and message.get(54) != ("1" if order.side is Side.BUY else "2"):
                raise _Refusal("Side (54) does not match the order")
            if self._cancel_refusals:
                raise _Refusal(self._cancel_refusals[-1])
            if kind == "F":
                order.pending = (cl_ord_id, order.cl_ord_id, "F")
                events = self.sim.cancel_for(order.pair.symbol, order.engine_id, "cancelled on request")
            else:
                qty, _base = self._quantity(message, order.pair)
                price = self._price(message) if order.ord_type == "2" else None
                order.pending = (cl_ord_id, order.cl_ord_id, "G")
                events = self.sim.amend_for(order.pair.symbol, order.engine_id, price, qty)
            refused = next((e for e in events if isinstance(e, CancelRejected | ReplaceRejected)), None)
            if refused is not None:
                order.pending = None
                raise _Refusal(refused.reason, "0" if "not found" in refused.reason else "2")
            client.by_cl_ord_id[cl_ord_id] = order
        except _Refusal as refusal:
            self._cancel_reject(session, kind, cl_ord_id, orig, order, refusal)

    def _cancel_reject(self, session: SessionState, kind: str, cl_ord_id: str, orig: str, order: _Order | None,
                       refusal: _Refusal) -> None:
        self.counters["oe.cancel_rejects"] = self.counters.get("oe.cancel_rejects", 0) + 1
        body = [(11, cl_ord_id or "NONE"), (17, f"{next(self._exec_ids)}_9"),
                (37, order.order_id if order is not None and order.order_id else "NONE"),
                (39, order.status if order is not None else "8"), (41, orig or "NONE"), (58, refusal.text),
                (102, refusal.reason), (434, "1" if kind == "F" else "2")]
        session.send("9", body)

    def _expire(self, order: _Order) -> None:
        order.expiry = None
        if order.open:
            order.pending = ("", "", "expire")
            self.sim.cancel_for(order.pair.symbol, order.engine_id, "GTD order expired")

    # ---- the venue's events -> reports and market data ---------------------------------------
    def on_engine_events(self, symbol: str, events: list[EngineEvent], changes: Changes, ts: int) -> None:
        """Every operation of the venue (a client's, a participant's, the synthetic market's)."""
        touched: set[int] = set()
        trades: list[tuple[int, Execution]] = []
        event: Any  # each kind's own fields, dispatched on its type as adapters/sim/venue.py does
        for event in events:
            kind = type(event)
            if kind is Execution:
                touched.add(event.maker_id)
                touched.add(event.taker_id)
                match_id = next(self._match_ids)
                trades.append((match_id, event))
                for owner, key, liquidity in ((event.maker_owner, event.maker_client_id, "P"),
                                              (event.taker_owner, event.taker_client_id, "T")):
                    order = self._by_key.get(key) if owner.startswith("fix:") else None
                    if order is not None:
                        self._fill(order, event, match_id, liquidity)
                continue
            order_id = getattr(event, "order_id", None)
            if isinstance(order_id, int):
                touched.add(order_id)
            owner = getattr(event, "owner", "")
            order = self._by_key.get(event.client_id) if owner.startswith("fix:") else None  # type: ignore[attr-defined]
            if order is None:
                continue
            if kind is Accepted:
                order.engine_id = event.order_id
                order.order_id = _order_ref(event.order_id)
                order.status = "0"
                order.open = True
                self._send_report(order, self._report(order, "0", "0"))
            elif kind is Cancelled or kind is Expired:
                self._cancelled(order, event.reason if kind is Cancelled else "expired")
            elif kind is Replaced:
                new_id, orig, _what = order.pending or (order.cl_ord_id, "", "G")
                order.pending = None
                order.price = event.price
                order.qty = event.qty
                order.orig_cl_ord_id = orig
                order.cl_ord_id = new_id
                order.status = "1" if order.filled else "0"
                self._send_report(order, self._report(order, "5", "5", orig=orig))
        self._publish(symbol, touched, trades)

    def _fill(self, order: _Order, event: Execution, match_id: int, liquidity: str) -> None:
        order.filled += event.qty
        order.notional += event.qty * event.price
        done = order.filled >= order.qty
        order.status = "2" if done else "1"
        if done:
            order.open = False
            self._stop_expiry(order)
        exec_id = f"{order.order_id}2_{_b36(match_id, 10)}"  # 001's fill ExecID: <OrderID>2_<match>
        self._send_report(order, self._report(order, order.status, order.status, last=(event.price, event.qty),
                                              liquidity=liquidity, exec_id=exec_id))

    def _cancelled(self, order: _Order, reason: str) -> None:
        pending = order.pending
        order.pending = None
        order.open = False
        self._stop_expiry(order)
        if pending is not None and pending[2] == "expire":
            order.status = "C"
            self._send_report(order, self._report(order, "C", "C", text="GTD order expired"))
            return
        order.status = "4"
        if pending is not None and pending[2] == "F":
            new_id, orig, _ = pending
            order.orig_cl_ord_id = orig
            order.cl_ord_id = new_id
            self._send_report(order, self._report(order, "4", "4", orig=orig))
        else:  # IOC/FOK/market remainder, self-trade prevention
            self._send_report(order, self._report(order, "4", "4", text=reason))

    @staticmethod
    def _stop_expiry(order: _Order) -> None:
        if order.expiry is not None:
            order.expiry.cancel()
            order.expiry = None

    # ---- market data ---------------------------------------------------------------------------
    def _owner_ref(self, engine_id: int) -> tuple[str, str]:
        return str(MD_ID_BASE + engine_id), _order_ref(engine_id)

    def _publish(self, symbol: str, touched: set[int], trades: list[tuple[int, Execution]]) -> None:
        """One operation as X (deletes, news, trade prints) and, when the top changed, W."""
        published = self._published.setdefault(symbol, {})
        engine = self.sim.matching_engine(symbol)
        entries: list[list[tuple[int, str]]] = []
        for engine_id in sorted(touched):
            before = published.get(engine_id)
            resting = engine.order(engine_id)
            after = (resting.side, resting.price, resting.leaves) if resting is not None else None
            if before == after:
                continue
            if before is not None:
                entries.append(self._entry("2", before, engine_id, symbol))
                del published[engine_id]
            if after is not None and after[1] is not None:
                published[engine_id] = after  # type: ignore[assignment]
                entries.append(self._entry("0", after, engine_id, symbol))  # type: ignore[arg-type]
        for match_id, trade in trades:
            entries.append([(279, "0"), (269, "2"), (278, str(MD_ID_BASE * 2 + match_id)), (55, symbol),
                            (270, _plain(trade.price)), (271, _plain(trade.qty)), (58, _order_ref(trade.maker_id))])
            self._last_trade[symbol] = (trade.price, trade.qty)
        sessions = self.md.logged_on_sessions()
        if entries:
            body = self._x_body(entries)
            for session in sessions:
                session.send("X", body)
        top = self._top(symbol)
        if top != self._tops.get(symbol):
            self._tops[symbol] = top
            body = self._w_body(symbol, "0")
            for session in sessions:
                session.send("W", body)

    @staticmethod
    def _entry(action: str, state: tuple[Side, Decimal, Decimal], engine_id: int, symbol: str) -> list[tuple[int, str]]:
        side, price, leaves = state
        return [(279, action), (269, "0" if side is Side.BUY else "1"), (278, str(MD_ID_BASE + engine_id)),
                (55, symbol), (270, _plain(price)), (271, _plain(leaves)), (58, _order_ref(engine_id))]

    @staticmethod
    def _x_body(entries: list[list[tuple[int, str]]]) -> list[tuple[int, str]]:
        body: list[tuple[int, str]] = [(262, "0"), (268, str(len(entries)))]
        for entry in entries:
            body += entry
        return body

    def _top(self, symbol: str) -> tuple[Any, ...]:
        bids, asks = self.depth(symbol)
        return (bids[0] if bids else None, asks[0] if asks else None, self._last_trade.get(symbol))

    def _w_body(self, symbol: str, req_id: str) -> list[tuple[int, str]]:
        bid, ask, last = self._top(symbol)
        entries: list[tuple[int, str]] = []
        for kind, level in (("0", bid), ("1", ask), ("2", last)):
            if level is not None:
                entries += [(269, kind), (270, _plain(level[0])), (271, _plain(level[1]))]
        return [(55, symbol), (262, req_id), (268, str(len(entries) // 3)), *entries]

    def on_md_logon(self, session: SessionState) -> None:
        """The whole book of every pair as X "new" entries, then W per pair (MID-14)."""
        for symbol in self.pairs:
            engine = self.sim.matching_engine(symbol)
            published = self._published.setdefault(symbol, {})
            entries = []
            for order in engine.resting_orders():
                if order.price is None:
                    continue
                published[order.order_id] = (order.side, order.price, order.leaves)
                entries.append(self._entry("0", (order.side, order.price, order.leaves), order.order_id, symbol))
            for start in range(0, len(entries), MD_CHUNK):
                session.send("X", self._x_body(entries[start:start + MD_CHUNK]))
            self._tops[symbol] = self._top(symbol)
            session.send("W", self._w_body(symbol, "0"))

    def on_market_data(self, session: SessionState, message: FixMessage, throttled: bool) -> None:
        self._received["md"].append(message)
        if message.msg_type != "V" or not self.extensions.market_data_request:
            self.counters["md.ignored"] = self.counters.get("md.ignored", 0) + 1  # 001: not documented, ignored
            return
        req_id = message.get(262, "") or ""
        symbols = message.all(55)
        if throttled or not req_id or not symbols:
            text = "exceed message/sec limit" if throttled else "MDReqID (262) and Symbol (55) are required"
            session.send("Y", [(262, req_id or "0"), (58, text)])
            return
        for symbol in symbols:
            if symbol in self.pairs:
                session.send("W", self._w_body(symbol, req_id))
            else:
                session.send("Y", [(262, req_id), (58, f"unknown symbol {symbol}"), (281, "0")])


_HEADER_TAGS = frozenset({8, 9, 10, 34, 35, 43, 49, 52, 56, 97, 122})


class _OrderEntry:
    """The order-entry acceptor's view of the venue."""

    def __init__(self, venue: MidChainsSandbox) -> None:
        self.venue = venue

    def on_logon(self, session: SessionState) -> None:
        return None

    def on_message(self, session: SessionState, message: FixMessage, throttled: bool) -> None:
        self.venue.on_order_entry(session, message, throttled)

    def on_disconnect(self, session: SessionState) -> None:
        return None  # orders keep working: 001 documents no cancel-on-disconnect


class _MarketData:
    """The market-data acceptor's view of the venue."""

    def __init__(self, venue: MidChainsSandbox) -> None:
        self.venue = venue

    def on_logon(self, session: SessionState) -> None:
        self.venue.on_md_logon(session)

    def on_message(self, session: SessionState, message: FixMessage, throttled: bool) -> None:
        self.venue.on_market_data(session, message, throttled)

    def on_disconnect(self, session: SessionState) -> None:
        return None


# --------------------------------------------------------------------------------------------
# Command line (``engine sandbox midchains``)


def _pair_arg(text: str) -> Pair:
    """``SYMBOL[=MID[:TICK[:FRACTIONBASE]]]``, e.g. ``LTCUSD=140:0.01:10000``."""
    name, _, rest = text.partition("=")
    if not name:
        raise argparse.ArgumentTypeError(f"pair {text!r}: empty symbol")
    base = next((p for p in DEFAULT_PAIRS if p.symbol == name), Pair(name, D(100)))
    parts = rest.split(":") if rest else []
    try:
        mid = D(parts[0]) if len(parts) > 0 and parts[0] else base.mid
        tick = D(parts[1]) if len(parts) > 1 and parts[1] else base.tick
        fraction = int(parts[2]) if len(parts) > 2 and parts[2] else base.fraction_base
    except (InvalidOperation, ValueError):
        raise argparse.ArgumentTypeError(f"pair {text!r}: MID and TICK are numbers, FRACTIONBASE whole") from None
    if mid <= 0 or tick <= 0 or fraction <= 0:
        raise argparse.ArgumentTypeError(f"pair {text!r}: MID, TICK and FRACTIONBASE must be positive")
    return Pair(name, mid, tick, fraction)


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pairs", nargs="+", type=_pair_arg, default=None, metavar="SYMBOL[=MID[:TICK[:BASE]]]",
                        help="listed pairs (default: --config's, else LTCUSD=140:0.01:10000 BTCUSD=50000:0.01:100000 "
                        "ETHUSD=3000:0.01:100000 BCHUSD=500:0.01:100000)")
    parser.add_argument("--step-interval", type=Decimal, default=Decimal("0.5"), metavar="S",
                        help="mean seconds between background market steps (default 0.5)")
    parser.add_argument("--flow-interval", type=Decimal, default=Decimal(5), metavar="S",
                        help="mean seconds between aggressive background orders (default 5)")
    parser.add_argument("--gateway-comp-id", default=GATEWAY_COMP_ID,
                        help=f"the gateway's CompID, the clients' TargetCompID (default {GATEWAY_COMP_ID})")
    parser.add_argument("--sender-comp-id-env", default=COMP_ID_ENV, metavar="NAME",
                        help=f"environment variable holding the client's SenderCompID, the identity 001's Logon "
                        f"carries (default {COMP_ID_ENV}; unset: 001's {CLIENT_COMP_ID}); never logged")
    parser.add_argument("--sender-comp-id-file", type=Path, default=None, metavar="FILE",
                        help="a file of accepted SenderCompIDs, one a line (written with a generated one if missing)")
    parser.add_argument("--report-fraction-base", choices=("pair", "order"), default="pair",
                        help="FractionBase (43229) of ExecutionReports: the pair's own, as 001's example answers "
                        "10000 to an order sent with 10 (default), or the order's own")
    parser.add_argument("--tls-cert", type=Path, default=None, metavar="PEM",
                        help="serve TLS with this certificate (001: \"secure tcp+ssl\"; needs --tls-key); default "
                        "clear TCP, as behind the local stunnel 001 suggests")
    parser.add_argument("--tls-key", type=Path, default=None, metavar="PEM", help="the key of --tls-cert")
    parser.add_argument("--message-rate", type=at_least(1), default=MESSAGE_RATE, metavar="N",
                        help=f"application messages per second and session (default {MESSAGE_RATE}, 001's; \"can be "
                        "increased as needed\")")
    parser.add_argument("--order-rate", type=at_least(1), default=ORDER_RATE, metavar="N",
                        help=f"orders (D, G) per second and session with the order_rate_limit extension (default "
                        f"{ORDER_RATE}: MID-9)")
    parser.add_argument("--day-boundary", default="01:00", metavar="HH:MM",
                        help="UTC time of the daily sequence reset (001: 01:00 UTC; MID-13)")
    parser.add_argument("--ws-users-env", default=WS_USERS_ENV, metavar="NAME",
                        help=f"environment variable holding the WebSocket logins, USERID:PASSWORD a line (default "
                        f"{WS_USERS_ENV}; unset: 001's USERNAME with the password PASSWORD); never logged")
    parser.add_argument("--ws-users-file", type=Path, default=None, metavar="FILE",
                        help="a file of WebSocket logins, USERID:PASSWORD a line (written with a generated one if "
                        "missing)")
    add_extension_arguments(parser, MidChainsExtensions)


def _boundary(text: str) -> timedelta:
    match = re.fullmatch(r"(\d\d):(\d\d)", text)
    if match is None or int(match.group(1)) > 23 or int(match.group(2)) > 59:
        raise SandboxStartError(f"--day-boundary {text!r}: expected HH:MM (UTC)")
    return timedelta(hours=int(match.group(1)), minutes=int(match.group(2)))


def _tls(args: argparse.Namespace) -> ssl.SSLContext | None:
    if args.tls_cert is None and args.tls_key is None:
        return None
    if args.tls_cert is None or args.tls_key is None:
        raise SandboxStartError("--tls-cert and --tls-key go together")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(args.tls_cert, args.tls_key)
    except (OSError, ssl.SSLError) as exc:
        raise SandboxStartError(f"cannot load the TLS certificate {args.tls_cert}: {exc}") from None
    return context


def _fault_help() -> str:
    return fault_help(SUPPORTED_FAULTS) + (
        "\n  TARGET: broker = order entry, feed = market data (default both), ws = the WebSocket API (drop, stall, "
        "garbage, slow, reject, reject_cancels); halt has none: the venue's, both protocols")


def _comp_ids(args: argparse.Namespace, generated: bool) -> list[str]:
    try:
        secret = sandbox_secret(args.sender_comp_id_env, args.sender_comp_id_file, "SenderCompID",
                                (lambda: "C" + secrets.token_hex(8).upper()) if generated else (lambda: CLIENT_COMP_ID))
    except MissingSecret as exc:
        raise SandboxStartError(str(exc)) from None
    return secret.value.splitlines()


def _ws_users(args: argparse.Namespace, generated: bool) -> list[WsUser]:
    """The WebSocket logins, ``USERID:PASSWORD`` a line, from the environment or a file (never logged)."""
    def generate() -> str:
        if generated:
            return f"U{secrets.token_hex(4).upper()}:{secrets.token_urlsafe(18)}"
        return f"{DEFAULT_WS_USER.userid}:{DEFAULT_WS_USER.password}"

    try:
        secret = sandbox_secret(args.ws_users_env, args.ws_users_file, "WebSocket users", generate)
    except MissingSecret as exc:
        raise SandboxStartError(str(exc)) from None
    users = []
    for number, line in enumerate(secret.value.splitlines(), 1):
        userid, colon, password = line.partition(":")
        if not colon or not userid or not password:
            raise SandboxStartError(f"WebSocket users line {number}: expected USERID:PASSWORD (value not shown)")
        users.append(WsUser(userid.strip(), password))
    return users


def _sandbox_from_args(args: argparse.Namespace, comp_ids: list[str], ws_users: list[WsUser]) -> MidChainsSandbox:
    pairs: list[Pair] = list(DEFAULT_PAIRS)
    if args.config is not None:
        taken = venue_from_config(args.config, ORDER_ADAPTER)
        # FractionBase = 1 / lot (LTCUSD's 0.0001 -> 10000); a lot of 1 or more trades whole units
        pairs = [Pair(i.symbol, i.previous_close if i.previous_close > 0 else D(100), i.tick_size,
                      max(1, int((D(1) / i.lot_size).to_integral_value()))) for i in taken.instruments]
    if args.pairs:
        pairs = list(args.pairs)
    args.always_open = True
    clock, _text = sandbox_clock(args)
    market = MarketOptions(enabled=not args.no_market, step_interval_s=args.step_interval,
                           aggressive_interval_s=args.flow_interval, size_unit_shares=1, circuit_band_pct=D("0.5"))
    return MidChainsSandbox(
        pairs, host=args.host, port=args.port, md_port=args.md_port, seed=args.seed, market=market, clock=clock,
        gateway_comp_id=args.gateway_comp_id, client_comp_ids=comp_ids,
        extensions=extensions_from_args(MidChainsExtensions, args), report_fraction_base=args.report_fraction_base,
        day_boundary=_boundary(args.day_boundary), faults=args.fault, tls=_tls(args),
        message_rate=args.message_rate, order_rate=args.order_rate, ws_port=args.ws_port, ws_users=ws_users,
    )


def _stopped_line(sandbox: MidChainsSandbox) -> str:
    return f"midchains sandbox: stopped; {json.dumps({k: v for k, v in sorted(sandbox.counters.items()) if v})}"


@contextlib.asynccontextmanager
async def _listening(args: argparse.Namespace, comp_ids: list[str],
                     ws_users: list[WsUser]) -> AsyncIterator[MidChainsSandbox]:
    async with listening(_sandbox_from_args(args, comp_ids, ws_users), args.host) as sandbox:
        yield sandbox


async def _serve(args: argparse.Namespace) -> int:
    async with _listening(args, _comp_ids(args, generated=False), _ws_users(args, generated=False)) as sandbox:
        print(f"midchains sandbox listening: order entry {sandbox.host}:{sandbox.port}, "
              f"market data {sandbox.host}:{sandbox.md_port} (FIX 4.2, TargetCompID {args.gateway_comp_id}), "
              f"WebSocket JSON API {sandbox.ws_url}", flush=True)
        if sandbox.extensions.off():
            print(f"midchains sandbox: {extensions_line(sandbox.extensions)}", flush=True)
        await until_stopped(args.duration)
    print(_stopped_line(sandbox), flush=True)
    return 0


@contextlib.asynccontextmanager
async def _start(args: argparse.Namespace, config: Path) -> AsyncIterator[SandboxLink]:
    free_ports(args, COMMAND.ports)
    args.config = args.config or config
    comp_ids = _comp_ids(args, generated=True)
    ws_users = _ws_users(args, generated=True)
    async with _listening(args, comp_ids, ws_users) as sandbox:
        # the option names of the order-entry adapter (midchains_fix, branch mcoe) and the
        # market-data adapter (midchains_fix_md, branch mcmd) as they stood when this was written
        where = {"host": sandbox.host, "tls": sandbox.tls is not None, "sender_comp_id": comp_ids[0],
                 "target_comp_id": args.gateway_comp_id}
        if sandbox.tls is not None:
            where["ca_bundle"] = str(args.tls_cert)
        ws = {"url": sandbox.ws_url, "userid": ws_users[0].userid, "password_env": WS_PASSWORD_ENV,
              "password_file": None}
        if sandbox.tls is not None:
            ws["ca_bundle"] = str(args.tls_cert)
        uses_ws = any(isinstance(v, dict) and v.get("adapter") == WS_ADAPTER
                      for v in venue_from_config(args.config, WS_ADAPTER).venues.values())
        yield SandboxLink(
            clock=sandbox.clock,
            adapter_options={ORDER_ADAPTER: {**where, "port": sandbox.port},
                             MD_ADAPTER: {**where, "port": sandbox.md_port}, WS_ADAPTER: ws},
            environment={WS_PASSWORD_ENV: ws_users[0].password},
            secret_values=frozenset(comp_ids) | {user.password for user in ws_users},
            order_adapter=WS_ADAPTER if uses_ws else ORDER_ADAPTER,
            description=f"midchains sandbox: FIX 4.2 {sandbox.host}:{sandbox.port} (orders), :{sandbox.md_port} "
            f"(market data), WebSocket {sandbox.ws_url}, clock {sandbox.clock.describe()}"
            + (f"; {extensions_line(sandbox.extensions)}" if sandbox.extensions.off() else ""),
            stopped=lambda: _stopped_line(sandbox),
        )


COMMAND = VenueSandboxCommand(
    name="midchains",
    description="Run a local MidChains venue (document 001): a FIX 4.2 order-entry acceptor, a FIX market-data "
    "acceptor and the WebSocket JSON API on one paper matching engine, with a synthetic market, the FIX session "
    "layer (logon, heartbeats, "
    "resend, sequence reset, daily reset at 01:00 UTC), rate limits and faults. MidChains trades 24/7.",
    epilog="Alone (real time):\n"
    "  engine sandbox midchains                    # order entry :44323, market data :44325, WebSocket :8081\n"
    "  engine sandbox midchains --port 0 --md-port 0 --ws-port 0 --document-literal --duration 60",
    ports=(Port("port", OE_PORT, "FIX order entry"),
           Port("md-port", MD_PORT, "FIX market data"),
           Port("ws-port", WS_PORT, "WebSocket JSON API (001: wss://ws-sandbox.midchains.com:8081/)")),
    add_arguments=_arguments,
    parse_fault=parse_fault,
    fault_syntax="SPEC = [broker.|feed.]KIND[@S[/EVERY]][,key=value...] of the one vocabulary (below; S = seconds "
    "after start)",
    fault_help=_fault_help,
    serve_async=_serve,
    start=_start,
    config_help="take the pairs (previous close as the starting mid, tick, 1/lot as the FractionBase) from this "
    "engine config",
    noisy_loggers=(),
)


#: ``python -m adapters.<venue>.sandbox ARGS``: the venue alone until Ctrl-C (exit 0); 2 for bad
#: arguments or a port that cannot be listened on
main = COMMAND.main


if __name__ == "__main__":
    sys.exit(main())
