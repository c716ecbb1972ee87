"""When the MidChains WebSocket L3 book is whole and when to resubscribe (MID-7), as the pure rule
adapters/midchains/ws_book.py states it: no sequence number, no snapshot-end marker, so quiet
after the burst means whole; a lost remove (unknown id, a lasting cross) means resubscribe, at
most once per interval."""

from __future__ import annotations

from adapters.midchains.ws_book import BookPhase, BookSync, Decision

MS = 1_000_000
T0 = 1_700_000_000_000 * MS


def whole(sync: BookSync) -> BookSync:
    sync.subscribed(T0)
    sync.on_book(T0 + 10 * MS)
    assert sync.poll(T0 + 260 * MS).phase is BookPhase.WHOLE
    return sync


def test_not_whole_before_it_is_subscribed() -> None:
    assert BookSync().poll(T0) == Decision(BookPhase.STALE, "not subscribed")


def test_the_snapshot_burst_is_whole_after_250_ms_of_quiet() -> None:
    sync = BookSync()
    sync.subscribed(T0)
    for n in range(5):  # the burst: one message every 50 ms
        assert sync.on_book(T0 + n * 50 * MS) == Decision(BookPhase.BUILDING, None, T0 + (n * 50 + 250) * MS)
    assert sync.poll(T0 + 449 * MS).phase is BookPhase.BUILDING
    assert sync.poll(T0 + 450 * MS) == Decision(BookPhase.WHOLE)


def test_an_empty_book_is_whole_after_two_seconds_without_a_message() -> None:
    sync = BookSync()
    sync.subscribed(T0)
    assert sync.poll(T0 + 1999 * MS) == Decision(BookPhase.BUILDING, None, T0 + 2000 * MS)
    assert sync.poll(T0 + 2000 * MS).phase is BookPhase.WHOLE


def test_a_remove_of_an_unknown_id_while_building_is_the_snapshot_race_and_tolerated() -> None:
    sync = BookSync()
    sync.subscribed(T0)
    assert sync.on_book(T0 + MS, unknown_removes=1).phase is BookPhase.BUILDING


def test_a_remove_of_an_unknown_id_in_a_whole_book_means_a_lost_add() -> None:
    sync = whole(BookSync(min_interval_ns=0))
    decision = sync.on_book(T0 + 300 * MS, unknown_removes=2)
    assert decision == Decision(BookPhase.STALE, "remove of 2 order id(s) the book does not hold")
    sync.subscribed(T0 + 301 * MS)
    assert sync.phase is BookPhase.BUILDING and sync.resubscribes == 1


def test_a_short_cross_is_waited_out_a_lasting_one_resubscribes() -> None:
    sync = whole(BookSync(min_interval_ns=0))
    assert sync.on_book(T0 + 300 * MS, crossed=True) == Decision(BookPhase.WHOLE, None, T0 + 1300 * MS)
    assert sync.on_book(T0 + 400 * MS, crossed=False) == Decision(BookPhase.WHOLE)  # the R came
    sync.on_book(T0 + 500 * MS, crossed=True)
    assert sync.poll(T0 + 1499 * MS, crossed=True).phase is BookPhase.WHOLE
    assert sync.poll(T0 + 1500 * MS, crossed=True) == Decision(BookPhase.STALE, "crossed for 1000 ms")


def test_resubscribes_are_at_most_one_per_interval() -> None:
    sync = whole(BookSync())  # 5 s
    decision = sync.on_book(T0 + 300 * MS, unknown_removes=1)
    assert decision == Decision(BookPhase.STALE, None, T0 + 5000 * MS)  # known wrong, not yet due
    assert sync.on_book(T0 + 400 * MS).phase is BookPhase.STALE  # messages change nothing while stale
    assert sync.poll(T0 + 5000 * MS) == Decision(BookPhase.STALE, "remove of 1 order id(s) the book does not hold")


def test_the_adapters_own_reason_and_a_new_connection() -> None:
    sync = whole(BookSync(min_interval_ns=0))
    assert sync.lost(T0 + 300 * MS, "unreadable book message") == Decision(BookPhase.STALE, "unreadable book message")
    sync.subscribed(T0 + 400 * MS)  # every new connection subscribes again: BUILDING, nothing kept
    assert (sync.phase, sync.messages, sync.crossed_since_ns) == (BookPhase.BUILDING, 0, None)


def test_a_busy_pair_that_is_never_quiet_is_whole_after_max_build() -> None:
    """Live changes every 100 ms never leave 250 ms of quiet: with ``max_build_ns`` the book is
    whole that long after the subscribe; without it, it would build for ever."""
    sync = BookSync(max_build_ns=1000 * MS)
    never = BookSync()
    sync.subscribed(T0)
    never.subscribed(T0)
    for n in range(1, 10):
        assert sync.on_book(T0 + n * 100 * MS).phase is BookPhase.BUILDING
        never.on_book(T0 + n * 100 * MS)
    assert sync.on_book(T0 + 1000 * MS).phase is BookPhase.WHOLE
    assert never.on_book(T0 + 1000 * MS).phase is BookPhase.BUILDING
