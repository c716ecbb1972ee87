"""Document 001's WebSocket JSON API, served by the MidChains sandbox beside its FIX acceptors
(issue 24): ONE venue, one :class:`adapters.sim.venue.SimVenue`, so an order placed over the
WebSocket shows in the FIX market data, a FIX order fills against it, and a user linked to a FIX
SenderCompID (:class:`WsUser.comp_id`) is one account on both.

The messages are built from 001 ("WEBSOCKET API") and VENUES.md section 2, never from the adapter's
codec (issue 24: the adapter is proven against something that does not share its guesses); the
per-user state and the JSON forms are :mod:`.sandbox_ws_state`. What the server does:

- Authentication (001 "Authentication"; VENUES.md 2.9). ``challenge`` -> ``key`` = base64 DER
  SubjectPublicKeyInfo of an RSA key generated for the connection (RSA-1024 by default, like 001's
  example key, so ``pass`` is 172 base64 characters as the document's clients expect; 6 ms to
  generate on the project machine; ``ws_rsa_bits=2048`` for a stronger one). ``login``
  (``userid``, ``pass`` = base64 RSA PKCS#1 v1.5 of the password) is decrypted and compared in
  constant time with the user's password (from the environment or a file, never logged): answered
  with 001's ``result:"OK"`` sample (its ``firm``, ``roles``, ``attr``... with the user's id), then
  an ``order`` push per open order and a ``position`` push per asset; otherwise
  ``"invalid user/password"`` (also for a login before any challenge: there is nothing to decrypt
  with). A connection not logged in 30 s after it opened is closed (001: "the socket will be closed
  by MidChains"), public-only use included: 001 makes no exception. ``logout`` is answered
  ``{"result":"OK","type":"logout"}`` and the server closes the socket (close code 1000).
- Public (per client IP: 001's 3 requests/s, bursts to 6, as a token bucket): ``getsymbols``
  (``USD`` then each pair and its asset, 001's key order, ``fractionbase`` a number);
  ``subscribe`` ``book`` (one pair or ``"*"``) -> the whole L3 book as a burst of ``act:"U"``
  entries, at most 50 per ``books`` array (VENUES.md MID-7), then ``U`` upserts and ``R`` removes
  (with ``side``: 001's 2021-09-21 change log) per operation; entry ``id`` = 120947223700000 + the
  engine's order id, a JSON number below 2^53 like 001's ``120947223715360`` (the FIX 278 ids are
  above it and would lose digits in a JavaScript client); ``mpid`` ``"ANON"``, ``key`` ``"NA"``
  as the sample. ``subscribe`` ``trade`` (one pair: 001 "You must specify a single trading pair";
  ``"*"`` is refused) -> the last trade at once, then each trade with ``maker_side``; ``matchid``
  is the ``exchangeref`` of the two sides' ``sale`` pushes. ``subscribesymbolstatus`` -> ack, then
  ``symbolstatus`` pushes (``Halt`` / ``Normal`` when a ``halt`` fault starts and ends;
  :meth:`MidChainsWsServer.announce_status` sends any of 001's three). ``lshistory`` answers the
  trades since ``starttime`` (rec_no, ``total_rec`` a string as in 001's sample), at most 100 a
  message; ``tradehistory`` the 1-minute blocks with trades (001's ``lastttime`` spelling, MID-1);
  ``subscribehighlow`` (a pair or ``"*"``) -> ack, the current state of each pair (001's
  prevclose-only form before the day's first trade, else opening/high/low/prevclose), then a push
  on every new high or low; the day is the sandbox's one day boundary (MID-13, 01:00 UTC) and the
  prevclose the last price of the day before (the pair's start mid on the first day).
- Private (per user: 5/s, bursts to 10): ``addorder``, ``cancelorder``, ``queryorder``,
  ``querymultiorder`` (answered ``querymultiorders``, 001's plural), ``querytrade``,
  ``querypos``, ``querypendingpos``, ``logout``. Before login a private request is answered with
  ``result:"not logged in"`` (001 is silent).
- ``addorder`` (VENUES.md 2.11): LMT (default) / MKT, GTC (default) / IOC / FOK / GTT +
  ``exptime`` (POSIX seconds or milliseconds; non-zero milliseconds, which 001 says are "not
  supported", are refused in document-literal mode and kept in everyday mode, MID-2), ``alo``
  (true or 001's ``'true'``) post-only that rejects when marketable with "order marketable to
  existing quote/book", ``clientorderid`` (001's ``clientorderi`` misspelling accepted too, MID-1)
  echoed in ``order`` and ``sale``. A market order is IOC unless FOK (GTC/GTT refused). A market
  BUY takes ``amount`` (fiat) and refuses ``qty`` with "cannot use qty for market buy order"; its
  quantity is what the amount buys walking the asks now, rounded down to the pair's
  ``fractionbase``, and ``qty`` is rewritten to what executed when it ends (001's example).
  ``stoptype:"STOP"``: the simulated venue has no stop orders, so it is refused with
  "stop orders are not supported" (a text of this sandbox). Answers: the ack
  ``result:"OK"`` + ``refno`` (the same id as the FIX OrderID 37 of the order would be,
  ``62`` + 12 base-36 digits) and then ``order`` / ``sale`` / ``position`` pushes (sale, then
  the two positions, then the order's new state, per fill); a refusal echoes the request with
  ``result`` = the reason (001's samples). Risk refusals also push an ``order`` with
  ``orderstatus:"Rejected"``, a ``64...`` refno and ``text`` (001's ``no crypto pos`` and margin
  samples): "no crypto pos" when the available balance (``curpos`` minus what open orders
  withhold) of the asset paid with is short, "Exceeds margin limit Exceed total Amount" when the
  day's order notional would pass the user's ``daily_limit``. A match against the user's own
  resting order is refused by the engine's self-trade prevention: ack OK, then ``order`` Rejected
  "wash sale prohibited" (Cancelled with that text if part had filled first). A halted pair's order
  is refused by the engine: the echo carries its reason ("trading in X is halted"), on both
  protocols. Statuses: Open (also after a partial fill), Executed, Cancelled (an IOC/FOK/market
  remainder, a cancel, a GTT expiry with ``text`` "GTT order expired"), Rejected (MID-11).
- ``cancelorder`` (security + refno) -> ``OK`` then the ``order`` push Cancelled; ``order not
  found`` (unknown refno or another pair); ``failed`` (the order is no longer open, or a
  ``reject_cancels`` fault).
- Queries: ``queryorder`` (``data`` without ``orderstatus``, MID-15); ``querymultiorder``
  (``security``, ``maxreturn``, ``lastfirst``, ``fromtime``); ``querytrade`` (the same filters;
  ``comm`` ``"0"``: the sandbox charges no fee; ``commsecurity`` the asset received);
  ``querypos`` (one asset or all; ``no position`` for an asset the user has none of);
  ``querypendingpos`` (``managedpos`` = withheld, ``openpos`` "0"). Records come ``rec_no`` 1.., at
  most 100 a message, each message carrying ``total_rec`` (001: "each response will carry maximum
  of 100 entries").
- Rate limits (VENUES.md MID-9): orders at most ``order_rate`` (4) a second per user across BOTH
  protocols for a linked user (the FIX session's window is the same deque), answered with 001's
  "exceed order/sec limit"; another request beyond its bucket is answered ``result:"exceed
  request/sec limit"`` (001 gives no text for it). Every breach is counted (``ws.*_violations``).
- Input: JSON text; 001's own ``{"type":"logout",}`` (a trailing comma) is read as meant; anything
  else that does not parse, is not an object, or whose ``type`` is not text is answered with 001's
  ``{"result":"error parsing json"}``. An unknown ``type`` is ignored (001: "Clients are expected
  to ignore messages they do not support"; the venue likewise). Frames are at most 1 MiB.

Document-literal mode (extensions off, :class:`adapters.midchains.sandbox.MidChainsExtensions`):
``ws_valid_json`` off sends the two server messages 001 prints as invalid JSON in its own form:
the login answer with its trailing comma, and ``exceed order/sec limit`` as the Python dict repr of
the sample; ``ws_no_2fa`` off answers login with the sample's ``need2FA:true`` / ``use2fa:"Y"``
(MID-10: no 2FA step exists; everyday says false / "N"); ``ws_status_snapshot`` off sends
``symbolstatus`` only on a change (everyday: the current status of every pair right after the
ack); ``ws_exptime_ms`` off refuses non-zero milliseconds (above).

Faults (``ws.`` target, the one vocabulary of :mod:`adapters.sim.faults`): ``ws.drop`` (every
socket aborted; with no target, the FIX sockets too), ``ws.stall,seconds=`` (nothing sent, queued),
``ws.garbage[,count=]`` (the next count answers of the kinds 001 prints as invalid JSON, a login
OK or an ``exceed order/sec limit``, go out in that form whatever the mode; ``text=`` sends that
text to every connection now, and ``text=doc:login`` / ``doc:logout`` / ``doc:order_rate`` send
001's own invalid samples verbatim), ``ws.slow,count=,delay_s=`` (the next count logins are
answered delay_s late, default 1; ``delay_s=0``: never, a login that times out),
``ws.reject,count=,reason=`` (the next new orders refused with the reason),
``ws.reject_cancels,duration_s=`` (cancels answered ``failed`` meanwhile) and
``halt,symbol=,duration_s=`` (no target: the simulated venue halts the pair, ``symbolstatus``
Halt then Normal, orders refused on both protocols).

Accounts: balances are checked for WebSocket orders only; a linked user's FIX orders are not
(001 documents no risk refusal over FIX), but their fills move the same balances and push
``position`` to the user's WebSocket connections.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hmac
import itertools
import json
import logging
import re
import ssl
from collections import deque
from collections.abc import Callable, Iterable
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from adapters.midchains.sandbox_session import trading_day
from adapters.midchains.sandbox_wire import base36, order_ref, plain
from adapters.midchains.sandbox_ws_state import (
    FIRM,
    Account,
    Bucket,
    WsOrder,
    WsUser,
    base_of,
    compact,
    dict_repr,
    quote_of,
    take_slot,
)
from adapters.sim.matching import CODE_POST_ONLY, Accepted, Cancelled, EngineEvent, Execution, Expired, Rejected
from adapters.sim.venue import Changes
from engine.model import InstrumentStatus, OrderType, Side, TimeInForce

if TYPE_CHECKING:
    from adapters.midchains.sandbox import MidChainsSandbox

__all__ = ["DEFAULT_WS_USER", "DOC_SAMPLES", "WS_PORT", "MidChainsWsServer", "WsUser"]

log = logging.getLogger("engine.midchains.sandbox")
wire_log = logging.getLogger("engine.midchains.sandbox.ws")

D = Decimal
ZERO = D(0)
WS_PORT = 8081  # 001: wss://ws-sandbox.midchains.com:8081/
#: 001's examples: the login "USERNAME" and the Java sample's "PASSWORD"; a public test identity, the
#: sandbox guards no money (the command line takes real ones from the environment or a file)
DEFAULT_WS_USER = WsUser("USERNAME", "PASSWORD")
BOOK_CHUNK = 50  # VENUES.md MID-7: entries per books array of the subscribe burst
RECORDS = 100  # 001: "Each response will carry maximum of 100 entries"
WS_ID_BASE = 120_947_223_700_000  # book ids like 001's 120947223715360, below 2^53
LIMIT = D(10) ** 12
DECIMALS = 8
STOP_TEXT = "stop orders are not supported"
ORDER_RATE_TEXT = "exceed order/sec limit"
REQUEST_RATE_TEXT = "exceed request/sec limit"
PUBLIC_TYPES = frozenset({"challenge", "login", "getsymbols", "subscribe", "subscribesymbolstatus", "lshistory",
                          "tradehistory", "subscribehighlow"})
STATUSES = ("Halt", "PreOpening", "Normal")
#: 001's server messages that are not valid JSON as printed, verbatim (venue-notes 3.4)
DOC_SAMPLES = {
    "login": '{"result":"OK","firm":"MIDC","need2FA":true,"roles":"OOOOO","active":"Y",'
             '"secondary_account":"TESEGY0101PGHA12345","type":"login","attr":{"country":"","tax_code":"SR",'
             '"last_name":"USER","first_name":"USER ","email":"user@mail.com"},"use2fa":"Y",'
             '"userid":"user@mail.com",}',
    "logout": '{"type":"logout",}',
    "order_rate": "{'tif': 'GTT', 'result': 'exceed order/sec limit', 'exptime': '1631004134000', "
                  "'security': 'ETHUSD', 'side': 'B', 'alo': 'true', 'price': '3782.01', 'qty': '0.0825', "
                  "'type': 'addorder', 'clientorderid': '7599bb88-1d48-48b1-bf90-ed20d81b344d'}",
}
_TRAILING_COMMA = re.compile(r",\s*([}\]])")
_CLOSE = None  # the writer's "close the socket now" (after a logout answer)


class _Refused(Exception):
    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


class _Conn:
    """One WebSocket connection: its outbound queue, its login and subscriptions."""

    def __init__(self, ws: ServerConnection, conn_id: int, ip: str) -> None:
        self.ws = ws
        self.id = conn_id
        self.ip = ip
        self.out: deque[str | None] = deque()
        self.wake = asyncio.Event()
        self.account: Account | None = None
        self.key: rsa.RSAPrivateKey | None = None
        self.books: set[str] = set()
        self.trades: set[str] = set()
        self.status = False
        self.highlow: set[str] = set()
        self.stalled_until = 0.0
        self.closed = False

    def push(self, text: str | None) -> None:
        self.out.append(text)
        self.wake.set()


class MidChainsWsServer:
    """The WebSocket API of one :class:`~adapters.midchains.sandbox.MidChainsSandbox` (its
    ``ws`` attribute); a listener of the sandbox's simulated venue."""

    def __init__(self, venue: MidChainsSandbox, users: Iterable[WsUser], *, host: str, port: int,
                 tls: ssl.SSLContext | None, login_timeout_s: float = 30.0, rsa_bits: int = 1024,
                 public_rate: tuple[float, float] = (3, 6), private_rate: tuple[float, float] = (5, 10)) -> None:
        self.venue = venue
        self.host = host
        self._port = port
        self.port = 0
        self.tls = tls
        self.login_timeout_s = login_timeout_s
        self.rsa_bits = rsa_bits
        self.public_rate = public_rate
        assets = ["USD", *dict.fromkeys(base_of(symbol) for symbol in venue.pairs)]
        self.accounts: dict[str, Account] = {}
        for user in users:
            self.accounts[user.userid] = Account(user, assets, private_rate)
        self._by_comp = {a.user.comp_id: a for a in self.accounts.values() if a.user.comp_id}
        self.counters = venue.counters
        self.conns: set[_Conn] = set()
        self._conn_ids = itertools.count(1)
        self._keys = itertools.count(1)
        self._match_ids = itertools.count(1)
        self._reject_ids = itertools.count(1)
        self._orders: dict[str, WsOrder] = {}
        self._published: dict[str, dict[int, tuple[Side, Decimal, Decimal]]] = {s: {} for s in venue.pairs}
        self._last_trade: dict[str, dict[str, Any]] = {}
        self._tape: dict[str, deque[tuple[int, Decimal, Decimal]]] = {s: deque(maxlen=100_000) for s in venue.pairs}
        self._status = dict.fromkeys(venue.pairs, "Normal")
        #: per pair, the trading day's prices for highlow: day, prevclose, open, high, low, last
        self._days: dict[str, dict[str, Any]] = {
            s: {"day": "", "prevclose": pair.mid, "open": None, "high": None, "low": None, "last": None}
            for s, pair in venue.pairs.items()}
        self._public: dict[str, Bucket] = {}
        self._deferred: list[tuple[_Conn, str]] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._server: Server | None = None
        # faults
        self._doc_forms = 0  # the next answers 001 prints as invalid JSON go out in that form
        self._slow_logins: deque[float] = deque()
        self._rejects: deque[str] = deque()
        self._cancel_refusals = 0
        self._handlers: dict[str, Callable[[_Conn, dict[str, Any]], None]] = {
            "challenge": self._challenge, "login": self._login, "logout": self._logout,
            "getsymbols": self._getsymbols, "subscribe": self._subscribe,
            "subscribesymbolstatus": self._subscribe_status, "lshistory": self._lshistory,
            "tradehistory": self._tradehistory, "subscribehighlow": self._subscribe_highlow,
            "addorder": self._addorder, "cancelorder": self._cancelorder, "queryorder": self._queryorder,
            "querymultiorder": self._querymultiorder, "querytrade": self._querytrade, "querypos": self._querypos,
            "querypendingpos": self._querypendingpos,
        }

    # ---- lifecycle -----------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"{'wss' if self.tls is not None else 'ws'}://{self.host}:{self.port}/"

    async def start(self) -> None:
        self._server = await serve(self._handle, self.host, self._port, ssl=self.tls, ping_interval=None,
                                   compression=None, max_size=1 << 20, logger=wire_log)
        self.port = next(iter(self._server.sockets)).getsockname()[1]

    async def stop(self) -> None:
        for conn in list(self.conns):
            self._abort(conn)
        for account in self.accounts.values():
            for order in account.orders:
                if order.expiry is not None:
                    order.expiry.cancel()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
            self._server = None

    def count(self, name: str, by: int = 1) -> None:
        key = f"ws.{name}"
        self.counters[key] = self.counters.get(key, 0) + by

    def _now_ms(self) -> int:
        return self.venue.clock.now_ns() // 1_000_000

    # ---- connections -----------------------------------------------------------------------
    async def _handle(self, ws: ServerConnection) -> None:
        address = ws.remote_address
        conn = _Conn(ws, next(self._conn_ids), str(address[0]) if address else "")
        self.conns.add(conn)
        self.count("connections")
        writer = asyncio.create_task(self._writer(conn))
        deadline = asyncio.create_task(self._login_deadline(conn))
        try:
            async for raw in ws:
                self._guarded(conn, raw)
        except ConnectionClosed:
            pass
        finally:
            writer.cancel()
            deadline.cancel()
            self._gone(conn)

    def _gone(self, conn: _Conn) -> None:
        conn.closed = True
        self.conns.discard(conn)

    async def _writer(self, conn: _Conn) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not conn.out:
                conn.wake.clear()
                await conn.wake.wait()
                continue
            stall = conn.stalled_until - loop.time()
            if stall > 0:
                await asyncio.sleep(stall)
                continue
            text = conn.out.popleft()
            try:
                if text is _CLOSE:
                    await conn.ws.close(1000, "logout")
                    return
                await conn.ws.send(text)
            except ConnectionClosed:
                return

    async def _login_deadline(self, conn: _Conn) -> None:
        await asyncio.sleep(self.login_timeout_s)
        if conn.account is None and not conn.closed:
            self.count("login_timeouts")
            log.info("midchains sandbox ws: connection %d did not log in within %ss; closing", conn.id,
                     self.login_timeout_s)
            with contextlib.suppress(Exception):
                await conn.ws.close(1008, "login timeout")

    def _abort(self, conn: _Conn) -> None:
        transport = conn.ws.transport
        if transport is not None:
            transport.abort()
        self._gone(conn)

    def _send(self, conn: _Conn, message: dict[str, Any] | str) -> None:
        text = message if isinstance(message, str) else compact(message)
        if self._deferred is not None:
            self._deferred.append((conn, text))
        elif not conn.closed:
            conn.push(text)

    def _to_user(self, account: Account, message: dict[str, Any]) -> None:
        text = compact(message)
        for conn in list(self.conns):
            if conn.account is account:
                self._send(conn, text)

    # ---- input -----------------------------------------------------------------------------
    def _guarded(self, conn: _Conn, raw: str | bytes) -> None:
        """One frame; a fault of the sandbox itself is logged and counted, the connection goes on."""
        try:
            self._frame(conn, raw)
        except Exception:
            self.count("internal_errors")
            log.exception("midchains sandbox ws: a message could not be processed")

    @staticmethod
    def _parse(raw: str | bytes) -> dict[str, Any] | None:
        """The request, or None when it is not a JSON object with a text ``type``; 001's own
        ``{"type":"logout",}`` (a trailing comma) is read as meant."""
        try:
            text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        except UnicodeDecodeError:
            return None
        for attempt in (text, _TRAILING_COMMA.sub(r"\1", text)):
            try:
                message = json.loads(attempt, parse_float=Decimal, parse_int=Decimal, parse_constant=lambda _: None)
            except (ValueError, RecursionError):
                continue
            if isinstance(message, dict) and isinstance(message.get("type"), str):
                return message
            return None
        return None

    def _frame(self, conn: _Conn, raw: str | bytes) -> None:
        self.count("requests")
        message = self._parse(raw)
        if message is None:
            self.count("bad_json")
            self._send(conn, {"result": "error parsing json"})
            return
        kind = message["type"]
        handler = self._handlers.get(kind)
        if handler is None:
            self.count("ignored")  # 001: unknown types are ignored
            return
        if kind in PUBLIC_TYPES:
            bucket = self._public.get(conn.ip)
            if bucket is None:
                bucket = self._public[conn.ip] = Bucket(*self.public_rate)
            if not bucket.take(self._now()):
                self.count("public_rate_violations")
                self._send(conn, {"result": REQUEST_RATE_TEXT, "type": kind})
                return
        else:
            account = conn.account
            if account is None:
                self._send(conn, {"result": "not logged in", "type": kind})
                return
            if not account.private.take(self._now()):
                self.count("private_rate_violations")
                if kind == "addorder":
                    self._order_rate_refusal(conn, message)
                else:
                    self._send(conn, {"result": REQUEST_RATE_TEXT, "type": kind})
                return
        handler(conn, message)

    # ---- authentication --------------------------------------------------------------------
    def _challenge(self, conn: _Conn, message: dict[str, Any]) -> None:
        if conn.key is None:
            conn.key = rsa.generate_private_key(public_exponent=65537, key_size=self.rsa_bits)
        der = conn.key.public_key().public_bytes(serialization.Encoding.DER,
                                                 serialization.PublicFormat.SubjectPublicKeyInfo)
        self._send(conn, {"result": "OK", "type": "challenge", "key": base64.b64encode(der).decode("ascii")})

    @staticmethod
    def _password_ok(key: rsa.RSAPrivateKey, sealed: str, password: str) -> bool:
        try:
            secret = key.decrypt(base64.b64decode(sealed, validate=True), padding.PKCS1v15())
        except (binascii.Error, ValueError):
            return False
        return hmac.compare_digest(secret, password.encode("utf-8"))

    def _login(self, conn: _Conn, message: dict[str, Any]) -> None:
        if self._slow_logins:
            delay = self._slow_logins.popleft()
            if delay <= 0:
                self.count("logins_unanswered")
                return
            self.count("logins_late")
            asyncio.get_running_loop().call_later(delay, self._answer_login, conn, message)
            return
        self._answer_login(conn, message)

    def _answer_login(self, conn: _Conn, message: dict[str, Any]) -> None:
        if conn.closed:
            return
        userid, sealed = message.get("userid"), message.get("pass")
        account = self.accounts.get(userid) if isinstance(userid, str) else None
        if account is None or conn.key is None or not isinstance(sealed, str) \
                or not self._password_ok(conn.key, sealed, account.user.password):
            self.count("login_failures")
            self._send(conn, {"result": "invalid user/password", "type": "login"})
            return
        conn.account = account
        self.count("logins")
        self._send(conn, self._login_answer(account))
        for order in account.orders:
            if order.open:
                self._send(conn, order.push())
        for asset in account.curpos:
            self._send(conn, account.position(asset))

    def _login_answer(self, account: Account) -> str:
        extensions = self.venue.extensions
        user = account.user.userid
        two_fa = not extensions.ws_no_2fa
        answer = {"result": "OK", "firm": FIRM, "need2FA": two_fa, "roles": "OOOOO", "active": "Y",
                  "secondary_account": "TESEGY0101PGHA12345", "type": "login",
                  "attr": {"country": "", "tax_code": "SR", "last_name": "USER", "first_name": "USER ", "email": user},
                  "use2fa": "Y" if two_fa else "N", "userid": user}
        text = compact(answer)
        if self._doc_form():
            return text[:-1] + ",}"  # 001's sample: "userid":"user@mail.com",}
        return text

    def _doc_form(self) -> bool:
        """True when this answer goes out in 001's invalid printed form (literal mode or a fault)."""
        if self._doc_forms > 0:
            self._doc_forms -= 1
            self.count("doc_forms_sent")
            return True
        return not self.venue.extensions.ws_valid_json

    def _logout(self, conn: _Conn, message: dict[str, Any]) -> None:
        self.count("logouts")
        self._send(conn, {"result": "OK", "type": "logout"})
        if self._deferred is None:
            conn.push(_CLOSE)

    # ---- public ----------------------------------------------------------------------------
    def _getsymbols(self, conn: _Conn, message: dict[str, Any]) -> None:
        data: list[dict[str, Any]] = [{"security": "USD", "fractionbase": 100, "tradingsymbol": False,
                                       "fiat": False, "pair": False}]  # 001's sample says fiat false [sic]
        for symbol, pair in self.venue.pairs.items():
            data.append({"security": symbol, "fractionbase": pair.fraction_base, "pair_first": base_of(symbol),
                         "tradingsymbol": True, "fiat": False, "pair_second": quote_of(symbol), "pair": True})
            data.append({"security": base_of(symbol), "fractionbase": pair.fraction_base, "tradingsymbol": False,
                         "fiat": False, "pair": False})
        self._send(conn, {"result": "OK", "data": data, "type": "getsymbols"})

    def _subscribe(self, conn: _Conn, message: dict[str, Any]) -> None:
        requests = message.get("request")
        if not isinstance(requests, list) or not requests:
            self._send(conn, {"result": "request must be a list of {msg, security, dest}", "type": "subscribe"})
            return
        for request in requests:
            msg = request.get("msg") if isinstance(request, dict) else None
            security = request.get("security") if isinstance(request, dict) else None
            if msg not in ("book", "trade") or not isinstance(security, str):
                self._send(conn, {"result": "invalid subscribe request", "type": "subscribe"})
                continue
            if msg == "trade" and security == "*":
                self._send(conn, {"result": "single security required for trade", "security": "*",
                                  "type": "subscribe"})
                continue
            symbols = list(self.venue.pairs) if security == "*" else [security]
            if security not in self.venue.pairs and security != "*":
                self._send(conn, {"result": "invalid security", "security": security, "type": "subscribe"})
                continue
            for symbol in symbols:
                if msg == "book":
                    conn.books.add(symbol)
                    self._book_snapshot(conn, symbol)
                else:
                    conn.trades.add(symbol)
                    last = self._last_trade.get(symbol)
                    if last is not None:
                        self._send(conn, last)

    def _book_entry(self, engine_id: int, state: tuple[Side, Decimal, Decimal], now: str) -> dict[str, Any]:
        side, price, qty = state
        return {"side": "B" if side is Side.BUY else "S", "act": "U", "src": "CROX", "price": plain(price),
                "qty": plain(qty), "id": WS_ID_BASE + engine_id, "time": now, "mpid": "ANON", "key": "NA"}

    def _book_snapshot(self, conn: _Conn, symbol: str) -> None:
        now = str(self._now_ms())
        entries = [self._book_entry(engine_id, state, now) for engine_id, state in self._published[symbol].items()]
        for start in range(0, len(entries), BOOK_CHUNK):
            self._send(conn, {"security": symbol, "books": entries[start:start + BOOK_CHUNK], "type": "book"})
        self.count("book_snapshots")

    def _subscribe_status(self, conn: _Conn, message: dict[str, Any]) -> None:
        conn.status = True
        self._send(conn, {"result": "OK", "type": "subscribesymbolstatus"})
        if self.venue.extensions.ws_status_snapshot:
            now = str(self._now_ms())
            self._send(conn, {"data": [{"security": s, "time": now, "status": status}
                                       for s, status in self._status.items()], "type": "symbolstatus"})

    def _lshistory(self, conn: _Conn, message: dict[str, Any]) -> None:
        security = message.get("security")
        start = _millis(message.get("starttime"))
        if security not in self.venue.pairs or start is None:
            self._send(conn, {"result": "security and starttime are required", "type": "lshistory"})
            return
        rows = [{"security": security, "rec_no": n, "execprice": plain(px), "time": str(ts), "execqty": plain(qty)}
                for n, (ts, px, qty) in enumerate((t for t in self._tape[security] if t[0] >= start), 1)]
        head = {"result": "OK", "security": security}
        tail = {"total_rec": str(len(rows)), "starttime": str(message.get("starttime")), "type": "lshistory"}
        self._chunks(conn, head, rows, tail)

    def _tradehistory(self, conn: _Conn, message: dict[str, Any]) -> None:
        """001's 1-minute blocks: only minutes with trades, high/low/first/last price, volume, count."""
        security = message.get("security")
        if not isinstance(security, str) or security not in self.venue.pairs:
            self._send(conn, {"result": "invalid security", "type": "tradehistory"})
            return
        blocks: dict[int, list[tuple[int, Decimal, Decimal]]] = {}
        for trade in self._tape[security]:
            blocks.setdefault(trade[0] // 60_000, []).append(trade)
        rows = []
        for n, (minute, trades) in enumerate(sorted(blocks.items()), 1):
            prices = [price for _ts, price, _qty in trades]
            rows.append({"volume": plain(sum((qty for _ts, _px, qty in trades), ZERO)),
                         "numoftrades": str(len(trades)), "lastttime": str(trades[-1][0]),  # 001's spelling
                         "blocktime": str(minute * 60_000), "highprice": plain(max(prices)),
                         "lowprice": plain(min(prices)), "rec_no": n, "starttime": str(trades[0][0]),
                         "lastprice": plain(prices[-1]), "startprice": plain(prices[0])})
        self._chunks(conn, {"result": "OK", "security": security}, rows,
                     {"total_rec": str(len(rows)), "type": "tradehistory"})

    def _subscribe_highlow(self, conn: _Conn, message: dict[str, Any]) -> None:
        security = message.get("security")
        if not isinstance(security, str) or (security != "*" and security not in self.venue.pairs):
            self._send(conn, {"result": "invalid security", "security": _jsonable(security),
                              "type": "subscribehighlow"})
            return
        symbols = list(self.venue.pairs) if security == "*" else [security]
        conn.highlow.update(symbols)
        self._send(conn, {"result": "OK", "security": security, "type": "subscribehighlow"})
        for symbol in symbols:
            self._send(conn, self._highlow(symbol))

    def _day_of(self, symbol: str) -> dict[str, Any]:
        """The pair's highlow state for today (MID-13: the sandbox's one day boundary); a new day
        takes the last price as its prevclose."""
        state = self._days[symbol]
        today = trading_day(self.venue.clock.now_ns(), self.venue.oe.day_boundary)
        if state["day"] != today:
            if state["last"] is not None:
                state["prevclose"] = state["last"]
            state.update(day=today, open=None, high=None, low=None)
        return state

    def _highlow(self, symbol: str) -> dict[str, Any]:
        """001's two highlow forms: prevclose alone before the day's first trade, else all four."""
        state = self._day_of(symbol)
        if state["open"] is None:
            return {"security": symbol, "prevcloseprice": plain(state["prevclose"]), "type": "highlow"}
        return {"openingprice": plain(state["open"]), "security": symbol, "highprice": plain(state["high"]),
                "lowprice": plain(state["low"]), "prevcloseprice": plain(state["prevclose"]), "type": "highlow"}

    def _chunks(self, conn: _Conn, head: dict[str, Any], rows: list[dict[str, Any]], tail: dict[str, Any]) -> None:
        """Records in messages of at most 100 (``rec_no`` runs on across them)."""
        if not rows:
            self._send(conn, {**head, **tail})
            return
        for start in range(0, len(rows), RECORDS):
            self._send(conn, {**head, "data": rows[start:start + RECORDS], **tail})

    def announce_status(self, symbol: str, status: str) -> None:
        """Push ``symbolstatus`` (one of 001's Halt / PreOpening / Normal) to its subscribers. Only
        an announcement: orders are refused by the venue's ``halt`` fault, not by this."""
        if status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}, got {status!r}")
        self._status[symbol] = status
        text = compact({"data": [{"security": symbol, "time": str(self._now_ms()), "status": status}],
                        "type": "symbolstatus"})
        for conn in list(self.conns):
            if conn.status:
                self._send(conn, text)

    def on_instrument_status(self, status: InstrumentStatus) -> None:
        if status.halted is not None and status.symbol in self._status:
            self.announce_status(status.symbol, "Halt" if status.halted else "Normal")

    # ---- addorder ----------------------------------------------------------------------------
    def _echo(self, message: dict[str, Any], result: str, account: Account | None) -> dict[str, Any]:
        echo: dict[str, Any] = {"result": result}
        for key, value in message.items():
            if key != "type":
                echo[key] = _jsonable(value)
        if account is not None:
            echo["firm"] = FIRM
            echo["userid"] = account.user.userid
        echo["type"] = message.get("type", "addorder")
        return echo

    def _order_rate_refusal(self, conn: _Conn, message: dict[str, Any]) -> None:
        self.count("order_rate_violations")
        echo = self._echo(message, ORDER_RATE_TEXT, None)
        self._send(conn, dict_repr(echo) if self._doc_form() else compact(echo))

    def _now(self) -> float:
        """Seconds on the venue's clock: what its rate limits count in (the engine paces on the same)."""
        return self.venue.clock.now_ns() / 1e9

    def _order_slot(self, account: Account) -> bool:
        """MID-9: at most the venue's order rate per user, the FIX session's window for a linked user."""
        comp = account.user.comp_id
        times = self.venue.order_window(comp) if comp else account.order_times
        return take_slot(times, self.venue.order_rate, self._now())

    def _addorder(self, conn: _Conn, message: dict[str, Any]) -> None:
        account = conn.account
        assert account is not None
        if not self._order_slot(account):
            self._order_rate_refusal(conn, message)
            return
        try:
            order = self._read_order(account, message)
        except _Refused as refusal:
            self.count("orders_refused")
            self._send(conn, self._echo(message, refusal.text, None))  # as 001's "cannot use qty" sample
            return
        if self._rejects:
            self.count("orders_refused")
            self._send(conn, self._echo(message, self._rejects.popleft(), None))
            return
        risk = self._risk(account, order)
        if risk:
            self.count("orders_refused")
            order.refno = "64" + base36(next(self._reject_ids), 12)  # 001's rejected refnos: 64GSC7W0XIY8C0
            order.status, order.text = "Rejected", risk
            self._send(conn, self._echo(message, risk, None))  # 001's risk samples: no firm, no userid
            self._to_user(account, order.push())
            return
        self._submit(conn, account, order, message)

    def _read_order(self, account: Account, message: dict[str, Any]) -> WsOrder:
        """The request's fields checked as 001 lists them; :class:`_Refused` naming the first problem."""
        symbol = message.get("security")
        pair = self.venue.pairs.get(symbol) if isinstance(symbol, str) else None
        if pair is None or not isinstance(symbol, str):
            raise _Refused("invalid security")
        side_text = message.get("side")
        if side_text not in ("B", "S"):
            raise _Refused("side must be B or S")
        side = Side.BUY if side_text == "B" else Side.SELL
        ordertype = message.get("ordertype", "LMT")
        if ordertype == "LIMIT":
            ordertype = "LMT"  # 001's margin sample echoes "LIMIT"
        if ordertype not in ("LMT", "MKT"):
            raise _Refused("ordertype must be LMT or MKT")
        if message.get("stoptype") not in (None, ""):
            raise _Refused(STOP_TEXT if message.get("stoptype") == "STOP" else "stoptype must be STOP")
        alo = message.get("alo", False)
        if alo not in (True, False, "true", "false"):
            raise _Refused("alo must be true or false")
        alo = alo in (True, "true")
        tif = message.get("tif", "IOC" if ordertype == "MKT" else "GTC")
        if tif not in ("GTC", "IOC", "FOK", "GTT"):
            raise _Refused("tif must be GTC, IOC, FOK or GTT")
        clientorderid = message.get("clientorderid", message.get("clientorderi"))  # MID-1: 001's misspelling
        if clientorderid is not None and (not isinstance(clientorderid, str) or len(clientorderid) > 64):
            raise _Refused("clientorderid must be text of at most 64 characters")
        price: Decimal | None = None
        amount: Decimal | None = None
        if ordertype == "MKT":
            if tif not in ("IOC", "FOK"):
                raise _Refused("market orders are IOC or FOK")
            if side is Side.BUY:
                if "qty" in message:
                    raise _Refused("cannot use qty for market buy order")  # 001's sample
                amount = _number(message, "amount", 2)
                qty = self._qty_for_amount(symbol, amount, pair.lot)
            else:
                qty = _number(message, "qty", DECIMALS)
        else:
            price = _number(message, "price", DECIMALS)
            qty = _number(message, "qty", DECIMALS)
        if amount is None and qty % pair.lot:
            raise _Refused(f"qty {plain(qty)} is finer than {symbol}'s fractionbase {pair.fraction_base}")
        exptime = ""
        if tif == "GTT":
            exptime = str(message.get("exptime", ""))
            when = _millis(exptime)
            if when is None:
                raise _Refused("exptime (POSIX seconds or milliseconds) is required with tif GTT")
            if when % 1000 and not self.venue.extensions.ws_exptime_ms:
                raise _Refused("exptime: milliseconds are not supported")  # 001, Time Format
            if when <= self._now_ms():
                raise _Refused("exptime is in the past")
        return WsOrder(account, symbol, side, ordertype, tif, price, qty, amount, exptime, alo, clientorderid,
                       self._now_ms())

    def _qty_for_amount(self, symbol: str, amount: Decimal, lot: Decimal) -> Decimal:
        """What ``amount`` of fiat buys walking the asks now, rounded down to the lot."""
        left, qty = amount, ZERO
        for price, size in self.venue.depth(symbol)[1]:
            take = min(size, (left / price).quantize(lot, ROUND_DOWN))
            qty += take
            left -= take * price
            if take < size:
                break
        if qty <= 0:
            raise _Refused("market buy: no liquidity for this amount")
        return qty

    def _risk(self, account: Account, order: WsOrder) -> str:
        """001's risk refusals: the balance paid with, then the day's notional."""
        if order.side is Side.BUY:
            need = order.amount if order.amount is not None else order.qty * (order.price or ZERO)
            pays = quote_of(order.symbol)
            notional = need
        else:
            need, pays = order.qty, base_of(order.symbol)
            bids = self.venue.depth(order.symbol)[0]
            reference = order.price or (bids[0][0] if bids else self.venue.pairs[order.symbol].mid)
            notional = order.qty * reference
        if account.available(pays) < need:
            return "no crypto pos"
        day = str(self._now_ms() // 86_400_000)
        if account.day != day:
            account.day, account.notional = day, ZERO
        if account.notional + notional > account.user.daily_limit:
            return "Exceeds margin limit Exceed total Amount"
        account.notional += notional
        return ""

    def _submit(self, conn: _Conn, account: Account, order: WsOrder, message: dict[str, Any]) -> None:
        order.key = f"w{next(self._keys)}"
        self._orders[order.key] = order
        account.orders.append(order)
        engine_tif = {"GTC": TimeInForce.GTC, "GTT": TimeInForce.GTC, "IOC": TimeInForce.IOC,
                      "FOK": TimeInForce.FOK}[order.tif]
        self._deferred = []
        try:
            self.venue.sim.submit_for(account.owner, order.key, order.symbol, order.side, order.qty, order.price,
                                      OrderType.MARKET if order.ordertype == "MKT" else OrderType.LIMIT,
                                      engine_tif, order.alo)
        finally:
            deferred, self._deferred = self._deferred, None
        if not order.refno:  # the engine refused it: no refno, the echo says why
            del self._orders[order.key]
            account.orders.remove(order)
            self.count("orders_refused")
            self._send(conn, self._echo(message, order.text, account))  # 001's post-only sample: firm, userid
        else:
            self.count("orders")
            ack: dict[str, Any] = {"tif": order.tif, "result": "OK", "firm": FIRM, "refno": order.refno,
                                   "security": order.symbol, "side": message.get("side")}
            if order.amount is not None:
                ack["amount"] = _json_number(order.amount)  # 001's ack: "amount":180, a number
            else:
                ack["qty"] = plain(order.qty)
            if order.price is not None:
                ack["price"] = plain(order.price)
            ack.update({"type": "addorder", "userid": account.user.userid, "ordertype": order.ordertype})
            if order.clientorderid is not None:
                ack["clientorderid"] = order.clientorderid
            self._send(conn, ack)
            if order.open and order.exptime:
                when_ms = _millis(order.exptime) or 0
                order.expiry = self.venue.clock.call_at(when_ms * 1_000_000, self._expire, order)
        for target, text in deferred:
            self._send(target, text)

    def _expire(self, order: WsOrder) -> None:
        order.expiry = None
        if order.open:
            order.expiring = True
            self.venue.sim.cancel_for(order.symbol, order.engine_id, "GTT order expired")

    # ---- cancel and queries -------------------------------------------------------------------
    def _own(self, conn: _Conn, message: dict[str, Any]) -> tuple[Account, WsOrder | None]:
        account = conn.account
        assert account is not None
        refno = message.get("refno")
        order = account.by_refno.get(refno) if isinstance(refno, str) else None
        if order is not None and message.get("security") != order.symbol:
            order = None  # 001: security + refno name the order
        return account, order

    def _cancelorder(self, conn: _Conn, message: dict[str, Any]) -> None:
        _account, order = self._own(conn, message)
        answer = {"result": "OK", "refno": _jsonable(message.get("refno")),
                  "security": _jsonable(message.get("security")), "type": "cancelorder"}
        if order is None:
            answer["result"] = "order not found"
            self._send(conn, answer)
            return
        if not order.open or self._cancel_refusals:
            answer["result"] = "failed"
            self._send(conn, answer)
            return
        self._deferred = []
        try:
            self.venue.sim.cancel_for(order.symbol, order.engine_id, "cancelled on request")
        finally:
            deferred, self._deferred = self._deferred, None
        if order.open:
            answer["result"] = "failed"
        self._send(conn, answer)
        for target, text in deferred:
            self._send(target, text)

    def _queryorder(self, conn: _Conn, message: dict[str, Any]) -> None:
        _account, order = self._own(conn, message)
        answer: dict[str, Any] = {"result": "OK", "refno": _jsonable(message.get("refno"))}
        if order is None:
            answer.update({"result": "order not found", "security": _jsonable(message.get("security")),
                           "type": "queryorder"})
        else:
            answer.update({"data": order.query(), "security": order.symbol, "type": "queryorder"})
        self._send(conn, answer)

    @staticmethod
    def _filtered(rows: list[Any], message: dict[str, Any], when: Callable[[Any], int],
                  security: Callable[[Any], str]) -> list[Any]:
        """001's query filters: security, fromtime, lastfirst, maxreturn."""
        wanted = message.get("security")
        if isinstance(wanted, str) and wanted not in ("", "*"):
            rows = [row for row in rows if security(row) == wanted]
        start = _millis(message.get("fromtime"))
        if start is not None:
            rows = [row for row in rows if when(row) >= start]
        if message.get("lastfirst") in (True, "true"):
            rows = rows[::-1]
        limit = message.get("maxreturn")
        with contextlib.suppress(TypeError, ValueError, InvalidOperation):
            if limit is not None and int(limit) >= 0:
                rows = rows[:int(limit)]
        return rows

    def _querymultiorder(self, conn: _Conn, message: dict[str, Any]) -> None:
        account = conn.account
        assert account is not None
        orders = self._filtered([o for o in account.orders if o.refno], message, lambda o: o.updtime,
                                lambda o: o.symbol)
        rows = [order.record(n) for n, order in enumerate(orders, 1)]
        self._chunks(conn, {"result": "OK"}, rows, {"type": "querymultiorders", "total_rec": len(rows)})

    def _querytrade(self, conn: _Conn, message: dict[str, Any]) -> None:
        account = conn.account
        assert account is not None
        sales = self._filtered(account.sales, message, lambda s: int(s["trdtime"]), lambda s: s["security"])
        rows = [{**sale, "rec_no": n} for n, sale in enumerate(sales, 1)]
        self._chunks(conn, {"result": "OK"}, rows, {"type": "querytrade", "total_rec": len(rows)})

    def _positions(self, account: Account, message: dict[str, Any]) -> list[str]:
        wanted = message.get("security")
        if isinstance(wanted, str) and wanted not in ("", "*"):
            return [wanted] if wanted in account.curpos else []
        return list(account.curpos)

    def _querypos(self, conn: _Conn, message: dict[str, Any]) -> None:
        account = conn.account
        assert account is not None
        assets = self._positions(account, message)
        if not assets:
            self._send(conn, {"result": "no position", "type": "querypos"})
            return
        rows = [{"curpos": plain(account.curpos[a]), "rec_no": n, "security": a, "type": "position"}
                for n, a in enumerate(assets, 1)]
        self._chunks(conn, {"result": "OK", "firm": FIRM}, rows,
                     {"userid": account.user.userid, "type": "querypos", "total_rec": len(rows)})

    def _querypendingpos(self, conn: _Conn, message: dict[str, Any]) -> None:
        account = conn.account
        assert account is not None
        assets = self._positions(account, message)
        if not assets:
            self._send(conn, {"result": "no position", "type": "querypendingpos"})
            return
        rows = [{"security": a, "curpos": plain(account.curpos[a]), "rec_no": n,
                 "managedpos": plain(account.withheld(a)), "type": "position", "openpos": "0"}
                for n, a in enumerate(assets, 1)]
        self._chunks(conn, {"result": "OK"}, rows, {"total_rec": len(rows), "type": "querypendingpos"})

    # ---- the venue's events -> pushes ------------------------------------------------------------
    def on_engine_events(self, symbol: str, events: list[EngineEvent], changes: Changes, ts: int) -> None:
        """Every operation of the venue (WebSocket, FIX, the synthetic market): own orders' pushes,
        then the book and trade feeds."""
        if symbol not in self._published:
            return
        touched: set[int] = set()
        changed: dict[str, WsOrder] = {}
        event: Any
        for event in events:
            kind = type(event)
            if kind is Execution:
                touched.add(event.maker_id)
                touched.add(event.taker_id)
                matchid = "62" + base36(next(self._match_ids), 10)
                self._trade(symbol, event, matchid)
                for owner, key, maker in ((event.maker_owner, event.maker_client_id, True),
                                          (event.taker_owner, event.taker_client_id, False)):
                    side = event.maker_side if maker else event.taker_side
                    order = self._orders.get(key)
                    if order is not None and order.account.owner == owner:
                        self._fill(order, event.price, event.qty, side, maker, matchid)
                        changed[order.key] = order
                    elif owner.startswith("fix:") and owner[4:] in self._by_comp:
                        self._settle(self._by_comp[owner[4:]], symbol, side, event.price, event.qty)
                continue
            order_id = getattr(event, "order_id", None)
            if isinstance(order_id, int):
                touched.add(order_id)
            order = self._orders.get(getattr(event, "client_id", ""))
            if order is None or order.account.owner != event.owner:
                continue
            if kind is Accepted:
                order.engine_id = event.order_id
                order.refno = order_ref(event.order_id)
                order.account.by_refno[order.refno] = order
                order.open = True
                if not any(type(e) is Cancelled and e.client_id == order.key and not e.filled  # type: ignore[attr-defined]
                           and e.reason.startswith("self-trade prevention") for e in events):  # type: ignore[attr-defined]
                    self._to_user(order.account, order.push())  # 001: "order" Open first, then the fills
            elif kind is Cancelled or kind is Expired:
                self._ended(order, event.reason if kind is Cancelled else "expired")
                changed[order.key] = order
            elif kind is Rejected:
                order.status = "Rejected"
                order.text = _engine_reason(event)
        for order in changed.values():
            order.updtime = self._now_ms()
            self._to_user(order.account, order.push())
        self._publish(symbol, touched)

    def _ended(self, order: WsOrder, reason: str) -> None:
        order.open = False
        if order.expiry is not None:
            order.expiry.cancel()
            order.expiry = None
        if reason.startswith("self-trade prevention"):
            order.status = "Rejected" if not order.filled else "Cancelled"
            order.text = "wash sale prohibited"
        elif order.expiring:
            order.status, order.text = "Cancelled", "GTT order expired"
        elif order.amount is not None and order.filled:
            order.status, order.qty = "Executed", order.filled  # 001: qty rewritten at completion
        elif reason == "cancelled on request":
            order.status = "Cancelled"
        else:
            order.status, order.text = "Cancelled", reason

    def _fill(self, order: WsOrder, price: Decimal, qty: Decimal, side: Side, maker: bool, matchid: str) -> None:
        account = order.account
        order.filled += qty
        order.notional += qty * price
        if order.filled >= order.qty:
            order.status = "Executed"
            self._ended_filled(order)
        user = account.user.userid
        now = str(self._now_ms())
        sale: dict[str, Any] = {
            "traderefno": f"{order.refno}2_{matchid}", "refno": order.refno, "trdtime": now,
            "side": "B" if side is Side.BUY else "S", "ismaker": maker, "execprice": plain(price), "type": "sale",
            "userid": user, "firm": FIRM, "security": order.symbol, "exchangeref": matchid, "category": "CROX",
            "execqty": plain(qty), "account": user,
        }
        if order.clientorderid is not None:
            sale["clientorderid"] = order.clientorderid
        self._to_user(account, sale)
        received = base_of(order.symbol) if side is Side.BUY else quote_of(order.symbol)
        account.sales.append({"account": user, "refno": order.refno, "category": "CROX", "comm": "0",
                              "commsecurity": received, "exchangeref": matchid, "execqty": plain(qty),
                              "execprice": plain(price), "ismaker": maker, "traderefno": sale["traderefno"],
                              "side": sale["side"], "trdtime": now, "security": order.symbol, "type": "sale"})
        self._settle(account, order.symbol, side, price, qty)

    @staticmethod
    def _ended_filled(order: WsOrder) -> None:
        order.open = False
        if order.expiry is not None:
            order.expiry.cancel()
            order.expiry = None

    def _settle(self, account: Account, symbol: str, side: Side, price: Decimal, qty: Decimal) -> None:
        """A fill moves the account's two assets (on either protocol) and pushes both positions."""
        base, quote = base_of(symbol), quote_of(symbol)
        sign = 1 if side is Side.BUY else -1
        account.move(base, sign * qty, sign * qty * price)
        account.move(quote, -sign * qty * price, -sign * qty * price)
        self._to_user(account, account.position(base))
        self._to_user(account, account.position(quote))

    def _trade(self, symbol: str, event: Execution, matchid: str) -> None:
        now = self._now_ms()
        self._tape[symbol].append((now, event.price, event.qty))
        message = {"security": symbol, "src": "CROX", "price": plain(event.price), "qty": plain(event.qty),
                   "time": str(now), "type": "trade", "matchid": matchid,
                   "maker_side": "B" if event.maker_side is Side.BUY else "S"}
        self._last_trade[symbol] = message
        text = compact(message)
        for conn in list(self.conns):
            if symbol in conn.trades:
                self._send(conn, text)
        state = self._day_of(symbol)
        state["last"] = price = event.price
        if state["open"] is None:
            state["open"] = state["high"] = state["low"] = price
        elif price > state["high"]:
            state["high"] = price
        elif price < state["low"]:
            state["low"] = price
        else:
            return  # no new high or low: nothing to say (001)
        text = compact(self._highlow(symbol))
        for conn in list(self.conns):
            if symbol in conn.highlow:
                self._send(conn, text)

    def _publish(self, symbol: str, touched: set[int]) -> None:
        """One operation's book changes as U (new or changed) and R (gone) entries by id."""
        published = self._published[symbol]
        engine = self.venue.sim.matching_engine(symbol)
        now = str(self._now_ms())
        entries: list[dict[str, Any]] = []
        for engine_id in sorted(touched):
            before = published.get(engine_id)
            resting = engine.order(engine_id)
            after = (resting.side, resting.price, resting.leaves) if resting is not None and resting.price else None
            if before == after:
                continue
            if after is None:
                del published[engine_id]
                assert before is not None
                entries.append({"side": "B" if before[0] is Side.BUY else "S", "act": "R",
                                "id": WS_ID_BASE + engine_id, "time": now})
            else:
                published[engine_id] = after  # type: ignore[assignment]
                entries.append(self._book_entry(engine_id, after, now))  # type: ignore[arg-type]
        if not entries:
            return
        subscribers = [conn for conn in self.conns if symbol in conn.books]
        for start in range(0, len(entries), BOOK_CHUNK):
            text = compact({"security": symbol, "books": entries[start:start + BOOK_CHUNK], "type": "book"})
            for conn in subscribers:
                self._send(conn, text)

    # ---- faults and views ------------------------------------------------------------------------
    def drop(self) -> int:
        conns = list(self.conns)
        for conn in conns:
            self._abort(conn)
        return len(conns)

    def stall(self, seconds: float) -> int:
        until = asyncio.get_running_loop().time() + seconds
        for conn in self.conns:
            conn.stalled_until = until
        return len(self.conns)

    def garbage(self, text: str = "", count: int = 1) -> int:
        """No text: the next ``count`` answers 001 prints as invalid JSON go out in that form.
        ``text``: sent now to every connection (``doc:login`` / ``doc:logout`` / ``doc:order_rate``:
        001's own invalid samples, :data:`DOC_SAMPLES`)."""
        if not text:
            self._doc_forms += count
            return 0
        if text.startswith("doc:"):
            if text[4:] not in DOC_SAMPLES:
                known = ", ".join("doc:" + name for name in DOC_SAMPLES)
                raise ValueError(f"garbage text {text!r}: 001's samples are {known}")
            text = DOC_SAMPLES[text[4:]]
        for conn in list(self.conns):
            for _ in range(count):
                self._send(conn, text)
        return len(self.conns)

    def slow_logins(self, count: int = 1, delay_s: float = 0.0) -> None:
        """The next ``count`` logins are answered ``delay_s`` late (0: never; the client times out)."""
        self._slow_logins.extend([delay_s] * count)

    def reject(self, count: int = 1, reason: str = "order rejected") -> None:
        self._rejects.extend([reason] * count)

    def reject_cancels(self, duration_s: float) -> None:
        self._cancel_refusals += 1

        def lift() -> None:
            self._cancel_refusals -= 1

        asyncio.get_running_loop().call_later(duration_s, lift)

    def orders(self, userid: str) -> list[dict[str, Any]]:
        """The user's orders as the venue holds them (the ``order`` push of each)."""
        account = self.accounts.get(userid)
        return [order.push() for order in account.orders] if account is not None else []

    def positions(self, userid: str) -> dict[str, Decimal]:
        account = self.accounts.get(userid)
        return dict(account.curpos) if account is not None else {}


def _jsonable(value: Any) -> Any:
    """A request value echoed back: numbers read as Decimal go out as JSON numbers again, at any depth."""
    if isinstance(value, Decimal):
        # a number no sane request has (1e999999999) is echoed as text: int() of it would never end
        return _json_number(value) if value.is_finite() and value.adjusted() < 30 else str(value)
    if isinstance(value, list):
        return [_jsonable(item) for item in value]
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    return value


def _json_number(value: Decimal) -> int | float:
    """A Decimal as a JSON number (only where 001's samples show a number, e.g. the ack's amount)."""
    if value == value.to_integral_value():
        return int(value)
    return float(value)  # JSON numbers only where 001 shows one; the strings carry exact values


def _number(message: dict[str, Any], name: str, decimals: int) -> Decimal:
    """A positive amount given as a string or a JSON number (VENUES.md 2.3)."""
    value = message.get(name)
    if value is None or isinstance(value, bool) or not isinstance(value, str | Decimal):
        raise _Refused(f"{name} is required")
    try:
        number = D(value)
    except InvalidOperation:
        raise _Refused(f"{name} {value!r} is not a number") from None
    if not number.is_finite() or number <= 0 or number > LIMIT or -int(number.as_tuple().exponent) > decimals:
        raise _Refused(f"{name} must be positive, at most {LIMIT} with at most {decimals} decimals")
    return number


def _millis(value: Any) -> int | None:
    """001's POSIX time (seconds, or milliseconds: 10 or 13 digits) as epoch ms; None if not one."""
    text = str(value) if isinstance(value, str | Decimal) and not isinstance(value, bool) else ""
    if not text.isdigit():
        return None
    if len(text) <= 11:
        return int(text) * 1000
    return int(text)


def _engine_reason(event: Rejected) -> str:
    """The venue's refusal in 001's words where 001 has them (post-only: its sample's text)."""
    if event.code == CODE_POST_ONLY:
        return "order marketable to existing quote/book"
    return event.reason
