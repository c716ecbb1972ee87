"""The MidChains sandbox's FIX 4.2 acceptor: the gateway's session layer, per document 001 and the
FIX 4.2 standard the document relies on (VENUES.md 2.5, venue-notes 3.1). No adapter code is
imported (issue 23 section 3): frames come from :mod:`.sandbox_wire`.

One :class:`FixAcceptor` listens per gateway port (order entry, market data). A client is known by
its SenderCompID (the only "credential" 001's Logon has: no username or password tags, venue-notes
3.1); each (port, SenderCompID) has one :class:`SessionState` for the trading day: both sequence
numbers, the messages sent (for ResendRequest) and, on order entry, the messages generated while
the client was away. What the gateway does:

- Logon ``A``: the first message must be one, to our TargetCompID from a known SenderCompID, with
  ``108`` HeartBtInt (0 = no heartbeats); answered ``98=0`` + the client's ``108``. A second
  connection of a logged-on session is logged out. Logon ``34`` above the expected number: the
  Logon is answered, then a ResendRequest ``2`` (7 = expected, 16 = 0) and later messages wait
  until the gap is filled. ``34`` below the expected number without PossDup: a Logout whose 58
  names both numbers, then a disconnect when the confirming Logout does not come within
  ``logout_timeout_s`` (001: "waits for a confirming Logout before disconnecting"; the same for
  any later too-low message).
- After the Logon answer (and the ResendRequest, if any): the messages queued while the client was
  away, numbered now, then regular traffic (001, Logon: "Will forwarded to the FIX client messages
  that are waiting in the outbound queue"). Messages already numbered and sent before a drop are
  the client's to ask for: its ResendRequest is answered by replaying application messages with
  ``43=Y`` and ``122`` (their first SendingTime) and covering administrative ones (and any older
  than the ``stored`` bound) with SequenceReset-GapFill ``4`` (``123=Y``, ``36``).
- SequenceReset ``4``: GapFill moves the expected number forward; Reset (no ``123=Y``) sets it
  whatever its own ``34``; a move backwards is a session Reject ``3`` (``373=5``).
- Heartbeat ``0`` after HeartBtInt without sending; TestRequest ``1`` answered with its ``112``;
  our own TestRequest after HeartBtInt + grace of silence, and a disconnect after as long again.
- Logout ``5`` both ways: a client's is confirmed and the socket closed; ours (``58`` "Session
  closed", 001) waits for the client's.
- Session Reject ``3`` (``45``, ``372``, ``373``, ``58``) for a framed message missing MsgSeqNum
  or SendingTime, or from another CompID (then a Logout). A frame with a wrong BodyLength or
  CheckSum is dropped and counted (FIX: garbled messages are ignored, not rejected).
- Throttle: 001's "10 commands per second" per session, counted over any one-second window on
  the application messages (MID-9). Every arrival beyond it is a violation (counted, and given
  to the venue, which refuses it); a test asserts an adapter caused none.
- The daily reset (001: "Message Sequence Numbers are reset daily at 01:00 UTC"; MID-13, one
  configurable boundary on the sandbox clock): every session is logged out ("Session closed"),
  both numbers go back to 1 and what was queued for the old day is discarded (001: delivered
  "once the client logs in again within the same trading day").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from adapters.midchains.sandbox_wire import FixMessage, FrameSplitter, WireError, decode, encode, utc_timestamp
from engine.venue.clock import Clock

__all__ = ["ADMIN_TYPES", "FixAcceptor", "FixConnection", "SessionHandler", "SessionState", "trading_day"]

log = logging.getLogger("engine.midchains.sandbox")

ADMIN_TYPES = frozenset({"0", "1", "2", "3", "4", "5", "A"})
READ_SIZE = 65536
#: application messages kept per session for ResendRequest; older ones are gap-filled
STORED = 50_000
#: messages generated while a client is away, per session (the oldest are dropped beyond it)
QUEUED = 20_000
#: later messages held while a gap is being filled (beyond it the session is logged out)
HELD = 10_000


def trading_day(now_ns: int, boundary: timedelta) -> str:
    """The trading day ``now_ns`` (UTC) belongs to: a day starts ``boundary`` past midnight UTC."""
    moment = datetime.fromtimestamp(now_ns // 1_000_000_000, tz=UTC) - boundary
    return moment.date().isoformat()


class SessionHandler(Protocol):
    """What the venue behind an acceptor hears: a session that logged on, each application message
    in sequence order (``throttled``: beyond the message rate, to be refused), a disconnect."""

    def on_logon(self, session: SessionState) -> None: ...

    def on_message(self, session: SessionState, message: FixMessage, throttled: bool) -> None: ...

    def on_disconnect(self, session: SessionState) -> None: ...


@dataclass
class SessionState:
    """One client's session on one port for one trading day; outlives its connections."""

    acceptor: FixAcceptor
    client: str
    day: str
    next_out: int = 1
    next_in: int = 1
    #: seq -> (MsgType, body, first SendingTime); administrative messages are stored as None
    sent: OrderedDict[int, tuple[str, list[tuple[int, str]], str] | None] = field(default_factory=OrderedDict)
    queued: deque[tuple[str, list[tuple[int, str]]]] = field(default_factory=lambda: deque(maxlen=QUEUED))
    conn: FixConnection | None = None

    @property
    def logged_on(self) -> bool:
        return self.conn is not None and self.conn.logged_on

    def send(self, msg_type: str, body: list[tuple[int, str]]) -> int:
        """Send an application message now (numbered and stored), or queue it while the client is
        away (order entry; market data is not queued: a logon sends a fresh snapshot). Returns
        its MsgSeqNum, 0 when queued or not sent."""
        conn = self.conn
        if conn is not None and conn.logged_on and not conn.closing:
            return conn.send_app(msg_type, body)
        if self.acceptor.queue_while_away:
            self.queued.append((msg_type, body))
        return 0

    def reset(self, day: str) -> None:
        self.day = day
        self.next_out = self.next_in = 1
        self.sent.clear()
        self.queued.clear()


class FixConnection:
    """One TCP connection: frames in, the session's answers out, its heartbeat timer."""

    def __init__(self, acceptor: FixAcceptor, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.acceptor = acceptor
        self.reader = reader
        self.writer = writer
        self.session: SessionState | None = None
        self.logged_on = False
        self.closing = False  # a Logout went out: nothing but its confirmation is awaited
        self.closed = False
        self.heartbeat_s = 0.0
        now = time.monotonic()
        self.last_recv = now
        self.last_sent = now
        self.test_sent_at: float | None = None
        self.logout_sent_at: float | None = None
        self.stalled_until = 0.0
        self.pending: list[bytes] = []
        self.held: dict[int, FixMessage] = {}
        self.resend_asked_to = 0  # the highest number a ResendRequest of ours has covered
        self.arrivals: deque[float] = deque()
        self.test_ids = 0

    # ---- output ------------------------------------------------------------------------
    def _header(self, seq: int, *extra: tuple[int, str]) -> list[tuple[int, str]]:
        assert self.session is not None
        return [(34, str(seq)), (49, self.acceptor.gateway), (52, utc_timestamp(self.acceptor.clock.now_ns())),
                (56, self.session.client), *extra]

    def write(self, frame: bytes) -> None:
        if self.closed:
            return
        self.last_sent = time.monotonic()
        if self.stalled_until > self.last_sent:
            self.pending.append(frame)
            return
        self.writer.write(frame)

    def send_admin(self, msg_type: str, body: list[tuple[int, str]]) -> None:
        session = self.session
        assert session is not None
        seq = session.next_out
        session.next_out += 1
        session.sent[seq] = None
        self._trim(session)
        self.write(encode(msg_type, self._header(seq), body))

    def send_app(self, msg_type: str, body: list[tuple[int, str]]) -> int:
        session = self.session
        assert session is not None
        seq = session.next_out
        session.next_out += 1
        header = self._header(seq)
        session.sent[seq] = (msg_type, body, header[2][1])
        self._trim(session)
        if self.acceptor.take_gap(msg_type, body):
            return seq  # numbered and stored, never sent: the client sees the gap and asks for it
        self.write(encode(msg_type, header, body))
        return seq

    @staticmethod
    def _trim(session: SessionState) -> None:
        while len(session.sent) > STORED:
            session.sent.popitem(last=False)

    def flush_pending(self) -> None:
        if self.pending and self.stalled_until <= time.monotonic() and not self.closed:
            frames, self.pending = self.pending, []
            self.writer.write(b"".join(frames))

    def logout(self, text: str) -> None:
        """Our Logout; the socket closes on the client's confirmation or after the timeout."""
        if self.closing or self.closed:
            return
        self.send_admin("5", [(58, text)])
        self.closing = True
        self.logout_sent_at = time.monotonic()

    def abort(self) -> None:
        """Close at once without a goodbye (a drop)."""
        if not self.closed:
            self.closed = True
            self.writer.transport.abort()
            self.acceptor.disconnected(self)  # now: a client reconnecting at once must find the session free

    def close(self) -> None:
        if not self.closed:
            self.flush_pending()
            self.closed = True
            self.writer.close()
            self.acceptor.disconnected(self)

    # ---- input -------------------------------------------------------------------------
    async def run(self) -> None:
        splitter = FrameSplitter()
        timer = asyncio.create_task(self._timer())
        try:
            while not self.closed:
                data = await self.reader.read(READ_SIZE)
                if not data:
                    break
                self.last_recv = time.monotonic()
                self.test_sent_at = None  # anything from the client shows the link is alive
                try:
                    for frame in splitter.feed(data):
                        self._guarded(frame)
                        if self.closed:
                            break
                except WireError as exc:
                    self.acceptor.count("garbled")
                    log.warning("midchains sandbox %s: %s; closing", self.acceptor.role, exc)
                    break
                await self.writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            timer.cancel()
            self.closed = True
            with contextlib.suppress(Exception):
                self.writer.transport.abort()
            self.acceptor.disconnected(self)

    async def _timer(self) -> None:
        acceptor = self.acceptor
        while not self.closed:
            await asyncio.sleep(acceptor.tick_s)
            now = time.monotonic()
            self.flush_pending()
            if self.logout_sent_at is not None:
                if now - self.logout_sent_at >= acceptor.logout_timeout_s:
                    acceptor.count("logout_timeouts")
                    self.close()
                continue
            interval = self.heartbeat_s
            if not self.logged_on or interval <= 0 or self.stalled_until > now:
                continue
            grace = max(acceptor.min_grace_s, interval * 0.2)
            if self.test_sent_at is not None:
                if now - self.test_sent_at >= interval + grace:
                    acceptor.count("test_request_timeouts")
                    log.warning("midchains sandbox %s: TestRequest unanswered; disconnecting", acceptor.role)
                    self.abort()
                    return
            elif now - self.last_recv >= interval + grace:
                self.test_ids += 1
                self.test_sent_at = now
                self.send_admin("1", [(112, f"TEST{self.test_ids}")])
            if now - self.last_sent >= interval:
                self.send_admin("0", [])

    def _guarded(self, frame: bytes) -> None:
        """One frame; a fault of the sandbox itself is logged and counted, and the session goes on
        (a test sees the counter, the client keeps its connection)."""
        try:
            self._frame(frame)
        except Exception:
            self.acceptor.count("internal_errors")
            log.exception("midchains sandbox %s: a frame could not be processed", self.acceptor.role)

    def _frame(self, frame: bytes) -> None:
        acceptor = self.acceptor
        try:
            message = decode(frame)
        except WireError as exc:
            acceptor.count("garbled")
            log.info("midchains sandbox %s: garbled frame ignored: %s", acceptor.role, exc)
            return
        if self.closing and message.msg_type == "5":
            self.close()  # the confirmation of our Logout: nothing more to number
            return
        if not self.logged_on:
            if self.session is None:
                self._logon(message)
            return
        session = self.session
        assert session is not None
        if message.get(49) != session.client or message.get(56) != acceptor.gateway:
            self._reject(message, "9", "CompID problem")
            self.logout("CompID problem")
            return
        seq_text = message.get(34, "")
        if not seq_text or not seq_text.isdigit():
            self._reject(message, "1", "MsgSeqNum (34) missing or not a number")
            return
        if 52 not in message:
            self._reject(message, "1", "SendingTime (52) missing")
            return
        seq = int(seq_text)
        if message.msg_type == "4" and message.get(123) != "Y":
            self._sequence_reset(message, seq)
            return
        if seq < session.next_in:
            if message.get(43) == "Y":
                return  # a duplicate we already have
            acceptor.count("seq_too_low")
            self.logout(f"MsgSeqNum too low, expecting {session.next_in} but received {seq}")
            return
        if seq > session.next_in:
            if message.msg_type == "5":
                self._process(message, seq)
                return
            if len(self.held) >= HELD:
                self.logout("too many messages waiting for a resend")
                return
            self.held[seq] = message
            if self.resend_asked_to < session.next_in:
                self._ask_resend(session.next_in)
            return
        self._process(message, seq)
        while session.next_in in self.held and not self.closed:
            self._process(self.held.pop(session.next_in), session.next_in)

    def _ask_resend(self, begin: int) -> None:
        acceptor = self.acceptor
        acceptor.count("resend_requests_sent")
        self.resend_asked_to = max(self.held, default=begin)
        self.send_admin("2", [(7, str(begin)), (16, "0")])

    def _process(self, message: FixMessage, seq: int) -> None:
        session = self.session
        assert session is not None
        session.next_in = max(session.next_in, seq + 1)
        kind = message.msg_type
        acceptor = self.acceptor
        if kind == "0":
            return
        if kind == "1":
            acceptor.answer_test_request(self, message.get(112, ""))
        elif kind == "2":
            self._resend(message)
        elif kind == "3":
            acceptor.count("rejects_received")
        elif kind == "4":  # GapFill
            new_seq = message.get(36, "")
            if new_seq.isdigit() and int(new_seq) > seq:
                session.next_in = int(new_seq)
            else:
                self._reject(message, "5", "NewSeqNo (36) must exceed the GapFill's MsgSeqNum")
        elif kind == "5":
            if not self.closing:
                self.send_admin("5", [])
            self.close()
        elif kind == "A":
            self._reject(message, "5", "already logged on")
        else:
            acceptor.application(self, message)

    def _sequence_reset(self, message: FixMessage, seq: int) -> None:
        session = self.session
        assert session is not None
        new_seq = message.get(36, "")
        if not new_seq.isdigit():
            self._reject(message, "1", "NewSeqNo (36) missing")
        elif int(new_seq) < session.next_in:
            self._reject(message, "5", f"NewSeqNo {new_seq} is below the expected {session.next_in}")
        else:
            session.next_in = int(new_seq)
            self.held = {k: v for k, v in self.held.items() if k >= session.next_in}
            while session.next_in in self.held and not self.closed:
                self._process(self.held.pop(session.next_in), session.next_in)

    def _reject(self, message: FixMessage, reason: str, text: str) -> None:
        self.acceptor.count("session_rejects")
        body = [(45, message.get(34) or "0"), (372, message.msg_type or "?"), (373, reason), (58, text)]
        self.send_admin("3", body)

    def _resend(self, message: FixMessage) -> None:
        session = self.session
        assert session is not None
        begin_text, end_text = message.get(7, ""), message.get(16, "")
        if not begin_text.isdigit() or not end_text.isdigit():
            self._reject(message, "1", "BeginSeqNo (7) and EndSeqNo (16) are required")
            return
        last = session.next_out - 1
        begin = max(1, int(begin_text))
        end = int(end_text) or last
        end = min(end, last)
        self.acceptor.count("resend_requests_answered")
        gap_start: int | None = None
        for seq in range(begin, end + 1):
            stored = session.sent.get(seq)
            if stored is None:
                if gap_start is None:
                    gap_start = seq
                continue
            if gap_start is not None:
                self._gap_fill(gap_start, seq)
                gap_start = None
            msg_type, body, first_time = stored
            self.write(encode(msg_type, self._header(seq, (43, "Y"), (122, first_time)), body))
            self.acceptor.count("resent")
        if gap_start is not None:
            self._gap_fill(gap_start, end + 1)

    def _gap_fill(self, seq: int, new_seq: int) -> None:
        self.write(encode("4", self._header(seq, (43, "Y")), [(123, "Y"), (36, str(new_seq))]))

    # ---- logon -------------------------------------------------------------------------
    def _logon(self, message: FixMessage) -> None:
        acceptor = self.acceptor
        if message.msg_type != "A":
            acceptor.count("refused_logons")
            log.warning("midchains sandbox %s: first message is not a Logon; closing", acceptor.role)
            self.close()
            return
        client = message.get(49, "")
        problem = ""
        if message.get(56) != acceptor.gateway:
            problem = "invalid TargetCompID"
        elif client not in acceptor.clients:
            problem = "unknown SenderCompID"  # the value is a credential: never echoed, never logged
        heartbeat = message.get(108, "")
        if not problem and not heartbeat.isdigit():
            problem = "HeartBtInt (108) is required"
        seq_text = message.get(34, "")
        if not problem and not seq_text.isdigit():
            problem = "MsgSeqNum (34) is required"
        if problem or not client:
            self._refuse(client or "UNKNOWN", problem or "SenderCompID (49) is required")
            return
        session = acceptor.session_of(client)
        if session.logged_on:
            self._refuse(client, "session already logged on", session)
            return
        seq = int(seq_text)
        if seq < session.next_in:
            acceptor.count("seq_too_low")
            self._refuse(client, f"MsgSeqNum too low, expecting {session.next_in} but received {seq}", session)
            return
        self.session = session
        session.conn = self
        self.heartbeat_s = float(heartbeat)
        self.logged_on = True
        self.send_admin("A", [(98, "0"), (108, heartbeat)])
        if seq > session.next_in:
            self.held[seq] = FixMessage([(35, "0")])  # the Logon itself, as a no-op in its place
            self._ask_resend(session.next_in)
        else:
            session.next_in = seq + 1
        acceptor.count("logons")
        log.info("midchains sandbox %s: session logged on (HeartBtInt %s)", acceptor.role, heartbeat)
        while session.queued and not self.closed:
            msg_type, body = session.queued.popleft()
            self.send_app(msg_type, body)
            acceptor.count("queued_delivered")
        acceptor.handler.on_logon(session)

    def _refuse(self, client: str, text: str, session: SessionState | None = None) -> None:
        """A Logout naming the problem, outside any session's numbering unless it is a known one's."""
        acceptor = self.acceptor
        acceptor.count("refused_logons")
        log.warning("midchains sandbox %s: logon refused: %s", acceptor.role, text)
        seq = session.next_out if session is not None and not session.logged_on else 1
        if session is not None and not session.logged_on:
            session.next_out += 1
            session.sent[seq] = None
        header = [(34, str(seq)), (49, acceptor.gateway), (52, utc_timestamp(acceptor.clock.now_ns())), (56, client)]
        self.session = SessionState(acceptor, client, "")  # a placeholder: never logged on
        self.write(encode("5", header, [(58, text)]))
        self.closing = True
        self.logout_sent_at = time.monotonic()


@dataclass
class _TestRequestRule:
    count: int
    delay_s: float


class FixAcceptor:
    """One gateway port: its sessions by SenderCompID, the listening server, its counters."""

    def __init__(
        self,
        role: str,
        handler: SessionHandler,
        *,
        gateway: str,
        clients: set[str],
        clock: Clock,
        counters: dict[str, int],
        day_boundary: timedelta,
        queue_while_away: bool,
        message_rate: int = 10,
        logout_timeout_s: float = 2.0,
        min_grace_s: float = 0.5,
        tick_s: float = 0.05,
    ) -> None:
        self.role = role
        self.handler = handler
        self.gateway = gateway
        self.clients = clients
        self.clock = clock
        self.counters = counters
        self.day_boundary = day_boundary
        self.queue_while_away = queue_while_away
        self.message_rate = message_rate
        self.logout_timeout_s = logout_timeout_s
        self.min_grace_s = min_grace_s
        self.tick_s = tick_s
        self.sessions: dict[str, SessionState] = {}
        self.connections: set[FixConnection] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self.server: asyncio.Server | None = None
        self.port = 0
        #: faults: messages to lose (count, filter), TestRequests to leave unanswered or answer late
        self._gaps: list[list[Any]] = []
        self._test_rules: deque[_TestRequestRule] = deque()
        #: (venue-clock seconds, SenderCompID, MsgType) of every application message, for tests
        self.arrivals: deque[tuple[float, str, str]] = deque(maxlen=100_000)

    def count(self, name: str, by: int = 1) -> None:
        key = f"{self.role}.{name}"
        self.counters[key] = self.counters.get(key, 0) + by

    async def start(self, host: str, port: int, tls: ssl.SSLContext | None = None) -> None:
        self.server = await asyncio.start_server(self._accept, host, port, ssl=tls)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        for conn in list(self.connections):
            conn.abort()
        if self._tasks:  # let each connection's task see its socket closed and end
            await asyncio.wait(list(self._tasks), timeout=2)
        if self.server is not None:
            self.server.close()
            with contextlib.suppress(Exception):
                await self.server.wait_closed()
            self.server = None

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = FixConnection(self, reader, writer)
        self.connections.add(conn)
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            await conn.run()
        finally:
            self._tasks.discard(task)  # type: ignore[arg-type]

    def disconnected(self, conn: FixConnection) -> None:
        self.connections.discard(conn)
        session = conn.session
        if session is not None and session.conn is conn:
            session.conn = None
            self.handler.on_disconnect(session)

    def session_of(self, client: str) -> SessionState:
        """The client's session for today (a new trading day starts it at 1 both ways)."""
        today = trading_day(self.clock.now_ns(), self.day_boundary)
        session = self.sessions.get(client)
        if session is None:
            session = self.sessions[client] = SessionState(self, client, today)
        elif session.day != today and not session.logged_on:
            session.reset(today)
        return session

    def check_day(self) -> bool:
        """Apply the daily reset if the trading day changed; True when it did for some session."""
        today = trading_day(self.clock.now_ns(), self.day_boundary)
        changed = False
        for session in self.sessions.values():
            if session.day != today:
                self.reset_session(session, today)
                changed = True
        return changed

    def reset_session(self, session: SessionState, day: str) -> None:
        conn = session.conn
        if conn is not None and conn.logged_on:
            conn.logout("Session closed")
            conn.logout_sent_at = time.monotonic() - self.logout_timeout_s + 0.2  # a short wait, then closed
            # what the old connection still receives must not number the new day's session
            conn.session = SessionState(self, session.client, "")
            session.conn = None
            self.handler.on_disconnect(session)
        session.reset(day)
        self.count("daily_resets")

    # ---- application messages ------------------------------------------------------------
    def application(self, conn: FixConnection, message: FixMessage) -> None:
        session = conn.session
        assert session is not None
        now = self.clock.now_ns() / 1e9  # the venue's clock: its limits count venue seconds (--speed)
        arrivals = conn.arrivals
        while arrivals and now - arrivals[0] >= 1.0:
            arrivals.popleft()
        throttled = len(arrivals) >= self.message_rate
        arrivals.append(now)
        self.arrivals.append((now, session.client, message.msg_type))
        if throttled:
            self.count("message_rate_violations")
        self.handler.on_message(session, message, throttled)

    # ---- faults ----------------------------------------------------------------------------
    def lose(self, count: int, wanted: Callable[[str, list[tuple[int, str]]], bool] | None = None) -> None:
        """The next ``count`` application messages (``wanted`` ones) are numbered but never sent."""
        self._gaps.append([count, wanted])

    def take_gap(self, msg_type: str, body: list[tuple[int, str]]) -> bool:
        for entry in self._gaps:
            if entry[0] > 0 and (entry[1] is None or entry[1](msg_type, body)):
                entry[0] -= 1
                if entry[0] == 0:
                    self._gaps.remove(entry)
                self.count("gap_lost")
                return True
        return False

    def stale_test_requests(self, count: int, delay_s: float) -> None:
        """The next ``count`` TestRequests are answered ``delay_s`` late (0: never)."""
        self._test_rules.append(_TestRequestRule(count, delay_s))

    def answer_test_request(self, conn: FixConnection, test_id: str) -> None:
        rule = self._test_rules[0] if self._test_rules else None
        if rule is None:
            conn.send_admin("0", [(112, test_id)] if test_id else [])
            return
        rule.count -= 1
        if rule.count <= 0:
            self._test_rules.popleft()
        if rule.delay_s <= 0:
            self.count("test_requests_unanswered")
            return
        self.count("test_requests_late")

        def late() -> None:
            if conn.logged_on and not conn.closed:
                conn.send_admin("0", [(112, test_id)] if test_id else [])

        asyncio.get_running_loop().call_later(rule.delay_s, late)

    def stall(self, seconds: float) -> int:
        until = time.monotonic() + seconds
        for conn in self.connections:
            conn.stalled_until = until
        return len(self.connections)

    def drop(self) -> int:
        conns = list(self.connections)
        for conn in conns:
            conn.abort()
        return len(conns)

    def logout_all(self, text: str) -> int:
        conns = [conn for conn in self.connections if conn.logged_on and not conn.closing]
        for conn in conns:
            conn.logout(text)
        return len(conns)

    def logged_on_sessions(self) -> list[SessionState]:
        return [s for s in self.sessions.values() if s.logged_on]
