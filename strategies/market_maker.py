"""Market maker: quote both sides around the mid, lean on inventory, requote as the book moves.

Read this first. A strategy is a plain Python file; the engine calls the functions marked
@hookimpl. `ctx` is the strategy's only door to the market: every order passes the engine's
pre-trade checks, and a refused order comes back with status "rejected" and a reason.
"""

from decimal import Decimal

from engine import hookimpl

# Optional: with these types an editor completes ctx., book. and fill.; the engine ignores them.
from engine.strategy import Book, Ctx, Fill, MmpTrigger, Order

# Defaults for this strategy's parameters; config.yaml may override any of them by name.
# A param in config that is not listed here stops the engine with the config line.
PARAMS = {
    "half_spread_ticks": 3,  # distance from the mid to each quote, in ticks
    "size": 100,  # shares per quote: a multiple of the instrument's lot
    "max_position": 1000,  # stop buying once long this many shares (and selling once this short, where shorts exist)
    "skew_ticks": Decimal("1"),  # per `size` of inventory, shift both quotes down this many ticks
    "requote_ticks": 1,  # move a quote only when its target moved at least this far
    "mmp": False,  # quote under market-maker protection (needs an mmp: block in config)
}

quotes: dict[tuple[str, str], Order] = {}  # (symbol, side) -> our working order; module state is per strategy instance


@hookimpl
def on_start(ctx: Ctx) -> None:
    # After a restart (a crash included) the venue may still work quotes we placed before: the
    # engine has reconciled them with the venue and ctx.open_orders() lists them. Take them back
    # as our quotes, or on_book would place a second quote beside each one. One quote per side:
    # should a side have two, cancel the later one.
    quotes.clear()
    for order in ctx.open_orders():
        if (order.symbol, order.side) in quotes:
            ctx.cancel(order)
        else:
            quotes[(order.symbol, order.side)] = order


@hookimpl
def on_book(ctx: Ctx, book: Book) -> None:
    # Quote only in continuous trading, when both sides of the book exist, and not while
    # market-maker protection has us frozen (the engine would refuse every quote with 7009).
    if ctx.session != "open" or book.mid is None or (ctx.params.mmp and ctx.mmp_frozen):
        return
    p = ctx.params
    instrument = ctx.instrument(book.symbol)
    assert instrument is not None  # a strategy's books are of its own instruments
    tick = instrument.tick_size
    position = ctx.position(book.symbol)
    # Inventory skew: when long, move both quotes down so our ask is hit sooner and bid less.
    skew = position / p.size * p.skew_ticks * tick
    bid = instrument.round_to_tick(book.mid - p.half_spread_ticks * tick - skew, "buy")
    ask = instrument.round_to_tick(book.mid + p.half_spread_ticks * tick - skew, "sell")
    # PSX has no short selling: buy up to max_position, and sell only shares the account holds
    # and may sell (settled, not already offered; ctx.sellable counts our working ask as offered).
    # Not ctx.position: shares bought today settle T+2, and a sell of them is refused (4002).
    # A derivatives account (Pulse) may go short: there both sides stop at max_position.
    buy_size = p.size if position + p.size <= p.max_position else 0
    if ctx.account_kind == "derivatives":
        sell_size = p.size if position - p.size >= -p.max_position else 0
    else:
        ask_order = quotes.get((book.symbol, "sell"))
        offered = ask_order.leaves_qty if ask_order is not None else 0
        sell_size = min(Decimal(p.size), ctx.sellable(book.symbol) + offered)
    quote(ctx, book.symbol, "buy", bid, buy_size, tick)
    quote(ctx, book.symbol, "sell", ask, sell_size, tick)


def quote(ctx: Ctx, symbol: str, side: str, price: Decimal, size: Decimal | int, tick: Decimal) -> None:
    """Keep one order per side at `price`: place it, move it, or pull it."""
    order = quotes.get((symbol, side))
    if order is not None and not order.is_open:
        order = None  # filled, cancelled or rejected: forget it
    if size <= 0:
        if order is not None:
            ctx.cancel(order)
        return
    venue = ctx.capabilities  # what the venue does natively: the same file quotes on every venue
    if order is None:
        # post_only: never take liquidity by accident, where the venue offers it (the PSX broker
        # API has no post-only flag, so there a plain limit order it is).
        # mmp=True: if too much of our quoting fills too fast, the engine pulls every quote
        # (config mmp:), freezes quoting for a while and calls on_mmp_trigger.
        quotes[(symbol, side)] = ctx.submit(
            symbol, side, size, price, post_only=venue.post_only != "none", mmp=ctx.params.mmp
        )
    elif order.status in ("new", "partially_filled"):  # not while a cancel/amend is in flight
        if abs(order.price - price) >= ctx.params.requote_ticks * tick:
            if venue.amend:
                ctx.amend(order, price=price)  # loses queue priority, as on any exchange
            else:
                # No amend at this venue (Optimus): cancel, and place the new quote on a later
                # book once the cancel is confirmed, so two quotes never work at once.
                ctx.cancel(order)


@hookimpl
def on_fill(ctx: Ctx, fill: Fill) -> None:
    ctx.log.debug("filled %s %s @ %s, position %s", fill.side, fill.qty, fill.price, ctx.position(fill.symbol))


@hookimpl
def on_order_update(ctx: Ctx, order: Order) -> None:
    if order.status == "rejected":
        ctx.log.info("quote rejected: %s %s", order.reject_code, order.reject_reason)


@hookimpl
def on_mmp_trigger(ctx: Ctx, info: MmpTrigger) -> None:
    # The engine is already cancelling every MMP quote; forget them so we requote after the freeze.
    ctx.log.warning("MMP triggered (%s); quoting resumes when the freeze ends", info.reason)
    quotes.clear()


@hookimpl
def on_venue_status(ctx: Ctx, venue: str, status: str) -> None:
    # While the venue is away our quotes are "unknown" and new orders are refused; on return the
    # engine reconciles and cancels what was open at the drop, and quote() replaces them.
    ctx.log.info("venue %s is %s", venue, status)


@hookimpl
def on_session_change(ctx: Ctx, old: str, new: str) -> None:
    # Leaving continuous trading: pull every quote (DAY orders also expire at the close).
    if new != "open":
        ctx.cancel_all()
        quotes.clear()
