"""The MidChains FIX 4.2 session layer as a sans-I/O state machine: bytes and time in, actions out.

No sockets, no tasks, no clock of its own: the caller feeds what it read (:meth:`FixSession.receive`),
tells it the time on every call (``now_ns``, UTC epoch nanoseconds) and calls :meth:`FixSession.tick`
by :meth:`FixSession.next_deadline`; the session answers with :class:`Send`, :class:`Deliver` and
:class:`Disconnect` actions for the transport and the adapter to carry out. So every transition is a
plain function call in a test, with the document's own field values, and the transport (TLS, anyio)
stays a thin loop.

What the document says (001, "Login (A)", "Logout (5)", "Heartbeat (0)"; VENUES.md 2.5) and what
the FIX 4.2 standard adds where the document relies on it without listing it (ResendRequest,
SequenceReset, TestRequest, Reject):

- Logon ``A`` with ``98=0`` and ``108`` (HeartBtInt); no ResetSeqNumFlag (141 is not documented).
- Heartbeat ``0`` when ``108`` seconds pass with nothing sent; a TestRequest ``1`` is answered with a
  Heartbeat carrying its ``112``; after ``108`` s + grace of silence we send our own TestRequest and
  disconnect when it is not answered within another ``108`` s + grace.
- An inbound gap is answered with a ResendRequest ``2`` (``7`` = expected, ``16`` = 0); later
  messages wait in a queue (bounded) and are processed, in order, once the gap fills. A gap that
  has not shrunk for ``108`` s + grace is asked for again.
- A ResendRequest for our messages replays the stored application messages with ``43=Y`` and ``122``
  (their first SendingTime), and covers administrative ones with SequenceReset-GapFill (``123=Y``).
- SequenceReset-Reset (``4`` without ``123=Y``) moves the expected number whatever its own ``34``.
- A malformed administrative message gets a session Reject ``3`` (``45``, ``371``, ``373``, ``58``).
- An inbound ``34`` lower than expected without PossDup (``43=Y``) ends the session as the
  document's gateway does: a Logout naming the numbers, then a disconnect when the confirming Logout
  does not come within ``logout_timeout``.
- Logout ``5`` both ways: a Logout from the gateway is confirmed and the connection closed; ours
  waits for the gateway's confirmation, at most ``logout_timeout``.
- The daily reset at 01:00 UTC (MID-13): a new trading day starts both sides at 1 at the next logon;
  a session still logged on when the day ends logs out.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum

from adapters.midchains.codec import FixCodecError, FixMessage, FrameReader, decode, encode_message
from adapters.midchains.store import DAY_BOUNDARY, SequenceStore, trading_day

__all__ = [
    "ADMIN_TYPES",
    "Deliver",
    "Disconnect",
    "FixSession",
    "Send",
    "SessionConfig",
    "SessionState",
    "Skipped",
    "sending_time",
]

NS = 1_000_000_000
# Administrative message types: never resent, always gap-filled (FIX 4.2 vol. 2, "Resending").
ADMIN_TYPES = frozenset({"0", "1", "2", "3", "4", "5", "A"})
# SessionRejectReason (373) values used here (FIX 4.2).
REQUIRED_TAG_MISSING = "1"
VALUE_INCORRECT = "5"
INCORRECT_DATA_FORMAT = "6"
COMP_ID_PROBLEM = "9"
# The largest sequence number taken from the wire (FIX SeqNum is an int; QuickFIX stores 32 bits):
# a bigger one is refused like a non-number instead of reaching int() or SQLite's 64-bit INTEGER.
MAX_SEQ_NUM = 2**31 - 1


class SessionState(Enum):
    DISCONNECTED = "disconnected"
    LOGON_SENT = "logon_sent"
    ACTIVE = "active"
    LOGOUT_SENT = "logout_sent"


@dataclass(frozen=True, slots=True)
class Send:
    """Bytes to write to the connection, in order."""

    data: bytes
    message: FixMessage


@dataclass(frozen=True, slots=True)
class Deliver:
    """An inbound message for the adapter, in sequence order: application messages and the
    gateway's session Rejects (``3``) of our messages."""

    message: FixMessage


@dataclass(frozen=True, slots=True)
class Skipped:
    """Inbound numbers ``first``..``last`` were passed over by the gateway's SequenceReset (GapFill
    or Reset) and will never arrive. FIX lets a sender gap-fill what it deems stale, application
    messages included, so the session cannot tell a skipped Heartbeat from a skipped
    ExecutionReport or book update: the adapter decides (market data: rebuild the book; order
    entry: settle the open orders another way)."""

    first: int
    last: int
    reason: str


@dataclass(frozen=True, slots=True)
class Disconnect:
    """Close the connection. ``error`` is False for a clean logout."""

    reason: str
    error: bool = True


Action = Send | Deliver | Skipped | Disconnect


@dataclass(frozen=True, slots=True)
class SessionConfig:
    """One FIX session's fixed settings. ``heartbeat_s`` is what we send in ``108`` (the document's
    examples use 60); ``grace_s`` is the slack before silence counts (FIX 4.2 suggests "some
    reasonable transmission time", default a fifth of the interval)."""

    sender_comp_id: str
    target_comp_id: str
    heartbeat_s: int = 60
    grace_s: int | None = None
    logon_timeout_s: int = 10
    logout_timeout_s: int = 10
    day_boundary: timedelta = DAY_BOUNDARY
    # Messages held beyond an unfilled gap before the session gives up (bounds the memory a
    # counterpart that never resends can make us hold).
    max_queued: int = 10_000
    # ... and their bytes: 10,000 frames of up to 64 KiB each would otherwise be 640 MiB.
    max_queued_bytes: int = 16 * 1024 * 1024

    @property
    def heartbeat_ns(self) -> int:
        return self.heartbeat_s * NS

    @property
    def silence_ns(self) -> int:
        """Silence after which we send a TestRequest (and, again, after which we give up on it)."""
        grace = self.grace_s if self.grace_s is not None else max(1, self.heartbeat_s // 5)
        return (self.heartbeat_s + grace) * NS


def _seq_num(text: str | None) -> int | None:
    """A sequence number field (34, 7, 16, 36) as an int, None when it is not one: ASCII digits only
    (``str.isdigit`` also takes '²', a latin-1 byte, which ``int`` refuses) and at most
    :data:`MAX_SEQ_NUM`, so neither ``int`` (4,300 digits at most) nor SQLite (64-bit) can raise."""
    if not text or not text.isascii() or not text.isdigit() or len(text) > len(str(MAX_SEQ_NUM)):
        return None
    value = int(text)
    return value if value <= MAX_SEQ_NUM else None


def _size(message: FixMessage) -> int:
    """Roughly the bytes ``message`` holds: its values plus a tag and separators per field."""
    return sum(len(value) + 8 for _, value in message.fields)


def sending_time(now_ns: int) -> str:
    """FIX UTCTimestamp with milliseconds, the document's ``52=20210714-01:01:10.569``."""
    moment = datetime.fromtimestamp(now_ns // NS, tz=UTC)
    return f"{moment:%Y%m%d-%H:%M:%S}.{(now_ns // 1_000_000) % 1000:03d}"


class FixSession:
    """One FIX session (initiator side), driven by its caller. See the module docstring."""

    def __init__(self, config: SessionConfig, store: SequenceStore) -> None:
        self.config = config
        self.store = store
        self.state = SessionState.DISCONNECTED
        self._reader = FrameReader()
        self._last_sent_ns = 0
        self._last_received_ns = 0
        self._deadline_ns: int | None = None  # logon or logout answer due by then
        self._test_request_id: str | None = None
        self._test_request_ns = 0
        self._resend_until: int | None = None  # inbound gap being filled, up to this 34
        self._resend_progress_ns = 0  # when that gap was asked for or last shrank
        self._queue: dict[int, FixMessage] = {}  # inbound messages beyond a gap, by 34
        self._queued_bytes = 0  # their field bytes (see _size)
        self._handled_early: set[int] = set()  # queued 34s whose admin part was already handled
        self._day = ""

    @property
    def disconnected(self) -> bool:
        """True once the session told its caller to close (or was told the connection closed)."""
        return self.state is SessionState.DISCONNECTED

    @property
    def test_request_pending(self) -> str | None:
        """The TestReqID (112) of our TestRequest not yet answered by a Heartbeat, if any."""
        return self._test_request_id

    # -- caller entry points -------------------------------------------------------------------

    def connect(self, now_ns: int, logon_fields: Sequence[tuple[int, str]] = ()) -> list[Action]:
        """The connection is up: open the trading day (a new one starts both sides at 1) and log on.
        ``logon_fields`` follow 98 and 108 (an optional Password; Logons are never stored)."""
        self._reader = FrameReader()
        self._queue.clear()
        self._queued_bytes = 0
        self._handled_early.clear()
        self._resend_until = None
        self._test_request_id = None
        self._day = trading_day(now_ns, self.config.day_boundary)
        self.store.open_day(self._day)
        self._last_received_ns = now_ns
        self.state = SessionState.LOGON_SENT
        self._deadline_ns = now_ns + self.config.logon_timeout_s * NS
        return [self._send("A", [(98, "0"), (108, str(self.config.heartbeat_s)), *logon_fields], now_ns)]

    def receive(self, data: bytes, now_ns: int) -> list[Action]:
        """Bytes read from the connection (any split). A broken stream ends the connection."""
        if self.state is SessionState.DISCONNECTED:
            return []
        actions: list[Action] = []
        try:
            self._reader.feed(data)
            while (message := self._reader.next_message()) is not None:
                self._last_received_ns = now_ns
                actions += self._on_message(message, now_ns)
                if self.disconnected:
                    break
        except FixCodecError as exc:
            actions += self._drop(f"unreadable FIX stream: {exc}")
        return actions

    def commit_inbound(self) -> None:
        """The messages :meth:`receive` delivered so far have been handled (the adapter has them):
        their sequence numbers become durable. Until then a restart asks the gateway for them again."""
        self.store.commit_inbound()

    def tick(self, now_ns: int) -> list[Action]:
        """Timers: heartbeat, TestRequest, its expiry, logon/logout answers due, the day's end."""
        if self.state is SessionState.DISCONNECTED:
            return []
        if self._deadline_ns is not None and now_ns >= self._deadline_ns:
            what = "Logon" if self.state is SessionState.LOGON_SENT else "confirming Logout"
            return self._drop(f"no {what} from {self.config.target_comp_id} in time")
        if self.state is not SessionState.ACTIVE:
            return []
        if trading_day(now_ns, self.config.day_boundary) != self._day:
            return self.logout(now_ns, "trading day ended (sequence reset at the day boundary)")
        actions: list[Action] = []
        if self._resend_until is not None and now_ns - self._resend_progress_ns >= self.config.silence_ns:
            # the gap has not shrunk for 108 s + grace: our ResendRequest (or its answer) was lost
            actions.append(self._send("2", [(7, str(self.store.next_in)), (16, "0")], now_ns))
            self._resend_progress_ns = now_ns
        if self._test_request_id is not None:
            if now_ns - self._test_request_ns >= self.config.silence_ns:
                return self._drop(f"TestRequest {self._test_request_id} unanswered")
        elif now_ns - self._last_received_ns >= self.config.silence_ns:
            self._test_request_id = f"TEST-{self.store.next_out}-{now_ns // NS}"
            self._test_request_ns = now_ns
            actions.append(self._send("1", [(112, self._test_request_id)], now_ns))
        if now_ns - self._last_sent_ns >= self.config.heartbeat_ns:
            actions.append(self._send("0", [], now_ns))
        return actions

    def next_deadline(self) -> int | None:
        """When :meth:`tick` next has something to do (None: nothing until more bytes arrive)."""
        if self.state is SessionState.DISCONNECTED:
            return None
        if self._deadline_ns is not None:
            return self._deadline_ns
        if self.state is not SessionState.ACTIVE:
            return None
        silence = (
            self._test_request_ns if self._test_request_id is not None else self._last_received_ns
        ) + self.config.silence_ns
        deadlines = [self._last_sent_ns + self.config.heartbeat_ns, silence, self._day_end_ns()]
        if self._resend_until is not None:
            deadlines.append(self._resend_progress_ns + self.config.silence_ns)
        return min(deadlines)

    def send_application(self, msg_type: str, body: Iterable[tuple[int, str]], now_ns: int) -> list[Action]:
        """An application message (``D``, ``F``, ``G`` ...) with the next sequence number, kept for resend."""
        if msg_type in ADMIN_TYPES:
            raise ValueError(f"{msg_type!r} is an administrative message; the session sends those itself")
        if self.state is not SessionState.ACTIVE:
            raise ConnectionError(f"FIX session is {self.state.value}, not logged on")
        if now_ns >= self._day_end_ns():
            # the gateway numbers from 1 again: yesterday's next 34 would read as a gap there, and
            # its ResendRequest would replay yesterday's orders; tick() logs out at the boundary
            raise ConnectionError("FIX trading day ended (sequence reset at the day boundary); not sent")
        return [self._send(msg_type, list(body), now_ns)]

    @property
    def catching_up(self) -> bool:
        """True while an inbound gap is being filled (a ResendRequest out, later messages held)."""
        return self._resend_until is not None or bool(self._queue)

    def probe(self, now_ns: int) -> list[Action]:
        """A TestRequest now (FIX 4.2: any side may send one), its TestReqID in
        :attr:`test_request_pending` until the gateway's Heartbeat echoes it. The gateway answers in
        sequence, so the echo arrives after everything it queued before: the adapter's barrier for
        "the messages held while we were away are all in" (001, Logout (5)). Unanswered, it ends the
        connection like the silence TestRequest does."""
        if self.state is not SessionState.ACTIVE:
            raise ConnectionError(f"FIX session is {self.state.value}, not logged on")
        if self._test_request_id is not None:
            return []  # one outstanding already: its echo is the same barrier
        self._test_request_id = f"SYNC-{self.store.next_out}-{now_ns // NS}"
        self._test_request_ns = now_ns
        return [self._send("1", [(112, self._test_request_id)], now_ns)]

    def logout(self, now_ns: int, text: str | None = None) -> list[Action]:
        """Log out and wait (at most ``logout_timeout_s``) for the gateway's confirming Logout."""
        if self.state not in (SessionState.ACTIVE, SessionState.LOGON_SENT):
            return []
        self.state = SessionState.LOGOUT_SENT
        self._deadline_ns = now_ns + self.config.logout_timeout_s * NS
        return [self._send("5", [(58, text)] if text else [], now_ns)]

    def connection_lost(self) -> None:
        """The transport closed; sequence numbers stay in the store for the next logon."""
        self.state = SessionState.DISCONNECTED
        self._deadline_ns = None

    # -- inbound -------------------------------------------------------------------------------

    def _on_message(self, message: FixMessage, now_ns: int) -> list[Action]:
        msg_type = message.msg_type
        seq = _seq_num(message.get(34))
        if seq is None:
            return self._fail(f"MsgSeqNum (34) missing or not a number: {(message.get(34) or '')[:20]!r}", now_ns)
        sender, target = message.get(49), message.get(56)
        if sender != self.config.target_comp_id or target != self.config.sender_comp_id:
            rejected = self._reject(seq, COMP_ID_PROBLEM, None, f"CompID problem: 49={sender} 56={target}", now_ns)
            return [rejected, *self._fail("CompID problem", now_ns)]
        if self.state is SessionState.LOGON_SENT and msg_type != "A":
            if msg_type == "5":
                return self._on_logout(message, now_ns)
            return self._fail(f"first message is {msg_type!r}, not a Logon", now_ns)
        if msg_type == "4" and message.get(123) != "Y":
            return self._on_sequence_reset(message, seq, now_ns)
        expected = self.store.next_in
        if seq < expected:
            if message.get(43) == "Y":
                return []  # a duplicate we already processed
            return self._too_low(seq, expected, now_ns)
        if seq > expected:
            return self._on_gap(message, seq, expected, now_ns)
        self._resend_progress_ns = now_ns
        actions = self._process(message, seq, now_ns)
        return actions + self._drain(now_ns)

    def _process(self, message: FixMessage, seq: int, now_ns: int) -> list[Action]:
        """``message`` is the next in sequence: handle it and advance the expected number."""
        msg_type = message.msg_type
        if seq in self._handled_early:
            self._handled_early.discard(seq)
            self.store.set_next_in(seq + 1)
            return []
        if msg_type == "4":  # gap fill in sequence
            return self._on_gap_fill(message, seq, now_ns)
        self.store.set_next_in(seq + 1)
        if message.get(52) is None:  # FIX 4.2: a required header field missing: Reject (373=1), not processed
            return [self._reject(seq, REQUIRED_TAG_MISSING, 52, "SendingTime (52) missing", now_ns)]
        if msg_type == "A":
            return self._on_logon(message, now_ns)
        if msg_type == "0":
            if self._test_request_id is not None and message.get(112) == self._test_request_id:
                self._test_request_id = None
            return []
        if msg_type == "1":
            test_id = message.get(112)
            if test_id is None:
                return [self._reject(seq, REQUIRED_TAG_MISSING, 112, "TestReqID (112) missing", now_ns)]
            return [self._send("0", [(112, test_id)], now_ns)]
        if msg_type == "2":
            return self._on_resend_request(message, seq, now_ns)
        if msg_type == "5":
            return self._on_logout(message, now_ns)
        return [Deliver(message)]  # application messages, and "3" (the gateway rejects one of ours)

    def _drain(self, now_ns: int) -> list[Action]:
        """Process queued messages that are now in sequence; forget those a gap fill skipped."""
        actions: list[Action] = []
        while self._queue and not self.disconnected:
            expected = self.store.next_in
            for seq in [seq for seq in self._queue if seq < expected]:
                self._queued_bytes -= _size(self._queue.pop(seq))
                self._handled_early.discard(seq)
            if expected not in self._queue:
                break
            message = self._queue.pop(expected)
            self._queued_bytes -= _size(message)
            actions += self._process(message, expected, now_ns)
        if self._resend_until is not None and self.store.next_in > self._resend_until:
            self._resend_until = None
        return actions

    def _on_gap(self, message: FixMessage, seq: int, expected: int, now_ns: int) -> list[Action]:
        """``seq`` is beyond what we expect: queue it and ask once for the missing range. A Logon,
        a ResendRequest and a Logout are acted on now (FIX 4.2: respond before filling the gap)."""
        actions: list[Action] = []
        if len(self._queue) >= self.config.max_queued or self._queued_bytes >= self.config.max_queued_bytes:
            held = f"{len(self._queue)} later messages ({self._queued_bytes} bytes)"
            return self._fail(f"gap from {expected} not filled after {held}", now_ns)
        if seq in self._queue:
            self._queued_bytes -= _size(self._queue[seq])
        self._queue[seq] = message
        self._queued_bytes += _size(message)
        msg_type = message.msg_type
        if msg_type in ("A", "2"):
            self._handled_early.add(seq)
            actions += self._on_logon(message, now_ns) if msg_type == "A" else self._on_resend_request(
                message, seq, now_ns
            )
            if self.disconnected:  # a Logon we refused: no ResendRequest after the Logout
                return actions
        elif msg_type == "5":
            return self._on_logout(message, now_ns)
        elif msg_type == "0" and self._test_request_id is not None and message.get(112) == self._test_request_id:
            self._test_request_id = None  # the link is alive: the answer must not wait for the gap
        if self._resend_until is None or seq > self._resend_until:
            if self._resend_until is None:
                actions.append(self._send("2", [(7, str(expected)), (16, "0")], now_ns))
                self._resend_progress_ns = now_ns
            self._resend_until = seq
        return actions

    def _on_logon(self, message: FixMessage, now_ns: int) -> list[Action]:
        if self.state is not SessionState.LOGON_SENT:
            return []  # a Logon again (a resent one, or the gateway's after a gap): nothing to do
        if message.get(108) is None:
            return self._fail("Logon without HeartBtInt (108)", now_ns)
        self.state = SessionState.ACTIVE
        self._deadline_ns = None
        return []

    def _on_logout(self, message: FixMessage, now_ns: int) -> list[Action]:
        text = message.get(58) or ""
        if self.state is SessionState.LOGOUT_SENT:
            self.connection_lost()
            return [Disconnect(f"logged out{': ' + text if text else ''}", error=False)]
        confirm = self._send("5", [], now_ns)
        self.connection_lost()
        return [confirm, Disconnect(f"{self.config.target_comp_id} logged out: {text or 'no reason given'}")]

    def _on_resend_request(self, message: FixMessage, seq: int, now_ns: int) -> list[Action]:
        begin, end = _seq_num(message.get(7)), _seq_num(message.get(16))
        if begin is None:
            return [self._bad_seq_field(message, seq, 7, "BeginSeqNo", now_ns)]
        if end is None:
            return [self._bad_seq_field(message, seq, 16, "EndSeqNo", now_ns)]
        last = self.store.next_out - 1
        end = last if end == 0 or end > last else end
        return self._replay(max(begin, 1), end, now_ns)

    def _on_gap_fill(self, message: FixMessage, seq: int, now_ns: int) -> list[Action]:
        new_seq = _seq_num(message.get(36))
        if new_seq is None:
            self.store.set_next_in(seq + 1)
            return [self._bad_seq_field(message, seq, 36, "NewSeqNo", now_ns)]
        if new_seq <= seq:
            self.store.set_next_in(seq + 1)
            return [self._reject(seq, VALUE_INCORRECT, 36, f"NewSeqNo {new_seq} does not move past {seq}", now_ns)]
        self.store.set_next_in(new_seq)
        return [Skipped(seq, new_seq - 1, f"SequenceReset-GapFill {seq} to {new_seq}")]

    def _on_sequence_reset(self, message: FixMessage, seq: int, now_ns: int) -> list[Action]:
        """SequenceReset-Reset: the expected number becomes ``36`` whatever this message's ``34``
        (FIX 4.2); lowering it is refused with a Reject."""
        new_seq = _seq_num(message.get(36))
        if new_seq is None:
            return [self._bad_seq_field(message, seq, 36, "NewSeqNo", now_ns)]
        expected = self.store.next_in
        if new_seq < expected:
            return [self._reject(seq, VALUE_INCORRECT, 36, f"NewSeqNo {new_seq} below {expected}", now_ns)]
        self.store.set_next_in(new_seq)
        skipped: list[Action] = [Skipped(expected, new_seq - 1, f"SequenceReset-Reset to {new_seq}")] if (
            new_seq > expected) else []
        return skipped + self._drain(now_ns)

    def _too_low(self, seq: int, expected: int, now_ns: int) -> list[Action]:
        """The document's gateway answers a too-low Logon 34 with a Logout, waits for the confirming
        Logout, and disconnects if none comes: we do the same for any too-low 34 without PossDup."""
        return self.logout(now_ns, f"MsgSeqNum too low, expecting {expected} but received {seq}")

    # -- outbound ------------------------------------------------------------------------------

    def _send(self, msg_type: str, body: list[tuple[int, str]], now_ns: int) -> Send:
        seq = self.store.next_out
        frame, message = encode_message(msg_type, self._header(seq, now_ns), body)
        self.store.record_sent(seq, None if msg_type in ADMIN_TYPES else frame)
        self._last_sent_ns = now_ns
        return Send(frame, message)

    def _header(self, seq: int, now_ns: int) -> list[tuple[int, str]]:
        return [
            (34, str(seq)),
            (49, self.config.sender_comp_id),
            (52, sending_time(now_ns)),
            (56, self.config.target_comp_id),
        ]

    def _replay(self, begin: int, end: int, now_ns: int) -> list[Action]:
        """Our messages ``begin..end`` again: stored application messages with ``43=Y`` and ``122``,
        every run of administrative (or no longer stored) numbers as one GapFill."""
        kept = self.store.sent_frames(begin, end)
        actions: list[Action] = []
        gap_start: int | None = None
        for seq in range(begin, end + 1):
            frame = kept.get(seq)
            if frame is None:
                gap_start = seq if gap_start is None else gap_start
                continue
            if gap_start is not None:
                actions.append(self._gap_fill(gap_start, seq, now_ns))
                gap_start = None
            original = decode(frame)
            header = [
                (34, str(seq)),
                (43, "Y"),
                (49, self.config.sender_comp_id),
                (52, sending_time(now_ns)),
                (56, self.config.target_comp_id),
                (122, original.get(52) or sending_time(now_ns)),
            ]
            actions.append(Send(*encode_message(original.msg_type, header, original.body())))
        if gap_start is not None:
            actions.append(self._gap_fill(gap_start, end + 1, now_ns))
        if actions:  # an empty range sends nothing, so it must not postpone the Heartbeat
            self._last_sent_ns = now_ns
        return actions

    def _gap_fill(self, seq: int, new_seq: int, now_ns: int) -> Send:
        header = [(34, str(seq)), (43, "Y"), *self._header(seq, now_ns)[1:], (122, sending_time(now_ns))]
        return Send(*encode_message("4", header, [(123, "Y"), (36, str(new_seq))]))

    def _reject(self, ref_seq: int, reason: str, ref_tag: int | None, text: str, now_ns: int) -> Send:
        body = [(45, str(ref_seq))]
        if ref_tag is not None:
            body.append((371, str(ref_tag)))
        body += [(373, reason), (58, text)]
        return self._send("3", body, now_ns)

    def _bad_seq_field(self, message: FixMessage, seq: int, tag: int, name: str, now_ns: int) -> Send:
        """A Reject naming ``tag``: missing (373=1), or present but not a sequence number (373=6)."""
        if message.get(tag) is None:
            return self._reject(seq, REQUIRED_TAG_MISSING, tag, f"{name} ({tag}) missing", now_ns)
        return self._reject(seq, INCORRECT_DATA_FORMAT, tag, f"{name} ({tag}) is not a sequence number", now_ns)

    def _fail(self, reason: str, now_ns: int) -> list[Action]:
        """A session-level error we cannot continue after: Logout with the reason, then close."""
        logout = self._send("5", [(58, reason)], now_ns)
        self.connection_lost()
        return [logout, Disconnect(reason)]

    def _drop(self, reason: str) -> list[Action]:
        self.connection_lost()
        return [Disconnect(reason)]

    def _day_end_ns(self) -> int:
        day = datetime.fromisoformat(self._day).replace(tzinfo=UTC)
        end = day + timedelta(days=1) + self.config.day_boundary
        return int(end.timestamp()) * NS
