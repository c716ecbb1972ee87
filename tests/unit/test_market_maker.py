"""The example market maker adapts to its venue through ``ctx.capabilities``: post-only quotes
moved by amend where the venue has both (paper, Pulse), plain limit quotes moved by cancel and
replace where it has neither (Optimus, OPT-7), and never two working quotes on one side.

(The paper account holds no shares here, so only the bid side quotes: no short selling.)
Real engine, real strategy file, real paper matching engine and synthetic market; the venue
without amend is the paper venue declaring fewer capabilities, so the gate refuses what it lacks.
"""

from __future__ import annotations

import dataclasses
from collections import Counter

import pytest
from support import REPO, open_session, settle

from adapters.paper.adapter import PaperAdapter
from engine.model import Order

MARKET_MAKER = (REPO / "strategies" / "market_maker.py").read_text()


def _recording(capabilities):
    class RecordingPaper(PaperAdapter):
        """The paper venue, recording what the engine asks of it."""

        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self.sent: list[Order] = []
            self.calls: Counter[str] = Counter()
            self.most_working_per_side = 0

        def submit(self, order: Order) -> None:
            self.calls["submit"] += 1
            self.sent.append(order)
            working = [o for o in self.sent if o.is_open and (o.symbol, o.side) == (order.symbol, order.side)]
            self.most_working_per_side = max(self.most_working_per_side, len(working))
            super().submit(order)

        def cancel(self, order: Order) -> None:
            self.calls["cancel"] += 1
            super().cancel(order)

        def amend(self, order, price, qty) -> None:
            self.calls["amend"] += 1
            super().amend(order, price, qty)

    RecordingPaper.capabilities = capabilities
    return RecordingPaper


def _quote_for_ten_minutes(build_engine, monkeypatch, capabilities):
    monkeypatch.setattr("engine.app.get_adapter", lambda name: _recording(capabilities))
    engine = build_engine({"mm": MARKET_MAKER}, market=True, symbols=("MEBL",))
    open_session(engine)
    settle(engine, 600)
    return engine, engine.adapters["paper"]


def test_on_a_venue_with_amend_and_post_only_quotes_are_post_only_and_amended(build_engine, monkeypatch):
    engine, venue = _quote_for_ten_minutes(build_engine, monkeypatch, PaperAdapter.capabilities)
    assert venue.calls["submit"] >= 1 and venue.calls["amend"] >= 10
    assert venue.calls["cancel"] == 0  # moved in place, never pulled while the session is open
    assert all(order.post_only for order in venue.sent)
    assert not engine.runtime.rejects_by_code


def test_on_a_venue_without_amend_or_post_only_quotes_are_cancelled_and_replaced(build_engine, monkeypatch):
    optimus_like = dataclasses.replace(PaperAdapter.capabilities, amend=False, post_only="none")
    engine, venue = _quote_for_ten_minutes(build_engine, monkeypatch, optimus_like)
    assert venue.calls["amend"] == 0
    assert venue.calls["cancel"] >= 10 and venue.calls["submit"] > venue.calls["cancel"]
    assert not any(order.post_only for order in venue.sent)
    assert venue.most_working_per_side == 1  # the new quote goes out only once the old one is gone
    assert not engine.runtime.rejects_by_code  # nothing the venue lacks was asked for (no 2007)


@pytest.mark.parametrize("post_only", ["reject", "reprice"])
def test_a_venue_with_post_only_but_no_amend_gets_post_only_quotes_and_cancel_replace(
    build_engine, monkeypatch, post_only
):
    caps = dataclasses.replace(PaperAdapter.capabilities, amend=False, post_only=post_only)
    _engine, venue = _quote_for_ten_minutes(build_engine, monkeypatch, caps)
    assert venue.calls["amend"] == 0 and venue.calls["cancel"] >= 1
    assert all(order.post_only for order in venue.sent)
