"""The Pulse adapter against the Pulse sandbox over a real WebSocket on 127.0.0.1 (port 0).

The recording sink (tests/support/sinks.py) stands in for the runtime: it applies every update and fill to
the Order objects by the engine's own rules (an illegal sequence is recorded and fails the test),
and records venue MMP triggers the way the runtime's ``venue_mmp_trigger`` receives them. The
sandbox's own account state is the venue's truth the tests compare with.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import pytest
from support import until
from support.pulse import (
    BTC,
    ETH,
    SECRET,
    SECRET_ENV,
    Venue,
    instruments,
    methods_heard,
    public_ids,
    record_issued_tokens,
    trade_at,
    venue,
)
from support.sinks import RecordingSink
from support.stalls import stall_first_send

from adapters.kit.pacing import max_in_window
from adapters.pulse.adapter import PulseAdapter, PulseError, PulseOptions
from adapters.pulse.sandbox import PulseExtensions, PulseSandbox
from engine.clock import NS_PER_S, WallClock
from engine.model import (
    Instrument,
    Liquidity,
    Order,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)
from engine.rejects import Reject
from engine.venue import RateLimit

pytestmark = pytest.mark.anyio

D = Decimal
S = OrderStatus


# ---- authentication -----------------------------------------------------------------------------


async def test_signature_login_connects_and_confirms_cancel_on_disconnect() -> None:
    async with venue() as v:
        assert v.sink.statuses() == ["connected"]
        assert v.adapter.counters["logins"] == 1
        assert v.adapter.venue_cod is True  # enabled at login and read back with get_cancel_on_disconnect
        conn = next(iter(v.sandbox.conns))
        assert conn.cod is True and conn.heartbeat_s == 5.0


async def test_client_credentials_login() -> None:
    async with venue(auth="client_credentials") as v:
        assert v.adapter.counters["logins"] == 1
        assert await v.adapter.query_open_orders() == []


async def test_token_is_refreshed_before_it_expires() -> None:
    async with venue(sandbox={"token_ttl_s": 1.0}, refresh_fraction=D("0.5")) as v:
        await until(lambda: v.adapter.counters["token_refreshes"] >= 2, timeout=4)
        await anyio.sleep(0.6)  # past the first token's expiry: private calls still work
        assert await v.adapter.query_open_orders() == []
        assert v.adapter.counters["auth_failures"] == 0
        assert v.sink.statuses() == ["connected"]


async def test_wrong_secret_refuses_to_connect_without_leaking_it(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with PulseSandbox(credentials={"mm": "the-right-one"}) as sb:
        adapter = PulseAdapter("pulse", PulseOptions(url=sb.url, client_id="mm", client_secret_env=SECRET_ENV),
                               instruments(), WallClock(), RecordingSink())
        async with anyio.create_task_group() as tg:
            adapter.bind(tg)
            with pytest.raises(ConnectionError, match=r"login .* failed.*invalid signature") as info:
                await adapter.connect()
            tg.cancel_scope.cancel()
    assert SECRET not in str(info.value) and SECRET not in caplog.text


async def test_missing_secret_variable_is_named() -> None:
    """Not there at start: refused at construction (the engine makes it a config error naming the
    venue); gone later (the variable unset before a login): the login fails naming it."""
    with pytest.raises(ValueError, match="NO_SUCH_VAR_7"):
        PulseAdapter("pulse", PulseOptions(client_id="mm", client_secret_env="NO_SUCH_VAR_7"), instruments(),
                     WallClock(), RecordingSink())
    os.environ["PULSE_SECRET_THAT_GOES_AWAY"] = SECRET
    async with PulseSandbox() as sb:
        adapter = PulseAdapter("pulse", PulseOptions(url=sb.url, client_id="mm",
                                                     client_secret_env="PULSE_SECRET_THAT_GOES_AWAY"),
                               instruments(), WallClock(), RecordingSink())
        del os.environ["PULSE_SECRET_THAT_GOES_AWAY"]
        async with anyio.create_task_group() as tg:
            adapter.bind(tg)
            with pytest.raises(ConnectionError, match="PULSE_SECRET_THAT_GOES_AWAY"):
                await adapter.connect()
            tg.cancel_scope.cancel()


async def test_secret_from_a_file(tmp_path: Any) -> None:
    secret_file = tmp_path / "pulse.secret"
    secret_file.write_text(SECRET + "\n")
    async with venue(client_secret_file=secret_file, client_secret_env=None) as v:
        assert v.adapter.counters["logins"] == 1


def test_options_never_take_the_secret_itself() -> None:
    with pytest.raises(ValueError, match="extra"):
        PulseOptions(client_id="mm", client_secret=SECRET)  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="client_secret_env or client_secret_file"):
        PulseOptions(client_id="mm", client_secret_env=None)
    with pytest.raises(ValueError, match="exactly one of client_id"):
        PulseOptions(client_secret_env="X")


def windows(value: str, size: int = 8) -> set[str]:
    """Every ``size``-character piece of a secret: an elided log line may show part of one."""
    return {value[i:i + size] for i in range(len(value) - size + 1)}


@pytest.mark.parametrize("auth", ["client_credentials", "client_signature"])
async def test_no_secret_or_token_in_any_log_even_at_debug(auth: str, caplog: pytest.LogCaptureFixture,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Login, two token refreshes and an order with every logger at DEBUG: websockets logs every
    frame both ways (the adapter's connection and the sandbox's), yet no piece of the client
    secret, of any access token or of any refresh token appears anywhere in the captured log."""
    import secrets as random_secrets

    secret = "cs-" + random_secrets.token_urlsafe(18)
    monkeypatch.setenv("PULSE_TEST_DEBUG_SECRET", secret)
    issued = record_issued_tokens(monkeypatch)
    caplog.set_level(logging.DEBUG)
    async with venue(sandbox={"credentials": {"mm": secret}, "token_ttl_s": 1.0}, auth=auth,
                     client_secret_env="PULSE_TEST_DEBUG_SECRET", refresh_fraction=D("0.3")) as v:
        await until(lambda: v.adapter.counters["token_refreshes"] >= 2, timeout=4)
        order = v.submit("buy", 10, 49000)
        await v.acked(order)
        described = str(v.adapter.describe()) + str(v.adapter.stats())
    text = caplog.text
    assert len(issued) == 6  # login + 2 refreshes, each an access and a refresh token
    # the wire really was logged at DEBUG, both ways, with the credential fields in it
    assert "> TEXT" in text and "< TEXT" in text and '"method":"public/auth"' in text
    assert '"refresh_token":"***"}}' in text  # the refresh request's frame, elided by websockets
    if auth == "client_credentials":
        assert '"client_secret":"***"}}' in text  # the secret ends the login frame: elision keeps the end
    assert "private/buy" in text
    for value in (secret, *issued):
        leaked = sorted(piece for piece in windows(value) if piece in text or piece in described)
        assert not leaked, f"pieces of a credential in the log: {leaked}"


# ---- market data ------------------------------------------------------------------------------


async def test_book_snapshot_then_changes_track_the_venue_book() -> None:
    async with venue() as v:
        first = v.sink.of("book")[0]
        assert first.snapshot and first.symbol == BTC
        v.sandbox.place(BTC, "buy", D(30), D(49000), tif=TimeInForce.GTC)
        v.sandbox.place(BTC, "sell", D(20), D(51000), tif=TimeInForce.GTC)
        v.sandbox.place(BTC, "sell", D(10), D(49000))  # trades against the bid
        await until(lambda: v.book_matches_venue() and v.sink.books[BTC].bids == [(D(49000), D(20))])
        deltas = [b for b in v.sink.of("book")[1:]]
        assert all(not b.snapshot for b in deltas)
        assert [b.seq for b in deltas] == list(range(first.seq + 1, first.seq + 1 + len(deltas)))
        (trade,) = v.sink.of("trade")  # trades.{instrument}.raw (PUL-7 extension)
        assert (trade.price, trade.qty, trade.aggressor) == (D(49000), D(10), Side.SELL)


async def test_book_gap_resubscribes_and_recovers_with_a_snapshot() -> None:
    async with venue() as v:
        v.sandbox.gap(BTC)  # the next change is lost on the wire
        v.sandbox.place(BTC, "buy", D(10), D(48000), tif=TimeInForce.GTC)
        v.sandbox.place(BTC, "buy", D(10), D(48500), tif=TimeInForce.GTC)
        await until(lambda: v.adapter.counters["book_snapshots"] == 2)
        await until(v.book_matches_venue)
        assert v.adapter.counters["book_gaps"] == 1 and v.adapter.counters["book_resubscribes"] == 1
        assert v.sink.books[BTC].bids == [(D(48500), D(10)), (D(48000), D(10))]
        v.sandbox.place(BTC, "buy", D(10), D(47000), tif=TimeInForce.GTC)  # changes flow again after it
        await until(lambda: (D(47000), D(10)) in v.sink.books[BTC].bids)
        assert v.adapter.counters["book_gaps"] == 1


async def test_heartbeat_trade_inactive_halts_every_instrument() -> None:
    async with venue() as v:
        v.sandbox.set_trading(False)
        await until(lambda: len(v.sink.of("instrument")) == 2)
        assert {(s.symbol, s.halted) for s in v.sink.of("instrument")} == {(BTC, True), (ETH, True)}
        v.sandbox.set_trading(True)
        await until(lambda: len(v.sink.of("instrument")) == 4)
        assert [s.halted for s in v.sink.of("instrument")[2:]] == [False, False]


# ---- orders and fills -------------------------------------------------------------------------


async def test_resting_order_acks_then_fills_as_maker_once_per_trade() -> None:
    async with venue() as v:
        order = v.submit("buy", 20, 49000)
        await v.acked(order)
        assert order.status is S.NEW and order.venue_order_id == v.venue_order(order).order_id
        v.sandbox.place(BTC, "sell", D(10), D(49000))
        await until(lambda: order.cum_qty == 10)
        assert order.status is S.PARTIALLY_FILLED
        v.sandbox.place(BTC, "sell", D(10), D(49000))
        await until(lambda: order.status is S.FILLED)
        await anyio.sleep(0.05)  # the same trades also come on user.trades and user.changes
        fills = v.sink.fills_for(order.client_id)
        assert [(f.qty, f.price, f.liquidity) for f in fills] == [(D(10), D(49000), Liquidity.MAKER)] * 2
        assert len({f.exec_id for f in fills}) == 2
        assert v.adapter.counters["duplicate_fills"] >= 2
        assert [u.status for u in v.sink.updates_for(order.client_id)] == [S.NEW]  # fills drive the rest
        queried = await v.adapter.query_fills(0)
        assert sorted(f.exec_id for f in queried) == sorted(f.exec_id for f in fills)
        assert (await v.adapter.query_order(order.client_id)).status is S.FILLED


async def test_marketable_order_is_acked_before_its_taker_fill() -> None:
    async with venue() as v:
        v.sandbox.place(BTC, "sell", D(30), D(50000), tif=TimeInForce.GTC)
        order = v.submit("buy", 10, 50000, tif=TimeInForce.IOC)
        await until(lambda: order.status is S.FILLED)
        ack = v.sink.index("update", lambda u: u.client_id == order.client_id and u.status is S.NEW)
        fill = v.sink.index("fill", lambda f: f.client_id == order.client_id)
        assert ack < fill
        assert v.sink.fills_for(order.client_id)[0].liquidity is Liquidity.TAKER


async def test_ioc_remainder_is_cancelled_after_its_fill() -> None:
    async with venue() as v:
        v.sandbox.place(BTC, "sell", D(10), D(50000), tif=TimeInForce.GTC)
        order = v.submit("buy", 30, 50000, tif=TimeInForce.IOC)
        await until(lambda: order.status is S.CANCELLED)
        assert order.cum_qty == 10
        fill = v.sink.index("fill", lambda f: f.client_id == order.client_id)
        cancel = v.sink.index("update", lambda u: u.client_id == order.client_id and u.status is S.CANCELLED)
        assert fill < cancel


async def test_market_order() -> None:
    async with venue() as v:
        v.sandbox.place(BTC, "buy", D(50), D(49500), tif=TimeInForce.GTC)
        order = v.submit("sell", 20, None, tif=TimeInForce.IOC, order_type=OrderType.MARKET)
        await until(lambda: order.status is S.FILLED)
        assert order.avg_price == D(49500)


@pytest.mark.parametrize("price,qty,code", [
    ("49000.3", 10, Reject.PRICE_OUTSIDE_CIRCUIT_BREAKER),  # off the 0.5 tick: venue status 7
    ("49000", 15, Reject.INVALID_QUANTITY),  # not a multiple of the 10 USD step: venue status 8
])
async def test_venue_rejects_carry_engine_codes(price: str, qty: int, code: Reject) -> None:
    async with venue() as v:
        order = v.submit("buy", qty, price)
        await until(lambda: order.status is S.REJECTED)
        assert order.reject_code == code and "Pulse error" in order.reject_reason


async def test_json_rpc_error_answer_becomes_a_clear_reject() -> None:
    async with venue() as v:
        v.sandbox.inject_error("private/buy", 11)
        order = v.submit("buy", 10, 49000)
        await until(lambda: order.status is S.REJECTED)
        assert order.reject_code == Reject.RATE_LIMIT_EXCEEDED
        assert order.reject_reason == "Pulse error 11 (rate limited): injected error for private/buy"
        with pytest.raises(PulseError) as info:
            await v.adapter._request("private/no_such_method", {})
        assert info.value.code == 1 and info.value.reject_code == Reject.INVALID_ORDER
        again = v.submit("buy", 10, 49000)  # the connection is fine
        await v.acked(again)
        assert again.status is S.NEW


async def test_cancel() -> None:
    async with venue() as v:
        order = v.submit("buy", 10, 49000)
        await v.acked(order)
        v.cancel(order)
        await until(lambda: order.status is S.CANCELLED)
        assert order.reject_reason == "cancelled on request"
        assert not v.venue_order(order).is_open


def cancel_when_written(v: Any, order: Order, then: Callable[[], None] | None = None) -> list[bool]:
    """Cancel ``order`` the moment its private/buy has been written, before anything else runs
    (then call ``then``): the buy has left and its answer (the order id) cannot have been read.
    (A cancel asked before the buy is written takes it back instead: it never leaves.) Returns a
    list that holds True once the cancel was asked."""
    send = v.adapter._client.send
    asked: list[bool] = []

    async def send_then_cancel(text: str | bytes, epoch: int | None = None) -> bool:
        sent: bool = await send(text, epoch)
        if not asked and isinstance(text, str) and "private/buy" in text:
            asked.append(True)
            v.cancel(order)
            if then is not None:
                then()
        return sent

    v.adapter._client.send = send_then_cancel
    return asked


async def test_cancel_sent_before_the_ack_waits_for_the_order_id() -> None:
    async with venue() as v:
        order = v.submit("buy", 10, 49000)
        asked = cancel_when_written(v, order)  # the venue has not answered the buy yet
        await until(lambda: order.status is S.CANCELLED)
        assert asked
        assert [u.status for u in v.sink.updates_for(order.client_id)] == [S.NEW, S.CANCELLED]


async def test_a_cancel_of_an_order_still_waiting_for_the_budget_takes_it_back() -> None:
    """A budget of 4 requests a minute (one kept for cancels): three orders leave and the fourth
    waits when its cancel is asked. Its private/buy never leaves: the order ends cancelled at once,
    never live at the venue (no order id, no private/cancel), and the venue saw three buys."""
    async with venue(subscribe=False) as v:
        v.adapter.set_rate_limits((RateLimit("all", 4, D(60)),))
        start = len(v.sandbox.arrivals)
        working = [v.submit("buy", 10, 49000) for _ in range(3)]
        await until(lambda: all(o.status is S.NEW for o in working), what="three acks")
        waiting = v.submit("buy", 10, 49000)
        v.cancel(waiting)
        await until(lambda: waiting.status is S.CANCELLED, what="the fourth cancelled")
        assert [u.status for u in v.sink.updates_for(waiting.client_id)] == [S.CANCELLED]
        assert "before it left" in v.sink.updates_for(waiting.client_id)[0].reason and not waiting.venue_order_id
        methods = [method for _, _, method in list(v.sandbox.arrivals)[start:]]
        assert methods.count("private/buy") == 3 and "private/cancel" not in methods
        assert v.adapter._pacer.waiting() == 0


async def test_cancel_refused_by_the_venue_returns_the_order_to_its_live_state() -> None:
    async with venue() as v:
        order = v.submit("buy", 10, 49000)
        await v.acked(order)
        v.sandbox.inject_error("private/cancel", 12)
        v.cancel(order)
        await until(lambda: order.status is S.NEW)
        refusal = v.sink.updates_for(order.client_id)[-1]
        assert refusal.reject_code == Reject.ORDER_NOT_OPEN and "cancel refused" in refusal.reason


@pytest.mark.parametrize("count", [False, True])
async def test_a_cancel_the_venue_finds_not_open_after_a_mass_cancel_is_no_refusal(count: bool) -> None:
    """A strategy's cancel waits for its order's id (the buy left, unanswered) while the engine
    mass cancels; the mass cancel (written after the buy) ends the order, and the venue says the
    cancel's order is "not open". A venue whose mass cancel reports nothing final (the document's
    own, answering orders as "open" or a count): the adapter asks the order's state instead of
    telling the engine "cancel refused" first (which sent the order back to working before it was
    cancelled). Found by a review; older than the take-back work."""
    sandbox = {"mass_cancel_count": count,
               "extensions": PulseExtensions(mass_cancel_notifications=False, mass_cancel_final_states=False)}
    async with venue(subscribe=False, sandbox=sandbox) as v:
        order = v.submit("buy", 10, 49000)
        written = anyio.Event()
        cancel_when_written(v, order, then=written.set)  # the buy has left; its answer (the order id) has not come
        await written.wait()  # runs on the loop's next turn: the answer needs two more at least
        await v.adapter.cancel_all()
        await until(lambda: order.status is S.CANCELLED, what="cancelled")
        await anyio.sleep(0.2)  # a late refusal would be here by now
        assert [u.status for u in v.sink.updates_for(order.client_id)] == [S.NEW, S.CANCELLED]


async def test_edit_amends_in_place() -> None:
    async with venue() as v:
        order = v.submit("buy", 10, 49000)
        await v.acked(order)
        venue_id = order.venue_order_id
        v.amend(order, price="49100")
        await until(lambda: order.status is S.NEW and order.price == D(49100))
        v.amend(order, qty="30")
        await until(lambda: order.status is S.NEW and order.qty == D(30))
        assert order.venue_order_id == venue_id  # same order_id: amended in place
        at_venue = v.venue_order(order)
        assert (at_venue.price, at_venue.amount, at_venue.replaced) == (D(49100), D(30), True)
        await until(v.book_matches_venue)


async def test_edit_that_crosses_trades_after_its_replace_ack() -> None:
    async with venue() as v:
        v.sandbox.place(BTC, "sell", D(10), D(50000), tif=TimeInForce.GTC)
        order = v.submit("buy", 20, 49000)
        await v.acked(order)
        v.amend(order, price="50000")
        await until(lambda: order.cum_qty == 10)
        assert order.status is S.PARTIALLY_FILLED and order.price == D(50000)
        ack = v.sink.index("update", lambda u: u.client_id == order.client_id and u.price == D(50000))
        assert ack < v.sink.index("fill", lambda f: f.client_id == order.client_id)


async def test_edit_refused_by_the_venue() -> None:
    async with venue() as v:
        order = v.submit("buy", 10, 49000)
        await v.acked(order)
        v.sandbox.inject_error("private/edit", 12)
        v.amend(order, price="49100")
        await until(lambda: order.status is S.NEW)
        assert order.price == D(49000) and order.pending_price is None
        assert v.sink.updates_for(order.client_id)[-1].reject_code == Reject.ORDER_NOT_OPEN


async def test_mass_cancel_by_instrument_and_for_the_account() -> None:
    async with venue() as v:
        btc = [v.submit("buy", 10, 49000 - 10 * i) for i in range(3)]
        eth = v.submit("buy", 1, "2900", symbol=ETH)
        for order in [*btc, eth]:
            await v.acked(order)
        assert await v.adapter.cancel_all(BTC) == 3
        await until(lambda: all(o.status is S.CANCELLED for o in btc))
        assert eth.status is S.NEW
        assert await v.adapter.cancel_all() == 1
        await until(lambda: eth.status is S.CANCELLED)
        assert await v.adapter.query_open_orders() == []


async def test_a_mass_cancel_right_after_orders_leaves_none_of_them_working() -> None:
    """Five buys handed over (all leave the pacer at once) and a mass cancel in the same tick: the
    mass cancel names no order, so it is written after them, never ahead (it would cancel nothing
    and leave them working; a review found four of five left open when it was written ahead)."""
    async with venue() as v:
        burst = [v.submit("buy", 10, 48000 - 10 * n) for n in range(5)]
        await v.adapter.cancel_all()
        await until(lambda: all(o.is_terminal for o in burst), what="the five final")
        assert all(o.status is S.CANCELLED for o in burst)
        assert await v.adapter.query_open_orders() == []
        assert not any(o.is_open for o in v.sandbox.accounts["mm"].orders.values())


async def test_a_mass_cancel_takes_back_orders_still_waiting_for_the_budget() -> None:
    """A budget of 4 requests a minute (one kept for cancels): three buys leave, two wait. The
    mass cancel would leave before the waiting ones (cancels go first) and they would then work at
    the venue: they are taken back instead (cancelled, never sent) and counted as cancelled."""
    async with venue(subscribe=False) as v:
        v.adapter.set_rate_limits((RateLimit("all", 4, D(60)),))
        sent = [v.submit("buy", 10, 49000) for _ in range(3)]
        await until(lambda: all(o.status is S.NEW for o in sent), what="three acks")
        waiting = [v.submit("buy", 10, 49000) for _ in range(2)]
        assert v.adapter._pacer.waiting("order") == 2
        assert await v.adapter.cancel_all() == 5
        await until(lambda: all(o.status is S.CANCELLED for o in sent + waiting), what="all five cancelled")
        for order in waiting:
            assert [u.status for u in v.sink.updates_for(order.client_id)] == [S.CANCELLED]
        assert len(v.sandbox.accounts["mm"].orders) == 3 and v.adapter._pacer.waiting() == 0


async def test_a_cancel_takes_back_an_edit_still_waiting_for_the_budget() -> None:
    """A budget of 4 requests a minute (one kept for cancels): three buys leave, an edit of the
    first waits. Its cancel goes first (the cancels' reserve) and settles the order, so the edit is
    taken back: it never reaches the venue (it would only be refused there, after spending the
    budget), and the strategy hears no refusal in between (found by a review)."""
    async with venue(subscribe=False) as v:
        v.adapter.set_rate_limits((RateLimit("all", 4, D(60)),))
        start = len(v.sandbox.arrivals)
        orders = [v.submit("buy", 10, 49000 - 10 * n) for n in range(3)]
        await until(lambda: all(o.status is S.NEW for o in orders), what="three acks")
        first = orders[0]
        v.amend(first, price="48990")
        assert v.adapter._pacer.waiting("order") == 1
        v.cancel(first)
        await until(lambda: first.status is S.CANCELLED, what="the first cancelled")
        assert [u.status for u in v.sink.updates_for(first.client_id)] == [S.NEW, S.CANCELLED]
        methods = [method for _, _, method in list(v.sandbox.arrivals)[start:]]
        assert "private/edit" not in methods and methods.count("private/cancel") == 1
        assert v.adapter._pacer.waiting() == 0


async def test_post_only_that_would_cross_is_refused_locally_in_reject_mode() -> None:
    async with venue() as v:
        v.sandbox.place(BTC, "sell", D(10), D(50000), tif=TimeInForce.GTC)
        await until(lambda: v.adapter._quotes.get(BTC, (None, None))[1] == D(50000))
        order = v.submit("buy", 10, 50000, post_only=True)
        await until(lambda: order.status is S.REJECTED)
        assert order.reject_code == Reject.POST_ONLY_WOULD_TAKE and "best ask 50000" in order.reject_reason
        assert v.sandbox.accounts["mm"].orders == {}  # nothing was sent
        passive = v.submit("buy", 10, "49999.5", post_only=True)
        await v.acked(passive)
        assert passive.status is S.NEW


@pytest.mark.parametrize("side,resting,asked,taken", [
    ("buy", "sell", "50000", "49999.5"),  # a buy at the ask rests one tick below it
    ("sell", "buy", "50000", "50000.5"),  # a sell at the bid rests one tick above it
])
async def test_post_only_reprice_mode_acks_with_the_venues_price_once(side: str, resting: str, asked: str,
                                                                     taken: str) -> None:
    async with venue(post_only="reprice") as v:
        v.sandbox.place(BTC, resting, D(10), D(50000), tif=TimeInForce.GTC)
        order = v.submit(side, 10, asked, post_only=True)
        await v.acked(order)
        assert v.venue_order(order).price == D(taken)  # "just below the spread", at the venue
        assert order.status is S.NEW and order.price == D(taken)  # and in the engine's order
        await anyio.sleep(0.05)  # user.orders and user.changes repeat the order after the answer
        updates = v.sink.updates_for(order.client_id)
        assert [(u.status, u.price, u.qty) for u in updates] == [(S.NEW, D(taken), None)]  # exactly once
        assert v.adapter.counters["post_only_repriced"] == 1
        # it trades at the venue's price, as the engine now knows it
        v.sandbox.place(BTC, resting, D(10), D(taken))
        await until(lambda: order.status is S.FILLED)
        assert order.avg_price == D(taken)
        plain = v.submit(side, 10, "49000" if side == "buy" else "51000", post_only=True)  # passive: not moved
        await v.acked(plain)
        assert [(u.status, u.price) for u in v.sink.updates_for(plain.client_id)] == [(S.NEW, None)]
        assert v.adapter.counters["post_only_repriced"] == 1


async def test_reconciliation_queries_after_a_drop_find_fills_made_meanwhile() -> None:
    async with venue(reconnect_min_s=D("0.3"), before=lambda a: a.set_cancel_on_disconnect(False)) as v:
        order = v.submit("buy", 20, 49000)
        await v.acked(order)
        v.sandbox.drop()
        await until(lambda: "disconnected" in v.sink.statuses())
        v.sandbox.place(BTC, "sell", D(10), D(49000))  # fills while we cannot hear it
        await until(lambda: v.sink.statuses()[-1] == "connected")
        fills = await v.adapter.query_fills(0)
        assert [(f.client_id, f.qty) for f in fills] == [(order.client_id, D(10))]
        (listed,) = await v.adapter.query_open_orders()
        assert (listed.client_id, listed.status, listed.cum_qty) == (order.client_id, S.PARTIALLY_FILLED, D(10))
        assert v.sink.fills_for(order.client_id) == []  # the runtime applies the queried fills itself
        v.sandbox.place(BTC, "sell", D(10), D(49000))
        await until(lambda: len(v.sink.fills_for(order.client_id)) == 1)  # new fills flow on the new connection


@pytest.mark.parametrize("venue_kind", ["no book channel", "document-literal"])
async def test_a_book_whose_snapshot_never_comes_is_fetched(venue_kind: str) -> None:
    """Issue 20 (2.6): a venue that sends no snapshot on the book channel (004 never says one comes;
    or no book channel at all) must not freeze the book: after ``book_resync_s`` the adapter fetches
    it with ``private/get_order_book``."""
    settings: dict[str, Any] = ({"refuse_channels": ["book.*"]} if venue_kind == "no book channel"
                                else {"extensions": PulseExtensions.document_literal()})
    async with venue(sandbox=settings, subscribe=False, book_resync_s=D("0.2")) as v:
        v.sandbox.place(BTC, "buy", D(10), D(48990), tif=TimeInForce.GTC)  # resting
        v.adapter.subscribe([BTC])
        await until(lambda: BTC in v.sink.books, what="the fetched book")
        assert v.adapter.counters["book_fetches"] >= 1 and v.adapter.counters["book_snapshots_fetched"] == 1
        assert v.sink.books[BTC].best_bid == D(48990)


@contextlib.asynccontextmanager
async def second_instance(v: Venue) -> AsyncIterator[PulseAdapter]:
    """A new adapter on the same account, tracking nothing (an engine restarted beside the old one)."""
    options = PulseOptions(url=v.sandbox.url, client_id="mm", client_secret_env=SECRET_ENV, heartbeat_s=D(5),
                           request_timeout_s=D(2))
    adapter = PulseAdapter("pulse", options, instruments(), WallClock(), RecordingSink())
    async with anyio.create_task_group() as tg:
        adapter.bind(tg)
        await adapter.connect()
        try:
            yield adapter
        finally:
            await adapter.close()
            tg.cancel_scope.cancel()


async def test_a_new_instance_finds_the_fills_made_before_it_from_since() -> None:
    """``query_fills`` asks the venue per instrument (get_user_trades_by_instrument), not per order
    this instance saw: a new instance finds the earlier instance's fills under their label, and
    ``since`` (start_timestamp, venue ms) leaves out what came before it. Nothing is subscribed, so
    no quote sets a venue clock offset and since maps to the venue's ms one to one."""
    async with venue(subscribe=False, before=lambda a: a.set_cancel_on_disconnect(False)) as v:
        order = v.submit("buy", 30, 49000)
        await v.acked(order)
        v.sandbox.place(BTC, "sell", D(10), D(49000))
        await until(lambda: order.cum_qty == 10)
        (first_ms,) = [t["timestamp"] for t in v.sandbox.accounts["mm"].trades]
        since_ns = (first_ms + 1) * 1_000_000  # the next venue millisecond
        clock = WallClock()
        await until(lambda: clock.now_ns() >= since_ns)  # the second trade is stamped at or after it
        v.sandbox.place(BTC, "sell", D(20), D(49000))
        await until(lambda: order.status is S.FILLED)
        delivered = {f.exec_id: f for f in v.sink.fills_for(order.client_id)}
        async with second_instance(v) as restarted:
            everything = await restarted.query_fills(0)
            later = await restarted.query_fills(since_ns)
        assert sorted(f.exec_id for f in everything) == sorted(delivered)
        assert [(f.client_id, f.venue_order_id, f.side, f.qty, f.price) for f in everything] == [
            (order.client_id, order.venue_order_id, Side.BUY, D(10), D(49000)),
            (order.client_id, order.venue_order_id, Side.BUY, D(20), D(49000))]
        assert [(f.exec_id, f.qty) for f in later] == [(everything[1].exec_id, D(20))]
        assert everything[0].ts < since_ns <= later[0].ts


# ---- venue MMP ------------------------------------------------------------------------------------


async def test_venue_mmp_trigger_cancels_freezes_and_drives_the_engine_path() -> None:
    def configure(adapter: PulseAdapter) -> None:
        adapter.configure_mmp("mm", [BTC], interval=D(5), frozen_time=D(1), quantity_limit=D(20))

    async with venue(before=configure) as v:
        config = v.sandbox.accounts["mm"].mmp["btc_usd"]  # sent with private/set_mmp_config at login
        assert (config.interval, config.frozen_time, config.quantity_limit) == (D(5), D(1), D(20))
        hit = v.submit("buy", 20, 49000, mmp=True)
        quote = v.submit("buy", 20, 48990, mmp=True)
        plain = v.submit("buy", 20, 48980)
        for order in (hit, quote, plain):
            await v.acked(order)
        v.sandbox.place(BTC, "sell", D(20), D(49000))
        await until(lambda: quote.status is S.CANCELLED and hit.status is S.FILLED)
        assert quote.reject_reason == "cancelled by the venue's market-maker protection"
        assert plain.status is S.NEW  # not an mmp order
        await until(lambda: len(v.sink.mmp_triggers) == 1)
        strategy, ts, frozen_until, reason = v.sink.mmp_triggers[0]
        assert strategy == "mm" and reason == "Pulse user.mmp_trigger.btc_usd"
        assert frozen_until is not None and 0.7e9 < frozen_until - ts < 1.3e9
        refused = v.submit("buy", 10, 48000, mmp=True)
        await until(lambda: refused.status is S.REJECTED)
        assert refused.reject_code == Reject.MMP_FROZEN
        allowed = v.submit("buy", 10, 48000)
        await v.acked(allowed)
        await anyio.sleep(1.1)  # frozen_time 1 s
        again = v.submit("buy", 10, 48000, mmp=True)
        await v.acked(again)
        assert again.status is S.NEW


@pytest.mark.parametrize("literal", [False, True], ids=["everyday", "document-literal"])
async def test_reset_mmp_lifts_the_venues_freeze_with_frozen_time_zero(literal: bool) -> None:
    """Issue 20 (2.3): with ``frozen_time: 0`` only a reset lifts a venue freeze; 004's
    ``private/set_mmp_config`` "triggers MMP reset", so ``reset_mmp`` sends it and MMP quotes are
    taken again without a reconnect, on the everyday venue and on 004's."""
    def configure(adapter: PulseAdapter) -> None:
        adapter.configure_mmp("mm", [BTC], interval=D(5), frozen_time=D(0), quantity_limit=D(20))

    settings = {"extensions": PulseExtensions.document_literal()} if literal else {}
    async with venue(sandbox=settings, before=configure, book_resync_s=D("0.2")) as v:
        hit = v.submit("buy", 20, 49000, mmp=True)
        await v.acked(hit)
        v.sandbox.place(BTC, "sell", D(20), D(49000))
        await until(lambda: len(v.sink.mmp_triggers) == 1)
        assert v.sandbox.accounts["mm"].mmp["btc_usd"].frozen
        refused = v.submit("buy", 10, 48000, mmp=True)
        await until(lambda: refused.status is S.REJECTED)
        v.adapter.reset_mmp("mm")
        await until(lambda: not v.sandbox.accounts["mm"].mmp["btc_usd"].frozen)
        assert v.adapter.counters["mmp_resets"] == 1
        again = v.submit("buy", 10, 48000, mmp=True)
        await v.acked(again)
        assert again.status is S.NEW
        v.adapter.reset_mmp("someone-else")  # a strategy with no venue MMP: nothing sent
        assert v.adapter.counters["mmp_resets"] == 1


async def test_mmp_limits_come_from_the_strategies_the_engine_configures() -> None:
    """The engine calls configure_mmp before connect for each strategy with an mmp: block on this
    venue; strategies sharing an index get the strictest limits, and only they hear its trigger."""
    def configure(adapter: PulseAdapter) -> None:
        adapter.configure_mmp("a", [BTC], D(1), D(10), D(300))
        adapter.configure_mmp("b", [BTC], D(2), D(5), D(200))
        adapter.configure_mmp("c", [ETH], D(1), D(10), D(7))

    async with venue(before=configure, subscribe=False) as v:
        mmp = v.sandbox.accounts["mm"].mmp  # sent with private/set_mmp_config at login
        assert (mmp["btc_usd"].interval, mmp["btc_usd"].frozen_time, mmp["btc_usd"].quantity_limit) == (
            D(2), D(10), D(200))  # the longest window, the longest freeze, the smallest quantity
        assert mmp["eth_usd"].quantity_limit == D(7)
        assert v.adapter._mmp_strategies == {"btc_usd": {"a", "b"}, "eth_usd": {"c"}}


async def test_without_configure_mmp_no_venue_mmp_is_set_even_with_runners_on_the_sink() -> None:
    """The adapter no longer looks into the runtime for strategies (the engine tells it)."""
    class Runner:
        name, venue, symbols = "a", "pulse", (BTC,)
        mmp = type("State", (), {"config": type("Cfg", (), {
            "interval": D(1), "frozen_time": D(10), "quantity_limit": D(300)})()})()

    def attach_runners(adapter: PulseAdapter) -> None:
        adapter.sink.runners = {"a": Runner()}  # type: ignore[attr-defined]

    async with venue(before=attach_runners, subscribe=False) as v:
        assert v.sandbox.accounts["mm"].mmp == {} and v.adapter._mmp_strategies == {}


# ---- cancel-on-disconnect -----------------------------------------------------------------------


async def test_drop_with_cancel_on_disconnect_cancels_at_the_venue_and_reconciles() -> None:
    async with venue() as v:
        order = v.submit("buy", 10, 49000)
        await v.acked(order)
        v.sandbox.drop()
        await until(lambda: v.sink.statuses()[-1] == "connected" and len(v.sink.statuses()) == 3)
        assert v.sink.statuses() == ["connected", "disconnected", "connected"]
        assert v.sandbox.counters["cod_cancels"] == 1
        assert not v.venue_order(order).is_open and v.venue_order(order).cancel_reason == "cancel_on_disconnect"
        assert await v.adapter.query_open_orders() == []
        seen = await v.adapter.query_order(order.client_id)
        assert seen is not None and seen.status is S.CANCELLED
        assert v.adapter.counters["reconnects"] == 1 and v.adapter.venue_cod is True


async def test_a_drop_reports_what_still_waited_for_the_budget_as_not_sent() -> None:
    """A budget of 4 requests a minute: three orders leave, the fourth waits when the connection
    drops. It provably never left, so it is rejected as not sent (9001) at once rather than left
    unknown until reconciliation; the three that left are reconciled as the venue has them."""
    async with venue(subscribe=False) as v:
        v.adapter.set_rate_limits((RateLimit("all", 4, D(60)),))
        working = [v.submit("buy", 10, 49000) for _ in range(3)]
        await until(lambda: all(o.status is S.NEW for o in working), what="three acks")
        waiting = v.submit("buy", 10, 49000)
        v.sandbox.drop()
        await until(lambda: waiting.is_terminal, what="the fourth answered")
        assert waiting.status is S.REJECTED and waiting.reject_code == Reject.BACKEND_CONNECTIVITY
        assert "order not sent: connection lost" in waiting.reject_reason
        assert [u.status for u in v.sink.updates_for(waiting.client_id)] == [S.REJECTED]


async def test_drop_without_cancel_on_disconnect_leaves_orders_working() -> None:
    async with venue(before=lambda a: a.set_cancel_on_disconnect(False)) as v:
        assert v.adapter.venue_cod is False and next(iter(v.sandbox.conns)).cod is False
        order = v.submit("buy", 10, 49000)
        await v.acked(order)
        v.sandbox.drop()
        await until(lambda: len(v.sink.statuses()) == 3)
        assert v.sandbox.counters["cod_cancels"] == 0
        (listed,) = await v.adapter.query_open_orders()
        assert listed.client_id == order.client_id and listed.status is S.NEW


async def test_graceful_logout_does_not_cancel_even_with_cod_enabled() -> None:
    async with venue() as v:
        order = v.submit("buy", 10, 49000)
        await v.acked(order)
        sandbox = v.sandbox
        assert v.adapter.venue_cod is True
    # the adapter has logged out and closed
    assert sandbox.counters["cod_cancels"] == 0
    (working,) = [o for o in sandbox.accounts["mm"].orders.values() if o.is_open]
    assert working.label == order.client_id


# ---- public trades when the venue has no trades channel (PUL-7) ---------------------------------


@pytest.mark.parametrize("refuse_with_error", [False, True])
async def test_refused_trades_channel_falls_back_to_polling_each_trade_once(refuse_with_error: bool) -> None:
    """The document's venue has no trades.*.raw: whether the venue leaves it out of the subscribe
    result or refuses the whole request, the book still arrives and public trades come from
    public/last_trades_by_instrument, from the subscription on, each once, across a reconnect."""
    sandbox = {"refuse_channels": ["trades.*"], "refuse_with_error": refuse_with_error}
    async with venue(sandbox=sandbox, subscribe=False, public_trades_poll_s=D("0.05"),
                     before=lambda a: a.set_cancel_on_disconnect(False)) as v:
        trade_at(v.sandbox, 50000)  # before the subscription: history, not delivered
        history = public_ids(v.sandbox)
        v.adapter.subscribe([BTC])
        await until(lambda: BTC in v.sink.books, what="book snapshot despite the refusal")
        await until(lambda: v.adapter.counters["public_trade_polls"] >= 2, what="baseline and a poll")
        subscribed = next(iter(v.sandbox.conns)).subs
        assert f"book.{BTC}.raw" in subscribed and not any(c.startswith("trades.") for c in subscribed)
        trade_at(v.sandbox, 50010, taker="buy")
        trade_at(v.sandbox, 49990, qty=20, taker="sell")
        await until(lambda: len(v.sink.of("trade")) == 2)
        polls = v.adapter.counters["public_trade_polls"]
        await until(lambda: v.adapter.counters["public_trade_polls"] >= polls + 3)  # more polls: nothing new
        trades = v.sink.of("trade")
        assert [(t.price, t.qty, t.aggressor) for t in trades] == [(D(50010), D(10), Side.BUY),
                                                                   (D(49990), D(20), Side.SELL)]
        assert [t.trade_id for t in trades] == public_ids(v.sandbox)[len(history):]
        assert v.adapter.counters["public_trades_polled"] == 2 and v.adapter.describe()["public_trades_polled"] == [BTC]
        if refuse_with_error:
            assert v.adapter.counters["subscribe_errors"] == 1
        else:
            assert v.adapter.counters["channels_refused"] == 1
        v.sandbox.drop()
        await until(lambda: v.sink.statuses()[-1] == "connected" and len(v.sink.statuses()) == 3)
        await until(lambda: v.adapter.counters["public_trade_polls"] >= polls + 5)  # a new baseline
        trade_at(v.sandbox, 50020)
        await until(lambda: len(v.sink.of("trade")) == 3)
        await anyio.sleep(0.2)
        assert [t.price for t in v.sink.of("trade")] == [D(50010), D(49990), D(50020)]
        assert v.adapter.counters["public_trade_poll_errors"] == 0


async def test_polling_pages_through_a_burst_of_trades_in_order() -> None:
    async with venue(sandbox={"refuse_channels": ["trades.*"]}, subscribe=False, public_trades_poll_s=D("0.05")) as v:
        trade_at(v.sandbox, 50000)  # the baseline's trade_seq: later polls ask from the next one
        v.adapter.subscribe([BTC])
        await until(lambda: BTC in v.adapter._trade_polls and v.adapter._trade_polls[BTC].last_seq == 1
                    and not v.adapter._trade_polls[BTC].in_flight)
        for i in range(150):  # between two polls: more than one page (100) of trades
            trade_at(v.sandbox, 50000 + i % 7, taker="buy" if i % 2 else "sell")
        await until(lambda: len(v.sink.of("trade")) == 150)
        await anyio.sleep(0.2)
        trades = v.sink.of("trade")
        assert len(trades) == 150 and [t.trade_id for t in trades] == public_ids(v.sandbox)[-150:]


async def test_public_trades_option_off_neither_subscribes_nor_polls() -> None:
    async with venue(sandbox={"refuse_channels": ["trades.*"]}, public_trades=False,
                     public_trades_poll_s=D("0.05")) as v:
        trade_at(v.sandbox, 50000)
        await anyio.sleep(0.2)
        assert v.sink.of("trade") == [] and v.adapter.counters["public_trade_polls"] == 0
        assert v.adapter.counters["channels_refused"] == 0


async def test_the_channel_and_a_poll_never_deliver_a_trade_twice() -> None:
    """Both paths share one record of delivered trade ids."""
    async with venue() as v:
        trade_at(v.sandbox, 50000)
        await until(lambda: len(v.sink.of("trade")) == 1)
        from adapters.pulse.adapter import _TradePoll

        poll = v.adapter._trade_polls[BTC] = _TradePoll(BTC)
        poll.primed = True  # as if polling had been running: the channel's trade comes back in the answer
        v.adapter._poll_trades(poll)
        await until(lambda: not poll.in_flight and poll.last_seq is not None)
        assert len(v.sink.of("trade")) == 1 and v.adapter.counters["public_trades_polled"] == 0


# ---- stats for the engine's report ------------------------------------------------------------


async def test_stats_count_frames_both_ways_and_reconnects() -> None:
    async with venue(before=lambda a: a.set_cancel_on_disconnect(False)) as v:
        first = v.adapter.stats()
        assert all(isinstance(n, int) for n in first.values())
        assert first["reconnects"] == 0 and first["logins"] == 1 and first["messages_in"] > 0
        # every frame the adapter sent is a request the sandbox received
        assert first["messages_out"] == v.sandbox.counters["requests"]
        order = v.submit("buy", 10, 49000)
        await v.acked(order)
        await until(lambda: v.adapter.stats()["messages_in"] >= first["messages_in"] + 4)  # answer, streams, book
        assert v.adapter.stats()["messages_out"] == first["messages_out"] + 1 == v.sandbox.counters["requests"]
        v.sandbox.drop()
        await until(lambda: len(v.sink.statuses()) == 3)
        after = v.adapter.stats()
        assert (after["reconnects"], after["disconnects"], after["logins"]) == (1, 1, 2)
        await until(lambda: v.adapter.stats()["messages_out"] == v.sandbox.counters["requests"])
        assert v.adapter.stats()["messages_out"] > first["messages_out"] + 1  # the second login's requests


# ---- heartbeats and faults ------------------------------------------------------------------------


@pytest.mark.parametrize("deribit", [False, True])
async def test_venue_test_requests_are_answered_and_keep_the_session(deribit: bool) -> None:
    """Issue 20, defect 4: 004 has no public/test. A test_request (Deribit's keepalive, which the
    everyday sandbox sends) is answered with a documented request, or with public/test only when
    the option deribit_heartbeats asks for Deribit's dialect."""
    async with venue(heartbeat_s=1, liveness_probe_s=D(30), deribit_heartbeats=deribit, subscribe=False) as v:
        await until(lambda: v.adapter.counters["test_requests"] >= 2, timeout=8)
        assert v.adapter.counters["heartbeats"] >= 1
        assert v.sandbox.counters["heartbeat_drops"] == 0
        assert v.sink.statuses() == ["connected"]
        assert ("public/test" in methods_heard(v.sandbox)) is deribit


async def test_missed_heartbeat_is_a_disconnect_and_fires_cancel_on_disconnect() -> None:
    async with venue(heartbeat_s=1, liveness_probe_s=D("0.3")) as v:
        order = v.submit("buy", 10, 49000)
        await v.acked(order)
        v.sandbox.stall(1.5)  # the venue goes silent: not even heartbeats
        await until(lambda: "disconnected" in v.sink.statuses(), timeout=3)
        assert v.adapter.counters["heartbeat_missed"] >= 1
        await until(lambda: v.sink.statuses()[-1] == "connected")
        await until(lambda: v.sandbox.counters["cod_cancels"] == 1)  # we dropped it: an ungraceful close
        assert await v.adapter.query_open_orders() == []


async def test_a_venue_that_sends_only_garbage_is_dropped_like_a_silent_one() -> None:
    """Frames that are not the venue's protocol are no sign of life: a session whose socket
    babbles non-JSON, answering nothing (the probe included), is dropped after the probe goes
    unanswered, and cancel-on-disconnect fires, as for silence."""
    async with venue(heartbeat_s=1, liveness_probe_s=D("0.3")) as v:
        order = v.submit("buy", 10, 49000)
        await v.acked(order)
        v.sandbox.stall(3.0, babble=True)
        await until(lambda: "disconnected" in v.sink.statuses(), timeout=5)
        assert v.adapter.counters["heartbeat_missed"] >= 1 and v.adapter.counters["bad_frames"] >= 2
        await until(lambda: v.sink.statuses()[-1] == "connected", timeout=10)
        await until(lambda: v.sandbox.counters["cod_cancels"] == 1)


async def test_a_quiet_venue_without_heartbeat_messages_stays_connected() -> None:
    """Issue 20, defect 1: 004 documents public/set_heartbeat but no heartbeat message. A venue that
    sends none (the document-literal sandbox) is probed with a documented request when silent,
    never dropped for the silence, and never asked anything 004 lacks."""
    literal = PulseExtensions.document_literal()
    async with venue(sandbox={"extensions": literal}, heartbeat_s=1, liveness_probe_s=D("0.5"), subscribe=False) as v:
        await until(lambda: v.adapter.counters["liveness_probes"] >= 3, timeout=10)
        assert v.adapter.counters["heartbeats"] == 0 and v.adapter.counters["heartbeat_missed"] == 0
        assert v.sink.statuses() == ["connected"] and v.adapter.stats()["reconnects"] == 0
        assert "public/test" not in methods_heard(v.sandbox)


async def test_garbage_from_the_venue_is_counted_and_the_connection_survives(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with venue() as v:
        v.sandbox.garbage()
        await until(lambda: v.adapter.counters["bad_frames"] == 2)
        assert sum(v.adapter.bad_input().values()) == 2
        assert "dropped bad input" in caplog.text and "this is not json" in caplog.text
        order = v.submit("buy", 10, 49000)
        await v.acked(order)
        assert order.status is S.NEW and v.sink.statuses() == ["connected"]


async def test_a_late_answer_after_a_timeout_resolves_without_a_false_reject() -> None:
    async with venue(request_timeout_s=D("0.2")) as v:
        v.sandbox.stall(0.6)
        order = v.submit("buy", 10, 49000)
        await until(lambda: v.adapter.counters["timeouts"] >= 1)
        await until(lambda: order.status is S.NEW, timeout=3)  # user.orders with our label after the stall
        await anyio.sleep(0.1)
        assert [u.status for u in v.sink.updates_for(order.client_id)] == [S.NEW]
        assert v.adapter.counters["late_answers"] >= 1


async def test_an_order_the_venue_never_saw_is_rejected_after_its_timeout() -> None:
    async with venue(request_timeout_s=D("0.3")) as v:
        sandbox_frame = v.sandbox._on_frame

        def swallow_buys(conn: Any, raw: Any) -> None:
            if '"private/buy"' not in raw:
                sandbox_frame(conn, raw)

        v.sandbox._on_frame = swallow_buys  # type: ignore[method-assign]
        order = v.submit("buy", 10, 49000)
        await until(lambda: order.status is S.REJECTED, timeout=3)
        assert order.reject_code == Reject.BACKEND_CONNECTIVITY and "never placed" in order.reject_reason


async def test_venue_mmp_trigger_drives_the_runtimes_own_mmp_path() -> None:
    """With the real Runtime as the sink: the venue's limit (20) is tighter than the strategy's own
    (1000), so only the venue triggers; the runtime then cancels, counts and refuses (7009) exactly
    as after a local trigger."""
    from types import SimpleNamespace

    from engine.model import Phase, SessionState
    from engine.risk.mmp import MmpConfig
    from engine.runtime import Runtime, StrategyRunner

    async with PulseSandbox(credentials={"mm": SECRET}) as sb:
        clock = WallClock()
        runtime = Runtime(clock)
        listed = instruments()
        options = PulseOptions(url=sb.url, client_id="mm", client_secret_env=SECRET_ENV,
                               mmp={"btc_usd": {"interval": 5, "frozen_time": 1, "quantity_limit": 20}})
        adapter = PulseAdapter("pulse", options, listed, clock, runtime)
        runtime.add_venue("pulse", adapter, listed)
        runner = StrategyRunner("mm", "pulse", [listed[0]], SimpleNamespace(hooks={}, pm=None))
        runtime.add_strategy(runner, None, mmp=MmpConfig(interval=D(5), frozen_time=D(1), quantity_limit=D(1000)))
        adapter.configure_mmp("mm", [BTC], D(5), D(1), D(1000))  # what the engine does for the mmp: block
        async with anyio.create_task_group() as tg:
            adapter.bind(tg)
            runtime.task_starter = lambda make: tg.start_soon(make)
            await adapter.connect()
            assert sb.accounts["mm"].mmp["btc_usd"].quantity_limit == D(20)  # the venue's own limit was sent
            adapter.subscribe([BTC])
            runtime.on_session_change(runtime.session, SessionState(Phase.OPEN, True, True, True, "2026-11-23"))
            ctx = runner.ctx
            assert ctx is not None
            hit = ctx.submit(BTC, "buy", 20, D(49000), mmp=True, tif="gtc")
            quote = ctx.submit(BTC, "buy", 20, D(48990), mmp=True, tif="gtc")
            await until(lambda: hit.status is S.NEW and quote.status is S.NEW)
            sb.place(BTC, "sell", D(20), D(49000))
            await until(lambda: hit.status is S.FILLED and quote.status is S.CANCELLED)
            assert runner.mmp is not None and runner.mmp.is_frozen()
            assert runner.mmp_triggers == 1 and runner.mmp.last_trigger.reason == "MMP triggered by the venue"
            refused = ctx.submit(BTC, "buy", 20, D(48000), mmp=True, tif="gtc")
            assert refused.status is S.REJECTED and refused.reject_code == Reject.MMP_FROZEN  # refused locally
            await adapter.close()
            tg.cancel_scope.cancel()


# ---- the adapter's stream handling fed the document's examples directly (no socket) -----------

FIXTURES = Path(__file__).parent.parent / "fixtures" / "pulse"


def notification(fixture: str, channel: str) -> str:
    data = (FIXTURES / fixture).read_text(encoding="utf-8")
    return '{"jsonrpc":"2.0","method":"subscription","params":{"channel":"' + channel + '","data":' + data + "}}"


def offline_adapter(symbol: str) -> tuple[PulseAdapter, RecordingSink]:
    sink = RecordingSink()
    listed = [Instrument(symbol, "pulse", tick_size=D("0.5"), lot_size=D(1))]
    adapter = PulseAdapter("pulse", PulseOptions(client_id="mm", client_secret_env=SECRET_ENV), listed,
                           WallClock(), sink)
    return adapter, sink


def track(adapter: PulseAdapter, sink: RecordingSink, client_id: str, symbol: str) -> Order:
    from adapters.pulse.adapter import _Track

    order = Order(client_id, "mm", "pulse", symbol, Side.BUY, D(10), D(50000), tif=TimeInForce.GTC)
    sink.orders[client_id] = order
    adapter._orders.add(_Track(order, 0.0))
    return order


def test_documented_user_changes_is_attributed_by_label_and_the_sole_order() -> None:
    symbol = "BTC-31JUN23-50000-C"
    adapter, sink = offline_adapter(symbol)
    order = track(adapter, sink, "my_order", symbol)  # the example's label
    adapter._dispatch(notification("user.changes.instrument_name.interval.response.json",
                                   f"user.changes.{symbol}.raw"))
    # PUL-8: the example's trade has no order_id; the message's only order is ours, so it is its fill
    assert [u.status for u in sink.updates_for("my_order")] == [S.NEW]
    (fill,) = sink.fills_for("my_order")
    assert (fill.exec_id, fill.venue_order_id, fill.qty, fill.price) == (
        "66fa560b912a3148d07efacf", "60c72b2f9b1e8a001c8e4d5a", D(10), D(50000))
    assert order.status is S.FILLED and sink.errors == []
    # the same trade again on user.trades: delivered once
    adapter._dispatch(notification("user.trades.instrument_name.raw.response.json", f"user.trades.{symbol}.raw"))
    assert len(sink.fills_for("my_order")) == 1 and adapter.counters["duplicate_fills"] == 1


def test_documented_user_trades_alone_cannot_be_attributed_and_is_reported() -> None:
    symbol = "BTC-31JUN23-50000-C"
    adapter, sink = offline_adapter(symbol)
    track(adapter, sink, "my_order", symbol)
    adapter._dispatch(notification("user.trades.instrument_name.raw.response.json", f"user.trades.{symbol}.raw"))
    assert sink.fills_for("my_order") == [] and adapter.counters["unattributed_trades"] == 1


def test_documented_book_example_is_a_bad_frame_not_a_book() -> None:
    from adapters.pulse.codec import CodecError

    adapter, sink = offline_adapter(BTC)
    with pytest.raises(CodecError, match="book level"):  # PUL-6: "[[null]]"; the reader counts and skips it
        adapter._dispatch(notification("book.instrument_name.interval.response.json", f"book.{BTC}.raw"))
    assert sink.of("book") == []


def test_documented_mmp_trigger_reaches_the_strategies_of_its_index() -> None:
    adapter, sink = offline_adapter(BTC)
    adapter.configure_mmp("mm", [BTC], D(1), D(10), D(300))
    adapter._dispatch(notification("user.mmp_trigger.index_name.response.json", "user.mmp_trigger.btc_usd"))
    ((strategy, _, until, reason),) = sink.mmp_triggers
    assert strategy == "mm" and until == 1_640_995_200 * 1_000_000_000 and reason.endswith("btc_usd")


def test_documented_last_trades_answer_sets_the_baseline_then_only_newer_trades_are_delivered() -> None:
    """PUL-7 polling fed the document's request and answer: the params are the documented ones, the
    first answer is history (the baseline), and a later answer delivers only what is new."""
    import json

    from adapters.pulse.adapter import _TradePoll

    symbol = "BTC-31JUN23-50000-C"
    adapter, sink = offline_adapter(symbol)
    sent: list[tuple[str, dict[str, Any]]] = []

    def call(method: str, params: dict[str, Any], callback: Any = None) -> bool:
        sent.append((method, params))
        return True

    adapter._call = call  # type: ignore[method-assign]
    poll = adapter._trade_polls[symbol] = _TradePoll(symbol)
    documented_request = json.loads((FIXTURES / "public.last_trades_by_instrument.request.json").read_text())
    answer = json.loads((FIXTURES / "public.last_trades_by_instrument.response.json").read_text(),
                        parse_float=D)
    adapter._poll_trades(poll)
    adapter._on_trades_polled(poll, answer, None)
    assert sink.of("trade") == [] and poll.primed and poll.last_seq == 1  # history before the baseline
    newer = dict(answer[0], trade_id="66fa560b912a3148d07efad0", trade_seq=2, price=50100, direction="sell")
    adapter._poll_trades(poll)
    adapter._on_trades_polled(poll, [newer], None)
    ((_, baseline), (method, follow_up)) = sent
    assert method == "public/last_trades_by_instrument"
    assert set(baseline) <= set(documented_request) and set(follow_up) <= set(documented_request)
    assert baseline["sorting"] == "desc" and (follow_up["start_seq"], follow_up["sorting"]) == (2, "asc")
    (trade,) = sink.of("trade")
    assert (trade.symbol, trade.trade_id, trade.price, trade.qty, trade.aggressor) == (
        symbol, "66fa560b912a3148d07efad0", D(50100), D(10), Side.SELL)
    adapter._on_trades_polled(poll, [*answer, newer], None)  # overlapping answers: nothing twice
    assert len(sink.of("trade")) == 1


BASE_MS = 1_612_137_600_000  # the document's example trade: "timestamp": 1612137600 (seconds)
DOC_SYMBOL = "BTC-31JUN23-50000-C"  # the document's instrument


class TradesVenue:
    """Stands in for the adapter's ``_request``: answers ``private/get_user_trades_by_instrument``
    from ``trades`` as the sandbox reads the document (the ``count`` oldest at or after
    ``start_timestamp``, oldest first), as the document's bare array or as Deribit's
    ``{trades, has_more}``; ``private/get_user_trades_by_order`` from ``by_order``. Records every
    request."""

    def __init__(self, trades: list[dict[str, Any]], form: str = "array",
                 by_order: dict[str, list[dict[str, Any]]] | None = None) -> None:
        self.trades = trades
        self.form = form
        self.by_order = by_order or {}
        self.sent: list[tuple[str, dict[str, Any]]] = []

    async def __call__(self, method: str, params: dict[str, Any] | None = None) -> Any:
        from adapters.pulse.codec import to_ns

        params = dict(params or {})
        self.sent.append((method, params))
        if method == "private/get_user_trades_by_order":
            return self.by_order[params["order_id"]]
        assert method == "private/get_user_trades_by_instrument"
        later = [t for t in self.trades if to_ns(t["timestamp"]) // 1_000_000 >= params["start_timestamp"]]
        page = later[:params["count"]]
        return {"trades": page, "has_more": len(later) > len(page)} if self.form == "has_more" else page

    def starts(self) -> list[int]:
        return [p["start_timestamp"] - BASE_MS for m, p in self.sent if m == "private/get_user_trades_by_instrument"]


def documented_trades() -> list[dict[str, Any]]:
    import json

    return json.loads((FIXTURES / "private.get_user_trades_by_instrument.response.json").read_text(),
                      parse_float=D)


def trade(n: int, at_ms: int, **fields: Any) -> dict[str, Any]:
    """The document's example trade as another trade of the account: its own id, ``at_ms`` after it."""
    return dict(documented_trades()[0], trade_id=f"t{n}", timestamp=BASE_MS + at_ms, **fields)


def tracked(adapter: PulseAdapter, sink: RecordingSink, client_id: str, qty: int, venue_order_id: str) -> Order:
    from adapters.pulse.adapter import _Track

    order = Order(client_id, "mm", "pulse", DOC_SYMBOL, Side.BUY, D(qty), D(50000), tif=TimeInForce.GTC)
    sink.orders[client_id] = order
    rec = adapter._orders.add(_Track(order, 0.0))
    adapter._orders.bind(rec, venue_order_id)
    return order


@pytest.fixture
def pages_of_three(monkeypatch: pytest.MonkeyPatch) -> None:
    import adapters.pulse.adapter as pulse_adapter

    monkeypatch.setattr(pulse_adapter, "USER_TRADES_PAGE", 3)


@pytest.mark.anyio
@pytest.mark.usefixtures("pages_of_three")
@pytest.mark.parametrize("form", ["array", "has_more"])
async def test_query_fills_pages_through_the_trades_by_instrument_from_since(form: str) -> None:
    """Seven trades of the account, three a page: the first is the document's example answer
    verbatim (no label, no order id: PUL-8), the others carry Deribit's label/order_id. Pages go on
    while full (the document's bare array) or while ``has_more`` says so (Deribit's object), each
    from the last trade's millisecond; every trade comes out once, under its label, with exact
    Decimals and the venue's time. The unlabelled example makes the tracked order be asked for
    its own trades too; the runtime applies the list, so the sink hears nothing."""
    import json

    adapter, sink = offline_adapter(DOC_SYMBOL)
    order = tracked(adapter, sink, "mm-1", 40, "o-1")
    mine = [trade(1, 1, label="mm-1", order_id="o-1"), trade(2, 1, label="mm-1", order_id="o-1")]
    later_mine = [trade(5, 4, label="mm-1", order_id="o-1", amount=D("10.0")),
                  trade(6, 5, label="mm-1", order_id="o-1", price=D("50000.5"))]
    trades = [*documented_trades(), *mine, trade(3, 2, label="mm-0", order_id="o-0"),  # ours, before a restart
              trade(4, 3, order_id="o-9", direction="sell"), *later_mine]  # no label: someone else's order
    venue = TradesVenue(trades, form, by_order={"o-1": [*mine, *later_mine]})
    adapter._request = venue  # type: ignore[method-assign]

    fills = await adapter.query_fills(BASE_MS * 1_000_000)

    documented_request = json.loads((FIXTURES / "private.get_user_trades_by_instrument.request.json").read_text())
    asked = [p for m, p in venue.sent if m == "private/get_user_trades_by_instrument"]
    assert all(set(p) <= set(documented_request) for p in asked)
    assert all((p["instrument_name"], p["count"], p["sorting"]) == (DOC_SYMBOL, 3, "asc") for p in asked)
    assert venue.starts() == [0, 1, 2, 4]  # since, then each full page's last millisecond
    assert [p for m, p in venue.sent if m == "private/get_user_trades_by_order"] == [
        {"order_id": "o-1", "sorting": "asc"}]
    assert [(f.exec_id, f.client_id, f.venue_order_id, f.side, f.qty, f.price, f.ts) for f in fills] == [
        ("66fa560b912a3148d07efacf", "", "", Side.BUY, D(10), D(50000), BASE_MS * 1_000_000),
        ("t1", "mm-1", "o-1", Side.BUY, D(10), D(50000), (BASE_MS + 1) * 1_000_000),
        ("t2", "mm-1", "o-1", Side.BUY, D(10), D(50000), (BASE_MS + 1) * 1_000_000),
        ("t3", "mm-0", "o-0", Side.BUY, D(10), D(50000), (BASE_MS + 2) * 1_000_000),
        ("t4", "", "o-9", Side.SELL, D(10), D(50000), (BASE_MS + 3) * 1_000_000),
        ("t5", "mm-1", "o-1", Side.BUY, D("10.0"), D(50000), (BASE_MS + 4) * 1_000_000),
        ("t6", "mm-1", "o-1", Side.BUY, D(10), D("50000.5"), (BASE_MS + 5) * 1_000_000),
    ]
    assert all(type(f.qty) is Decimal and type(f.price) is Decimal for f in fills)
    # ours are booked in the tracker (a stream repeating them is dropped); nothing reached the sink
    assert all(adapter._orders.seen_fill(t) for t in ("t1", "t2", "t5", "t6"))
    assert adapter._orders.get("mm-1").cum_qty == 40 and sink.fills_for(order.client_id) == []
    # asked again, the same fills come back (the runtime drops what it has), nothing twice
    assert [f.exec_id for f in await adapter.query_fills(BASE_MS * 1_000_000)] == [f.exec_id for f in fills]
    assert adapter._orders.get("mm-1").cum_qty == 40


@pytest.mark.anyio
@pytest.mark.usefixtures("pages_of_three")
async def test_query_fills_stops_at_the_page_cap_and_asks_the_tracked_orders_instead(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """Past the page cap the rest is not asked by instrument (logged, counted); the orders this
    instance tracks are asked for their own trades, so none of their fills is lost."""
    import adapters.pulse.adapter as pulse_adapter

    monkeypatch.setattr(pulse_adapter, "USER_TRADES_MAX_PAGES", 2)
    adapter, sink = offline_adapter(DOC_SYMBOL)
    tracked(adapter, sink, "mm-1", 90, "o-1")
    trades = [trade(n, n, label="mm-1", order_id="o-1") for n in range(9)]
    venue = TradesVenue(trades, by_order={"o-1": trades})
    adapter._request = venue  # type: ignore[method-assign]
    with caplog.at_level(logging.WARNING, logger="engine.pulse"):
        fills = await adapter.query_fills(BASE_MS * 1_000_000)
    assert venue.starts() == [0, 2]
    assert [f.exec_id for f in fills] == [f"t{n}" for n in range(9)]
    assert adapter.counters["fill_pages_capped"] == 1
    assert any("2 pages of user trades" in r.getMessage() and "(cap)" in r.getMessage() for r in caplog.records)


@pytest.mark.anyio
@pytest.mark.usefixtures("pages_of_three")
async def test_query_fills_stops_when_a_full_page_shares_one_millisecond() -> None:
    """More trades in one millisecond than a page holds: asking again from it would return the same
    page, so paging stops there (counted) and the tracked order is asked for its own trades."""
    adapter, sink = offline_adapter(DOC_SYMBOL)
    tracked(adapter, sink, "mm-1", 40, "o-1")
    trades = [trade(n, 7, label="mm-1", order_id="o-1") for n in range(4)]
    venue = TradesVenue(trades, by_order={"o-1": trades})
    adapter._request = venue  # type: ignore[method-assign]
    fills = await adapter.query_fills((BASE_MS + 7) * 1_000_000)
    assert venue.starts() == [7]
    assert sorted(f.exec_id for f in fills) == ["t0", "t1", "t2", "t3"]
    assert adapter.counters["fill_pages_stuck"] == 1


@pytest.mark.anyio
async def test_a_burst_leaves_within_the_assumed_limits_in_every_window() -> None:
    """60 orders handed to the adapter at once (12x the assumed 5 matching-engine requests/s), a
    cancel for every fifth: the sandbox records when each request arrives and the test counts every
    sliding 1 s window itself, against VENUES.md 5.14's 20 requests/s per connection and 20 orders
    at once. Before departure pacing all 60 orders arrived within one window. The sandbox serves from
    its own thread, so its arrival times are the wire's, not when the adapter's loop let it read."""
    burst = 60
    async with venue(threaded=True) as v:
        assert v.served is not None
        start = v.served.call(lambda: len(v.sandbox.arrivals))
        orders = [v.submit("buy", 10, 49000) for _ in range(burst)]  # as fast as a strategy can
        await until(lambda: all(o.venue_order_id for o in orders[::5]), timeout=60, what="the first acks")
        for order in orders[::5]:
            v.cancel(order)
        await until(lambda: all(o.status not in (S.PENDING_NEW, S.PENDING_CANCEL) for o in orders), timeout=60,
                    what="every order answered")
        arrivals = v.served.call(lambda: list(v.sandbox.arrivals))[start:]
    order_methods = {"private/buy", "private/sell", "private/edit"}
    most = max_in_window([t for t, _, _ in arrivals], NS_PER_S)
    most_orders = max_in_window([t for t, _, method in arrivals if method in order_methods], NS_PER_S)
    print(f"pulse burst: {len(arrivals)} requests, at most {most} in any 1 s window ({most_orders} orders)")
    assert len(arrivals) >= burst + burst // 5
    assert most <= 20
    assert most_orders <= 20
    assert all(o.status is S.NEW or o.status is S.CANCELLED for o in orders)


@pytest.mark.anyio
async def test_a_cancel_is_not_written_behind_orders_the_hold_keeps() -> None:
    """One order works; then a burst of 30 whose first write stalls 0.9 s, so the write hold keeps
    the orders the pacer releases right after the stall (the budget accrued meanwhile). A cancel
    of the working order asked then is not written behind all of them, as one writer for every
    lane did (it came after the 24th buy): it competes only with the order the hold lets go when
    room frees (both spend the frame budget the burst filled), so at most one goes first. The
    sandbox serves from its own thread."""
    stalled: list[list[str]] = []
    async with venue(before=lambda adapter: stalled.append(stall_first_send(adapter._client, "48000", 0.9)),
                     threaded=True) as v:
        assert v.served is not None
        working = v.submit("buy", 10, 49000)
        await v.acked(working)
        start = v.served.call(lambda: len(v.sandbox.arrivals))
        burst = [v.submit("buy", 10, 48000) for _ in range(30)]
        await until(lambda: v.adapter._pacer.departed["order"] >= 23, timeout=20, what="the pacer's releases")
        released = v.adapter._pacer.departed["order"] - 1  # buys of the burst the pacer let go before the cancel
        v.cancel(working)
        await until(lambda: working.status is S.CANCELLED and all(o.status is S.NEW for o in burst), timeout=60,
                    what="the cancel and the burst answered")
        methods = [method for _, _, method in v.served.call(lambda: list(v.sandbox.arrivals))[start:]]
    assert stalled[0] and methods.count("private/buy") == 30
    assert methods.index("private/cancel") < released, (released, methods)  # ahead of a buy released before it


@pytest.mark.anyio
async def test_a_cancel_takes_back_an_order_the_write_hold_keeps() -> None:
    """3 orders per 2 s: the first three leave at once and their first write stalls 0.9 s, so the
    fourth, which the pacer lets go one window after their release, waits in the write hold (its
    window counts from when they were written). Cancelled there, it is never written: cancelled
    at once as "before it left", no private/buy, no private/cancel (it was written, then
    cancelled at the venue, before)."""
    stalled: list[list[str]] = []
    async with venue(subscribe=False, before=lambda adapter: stalled.append(
            stall_first_send(adapter._client, "private/buy", 0.9))) as v:
        v.adapter.set_rate_limits((RateLimit("orders", 3, D(2)),))
        start = len(v.sandbox.arrivals)
        working = [v.submit("buy", 10, 49000) for _ in range(3)]
        await until(lambda: all(o.status is S.NEW for o in working), what="three acks")
        held = v.submit("buy", 10, 49000)
        await until(lambda: v.adapter._pacer.departed["order"] == 4, what="the pacer lets the fourth go")
        assert v.adapter._pacer.hold.in_progress == 0  # kept by the hold, not being written
        v.cancel(held)
        await until(lambda: held.status is S.CANCELLED, what="the fourth cancelled")
        assert [u.status for u in v.sink.updates_for(held.client_id)] == [S.CANCELLED]
        assert "before it left" in v.sink.updates_for(held.client_id)[0].reason and not held.venue_order_id
        await anyio.sleep(1.2)  # past the hold's window: a fourth buy would be written by now
        methods = [method for _, _, method in list(v.sandbox.arrivals)[start:]]
    assert stalled[0]
    assert methods.count("private/buy") == 3 and "private/cancel" not in methods, methods


@pytest.mark.anyio
async def test_frames_still_paced_at_close_are_reported_not_sent() -> None:
    """After the login, a budget of 4 requests a minute (one kept for cancels): three orders leave,
    the first cancel takes the reserve, the second cancel and a fourth order wait. Closing reports
    both: the order rejected as never sent, the cancel refused with its order still live."""
    async with venue(subscribe=False) as v:
        v.adapter.set_rate_limits((RateLimit("all", 4, D(60)),))
        working = [v.submit("buy", 10, 49000) for _ in range(3)]
        await until(lambda: all(o.status is S.NEW for o in working), what="three acks")
        waiting_order = v.submit("buy", 10, 49000)
        v.cancel(working[0])
        await until(lambda: working[0].status is S.CANCELLED, what="the first cancel")
        v.cancel(working[1])
        await v.adapter.close()
        assert waiting_order.status is S.REJECTED
        assert waiting_order.reject_code == Reject.BACKEND_CONNECTIVITY
        assert working[1].status is S.NEW
        refusal = v.sink.updates_for(working[1].client_id)[-1]
        assert refusal.reject_code == Reject.BACKEND_CONNECTIVITY and "cancel not sent" in refusal.reason
        assert v.venue_order(working[1]).is_open


@pytest.mark.anyio
async def test_a_stall_between_release_and_write_does_not_bunch_the_wire() -> None:
    """The first order's write stalls 0.4 s (the loop busy, the process descheduled) after the pacer
    released the first 20: they reach the wire at 0.4 s, and the next ones the pacer releases one
    window after the releases would make 21 in one of the venue's seconds. The writer writes
    through the pacer's write hold, which counts from when the writes returned. The sandbox serves
    from its own thread: the stall blocks the adapter's loop, not the sandbox's reads."""
    stalled: list[list[str]] = []
    async with venue(before=lambda adapter: stalled.append(stall_first_send(adapter._client, "private/buy")),
                     threaded=True) as v:
        assert v.served is not None
        start = v.served.call(lambda: len(v.sandbox.arrivals))
        orders = [v.submit("buy", 10, 49000) for _ in range(30)]
        await until(lambda: all(o.status is not S.PENDING_NEW for o in orders), timeout=60, what="every order answered")
        recorded = v.served.call(lambda: list(v.sandbox.arrivals))[start:]
        arrivals = [t for t, _, method in recorded if method == "private/buy"]
    assert stalled[0] and len(arrivals) == 30
    assert max_in_window(arrivals, NS_PER_S) <= 20
