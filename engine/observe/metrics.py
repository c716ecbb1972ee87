"""Prometheus metrics: the catalogue of every series the engine exports.

The per-event path never touches prometheus-client: it counts in plain integers on the runtime's
own objects, and the collector turns them into metric families at scrape time (see
:mod:`engine.observe.snapshot`). This module is the one list of names, types, help texts and labels; the
shipped Grafana dashboard and Prometheus alert rules are tested against it, so a query can never
name a series the engine does not export.

Labels are bounded by configuration: strategy, venue, symbol (the instrument master), reject code
(the code table), hook name, status and state enums, rate bucket names. Never an order id or a
price.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

__all__ = ["CATALOG", "Metric", "exported_names"]

Kind = Literal["counter", "gauge", "histogram"]


class Metric(NamedTuple):
    kind: Kind
    help: str
    labels: tuple[str, ...]
    #: histograms only: whether ``_sum`` is exported (hook durations have none: summing every
    #: call's nanoseconds per strategy would cost the per-event loop an addition per strategy)
    has_sum: bool = True


#: base name -> metric. Counters are exported with ``_total``; histograms as ``_bucket``,
#: ``_sum`` and ``_count``.
CATALOG: dict[str, Metric] = {
    # market data and venues
    "engine_events": Metric("counter", "Events received from venues, by kind (book, trade, fill, order_update).",
                            ("venue", "kind")),
    "engine_venue_up": Metric("gauge", "1 while the venue is connected and reconciled, else 0.", ("venue",)),
    "engine_venue_state": Metric("gauge", "1 for the venue's current connection state (connected, disconnected, "
                                 "reconciling, stale).", ("venue", "state")),
    "engine_venue_disconnects": Metric("counter", "Connection drops reported by the venue's adapter.", ("venue",)),
    "engine_venue_bad_input": Metric("counter", "Frames, messages and webhooks a venue's adapter dropped as bad "
                                     "input, by kind (not_json, bad_number, bad_signature, ...); channel: venue (its "
                                     "adapter) or market_data (its separate market-data adapter).",
                                     ("venue", "channel", "kind")),
    "engine_venue_account_events": Metric("counter", "A venue's word on the account, by kind (margin_call, "
                                          "account_alert): a margin call also moves the kill switch.",
                                          ("venue", "kind")),
    # orders
    "engine_orders_submitted": Metric("counter", "Orders handed to the venue adapter (what reached the wire); "
                                      "refusals are engine_orders_refused.", ("strategy", "venue")),
    "engine_orders_refused": Metric("counter", "Orders refused in the process (risk gate, session, rate budget): "
                                    "never sent.", ("strategy", "venue")),
    "engine_orders_final": Metric("counter", "Orders that reached a final status (filled, cancelled, rejected, "
                                  "expired).", ("strategy", "venue", "status")),
    "engine_open_orders": Metric("gauge", "Orders working at the venue now.", ("strategy", "venue")),
    "engine_fills": Metric("counter", "Fills applied (duplicates excluded).", ("strategy", "venue")),
    "engine_duplicate_fills": Metric("counter", "Fills dropped because their exec id was already applied.",
                                     ("venue",)),
    "engine_order_messages": Metric("counter", "Orders, amends and cancels of a strategy that reached the wire, by "
                                    "kind (order, amend, cancel): the order-to-trade ratio's numerator.",
                                    ("strategy", "kind")),
    "engine_order_to_trade_ratio": Metric("gauge", "A strategy's order-to-trade ratio today: (orders + amends + "
                                          "cancels that reached the wire) / max(fills, 1); with no fill, the "
                                          "message count. risk.kill_switch.order_to_trade limits it.",
                                          ("strategy",)),
    "engine_anomalies": Metric("counter", "What a venue sent that the engine did not apply as sent, by kind "
                               "(fill_unknown_order, fee_mismatch: a venue's fee off the schedule, ...).", ("kind",)),
    "engine_rejects": Metric("counter", "Orders, amends and cancels refused in the process, by reject code.",
                             ("strategy", "code")),
    # latency
    "engine_hook_duration_seconds": Metric("histogram", "Time spent in a strategy hook. Calls of 4.1 us or less "
                                           "are only counted (lowest bucket); no _sum.", ("strategy", "hook"),
                                           has_sum=False),
    "engine_tick_to_order_seconds": Metric("histogram", "From an event entering the runtime to the order (or "
                                           "amend) it caused being handed to the adapter.", ("venue",)),
    "engine_event_loop_lag_seconds": Metric("gauge", "How late the event loop woke a periodic task, last sample.",
                                            ()),
    # risk
    "engine_rate_limit_headroom": Metric("gauge", "Requests a rate bucket would take now.", ("bucket",)),
    "engine_rate_limit_refusals": Metric("counter", "Requests refused (3001) because the bucket was spent.",
                                         ("bucket",)),
    "engine_mmp_triggers": Metric("counter", "Market-maker protection triggers (local or venue).", ("strategy",)),
    "engine_kill_switch_state": Metric("gauge", "1 for the account's current trading state (active, reducing, "
                                       "halted).", ("state",)),
    "engine_strategy_state": Metric("gauge", "1 for the strategy's current state (running, paused, stopped, failed).",
                                    ("strategy", "state")),
    "engine_hook_errors": Metric("counter", "Hook calls that raised.", ("strategy", "hook")),
    "engine_hook_overruns": Metric("counter", "Hook calls that ran past the time budget.", ("strategy",)),
    # session
    "engine_session_phase": Metric("gauge", "1 for the current PSX session phase.", ("phase",)),
    # positions, PnL, account
    "engine_position_shares": Metric("gauge", "A strategy's position in an instrument, in shares.",
                                     ("strategy", "venue", "symbol")),
    "engine_realized_pnl": Metric("gauge", "A strategy's realized PnL today, net of fees, in the account currency.",
                                  ("strategy",)),
    "engine_gross_pnl": Metric("gauge", "A strategy's realized PnL today before fees (net + fees).", ("strategy",)),
    "engine_fees": Metric("counter", "Fees charged on a strategy's fills (the venue's, else the rule pack's "
                          "schedule), in the account currency.", ("strategy",)),
    "engine_unrealized_pnl": Metric("gauge", "A strategy's unrealized PnL at the last price or mid.",
                                    ("strategy",)),
    "engine_account_cash": Metric("gauge", "Cash of a venue account: settled, unsettled (sale proceeds not yet "
                                  "settled, T+N), reserved by open buys, and buying power.", ("venue", "kind")),
    # process
    "engine_info": Metric("gauge", "Always 1; the labels carry the version and the clock.", ("version", "clock")),
    "engine_metrics_age_seconds": Metric("gauge", "Age of the snapshot this scrape shows (published by the event "
                                         "loop every metrics.publish_seconds).", ()),
}


def exported_names() -> set[str]:
    """Every series name a scrape can contain, as PromQL writes it."""
    names: set[str] = set()
    for name, metric in CATALOG.items():
        if metric.kind == "counter":
            names.add(f"{name}_total")
        elif metric.kind == "histogram":
            names.update((f"{name}_bucket", f"{name}_count"))
            if metric.has_sum:
                names.add(f"{name}_sum")
        else:
            names.add(name)
    return names
