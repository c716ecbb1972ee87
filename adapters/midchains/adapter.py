"""``midchains_fix``: MidChains order entry over FIX 4.2 (document 001 "FIX API"; VENUES.md 2.5, 2.6;
issue 23 section 2).

The session runs on :class:`~adapters.midchains.link.FixLink` (logon, sequence numbers kept per
trading day, reconnect with backoff, the venue's message limit on the wire); the wire mapping is
:mod:`adapters.midchains.orders` (its docstring holds the decisions with their MID numbers); our
orders and every execution are kept in :mod:`adapters.midchains.state`. This module routes:

- ``submit`` -> D, ``cancel`` -> F (a new ClOrdID, 41 the one the venue works the order under),
  ``amend`` -> G (the chain 41 -> 11); each returns at once and the answer comes as reports.
  A market buy is refused 2007 before anything is sent (MID-5);
- ER ``8`` -> the engine's states (an execution without LastPx ``31``, which 001's ER table omits,
  is priced from AvgPx ``6`` and the change of CumQty ``14``; 39=2 or 151=0 ends the order at what
  the venue counts filled; a final state waiting for fills is forced after 30 s with an alert)
  through the kit's :class:`~adapters.kit.orders.OrderTracker`
  (NEW once, each fill once, one final state, a final state before its fills held until they are
  booked); fills de-duplicated on ExecID (``17``) in memory and in the state file, so a report the
  gateway sends again after a restart is never applied twice; maker/taker from ``43214`` (P/T);
- OrderCancelReject ``9`` -> the engine's cancel (or replace) refused path: the order's live
  state with the mapped code and the venue's text; the gateway's echoed F/G is "pending" (MID-4);
- session Reject ``3`` of our D, F or G (found by RefSeqNum ``45`` among the frames kept for resend):
  by FIX the gateway's application never saw it, so the D is rejected and the F or G refused;
- reconciliation: the gateway re-delivers what it queued while we were away right after the logon,
  and the link reports ``connected`` only once those are in (its TestRequest barrier), so the
  engine's ``query_open_orders`` / ``query_order`` / ``query_fills`` (answered from the state file:
  FIX here has no OrderStatusRequest ``H`` and no execution query, MID-5) already include them.
  What cannot be queried: an order the gateway never reported. ``query_order`` answers None only
  for one whose D never left; one whose D left unanswered (a drop, a restart), or whose reports do
  not add up (a CumQty that does not follow, inbound numbers a SequenceReset skipped), is UNKNOWN
  until a report names it, and the engine keeps it working-unknown (issue 23). A D the gateway asks
  us to resend is replayed (43=Y, 122), not gap-filled: the order is known to the engine as
  working-unknown, so whatever the venue then does with it is reported and applied;
- capabilities: no mass cancel, no post-only, no MMP, and no cancel-on-disconnect over FIX (the
  engine's own applies); rate limits as data (:attr:`MidChainsFixAdapter.rate_limits`, MID-9).

Events carry the engine clock's time of receipt (the engine's journal and reconciliation compare
with that clock); ``query_fills(since)`` selects on it too, so a fill the gateway queued and
delivered after a restart is never before ``since``.
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import replace
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

from adapters.kit.backoff import Backoff
from adapters.kit.credentials import MissingSecret, read_secret
from adapters.kit.orders import OrderTracker, TrackedOrder
from adapters.midchains.codec import FixCodecError, FixMessage, decode
from adapters.midchains.link import CONNECTED, DISCONNECTED, STALE, FixLink, LinkDown, Outgoing
from adapters.midchains.options import MidChainsFixOptions
from adapters.midchains.orders import (
    OrderError,
    OrderTerms,
    ReportError,
    cancel_body,
    chained,
    clordid_root,
    day_expiry,
    fraction_base,
    new_order_body,
    parse_cancel_reject,
    parse_exec_report,
    reject_code,
    replace_body,
    wire_root,
)
from adapters.midchains.session import SessionConfig, Skipped
from adapters.midchains.state import OrderRow, OrderState
from adapters.midchains.store import trading_day
from adapters.midchains.transport import Endpoint
from engine.model import TERMINAL_STATUSES, Fill, Order, OrderStatus, OrderType, TimeInForce, VenueOrder
from engine.venue import Adapter, AdapterOptions, Capabilities, RateLimit
from engine.venue.badinput import UNKNOWN_MESSAGE, BadInput
from engine.venue.rejects import Reject

__all__ = ["MidChainsFixAdapter", "MidChainsFixOptions"]

log = logging.getLogger("engine.midchains")

D = Decimal
#: MID-9: each window paced 10% longer than the venue's 1 s (the kit's default is 5%): MidChains
#: rejects, not queues, the fifth order in a second ("exceed order/sec limit"), and it counts
#: arrivals, which a stalled moment anywhere between our socket and its clock can bunch by more
#: than 50 ms; 100 ms of margin costs 4 -> 3.6 orders/s
ARRIVAL_GUARD = Decimal("0.10")
#: what the query_* methods answer from, and what they cannot (MID-5: no OrderStatusRequest H over FIX)
QUERIES = ("answered from the adapter's own record of the gateway's reports (no OrderStatusRequest H, no "
           "execution query over FIX, MID-5); an order the gateway never acknowledged, and reports it dropped at "
           "the 01:00 UTC daily reset, cannot be queried")
#: how long past a GTD order's ExpireTime its expiry report may still be on its way (clocks differ)
EXPIRY_GRACE_NS = 5 * 1_000_000_000
#: how long a final state the venue reported may wait for the fills it counts (they are on the same
#: session: past this they are not coming) before it is forced, with an alert
NS = 1_000_000_000
HELD_FINAL_TIMEOUT_NS = 30 * NS
#: statuses whose row the state file keeps as the venue's last word (pending ones are ours)
_LIVE = (OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED)


def _sample(message: FixMessage) -> str:
    """A log sample of a message: its body only (the header's CompIDs are the session's identity,
    which a log need not show), secret tags masked."""
    return FixMessage(message.body()).loggable()


class _Track(TrackedOrder):
    """One of our orders: what the engine was told, plus its durable row and the cancel or replace
    the venue has not answered yet (their ClOrdIDs)."""

    __slots__ = ("row", "pending_cancel", "pending_replace", "sent", "cancel_wanted", "doubt", "waiting_d")

    def __init__(self, row: OrderRow) -> None:
        super().__init__(row.client_id, row.symbol, row.side, row.qty, row.price, row.venue_order_id)
        self.row = row
        # its D has left (the venue may know it): a numbered D, or any report for it, proves it
        self.sent = row.sent or row.status is not OrderStatus.PENDING_NEW
        self.cancel_wanted = False  # a cancel asked once the D was numbered, before it was written: sent right after it
        self.waiting_d: Outgoing | None = None  # the D while it waits for the order budget (take it back to cancel)
        self.doubt = ""  # why its reports do not add up (an anomaly): UNKNOWN to reconciliation until a report
        self.pending_cancel = ""
        # clordid, qty, price, base of our unanswered G: kept in the row across a restart (issue 23)
        self.pending_replace: tuple[str, Decimal, Decimal | None, int] | None = _decode_replace(row.pending_replace)


def _encode_replace(pending: tuple[str, Decimal, Decimal | None, int] | None) -> str:
    if pending is None:
        return ""
    clordid, qty, price, base = pending
    return f"{clordid}|{qty}|{'' if price is None else price}|{base}"


def _decode_replace(text: str) -> tuple[str, Decimal, Decimal | None, int] | None:
    if not text:
        return None
    clordid, qty, price, base = text.split("|")
    return clordid, Decimal(qty), Decimal(price) if price else None, int(base)


class MidChainsFixAdapter(Adapter):
    """MidChains FIX 4.2 order entry (see the module docstring)."""

    name: ClassVar[str] = "midchains_fix"
    capabilities: ClassVar[Capabilities] = Capabilities(
        amend=True,  # G OrderCancel/ReplaceRequest (001)
        mass_cancel=False,  # MID-5: not over FIX
        post_only="none",  # MID-5: not over FIX (the WS API's alo only)
        ioc=True,
        fok=True,
        gtc=True,
        market_orders=True,  # market SELL only: a market buy is refused 2007 by the adapter (MID-5)
        mmp=False,
        cancel_on_disconnect=False,  # none over FIX: the engine's own cancel-on-disconnect applies
        self_trade_prevention=False,  # "wash sale prohibited" is a venue reject (mapped 7007), not a mode
    )
    # MID-9: 001 says "10 commands per second by default" for FIX, and the order reject text says
    # "more than 4 orders per second"; the tighter figure holds for orders, 10/s for every message
    rate_limits: ClassVar[tuple[RateLimit, ...]] = (
        RateLimit("all", 10, D(1), 10, source="001 FIX API: 10 commands per second by default (MID-9)"),
        RateLimit("orders", 4, D(1), 4, source="001 reject text 'exceed order/sec limit': more than 4 orders per "
                  "second (MID-9)"),
    )
    options_model: ClassVar[type[AdapterOptions]] = MidChainsFixOptions

    def setup(self) -> None:
        opts = self.options
        assert isinstance(opts, MidChainsFixOptions)
        self.fix_options = opts
        try:  # a credential that is named but not there is a config error at start
            self._logon_fields()
        except MissingSecret as exc:
            raise ValueError(str(exc)) from None
        self.counters: Counter[str] = Counter()
        self._bad = BadInput(log, f"midchains_fix {self.venue}")
        self._orders: OrderTracker[_Track] = OrderTracker(
            self.venue, self.sink, self.clock.now_ns, defer=partial(self.clock.call_later, 0), counts=self.counters,
            logger=log)
        self._state_path: Path | str | None = opts.state_file
        self._state: OrderState | None = None
        self._limits: tuple[RateLimit, ...] = self.rate_limits
        self._link = FixLink(
            f"midchains_fix {self.venue}",
            Endpoint(opts.host, opts.port, opts.tls, opts.ca_bundle),
            SessionConfig(opts.sender_comp_id, opts.target_comp_id, heartbeat_s=opts.heartbeat_s),
            ":memory:", self.clock, self._on_message, self._on_status,
            backoff=Backoff(opts.reconnect_min_s, opts.reconnect_max_s, random.Random(self.seed)),
            limits=self._limits, logon_fields=self._logon_fields, connect_timeout_s=opts.connect_timeout_s,
            guard=ARRIVAL_GUARD, on_skipped=self._on_skipped,
        )
        self._by_root: dict[str, _Track] = {}
        self._told = ""  # the last status told to the engine
        self._down_since: int | None = None  # engine clock at the last disconnect (a trading day passed?)
        self._day_before_start: str | None = None  # the stored session's day when this process started

    # ---- lifecycle -------------------------------------------------------------------------------
    def set_state_path(self, path: Path) -> None:
        """The engine's venue state file (beside the journal): sequence numbers, orders, executions.
        The ``state_file`` option, when set, wins."""
        if self.fix_options.state_file is None:
            self._state_path = path

    def set_rate_limits(self, limits: tuple[RateLimit, ...]) -> tuple[RateLimit, ...]:
        """Pace departures with the engine's effective limits; the gate spends what really leaves."""
        self._limits = tuple(limits)
        return self._link.set_limits(self._limits)

    async def connect(self) -> None:
        """Open the state, start the link, and return once logged on and caught up (``connected``
        reported by then). ConnectionError naming the gateway when that does not happen in time."""
        path = self._state_path
        if path is None:
            log.warning("midchains_fix %s: no state file (no journal, no state_file option): sequence numbers "
                        "and orders are kept in memory only; a restart logs on at 34=1", self.venue)
        self._state = OrderState(path if path is not None else ":memory:")
        self._link.store_path = path if path is not None else ":memory:"
        # the trading day of the session's last write: a restart on a later day crossed the reset
        self._day_before_start = self._link.open().store.day or None
        for row in self._state.open_orders():
            self._arm_expiry(self._track(row))
        self.start_task(self._link.run, name=f"midchains-fix-{self.venue}")
        try:
            await self._link.wait_connected(self.fix_options.connect_timeout_s)
        except ConnectionError:
            await self.close()  # the link stops retrying; the state file is closed
            raise

    async def close(self) -> None:
        try:
            await self._link.close()
        finally:
            if self._state is not None:
                self._state.close()
                self._state = None

    def subscribe(self, symbols: Iterable[str]) -> None:
        """No market data on the order-entry port: ``midchains_fix_md`` (port 44325) carries it."""
        return None

    # ---- orders ----------------------------------------------------------------------------------
    def submit(self, order: Order) -> None:
        now = self.clock.now_ns()
        root = wire_root(order.client_id)
        gtd = order.tif is TimeInForce.DAY and self.fix_options.day_tif == "gtd"
        expire = day_expiry(now) if gtd else None
        rec = self._track(OrderRow(order.client_id, root, order.symbol, order.side, order.qty, order.price, order.type,
                                   order.tif, 1, expire, OrderStatus.PENDING_NEW, D(0), "", root, 0, now, sent=False))
        try:
            rec.row.base = fraction_base(self.instruments.get(order.symbol), order.symbol, order.qty,
                                         self.fix_options.fraction_bases)
            body = new_order_body(self._terms(rec.row), self.fix_options.handl_inst, self.fix_options.account,
                                  self.fix_options.day_tif, now)
        except OrderError as exc:
            self._refuse(rec, int(exc.code), str(exc))
            return
        self._save(rec)
        self._arm_expiry(rec)
        try:
            rec.waiting_d = self._link.send("order", "D", body, on_unsent=partial(self._unsent, rec, "order"),
                                            on_sent=partial(self._sent, rec))
        except LinkDown as exc:
            self._refuse(rec, int(Reject.VENUE_NOT_CONNECTED), f"order not sent: {exc}")

    def cancel(self, order: Order) -> None:
        rec = self._tracked(order)
        if rec is None:
            self._orders.untracked_update(order.client_id, OrderStatus.REJECTED, int(Reject.ORDER_NOT_OPEN),
                                          "cancel refused: unknown order", later=True)
            return
        if rec.terminal:
            return  # its final state is already on its way
        if not rec.sent and rec.waiting_d is not None and self._link.take_back(rec.waiting_d):
            # its D still waits for the order budget (in the pacer, or held at the write): it never
            # leaves, so the order is cancelled here, with no F and no moment live at the venue
            rec.waiting_d = None
            self._orders.taken_back(rec, "its D")
            self._save(rec)
            return
        if not rec.sent or rec.pending_replace is not None:
            # its D is numbered but not yet written (or unproven after a restart): an F in the
            # (faster) cancel lane would reach the gateway first and be refused as an unknown order;
            # it goes right after the D. A G not answered yet: the F waits for its answer, so it
            # names the ClOrdID (41) and the quantity (38) the venue then works the order under (issue 23)
            rec.cancel_wanted = True
            return
        self._send_cancel(rec, later=True)

    def _sent(self, rec: _Track) -> None:
        """The D was numbered and handed to the socket: from now on the venue may have it (a
        restart must not read the row as never sent: issue 23 finding 1)."""
        rec.waiting_d = None
        rec.sent = rec.row.sent = True
        self._save(rec)
        self._cancel_if_wanted(rec)

    def _cancel_if_wanted(self, rec: _Track, *, even_if_replacing: bool = False) -> None:
        """Send the cancel asked while the order's D had not left or its G was unanswered, now
        that neither holds (``even_if_replacing``: caught up after a reconnect, the G's answer is
        not coming)."""
        if not rec.cancel_wanted or rec.terminal or not rec.sent:
            return
        if rec.pending_replace is not None and not even_if_replacing:
            return
        rec.cancel_wanted = False
        self._send_cancel(rec, later=False)

    def _send_cancel(self, rec: _Track, later: bool) -> None:
        """F for ``rec``; ``later`` when called from a strategy's hook (answers wait until it returns)."""
        try:
            clordid = self._next_clordid(rec)
            body = cancel_body(self._terms(rec.row), clordid, rec.venue_order_id, self.fix_options.handl_inst,
                               self.fix_options.day_tif, self.clock.now_ns())
        except OrderError as exc:
            self._orders.answer(rec, int(exc.code), f"cancel not sent: {exc}", status=rec.live, later=later)
            return
        rec.pending_cancel = clordid
        self._save(rec)
        try:
            self._link.send("cancel", "F", body, on_unsent=partial(self._unsent, rec, "cancel"))
        except LinkDown as exc:
            rec.pending_cancel = ""
            self._orders.answer(rec, int(Reject.VENUE_NOT_CONNECTED), f"cancel not sent: {exc}", status=rec.live,
                                later=later)

    def amend(self, order: Order, price: Decimal | None, qty: Decimal | None) -> None:
        rec = self._tracked(order)
        refusal = "replace refused: the order is finished or unknown to this adapter"
        if rec is None:
            self._orders.untracked_update(order.client_id, order.live_status(), int(Reject.ORDER_NOT_OPEN), refusal,
                                          later=True)
            return
        if rec.terminal or rec.row.order_type is not OrderType.LIMIT:
            status = rec.final if rec.final is not None else rec.live
            self._orders.answer(rec, int(Reject.ORDER_NOT_OPEN), refusal, status=status, later=True)
            return
        new_qty = qty if qty is not None else rec.qty
        new_price = price if price is not None else rec.price
        try:
            base = fraction_base(self.instruments.get(rec.symbol), rec.symbol, new_qty, self.fix_options.fraction_bases)
            clordid = self._next_clordid(rec)
            terms = OrderTerms(rec.row.clordid, rec.symbol, rec.side, new_qty, new_price, rec.row.order_type,
                               rec.row.tif, base, rec.row.expire_ns)
            body = replace_body(terms, clordid, rec.venue_order_id, self.fix_options.account,
                                self.fix_options.handl_inst, self.fix_options.day_tif, self.clock.now_ns())
        except OrderError as exc:
            self._orders.answer(rec, int(exc.code), f"replace not sent: {exc}", status=rec.live, later=True)
            return
        rec.pending_replace = (clordid, new_qty, new_price, base)
        self._save(rec)
        try:
            self._link.send("order", "G", body, on_unsent=partial(self._unsent, rec, "replace"))
        except LinkDown as exc:
            rec.pending_replace = None
            self._orders.answer(rec, int(Reject.VENUE_NOT_CONNECTED), f"replace not sent: {exc}", status=rec.live,
                                later=True)

    # ---- reports ---------------------------------------------------------------------------------
    def _on_message(self, message: FixMessage) -> None:
        kind = message.msg_type
        if kind == "8":
            self._on_report(message)
        elif kind == "9":
            self._on_cancel_reject(message)
        elif kind in ("F", "G"):
            # MID-4: 001's "gateway reply" to F/G is an echo of the request: pending, never done
            self.counters["echoes"] += 1
            log.debug("midchains_fix %s: %s echoed for %s: pending", self.venue, kind, message.get(11))
        elif kind == "3":
            self._on_session_reject(message)
        else:
            self._bad.record(UNKNOWN_MESSAGE, f"message type {kind!r} is not one 001 sends on order entry",
                             _sample(message))

    def _on_report(self, message: FixMessage) -> None:
        try:
            report = parse_exec_report(message)
        except ReportError as exc:
            self._bad.record(exc.kind, f"ExecutionReport: {exc}", _sample(message))
            rec = self._find(message.get(11) or "", message.get(41) or "")
            if rec is not None:
                self._orders.mark_unknown(rec, f"unreadable execution report: {exc}")
            return
        now = self.clock.now_ns()
        rec = self._find(report.clordid, report.orig_clordid)
        if rec is None:
            self._untracked_report(report, now)
            return
        self._orders.mark_known(rec)
        rec.doubt = ""
        self._orders.bind(rec, report.venue_order_id)
        rec.sent = rec.row.sent = True  # a report proves the D reached the venue
        status = report.ord_status
        replaced = rec.pending_replace is not None and report.clordid == rec.pending_replace[0]
        if status == "5" or (replaced and status in ("0", "1", "2")):
            # before any fill the same report carries: the fill is on the new terms (issue 23 finding 8)
            self._replaced(rec, report.clordid, report.qty, report.price)
        if report.is_fill and not self._apply_fill(rec, report, now):
            self._save(rec)
            return
        if status == "8":
            text = report.text or "rejected by the venue"
            if replaced:  # our G refused by an ER rather than a 9 (FIX allows it): the order works on
                rec.pending_replace = None
                self._orders.answer(rec, reject_code(text), f"replace refused: {text}")
            else:
                self._orders.finish(rec, OrderStatus.REJECTED, reject_code(text), text)
        elif status == "4":
            self._hold(rec, self._orders.finish_after_fills(rec, OrderStatus.CANCELLED, report.cum_qty,
                                                            reason=report.text))
        elif status == "C":
            self._hold(rec, self._orders.finish_after_fills(rec, OrderStatus.EXPIRED, report.cum_qty,
                                                            reason=report.text))
        elif status == "2" or (report.leaves_qty == 0 and status in ("0", "1", "5")):
            # the venue says nothing is left: the order ends at what it counts filled, held until
            # those fills are booked. Short of our quantity (the venue worked less than we asked) the
            # engine cannot be FILLED at it: the rest ends CANCELLED, saying so
            self._ack_venue_qty(rec, report)
            done = report.cum_qty or rec.cum_qty
            if done >= rec.qty:
                final = self._orders.finish_after_fills(rec, OrderStatus.FILLED, done)
            else:
                final = self._orders.finish_after_fills(
                    rec, OrderStatus.CANCELLED, done, reason=f"the venue ended the order (39={status}, 151=0) at "
                    f"{done} filled of {rec.qty}")
            self._hold(rec, final)
        elif status in ("0", "1", "6", "E"):
            self._ack_venue_qty(rec, report)
        self._save(rec)
        self._cancel_if_wanted(rec)  # (a row reloaded unsent that the venue had; a G now answered)

    def _ack_venue_qty(self, rec: _Track, report: Any) -> None:
        """NEW, with the venue's quantity when it works the order on another one than ours (said
        loudly: the order then ends by the venue's 39=2 / 151=0 at that quantity)."""
        qty = report.qty
        if qty is not None and qty > 0 and qty != rec.qty and rec.pending_replace is None:
            if not rec.acked:
                self.counters["venue_quantity_differs"] += 1
                log.warning("midchains_fix %s: order %s works at %s at the venue, not %s", self.venue,
                            rec.client_id, qty, rec.qty)
            self._orders.ack(rec, qty=qty)
            return
        self._orders.ack(rec)

    def _apply_fill(self, rec: _Track, report: Any, now: int) -> bool:
        """Book and deliver one execution. 001's ER table has no LastPx (31): the price is then what
        AvgPx (6) and the change of CumQty (14) make, against the fills booked here. False (an
        anomaly: the order kept unknown, nothing booked) when it cannot be priced or 14 does not
        follow what was booked."""
        assert report.last_qty is not None and self._state is not None
        price = report.last_px
        if self._state.has_fill(report.exec_id):
            self.counters["duplicate_fills"] += 1
            return True
        booked, notional = self._state.filled(rec.client_id)
        before = report.cum_qty - report.last_qty
        if report.cum_qty and before != booked:
            self._anomaly(rec, "cum_qty_mismatch",
                          f"execution {report.exec_id}: CumQty (14) {report.cum_qty} less this fill's "
                          f"{report.last_qty} is not the {booked} booked here (a report was lost)")
            if price is None:
                return False
        if price is None:
            price = self._derived_price(rec, report, notional)
            if price is None:
                self._anomaly(rec, "fill_unpriced",
                              f"execution {report.exec_id} without LastPx (31) cannot be priced from AvgPx (6) "
                              f"{report.avg_px} and CumQty (14) {report.cum_qty}")
                return False
        fill = Fill(self.venue, rec.symbol, rec.client_id, rec.venue_order_id or report.venue_order_id,
                    report.exec_id, rec.side, price, report.last_qty, now, report.liquidity)
        if self._state.add_fill(fill):
            self._orders.fill(rec, fill)
        return True

    def _derived_price(self, rec: _Track, report: Any, notional: Decimal) -> Decimal | None:
        """This execution's price from the order's AvgPx after it and the notional booked before it
        (on the symbol's tick when the instrument has one: AvgPx is rounded by the venue)."""
        if report.avg_px is None or not report.cum_qty:
            return None
        price = (report.avg_px * report.cum_qty - notional) / report.last_qty
        instrument = self.instruments.get(rec.symbol)
        tick = instrument.tick_size if instrument is not None else None
        if tick:
            price = (price / tick).to_integral_value() * tick
        return price if price > 0 else None

    def _anomaly(self, rec: _Track | None, kind: str, what: str) -> None:
        """Something in the venue's reports does not add up: counted, said loudly (and to the
        engine, whose anomalies reach the report and metrics), and the order kept unknown
        (reconciliation asks; shutdown names it) rather than settled on a guess."""
        self.counters["anomalies"] += 1
        log.error("midchains_fix %s: ANOMALY%s: %s", self.venue, f" on order {rec.client_id}" if rec else "", what)
        self.sink.on_anomaly(self.venue, kind, f"order {rec.client_id}: {what}" if rec else what)
        if rec is not None:
            rec.doubt = what
            self._orders.mark_unknown(rec, what)

    def _hold(self, rec: _Track, final_now: bool) -> None:
        """A final state held for fills not booked yet is forced, with an alert, once they are
        overdue (they come on this same session: late means lost)."""
        if not final_now and rec.held is not None:
            self.clock.call_later(HELD_FINAL_TIMEOUT_NS, self._force_held, rec)

    def _force_held(self, rec: _Track) -> None:
        held = rec.held
        if held is None or rec.final is not None or self._state is None:  # (nothing after close)
            return
        self._anomaly(None, "held_final_forced",
                      f"order {rec.client_id}: the venue's final state {held.status.value} counts "
                      f"{held.venue_filled} filled, {rec.cum_qty} booked after {HELD_FINAL_TIMEOUT_NS // NS} s; "
                      "forced final (the missing fills will be applied if they ever come)")
        self._orders.release_held(rec, force=True)
        self._save(rec)

    def _untracked_report(self, report: Any, now: int) -> None:
        """A report for an order this adapter has no record of (placed by another client, or before
        its state file): a fill is passed on once so the engine records it; states are logged."""
        self.counters["untracked_reports"] += 1
        if report.is_fill:
            fill = Fill(self.venue, report.symbol, clordid_root(report.clordid), report.venue_order_id,
                        report.exec_id, report.side, report.last_px, report.last_qty, now, report.liquidity)
            assert self._state is not None
            if report.side is None:  # a Fill needs a side: counted and said, never silently dropped
                self._anomaly(None, "fill_without_side",
                              f"execution {report.exec_id} for unknown order {report.clordid} has no Side "
                              f"(54): {report.last_qty} @ {report.last_px} not delivered")
            elif self._state.add_fill(fill):
                self._orders.untracked_fill(fill)
            return
        log.info("midchains_fix %s: report for an order this adapter does not know: 11=%s 39=%s", self.venue,
                 report.clordid, report.ord_status)

    def _replaced(self, rec: _Track, clordid: str, qty: Decimal | None, price: Decimal | None) -> None:
        """The gateway took our G: the order works under the new ClOrdID on the new terms. With no
        G pending (sent before a restart: pending requests are not kept) the venue's terms are
        recorded, so the next F names the ClOrdID the venue now works the order under."""
        pending = rec.pending_replace
        if pending is None:  # (a G from before the pending replace was kept in the state file)
            if clordid_root(clordid) == rec.row.root:
                rec.row.clordid = clordid
            if qty is not None:
                rec.qty = rec.row.qty = qty
            if price is not None:
                rec.price = rec.row.price = price
            if qty is not None or price is not None:  # the engine learns the venue's terms too
                self._orders.answer(rec, price=rec.price, qty=rec.qty)
            return
        clordid, asked_qty, asked_price, base = pending
        rec.pending_replace = None
        rec.row.clordid = clordid
        rec.row.base = base
        new_qty = qty if qty is not None else asked_qty
        new_price = price if price is not None else asked_price
        rec.qty = rec.row.qty = new_qty
        rec.price = rec.row.price = new_price
        self._orders.answer(rec, price=new_price, qty=new_qty)

    def _on_session_reject(self, message: FixMessage) -> None:
        """A session-level Reject (3) of a message of ours. By FIX its application never saw the
        message: our D is rejected (the order never reached the book), our F or G refused (the order
        works on as it was), anything else only logged. The message is found by its RefSeqNum (45)
        among the frames the sequence store keeps for resending; one no longer kept is logged."""
        self.counters["session_rejects"] += 1
        ref = message.get(45) or ""
        reason = message.get(58) or "no reason given"
        log.warning("midchains_fix %s: the gateway rejected our message %s (373=%s): %s", self.venue, ref or "?",
                    message.get(373) or "-", reason)
        sent = self._sent_message(ref)
        if sent is None or sent.msg_type not in ("D", "F", "G"):
            return
        clordid = sent.get(11) or ""
        rec = self._find(clordid, sent.get(41) or "")
        if rec is None or rec.terminal:
            return
        text = f"rejected by the gateway's FIX session (RefSeqNum {ref}): {reason}"
        if sent.msg_type == "D":
            if rec.acked:  # a report already proved the order working: that report wins
                return
            self._orders.finish(rec, OrderStatus.REJECTED, reject_code(reason), text)
        elif sent.msg_type == "G":
            pending = rec.pending_replace
            if pending is None or pending[0] != clordid:
                return
            rec.pending_replace = None
            self._orders.answer(rec, reject_code(reason), f"replace refused: {text}", status=rec.live)
        else:
            if rec.pending_cancel != clordid:
                return
            rec.pending_cancel = ""
            self._orders.answer(rec, reject_code(reason), f"cancel refused: {text}", status=rec.live)
        self._save(rec)
        self._cancel_if_wanted(rec)

    def _sent_message(self, ref_seq: str) -> FixMessage | None:
        """Our message sent with sequence number ``ref_seq``, read back from the sequence store."""
        store = self._link.store
        if not (ref_seq.isascii() and ref_seq.isdigit() and len(ref_seq) <= 18) or store is None:  # as codec.py
            return None
        frame = store.sent_frames(int(ref_seq), int(ref_seq)).get(int(ref_seq))
        if frame is None:
            log.warning("midchains_fix %s: our message %s is no longer kept: its order is not told", self.venue,
                        ref_seq)
            return None
        try:
            return decode(frame)
        except FixCodecError as exc:  # our own frame: a corrupt store, said and left
            log.error("midchains_fix %s: our kept message %s cannot be read: %s", self.venue, ref_seq, exc)
            return None

    def _on_cancel_reject(self, message: FixMessage) -> None:
        try:
            refusal = parse_cancel_reject(message)
        except ReportError as exc:
            self._bad.record(exc.kind, f"OrderCancelReject: {exc}", _sample(message))
            return
        rec = self._find(refusal.clordid, refusal.orig_clordid)
        if rec is None:
            log.info("midchains_fix %s: cancel reject for an unknown order: %s", self.venue, refusal.text)
            return
        pending = rec.pending_replace
        if refusal.response_to == "G" or (pending is not None and refusal.clordid == pending[0]):
            rec.pending_replace = None
            what = "replace"
        else:
            rec.pending_cancel = ""
            what = "cancel"
        if not rec.terminal:
            self._orders.answer(rec, refusal.code, f"{what} refused: {refusal.text}", status=rec.live)
        self._save(rec)
        self._cancel_if_wanted(rec)

    # ---- link ------------------------------------------------------------------------------------
    def _on_status(self, status: str, detail: str) -> None:
        """The link's word to the engine. ``stale`` (our TestRequest out after a silence) is logged,
        not told: the engine's "stale" means no market data, and this session carries none (the
        market-data adapter says when data stops); a gateway that stays silent is a disconnect."""
        if status == STALE or (status == CONNECTED and self._told == CONNECTED):
            self.counters["stale" if status == STALE else "stale_ended"] += 1
            log.log(logging.WARNING if status == STALE else logging.INFO, "midchains_fix %s: %s", self.venue,
                    detail if status == STALE else f"the gateway answered again ({detail})")
            return
        self._told = status
        now = self.clock.now_ns()
        if status == DISCONNECTED:
            self._down_since = now
            for rec in self._orders.open_records():
                if rec.pending_cancel or rec.pending_replace is not None or not rec.acked:
                    self._orders.mark_unknown(rec, f"connection lost ({detail})")
        elif status == CONNECTED:
            # an order stays unknown until a report names it (issue 23 finding 3): being connected
            # again says nothing about a D or F whose answer was lost
            today = trading_day(now)
            away_since = trading_day(self._down_since) if self._down_since is not None else self._day_before_start
            day_changed = away_since is not None and away_since != today  # a drop or a restart crossed the reset
            self._down_since = self._day_before_start = None
            for rec in self._orders.open_records():
                if self._expire_overdue(rec, now):
                    continue
                if day_changed and rec.row.expire_ns is None:
                    # MID-13: the gateway drops the day's queued reports at the 01:00 UTC reset: a
                    # fill or cancel of this GTC order while we were away may be lost for good
                    self._anomaly(rec, "reports_dropped_at_reset",
                                  "the trading day changed while disconnected or stopped: reports the "
                                  "gateway queued for this GTC order were dropped at the daily reset")
                self._cancel_if_wanted(rec, even_if_replacing=True)
        self.sink.on_venue_status(self.venue, status, detail)

    def _expire_overdue(self, rec: _Track, now: int) -> bool:
        """A DAY order (GTD, our own 126) past its ExpireTime + grace without a report: the gateway
        dropped it with the day's queue at the 01:00 UTC reset (MID-13). True if it ended here."""
        expire = rec.row.expire_ns
        if expire is None or rec.row.tif is not TimeInForce.DAY or now < expire + EXPIRY_GRACE_NS or rec.terminal:
            return False
        log.warning("midchains_fix %s: order %s expired at the trading day's end with no report (none survives "
                    "the daily reset)", self.venue, rec.client_id)
        self._orders.finish_after_fills(rec, OrderStatus.EXPIRED, rec.cum_qty,
                                        reason="expired at the trading day's end (GTD 126)")
        self._save(rec)
        return True

    def _arm_expiry(self, rec: _Track) -> None:
        """A timer at a DAY order's ExpireTime + grace: a session that stays up over the reset ends it
        too (not only a reconnect), once caught up (a drop leaves it to the reconnect)."""
        expire = rec.row.expire_ns
        if expire is None or rec.row.tif is not TimeInForce.DAY or rec.terminal:
            return
        self.clock.call_later(max(0, expire + EXPIRY_GRACE_NS - self.clock.now_ns()), self._on_expiry_timer, rec)

    def _on_expiry_timer(self, rec: _Track) -> None:
        if self._told == CONNECTED and self._state is not None:  # (not after close)
            self._expire_overdue(rec, self.clock.now_ns())

    def _on_skipped(self, skipped: Skipped) -> None:
        """The gateway's SequenceReset passed over inbound numbers. A gateway gap-fills its own
        Heartbeats on every resend, but FIX lets it gap-fill application messages it deems stale
        too, and the session cannot tell which: an ExecutionReport among them is lost, and MidChains
        has no OrderStatusRequest to ask again (MID-5). Said loudly, with the open orders it may
        concern; they settle by their next report (a cancel's answer, a fill, an expiry)."""
        open_orders = [rec.client_id for rec in self._orders.open_records()]
        for rec in self._orders.open_records():  # unknown, as after a drop: only a report settles them
            rec.doubt = f"inbound {skipped.first}..{skipped.last} skipped ({skipped.reason})"
            self._orders.mark_unknown(rec, rec.doubt)
        if open_orders:
            self.counters["anomalies"] += 1
            self.sink.on_anomaly(self.venue, "inbound_skipped", f"inbound {skipped.first}..{skipped.last} skipped "
                                 f"({skipped.reason}); open orders may have missed a report: "
                                 f"{', '.join(open_orders[:20])}")
        log.log(logging.WARNING if open_orders else logging.INFO,
                "midchains_fix %s: the gateway skipped inbound messages %d..%d (%s); an execution report among "
                "them would be lost, and FIX here has no status request (MID-5); open orders: %s", self.venue,
                skipped.first, skipped.last, skipped.reason, ", ".join(open_orders[:20]) or "none")

    def _unsent(self, rec: _Track, what: str, why: str) -> None:
        """A request of ``rec`` that never left (the link dropped or closed first)."""
        if rec.terminal:
            return
        if what == "order":
            self._orders.finish(rec, OrderStatus.REJECTED, int(Reject.BACKEND_CONNECTIVITY), f"order not sent: {why}")
        else:
            if what == "cancel":
                rec.pending_cancel = ""
            else:
                rec.pending_replace = None
            self._orders.answer(rec, int(Reject.BACKEND_CONNECTIVITY), f"{what} not sent: {why}", status=rec.live)
        self._save(rec)
        if what == "replace":
            self._cancel_if_wanted(rec)

    def _logon_fields(self) -> Sequence[tuple[int, str]]:
        """A Password (554) when the options name one, read now (a rotated file is picked up)."""
        opts = self.fix_options
        if opts.password_env is None and opts.password_file is None:
            return ()
        return ((554, read_secret(opts.password_env, opts.password_file, "MidChains FIX password")),)

    # ---- bookkeeping -----------------------------------------------------------------------------
    def _track(self, row: OrderRow) -> _Track:
        rec = _Track(row)
        rec.cum_qty = row.cum_qty
        if row.status in TERMINAL_STATUSES:
            rec.acked = True
            rec.final = rec.status = row.status
        elif row.status is not OrderStatus.PENDING_NEW:
            rec.acked = True
            rec.status = row.status if row.status in _LIVE else rec.live
        self._orders.add(rec)
        self._by_root[row.root] = rec
        return rec

    def _tracked(self, order: Order) -> _Track | None:
        """Our record of ``order``, loaded from the state file when this instance never saw it."""
        rec = self._orders.get(order.client_id)
        if rec is None and self._state is not None:
            row = self._state.by_client_id(order.client_id)
            if row is not None and row.status not in TERMINAL_STATUSES:
                rec = self._track(row)
        return rec

    def _find(self, clordid: str, orig_clordid: str) -> _Track | None:
        """The order a report names by either ClOrdID (every one of ours starts with its root)."""
        for wire_id in (clordid, orig_clordid):
            if not wire_id:
                continue
            root = clordid_root(wire_id)
            rec = self._by_root.get(root)
            if rec is None and self._state is not None:
                row = self._state.by_root(root)
                if row is not None:
                    rec = self._track(row)  # a finished one comes back final: a late report changes nothing
            if rec is not None:
                return rec
        return None

    def _terms(self, row: OrderRow) -> OrderTerms:
        """What an F repeats of the order: its terms now, at a FractionBase that carries its
        quantity now (a replace the venue reported after a restart may have changed it)."""
        try:
            base = fraction_base(self.instruments.get(row.symbol), row.symbol, row.qty, self.fix_options.fraction_bases)
        except OrderError:
            base = row.base
        return OrderTerms(row.clordid, row.symbol, row.side, row.qty, row.price, row.order_type, row.tif, base,
                          row.expire_ns)

    def _next_clordid(self, rec: _Track) -> str:
        rec.row.chain += 1
        return chained(rec.row.root, rec.row.chain)

    def _refuse(self, rec: _Track, code: int, reason: str) -> None:
        """A new order refused before it left (from inside ``submit``: told after it returns)."""
        self._orders.finish(rec, OrderStatus.REJECTED, code, reason, later=True)
        self._save(rec)

    def _save(self, rec: _Track) -> None:
        if self._state is None:
            return
        row = rec.row
        row.status = rec.final if rec.final is not None else (rec.status if rec.acked else OrderStatus.PENDING_NEW)
        row.cum_qty = rec.cum_qty
        row.venue_order_id = rec.venue_order_id
        row.pending_replace = _encode_replace(rec.pending_replace)
        row.updated_ns = self.clock.now_ns()
        self._state.save(row)

    # ---- reconciliation --------------------------------------------------------------------------
    async def query_open_orders(self) -> list[VenueOrder]:
        """Orders the gateway acknowledged and has not finished, as it last reported them."""
        if self._state is None:
            return []
        return [self._venue_order(row) for row in self._state.open_orders()
                if row.status is not OrderStatus.PENDING_NEW]

    async def query_order(self, client_id: str) -> VenueOrder | None:
        """The gateway's last word on one order; None only when its D never left (never received).
        UNKNOWN for one whose D left unanswered, or whose reports do not add up: the engine keeps
        it working-unknown until a report settles it (issue 23 finding 3)."""
        row = self._state.by_client_id(client_id) if self._state is not None else None
        if row is None or (row.status is OrderStatus.PENDING_NEW and not row.sent):
            return None
        if row.status is OrderStatus.PENDING_NEW:
            return replace(row.venue_order(self.venue), status=OrderStatus.UNKNOWN)
        return self._venue_order(row)

    def _venue_order(self, row: OrderRow) -> VenueOrder:
        """``row`` as a reconciliation answer: UNKNOWN while its reports do not add up (an anomaly,
        a skipped inbound range), until a report names the order again."""
        rec = self._orders.get(row.client_id)
        seen = row.venue_order(self.venue)
        if rec is not None and rec.doubt and rec.final is None:
            return replace(seen, status=OrderStatus.UNKNOWN)
        return seen

    async def query_fills(self, since_ns: int) -> list[Fill]:
        """Every execution received at or after ``since_ns`` (engine clock), from the state file."""
        return [] if self._state is None else self._state.fills_since(self.venue, since_ns)

    # ---- reporting -------------------------------------------------------------------------------
    def stats(self) -> dict[str, int]:
        return {**self._link.stats, **self.counters}

    def bad_input(self) -> dict[str, int]:
        return dict(self._bad.counts)

    def describe(self) -> dict[str, Any]:
        opts = self.fix_options
        # not the SenderCompID: the only identity 001's Logon carries, kept out of reports like a credential
        return {"name": self.name, "venue": self.venue, "gateway": f"{opts.host}:{opts.port}", "tls": opts.tls,
                "target_comp_id": opts.target_comp_id, "queries": QUERIES}

