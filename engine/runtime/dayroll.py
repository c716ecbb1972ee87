"""Session changes and the trading day: new day, end of day, forgetting finished orders.

A new trading day makes yesterday's close the reference, lifts band halts and starts the day's
PnL and order-to-trade counts; the close rolls settlement one trading day and saves the
strategies' states; orders that finished before the day are dropped from memory (issue 17).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING

from engine.model import (
    ZERO,
    Phase,
    SessionState,
)

if TYPE_CHECKING:
    from engine.runtime.venues import BookEntry


log = logging.getLogger("engine")


class DayRollMixin:
    """Session and day handling of :class:`~engine.runtime.Runtime`."""

    def on_session_change(self, old: SessionState, new: SessionState) -> None:
        """Tell venues first (the embedded venue expires DAY orders at the close), then strategies.
        A new trading day resets the day's references; the close rolls settlement one day."""
        self.session = new
        self.sessions_seen.append(new.phase.value)
        log.info("session %s -> %s (%s)", old.phase.value, new.phase.value, new.trading_day)
        if new.phase is not Phase.CLOSED and new.trading_day:
            day = dt.date.fromisoformat(new.trading_day)
            if day != self.trading_day:
                self._new_day(day)
        for venue in self.venues.values():
            venue.adapter.on_session(new)
            if venue.feed is not None:
                venue.feed.on_session(new)
            if venue.orphans and new.accepts_modify_cancel:
                self.cancel_orphans(venue)
        if new.phase is Phase.CLOSED and old.phase is not Phase.CLOSED:
            self._end_of_day()
        for runner in list(self.runners.values()):
            if runner.state == "paused":  # a pause lasts at most until the next session phase
                self.resume_strategy(runner)
            self.call_rare(runner, "on_session_change", old=old.phase.value, new=new.phase.value)
        self.timeline.phase(self.clock.now_ns(), new.phase.value)
        if new.phase is Phase.PRE_OPEN and new.trading_day:
            for venue, symbol, entry in self._traded_entries():
                if entry.band is not None and entry.reference is not None:
                    self.timeline.band(new.trading_day, f"{venue}:{symbol}", *entry.band, entry.reference)
        self.sample_timeline()

    def _traded_entries(self) -> Iterator[tuple[str, str, BookEntry]]:
        """The book entries of every configured strategy's instruments (stopped ones included)."""
        traded = {(r.venue, symbol): entry for r in self.runners.values() for symbol, entry in r.facts.items()}
        for (venue, symbol), entry in traded.items():
            yield venue, symbol, entry  # type: ignore[misc]

    def sample_timeline(self) -> None:
        """One point of every strategy's PnL and positions and every traded price, for the page."""
        strategies = {
            runner.name: {
                "realized": runner.realized_pnl,
                "unrealized": self.unrealized_pnl(runner),
                "positions": {symbol: p.qty for symbol, p in runner.positions.items()},
            }
            for runner in self.runners.values()
        }
        prices = {
            f"{venue}:{symbol}": entry.last_price if entry.last_price is not None else entry.book.mid
            for venue, symbol, entry in self._traded_entries()
        }
        self.timeline.sample(self.clock.now_ns(), strategies, prices)

    def _new_day(self, day: dt.date) -> None:
        """Yesterday's close becomes today's reference; band halts lift; daily PnL starts at 0."""
        self.trading_day = day
        for venue in self.venues.values():
            for entry in venue.entries.values():
                if entry.closing is not None:
                    entry.set_reference(entry.closing)
                entry.closing = None
                entry.band_halt = None
        for runner in self.runners.values():
            runner.pnl_day_start = self.strategy_pnl(runner)
            runner.otr_day_base = (runner.messages_sent, runner.fills)
            runner.pauses_today = 0
        self.pnl_day_start = sum((self.strategy_pnl(r) for r in self.runners.values()), ZERO)
        if self.kill_switch.reset_day() is not None:
            self.journal_kill_switch()
        self.forget_finished_orders()
        if self.journal is not None:
            self.journal.mark_day(day)
            self.take_snapshot("day start")

    def forget_finished_orders(self) -> int:
        """Drop the orders that reached a final state before this trading day from each venue's
        order map, so a process that runs for weeks does not keep every order it ever sent (issue
        17). They are in the journal; no venue message can change them; a restarted engine does not
        load them either, and reconciliation treats a late word about one the way it does after a
        restart (it asks the venue). Client ids stay unique: the per-strategy sequence only grows
        (and is reserved in the journal). Returns how many were dropped."""
        dropped = 0
        for venue in self.venues.values():
            orders = venue.orders  # mutated in place: the gate's UniqueClientId holds this dict
            finished = [client_id for client_id, order in orders.items() if order.is_terminal]
            for client_id in finished:
                del orders[client_id]
            dropped += len(finished)
        return dropped

    def _end_of_day(self) -> None:
        """Settlement rolls one trading day: what settles by the next trading day becomes usable."""
        self.flush_logs()
        today = self.today()
        if self.rolled_day == today:
            return
        self.rolled_day = today
        next_day = self.calendar.next_trading_day(today, include_self=False)
        now = self.clock.now_ns()
        for venue in self.venues.values():
            settled = venue.account.roll(next_day)
            if settled or venue.account.has_unsettled:
                # totals only: one short line however many fills the day had (issue 18)
                log.info("settlement %s %s close: %s", venue.name, today.isoformat(),
                         venue.account.settlement_line(settled))
            if settled and self.journal is not None:
                self.journal.settled(venue.name, now, settled)
        if self.journal is not None:
            self.save_strategy_states()
            self.journal.mark_day_done(today)
            self.take_snapshot("close")

    def today(self) -> dt.date:
        return self.trading_day if self.trading_day is not None else self.clock.now().date()
