"""Benchmark strategy: reads the book on every event; every `every` events it hands one order
message to the venue through the full context checks: a new order when it has none working,
otherwise an amend that moves its bid one tick (alternating), so each action really is sent."""

from decimal import Decimal

from engine import hookimpl

PARAMS = {"every": 100, "size": 100}

TICK = Decimal("0.01")
state = {"n": 0, "order": None, "flip": False}


@hookimpl
def on_book(ctx, book):
    state["n"] += 1
    if state["n"] % ctx.params.every or book.best_bid is None:
        return
    order = state["order"]
    state["flip"] = not state["flip"]
    price = book.best_bid - TICK if state["flip"] else book.best_bid
    if order is None or not order.is_open:
        state["order"] = ctx.submit(book.symbol, "buy", ctx.params.size, price)
    elif order.status == "new":
        if price == order.price:
            price -= TICK
        ctx.amend(order, price=price)
    else:  # still waiting for the venue: place another order instead
        state["order"] = ctx.submit(book.symbol, "buy", ctx.params.size, price)
