"""The runtime: wires adapters <-> books <-> strategies <-> the pre-trade gate.

Adapters push model events in through the :class:`engine.venue.VenueEvents` methods
(``on_book``, ``on_trade``, ``on_fill``, ``on_order_update``, ``on_venue_status``). The runtime
updates books, orders and positions, then calls the hooks of the strategies subscribed to that
instrument. The runtime also owns the risk state the gate reads: one cash account per venue, the
rule pack per instrument, reference and closing prices and halts, request budgets, MMP, the kill
switch and the connection state of every venue.

One module per concern; :class:`Runtime` (``core``) is composed of their mixins:

- ``core``: the shared state, construction (``add_venue``, ``add_strategy``, each strategy's gate),
  the market view the gate reads, a venue's strategies (``runners_on``) and async venue work
  (``spawn``, ``run_pending``);
- ``dispatch``: the per-event path (``on_book``, ``on_trade``, ``on_instrument_status``), hook
  calls, slow-hook accounting, the queue of what a hook caused;
- ``entrance``: the one entrance to the gate: ``submit_order``, ``amend_order`` and
  ``cancel_order``, each with its pre-trade rules, then the hand-off to the venue; the engine's
  own cancels (a strategy's orders, mass cancel, orphans) too;
- ``refusals``: local refusals, the refusal budget, the repeat-refusal rule;
- ``orders``: fills, venue order updates, orphans' fills, client ids, anomalies;
- ``strategies``: a strategy's states (held, paused, failed, stopped);
- ``connectivity``: :class:`VenueStatus`, cancel-on-disconnect, reconnects, stale market data;
- ``recovery``: restart from the journal, reconciliation with the venue, the account sync;
- ``protection``: MMP, loss limits, the kill switch, margin calls;
- ``dayroll``: session changes, new day, end of day, forgetting finished orders;
- ``snapshots``: what the journal keeps; ``summary``: figures for heartbeat, metrics and report;
- ``runner`` and ``venues``: the per-strategy and per-venue state; ``facade``: the protocols the
  order context and the engine use.
"""

from engine.runtime.connectivity import VenueStatus
from engine.runtime.core import Runtime
from engine.runtime.dispatch import HOOK_FAILED
from engine.runtime.recovery import Restored, recover_venue, restore
from engine.runtime.runner import StrategyRunner
from engine.runtime.venues import BookEntry, VenueState

__all__ = [
    "HOOK_FAILED", "BookEntry", "Restored", "Runtime", "StrategyRunner", "VenueState", "VenueStatus", "recover_venue",
    "restore",
]
