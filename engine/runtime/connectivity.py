"""Venue connection state: cancel-on-disconnect, reconnects, stale market data.

A venue account is in one :class:`VenueStatus` at a time (the enum lives with the rule that reads
it, engine.risk.connectivity, below the runtime; it is re-exported here). ``disconnected``: its open orders become
unknown and new orders are refused (9001). Connected again after a drop it is ``reconciling``
(engine.runtime.recovery) and only then ``connected``. At a restart it is ``recovering`` until
the journal's orders are reconciled (7015). ``stale`` is only ever told to strategies (market data
stopped); it never changes what orders may do.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from engine.model import (
    AccountEvent,
    Fill,
    Order,
    OrderStatus,
    OrderUpdate,
)
from engine.risk.connectivity import CONNECTED, DISCONNECTED, RECONCILING, RECOVERING, STALE, VenueStatus

if TYPE_CHECKING:
    from engine.runtime.core import Runtime
    from engine.runtime.runner import StrategyRunner
    from engine.runtime.venues import VenueState


log = logging.getLogger("engine")

__all__ = ["CONNECTED", "DISCONNECTED", "RECONCILING", "RECOVERING", "STALE", "ConnectivityMixin", "MarketDataSink",
           "VenueStatus"]


class MarketDataSink:
    """What a venue's separate market-data adapter sends into: data straight to the runtime (bound
    methods, no extra call on the event path), statuses as data health only."""

    def __init__(self, runtime: Runtime, venue: str) -> None:
        self.on_book = runtime.on_book
        self.on_trade = runtime.on_trade
        self.on_instrument_status = runtime.on_instrument_status
        self._runtime = runtime
        self._venue = venue

    def on_venue_status(self, venue: str, status: str, detail: str = "") -> None:
        self._runtime.on_market_data_status(self._venue, status, detail)

    def on_account_event(self, event: AccountEvent) -> None:
        self._runtime.on_account_event(event)

    def on_anomaly(self, venue: str, kind: str, detail: str) -> None:
        self._runtime.on_anomaly(self._venue, kind, detail)

    def on_kill_switch(self, state: str, reason: str) -> None:
        """A kill switch broadcast for the account (the ``bus`` adapter, issue 27): the same manual
        trigger as SIGUSR1/SIGUSR2, so one ``engine halt`` halts every engine on the account."""
        from engine.risk.killswitch import TradingState

        self._runtime.manual_trigger(TradingState(state), reason)

    def on_order_update(self, update: OrderUpdate) -> None:
        self._runtime.anomaly("feed_order_event", f"market-data adapter of {self._venue} sent an order update: "
                                                   f"{update!r}")

    def on_fill(self, fill: Fill) -> None:
        self._runtime.anomaly("feed_order_event", f"market-data adapter of {self._venue} sent a fill: {fill!r}")


class ConnectivityMixin:
    """Venue connection handling of :class:`~engine.runtime.Runtime`."""

    def on_anomaly(self, venue: str, kind: str, detail: str) -> None:
        """An adapter's anomaly (VenueEvents.on_anomaly): one of the engine's anomalies, by kind."""
        self.anomaly(kind, f"venue {venue}: {detail}")

    def on_venue_status(self, venue: str, status: str, detail: str = "") -> None:
        """``disconnected``: the venue's open orders become unknown and new orders are refused
        (9001). ``connected`` after a drop: reconcile with the venue, cancel (or keep) what was
        open at the drop, deliver every final state, and only then let orders flow again."""
        state = self.venues.get(venue)
        log.log(logging.WARNING if status != CONNECTED else logging.INFO,
                "venue %s %s%s", venue, status, f": {detail}" if detail else "")
        if state is None:
            return
        if status == DISCONNECTED:
            if state.status is DISCONNECTED:
                return
            was_reconciling = state.status is RECONCILING
            state.status = DISCONNECTED
            state.disconnects += 1
            if not was_reconciling:
                state.dropped_at_ns = self.clock.now_ns()
            state.awaiting_cancels.clear()
            now = self.clock.now_ns()
            marked: list[tuple[StrategyRunner, Order]] = []
            for runner in self.runners_on(venue):
                for order in list(runner.open_orders.values()):
                    if order.status is not OrderStatus.UNKNOWN and order.can_transition(OrderStatus.UNKNOWN):
                        order.transition(OrderStatus.UNKNOWN, now)
                        marked.append((runner, order))
                        state.at_drop[order.client_id] = order
            self._tell_venue_status(venue, DISCONNECTED)
            for runner, order in marked:
                self.notify_order(runner, order)
        elif status == CONNECTED:
            if not state.ever_connected:
                state.ever_connected = True
                if state.status is not RECOVERING:  # at a restart, recovery says when orders may flow
                    state.status = CONNECTED
                return
            if state.status is not DISCONNECTED:
                self._data_flows_again(state)
                return
            state.told_stale = False
            state.status = RECONCILING
            self._tell_venue_status(venue, RECONCILING)
            self.spawn(lambda: self.reconcile(state))
        else:  # "stale" and anything a future adapter reports: tell strategies, keep trading state
            if status == STALE:
                state.told_stale = True
            self._tell_venue_status(venue, status)

    def market_data_sink(self, venue: str) -> MarketDataSink:
        """The sink of a venue's separate market-data adapter: its data goes where any adapter's
        does; its connection statuses only say whether the data is current."""
        return MarketDataSink(self, venue)

    def on_market_data_status(self, venue: str, status: str, detail: str = "") -> None:
        """A market-data adapter's connection: a drop or silence makes the venue's data stale
        (strategies hear ``stale``), never its orders unknown; when data flows again, and the
        order side is connected, strategies hear ``connected``."""
        state = self.venues.get(venue)
        log.log(logging.WARNING if status != CONNECTED else logging.INFO, "market data for venue %s %s%s",
                venue, status, f": {detail}" if detail else "")
        if state is None:
            return
        state.data_status = status
        if status == CONNECTED:
            self._data_flows_again(state)
        elif not state.told_stale:
            state.told_stale = True
            self._tell_venue_status(venue, STALE)

    def _data_flows_again(self, venue: VenueState) -> None:
        """After ``stale``: tell strategies ``connected`` once orders flow and every data source of
        the venue (its own adapter, a separate market-data one) is current again."""
        feed_ok = venue.feed is None or venue.data_status == CONNECTED
        if venue.told_stale and venue.status is CONNECTED and feed_ok:
            venue.told_stale = False
            self._tell_venue_status(venue.name, CONNECTED)

    def _tell_venue_status(self, venue: str, status: str) -> None:
        for runner in self.runners_on(venue):
            self.call_rare(runner, "on_venue_status", venue=venue, status=str(status))  # a plain str to the hook

    def tell_where_venues_stand(self) -> None:
        """Once, after ``on_start`` (the engine calls it when every strategy has started, a restart's
        held strategies included): each strategy hears where its venue stands, ``connected``, or
        ``stale`` while a separate market-data adapter has not said its data is current, or the
        order side's own state. Statuses said before (to strategies not started yet, or held at a
        restart) reach no strategy; from here on only changes are told."""
        for venue in self.venues.values():
            status = str(venue.status)
            if venue.status is CONNECTED and (venue.told_stale or (venue.feed is not None
                                                                   and venue.data_status != CONNECTED)):
                venue.told_stale = True  # the feed's "connected" will say data flows again
                status = STALE
            self._tell_venue_status(venue.name, status)

    def mark_recovering(self, venue: str) -> None:
        """At a restart, before the venue connects: its orders are refused (7015) until recovery
        (engine.runtime.recovery) has reconciled the journal's orders and calls :meth:`venue_ready`."""
        self.venues[venue].status = RECOVERING

    def venue_ready(self, venue: VenueState) -> None:
        """Reconciled: orders flow again, and the venue's strategies hear ``connected`` (then
        ``stale`` when its separate market data is not back yet)."""
        venue.status = CONNECTED
        log.info("venue %s reconciled; orders flow again", venue.name)
        if self.kill_switch.halted:  # restarted halted, or back after a drop: chase what it still works
            self.chase_halt()
        self._tell_venue_status(venue.name, CONNECTED)
        if venue.feed is not None and venue.data_status != CONNECTED:  # orders are back, data is not
            venue.told_stale = True
            self._tell_venue_status(venue.name, STALE)
