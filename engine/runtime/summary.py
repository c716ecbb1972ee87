"""The read side: counters and summaries for the heartbeat, the metrics and the report."""

from __future__ import annotations

import logging
from collections import Counter
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from engine.model import (
    ZERO,
)
from engine.risk.killswitch import (
    order_to_trade_ratio,
)
from engine.venue import VenueAdapter

if TYPE_CHECKING:
    from engine.runtime.runner import StrategyRunner
    from engine.runtime.venues import VenueState


log = logging.getLogger("engine")


class SummaryMixin:
    """Report and metrics figures of :class:`~engine.runtime.Runtime`."""

    @property
    def final_status(self) -> Counter[str]:
        """Orders by final status over every strategy (the strategies' own counters are the truth)."""
        return sum((r.final_status for r in self.runners.values()), Counter())

    @property
    def rejects_by_code(self) -> Counter[int]:
        return sum((r.rejects_by_code for r in self.runners.values()), Counter())

    @property
    def n_book(self) -> int:
        return sum(entry.n_book for venue in self.venues.values() for entry in venue.entries.values())

    @property
    def n_trade(self) -> int:
        return sum(entry.n_trade for venue in self.venues.values() for entry in venue.entries.values())

    @property
    def n_fill(self) -> int:
        return sum(venue.n_fill for venue in self.venues.values())

    @property
    def n_duplicate_fills(self) -> int:
        return sum(venue.n_duplicate_fills for venue in self.venues.values())

    def open_order_count(self) -> int:
        return sum(len(r.open_orders) for r in self.runners.values())

    def unrealized_pnl(self, runner: StrategyRunner) -> Decimal:
        """The strategy's open positions marked at mid, else last trade, else the reference."""
        unrealized = ZERO
        for symbol, position in runner.positions.items():
            unrealized += position.unrealized_pnl(self.last_price(runner.venue, symbol))
        return unrealized

    def strategy_summary(self, runner: StrategyRunner) -> dict[str, Any]:
        """realized_pnl is net: gross_pnl - fees."""
        unrealized = self.unrealized_pnl(runner)
        fees = runner.fees
        return {
            "orders": runner.orders_submitted,
            "refused": runner.orders_refused,
            "amends_refused": runner.amends_refused,
            "cancels_refused": runner.cancels_refused,
            "fills": runner.fills,
            "amends": runner.amends_sent,
            "cancels": runner.cancels_sent,
            # (orders + amends + cancels that reached the wire) per fill over the run; no fill: the count
            "order_to_trade": str(order_to_trade_ratio(runner.messages_sent, runner.fills)),
            "algo_id": runner.algo_id,
            "rejects": runner.rejects,
            "position": {s: str(p.qty) for s, p in sorted(runner.positions.items())},
            "gross_pnl": str(runner.realized_pnl + fees),
            "fees": str(fees),
            "realized_pnl": str(runner.realized_pnl),
            "unrealized_pnl": str(unrealized.quantize(Decimal("0.01"))),
            "state": runner.state,
            "mmp_triggers": runner.mmp_triggers,
            "hook_errors": runner.hook_errors,
            "hook_overruns": runner.hook_overruns,
            "slowest_hook_ms": round(runner.slowest_hook_ns / 1e6, 3),
            **({"failure": runner.failure} if runner.failure else {}),
            **({"pauses": runner.pauses, "pause_reason": runner.pause_reason} if runner.pauses else {}),
        }

    def venue_summary(self, venue: VenueState) -> dict[str, Any]:
        summary: dict[str, Any] = {
            "status": venue.status,
            "disconnects": venue.disconnects,
            "currency": venue.account.currency,  # every amount of the account (PKR on PSX)
            "account": venue.account.snapshot(),
        }
        if venue.account_events:
            summary["account_events"] = dict(sorted(venue.account_events.items()))
        summary.update(_wire_counts(venue.adapter))
        if venue.feed is not None:
            summary["market_data"] = {"adapter": venue.feed.name, "status": venue.data_status,
                                      **_wire_counts(venue.feed)}
        return summary


def _wire_counts(adapter: VenueAdapter) -> dict[str, Any]:
    """The counters every adapter reports (``Adapter.stats``), and what it dropped as bad input
    by kind (``Adapter.bad_input``), for the report's venue section."""
    stats = adapter.stats()
    counts: dict[str, Any] = {key: int(stats.get(key, 0)) for key in ("messages_in", "messages_out", "reconnects")}
    counts["bad_input"] = {kind: int(n) for kind, n in sorted(adapter.bad_input().items())}
    return counts
