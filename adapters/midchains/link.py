"""The reconnecting FIX link both MidChains FIX adapters (order entry, market data) run on.

One :class:`FixLink` is one FIX session to one gateway port, kept up for as long as the engine
runs: connect (:class:`~adapters.midchains.transport.Endpoint`: TLS with the system's CAs or a CA
bundle, clear TCP only to this machine), log on through the sans-I/O
:class:`~adapters.midchains.session.FixSession` with its durable
:class:`~adapters.midchains.store.SequenceStore`, serve, and after a loss reconnect with the kit's
:class:`~adapters.kit.backoff.Backoff`. The adapter sees four things only:

- ``on_message(message)``: each application message (and the gateway's session Rejects ``3``),
  in sequence order, exactly once per sequence number (the session drops PossDup repeats);
- ``on_status(status, detail)``: ``"connected"`` once the link is logged on AND caught up,
  ``"stale"`` when the gateway fell silent (our TestRequest is out), ``"connected"`` again when it
  speaks, ``"disconnected"`` when the connection is lost (and each time a reconnect fails while
  it was up). "Caught up" matters to order entry: after a logon the gateway first delivers what
  it queued while we were away (001, Logout (5): "delivered once the client logs in again within
  the same trading day"). There is no end marker, so the link sends a TestRequest right after the
  logon; the gateway answers in sequence, so its Heartbeat arrives after the queued messages, and
  "connected" is reported only once that echo is in and no inbound gap is being filled. The
  engine's reconciliation, which runs on "connected", then sees the adapter's state with them;
- :meth:`FixLink.send` ``(lane, msg_type, body, on_unsent=...)``: queue an application message.
  It returns at once; the message leaves when the lane's budget allows, or ``on_unsent(reason)``
  is called (the link went down or closed before it left). Raises :class:`LinkDown` when the link
  is not connected, so nothing is queued for a connection that may never come back;
- ``on_skipped(Skipped)`` (optional): inbound numbers the gateway's SequenceReset passed over
  (:class:`~adapters.midchains.session.Skipped`), counted in ``skipped_messages`` either way;
- :meth:`FixLink.set_limits` ``(limits) -> limits`` and :attr:`FixLink.stats`.

Lifecycle: ``link = FixLink(...)``; start ``link.run()`` as a background task (the adapter's
``start_task``); ``await link.wait_connected(timeout_s)`` (raises ConnectionError naming the
endpoint and the last failure); ...; ``await link.close()`` (Logout, waits for the confirmation at
most the session's ``logout_timeout_s``, never raises).

Rate limits (MID-9, VENUES.md 2.2), enforced where frames leave the process. The venue's ``"all"``
limit (FIX: 10 messages/s per session) is a :class:`~engine.venue.ratelimit.RateBucket` on the
stream itself: EVERY frame written (Logon, Heartbeats, TestRequests, ResendRequests, a resend's
replay, application messages) takes a token, and a frame waits for one, so the wire never carries
more, whatever the session decides to send. Application messages are paced before that, without
holding the connection, by the kit's :class:`~adapters.kit.pacing.WirePacer` with lanes (cancels
first): ``"orders"`` (4/s) and ``"all"`` less :data:`ADMIN_HEADROOM` message/s kept for the
session's own traffic, so orders wait in the pacer rather than in front of a Heartbeat. Both are
counted on windows ``guard`` longer than the venue's (default the kit's arrival-spread guard, 5%).
The writer writes each application message through the pacer's
:class:`~adapters.kit.pacing.WriteHold` (its lane's limits again, on the times writes returned), and
the stream spends its tokens when a write has returned: the pacer decides when a message is
released, but a stall between the release and the write (a slow store write, the process
descheduled) would otherwise let it reach the wire closer to the next one than the venue allows.
:meth:`FixLink.set_limits` returns what application messages really leave at: what the engine's
gate must spend at submit.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import anyio.abc

from adapters.kit.backoff import Backoff
from adapters.kit.pacing import (
    ARRIVAL_SPREAD_GUARD,
    ORDER_LANES,
    LaneSpec,
    Outbox,
    WirePacer,
    guarded,
    pacing_clock,
    wait_for_room,
)
from adapters.midchains.codec import FixMessage
from adapters.midchains.session import FixSession, SessionConfig, SessionState, Skipped
from adapters.midchains.store import SequenceStore
from adapters.midchains.transport import Endpoint, FixConnection
from engine.venue import RateLimit
from engine.venue.clock import Clock
from engine.venue.ratelimit import RateBucket

__all__ = ["ADMIN_HEADROOM", "CONNECTED", "DISCONNECTED", "STALE", "FixLink", "LinkDown", "Outgoing"]

log = logging.getLogger("engine.midchains")

CONNECTED = "connected"
DISCONNECTED = "disconnected"
STALE = "stale"

#: messages per second of the venue's "all" budget kept for the session's own frames (Heartbeat,
#: TestRequest, its answer, ResendRequest): application messages are paced at the rest, so the
#: stream's own bucket (the hard limit, all frames) seldom has to hold one back
ADMIN_HEADROOM = 1


def _sample(message: FixMessage) -> str:
    """A log sample of a message: its body only (the header's CompIDs are the session's identity,
    which a log need not show), secret tags masked."""
    return FixMessage(message.body()).loggable()


class LinkDown(ConnectionError):
    """The link is not connected (or is closing): the message was not queued."""


@dataclass(slots=True)
class Outgoing:
    """An application message waiting for its lane's budget. ``on_unsent(reason)`` runs when it
    never leaves (the link dropped or closed first); ``on_sent()`` right after it was written, or
    once the session numbered and stored it (a resend after a reconnect then brings it). Neither
    runs for one its sender took back (:meth:`FixLink.take_back`)."""

    lane: str
    msg_type: str
    body: Sequence[tuple[int, str]]
    on_unsent: Callable[[str], None] | None = None
    on_sent: Callable[[], None] | None = None
    numbered: bool = False  # the session gave it a sequence number: it is out, or a resend brings it
    withdrawn: bool = False  # taken back before it was numbered: it never leaves


class _PacedStream(anyio.abc.ByteStream):
    """The connection's stream with the venue's message limit on every write: a frame waits for a
    token of ``bucket`` (one ``send`` is one frame: FixConnection writes frame by frame, one at a
    time under its send lock). The token is spent when the write has returned, so a stall between
    the check and the write can only make the next frame wait longer, never bring two closer on
    the wire. It also tells the link when a frame is read or written, which is when the session's
    state may change."""

    def __init__(self, inner: anyio.abc.ByteStream, bucket: RateBucket | None, clock: Clock,
                 moved: Callable[[str], None]) -> None:
        self.inner = inner
        self.bucket = bucket
        self.clock = clock
        self.moved = moved
        self.frames_out = 0
        self.delayed = 0

    async def send(self, item: bytes) -> None:
        bucket = self.bucket
        if bucket is not None and await wait_for_room((bucket,), self.clock):
            self.delayed += 1
        try:
            await self.inner.send(item)
        finally:
            if bucket is not None:
                bucket.take(self.clock.now_ns())  # after the write: the venue sees it no earlier
        self.frames_out += 1
        self.moved("out")

    async def receive(self, max_bytes: int = 65536) -> bytes:
        self.moved("in")  # the previous read has been processed by now
        return await self.inner.receive(max_bytes)

    async def send_eof(self) -> None:
        await self.inner.send_eof()

    async def aclose(self) -> None:
        await self.inner.aclose()

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        return self.inner.extra_attributes


class FixLink:
    """One FIX session kept up (see the module docstring for the adapter-facing contract).

    ``name`` prefixes log lines ("midchains_fix venue"); ``store_path`` is the SequenceStore file
    (beside the journal, or ``:memory:``); ``limits`` the venue's (scope ``"all"`` = messages per
    session, ``"orders"``, ``"cancels"``); ``lanes`` the pacer's (default: the kit's cancel and
    order lanes); ``logon_fields`` is called at each logon for extra Logon fields (a Password
    read from its file then, so a rotation is picked up; FixMessage.loggable masks it)."""

    def __init__(
        self,
        name: str,
        endpoint: Endpoint,
        config: SessionConfig,
        store_path: Path | str,
        clock: Clock,
        on_message: Callable[[FixMessage], None],
        on_status: Callable[[str, str], None],
        *,
        backoff: Backoff,
        limits: Sequence[RateLimit] = (),
        lanes: Mapping[str, LaneSpec] = ORDER_LANES,
        logon_fields: Callable[[], Sequence[tuple[int, str]]] | None = None,
        sync_on_logon: bool = True,
        connect_timeout_s: float = 10.0,
        guard: Decimal = ARRIVAL_SPREAD_GUARD,
        on_skipped: Callable[[Skipped], None] | None = None,
        store: SequenceStore | None = None,
    ) -> None:
        self.name = name
        self.endpoint = endpoint
        self.config = config
        self.clock = clock
        self.on_message = on_message
        self.on_status = on_status
        self.backoff = backoff
        self.lanes = dict(lanes)
        self.logon_fields = logon_fields
        self.sync_on_logon = sync_on_logon
        self.connect_timeout_s = connect_timeout_s
        self.guard = guard
        self.on_skipped = on_skipped
        #: the SequenceStore file; may be changed until ``run`` opens it (an adapter learns its
        #: state path after construction)
        self.store_path = store_path
        #: a store handed in is the caller's (kept across the links it starts, closed by it): an
        #: in-memory one must outlive a link, or the next logon starts again at 34=1
        self.store: SequenceStore | None = store
        self._own_store = store is None
        self.session: FixSession | None = None
        self.counters: Counter[str] = Counter()
        self.up = False  # logged on and caught up: what "connected" said
        self.stale = False
        self.closing = False
        self.last_failure = ""
        self._pacing_clock = pacing_clock(clock)
        self._limits: tuple[RateLimit, ...] = tuple(limits)
        self._pacer = self._new_pacer()
        self._wire = self._wire_bucket()
        self._outbox: Outbox[Outgoing] = Outbox()
        self._connection: FixConnection | None = None
        self._stream: _PacedStream | None = None
        self._probed = False
        # made in async context (anyio needs a running loop): see _event
        self._changed: anyio.Event | None = None
        self._up_event: anyio.Event | None = None
        self._stopped: anyio.Event | None = None
        self._run_scope: anyio.CancelScope | None = None
        self._seen_in = 0

    # ---- what the adapter calls ----------------------------------------------------------------
    def set_limits(self, limits: Sequence[RateLimit]) -> tuple[RateLimit, ...]:
        """The engine's effective limits (given before ``run``). Returns the limits application
        messages leave at (the "all" scope less :data:`ADMIN_HEADROOM`, windows 5% longer)."""
        self._limits = tuple(limits)
        self._pacer.set_limits(self._application_limits())
        self._wire = self._wire_bucket()
        return self._pacer.departure_limits

    def send(self, lane: str, msg_type: str, body: Sequence[tuple[int, str]], *,
             on_unsent: Callable[[str], None] | None = None, on_sent: Callable[[], None] | None = None) -> Outgoing:
        """Queue an application message in ``lane``; it leaves when the budget allows (see the
        module docstring). Returns it (for :meth:`take_back`). Raises :class:`LinkDown` when the
        link is not connected."""
        if not self.up or self.closing:
            raise LinkDown(f"{self.name}: FIX session to {self._where()} is not connected")
        item = Outgoing(lane, msg_type, body, on_unsent, on_sent)
        self._pacer.put(lane, item)
        return item

    def take_back(self, item: Outgoing) -> bool:
        """Keep ``item`` from ever leaving, if the session has not numbered it yet: still waiting for
        its lane's budget, in the outbox, or held by the write hold. True when it will not leave
        (then neither ``on_sent`` nor ``on_unsent`` runs: the sender has its answer); False once it
        was numbered (it is on the wire, or a reconnect's resend brings it)."""
        if item.numbered:
            return False
        if not item.withdrawn:
            item.withdrawn = True
            self._pacer.take_back(item.lane, item)  # departed already: the writer drops it unnumbered
        return True

    async def wait_connected(self, timeout_s: float) -> None:
        """Return once the link is connected (logged on, caught up); ConnectionError otherwise."""
        if not self.up:
            if self._up_event is None:
                self._up_event = anyio.Event()
            with anyio.move_on_after(timeout_s):
                await self._up_event.wait()
        if not self.up:
            why = self.last_failure or "no answer"
            raise ConnectionError(f"{self.name}: FIX session to {self._where()} not up after {timeout_s:g} s: {why}")

    async def run(self) -> None:
        """Connect, serve, reconnect with backoff, until :meth:`close`. Never raises for the
        venue's faults (they are reported through ``on_status`` and logged)."""
        self._stopped = anyio.Event()
        self.open()
        with anyio.CancelScope() as scope:
            self._run_scope = scope
            try:
                while not self.closing:
                    ended = await self._one_connection()
                    if self.closing:
                        break
                    delay = self.backoff.next_delay() if ended else 0.0
                    log.info("%s: reconnecting in %.2f s", self.name, delay)
                    await anyio.sleep(delay)
            finally:
                self._stopped.set()
                self._run_scope = None

    def open(self) -> FixSession:
        """Open the sequence store at ``store_path`` and the session on it (``run`` does it)."""
        if self.session is None:
            if self.store is None:
                self.store = SequenceStore(self.store_path,
                                           f"{self.config.sender_comp_id}->{self.config.target_comp_id}")
            self.session = FixSession(self.config, self.store)
            self._seen_in = self.store.next_in
        return self.session

    async def close(self) -> None:
        """Log out (waiting at most the session's logout timeout for the confirmation), stop the
        loop, hand back what never left. Never raises."""
        self.closing = True
        try:
            connection = self._connection
            if connection is not None and self.open().state is SessionState.ACTIVE:
                with anyio.move_on_after(self.config.logout_timeout_s + 1):
                    await connection.logout()
                    while self._connection is connection:
                        await self._wait_change()
        except Exception as exc:  # closing must not raise: the engine is shutting down
            log.warning("%s: logout failed: %s", self.name, exc)
        if self._run_scope is not None:
            self._run_scope.cancel()
            if self._stopped is not None:
                with anyio.move_on_after(1):
                    await self._stopped.wait()
        self._unsend("the adapter closed before the rate limit let it leave")
        self._pacer.close()
        if self.store is not None and self._own_store:
            self.store.close()

    @property
    def stats(self) -> dict[str, int]:
        """``messages_in`` (inbound sequence numbers processed), ``messages_out`` (frames written,
        admin ones too), ``reconnects``, ``paced`` (frames the wire budget held back),
        ``skipped_messages`` (inbound numbers a SequenceReset passed over)."""
        stream = self._stream  # the connection's own counts join the link's when it ends
        return {
            "messages_in": self.counters["messages_in"],
            "messages_out": self.counters["messages_out"] + (stream.frames_out if stream is not None else 0),
            "reconnects": self.counters["reconnects"],
            "paced": self.counters["paced"] + (stream.delayed if stream is not None else 0) + self._pacer.hold.held,
            "skipped_messages": self.counters["skipped_messages"],
        }

    # ---- one connection ------------------------------------------------------------------------
    async def _one_connection(self) -> bool:
        """One connection's life; True when it ended in error (so the next try backs off)."""
        try:
            with anyio.fail_after(self.connect_timeout_s):
                inner = await self.endpoint.connect()
        except (OSError, TimeoutError, anyio.BrokenResourceError) as exc:
            self._failed(f"cannot connect: {type(exc).__name__}: {exc}")
            return True
        stream = _PacedStream(inner, self._wire, self._pacing_clock, self._moved)
        self._stream = stream
        extra = list(self.logon_fields()) if self.logon_fields is not None else []
        connection = FixConnection(self.open(), stream, self.clock, self._deliver, logon_fields=extra,
                                   on_skipped=self._skipped)
        self._connection = connection
        self._probed = False
        self.stale = False
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(self._writer, connection)
            tasks.start_soon(self._watch, connection)
            ended = await connection.run()
            tasks.cancel_scope.cancel()
        self._connection = None
        self._moved("end")  # wakes close(), waiting for this connection to end
        self.counters["messages_out"] += stream.frames_out
        self.counters["paced"] += stream.delayed
        self._stream = None
        was_up = self.up
        self.up = False
        self._up_event = None
        self._unsend(f"connection lost ({ended.reason}) before the rate limit let it leave")
        self._failed(ended.reason, log_level=logging.WARNING if ended.error else logging.INFO)
        if was_up and not self.closing:
            self.on_status(DISCONNECTED, ended.reason)
        return ended.error

    async def _writer(self, connection: FixConnection) -> None:
        """Write application messages the pacer let go, each through the pacer's write hold:
        Fs in their order, everything else in its order, the two at once (:class:`Outbox`), so an
        F never waits behind an order the hold keeps. The session numbers each message
        as it is written, so the numbers follow the wire."""
        await self._outbox.run(partial(self._write_one, connection))

    async def _write_one(self, connection: FixConnection, lane: str, item: Outgoing) -> None:
        """One message. It hears exactly one of ``on_sent`` / ``on_unsent``: one the session has
        numbered and stored counts as sent even when the connection ends before its bytes leave
        (this task cancelled while the stream waits), since the gateway's ResendRequest after the
        reconnect brings it; one the hold still kept was never numbered and is not sent, like one
        still in the outbox; one taken back hears neither."""
        if item.withdrawn:
            return
        if connection.ended is not None or not self.up:
            self._not_sent(item, "connection lost before it was written")
            return

        async def write() -> bool:
            if item.withdrawn:  # taken back while the hold kept it: never numbered, nothing spent
                return False
            store = connection.session.store
            before = store.next_out
            item.numbered = True  # send_application numbers and stores it before anything awaits
            try:
                await connection.send(item.msg_type, item.body)
            except BaseException:
                # numbered when the store moved: a refusal (not logged on, a logout under way, the
                # trading day ended) or a body that would not encode raises before it numbers and
                # before any await, so nothing else can have moved it; a cancel or a lost
                # connection while the bytes wait comes after the numbering
                item.numbered = store.next_out != before
                raise
            return True

        try:
            if not await self._pacer.hold.write(lane, write):
                return
        except (ConnectionError, ValueError) as exc:
            if item.numbered:  # it counts as sent: a resend brings it
                self._sent(item)
                if isinstance(exc, ValueError):
                    raise
                return
            if isinstance(exc, ValueError):  # our own body the codec refused: a bug to see
                log.error("%s: %s %s not sent: %s", self.name, item.lane, item.msg_type, exc)
            self._not_sent(item, str(exc))
            return
        except BaseException:
            if item.numbered:
                self._sent(item)
            else:
                self._not_sent(item, "connection lost while the rate limit held it")
            raise
        self._sent(item)

    @staticmethod
    def _sent(item: Outgoing) -> None:
        if item.on_sent is not None:
            item.on_sent()

    async def _watch(self, connection: FixConnection) -> None:
        """Follow the session: probe after the logon, report connected once caught up, stale while
        our silence TestRequest is out."""
        session = self.open()
        while connection.ended is None:
            if session.state is SessionState.ACTIVE:
                if not self._probed:
                    self._probed = True
                    if self.sync_on_logon:
                        await connection.probe()
                        continue
                pending = session.test_request_pending
                if not self.up and pending is None and not session.catching_up:
                    self._now_up()
                elif self.up and pending is not None and pending.startswith("TEST-") and not self.stale:
                    self.stale = True
                    self.on_status(STALE, f"no message from {self.config.target_comp_id} for "
                                          f"{self.config.silence_ns // 1_000_000_000} s; TestRequest sent")
                elif self.up and self.stale and pending is None:
                    self.stale = False
                    self.on_status(CONNECTED, "the gateway answered")
            await self._wait_change()

    def _now_up(self) -> None:
        first = self.counters["logons"] == 0
        self.counters["logons"] += 1
        if not first:
            self.counters["reconnects"] += 1
        self.up = True
        self.last_failure = ""
        self.backoff.reset()
        if self._up_event is not None:
            self._up_event.set()
        log.info("%s: FIX session to %s logged on", self.name, self._where())
        self.on_status(CONNECTED, "logged on")

    async def _skipped(self, skipped: Skipped) -> None:
        self.counters["skipped_messages"] += skipped.last - skipped.first + 1
        if self.on_skipped is not None:
            self.on_skipped(skipped)

    async def _deliver(self, message: FixMessage) -> None:
        try:
            self.on_message(message)
        except Exception:  # the session has taken the number: log it loudly, keep the link
            self.counters["handler_errors"] += 1
            log.exception("%s: handling %s failed: %s", self.name, message.msg_type, _sample(message))

    # ---- helpers -------------------------------------------------------------------------------
    def _moved(self, direction: str) -> None:
        next_in = self.store.next_in if self.store is not None else 0
        if next_in > self._seen_in:
            self.counters["messages_in"] += next_in - self._seen_in
        self._seen_in = next_in
        changed, self._changed = self._changed, None
        if changed is not None:
            changed.set()  # wakes every waiter of this round; the next round waits on a new event

    async def _wait_change(self) -> None:
        if self._changed is None:
            self._changed = anyio.Event()
        await self._changed.wait()

    def _application_limits(self) -> tuple[RateLimit, ...]:
        out = []
        for limit in self._limits:
            if limit.scope == "all" and limit.count > ADMIN_HEADROOM:
                limit = replace(limit, count=limit.count - ADMIN_HEADROOM,
                                burst=None if limit.burst is None else max(1, limit.burst - ADMIN_HEADROOM))
            out.append(limit)
        return tuple(out)

    def _new_pacer(self) -> WirePacer:
        return WirePacer(self.name, self._application_limits(), self.lanes, self.clock, on_depart=self._depart,
                         guard=self.guard)

    def _wire_bucket(self) -> RateBucket | None:
        """The hard per-session message limit, on windows as long as the pacer's. One for the
        link's life, like the pacer's buckets: the venue counts per session, not per connection,
        so frames sent just before a drop still count just after the reconnect."""
        for limit in self._limits:
            if limit.scope == "all":
                (paced,) = guarded((limit,), self.guard, self._pacing_clock.speed)
                return RateBucket(f"{self.name} FIX messages", limit.count, paced.per_seconds, limit.burst,
                                  self._pacing_clock, scope="all")
        return None

    def _depart(self, lane: str, item: Outgoing) -> None:
        # an F names an order whose D was written (the adapter sends it after on_sent): it may go ahead
        self._outbox.put(lane, item, ahead=item.msg_type == "F")

    def _unsend(self, reason: str) -> None:
        """Everything waiting (in the pacer or the outbox) will not leave: tell each sender. The
        pacer's buckets keep what was spent (the venue still counts it)."""
        for _lane, item in self._pacer.withdraw() + self._outbox.take_all():
            self._not_sent(item, reason)

    def _not_sent(self, item: Outgoing, reason: str) -> None:
        if item.withdrawn:
            return  # its sender took it back and has its answer
        self.counters["unsent"] += 1
        if item.on_unsent is not None:
            item.on_unsent(reason)

    def _failed(self, reason: str, log_level: int = logging.WARNING) -> None:
        self.last_failure = reason
        log.log(log_level, "%s: FIX session to %s ended: %s", self.name, self._where(), reason)

    def _where(self) -> str:
        return f"{self.endpoint.host}:{self.endpoint.port}"
