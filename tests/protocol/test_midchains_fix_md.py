"""MidChains FIX market data (``adapters/midchains/mdfeed.py`` on ``l3book.py``) fed the document's
own W and X examples (shared/seeds/001_a6a531a293923345.txt, "FIX Market Data"; copies in
tests/fixtures/midchains/fix_examples.txt, BodyLength and CheckSum recomputed by ``reframe``).

Both X examples are garbled in the document: the first starts ``8=FIX.4.8=FIX.4.2``, the second is
two frames run together (``52=20210713-8=FIX.4.2...``). Each holds one whole frame after its last
``8=FIX.4.2``: X 34=77 (a New bid, id ...327, 0.1 at 120) and X 34=78 (a New bid, id ...328, 0.2 at
121). As printed, the codec refuses both lines."""

from __future__ import annotations

import random
from collections import defaultdict
from decimal import Decimal

import pytest
from support.midchains_fix import CLIENT, GATEWAY, T0, Gateway, delivered, examples, logged_on

from adapters.midchains.codec import FixCodecError, FixMessage, decode, reframe
from adapters.midchains.mdfeed import MdFeed
from engine.model import Book, BookUpdate, Side, Trade

D = Decimal
MS = 1_000_000
SETTLE = 250 * MS
SETTLE_MAX = 2_000 * MS


def document_lines(msg_type: str) -> list[str]:
    return [line for line in examples() if f"^A35={msg_type}^A" in line]


def recovered(line: str) -> bytes:
    """The whole frame a garbled document line holds: from its last ``8=FIX.4.2^A``, 9/10 recomputed."""
    start = line.rindex("8=FIX.4.2^A")
    return reframe(line[start:].replace("^A", "\x01").encode())


def document_x() -> list[FixMessage]:
    return [decode(recovered(line)) for line in document_lines("X")]


def document_w() -> FixMessage:
    (line,) = document_lines("W")
    return decode(reframe(line.replace("^A", "\x01").encode()))


def feed(tracked: tuple[str, ...] = ("LTCUSD",), **kwargs: object) -> MdFeed:
    md = MdFeed("midchains", tracked, SETTLE, SETTLE_MAX, **kwargs)  # type: ignore[arg-type]
    md.start()
    md.logged_on(T0)
    return md


def test_the_document_x_lines_are_garbled_and_each_holds_one_frame() -> None:
    lines = document_lines("X")
    assert len(lines) == 2
    for line in lines:
        with pytest.raises(FixCodecError):
            decode(reframe(line.replace("^A", "\x01").encode()))
    assert [(m.get(34), m.get(278), m.get(270), m.get(271)) for m in document_x()] == [
        ("77", "247697979505377327", "120", "0.1"), ("78", "247697979505377328", "121", "0.2")]


def test_document_x_examples_build_the_book() -> None:
    """The two New bids rest at 120 (0.1) and 121 (0.2): once the burst settles, a snapshot with
    both levels, best bid 121; the engine's Book built from it agrees."""
    md = feed()
    assert md.subscribe(["LTCUSD"], T0) == []  # not whole yet: nothing published
    for message in document_x():
        assert md.on_message(message, T0 + MS) == []  # the logon burst: kept, not yet published
    assert md.next_deadline() == T0 + MS + SETTLE
    assert md.tick(T0 + MS + SETTLE - 1) == []
    (snapshot,) = md.tick(T0 + MS + SETTLE)
    assert isinstance(snapshot, BookUpdate) and snapshot.snapshot and snapshot.symbol == "LTCUSD"
    book = Book("midchains", "LTCUSD")
    book.apply(snapshot)
    assert book.bids == [(D(121), D("0.2")), (D(120), D("0.1"))] and book.asks == []
    assert md.settled and md.book.book("LTCUSD").orders["247697979505377328"] == (Side.BUY, D(121), D("0.2"))


def test_after_settling_changes_are_deltas_and_a_change_is_delete_plus_new() -> None:
    md = feed()
    md.subscribe(["LTCUSD"], T0)
    first, second = document_x()
    md.on_message(first, T0)
    md.tick(T0 + SETTLE)
    (delta,) = md.on_message(second, T0 + SETTLE + 1)
    assert not delta.snapshot and delta.changes == ((Side.BUY, D(121), D("0.2")),) and delta.seq == 78
    change = Gateway(seq=79).frame("X", (262, "0"), (268, "2"),
                                   (279, "2"), (269, "0"), (278, "247697979505377328"), (55, "LTCUSD"),
                                   (279, "0"), (269, "0"), (278, "247697979505377328"), (55, "LTCUSD"), (270, "121"),
                                   (271, "0.5"), (58, "62WM7F95YBJUC3"))
    (delta,) = md.on_message(decode(change), T0 + SETTLE + 2)
    assert delta.changes == ((Side.BUY, D(121), D("0.5")),)


def test_document_w_is_the_last_trade_not_a_new_print() -> None:
    """MID-14: the W example's 269=2 is the last trade (133.54, 0.91): kept, not published as a
    trade unless ``w_trades`` (a gateway printing trades only through W)."""
    md = feed()
    md.subscribe(["LTCUSD"], T0)
    assert md.on_message(document_w(), T0) == []
    assert (md.last_trade["LTCUSD"].price, md.last_trade["LTCUSD"].qty) == (D("133.54"), D("0.91"))
    md = feed(w_trades=True)
    md.subscribe(["LTCUSD"], T0)
    (trade,) = md.on_message(document_w(), T0)
    assert isinstance(trade, Trade) and (trade.price, trade.qty, trade.aggressor) == (D("133.54"), D("0.91"), None)


def test_x_trade_print_is_published() -> None:
    md = feed()
    md.subscribe(["LTCUSD"], T0)
    message = decode(Gateway(seq=80).frame("X", (262, "0"), (268, "1"), (279, "0"), (269, "2"), (278, "T1"),
                                           (55, "LTCUSD"), (270, "133.54"), (271, "0.91")))
    (trade,) = md.on_message(message, T0)
    assert (trade.symbol, trade.price, trade.qty, trade.trade_id) == ("LTCUSD", D("133.54"), D("0.91"), "T1")


def test_unsubscribed_symbols_are_not_published_and_untracked_ones_not_kept() -> None:
    md = feed(tracked=("LTCUSD", "BTCUSD"))
    md.subscribe(["BTCUSD"], T0)
    for message in document_x():
        assert md.on_message(message, T0) == []
    assert len(md.book.book("LTCUSD").orders) == 2  # tracked: kept for a later subscribe
    other = decode(Gateway(seq=90).frame("X", (262, "0"), (268, "1"), (279, "0"), (269, "0"), (278, "1"),
                                         (55, "ETHUSD"), (270, "oops"), (271, "1")))
    assert md.on_message(other, T0) == [] and md.resync_reason is None  # untracked: its bad number unread
    assert "ETHUSD" not in md.book.books and md.counters["untracked_dropped"] == 1
    md.tick(T0 + SETTLE_MAX)
    (snapshot,) = md.subscribe(["LTCUSD"], T0 + SETTLE_MAX)
    assert snapshot.snapshot and len(snapshot.changes) == 2


def test_empty_book_is_whole_after_the_longest_settle() -> None:
    md = feed(tracked=("BTCUSD",))
    md.subscribe(["BTCUSD"], T0)
    assert md.tick(T0 + SETTLE) == []
    (snapshot,) = md.tick(T0 + SETTLE_MAX)
    assert snapshot.snapshot and snapshot.changes == ()


def test_replayed_messages_before_the_fresh_burst_are_skipped() -> None:
    """A PossDup X replayed from before this logon is the old book's: skipped; a later one (a gap
    filled within this connection) is applied."""
    md = feed()
    md.subscribe(["LTCUSD"], T0)
    first, second = document_x()
    old = decode(Gateway(seq=50).frame("X", (262, "0"), (268, "1"), (279, "2"), (269, "0"), (278, "OLD"),
                                       (55, "LTCUSD"), header=[(43, "Y"), (122, "20210713-14:00:00")]))
    assert md.on_message(old, T0) == [] and md.counters["replayed_skipped"] == 1 and md.resync_reason is None
    md.on_message(first, T0)
    md.tick(T0 + SETTLE)
    fields = tuple((tag, "Y") if tag == 43 else (tag, value) for tag, value in second.fields)
    replay = FixMessage((*fields[:4], (43, "Y"), *fields[4:]))
    (delta,) = md.on_message(replay, T0 + SETTLE)
    assert delta.changes == ((Side.BUY, D(121), D("0.2")),)


@pytest.mark.parametrize(("groups", "kind"), [
    ([(279, "2"), (269, "0"), (278, "NOPE"), (55, "LTCUSD")], "unknown_id"),
    ([(279, "0"), (269, "1"), (278, "247697979505377327"), (55, "LTCUSD"), (270, "130"), (271, "1")], "duplicate_id"),
    ([(279, "0"), (269, "1"), (278, "ASK"), (55, "LTCUSD"), (270, "119"), (271, "1")], "crossed"),
    ([(279, "0"), (269, "0"), (278, "B"), (55, "LTCUSD"), (270, "1"), (271, "-1")], "bad_number"),
    ([(279, "0"), (269, "0"), (278, "B"), (270, "1"), (271, "1")], "malformed"),
])
def test_an_inconsistent_x_stops_publishing_and_asks_for_a_resync(groups, kind) -> None:
    md = feed()
    md.subscribe(["LTCUSD"], T0)
    md.on_message(document_x()[0], T0)
    md.tick(T0 + SETTLE)
    bad = decode(Gateway(seq=100).frame("X", (262, "0"), (268, "1"), *groups))
    assert md.on_message(bad, T0 + SETTLE) == []
    assert md.resync_reason is not None and not md.settled
    assert [r.kind for r in md.take_refused()] == [kind]
    assert md.on_message(document_x()[1], T0 + SETTLE) == []  # nothing published until the next logon
    md.start()
    assert md.resync_reason is None and md.book.books == {}


def test_y_reject_is_counted_with_its_text_under_either_tag() -> None:
    md = feed()
    for tag in (58, 268):
        md.on_message(decode(Gateway(seq=5).frame("Y", (262, "7"), (tag, "unknown symbol"))), T0)
    refused = md.take_refused()
    assert [r.kind for r in refused] == ["md_reject", "md_reject"]
    assert all("unknown symbol" in r.reason and not r.resync for r in refused)


def test_document_examples_through_the_session() -> None:
    """Codec + session + feed: the document's W and X bodies, numbered by a gateway after a
    logon, come out of the session in order and build the same book."""
    gateway = Gateway()
    session = logged_on(gateway=gateway)
    md = feed()
    md.subscribe(["LTCUSD"], T0)
    data = b""
    for message in [document_w(), *document_x()]:
        body = [(tag, value) for tag, value in message.fields if tag not in (8, 9, 10, 34, 35, 49, 52, 56)]
        data += gateway.frame(message.msg_type, *body)
    messages = delivered(session.receive(data, T0))
    assert [m.msg_type for m in messages] == ["W", "X", "X"]
    assert all(m.get(49) == GATEWAY and m.get(56) == CLIENT for m in messages)
    for message in messages:
        md.on_message(message, T0)
    (snapshot,) = md.tick(T0 + SETTLE)
    assert sorted(snapshot.changes) == [(Side.BUY, D(120), D("0.1")), (Side.BUY, D(121), D("0.2"))]


# ---- hostile X: thousands of mutations of the document's X, only counted errors ------------

TAGS = [279, 269, 278, 55, 65, 270, 271, 58, 268, 262, 43, 10]
VALUES = ["", "0", "1", "2", "3", "-1", "0.0", "1e5", "NaN", "Infinity", "9" * 60, "120", "0.2", "LTCUSD", "x\x7f",
          "²", "247697979505377327", "247697979505377328", " 1", "1.2.3"]


def mutate(rng: random.Random, fields: list[tuple[int, str]]) -> list[tuple[int, str]]:
    fields = list(fields)
    for _ in range(rng.randint(1, 4)):
        roll = rng.random()
        at = rng.randrange(len(fields))
        if roll < 0.25 and len(fields) > 1:
            del fields[at]
        elif roll < 0.5:
            fields.insert(at, (rng.choice(TAGS), rng.choice(VALUES)))
        elif roll < 0.75:
            fields[at] = (fields[at][0], rng.choice(VALUES))
        else:
            other = rng.randrange(len(fields))
            fields[at], fields[other] = fields[other], fields[at]
    return fields


def aggregate(md: MdFeed, symbol: str) -> tuple[list, list]:
    sums: dict[Side, dict[Decimal, Decimal]] = {Side.BUY: defaultdict(Decimal), Side.SELL: defaultdict(Decimal)}
    for side, price, qty in md.book.book(symbol).orders.values():
        sums[side][price] += qty
    return sorted(sums[Side.BUY].items(), reverse=True), sorted(sums[Side.SELL].items())


def test_hostile_x_groups_give_only_counted_errors() -> None:
    """3,000 mutated X (groups deleted, inserted, reordered, values replaced) through the feed: it
    never raises; every message is either applied (the published book then equals the L3 orders'
    aggregation) or refused and counted; a resync restarts the books as a logon would."""
    rng = random.Random(23)
    first, second = document_x()
    bodies = [[(t, v) for t, v in m.fields if t not in (8, 9, 10, 35)] for m in (first, second)]
    md = feed()
    md.subscribe(["LTCUSD"], T0)
    engine = Book("midchains", "LTCUSD")
    now = T0
    applied = refused = 0
    for _ in range(3000):
        message = FixMessage(((8, "FIX.4.2"), (9, "1"), (35, "X"), *mutate(rng, rng.choice(bodies)), (10, "000")))
        now += MS
        before = len(md.refused)
        for event in md.on_message(message, now) + md.tick(now + SETTLE):
            if isinstance(event, BookUpdate):
                engine.apply(event)
        if len(md.refused) > before:
            refused += 1
        else:
            applied += 1
        if md.resync_reason is not None:
            md.start()
            md.logged_on(now)
            engine = Book("midchains", "LTCUSD")
        elif "LTCUSD" in md.whole:
            assert (engine.bids, engine.asks) == aggregate(md, "LTCUSD")
    counted = sum(n for key, n in md.counters.items() if key.startswith("refused_"))
    assert counted == refused > 300 and applied > 300
