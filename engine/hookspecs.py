"""The strategy hooks: this module is the user's reference for writing a strategy.

A strategy is a Python file in ``strategies/``. It defines any of the hooks below, either as
module-level functions or as methods of one class, each marked ``@hookimpl``::

    from engine import hookimpl

    @hookimpl
    def on_book(ctx, book):
        ...

A hook may accept fewer arguments than the spec (``def on_start(ctx)``) but never others: the
loader refuses a hook with an unknown name or unknown arguments and names the file and line.
Hooks a strategy does not define cost nothing.

Every hook receives ``ctx``, the strategy's :class:`engine.context.OrderContext`: its only door to
the market (``ctx.submit``, ``ctx.cancel``, ``ctx.amend``, ``ctx.cancel_all``, ``ctx.open_orders``,
``ctx.position``, ``ctx.book``, ``ctx.params``, ``ctx.log``, ``ctx.now()``, ``ctx.session``).

Hooks run on the engine's single event loop and must not block: no sleeping, no network calls. A
hook that raises is contained: that strategy goes to state ``failed``, its open orders are
cancelled, the traceback is logged once, and every other strategy keeps trading.
"""

from __future__ import annotations

import pluggy

PROJECT = "engine"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

# Called per market-data event or per execution: the runtime calls these directly, not through
# pluggy, once the loader has resolved them (a pluggy call costs about 2 microseconds).
HOT_HOOKS = ("on_book", "on_trade", "on_fill", "on_order_update")


@hookspec
def on_start(ctx):
    """Called once, after the strategy is loaded and the venues are connected, before any market
    event. Set up state here; orders may be placed if the session accepts them.

    After a restart (a crash included) ``ctx.open_orders()`` already lists this strategy's orders
    that the venue still works, reconciled with the venue: rebuild any map of working orders from
    it, or the strategy places a second order beside each one. These are the same ``Order`` objects
    later ``on_order_update`` / ``on_fill`` calls carry; what happened to them while the engine was
    down is not replayed as ``on_order_update`` calls."""


@hookspec
def on_book(ctx, book):
    """Called after every change to the order book of a subscribed instrument.

    ``book`` is an :class:`engine.model.Book`: ``book.symbol``, ``book.best_bid``,
    ``book.best_ask``, ``book.bid_size``, ``book.ask_size``, ``book.mid``, ``book.spread``,
    ``book.bids`` / ``book.asks`` (``[(price, qty)]``, best first), ``book.depth(n)``, ``book.ts``
    (ns UTC). Prices and quantities are ``Decimal``. The object is the engine's live book: read it
    during the call, do not keep it expecting it to stay the same, and never modify it.
    """


@hookspec
def on_trade(ctx, trade):
    """Called for every public trade print on a subscribed instrument (anyone's, ours included).

    ``trade``: ``symbol``, ``price``, ``qty``, ``aggressor`` ("buy" / "sell" / None), ``ts``,
    ``trade_id``.
    """


@hookspec
def on_fill(ctx, fill):
    """Called for each execution of one of this strategy's orders, after the engine has applied
    it to the order and to the position (``ctx.position(fill.symbol)`` already includes it).

    ``fill``: ``symbol``, ``side``, ``price``, ``qty``, ``client_id``, ``exec_id``, ``liquidity``
    ("maker" / "taker"), ``fee``, ``ts``. A venue's repeated fill (same exec id) never reaches
    this hook twice.
    """


@hookspec
def on_order_update(ctx, order):
    """Called when one of this strategy's orders changes state for a reason other than a fill:
    venue ack (``new``), local or venue reject (``rejected`` with ``order.reject_code`` and
    ``order.reject_reason``), cancel, expiry at the close, amend acknowledged or refused.

    ``order`` is the same handle ``ctx.submit`` returned.
    """


@hookspec
def on_session_change(ctx, old, new):
    """Called at every session phase transition with the phase names (``"closed"``,
    ``"pre_open"``, ``"opening_match"``, ``"open"``, ``"break"``, ``"post_close"``).

    At the transition to ``"closed"`` DAY orders have already expired.
    """


@hookspec
def on_venue_status(ctx, venue, status):
    """Called when the strategy's venue changes connection state: ``"disconnected"`` (its open
    orders are now ``unknown`` and new orders are refused with 9001), ``"reconciling"`` (back, the
    engine is asking the venue what happened) and ``"connected"`` (reconciled: every order has its
    true state again and orders flow). Also ``"stale"`` when market data stopped arriving."""


@hookspec
def on_account_event(ctx, event):
    """Called when the strategy's venue says something about the account rather than an order:
    ``event.kind`` is ``"margin_call"`` (the engine has already moved the kill switch as
    ``risk.kill_switch.on_margin_call`` says: ``reducing`` by default) or ``"account_alert"`` (a
    deposit or withdrawal status, for information). ``event.fields`` holds the venue's own fields
    (e.g. Optimus's webhook ``data``), ``event.venue`` and ``event.ts`` where and when."""


@hookspec
def on_mmp_trigger(ctx, info):
    """Called when market-maker protection fired for this strategy: its MMP orders are being
    cancelled and new ``mmp=True`` orders are refused (7009) until ``info.frozen_until_ns``
    (``None``: until ``ctx.reset_mmp()``). ``info`` carries ``ts``, ``filled_qty``,
    ``fill_count`` and ``reason``."""


@hookspec
def on_stop(ctx):
    """Called once when the engine stops (end of the run, SIGINT or SIGTERM). Open orders are
    cancelled by the engine after this hook returns."""


@hookspec(firstresult=True)
def on_save(ctx):
    """Return this strategy's own state as a JSON-serialisable value (dicts, lists, strings,
    numbers; Decimals as strings). The engine stores it in the journal at stop, at each close and
    every ``journal.save_seconds``, and hands it to ``on_load`` when the engine starts again."""


@hookspec
def on_load(ctx, state):
    """Called at start, before ``on_start``, with what ``on_save`` last returned (not called when
    nothing was saved). Restart reconciliation is done: ``ctx.position`` and ``ctx.open_orders``
    already show the venue's truth (the restored orders, see ``on_start``)."""


HOOK_NAMES = (
    "on_start", "on_book", "on_trade", "on_fill", "on_order_update", "on_session_change", "on_venue_status",
    "on_mmp_trigger", "on_account_event", "on_stop", "on_save", "on_load",
)
