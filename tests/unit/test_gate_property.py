"""Property: whatever a strategy throws at the order context, nothing that breaks a rule reaches the
venue.

Hypothesis generates streams of random orders (side, quantity including off-lot and oversized ones,
prices on and off the tick grid, inside and outside the band, near and far from the market, limit
and market, every time in force), random amends and cancels of earlier orders, random session
phases and random waits on the simulated clock, and sends them through ``ctx`` of a REAL engine
(real loaders, real paper venue with another participant's liquidity to trade against).

A spy on the paper adapter (it records, checks, then calls the real method) checks every request
at the instant it is sent against an independent model of the rules: lot multiple, tick grid,
inside the circuit band, a session that accepts it, within the fat-finger price deviation of the
last trade (else mid), quantity and notional under the fat-finger maxima, no symbol halted by a
band-edge trade, buys within settled cash less what every open buy reserves (cash computed from
the fills the strategy saw, not from the engine's account), sells within the settled holding less
what open sells hold.
"""

from __future__ import annotations

import random
import tempfile
from decimal import Decimal
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import open_session, settle
from support.gate import build, counterparty

from engine.model import Order, OrderType, Phase, SessionState, Side

D = Decimal
TICK = D("0.01")
FEE_RATE = D("0.0015")  # broker-doc estimate reserved with each buy
MAX_QTY = D(2000)  # risk.rules.max_order_qty below
MAX_NOTIONAL = D(5_000_000)  # broker-doc max_order_notional
MAX_DEVIATION = D("0.05")  # broker-doc max_price_deviation_pct
CASH = D(200_000)
HOLDINGS = {"MEBL": D(500), "OGDC": D(300)}
REFERENCE = {"MEBL": D("187.50"), "OGDC": D("109.30")}
LOT = {"MEBL": D(1), "OGDC": D(10)}
BAND = {"MEBL": (D("168.75"), D("206.25")), "OGDC": (D("98.37"), D("120.23"))}  # ±10%, inward to the tick

# (accepts_new, accepts_modify_cancel, matches, closing_price_only), as in the psx-current profile
PHASES = {
    Phase.PRE_OPEN: (True, True, False, False),
    Phase.OPENING_MATCH: (False, False, True, False),
    Phase.OPEN: (True, True, True, False),
    Phase.BREAK: (False, False, False, False),
    Phase.POST_CLOSE: (True, True, True, True),
}

WATCHER = """\
from engine import hookimpl

fills = []
trades = []

@hookimpl
def on_fill(ctx, fill):
    fills.append((fill.symbol, fill.side.value, fill.qty, fill.price))

@hookimpl
def on_trade(ctx, trade):
    trades.append((trade.symbol, trade.price))
"""


class RuleModel:
    """Checks each request the spy sees against the rules, from what the strategy could know."""

    def __init__(self, engine) -> None:
        self.engine = engine
        self.runner = engine.runtime.runners["s"]
        self.module = self.runner.loaded.module
        self.handles: list[Order] = []
        self.sent: list[tuple[str, str]] = []
        self.sent_in: dict[str, Phase] = {}  # client id -> the phase its submit went out in
        adapter = engine.adapters["paper"]
        real_submit, real_amend, real_cancel = adapter.submit, adapter.amend, adapter.cancel

        def submit(order: Order) -> None:
            self.check(order, order.qty, order.price, amend=False)
            self.sent.append(("submit", order.client_id))
            self.sent_in[order.client_id] = self.phase
            real_submit(order)

        def amend(order: Order, price: Decimal | None, qty: Decimal | None) -> None:
            self.check(order, order.qty if qty is None else qty, order.price if price is None else price, amend=True)
            self.sent.append(("amend", order.client_id))
            real_amend(order, price, qty)

        def cancel(order: Order) -> None:
            assert self.engine.runtime.session.accepts_modify_cancel, f"cancel sent in {self.phase}"
            self.sent.append(("cancel", order.client_id))
            real_cancel(order)

        adapter.submit, adapter.amend, adapter.cancel = submit, amend, cancel

    @property
    def phase(self) -> Phase:
        return self.engine.runtime.session.phase

    # ---- what the strategy saw ------------------------------------------------------------
    def last_trade(self, symbol: str) -> Decimal | None:
        prices = [p for s, p in self.module.trades if s == symbol]
        return prices[-1] if prices else None

    def halted(self, symbol: str) -> bool:
        low, high = BAND[symbol]
        return any(s == symbol and (p <= low or p >= high) for s, p in self.module.trades)

    def cash(self) -> Decimal:
        return CASH - sum((q * p for s, side, q, p in self.module.fills if side == "buy"), D(0))

    def settled(self, symbol: str) -> Decimal:
        return HOLDINGS[symbol] - sum((q for s, side, q, p in self.module.fills if s == symbol and side == "sell"),
                                      D(0))

    @staticmethod
    def buy_cost(qty: Decimal, price: Decimal) -> Decimal:
        return qty * price * (1 + FEE_RATE)

    def reserved(self, order: Order) -> Decimal:
        """Cash (buys) or shares (sells) an open order may still take: the larger of old and new
        while an amend is unanswered."""
        if order.is_terminal:
            return D(0)
        leaves = max(order.qty - order.cum_qty, D(0))
        new_qty = order.pending_qty if order.pending_qty is not None else order.qty
        new_price = order.pending_price if order.pending_price is not None else order.price
        new_leaves = max(new_qty - order.cum_qty, D(0))
        if order.side is Side.SELL:
            return max(leaves, new_leaves)
        price = order.price if order.price is not None else BAND[order.symbol][1]
        new_price = new_price if new_price is not None else BAND[order.symbol][1]
        return max(self.buy_cost(leaves, price), self.buy_cost(new_leaves, new_price))

    # ---- the rules --------------------------------------------------------------------------
    def check(self, order: Order, qty: Decimal, price: Decimal | None, *, amend: bool) -> None:
        symbol = order.symbol
        session = self.engine.runtime.session
        what = f"{'amend' if amend else 'submit'} {order.side.value} {qty} {symbol} @ {price} ({order.type.value}, " \
               f"{order.tif.value}) in {session.phase.value}"
        assert symbol in REFERENCE, what
        # session
        if amend:
            assert session.accepts_modify_cancel, what
        else:
            assert session.accepts_new, what
        if session.phase is Phase.PRE_OPEN:  # nothing matches before the auction: limit DAY / GTC only
            assert order.type is OrderType.LIMIT and order.tif.value in ("day", "gtc"), what
        if session.phase is Phase.POST_CLOSE:
            assert order.type is OrderType.LIMIT, what
            assert price == self.engine.runtime.facts("paper", symbol).closing, what
        # lot, tick, band, halts
        assert qty > 0 and qty % LOT[symbol] == 0, what
        assert not self.halted(symbol), what
        if order.type is OrderType.LIMIT:
            assert price is not None and price > 0 and price % TICK == 0, what
            low, high = BAND[symbol]
            assert low <= price <= high, what
        else:
            assert price is None, what
        # fat finger
        assert qty <= MAX_QTY, what
        last = self.last_trade(symbol)
        book = self.runner.ctx.book(symbol)
        mid = book.mid if book is not None else None
        if price is not None:
            assert price * qty <= MAX_NOTIONAL, what
            ref = last if last is not None else mid
            if ref is not None:
                assert abs(price - ref) <= ref * MAX_DEVIATION, f"{what}: ref {ref}"
        else:
            mark = last if last is not None else mid if mid is not None else REFERENCE[symbol]
            assert mark * qty <= MAX_NOTIONAL, what
        # the account: every open order, this one included at its new values
        others = [o for o in self.handles if o is not order and o.side is order.side]
        if amend:
            this = self.reserved(order)
        elif order.side is Side.BUY:
            this = self.buy_cost(qty, price if price is not None else BAND[symbol][1])
        else:
            this = qty
        if order.side is Side.BUY:
            total = this + sum((self.reserved(o) for o in others), D(0))
            assert total <= self.cash(), f"{what}: buys reserve {total} of cash {self.cash()}"
        else:
            total = this + sum((self.reserved(o) for o in others if o.symbol == symbol), D(0))
            assert total <= self.settled(symbol), f"{what}: sells hold {total} of {self.settled(symbol)}"


# ---- driving a stream of actions -----------------------------------------------------------------


def fresh_engine(folder: Path):
    # the model judges each request by the rules alone: no refusal budget, no repeat-refusal pause
    engine = build(folder, {"s": WATCHER}, risk={"rules": {"max_order_qty": str(MAX_QTY)},
                                                 "containment": {"refusals_per_s": None, "repeat_refusals": None}},
                   venue={"account": {"cash": str(CASH), "holdings": {k: str(v) for k, v in HOLDINGS.items()}}})
    open_session(engine)
    model = RuleModel(engine)
    for price in ("187.60", "188.00", "189.00"):  # another participant's liquidity around the reference
        counterparty(engine, "MEBL", "sell", 100, price)
    for price in ("187.40", "187.00", "186.00"):
        counterparty(engine, "MEBL", "buy", 100, price)
    counterparty(engine, "OGDC", "sell", 200, "109.50")
    counterparty(engine, "OGDC", "buy", 200, "109.10")
    return engine, model


def price_of(symbol: str, ticks: int, off_tick: bool) -> Decimal:
    price = REFERENCE[symbol] + ticks * TICK
    return price + D("0.005") if off_tick else price


def pick(handles: list[Order], index: int) -> Order:
    """Mostly a working order (an amend or cancel of a finished one is merely refused)."""
    live = [o for o in handles if o.status in ("new", "partially_filled")]
    return live[index % len(live)] if live and index % 4 else handles[index % len(handles)]


def run_actions(engine, model: RuleModel, actions: list[tuple]) -> list[Order]:
    ctx = engine.runtime.runners["s"].ctx
    for action in actions:
        kind = action[0]
        if kind == "submit":
            _, symbol, side, qty, ticks, off_tick, type_, tif = action
            price = None if type_ == "market" or ticks is None else str(price_of(symbol, ticks, off_tick))
            model.handles.append(ctx.submit(symbol, side, qty, price, type=type_, tif=tif))
        elif kind == "amend" and model.handles:
            _, index, ticks, qty = action
            order = pick(model.handles, index)
            price = None if ticks is None or order.price is None else str(price_of(order.symbol, ticks, False))
            ctx.amend(order, price=price, qty=qty)
        elif kind == "cancel" and model.handles:
            ctx.cancel(pick(model.handles, action[1]))
        elif kind == "phase":
            accepts_new, modify, matches, closing_only = PHASES[action[1]]
            new = SessionState(action[1], accepts_new, modify, matches, "2026-11-23",
                               flags={"closing_price_only": closing_only})
            engine.runtime.on_session_change(engine.runtime.session, new)
        elif kind == "wait":
            settle(engine, action[1])
    settle(engine, 1)
    return model.handles


symbols = st.sampled_from(["MEBL", "OGDC"])
# mostly orders that could pass (so that many are sent and checked), some that break each rule
quantities = st.sampled_from([10, 10, 20, 20, 50, 100, 100, 250, 1, 5, 15, 55, 1000, 2000, 2010, 30000])
near = st.integers(-120, 120)  # within about a rupee of the reference
ticks = st.one_of(near, near, st.integers(-2700, 2700))  # ... or anywhere, out of the band included
submits = st.tuples(
    st.just("submit"), symbols, st.sampled_from(["buy", "sell"]), quantities,
    st.one_of(ticks, ticks, ticks, st.none()), st.sampled_from([False] * 7 + [True]),
    st.sampled_from(["limit", "limit", "limit", "market"]), st.sampled_from(["day", "day", "gtc", "ioc", "fok"]),
)
amends = st.tuples(st.just("amend"), st.integers(0, 60), st.one_of(st.none(), ticks), st.one_of(st.none(), quantities))
cancels = st.tuples(st.just("cancel"), st.integers(0, 60))
waits = st.tuples(st.just("wait"), st.sampled_from([0.001, 0.01, 0.5, 2.0]))
phase_names = st.sampled_from([Phase.OPEN, Phase.OPEN, Phase.PRE_OPEN, Phase.OPENING_MATCH, Phase.BREAK,
                               Phase.POST_CLOSE])
# a stream is a few session phases, each with a handful of requests and waits in it
segments = st.tuples(phase_names, st.lists(st.one_of(submits, submits, amends, cancels, waits), min_size=3,
                                           max_size=10))
streams = st.lists(segments, min_size=3, max_size=6).map(
    lambda parts: [step for phase, steps in parts for step in (("phase", phase), *steps)]
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(actions=streams)
def test_no_order_that_breaks_a_rule_ever_reaches_the_venue(actions):
    with tempfile.TemporaryDirectory() as folder:
        engine, model = fresh_engine(Path(folder))
        run_actions(engine, model, actions)
        # every order either went out or was refused with a code; nothing is left in between
        for order in model.handles:
            assert (order.status == "rejected" and order.reject_code) or (
                ("submit", order.client_id) in model.sent
            ), order


#: codes of rules the gate checks itself: the venue refusing a sent order with one is a disagreement
GATE_CODES = frozenset({2001, 2002, 2003, 2006, 2007, 7001, 7002})


def assert_the_venue_agrees(model: RuleModel) -> int:
    """No order the gate sent came back rejected by the venue for a rule the gate checks itself;
    returns how many submits went out."""
    for order in model.handles:
        if order.client_id not in model.sent_in or order.status != "rejected":
            continue
        assert order.reject_code not in GATE_CODES, (
            f"{order} sent in {model.sent_in[order.client_id].value}, venue said {order.reject_code} "
            f"{order.reject_reason}")
    return len(model.sent_in)


def paced(actions: list[tuple]) -> list[tuple]:
    """A 1 ms wait after every action: the venue (0.5 ms latency) answers in the phase the gate saw."""
    return [step for action in actions for step in (action, ("wait", 0.001))]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(actions=streams)
def test_the_venue_never_refuses_a_sent_order_for_a_rule_the_gate_checks(actions):
    with tempfile.TemporaryDirectory() as folder:
        engine, model = fresh_engine(Path(folder))
        run_actions(engine, model, paced(actions))
        assert_the_venue_agrees(model)


def random_stream(rng: random.Random, n: int) -> list[tuple]:
    """The same kinds of actions as the hypothesis stream, from a seeded generator."""
    out: list[tuple] = []
    for _ in range(n):
        roll = rng.random()
        near = rng.randint(-120, 120) if rng.random() < 0.7 else rng.randint(-2700, 2700)
        if roll < 0.5:
            out.append(("submit", rng.choice(["MEBL", "OGDC"]), rng.choice(["buy", "sell"]),
                        rng.choice([1, 5, 10, 15, 20, 55, 100, 250, 1000, 2000, 2010, 30000]),
                        None if rng.random() < 0.05 else near, rng.random() < 0.1,
                        rng.choice(["limit", "limit", "limit", "market"]),
                        rng.choice(["day", "day", "gtc", "ioc", "fok"])))
        elif roll < 0.75:
            out.append(("amend", rng.randint(0, 200), near if rng.random() < 0.7 else None,
                        rng.choice([None, 10, 20, 100, 2010])))
        elif roll < 0.8:
            out.append(("cancel", rng.randint(0, 200)))
        elif roll < 0.88:
            out.append(("phase", rng.choice([Phase.OPEN, Phase.OPEN, Phase.PRE_OPEN, Phase.OPENING_MATCH,
                                             Phase.BREAK, Phase.POST_CLOSE])))
        else:
            out.append(("wait", rng.choice([0.001, 0.01, 0.5, 2.0])))
    return out


def test_gate_and_venue_agree_over_a_long_paced_stream(tmp_path):
    engine, model = fresh_engine(tmp_path)
    run_actions(engine, model, paced(random_stream(random.Random(1), 600)))
    assert assert_the_venue_agrees(model) >= 40


def test_the_random_streams_do_exercise_the_rules(tmp_path):
    """The property is not vacuous: a long stream of the same kind both sends orders (each checked
    by the spy) and is refused for every rule the spy checks."""
    engine, model = fresh_engine(tmp_path)
    run_actions(engine, model, random_stream(random.Random(20261123), 600))
    codes = engine.runtime.rejects_by_code
    assert sum(1 for kind, _ in model.sent if kind == "submit") >= 50
    assert sum(1 for kind, _ in model.sent if kind == "amend") >= 5
    assert len(engine.runtime.runners["s"].loaded.module.fills) >= 5
    for code in (2002, 2003, 2006, 2007, 7001, 7002, 7010, 7011):
        assert codes[code] > 0, (code, dict(codes))
    assert codes[2004] + codes[4001] > 0 and codes[2005] + codes[4002] > 0, dict(codes)
