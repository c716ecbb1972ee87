"""adapters/midchains/l3book.py: the MidChains FIX L3 book and the L2 derived from it.

The property tests hold the derived L2 (and the engine Book built from the published level changes)
against a from-scratch aggregation of the L3 orders after any sequence of messages, including
refused ones."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.midchains.codec import FixMessage
from adapters.midchains.l3book import (
    CROSSED,
    DUPLICATE_ID,
    NEW,
    SIDE_MISMATCH,
    UNKNOWN_ID,
    BookError,
    Entry,
    L3Book,
    parse_incremental,
    parse_snapshot,
    plain_decimal,
)
from engine.model import Book, BookUpdate, Side

D = Decimal


def x_message(*groups: list[tuple[int, str]], count: int | None = None, head: list[tuple[int, str]] = ()) -> FixMessage:
    fields = [(8, "FIX.4.2"), (9, "0"), (35, "X"), (34, "1"), *head, (262, "0"),
              (268, str(len(groups) if count is None else count))]
    for group in groups:
        fields += group
    return FixMessage((*fields, (10, "000")))


def new(entry_id: str, side: str, price: str, qty: str, symbol: str = "LTCUSD") -> list[tuple[int, str]]:
    return [(279, "0"), (269, side), (278, entry_id), (55, symbol), (270, price), (271, qty)]


def delete(entry_id: str, side: str | None = None, symbol: str = "LTCUSD") -> list[tuple[int, str]]:
    group = [(279, "2")]
    if side is not None:
        group.append((269, side))
    return [*group, (278, entry_id), (55, symbol)]


def apply(book: L3Book, *groups: list[tuple[int, str]]):
    return book.apply(parse_incremental(x_message(*groups)))


def aggregate(book: L3Book, symbol: str) -> tuple[list, list]:
    """The L2 of ``symbol`` summed from its L3 orders from scratch."""
    sums: dict[Side, dict[Decimal, Decimal]] = {Side.BUY: defaultdict(Decimal), Side.SELL: defaultdict(Decimal)}
    for side, price, qty in book.book(symbol).orders.values():
        sums[side][price] += qty
    return sorted(sums[Side.BUY].items(), reverse=True), sorted(sums[Side.SELL].items())


# ---- parsing ---------------------------------------------------------------------------


def test_document_x_group_fields() -> None:
    """The document's X example (34=78): a New bid, id 247697979505377328, 0.2 at 121."""
    message = x_message([(279, "0"), (269, "0"), (278, "247697979505377328"), (55, "LTCUSD"), (270, "121"),
                         (271, "0.2"), (58, "62WM7F95YBJUC3")])
    assert parse_incremental(message) == [
        Entry(NEW, "0", "247697979505377328", "LTCUSD", D("121"), D("0.2"))]  # 58 is read by nothing


@pytest.mark.parametrize(("groups", "count", "needle"), [
    ([[(269, "0"), (279, "0"), (278, "1"), (55, "A"), (270, "1"), (271, "1")]], None, "before the first 279"),
    ([new("1", "0", "1", "1")], 2, "268 NoMDEntries=2 but 1 groups"),
    ([[(279, "0"), (269, "0"), (55, "A"), (270, "1"), (271, "1")]], None, "278 MDEntryID missing"),
    ([[(279, "0"), (278, "1"), (55, "A"), (270, "1"), (271, "1")]], None, "269 MDEntryType missing"),
    ([[(279, "0"), (269, "0"), (278, "1"), (270, "1"), (271, "1")]], None, "55 Symbol missing"),
    ([[(279, "1"), (269, "0"), (278, "1"), (55, "A"), (270, "1"), (271, "1")]], None, "only 0 New, 2 Delete"),
    ([[(279, "0"), (269, "5"), (278, "1"), (55, "A"), (270, "1"), (271, "1")]], None, "269 MDEntryType='5'"),
    ([new("1", "0", "1e3", "1")], None, "270='1e3' is not a plain decimal"),
    ([new("1", "0", "-1", "1")], None, "270='-1'"),
    ([new("1", "0", "1", "0")], None, "271=0 must be above 0"),
    ([new("1", "0", "1", "NaN")], None, "271='NaN'"),
    ([new("1", "0", "1", "1" * 41)], None, "not a plain decimal"),
    ([[(279, "0"), (269, "0"), (278, "1"), (278, "2"), (55, "A"), (270, "1"), (271, "1")]], None, "278 twice"),
])
def test_malformed_groups_are_named(groups, count, needle) -> None:
    with pytest.raises(BookError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        parse_incremental(x_message(*groups, count=count))


def test_no_count_and_bad_count() -> None:
    with pytest.raises(BookError, match="268 NoMDEntries missing"):
        parse_incremental(FixMessage(((8, "FIX.4.2"), (35, "X"), (10, "000"))))
    with pytest.raises(BookError, match="not a count"):
        parse_incremental(x_message(count=-1))


def test_symbol_before_count_applies_to_groups_and_suffix_names_another_instrument() -> None:
    entries = parse_incremental(x_message([(279, "0"), (269, "1"), (278, "9"), (270, "5"), (271, "1")],
                                          [(279, "0"), (269, "1"), (278, "8"), (65, "WI"), (270, "5"), (271, "1")],
                                          head=[(55, "BTCUSD")]))
    assert [e.symbol for e in entries] == ["BTCUSD", "BTCUSD.WI"]


def test_unwanted_symbols_are_skipped_unread() -> None:
    """A group of a symbol nobody tracks is not parsed further: its bad number raises nothing."""
    message = x_message(new("1", "0", "bad", "1", symbol="ETHUSD"), new("2", "0", "10", "1"))
    assert [e.entry_id for e in parse_incremental(message, wanted={"LTCUSD"}.__contains__)] == ["2"]


def test_document_w_is_a_last_trade() -> None:
    """The document's W carries only 269=2 (MID-14: the last trade), 0.91 at 133.54."""
    top = parse_snapshot(FixMessage(((8, "FIX.4.2"), (35, "W"), (55, "LTCUSD"), (262, "0"), (268, "1"), (269, "2"),
                                     (270, "133.54"), (271, "0.91"), (10, "000"))))
    assert top.bid is None and top.offer is None
    assert top.last is not None and (top.last.price, top.last.qty) == (D("133.54"), D("0.91"))


def test_w_with_bid_and_offer_and_a_repeated_side() -> None:
    fields = [(8, "FIX.4.2"), (35, "W"), (55, "LTCUSD"), (268, "2"), (269, "0"), (270, "120"), (271, "0.1"),
              (269, "1"), (270, "121"), (271, "0.2"), (10, "000")]
    top = parse_snapshot(FixMessage(tuple(fields)))
    assert (top.bid, top.offer) == ((D(120), D("0.1")), (D(121), D("0.2")))
    fields[7] = (269, "0")
    with pytest.raises(BookError, match="repeated"):
        parse_snapshot(FixMessage(tuple(fields)))


def test_plain_decimal_keeps_exact_digits() -> None:
    assert plain_decimal("0.00000001", 271) == D("0.00000001")
    assert plain_decimal("0", 270, positive=False) == 0


# ---- the book -----------------------------------------------------------------------------


def test_change_arrives_as_delete_then_new() -> None:
    book = L3Book()
    changes, prints = apply(book, new("a", "0", "120", "0.1"), new("b", "0", "120", "0.2"), new("c", "1", "121", "1"))
    assert changes == {"LTCUSD": [(Side.BUY, D(120), D("0.3")), (Side.SELL, D(121), D(1))]} and prints == []
    changes, _ = apply(book, delete("a"), new("a", "0", "119", "0.1"))
    assert changes == {"LTCUSD": [(Side.BUY, D(120), D("0.2")), (Side.BUY, D(119), D("0.1"))]}
    assert book.book("LTCUSD").best_bid == D(120)
    changes, _ = apply(book, delete("b", "0"))
    assert changes == {"LTCUSD": [(Side.BUY, D(120), D(0))]}
    assert book.book("LTCUSD").best_bid == D(119)
    assert book.book("LTCUSD").l2() == ([(D(119), D("0.1"))], [(D(121), D(1))])


def test_delete_and_new_same_size_is_no_level_change() -> None:
    book = L3Book()
    apply(book, new("a", "0", "120", "0.1"))
    changes, _ = apply(book, delete("a"), new("a2", "0", "120", "0.1"))
    assert changes == {"LTCUSD": []}


def test_trade_print_does_not_rest() -> None:
    book = L3Book()
    changes, prints = apply(book, new("t1", "2", "133.54", "0.91"))
    assert changes == {} and [(p.price, p.qty, p.trade_id) for p in prints] == [(D("133.54"), D("0.91"), "t1")]
    assert book.book("LTCUSD").orders == {}
    apply(book, delete("t1", "2"))
    assert book.trade_deletes == 1


@pytest.mark.parametrize(("first", "second", "kind"), [
    ([], [delete("zz")], UNKNOWN_ID),
    ([new("a", "0", "1", "1")], [new("a", "1", "2", "1")], DUPLICATE_ID),
    ([new("a", "0", "1", "1")], [delete("a", "1")], SIDE_MISMATCH),
    ([new("a", "0", "10", "1")], [new("b", "1", "10", "1")], CROSSED),
    ([], [new("a", "0", "1", "1"), new("a", "0", "1", "1")], DUPLICATE_ID),
    ([], [new("a", "0", "1", "1"), delete("a"), delete("a")], UNKNOWN_ID),
])
def test_inconsistencies_are_refused_with_their_kind(first, second, kind) -> None:
    book = L3Book()
    if first:
        apply(book, *first)
    before = dict(book.book("LTCUSD").orders)
    with pytest.raises(BookError) as raised:
        apply(book, *second)
    assert raised.value.kind == kind and raised.value.resync and raised.value.symbol == "LTCUSD"
    if kind != CROSSED:  # refused whole: nothing of it applied
        assert book.book("LTCUSD").orders == before


def test_new_delete_new_of_one_id_in_one_message() -> None:
    book = L3Book()
    apply(book, new("a", "0", "1", "1"), delete("a"), new("a", "0", "2", "3"))
    assert book.book("LTCUSD").orders == {"a": (Side.BUY, D(2), D(3))}


def test_sums_are_exact() -> None:
    book = L3Book()
    apply(book, *[new(str(i), "0", "100", "0.1") for i in range(10)])
    assert book.book("LTCUSD").levels[Side.BUY][D(100)] == D("1.0")
    apply(book, *[delete(str(i)) for i in range(9)])
    assert book.book("LTCUSD").levels[Side.BUY][D(100)] == D("0.1")


def test_widest_numbers_sum_exactly_and_beyond_the_bound_are_refused() -> None:
    book = L3Book()
    apply(book, new("a", "0", "1", "9" * 17 + "." + "9" * 22), new("b", "0", "1", "0." + "0" * 37 + "1"))
    assert book.book("LTCUSD").levels[Side.BUY][D(1)] == D("9" * 17 + "." + "9" * 22 + "0" * 15 + "1")
    with pytest.raises(BookError, match="not below 1e18"):
        plain_decimal("1" + "0" * 18, 271)


# ---- properties ----------------------------------------------------------------------------

ids = st.sampled_from([f"o{i}" for i in range(12)])
bid_prices = st.sampled_from(["1", "1.5", "2", "2.25", "3"])
ask_prices = st.sampled_from(["4", "4.5", "5", "6.125", "7"])
sizes = st.sampled_from(["0.1", "0.2", "1", "0.00000001", "3.5", "12"])
symbols = st.sampled_from(["LTCUSD", "BTCUSD"])


@st.composite
def groups(draw: st.DrawFn) -> list[tuple[int, str]]:
    symbol = draw(symbols)
    if draw(st.booleans()):
        side = draw(st.sampled_from(["0", "1", "2"]))
        price = draw(ask_prices if side == "1" else bid_prices)
        return new(draw(ids), side, price, draw(sizes), symbol)
    return delete(draw(ids), draw(st.sampled_from([None, "0", "1"])), symbol)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(groups(), min_size=1, max_size=4), max_size=40))
def test_derived_l2_equals_aggregation_of_l3(messages) -> None:
    """After any sequence (refused messages included: they change nothing), each symbol's derived
    L2 equals the from-scratch aggregation of its orders, and the engine Book built from the
    published changes equals both."""
    book = L3Book()
    engine: dict[str, Book] = {}
    for number, message in enumerate(messages):
        try:
            changes, _ = apply(book, *message)
        except BookError as exc:
            assert exc.kind in (UNKNOWN_ID, DUPLICATE_ID, SIDE_MISMATCH)
            continue
        for symbol, levels in changes.items():
            engine.setdefault(symbol, Book("midchains", symbol)).apply(
                BookUpdate("midchains", symbol, 0, number, tuple(levels)))
    for symbol in ("LTCUSD", "BTCUSD"):
        expected = aggregate(book, symbol)
        assert book.book(symbol).l2() == expected
        mine = engine.get(symbol, Book("midchains", symbol))
        assert (mine.bids, mine.asks) == expected
        bids, asks = expected
        assert book.book(symbol).best_bid == (bids[0][0] if bids else None)
        assert book.book(symbol).best_ask == (asks[0][0] if asks else None)
        assert all(qty > 0 for _, qty in bids + asks)
        # a level exists exactly while an order rests at its price (its sum is zero only when none does)
        resting = {(side, price) for side, price, _ in book.book(symbol).orders.values()}
        assert resting == {(side, price) for side in (Side.BUY, Side.SELL) for price in book.book(symbol).levels[side]}


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["0", "1"]), st.sampled_from(["1", "2", "3", "4"])), min_size=1,
                max_size=12))
def test_crossed_is_refused_exactly_when_bid_reaches_offer(orders) -> None:
    book = L3Book()
    for number, (side, price) in enumerate(orders):
        try:
            apply(book, new(f"o{number}", side, price, "1"))
        except BookError as exc:
            assert exc.kind == CROSSED
            held = book.book("LTCUSD")
            assert max(held.levels[Side.BUY]) >= min(held.levels[Side.SELL])
            return
        held = book.book("LTCUSD")
        if held.levels[Side.BUY] and held.levels[Side.SELL]:
            assert max(held.levels[Side.BUY]) < min(held.levels[Side.SELL])
