"""What every order-entry adapter must do, each test run against every venue's harness.

Each test drives the adapter only through the engine's contract (``submit``, ``cancel``, ``amend``,
``cancel_all``, ``query_*``) and judges it only by what reaches the sink (the
:class:`~engine.venue.VenueEvents` calls) and what the queries answer. The sink applies every
update and fill by the engine's own rules (tests/support/sinks.py), so an illegal sequence or an overfill
fails the test. Where a venue cannot do a case by its declared capabilities, the test says so by
name with a skip, never silently."""

from __future__ import annotations

import itertools
from decimal import Decimal

import pytest

from conformance.harness import OrderEntryHarness
from engine.model import Order, OrderStatus, OrderType, Side, TimeInForce
from engine.rejects import REJECT_CODES, Reject
from engine.risk.gate import OrderRequest
from engine.risk.structural import SupportedOrderType

pytestmark = pytest.mark.anyio

S = OrderStatus
BUY = Side.BUY


def known_gap(venue: OrderEntryHarness, key: str, request: pytest.FixtureRequest) -> None:
    """A behaviour this adapter is known to get wrong: a strict xfail naming why."""
    reason = venue.known_gaps.get(key)
    if reason is not None:
        request.node.add_marker(pytest.mark.xfail(strict=True, reason=f"{venue.name}: {reason}"))


def skip_unless(condition: bool, venue: OrderEntryHarness, why: str) -> None:
    if not condition:
        pytest.skip(f"{venue.name}: {why}")


# ---- session ----------------------------------------------------------------------------------


async def test_connect_and_authenticate(venue: OrderEntryHarness) -> None:
    """``connect`` logs in and reports ``connected`` once; an authenticated query then answers."""
    async with venue as v:
        assert v.sink.statuses() == ["connected"]
        assert await v.adapter.query_open_orders() == []
        assert await v.adapter.query_order("never-sent") is None


async def test_subscribe_receives_a_book_snapshot(venue: OrderEntryHarness) -> None:
    """The first book of a subscribed symbol is a snapshot, and the book the engine builds from the
    snapshot and the deltas after it is the venue's own."""
    skip_unless(venue.facts.market_data is None, venue, f"no market data: {venue.facts.market_data}")
    async with venue as v:
        await v.until(lambda: v.book() is not None, "a book")
        first = next(u for u in v.sink.of("book") if u.symbol == v.symbol)
        assert first.snapshot
        await v.until(lambda: v.book_at_venue() == (v.book().bids, v.book().asks), "the venue's book")


# ---- orders -----------------------------------------------------------------------------------


async def test_submit_ack_fill(venue: OrderEntryHarness) -> None:
    """A marketable order is acknowledged (``new`` with the venue's order id) before its first fill,
    fills whole, each execution once, at or better than its limit; the queries agree."""
    async with venue as v:
        price, qty = await v.marketable(BUY)
        order = v.submit(BUY, qty, price)
        await v.until(lambda: order.status is S.FILLED, "filled")
        updates = v.sink.updates_for(order.client_id)
        assert updates[0].status is S.NEW and updates[0].venue_order_id
        first_fill = v.sink.index("fill", lambda f: f.client_id == order.client_id)
        ack = v.sink.index("update", lambda u: u.client_id == order.client_id and u.status is S.NEW)
        assert ack < first_fill
        fills = v.sink.fills_for(order.client_id)
        assert sum(f.qty for f in fills) == qty == order.cum_qty
        assert len({f.exec_id for f in fills}) == len(fills)
        assert all(f.price <= price and isinstance(f.price, Decimal) for f in fills)
        seen = await v.adapter.query_order(order.client_id)
        assert seen is not None and (seen.status, seen.cum_qty) == (S.FILLED, qty)
        queried = {f.exec_id for f in await v.adapter.query_fills(0)}
        assert {f.exec_id for f in fills} <= queried


async def test_partial_fill(venue: OrderEntryHarness) -> None:
    """An order for more than the venue has at its price fills in part and works on as
    ``partially_filled``; cancelling the rest ends it ``cancelled`` with the filled part kept."""
    async with venue as v:
        price, qty = await v.partial(BUY)
        order = v.submit(BUY, qty, price)
        await v.until(lambda: order.cum_qty > 0, "a first fill")
        first = v.sink.fills_for(order.client_id)[0]
        assert first.qty < qty
        assert order.status is S.PARTIALLY_FILLED
        seen = await v.adapter.query_order(order.client_id)
        assert seen is not None and seen.status is S.PARTIALLY_FILLED and 0 < seen.cum_qty < qty
        v.cancel(order)
        await v.until(lambda: order.is_terminal, "the rest cancelled")
        assert order.status is S.CANCELLED and 0 < order.cum_qty < qty
        assert order.cum_qty == sum(f.qty for f in v.sink.fills_for(order.client_id))
        assert order.client_id not in {o.client_id for o in await v.adapter.query_open_orders()}


async def test_cancel(venue: OrderEntryHarness) -> None:
    async with venue as v:
        order = v.submit(BUY, None, v.passive_price(BUY))
        await v.acked(order)
        assert order.status is S.NEW
        assert [o.client_id for o in await v.adapter.query_open_orders()] == [order.client_id]
        v.cancel(order)
        await v.until(lambda: order.status is S.CANCELLED, "cancelled")
        assert [u.status for u in v.sink.updates_for(order.client_id)] == [S.NEW, S.CANCELLED]
        seen = await v.adapter.query_order(order.client_id)
        assert seen is not None and seen.status is S.CANCELLED
        assert await v.adapter.query_open_orders() == []


async def test_amend_or_refused_2007_by_capability(venue: OrderEntryHarness, record_property) -> None:
    """With ``capabilities.amend`` the venue changes price and then quantity of a working order
    (acknowledged with the new values, kept by the venue); without it the engine refuses an amend
    with 2007 before sending, and an adapter asked anyway answers 2007 and leaves the order as it was."""
    async with venue as v:
        price = v.passive_price(BUY)
        order = v.submit(BUY, None, price)
        await v.acked(order)
        lower = price - 2 * v.tick
        record_property("detail", "amended in place" if v.capabilities.amend else "refused 2007 (no amend)")
        if not v.capabilities.amend:
            v.amend(order, lower)
            await v.until(lambda: order.status is S.NEW, "the refusal")
            refusal = v.sink.updates_for(order.client_id)[-1]
            assert refusal.reject_code == Reject.ORDER_TYPE_NOT_SUPPORTED
            assert order.price == price and order.pending_price is None
            seen = await v.adapter.query_order(order.client_id)
            assert seen is not None and seen.price == price and seen.status is S.NEW
            return
        v.amend(order, lower)
        await v.until(lambda: order.status is S.NEW and order.price == lower, "the price amended")
        v.amend(order, None, 3 * v.lot)
        await v.until(lambda: order.status is S.NEW and order.qty == 3 * v.lot, "the quantity amended")
        seen = await v.adapter.query_order(order.client_id)
        assert seen is not None and (seen.price, seen.qty, seen.status) == (lower, 3 * v.lot, S.NEW)
        assert any(u.price == lower for u in v.sink.updates_for(order.client_id))


async def test_mass_cancel_or_per_order_fallback(venue: OrderEntryHarness, record_property) -> None:
    """With ``capabilities.mass_cancel`` one ``cancel_all`` ends every working order (each reported
    ``cancelled``); without it the engine cancels order by order, which the venue honours the same."""
    async with venue as v:
        orders = [v.submit(BUY, None, v.passive_price(BUY) - i * v.tick) for i in range(3)]
        for order in orders:
            await v.acked(order)
        assert {o.client_id for o in await v.adapter.query_open_orders()} == {o.client_id for o in orders}
        for order in orders:
            order.transition(S.PENDING_CANCEL)  # as the runtime marks them before it asks
        record_property("detail", "cancel_all" if v.capabilities.mass_cancel else "per-order fallback")
        if v.capabilities.mass_cancel:
            assert await v.adapter.cancel_all() == 3
        else:
            with pytest.raises(NotImplementedError):
                await v.adapter.cancel_all()
            for order in orders:
                v.adapter.cancel(order)
        await v.until(lambda: all(o.status is S.CANCELLED for o in orders), "every order cancelled")
        assert await v.adapter.query_open_orders() == []


async def test_post_only_refused_or_repriced_by_capability(venue: OrderEntryHarness, record_property) -> None:
    """In every post-only mode the adapter offers: ``reject``: a post-only order that would take is
    refused 7006 and one that would not rests; ``reprice``: the one that would take rests at a
    price that does not, told once; ``none``: the engine's gate refuses every post-only order with
    2007, so none reaches the adapter."""
    async with venue as v:
        done = []
        for mode in v.post_only_modes():
            await v.use_post_only(mode)
            await post_only_case(v, mode)
            done.append({"none": "refused 2007 by the gate", "reject": "refused 7006", "reprice": "repriced"}[mode])
        record_property("detail", "; ".join(done))


async def post_only_case(v: OrderEntryHarness, mode: str) -> None:
    if mode == "none":
        request = OrderRequest("conformance", v.venue, v.symbol, None, BUY, v.lot, v.passive_price(BUY),
                               OrderType.LIMIT, TimeInForce.DAY, True, "cf-po")
        refusal = SupportedOrderType(v.capabilities).check(request)
        assert refusal is not None and refusal.code == Reject.ORDER_TYPE_NOT_SUPPORTED
        return
    price, _ = await v.marketable(BUY)
    if v.facts.market_data is None:  # a venue that decides post-only locally must know the book
        await v.until(lambda: v.book() is not None and v.book().best_ask is not None
                      and v.book().best_ask <= price, "the offer in the book")
    taking = v.submit(BUY, None, price, post_only=True)
    resting = v.submit(BUY, None, v.passive_price(BUY), post_only=True)
    await v.acked(taking)
    await v.acked(resting)
    assert resting.status is S.NEW and resting.price == v.passive_price(BUY)
    if mode == "reject":
        assert taking.status is S.REJECTED and taking.reject_code == Reject.POST_ONLY_WOULD_TAKE
    else:
        assert mode == "reprice"
        assert taking.status is S.NEW and taking.price < price
        await v.settle()
        assert [u.status for u in v.sink.updates_for(taking.client_id)] == [S.NEW]  # told once
        v.cancel(taking)
        await v.until(lambda: taking.status is S.CANCELLED, "the repriced order cancelled")
    assert v.sink.fills_for(taking.client_id) == []
    v.cancel(resting)
    await v.until(lambda: resting.status is S.CANCELLED, "the resting post-only order cancelled")


# ---- bad days ---------------------------------------------------------------------------------


async def test_drop_mid_order_unknown_then_reconciled(venue: OrderEntryHarness, record_property) -> None:
    """A working order when the connection drops: the adapter reports ``disconnected`` (the runtime
    marks the order unknown), then ``connected`` once back; the queries then tell the order's truth
    (cancelled by a venue that cancels on disconnect, still working otherwise), and a still-working
    order can be cancelled on the new connection."""
    async with venue as v:
        order = v.submit(BUY, None, v.passive_price(BUY))
        await v.acked(order)
        await v.drop()
        await v.until(lambda: "disconnected" in v.sink.statuses(), "disconnected")
        order.transition(S.UNKNOWN)  # what the runtime does at "disconnected"
        await v.until(lambda: v.sink.statuses()[-1] == "connected" and len(v.sink.statuses()) >= 3,
                      "connected again", timeout=30)
        assert v.sink.statuses()[:2] == ["connected", "disconnected"]
        expected = S.CANCELLED if v.adapter.cancel_on_disconnect else S.NEW
        record_property("detail", "cancelled by the venue on disconnect" if expected is S.CANCELLED
                        else "still working, cancelled after")
        seen = await v.adapter.query_order(order.client_id)
        assert seen is not None and seen.status is expected, (seen, expected)
        still_open = {o.client_id for o in await v.adapter.query_open_orders()}
        assert (order.client_id in still_open) == (expected is S.NEW)
        order.transition(seen.status)  # reconciled from the venue's answer
        if expected is S.NEW:
            v.cancel(order)
            await v.until(lambda: order.status is S.CANCELLED, "cancelled after the reconnect")


async def test_duplicate_fill_dropped(venue: OrderEntryHarness) -> None:
    """The venue reports every execution twice: the engine hears each fill once (by exec id), the
    order fills exactly to its quantity, and no status is told twice in a row."""
    skip_unless(venue.facts.duplicate_reports is None, venue, str(venue.facts.duplicate_reports))
    async with venue as v:
        await v.duplicate_reports()
        price, qty = await v.marketable(BUY)
        order = v.submit(BUY, qty, price)
        resting = v.submit(BUY, None, v.passive_price(BUY))
        await v.until(lambda: order.status is S.FILLED and resting.status is S.NEW, "filled and resting")
        v.cancel(resting)
        await v.until(lambda: resting.status is S.CANCELLED, "cancelled")
        await v.settle()
        assert v.duplicates_sent() > 0, "the venue sent nothing twice: the case was not exercised"
        fills = v.sink.fills_for(order.client_id)
        assert len({f.exec_id for f in fills}) == len(fills), "a fill was delivered twice"
        assert v.sink.duplicate_fills == 0
        assert sum(f.qty for f in fills) == qty == order.cum_qty
        for placed in (order, resting):
            told = [u.status for u in v.sink.updates_for(placed.client_id)]
            assert all(a is not b for a, b in itertools.pairwise(told)), told


async def restarted_with_a_fill_and_a_working_order(v: OrderEntryHarness) -> tuple[Order, Order, set[str]]:
    price, qty = await v.marketable(BUY)
    filled = v.submit(BUY, qty, price)
    working = v.submit(BUY, None, v.passive_price(BUY))
    await v.until(lambda: filled.status is S.FILLED and working.status is S.NEW, "filled and working")
    exec_ids = {f.exec_id for f in v.sink.fills_for(filled.client_id)}
    await v.restart()
    return filled, working, exec_ids


async def test_restart_finds_open_and_finished_orders(venue: OrderEntryHarness) -> None:
    """A new adapter instance on the same account (an engine restarted) finds the order still
    working and the one filled before the restart through its queries, and can cancel the former."""
    async with venue as v:
        filled, working, _ = await restarted_with_a_fill_and_a_working_order(v)
        open_orders = await v.adapter.query_open_orders()
        assert [(o.client_id, o.status, o.qty) for o in open_orders] == [(working.client_id, S.NEW, working.qty)]
        assert open_orders[0].venue_order_id == working.venue_order_id
        done = await v.adapter.query_order(filled.client_id)
        assert done is not None and (done.status, done.cum_qty) == (S.FILLED, filled.qty)
        v.cancel(working)
        await v.until(lambda: working.status is S.CANCELLED, "cancelled by the new instance")


async def test_restart_finds_fills_made_before_it(venue: OrderEntryHarness, request: pytest.FixtureRequest) -> None:
    """The new instance's ``query_fills`` answers the executions made before the restart (the engine
    applies those it missed, drops those it has)."""
    known_gap(venue, "restart_fills", request)
    async with venue as v:
        _, _, exec_ids = await restarted_with_a_fill_and_a_working_order(v)
        assert exec_ids and exec_ids <= {f.exec_id for f in await v.adapter.query_fills(0)}


async def test_every_venue_reject_maps_to_an_engine_code(venue: OrderEntryHarness, record_property) -> None:
    """Every reject the venue can be made to send arrives as a ``rejected`` update whose code is
    one of the engine's table (engine/rejects.py) and whose reason is said, none unmapped."""
    async with venue as v:
        unmapped = []
        mapped: list[str] = []
        for case in v.reject_cases():
            order = await case.provoke()
            await v.until(lambda o=order: o.is_terminal, f"{case.name}: answered", timeout=15)
            if order.status is not S.REJECTED or order.reject_code not in REJECT_CODES or not order.reject_reason:
                unmapped.append((case.name, order.status, order.reject_code, order.reject_reason))
            elif case.engine_code is not None and order.reject_code != case.engine_code:
                unmapped.append((case.name, "expected", case.engine_code, order.reject_code))
            mapped.append(f"{case.venue_code}->{order.reject_code}")
        record_property("detail", f"{len(mapped)} cases: " + ", ".join(dict.fromkeys(mapped)))
        assert mapped, f"{v.name}: reject_cases() provokes no reject"
        assert unmapped == []


async def test_no_secret_in_any_log_line(venue: OrderEntryHarness, caplog: pytest.LogCaptureFixture) -> None:
    """Login, an order, a cancel and a reconnect (a second login) with every logger at DEBUG: no
    piece of a credential anywhere in the log (the fixture checks every other test the same way)."""
    skip_unless(bool(venue.secrets), venue, "an embedded venue takes no credentials")
    async with venue as v:
        order = v.submit(BUY, None, v.passive_price(BUY))
        await v.acked(order)
        v.cancel(order)
        await v.until(lambda: order.status is S.CANCELLED, "cancelled")
        await v.drop()
        await v.until(lambda: len(v.sink.statuses()) >= 3 and v.sink.statuses()[-1] == "connected", "reconnected",
                      timeout=30)
    assert caplog.text  # the log was captured, at DEBUG
    for secret in venue.secrets:
        assert secret[:8] not in caplog.text


async def test_a_cancel_in_the_same_step_as_its_order_leaves_nothing_working(venue: OrderEntryHarness) -> None:
    """A cancel asked right after its order, before anything could be written or answered (a
    strategy changing its mind within one hook): the order ends cancelled, either taken back before
    it left (one update, and the venue never had it) or acknowledged and then cancelled; either way
    nothing is left working at the venue."""
    async with venue as v:
        order = v.submit(BUY, None, v.passive_price(BUY))
        v.cancel(order)
        await v.until(lambda: order.is_terminal, "final")
        assert order.status is S.CANCELLED and order.cum_qty == 0
        statuses = [u.status for u in v.sink.updates_for(order.client_id)]
        assert statuses in ([S.CANCELLED], [S.NEW, S.CANCELLED]), statuses
        await v.settle()
        assert order.client_id not in {o.client_id for o in await v.adapter.query_open_orders()}
        seen = await v.adapter.query_order(order.client_id)
        assert seen is None or seen.status is S.CANCELLED, seen
