"""Momentum taker: buy when recent trades trend up, sell on a take-profit or a stop.

A taker crosses the spread with an immediate-or-cancel limit order, so it never leaves a
resting order behind. PSX forbids short selling, so this strategy is long-only.
"""

from collections import defaultdict, deque
from decimal import Decimal

from engine import hookimpl

# Optional: with these types an editor completes ctx., book. and fill.; the engine ignores them.
from engine.strategy import Ctx, Fill, Order, Trade

PARAMS = {
    "lookback": 30,  # trades to look back over
    "entry_bps": 10,  # buy when the last price is this many basis points above the window's first
    "take_profit_bps": 25,  # sell when up this much from our average cost
    "stop_loss_bps": 20,  # sell when down this much
    "size": 100,  # shares per entry
    "max_position": 300,
}

prices: defaultdict[str, deque[Decimal]] = defaultdict(deque)  # symbol -> recent trade prices
working: dict[str, Order] = {}  # symbol -> our order still in flight, so we never stack orders


@hookimpl
def on_start(ctx: Ctx) -> None:
    # After a restart the engine lists the orders the venue still has for us (reconciled before
    # this hook): count them as in flight, so we never stack a second order on one.
    working.clear()
    for order in ctx.open_orders():
        working[order.symbol] = order


@hookimpl
def on_trade(ctx: Ctx, trade: Trade) -> None:
    if ctx.session != "open":
        return
    window = prices[trade.symbol]
    window.append(trade.price)
    if len(window) > ctx.params.lookback:
        window.popleft()
    order = working.get(trade.symbol)
    if order is not None and order.is_open:
        return  # wait for the venue's answer before deciding again
    book = ctx.book(trade.symbol)
    if book is None or book.best_bid is None or book.best_ask is None:
        return
    p = ctx.params
    position = ctx.position(trade.symbol)
    bps = Decimal(10_000)
    if position > 0:
        change = (trade.price - ctx.avg_cost(trade.symbol)) / ctx.avg_cost(trade.symbol) * bps
        if change >= p.take_profit_bps or change <= -p.stop_loss_bps:
            # Sell what we may sell at the bid (shares still settling are not ours to sell yet: the
            # engine would refuse them with 4002); IOC: whatever does not fill now is cancelled.
            qty = min(position, ctx.sellable(trade.symbol))
            if qty > 0:
                working[trade.symbol] = ctx.submit(trade.symbol, "sell", qty, book.best_bid, tif="ioc")
                return
    if len(window) == p.lookback and position + p.size <= p.max_position:
        trend = (window[-1] - window[0]) / window[0] * bps
        if trend >= p.entry_bps:
            working[trade.symbol] = ctx.submit(trade.symbol, "buy", p.size, book.best_ask, tif="ioc")


@hookimpl
def on_fill(ctx: Ctx, fill: Fill) -> None:
    ctx.log.debug("%s %s %s @ %s", fill.side, fill.qty, fill.symbol, fill.price)


@hookimpl
def on_session_change(ctx: Ctx, old: str, new: str) -> None:
    prices.clear()  # a new session starts a new trend
