"""The kit's order tracker: each state once, each fill once, final is final, never beyond the order."""

from __future__ import annotations

from decimal import Decimal as D

from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.kit.orders import MUTED, OrderTracker, RecentIds, TrackedOrder
from engine.model import TERMINAL_STATUSES, Fill, OrderStatus, OrderUpdate, Side

S = OrderStatus


class Sink:
    def __init__(self) -> None:
        self.updates: list[OrderUpdate] = []
        self.fills: list[Fill] = []
        self.events: list[object] = []

    def on_order_update(self, update: OrderUpdate) -> None:
        self.updates.append(update)
        self.events.append(update)

    def on_fill(self, fill: Fill) -> None:
        self.fills.append(fill)
        self.events.append(fill)


def make(qty: str = "10") -> tuple[OrderTracker[TrackedOrder], TrackedOrder, Sink]:
    sink = Sink()
    tracker: OrderTracker[TrackedOrder] = OrderTracker("v", sink, lambda: 7, defer=lambda fn: fn())
    rec = tracker.add(TrackedOrder("c1", "SYM", Side.BUY, D(qty), D(100)))
    return tracker, rec, sink


def fill(exec_id: str, qty: str) -> Fill:
    return Fill("v", "SYM", "c1", "V1", exec_id, Side.BUY, D(100), D(qty), 7)


def test_new_is_told_once_and_before_the_first_fill() -> None:
    tracker, rec, sink = make()
    tracker.fill(rec, fill("e1", "4"))
    tracker.ack(rec)
    assert [type(e).__name__ for e in sink.events] == ["OrderUpdate", "Fill"]
    assert sink.updates[0].status is S.NEW and rec.status is S.PARTIALLY_FILLED


def test_a_repeated_fill_is_dropped_and_counted() -> None:
    tracker, rec, sink = make()
    assert tracker.fill(rec, fill("e1", "4")) and not tracker.fill(rec, fill("e1", "4"))
    assert len(sink.fills) == 1 and rec.cum_qty == D(4) and tracker.counts["duplicate_fills"] == 1


def test_final_is_final_and_nothing_but_a_late_fill_follows() -> None:
    tracker, rec, sink = make()
    tracker.ack(rec)
    assert tracker.finish(rec, S.CANCELLED, reason="on request")
    assert not tracker.finish(rec, S.REJECTED, 9001, "late")
    assert not tracker.ack(rec)
    assert tracker.fill(rec, fill("e1", "2"))  # a late fill is money moved: booked once
    assert [u.status for u in sink.updates] == [S.NEW, S.CANCELLED]
    assert rec.final is S.CANCELLED and rec.cum_qty == D(2) and tracker.counts["late_fills"] == 1


def test_filled_is_reached_by_fills_without_an_update_of_its_own() -> None:
    tracker, rec, sink = make()
    tracker.fill(rec, fill("e1", "10"))
    assert rec.final is S.FILLED and [u.status for u in sink.updates] == [S.NEW]
    assert tracker.open_records() == []


def test_a_fill_beyond_the_order_is_counted_delivered_and_not_booked(caplog) -> None:
    tracker, rec, sink = make()
    tracker.fill(rec, fill("e1", "8"))
    assert tracker.fill(rec, fill("e2", "5"))
    assert rec.cum_qty == D(8) and len(sink.fills) == 2 and tracker.counts["overfills"] == 1
    assert "e2" in caplog.text and "bad input" in caplog.text


def test_a_final_state_waits_for_the_fills_the_venue_counts() -> None:
    tracker, rec, sink = make()
    tracker.ack(rec)
    assert not tracker.finish_after_fills(rec, S.CANCELLED, D(3), reason="cancelled")
    assert [u.status for u in sink.updates] == [S.NEW]
    tracker.fill(rec, fill("e1", "3"))
    assert [type(e).__name__ for e in sink.events] == ["OrderUpdate", "Fill", "OrderUpdate"]
    assert sink.updates[-1].status is S.CANCELLED


def test_a_held_final_state_is_released_by_force_when_its_fills_never_come() -> None:
    tracker, rec, _ = make()
    tracker.finish_after_fills(rec, S.CANCELLED, D(3))
    assert tracker.release_held(rec, force=True) and rec.final is S.CANCELLED


def test_an_answer_repeats_the_current_state_and_never_moves_it() -> None:
    tracker, rec, sink = make()
    tracker.ack(rec)
    tracker.fill(rec, fill("e1", "2"))
    tracker.answer(rec, 2007, "cancel refused")
    assert sink.updates[-1].status is S.PARTIALLY_FILLED and sink.updates[-1].reject_code == 2007
    assert rec.final is None


def test_unknown_until_the_venue_speaks_again() -> None:
    tracker, rec, _ = make()
    assert tracker.mark_unknown(rec, "answer lost") and not tracker.mark_unknown(rec, "again")
    assert tracker.unknown() == [rec] and tracker.counts["orders_unknown"] == 1
    tracker.mark_known(rec)
    assert tracker.unknown() == []


def test_the_venue_id_binds_once_and_finds_the_order() -> None:
    tracker, rec, _ = make()
    assert tracker.find("V1", "c1") is rec
    tracker.bind(rec, "V2")
    assert rec.venue_order_id == "V1" and tracker.by_venue_id("V1") is rec
    tracker.release(rec)
    assert tracker.get("c1") is None and tracker.by_venue_id("V1") is None


def test_muted_delivery_tracks_without_telling() -> None:
    tracker, rec, sink = make()
    with tracker.delivering_to(MUTED):
        tracker.ack(rec)
        tracker.fill(rec, fill("e1", "1"))
    assert sink.events == [] and rec.acked and rec.cum_qty == D(1)


def test_recent_ids_memory_is_bounded() -> None:
    ids = RecentIds(3)
    for item in "abcd":
        assert ids.add(item)
    assert len(ids) == 3 and "a" not in ids and not ids.add("d")


# ---- property: any interleaving and duplication of the venue's words -----------------------
STATUSES = [S.CANCELLED, S.REJECTED, S.EXPIRED, S.FILLED]
step = st.one_of(
    st.tuples(st.just("ack")),
    st.tuples(st.just("fill"), st.integers(0, 5), st.integers(1, 4)),
    st.tuples(st.just("finish"), st.sampled_from(STATUSES)),
    st.tuples(st.just("after_fills"), st.sampled_from(STATUSES), st.integers(0, 12)),
    st.tuples(st.just("release"), st.booleans()),
    st.tuples(st.just("answer")),
    st.tuples(st.just("unknown")),
    st.tuples(st.just("note_fill"), st.integers(0, 5), st.integers(1, 4)),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(step, max_size=40), st.integers(1, 12))
def test_any_interleaving_tells_each_state_once_and_books_each_fill_once(steps, qty) -> None:
    tracker, rec, sink = make(str(qty))
    finals_seen: list[OrderStatus] = []
    for op in steps:
        name = op[0]
        if name == "ack":
            tracker.ack(rec)
        elif name == "fill":
            tracker.fill(rec, fill(f"e{op[1]}", str(op[2])))
        elif name == "note_fill":
            tracker.note_fill(rec, f"e{op[1]}", D(op[2]))
        elif name == "finish":
            tracker.finish(rec, op[1], reason="venue")
        elif name == "after_fills":
            tracker.finish_after_fills(rec, op[1], D(op[2]))
        elif name == "release":
            tracker.release_held(rec, force=op[1])
        elif name == "answer":
            tracker.answer(rec, 2007, "refused")
        elif name == "unknown":
            tracker.mark_unknown(rec, "lost")
        if rec.final is not None:
            finals_seen.append(rec.final)
    assert len(set(finals_seen)) <= 1  # final is final
    states = [u.status for u in sink.updates if u.reject_code is None]
    assert states.count(S.NEW) <= 1
    finals = [s for s in states if s in TERMINAL_STATUSES]
    assert len(finals) <= 1 and S.FILLED not in finals
    if finals:  # nothing but fills (and answers to requests) after the final state
        after = sink.updates[[u.status for u in sink.updates].index(finals[0]) + 1:]
        assert all(u.reject_code is not None for u in after)
    if S.NEW in states and sink.fills:  # NEW before any fill
        assert sink.events.index(next(u for u in sink.updates if u.status is S.NEW)) < sink.events.index(sink.fills[0])
    ids = [f.exec_id for f in sink.fills]
    assert len(ids) == len(set(ids))  # every fill delivered once
    assert rec.cum_qty <= rec.qty  # never beyond the order
