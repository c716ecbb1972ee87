"""The strategy of benchmarks/vs_nautilus.py, engine side (the NautilusTrader side is written out
in that script with the same logic): on every book event read the best bid and ask; every
``every`` events cancel the previous order if it is still open and place a limit buy ``away``
ticks under the best bid, far enough from the touch that the walk rarely reaches it."""

from decimal import Decimal

from engine import hookimpl

PARAMS = {"every": 1000, "away": 50, "size": 100}

TICK = Decimal("0.01")
state = {"n": 0, "order": None}


@hookimpl
def on_book(ctx, book):
    bid, ask = book.best_bid, book.best_ask
    state["n"] += 1
    if state["n"] % ctx.params.every or bid is None or ask is None:
        return
    order = state["order"]
    if order is not None and order.is_open:
        ctx.cancel(order)
    state["order"] = ctx.submit(book.symbol, "buy", ctx.params.size, bid - ctx.params.away * TICK)
