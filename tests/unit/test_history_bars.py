"""The bar-to-book mapping (engine/history/bars.py): a daily bar becomes the day's session changes,
its reference and closing prices, and a walk open -> low/high -> close of book snapshots with a
trade print at each touch, placed in the open phase, the same every time."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from engine.history.bars import (
    BookShape,
    bar_events,
    bar_path,
    book_snapshot,
    print_events,
    schedule_for,
    session_events,
)
from engine.history.csvread import Bar, Print
from engine.model import BookUpdate, InstrumentStatus, Phase, SessionState, Side, Trade

D = Decimal
KARACHI = ZoneInfo("Asia/Karachi")
MONDAY = dt.date(2026, 11, 23)


def at(hh: int, mm: int, day: dt.date = MONDAY) -> int:
    return int(dt.datetime(day.year, day.month, day.day, hh, mm, tzinfo=KARACHI).timestamp()) * 1_000_000_000


def bar(o: str, h: str, lo: str, c: str, volume: int = 1000, day: dt.date = MONDAY) -> Bar:
    return Bar(2, day, "OGDC", D(o), D(h), D(lo), D(c), D(volume), None)


def test_the_path_visits_the_nearer_extreme_first() -> None:
    assert bar_path(bar("100.00", "103.00", "99.00", "102.00")) == [D("100.00"), D("99.00"), D("103.00"), D("102.00")]
    assert bar_path(bar("100.00", "103.00", "99.00", "99.50")) == [D("100.00"), D("103.00"), D("99.00"), D("99.50")]


def test_a_bar_becomes_books_and_trades_in_the_open_phase() -> None:
    events = bar_events("psx", bar("100.00", "103.00", "99.00", "102.00", volume=1003), D("98.00"),
                        schedule_for(), BookShape())
    status_in, *middle, status_out = events
    assert isinstance(status_in.event, InstrumentStatus) and status_in.event.reference_price == D("98.00")
    assert status_in.ts == at(9, 15)  # the pre-open start: the band is known before orders arrive
    assert isinstance(status_out.event, InstrumentStatus) and status_out.event.closing_price == D("102.00")
    assert status_out.ts == at(15, 30)
    books = [e for e in middle if isinstance(e.event, BookUpdate)]
    trades = [e.event for e in middle if isinstance(e.event, Trade)]
    assert [b.ts for b in books] == [at(9, 30), at(11, 29, ) + 40 * 10**9, at(13, 29) + 20 * 10**9, at(15, 29)]
    assert [(t.price, t.qty, t.aggressor) for t in trades] == [
        (D("100.00"), D(250), None), (D("99.00"), D(250), Side.SELL), (D("103.00"), D(250), Side.BUY),
        (D("102.00"), D(253), Side.SELL)]  # a quarter each, the remainder with the close
    assert sum(t.qty for t in trades) == D(1003)
    assert [b.event.seq for b in books] == [1, 2, 3, 4]
    first = books[0].event
    assert first.snapshot
    assert first.changes == (
        (Side.BUY, D("99.99"), D(83)), (Side.SELL, D("100.01"), D(83)),
        (Side.BUY, D("99.98"), D(83)), (Side.SELL, D("100.02"), D(83)),
        (Side.BUY, D("99.97"), D(83)), (Side.SELL, D("100.03"), D(83)))  # 1003 / (4 x 3) whole shares


def test_steps_walk_between_touches_on_the_tick() -> None:
    events = bar_events("psx", bar("100.00", "100.10", "99.90", "100.00"), None, schedule_for(),
                        BookShape(steps=1, levels=1, level_qty=D(5)))
    assert not any(isinstance(e.event, InstrumentStatus) and e.event.reference_price for e in events)
    mids = [e.event.changes[0][1] + D("0.01") for e in events if isinstance(e.event, BookUpdate)]
    assert mids == [D("100.00"), D("99.95"), D("99.90"), D("100.00"), D("100.10"), D("100.05"), D("100.00")]
    times = [e.ts for e in events if isinstance(e.event, BookUpdate)]
    assert times == sorted(times) and times[0] == at(9, 30) and times[-1] == at(15, 29)
    assert all(t % 1_000_000 == 0 for t in times)  # whole milliseconds


def test_a_quiet_day_has_books_and_no_zero_trades() -> None:
    events = bar_events("psx", bar("50.00", "50.00", "50.00", "50.00", volume=0), None, schedule_for(), BookShape())
    assert not [e for e in events if isinstance(e.event, Trade)]
    assert all(c[2] == 1 for e in events if isinstance(e.event, BookUpdate) for c in e.event.changes)


def test_the_book_leaves_out_bids_that_would_not_be_positive() -> None:
    book = book_snapshot("psx", "PENNY", 1, 1, D("0.02"), BookShape(levels=3), D(10))
    assert [c for c in book.changes if c[0] is Side.BUY] == [(Side.BUY, D("0.01"), D(10))]


def test_a_day_without_a_session_is_refused() -> None:
    with pytest.raises(ValueError, match=r"2026-11-22 \(Sunday\) is not a trading day"):
        bar_events("psx", bar("1.00", "1.00", "1.00", "1.00", day=dt.date(2026, 11, 22)), None, schedule_for(),
                   BookShape())


def test_session_events_follow_the_profile_and_close() -> None:
    states = [(e.ts, e.event) for e in session_events(schedule_for(), MONDAY)]
    assert all(isinstance(s, SessionState) for _, s in states)
    assert [(t, s.phase) for t, s in states] == [
        (at(9, 15), Phase.PRE_OPEN), (at(9, 30), Phase.OPEN), (at(15, 30), Phase.POST_CLOSE),
        (at(15, 35), Phase.CLOSED)]
    assert states[1][1].matches and states[1][1].trading_day == "2026-11-23"
    assert states[2][1].flags["closing_price_only"] is True
    assert not states[3][1].accepts_new


def test_a_print_becomes_a_book_centred_on_it_then_the_print() -> None:
    prints = [Print(3, at(10, 1), "OGDC", D("109.30"), D(40), "sell", "b"),
              Print(2, at(10, 0), "OGDC", D("109.20"), D(60), None, "a")]
    book_a, trade_a, book_b, trade_b = print_events("psx", prints, BookShape(levels=1))
    assert isinstance(book_a.event, BookUpdate) and book_a.event.changes == (
        (Side.BUY, D("109.19"), D(60)), (Side.SELL, D("109.21"), D(60)))
    assert isinstance(trade_a.event, Trade) and trade_a.event.trade_id == "a" and trade_a.event.aggressor is None
    assert isinstance(trade_b.event, Trade) and trade_b.event.aggressor is Side.SELL
    assert (book_a.event.seq, book_b.event.seq) == (1, 2)
