"""MidChains FIX 4.2 market data (issue 23 section 2): ``midchains_fix_md``, a
:class:`~engine.venue.MarketDataAdapter` on its own FIX session to the document's market-data port
(44325), run by the shared reconnecting :class:`~adapters.midchains.link.FixLink`.

Everything about the messages and the books is :mod:`.mdfeed` (sans I/O; its docstring lists the
decisions and their gap numbers); this module carries it:

- The link's ``on_message`` goes to :meth:`MdFeed.on_message`; the book updates and trades it
  returns go to the sink in order. The feed's settle deadline is a timer on the engine clock.
- Status (as the other feeds report it): ``connected`` once the link is logged on and caught up
  AND every tracked book is whole (MID-14: stale until its logon burst settled); ``stale`` when
  nothing at all came for ``stale_s`` (default HeartBtInt + a fifth: the gateway sends at least a
  Heartbeat every HeartBtInt), when the link's TestRequest is out, or when a book turned out
  inconsistent; ``connected`` again when data flows and the books are whole;
  ``disconnected`` when the connection is lost (the link reconnects with backoff; each logon starts
  fresh books).
- Resync (a book inconsistency): the feed stops publishing, the adapter reports ``stale``, logs
  out, and logs on again on a new link (same sequence store object, in memory too: no logon at
  34=1), which starts fresh books. A sequence gap at the session layer is not a resync: the
  session's ResendRequest fills it in order; but inbound numbers the gateway's SequenceReset
  passes over during the session (``Skipped``) may have been book updates, and are one.
- MarketDataRequest ``V`` (MID-14: 001 documents none; "If an application message ... is not
  included in this document, the message is ignored"): not sent by default. With
  ``send_market_data_request`` one ``V`` (snapshot + updates, full book, incremental, bid, offer,
  trade; the subscribed symbols) goes after each logon, for a gateway that wants one; a ``Y``
  answer is counted and logged.
- Sequence numbers: the session's :class:`~adapters.midchains.store.SequenceStore` file is
  ``state_file`` (the engine gives a market-data adapter no state path); without one they are kept
  in memory, and a restarted process logs on at 1 (a gateway that remembers the day's numbers then
  logs us out: set ``state_file`` in production).
  Use a file of its own (not the order-entry adapter's): both sessions may share CompIDs.
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

import anyio
from pydantic import Field, model_validator

from adapters.kit.backoff import Backoff
from adapters.kit.urls import is_loopback
from adapters.midchains.codec import FixMessage
from adapters.midchains.link import CONNECTED, DISCONNECTED, STALE, FixLink, LinkDown
from adapters.midchains.mdfeed import Event, MdFeed
from adapters.midchains.session import SessionConfig, Skipped
from adapters.midchains.store import SequenceStore
from adapters.midchains.transport import Endpoint
from engine.model import BookUpdate
from engine.venue import AdapterOptions, MarketDataAdapter, RateLimit
from engine.venue.badinput import BadInput
from engine.venue.clock import Timer

__all__ = ["MidChainsMarketData", "MidChainsMdOptions"]

log = logging.getLogger("engine.midchains.md")

NS = 1_000_000_000
#: the document's sandbox host (VENUES.md 2.1: the market-data host is not restated; assumed the same)
SANDBOX_HOST = "fix-sandbox.midchains.com"
#: 001: "For access to Market Data over FIX use; Port: 44325"
MD_PORT = 44325
#: 001's FIX budget holds for this session too (MID-9): its Heartbeats, TestRequests, a V
MESSAGE_LIMIT = RateLimit("all", 10, Decimal(1), 10, source="001 FIX API: 10 commands per second (MID-9)")


class MidChainsMdOptions(AdapterOptions):
    """Options of ``midchains_fix_md`` (``venues.<name>.market_data.options``)."""

    host: str = Field(SANDBOX_HOST, min_length=1, description="FIX gateway host (001's sandbox by default).")
    port: int = Field(MD_PORT, ge=1, le=65535, description="Market-data port (001: 44325).")
    tls: bool = Field(True, description="TLS (001: 'secure tcp+ssl'); clear TCP only to this machine (stunnel).")
    ca_bundle: Path | None = Field(None, description="PEM CA bundle instead of the system's CAs (MID-12).")
    sender_comp_id: str = Field(min_length=1, description="Our SenderCompID (49), 'Provided by MidChains'.")
    target_comp_id: str = Field("MIDCDEV1", min_length=1, description="The gateway's CompID (56).")
    heartbeat_s: int = Field(60, ge=1, le=3600, description="HeartBtInt (108) we log on with (001's examples: 60); "
                             "the gateway then sends something at least this often.")
    stale_s: float | None = Field(None, gt=0, description="No message at all (market data or Heartbeat) for this "
                                  "long -> 'stale'; default HeartBtInt + a fifth. Lower heartbeat_s to see silence "
                                  "sooner: below HeartBtInt a quiet market would read as stale.")
    state_file: Path | None = Field(None, description="SQLite file keeping this session's sequence numbers "
                                    "across restarts (its own file, not the order-entry adapter's).")
    book_settle_s: Decimal = Field(Decimal("0.25"), gt=0, description="A symbol's book is whole this long after "
                                   "the last X of its logon burst (MID-14; MID-7's figure).")
    book_settle_max_s: Decimal = Field(Decimal(2), gt=0, description="... or this long after the logon at the "
                                       "latest (an empty book, or one the gateway sends nothing for).")
    w_trades: bool = Field(False, description="Publish W's last trade (269=2) as a trade: only for a gateway that "
                           "prints trades through W alone (with X prints it would count each trade twice).")
    send_market_data_request: bool = Field(False, description="Send one MarketDataRequest V after each logon "
                                           "(001 documents none; the gateway pushes every pair without it).")
    reconnect_min_s: float = Field(0.5, gt=0, description="First reconnect delay; doubles per failure.")
    reconnect_max_s: float = Field(10.0, gt=0, description="Longest reconnect delay.")
    connect_timeout_s: float = Field(10.0, gt=0, description="How long connect() waits for the logon and the books "
                                     "to settle before it fails.")

    @model_validator(mode="after")
    def _consistent(self) -> MidChainsMdOptions:
        if not self.tls and not is_loopback(self.host):
            raise ValueError(f"tls: false is allowed only to this machine (a local sandbox or stunnel), "
                             f"not {self.host}")
        if self.book_settle_max_s < self.book_settle_s:
            raise ValueError("book_settle_max_s must be at least book_settle_s")
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ValueError("reconnect_max_s must be at least reconnect_min_s")
        return self


class MidChainsMarketData(MarketDataAdapter):
    """MidChains market data over FIX 4.2: the L3 book of every tracked pair, published as the
    engine's L2 book, and the trade prints (see the module docstring)."""

    name: ClassVar[str] = "midchains_fix_md"
    options_model: ClassVar[type[AdapterOptions]] = MidChainsMdOptions

    def setup(self) -> None:
        opts = self.options
        assert isinstance(opts, MidChainsMdOptions)
        self.md_options = opts
        self.feed = MdFeed(self.venue, self.instruments, int(opts.book_settle_s * NS), int(opts.book_settle_max_s * NS),
                           w_trades=opts.w_trades)
        self._bad = BadInput(log, f"midchains_fix_md venue {self.venue}")
        self._rng = random.Random(self.seed)
        self._link: FixLink | None = None
        self._store: SequenceStore | None = None  # one for every link of this adapter (resyncs keep numbers)
        self._past: Counter[str] = Counter()  # the wire counters of links already left (resync, close)
        self._generation = 0
        self._timer: Timer | None = None
        self._link_up = False
        self._link_stale = False
        self._silent = False  # the watchdog saw nothing for stale_s
        self._resyncing = False
        self._closed = False
        self._settled_event: anyio.Event | None = None
        self._sink_errors_logged = False
        #: "new" | "connected" | "stale" | "disconnected" | "closed": what the sink was last told
        self.status = "new"
        self.resyncs = 0
        self.sink_errors = 0
        self.last_error = ""

    # ---- lifecycle -------------------------------------------------------------------------
    async def connect(self) -> None:
        """Log on and wait (``connect_timeout_s``) until every tracked book is whole; report
        ``connected``. A first connection that fails raises ConnectionError: the engine refuses to
        start blind; later losses are reconnected by the link."""
        if self._link is not None:
            return
        self._closed = False
        self._start_link()
        self.start_task(self._watchdog, name=f"midchains_fix_md[{self.venue}] watchdog")
        timeout = self.md_options.connect_timeout_s
        assert self._link is not None
        await self._link.wait_connected(timeout)
        if not self.feed.settled:
            self._settled_event = anyio.Event()
            with anyio.move_on_after(timeout):
                await self._settled_event.wait()
        if self.status != CONNECTED:
            raise ConnectionError(f"midchains_fix_md venue {self.venue}: books not whole after {timeout:g} s "
                                  f"({self.last_error or 'the logon burst did not settle'})")

    async def close(self) -> None:
        """Log out and stop. Never raises."""
        self._closed = True
        self._cancel_timer()
        link, self._link = self._link, None
        self._generation += 1
        if link is not None:
            await link.close()
            self._past.update(link.stats)
        self.feed.stop()
        if self._store is not None:
            self._store.close()
            self._store = None
        self.status = "closed"
        self._bad.flush()

    def subscribe(self, symbols: Iterable[str]) -> None:
        """Publish these symbols: a snapshot of each book that is whole now, of the others once
        they are. Every pair arrives anyway (001); a symbol not among the venue's instruments was
        not kept, so subscribing it on a live connection logs on again (MID-14)."""
        self._deliver(self.feed.subscribe(list(symbols), self.clock.now_ns()))
        self._after_feed()

    def bad_input(self) -> dict[str, int]:
        return dict(self._bad.counts)

    def stats(self) -> dict[str, int]:
        wire = Counter(self._past)
        if self._link is not None:
            wire.update(self._link.stats)
        wire.update(dict.fromkeys(("messages_in", "messages_out", "reconnects"), 0))  # present even when 0
        counters = self.feed.counters
        return {**wire, "resyncs": self.resyncs, "sink_errors": self.sink_errors,
                "replayed_skipped": counters["replayed_skipped"], "untracked_dropped": counters["untracked_dropped"],
                "top_mismatch": counters["top_mismatch"]}

    def describe(self) -> dict[str, Any]:
        opts = self.md_options
        return {
            "name": self.name,
            "venue": self.venue,
            "endpoint": f"{opts.host}:{opts.port}",
            "tls": opts.tls,
            "comp_ids": f"{opts.sender_comp_id}->{opts.target_comp_id}",
            "status": self.status,
            "tracked": len(self.feed.tracked),
            "subscribed": len(self.feed.subscribed),
            "whole": len(self.feed.whole),
            "counters": dict(self.feed.counters),
            "last_error": self.last_error,
        }

    # ---- the link ----------------------------------------------------------------------------
    def _start_link(self) -> None:
        opts = self.md_options
        self._generation += 1
        generation = self._generation
        self.feed.start()
        self._link_up = self._link_stale = self._silent = False
        config = SessionConfig(opts.sender_comp_id, opts.target_comp_id, heartbeat_s=opts.heartbeat_s)
        if self._store is None:
            self._store = SequenceStore(opts.state_file if opts.state_file is not None else ":memory:",
                                        f"{opts.sender_comp_id}->{opts.target_comp_id}")
        link = FixLink(
            f"midchains_fix_md venue {self.venue}",
            Endpoint(opts.host, opts.port, opts.tls, opts.ca_bundle),
            config,
            opts.state_file if opts.state_file is not None else ":memory:",
            self.clock,
            lambda message: self._on_message(generation, message),
            lambda status, detail: self._on_status(generation, status, detail),
            backoff=Backoff(opts.reconnect_min_s, opts.reconnect_max_s, self._rng),
            limits=(MESSAGE_LIMIT,),
            connect_timeout_s=opts.connect_timeout_s,
            on_skipped=lambda skipped: self._on_skipped(generation, skipped),
            store=self._store,
        )
        self._link = link
        self.start_task(link.run, name=f"midchains_fix_md[{self.venue}] link")

    def _on_status(self, generation: int, status: str, detail: str) -> None:
        if generation != self._generation:
            return  # a link we already left (a resync replaced it)
        if status == CONNECTED:
            first = not self._link_up
            self._link_up, self._link_stale = True, False
            self.feed.logged_on(self.clock.now_ns())
            if first and self.md_options.send_market_data_request:
                self._request()
        elif status == STALE:
            self._link_stale = True
            self._report(STALE, detail)
        elif status == DISCONNECTED:
            self._link_up = self._link_stale = self._silent = False
            self.feed.start()  # the next logon starts fresh books
            self.last_error = detail
            self._report(DISCONNECTED, detail)
        self._after_feed()

    def _on_skipped(self, generation: int, skipped: Skipped) -> None:
        """The gateway's SequenceReset passed over inbound numbers: during a session any of them may
        have been a book update, so the books may differ from the venue's: fresh books by the same
        resync as an inconsistency (a gap before the logon settles is part of the burst)."""
        if generation != self._generation:
            return
        if not self._link_up:
            log.info("midchains_fix_md venue %s: inbound %d..%d skipped before the books settled (%s)", self.venue,
                     skipped.first, skipped.last, skipped.reason)
            return
        self._resync(f"inbound {skipped.first}..{skipped.last} skipped ({skipped.reason})")

    def _on_message(self, generation: int, message: FixMessage) -> None:
        if generation != self._generation:
            return
        self._deliver(self.feed.on_message(message, self.clock.now_ns()))
        self._after_feed()

    def _request(self) -> None:
        """One MarketDataRequest V for the subscribed (else tracked) symbols (FIX 4.2 fields)."""
        link = self._link
        symbols = sorted(self.feed.subscribed or self.feed.tracked)
        if link is None or not symbols:
            return
        body: list[tuple[int, str]] = [(262, f"md-{self._generation}"), (263, "1"), (264, "0"), (265, "1"),
                                       (267, "3"), (269, "0"), (269, "1"), (269, "2"), (146, str(len(symbols)))]
        body += [(55, symbol) for symbol in symbols]
        try:
            link.send("order", "V", body)
        except LinkDown as exc:
            log.warning("midchains_fix_md venue %s: MarketDataRequest not sent: %s", self.venue, exc)

    # ---- the feed's results ------------------------------------------------------------------
    def _deliver(self, events: list[Event]) -> None:
        sink = self.sink
        try:
            for event in events:
                if type(event) is BookUpdate:
                    sink.on_book(event)
                else:
                    sink.on_trade(event)  # type: ignore[arg-type]
        except Exception:
            self.sink_errors += 1
            if not self._sink_errors_logged:
                self._sink_errors_logged = True
                log.exception("midchains_fix_md venue %s: the engine raised on a market data event (counted; "
                              "logged once)", self.venue)

    def _after_feed(self) -> None:
        """Count what the feed refused, resync if it must, report connected once settled, and
        keep the settle timer on the feed's next deadline."""
        feed = self.feed
        for refused in feed.take_refused():
            self._bad.record(refused.kind, refused.reason)
            self.last_error = refused.reason
        if feed.resync_reason is not None and not self._resyncing and not self._closed:
            self._resync(feed.resync_reason)
            return
        if feed.settled and self._link_up and not self._link_stale and not self._silent and self.status != CONNECTED:
            self._report(CONNECTED, "logged on; books whole")
            if self._settled_event is not None:
                self._settled_event.set()
        self._arm_timer()

    def _resync(self, reason: str) -> None:
        """Stale, log out, and log on again on a new link for fresh books (same sequence store)."""
        if self._resyncing or self._closed:
            return
        self._resyncing = True
        self.resyncs += 1
        log.warning("midchains_fix_md venue %s: book inconsistent (%s): logging on again for fresh books",
                    self.venue, reason)
        self._report(STALE, f"book inconsistent: {reason}; logging on again")
        self.start_task(self._relogon, name=f"midchains_fix_md[{self.venue}] resync")

    async def _relogon(self) -> None:
        """Leave the link whose books went wrong (Logout), and log on again on a new one."""
        try:
            link, self._link = self._link, None
            self._generation += 1
            self._cancel_timer()
            if link is not None:
                await link.close()
                self._past.update(link.stats)
                self._past["reconnects"] += 1  # a new logon, as a reconnect is
            if not self._closed:
                self._start_link()
        finally:
            self._resyncing = False

    async def _watchdog(self) -> None:
        """Silence: no frame read for ``stale_s`` (on the loop's monotonic clock: it measures the
        network, like the other feeds' watchdogs) -> ``stale``; frames again -> ``connected``."""
        opts = self.md_options
        stale_s = opts.stale_s if opts.stale_s is not None else opts.heartbeat_s * 1.2
        interval = max(0.01, stale_s / 4)
        watched: FixLink | None = None
        seen = -1
        since = anyio.current_time()
        while not self._closed:
            await anyio.sleep(interval)
            now = anyio.current_time()
            link = self._link
            count = link.stats["messages_in"] if link is not None else -1
            if link is not watched or count != seen or not self._link_up:
                watched, seen, since = link, count, now
                if self._silent and self._link_up:
                    self._silent = False
                    self._after_feed()
                continue
            if not self._silent and now - since >= stale_s:
                self._silent = True
                log.warning("midchains_fix_md venue %s: no message for %.1f s: stale", self.venue, now - since)
                self._report(STALE, f"no message from the gateway for {now - since:.1f} s")

    def _arm_timer(self) -> None:
        self._cancel_timer()
        deadline = self.feed.next_deadline()
        if deadline is not None and not self._closed:
            self._timer = self.clock.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._deliver(self.feed.tick(self.clock.now_ns()))
        self._after_feed()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _report(self, status: str, detail: str = "") -> None:
        if status == self.status:
            return
        self.status = status
        self.sink.on_venue_status(self.venue, status, detail)
