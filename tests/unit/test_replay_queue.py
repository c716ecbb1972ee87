"""The replay venue's queue-position model (adapters/replay/queue.py), against a reference model.

The reference: our order joins with ``ahead`` = the displayed size and ``behind`` = 0; a recorded
growth adds behind; a shrink with no trade takes from behind first, then from ahead; a trade
consumes ahead, then us, then behind. The recorded level is always ``ahead + behind``.
"""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.replay.queue import ReplayBook
from adapters.sim.matching import Execution, MatchingEngine
from engine.model import BookUpdate, OrderType, Phase, Side, TimeInForce, Trade

PRICE = Decimal("100.00")
BUY, SELL = Side.BUY, Side.SELL


class Venue:
    """A matching engine in continuous trading, a ReplayBook on it, and our fills."""

    def __init__(self) -> None:
        self.engine = MatchingEngine("X", tick_size=Decimal("0.01"), lot_size=Decimal(1))
        self.engine.set_phase(Phase.OPEN)
        self.ours_filled = Decimal(0)
        self.book = ReplayBook(self.engine, self.cross, lambda: 0)
        self.seq = 0

    def cross(self, owner: str, side: Side, qty: Decimal, price: Decimal, tif: TimeInForce) -> None:
        outcome = self.engine.submit(owner, "", side, qty, price, OrderType.LIMIT, tif)
        self._count(outcome.events)

    def _count(self, events) -> None:
        for event in events:
            if isinstance(event, Execution) and "us" in (event.maker_owner, event.taker_owner):
                self.ours_filled += event.qty

    def level(self, side: Side, price: Decimal, qty: int, snapshot: bool = False) -> None:
        self.seq += 1
        self.book.apply_book(BookUpdate("v", "X", 0, self.seq, ((side, price, Decimal(qty)),), snapshot))

    def place(self, side: Side, qty: int, price: Decimal = PRICE) -> None:
        self.book.sync(side, price)  # as the adapter: the levels this order can meet
        outcome = self.engine.submit("us", "c1", side, Decimal(qty), price)
        self._count(outcome.events)
        self.refresh()

    def refresh(self) -> None:
        self.book.set_ours([(o.side, o.price) for o in self.engine.resting_orders() if o.owner == "us"])

    def trade(self, qty: int, price: Decimal = PRICE, aggressor: Side | None = SELL) -> None:
        self.book.apply_trade(Trade("v", "X", 0, price, Decimal(qty), aggressor, "t"))
        self.refresh()


ops = st.lists(st.tuples(st.sampled_from(["grow", "shrink", "trade"]), st.integers(1, 400)), max_size=30)


@settings(max_examples=300, deadline=None)
@given(displayed=st.integers(0, 1000), ours=st.integers(1, 500), steps=ops,
       unseen=st.lists(st.integers(0, 1000), max_size=5))
def test_queue_position_matches_the_reference_model(displayed: int, ours: int, steps, unseen) -> None:
    venue = Venue()
    for size in unseen:  # changes before our order arrives: kept lazily, synced on arrival
        venue.level(BUY, PRICE, size)
    venue.level(BUY, PRICE, displayed)
    venue.place(BUY, ours)
    ahead, behind, filled = displayed, 0, 0
    for op, n in steps:
        if filled == ours:
            break
        if op == "grow":
            behind += n
        elif op == "shrink":
            n = min(n, ahead + behind)
            from_behind = min(behind, n)
            behind -= from_behind
            ahead -= n - from_behind
        else:
            take = min(ahead, n)
            ahead -= take
            rest = n - take
            mine = min(ours - filled, rest)
            filled += mine
            behind -= min(behind, rest - mine)
            venue.trade(n)
            assert venue.ours_filled == filled
            continue
        venue.level(BUY, PRICE, ahead + behind)
        assert venue.ours_filled == filled
    assert venue.ours_filled == filled


def test_a_trade_at_a_worse_price_reaches_our_better_order_first() -> None:
    venue = Venue()
    venue.level(BUY, PRICE, 300)
    venue.place(BUY, 100, Decimal("100.05"))  # alone at a better price
    venue.trade(150, PRICE)  # sellers went down to 100.00: they passed our 100.05 on the way
    assert venue.ours_filled == 100


def test_the_market_moving_through_our_price_fills_us() -> None:
    venue = Venue()
    venue.level(BUY, PRICE, 300)
    venue.place(BUY, 100)
    venue.level(SELL, Decimal("99.90"), 500)  # an ask below our bid: it would have hit us
    assert venue.ours_filled == 100


def test_an_aggressive_order_takes_the_recorded_levels_at_their_prices() -> None:
    venue = Venue()
    venue.level(SELL, Decimal("100.10"), 50)
    venue.level(SELL, Decimal("100.20"), 80)
    venue.place(BUY, 100, Decimal("100.20"))
    assert venue.ours_filled == 100
    fills = [e for e in venue.engine.resting_orders(SELL)]
    assert [(o.price, o.leaves) for o in fills] == [(Decimal("100.20"), Decimal(30))]


def test_what_we_took_is_given_back_before_our_next_order_that_can_meet_it() -> None:
    venue = Venue()
    venue.level(SELL, Decimal("100.10"), 50)
    venue.place(BUY, 50, Decimal("100.10"))
    assert venue.engine.best_ask is None
    venue.place(BUY, 10, Decimal("99.00"))  # far below: the ask is not looked at (kept lazily)
    assert venue.engine.best_ask is None and venue.ours_filled == 50
    venue.place(BUY, 10, Decimal("100.10"))  # reaches it: the recorded ask is back, no market impact
    assert venue.ours_filled == 60
    assert venue.engine.level_qty(SELL, Decimal("100.10")) == 40


def test_a_print_nobody_could_reach_us_with_changes_nothing() -> None:
    venue = Venue()
    venue.level(BUY, PRICE, 300)
    venue.place(BUY, 100)
    venue.trade(1000, Decimal("100.50"), SELL)  # above our bid: a seller hitting someone else
    venue.trade(1000, PRICE, BUY)  # a buyer lifting an ask: never our bid
    assert venue.ours_filled == 0


def test_a_print_without_an_aggressor_comes_from_the_side_that_reaches_us() -> None:
    venue = Venue()
    venue.level(BUY, PRICE, 0)
    venue.place(BUY, 100)
    venue.trade(40, PRICE, None)
    assert venue.ours_filled == 40
