"""The venue ledger's shortcuts write what the long way wrote (adapters/sim/ledger.py,
adapters/sim/venue.py): the ``unflushed`` flag updated in place instead of re-inserted, and an
order's row built from a member -> text table instead of each enum's ``.value``. Each test puts
the shortcut next to the straightforward code on random inputs and compares what is on disk."""

from __future__ import annotations

import sqlite3
import tempfile
from decimal import Decimal
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from support.paper import START, instruments

from adapters.sim.ledger import UNFLUSHED, VenueLedger
from adapters.sim.market import MarketOptions
from adapters.sim.venue import SimVenue
from engine.clock import SimClock
from engine.model import Phase, SessionState, Side, TimeInForce

D = Decimal


class _Row:
    """An order record as the ledger takes it (``client_id`` and ``row()``)."""

    def __init__(self, client_id: str, status: str) -> None:
        self.client_id = client_id
        self.status = status

    def row(self) -> tuple:
        return (self.client_id, "MEBL", "buy", "1", "187.40", "100", "0", self.status, "day", "limit", 0, "2026-03-02")


def _meta(db: sqlite3.Connection) -> list[tuple[str, str]]:
    return list(db.execute("SELECT key, value FROM meta ORDER BY key"))


# a step: ("defer", client id, status), ("flush",), ("meta", key, value)
_STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("defer"), st.sampled_from(["a", "b", "c"]), st.sampled_from(["new", "cancelled"])),
        st.tuples(st.just("flush")),
        st.tuples(st.just("meta"), st.sampled_from([UNFLUSHED, "order_ids_reserved", "close:MEBL"]),
                  st.sampled_from(["0", "1", "4096"])),
    ),
    max_size=12,
)


@settings(max_examples=60, deadline=None)
@given(_STEPS)
def test_the_unflushed_flag_updated_in_place_leaves_the_meta_rows_the_replace_left(steps):
    with tempfile.TemporaryDirectory() as folder:
        ledger = VenueLedger(Path(folder) / "venue.sqlite")
        reference = sqlite3.connect(":memory:", isolation_level=None)
        reference.executescript("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);")
        waiting: set[str] = set()
        for step in steps:
            if step[0] == "defer":
                if not waiting:
                    reference.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (UNFLUSHED, "1"))
                waiting.add(step[1])
                ledger.defer([_Row(step[1], step[2])])
            elif step[0] == "flush":
                if waiting:
                    reference.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (UNFLUSHED, "0"))
                waiting.clear()
                ledger.flush()
            else:
                reference.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (step[1], step[2]))
                ledger.set_meta(step[1], step[2])
            with sqlite3.connect(ledger.path) as reader:  # what a crash now would leave
                assert _meta(reader) == _meta(reference)
        ledger.close()


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(list(Side)), st.sampled_from([TimeInForce.DAY, TimeInForce.GTC]),
                          st.sampled_from(["keep", "amend", "cancel"])), min_size=1, max_size=6))
def test_an_orders_row_carries_each_enums_value(orders):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "venue.sqlite"
        clock = SimClock(START)
        venue = SimVenue("PSX", instruments(["MEBL"]), clock, market=MarketOptions(enabled=False))
        venue.set_state_path(path)
        venue.start()
        venue.on_session(SessionState(phase=Phase.OPEN))
        for i, (side, tif, then) in enumerate(orders):
            price = D("180.00") if side is Side.BUY else D("195.00")
            venue.place(f"s{i}", "MEBL", side, D(10), price, tif=tif)
            if then == "amend":
                venue.amend(f"s{i}", price + D("0.01"), None)
            elif then == "cancel":
                venue.cancel(f"s{i}")
        while clock.advance(clock.now_ns() + 1_000_000_000):
            pass
        venue.stop()
        with sqlite3.connect(path) as db:
            rows = {r[0]: r[1:] for r in db.execute("SELECT client_id, side, status, tif FROM orders")}
        for i, (side, tif, _) in enumerate(orders):
            view = venue.order(f"s{i}")
            assert view is not None
            assert rows[f"s{i}"] == (side.value, view.status.value, tif.value)
