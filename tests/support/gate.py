"""The gate's test helpers: a real engine built by :func:`support.engine_in` with a recorder
strategy, a spy on what reaches the paper venue, a counterparty resting in its matching engine and
the simulated clock run to a time of the day (``support.enter`` moves the session). Shared by the
gate's tests (tests/unit/test_gate_*.py) and others that drive a real engine on the simulated
clock."""

from __future__ import annotations

import itertools
from decimal import Decimal
from pathlib import Path
from typing import Any

from adapters.sim.matching import Accepted
from engine.app import Engine
from engine.model import Order, Side
from support import engine_in, settle

D = Decimal

RECORDER = """\
from engine import hookimpl

updates = []
venue_statuses = []
mmp_infos = []

@hookimpl
def on_order_update(ctx, order):
    updates.append((order.client_id, order.status.value, order.reject_code))

@hookimpl
def on_venue_status(ctx, venue, status):
    venue_statuses.append((venue, status))

@hookimpl
def on_mmp_trigger(ctx, info):
    mmp_infos.append(info)
"""


def build(folder: Path, strategies: dict[str, str] | None = None, **kwargs: Any) -> Engine:
    """A real engine from :func:`support.write_engine_config`, the gate's recorder as "s" unless
    ``strategies`` says otherwise."""
    return engine_in(folder, strategies or {"s": RECORDER}, **kwargs)


class VenueSpy:
    """Records every request that reaches the paper venue, then passes it on to the real adapter
    (a spy, not a mock): ``sent`` holds (kind, client id, side, qty, price, type, time) per request."""

    def __init__(self, engine: Engine, venue: str = "paper") -> None:
        self.engine = engine
        self.adapter = engine.adapters[venue]
        self.sent: list[tuple[str, str, Side, Decimal | None, Decimal | None, str, int]] = []
        real_submit, real_amend, real_cancel = self.adapter.submit, self.adapter.amend, self.adapter.cancel
        clock = engine.clock

        def submit(order: Order) -> None:
            self.sent.append(("submit", order.client_id, order.side, order.qty, order.price, order.type.value,
                              clock.now_ns()))
            real_submit(order)

        def amend(order: Order, price: Decimal | None, qty: Decimal | None) -> None:
            self.sent.append(("amend", order.client_id, order.side, qty, price, order.type.value, clock.now_ns()))
            real_amend(order, price, qty)

        def cancel(order: Order) -> None:
            self.sent.append(("cancel", order.client_id, order.side, None, None, order.type.value, clock.now_ns()))
            real_cancel(order)

        self.adapter.submit = submit
        self.adapter.amend = amend
        self.adapter.cancel = cancel

    def ids(self, kind: str = "submit") -> list[str]:
        return [entry[1] for entry in self.sent if entry[0] == kind]


_counter_ids = itertools.count(1)


def counterparty(engine: Engine, symbol: str, side: str, qty: int | str, price: str, owner: str = "street") -> None:
    """Another market participant rests an order in the paper venue's matching engine (its own
    events are not ours, so only our fills against it reach the engine)."""
    book = engine.adapters["paper"].matching_engine(symbol)
    outcome = book.submit(owner, f"cp-{next(_counter_ids)}", Side(side), D(qty), D(price), ts=engine.clock.now_ns())
    assert isinstance(outcome.events[0], Accepted), outcome.events


def ctx_of(engine: Engine, name: str = "s"):
    return engine.runtime.runners[name].ctx


def module_of(engine: Engine, name: str = "s"):
    return engine.runtime.runners[name].loaded.module



LOGGER = """\
from engine import hookimpl

events = []
fills = []
mmp_infos = []

@hookimpl
def on_order_update(ctx, order):
    events.append(("order", order.client_id, order.status.value, order.reject_code))

@hookimpl
def on_fill(ctx, fill):
    fills.append((fill.client_id, fill.exec_id, fill.side.value, fill.qty, fill.price))
    events.append(("fill", fill.client_id, fill.exec_id))

@hookimpl
def on_venue_status(ctx, venue, status):
    events.append(("venue", venue, status))

@hookimpl
def on_mmp_trigger(ctx, info):
    mmp_infos.append((info, ctx.mmp_frozen, sorted((o.client_id, o.status.value) for o in ctx.open_orders())))
"""


def run_to(engine, hh: int, mm: int, ss: int = 0) -> None:
    """Run the simulated clock to hh:mm:ss Karachi on the test day."""
    now = engine.clock.now()
    target = now.replace(hour=hh, minute=mm, second=ss, microsecond=0)
    settle(engine, (target - now).total_seconds())

