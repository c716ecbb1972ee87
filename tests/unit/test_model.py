"""The order state machine (VENUES.md 6.6), the L2 book and exact instrument arithmetic."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.model import (
    Book,
    BookUpdate,
    IllegalTransition,
    Instrument,
    Order,
    OrderStatus,
    Side,
)

D = Decimal
S = OrderStatus


def new_order(qty: str = "100") -> Order:
    return Order("c1", "mm", "paper", "MEBL", Side.BUY, D(qty), D("187.50"))


def test_order_starts_pending_new():
    assert new_order().status is S.PENDING_NEW


def test_ack_then_fills_walk_new_partial_filled():
    order = new_order()
    order.transition(S.NEW)
    order.apply_fill(D(40), D("187.50"))
    assert order.status is S.PARTIALLY_FILLED
    assert order.leaves_qty == D(60)
    order.apply_fill(D(60), D("187.40"))
    assert order.status is S.FILLED
    assert order.cum_qty == D(100)
    assert order.leaves_qty == 0
    assert order.avg_price == D("187.44")


@pytest.mark.parametrize("terminal", [S.FILLED, S.CANCELLED, S.REJECTED, S.EXPIRED])
@pytest.mark.parametrize("target", list(S))
def test_terminal_states_absorb(terminal, target):
    order = new_order()
    if terminal is S.REJECTED:
        order.reject(2002, "lot")
    elif terminal is S.FILLED:
        order.apply_fill(D(100), D(1))
    else:
        order.transition(S.NEW)
        order.transition(terminal)
    with pytest.raises(IllegalTransition):
        order.transition(target)


@pytest.mark.parametrize(
    ("path", "illegal"),
    [
        ([], S.PENDING_REPLACE),  # no amend before the venue acked the order
        ([S.NEW], S.PENDING_NEW),  # never back to pending_new
        ([S.NEW], S.REJECTED),  # an acked order is not rejected; it is cancelled
    ],
)
def test_illegal_transitions_raise(path, illegal):
    order = new_order()
    for status in path:
        order.transition(status)
    with pytest.raises(IllegalTransition, match="not allowed"):
        order.transition(illegal)


def test_cancel_may_be_requested_before_the_ack_and_met_by_a_reject():
    order = new_order()
    order.transition(S.PENDING_CANCEL)
    order.reject(2006, "market closed")
    assert order.status is S.REJECTED
    assert order.reject_code == 2006


def test_late_fill_after_cancel_updates_quantity_not_state():
    order = new_order()
    order.transition(S.NEW)
    order.transition(S.PENDING_CANCEL)
    order.transition(S.CANCELLED)
    order.apply_fill(D(30), D("187.50"))
    assert order.status is S.CANCELLED
    assert order.cum_qty == D(30)


def test_fill_beyond_quantity_is_refused_and_cum_qty_unchanged():
    order = new_order()
    order.apply_fill(D(90), D(1))
    with pytest.raises(IllegalTransition, match="exceed"):
        order.apply_fill(D(20), D(1))
    assert order.cum_qty == D(90)


def test_partial_fill_while_cancel_pending_keeps_pending_cancel():
    order = new_order()
    order.transition(S.NEW)
    order.transition(S.PENDING_CANCEL)
    order.apply_fill(D(10), D(1))
    assert order.status is S.PENDING_CANCEL


def test_replace_confirm_applies_new_price_and_returns_to_live_state():
    order = new_order()
    order.transition(S.NEW)
    order.apply_fill(D(10), D("187.50"))
    order.request_replace(D("187.60"), D(200))
    assert order.status is S.PENDING_REPLACE and order.price == D("187.50")
    order.confirm_replace(D("187.60"), D(200))
    assert (order.status, order.price, order.qty) == (S.PARTIALLY_FILLED, D("187.60"), D(200))


def test_replace_to_quantity_below_filled_is_illegal():
    order = new_order()
    order.transition(S.NEW)
    order.apply_fill(D(50), D(1))
    order.request_replace(None, D(40))
    with pytest.raises(IllegalTransition):
        order.confirm_replace(None, D(40))


def test_strategy_cannot_assign_order_fields():
    order = new_order()
    with pytest.raises(AttributeError):
        order.price = D(1)  # type: ignore[misc]


@given(st.lists(st.integers(min_value=1, max_value=50), min_size=1, max_size=30))
def test_cum_qty_never_decreases_and_never_exceeds_qty(fill_sizes):
    order = new_order("500")
    order.transition(S.NEW)
    previous = D(0)
    for size in fill_sizes:
        try:
            order.apply_fill(D(size), D("1.00"))
        except IllegalTransition:
            pass
        assert previous <= order.cum_qty <= order.qty
        previous = order.cum_qty


# ---- book -------------------------------------------------------------------------------

def snapshot(bids, asks, seq=1):
    changes = tuple((Side.BUY, D(p), D(q)) for p, q in bids) + tuple((Side.SELL, D(p), D(q)) for p, q in asks)
    return BookUpdate("paper", "MEBL", 1, seq, changes, snapshot=True)


def test_book_snapshot_sets_best_levels_and_ladders():
    book = Book("paper", "MEBL")
    book.apply(snapshot([("187.40", 100), ("187.45", 50)], [("187.55", 70), ("187.60", 10)]))
    assert (book.best_bid, book.best_ask) == (D("187.45"), D("187.55"))
    assert book.bids == [(D("187.45"), D(50)), (D("187.40"), D(100))]
    assert book.asks[0] == (D("187.55"), D(70))
    assert book.mid == D("187.50")
    assert book.spread == D("0.10")
    assert book.bid_size == D(50)


def test_book_delta_removing_best_recomputes_it():
    book = Book("paper", "MEBL")
    book.apply(snapshot([("187.40", 100), ("187.45", 50)], [("187.55", 70)]))
    book.apply(BookUpdate("paper", "MEBL", 2, 2, ((Side.BUY, D("187.45"), D(0)),)))
    assert book.best_bid == D("187.40")
    assert book.seq == 2


def test_book_snapshot_replaces_everything():
    book = Book("paper", "MEBL")
    book.apply(snapshot([("187.40", 100)], [("187.55", 70)]))
    book.apply(snapshot([("10.00", 1)], [], seq=2))
    assert book.bids == [(D("10.00"), D(1))]
    assert book.best_ask is None and book.mid is None


@given(
    st.lists(
        st.tuples(st.sampled_from([Side.BUY, Side.SELL]), st.integers(1, 40), st.integers(0, 5), st.booleans()),
        min_size=1,
        max_size=200,
    )
)
def test_book_best_levels_match_a_full_recompute(changes):
    """A new Decimal per change, and equal prices written with other exponents (0.1 and 0.100):
    a delete finds the best gone by dict equality, as a Decimal comparison would."""
    book = Book("paper", "X")
    reference = {Side.BUY: {}, Side.SELL: {}}
    for seq, (side, ticks, qty, rescaled) in enumerate(changes, 1):
        price = D(ticks) / 100
        if rescaled:
            price = price.quantize(D("0.00001"))
        book.apply(BookUpdate("paper", "X", seq, seq, ((side, price, D(qty)),)))
        if qty:
            reference[side][price] = D(qty)
        else:
            reference[side].pop(price, None)
        assert book.best_bid == (max(reference[Side.BUY]) if reference[Side.BUY] else None)
        assert book.best_ask == (min(reference[Side.SELL]) if reference[Side.SELL] else None)


@given(
    st.lists(
        st.tuples(st.sampled_from(["delta", "delta", "delta", "snapshot"]), st.sampled_from([Side.BUY, Side.SELL]),
                  st.integers(1, 12), st.integers(0, 3), st.booleans()),
        min_size=1,
        max_size=120,
    )
)
def test_book_mid_is_the_touch_midpoint_after_any_update(steps):
    """``known_mid`` keeps the mid between reads: after any mix of deltas, snapshots (empty ones
    too) and reads, it is None or the current touch's midpoint, and so is ``mid``."""
    book = Book("paper", "X")
    reference: dict[Side, dict[Decimal, Decimal]] = {Side.BUY: {}, Side.SELL: {}}
    for seq, (kind, side, ticks, qty, read) in enumerate(steps, 1):
        price = D(ticks) / 4  # equal values as new objects: 1/4 and 0.25 are different Decimals
        if kind == "snapshot":
            reference = {Side.BUY: {}, Side.SELL: {}}
            changes = ((side, price, D(qty)),) if qty else ()
            book.apply(BookUpdate("paper", "X", seq, seq, changes, snapshot=True))
        else:
            book.apply(BookUpdate("paper", "X", seq, seq, ((side, price, D(qty)),)))
        if qty:
            reference[side][price] = D(qty)
        else:
            reference[side].pop(price, None)
        bid = max(reference[Side.BUY]) if reference[Side.BUY] else None
        ask = min(reference[Side.SELL]) if reference[Side.SELL] else None
        expected = None if bid is None or ask is None else (bid + ask) / 2
        assert book.known_mid is None or book.known_mid == expected
        if read:
            assert book.mid == expected
            assert book.known_mid == expected


@given(
    st.lists(
        st.tuples(st.booleans(), st.lists(st.tuples(st.sampled_from([Side.BUY, Side.SELL]), st.integers(1, 8),
                                                    st.integers(0, 3)), max_size=6),
                  st.booleans()),
        min_size=1,
        max_size=60,
    )
)
def test_book_updates_of_many_changes_match_a_full_recompute(updates):
    """An update may carry several changes (a snapshot, a feed's batched deltas), the same level
    twice, the touch deleted and replaced within it: the book ends as applying them one by one to
    plain dicts would, touch, ladders and mid alike."""
    book = Book("paper", "X")
    reference: dict[Side, dict[Decimal, Decimal]] = {Side.BUY: {}, Side.SELL: {}}
    for seq, (snapshot, changes, read) in enumerate(updates, 1):
        changes = tuple((side, D(ticks) / 4, D(qty)) for side, ticks, qty in changes)
        book.apply(BookUpdate("paper", "X", seq, seq, changes, snapshot=snapshot))
        if snapshot:
            reference = {Side.BUY: {}, Side.SELL: {}}
        for side, price, qty in changes:
            if qty:
                reference[side][price] = qty
            else:
                reference[side].pop(price, None)
        bid = max(reference[Side.BUY]) if reference[Side.BUY] else None
        ask = min(reference[Side.SELL]) if reference[Side.SELL] else None
        assert (book.best_bid, book.best_ask, book.seq) == (bid, ask, seq)
        assert book.bids == sorted(reference[Side.BUY].items(), reverse=True)
        assert book.asks == sorted(reference[Side.SELL].items())
        expected = None if bid is None or ask is None else (bid + ask) / 2
        assert book.known_mid is None or book.known_mid == expected
        if read:
            assert book.mid == expected


# ---- instrument ----------------------------------------------------------------------------

def test_round_to_tick_never_more_aggressive_than_asked():
    mebl = Instrument("MEBL", "paper", tick_size=D("0.05"))
    assert mebl.round_to_tick(D("187.52"), "buy") == D("187.50")
    assert mebl.round_to_tick(D("187.52"), Side.SELL) == D("187.55")
    assert mebl.on_tick(D("187.55")) and not mebl.on_tick(D("187.52"))


@given(st.lists(st.lists(st.tuples(st.sampled_from([Side.BUY, Side.SELL]), st.integers(1, 12), st.integers(0, 3)),
                         min_size=1, max_size=6), min_size=1, max_size=60))
def test_book_updates_of_several_changes_match_a_full_recompute(updates):
    """Updates that delete several levels at the touch, re-add them, or add past a deleted best in
    one go: the side whose best went is scanned once at the end, and the touch is the reference's."""
    book = Book("paper", "X")
    reference: dict[Side, dict[Decimal, Decimal]] = {Side.BUY: {}, Side.SELL: {}}
    for seq, changes in enumerate(updates, 1):
        update = tuple((side, D(ticks) / 100, D(qty)) for side, ticks, qty in changes)
        book.apply(BookUpdate("paper", "X", seq, seq, update))
        for side, price, qty in update:
            if qty:
                reference[side][price] = qty
            else:
                reference[side].pop(price, None)
        assert book.best_bid == (max(reference[Side.BUY]) if reference[Side.BUY] else None)
        assert book.best_ask == (min(reference[Side.SELL]) if reference[Side.SELL] else None)
        assert book.mid == ((book.best_bid + book.best_ask) / 2 if book.best_bid and book.best_ask else None)
