"""The order context: the one door to the market, with the structural pre-trade checks.

Every test drives a real engine: real loaders, the real paper venue on a simulated clock.
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest
from support import open_session, settle

D = Decimal

RECORDER = """\
from engine import hookimpl

updates = []

@hookimpl
def on_order_update(ctx, order):
    updates.append((order.client_id, order.status.value, order.reject_code))
"""


@pytest.fixture
def engine(build_engine):
    engine = build_engine({"s": RECORDER})
    open_session(engine)
    return engine


def ctx_of(engine, name="s"):
    return engine.runtime.runners[name].ctx


def updates_of(engine, name="s"):
    return engine.runtime.runners[name].loaded.module.updates


def test_submit_returns_pending_new_then_the_venue_acks(engine):
    ctx = ctx_of(engine)
    order = ctx.submit("MEBL", "buy", 100, "187.00")
    assert order.status == "pending_new"
    assert ctx.open_orders() == [order]
    settle(engine)
    assert order.status == "new"
    assert order.venue_order_id
    assert updates_of(engine) == [(order.client_id, "new", None)]


@pytest.mark.parametrize(
    ("args", "kwargs", "code"),
    [
        (("MEBX", "buy", 100, "187.00"), {}, 2001),  # unknown symbol
        (("OGDC", "buy", 15, "109.00"), {}, 2002),  # lot is 10
        (("MEBL", "buy", 0, "187.00"), {}, 2002),  # not positive
        (("MEBL", "buy", 100, "187.005"), {}, 7001),  # off the tick grid
        (("MEBL", "buy", 100, None), {}, 7002),  # limit without price
        (("MEBL", "buy", 100, "187.00"), {"type": "market"}, 7002),  # market with a price
        (("MEBL", "buy", 100, "187.00"), {"type": "stop"}, 2007),  # unsupported type
        (("MEBL", "buy", 100, "187.00"), {"tif": "gtd"}, 2007),  # unsupported tif
        (("MEBL", "buy", 100, None), {"type": "market", "post_only": True}, 2007),
        (("MEBL", "short", 100, "187.00"), {}, 7005),  # bad side
        (("MEBL", "buy", 100.0, "187.00"), {}, 7005),  # binary float quantity
        (("MEBL", "buy", 100, 187.5), {}, 7005),  # binary float price
        (("MEBL", "buy", 100, "187.00"), {"client_id": "has space"}, 7005),
    ],
)
def test_structural_checks_refuse_with_code_and_nothing_is_sent(engine, args, kwargs, code):
    ctx = ctx_of(engine)
    order = ctx.submit(*args, **kwargs)
    assert order.status == "rejected"
    assert order.reject_code == code
    assert order.reject_reason  # a sentence, not empty
    assert ctx.open_orders() == []
    settle(engine)
    paper = engine.adapters["paper"]
    assert all(not paper.matching_engine(symbol).resting_orders() for symbol in ("MEBL", "OGDC"))
    assert engine.runtime.rejects_by_code[code] == 1


def test_reused_client_id_is_refused_with_3002(engine):
    ctx = ctx_of(engine)
    first = ctx.submit("MEBL", "buy", 100, "187.00", client_id="my-id-1")
    second = ctx.submit("MEBL", "buy", 100, "187.00", client_id="my-id-1")
    assert first.status == "pending_new"
    assert (second.status, second.reject_code) == ("rejected", 3002)


def test_local_reject_fires_on_order_update_after_the_hook_returns(build_engine):
    source = RECORDER + """
@hookimpl
def on_session_change(ctx, old, new):
    if new == "open":
        order = ctx.submit("MEBL", "buy", 7, "187.001")
        updates.append(("during hook", order.status.value, len(updates)))
"""
    engine = build_engine({"s": source})
    open_session(engine)
    updates = updates_of(engine)
    assert updates[0] == ("during hook", "rejected", 0)  # the hook saw the reject on the handle first
    assert updates[1][1:] == ("rejected", 7001)


def test_cancel_moves_to_pending_cancel_then_cancelled(engine):
    ctx = ctx_of(engine)
    order = ctx.submit("MEBL", "buy", 100, "187.00")
    settle(engine)
    assert ctx.cancel(order) is True
    assert order.status == "pending_cancel"
    assert ctx.cancel(order) is False  # already pending: nothing more is sent
    settle(engine)
    assert order.status == "cancelled"
    assert ctx.open_orders() == []
    assert ctx.cancel(order) is False


def test_cancel_before_the_ack_is_allowed(engine):
    ctx = ctx_of(engine)
    order = ctx.submit("MEBL", "buy", 100, "187.00")
    assert ctx.cancel(order) is True
    settle(engine)
    assert order.status == "cancelled"


def test_amend_changes_price_in_place_after_the_venue_confirms(engine):
    ctx = ctx_of(engine)
    order = ctx.submit("MEBL", "buy", 100, "187.00")
    settle(engine)
    assert ctx.amend(order, price="187.10") is True
    assert order.status == "pending_replace" and order.price == D("187.00")
    settle(engine)
    assert (order.status, order.price) == ("new", D("187.10"))
    book = engine.runtime.book("paper", "MEBL")
    assert book.best_bid == D("187.10")


@pytest.mark.parametrize(
    ("amend", "code"),
    [({"price": "187.003"}, 7001), ({"qty": 15}, None), ({"price": 187.1}, 7005), ({}, 7005)],
)
def test_refused_amend_leaves_the_order_untouched(engine, amend, code):
    ctx = ctx_of(engine)
    order = ctx.submit("OGDC", "buy", 10, "109.00")
    settle(engine)
    assert ctx.amend(order, **amend) is False
    assert (order.status, order.price, order.qty) == ("new", D("109.00"), D(10))
    expected = code if code is not None else 2002
    assert engine.runtime.rejects_by_code[expected] == 1


def test_cancel_all_cancels_only_this_strategy_and_symbol(build_engine):
    engine = build_engine({"a": RECORDER, "b": RECORDER})
    open_session(engine)
    a, b = ctx_of(engine, "a"), ctx_of(engine, "b")
    a.submit("MEBL", "buy", 100, "187.00")
    a.submit("OGDC", "buy", 10, "109.00")
    b.submit("MEBL", "buy", 100, "186.00")
    settle(engine)
    assert a.cancel_all("MEBL") == 1
    settle(engine)
    assert [o.symbol for o in a.open_orders()] == ["OGDC"]
    assert len(b.open_orders()) == 1


def test_context_exposes_no_adapter_credentials_or_journal(engine):
    ctx = ctx_of(engine)
    public = {name for name in dir(ctx) if not name.startswith("_")}
    assert public == {
        "amend", "avg_cost", "book", "cancel", "cancel_all", "instrument", "instruments", "log", "name",
        "now", "now_ns", "open_orders", "params", "position", "realized_pnl", "session", "submit",
        "buying_power", "sellable", "state", "trading_state", "venue_status", "mmp_frozen", "reset_mmp", "capabilities",
        "account_kind", "currency",
    }
    with pytest.raises(AttributeError):
        ctx.adapter  # noqa: B018
    # params are read-only: neither the object nor one of its values can be replaced or removed
    params = ctx.params
    with pytest.raises(AttributeError, match="read-only"):
        ctx.params = {"size": 10**9}
    with pytest.raises(AttributeError, match="read-only"):
        del ctx.params
    assert ctx.params is params
    # the venue's capabilities are data, read-only: a strategy cannot talk the gate into what the venue lacks
    assert ctx.capabilities.amend is True and ctx.capabilities.post_only == "reject"
    with pytest.raises(dataclasses.FrozenInstanceError):
        ctx.capabilities.amend = False  # type: ignore[misc]


def test_cannot_cancel_another_strategys_order(build_engine):
    engine = build_engine({"a": RECORDER, "b": RECORDER})
    open_session(engine)
    order = ctx_of(engine, "a").submit("MEBL", "buy", 100, "187.00")
    settle(engine)
    assert ctx_of(engine, "b").cancel(order) is False
    settle(engine)
    assert order.status == "new"


def test_position_book_and_session_views(engine):
    ctx = ctx_of(engine)
    assert ctx.position("MEBL") == 0
    assert ctx.session == "open"
    assert ctx.book("MEBL") is not None and ctx.book("KEL") is None
    assert ctx.instrument("OGDC").lot_size == D(10)
    assert ctx.now().tzinfo is not None


class Qty(int):
    """An int subclass a strategy might pass (numpy-free stand-in for a counter type)."""


class Text(str):
    pass


class Money(Decimal):
    pass


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (100, "100"), (Qty(100), "100"), ("187.40", "187.40"), (Text("187.40"), "187.40"),
        (Decimal("187.40"), "187.40"), (Money("187.40"), "187.40"), ("1E+2", "1E+2"),
    ],
)
def test_order_arguments_become_exact_decimals_whatever_their_type(value, expected):
    """The context's argument parser looks at the usual types (int, str, Decimal) by identity
    first; their subclasses take the isinstance path and end the same."""
    from engine.context import _exact

    got = _exact(value, "price")
    assert type(got) in (Decimal, Money) and str(got) == expected


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (True, "price must be a number, got True"),  # a bool is an int, and still refused
        (False, "price must be a number, got False"),
        (187.5, "price 187.5 is a binary float; pass an int, a Decimal or a string such as '187.5'"),
        ("abc", "price 'abc' is not a number"),
        ("NaN", "price must be finite, got 'NaN'"),
        (Text("inf"), "price must be finite, got 'inf'"),
        (Decimal("Infinity"), "price must be finite, got Infinity"),
        ([187], "price must be an int, Decimal or str, got list"),
    ],
)
def test_order_arguments_that_are_not_exact_numbers_are_refused_with_their_reason(value, reason):
    from engine.context import ArgumentRejection, _exact

    with pytest.raises(ArgumentRejection) as refused:
        _exact(value, "price")
    assert refused.value.code == 7005 and refused.value.reason == reason
