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

Every hook receives ``ctx``, the strategy's order context (:class:`engine.strategy.Ctx`): its only
door to the market (``ctx.submit``, ``ctx.cancel``, ``ctx.amend``, ``ctx.cancel_all``,
``ctx.open_orders``, ``ctx.position``, ``ctx.book``, ``ctx.params``, ``ctx.log``, ``ctx.now()``,
``ctx.session``).

The specs are typed as pytest types its hooks. A strategy may copy a spec's annotations into its own
file, importing the types from :mod:`engine.strategy` (``from engine.strategy import Book, Ctx``), so
its editor completes ``ctx.``, ``book.`` and ``fill.``; annotations change nothing at run time.
The first paragraph of each docstring is that hook's row in README's hook table
(``tests/unit/test_readme_hooks.py`` checks the table against this module and prints the right one).

Hooks run on the engine's single event loop and must not block: no sleeping, no network calls. A
hook that raises is contained: that strategy goes to state ``failed``, its open orders are
cancelled, the traceback is logged once, and every other strategy keeps trading.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:  # names only: importing engine loads none of these modules
    from engine.strategy import AccountEvent, Book, Ctx, Fill, MmpTrigger, Order, Trade

PROJECT = "engine"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

# Called per market-data event or per execution: the runtime calls these directly, not through
# pluggy, once the loader has resolved them (a pluggy call costs about 2 microseconds).
HOT_HOOKS = ("on_book", "on_trade", "on_fill", "on_order_update")


@hookspec
def on_start(ctx: Ctx) -> None:
    """Called once, after the venues connect and before any market event; after a restart
    ``ctx.open_orders()`` already lists the orders the venue still works (rebuild your order map
    from it).

    Set up state here; orders may be placed if the session accepts them.

    After a restart (a crash included) ``ctx.open_orders()`` lists this strategy's orders that the
    venue still works, reconciled with the venue: rebuild any map of working orders from it, or the
    strategy places a second order beside each one. These are the same ``Order`` objects later
    ``on_order_update`` / ``on_fill`` calls carry; what happened to them while the engine was down
    is not replayed as ``on_order_update`` calls.
    """


@hookspec
def on_book(ctx: Ctx, book: Book) -> None:
    """Called after every change to the order book of a subscribed instrument.

    :param book: ``book.symbol``, ``book.best_bid``, ``book.best_ask``, ``book.bid_size``,
        ``book.ask_size``, ``book.mid``, ``book.spread``, ``book.bids`` / ``book.asks``
        (``[(price, qty)]``, best first), ``book.depth(n)``, ``book.ts`` (ns UTC). Prices and
        quantities are ``Decimal``. The object is the engine's live book: read it during the call,
        do not keep it expecting it to stay the same, and never modify it.
    """


@hookspec
def on_trade(ctx: Ctx, trade: Trade) -> None:
    """Called for every public trade print on a subscribed instrument (anyone's, ours included).

    :param trade: ``symbol``, ``price``, ``qty``, ``aggressor`` (``Side.BUY`` / ``Side.SELL`` /
        None), ``ts``, ``trade_id``.
    """


@hookspec
def on_fill(ctx: Ctx, fill: Fill) -> None:
    """Called for each execution of one of this strategy's orders, after the engine has applied it
    to the order and the position (``ctx.position(fill.symbol)`` already includes it).

    A venue's repeated fill (same exec id) never reaches this hook twice.

    :param fill: ``symbol``, ``side``, ``price``, ``qty``, ``client_id``, ``exec_id``,
        ``liquidity`` ("maker" / "taker"), ``fee``, ``ts``.
    """


@hookspec
def on_order_update(ctx: Ctx, order: Order) -> None:
    """Called when one of this strategy's orders changes state other than by a fill: venue ack,
    reject (local or venue), cancel, expiry at the close, amend confirmed or refused.

    :param order: the same handle ``ctx.submit`` returned; a reject sets ``order.status`` to
        ``rejected`` with ``order.reject_code`` and ``order.reject_reason``.
    """


@hookspec
def on_session_change(ctx: Ctx, old: str, new: str) -> None:
    """Called at every session phase transition, with the phase names.

    :param old: the phase left, and
    :param new: the phase entered: ``"closed"``, ``"pre_open"``, ``"opening_match"``, ``"open"``,
        ``"break"``, ``"post_close"``. At the transition to ``"closed"`` DAY orders have already
        expired.
    """


@hookspec
def on_venue_status(ctx: Ctx, venue: str, status: str) -> None:
    """Called once after ``on_start`` with where the venue stands (``connected``, or ``stale`` while a
    separate market-data adapter has not said its data is current), then when the venue dropped
    (``disconnected``), is back and being reconciled (``reconciling``), its data went ``stale``, or it
    is usable again (``connected``).

    :param venue: the venue's name in config.
    :param status: ``"disconnected"``: its open orders are now ``unknown`` and new orders are
        refused with 9001; ``"reconciling"``: the engine is asking the venue what happened;
        ``"connected"``: reconciled, every order has its true state again and orders flow. Also
        ``"stale"`` when market data stopped arriving.
    """


@hookspec
def on_account_event(ctx: Ctx, event: AccountEvent) -> None:
    """Called when the strategy's venue speaks of the account rather than an order: a margin call
    (the kill switch has already moved) or a deposit or withdrawal alert.

    :param event: ``event.kind`` is ``"margin_call"`` (the engine has already moved the kill switch
        as ``risk.kill_switch.on_margin_call`` says: ``reducing`` by default) or
        ``"account_alert"`` (for information); ``event.fields`` holds the venue's own fields (e.g.
        Optimus's webhook ``data``), ``event.venue`` and ``event.ts`` where and when.
    """


@hookspec
def on_mmp_trigger(ctx: Ctx, info: MmpTrigger) -> None:
    """Called when market-maker protection fired for this strategy: its MMP orders are being
    cancelled and new ``mmp=True`` orders are refused until the freeze ends.

    New MMP orders are refused with 7009 until ``info.frozen_until_ns`` (``None``: until
    ``ctx.reset_mmp()``).

    :param info: ``ts``, ``frozen_until_ns``, ``filled_qty``, ``fill_count`` and ``reason``.
    """


@hookspec
def on_stop(ctx: Ctx) -> None:
    """Called once when the engine stops (end of the run, SIGINT or SIGTERM); open orders are
    cancelled after it returns."""


@hookspec(firstresult=True)
def on_save(ctx: Ctx) -> Any:
    """Called at stop, at each close and every ``journal.save_seconds``: return the strategy's own
    state, JSON-serialisable; the journal keeps it for ``on_load``.

    JSON-serialisable means dicts, lists, strings, numbers, booleans and None; write Decimals as
    strings. The engine hands the value to ``on_load`` when the engine starts again.
    """


@hookspec
def on_load(ctx: Ctx, state: Any) -> None:
    """Called at start, after restart reconciliation and before ``on_start``, with what ``on_save``
    last returned (not called when nothing was saved).

    ``ctx.position`` and ``ctx.open_orders`` already show the venue's truth (the restored orders,
    see ``on_start``).

    :param state: the value ``on_save`` returned, as JSON gave it back.
    """


HOOK_NAMES = (
    "on_start", "on_book", "on_trade", "on_fill", "on_order_update", "on_session_change", "on_venue_status",
    "on_mmp_trigger", "on_account_event", "on_stop", "on_save", "on_load",
)
