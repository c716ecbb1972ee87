"""The gate's fast paths decide exactly what the plain code they replace decided.

Each test puts a fast path next to a reference: the straightforward code it replaced (a loop over
every rule, a binary search over the rate window, a fresh deviation band per order, the account's
reservation through the order's public properties), on random inputs, and compares every answer.
Nothing here measures time.
"""

from __future__ import annotations

import random
from bisect import bisect_right
from collections import deque
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import model
from engine.clock import NS_PER_S, SimClock
from engine.model import Instrument, Order, OrderStatus, OrderType, Side, TimeInForce
from engine.risk.account import AccountConfig, BuyingPower, CashAccount, NoShortSelling, SectorLimit
from engine.risk.gate import Gate, OrderRequest, Rejection
from engine.risk.psx import FatFinger
from engine.risk.ratelimit import RateBucket, RateLimitCheck, RateLimiter
from engine.risk.rulepack import resolve_packs
from engine.risk.structural import LotSize, TickGrid
from engine.sessions import TradingCalendar

D = Decimal
T0 = 1_795_000_000 * NS_PER_S
SIDES = (Side.BUY, Side.SELL, "buy", "sell")
QTY = D(100)
PRICE = D("187.40")


def request(side: object = Side.BUY, qty: Decimal = QTY, price: Decimal | None = PRICE,
            symbol: str = "MEBL", facts: object = None) -> OrderRequest:
    return OrderRequest("s", "psx", symbol, None, side, qty, price, OrderType.LIMIT, TimeInForce.DAY, False, "c1",
                        facts=facts)  # type: ignore[arg-type]


# ---- the gate: generated straight-line chains, one per side ----------------------------------


class Stub:
    """A rule that refuses when the request's quantity is in ``refuses``, records every call, and
    (with ``always_allows``) allows that side unseen, as the contract asks."""

    def __init__(self, index: int, refuses: frozenset[int], calls: list[int], always: Side | None) -> None:
        self.index = index
        self.refuses = refuses
        self.calls = calls
        if always is not None:
            self.always_allows = always

    def check(self, req: OrderRequest) -> Rejection | None:
        self.calls.append(self.index)
        if getattr(self, "always_allows", None) is req.side:
            return None
        if int(req.qty) in self.refuses:
            return Rejection(1000 + self.index, f"rule {self.index}")
        return None


def loop_gate(rules: list[Stub], req: OrderRequest) -> Rejection | None:
    """The gate as it was: every rule in order, the first rejection wins."""
    for rule in rules:
        rejection = rule.check(req)
        if rejection is not None:
            return rejection
    return None


@settings(max_examples=300, deadline=None)
@given(
    specs=st.lists(st.tuples(st.frozensets(st.integers(0, 5), max_size=3),
                             st.sampled_from((None, None, Side.BUY, Side.SELL))), max_size=8),
    qty=st.integers(0, 5),
    side=st.sampled_from(SIDES),
)
def test_generated_gate_answers_as_the_loop_did(specs, qty, side) -> None:
    calls: list[int] = []
    rules = [Stub(i, refuses, calls, always) for i, (refuses, always) in enumerate(specs)]
    req = request(side=side, qty=D(qty))
    expected = loop_gate(rules, req)
    looped = list(calls)
    calls.clear()
    assert Gate(rules).check(req) == expected
    # the same rules in the same order, less only those that allow this side unseen
    assert calls == [i for i in looped if getattr(rules[i], "always_allows", None) is not side]


def test_plain_string_sides_run_every_rule() -> None:
    calls: list[int] = []
    rules = [Stub(0, frozenset(), calls, Side.BUY), Stub(1, frozenset(), calls, Side.SELL)]
    for side in ("buy", "sell"):
        calls.clear()
        assert Gate(rules).check(request(side=side)) is None
        assert calls == [0, 1]


def test_an_empty_gate_allows() -> None:
    assert Gate(()).check(request()) is None


# ---- rules that declare a side they always allow --------------------------------------------

INSTRUMENTS = {"MEBL": Instrument("MEBL", "psx", previous_close=D("187.50"), sector="Commercial Banks")}


def empty_account() -> CashAccount:
    """No cash, no shares, a sector cap of 1 rupee: every rule refuses whatever it judges."""
    config = AccountConfig(cash=D(0), sector_limits={"*": {"notional": "1"}})
    return CashAccount(config, TradingCalendar(), INSTRUMENTS, resolve_packs("broker-doc", None, None, INSTRUMENTS))


@pytest.mark.parametrize("rule", [BuyingPower, NoShortSelling, SectorLimit])
def test_always_allows_is_true_of_the_rule(rule) -> None:
    acct = empty_account()
    check = rule(acct) if rule is not SectorLimit else rule(acct, lambda symbol: D("187.50"))
    allowed = check.always_allows
    other = Side.SELL if allowed is Side.BUY else Side.BUY
    req = OrderRequest("s", "psx", "MEBL", INSTRUMENTS["MEBL"], allowed, D(100), D("187.40"), OrderType.LIMIT,
                       TimeInForce.DAY, False, "c1")
    assert check.check(req) is None
    req.side = other
    assert check.check(req) is not None  # the other side is judged (and refused here)


# ---- the rate bucket: one index instead of a binary search -------------------------------------


class ReferenceBucket:
    """The bucket's two bounds as they were written before the fast path: GCRA with a floor
    division, the window by a binary search over every recorded take; an instant earlier than the
    last take seen (the clock stepped back) moves the record back with it, the long way."""

    def __init__(self, count: int, period: int, capacity: int, reserve: int) -> None:
        self.count, self.period, self.capacity, self.reserve = count, period, capacity, reserve
        self.window_cap = max(count, capacity)
        self.tat = 0
        self.recent: deque[int] = deque(maxlen=self.window_cap)
        self.last = 0

    def follow(self, now: int) -> None:
        if now < self.last:
            shift = self.last - now
            self.tat -= shift * self.count
            self.recent = deque((t - shift for t in self.recent), maxlen=self.window_cap)
            self.last = now

    def room(self, need: int, now: int) -> bool:
        self.follow(now)
        expired = bisect_right(self.recent, now - self.period)
        if len(self.recent) + need > self.window_cap and self.window_cap - (len(self.recent) - expired) < need:
            return False
        scaled = now * self.count
        return (scaled + self.capacity * self.period - max(self.tat, scaled)) // self.period >= need

    def take(self, now: int) -> None:
        self.follow(now)
        self.tat = max(self.tat, now * self.count) + self.period
        self.recent.append(now)
        self.last = now


class _SetClock(SimClock):
    """A simulated clock the test sets to any instant, earlier ones too."""

    def __init__(self, start_ns: int) -> None:
        super().__init__(start_ns)
        self.now = start_ns

    def now_ns(self) -> int:
        return self.now


@settings(max_examples=200, deadline=None)
@given(
    count=st.integers(1, 6), burst=st.one_of(st.none(), st.integers(1, 8)), reserve_seed=st.integers(0, 7),
    seed=st.integers(0, 2**32), backwards=st.booleans(),
)
def test_bucket_fast_window_decides_as_the_binary_search(count, burst, reserve_seed, seed, backwards) -> None:
    rng = random.Random(seed)
    clock = _SetClock(T0)
    capacity = burst if burst is not None else count
    reserve = reserve_seed % capacity
    bucket = RateBucket("b", count, D(1), burst, clock, reserve)
    ref = ReferenceBucket(count, NS_PER_S, capacity, reserve)
    now = T0
    for _ in range(120):
        now += rng.choice((0, 1, 50_000_000, 200_000_000, 999_999_999, 1_000_000_000, 3 * NS_PER_S))
        # an earlier instant (the clock stepped back): the bucket follows it as the reference does
        at = now - rng.choice((0, 0, 0, 700_000_000)) if backwards else now
        clock.now = at  # the bucket's own clock reads the instant (a refusal asks it when room comes)
        kind = rng.choice(("order", "order", "cancel", "single"))
        if kind == "single":
            need = reserve + 1
            refused = bucket.refused
            answer = bucket.take_order(now=at)
            assert (answer is None) == ref.room(need, at)
            assert bucket.refused == refused + (answer is not None)
            if answer is None:
                ref.take(at)
            else:
                assert answer.code == 3001
        else:
            need = reserve + 1 if kind == "order" else 1
            assert bucket.can_take(kind, at) == ref.room(need, at)  # type: ignore[arg-type]
            if ref.room(need, at):
                bucket.take(at)
                ref.take(at)
        assert list(bucket._recent) == list(ref.recent)
        assert bucket._tat * count == ref.tat * bucket._scale  # the same instant, in either scale


def test_rate_check_is_the_buckets_own_take_when_orders_spend_one_bucket() -> None:
    clock = SimClock(T0)
    bucket = RateBucket("venue", 2, D(1), None, clock)
    limiter = RateLimiter("s", None, [bucket], clock)
    check = RateLimitCheck(limiter)
    assert check.check == bucket.take_order  # one call per order, not the limiter's forwarding one
    assert [check.check(request()) is None for _ in range(3)] == [True, True, False]
    rejection = Gate([check]).check(request())
    assert rejection is not None and rejection.code == 3001
    # the same sentence the limiter's two-phase take gives for the same bucket running out
    two_phase = RateLimiter("s", None, [RateBucket("venue", 2, D(1), None, clock)], clock)
    assert two_phase._take(two_phase._order_buckets, "order") is None
    assert two_phase._take(two_phase._order_buckets, "order") is None
    assert two_phase._take(two_phase._order_buckets, "order") == rejection
    assert bucket.taken == 2 and bucket.refused == 2


def test_rate_check_takes_every_bucket_when_orders_spend_several() -> None:
    clock = SimClock(T0)
    own = RateBucket("strategy", 5, D(1), None, clock, scope="orders")
    venue = RateBucket("venue", 2, D(1), None, clock)
    check = RateLimitCheck(RateLimiter("s", None, [own, venue], clock))
    assert [check.check(request()) is None for _ in range(3)] == [True, True, False]
    assert (own.taken, venue.taken, venue.refused) == (2, 2, 1)  # all or nothing: no token spent in own


@settings(max_examples=150, deadline=None)
@given(count=st.integers(1, 4), reserve_seed=st.integers(0, 3), steps=st.lists(
    st.tuples(st.sampled_from(("cancel", "order", "wait")), st.integers(0, 600_000_000)), max_size=40))
def test_single_bucket_cancel_take_answers_as_the_two_phase_take(count, reserve_seed, steps) -> None:
    """RateLimiter.take_cancel's one-bucket path against ``_take`` (the loop it skips): the same
    answers, the same sentence, the same tokens and refusals, over random cancels and orders."""
    fast_clock, ref_clock = SimClock(T0), SimClock(T0)
    reserve = reserve_seed % count
    fast = RateLimiter("s", None, [RateBucket("venue", count, D(1), None, fast_clock, reserve)], fast_clock)
    ref = RateLimiter("s", None, [RateBucket("venue", count, D(1), None, ref_clock, reserve)], ref_clock)
    assert fast._single_cancel_bucket is fast.buckets[0]
    for kind, wait in steps:
        if kind == "wait":
            fast_clock.set_time(fast_clock.now_ns() + wait)
            ref_clock.set_time(ref_clock.now_ns() + wait)
        elif kind == "cancel":
            assert fast.take_cancel() == ref._take(ref._cancel_buckets, "cancel")
        else:
            assert fast.take_order() == ref.take_order()
        got, want = fast.buckets[0], ref.buckets[0]
        assert (got.taken, got.refused, got._tat, list(got._recent)) == (
            want.taken, want.refused, want._tat, list(want._recent))


# ---- account.track: a reservation kept while the order's terms are the same objects ---------------


class ReferenceTotals:
    """The account's totals as track kept them before it kept unchanged reservations: every call
    takes the order's old amounts out and puts its newly worked-out ones in."""

    def __init__(self, acct: CashAccount) -> None:
        self.acct = acct  # only its reservation() is used: the amounts of one order's present state
        self.orders: dict[str, tuple[Side, Decimal, Decimal]] = {}
        self.cash = D(0)
        self.buys = D(0)
        self.shares = D(0)

    def track(self, order: Order) -> None:
        old = self.orders.pop(order.client_id, None)
        if old is not None:
            if old[0] is Side.SELL:
                self.shares -= old[2]
            else:
                self.cash -= old[1]
                self.buys -= old[2]
        if order.is_terminal:
            return
        cash, qty = self.acct.reservation(order)
        self.orders[order.client_id] = (order.side, cash, qty)
        if order.side is Side.SELL:
            self.shares += qty
        else:
            self.cash += cash
            self.buys += qty

    def digits(self) -> list[str]:
        held = self.orders.get("o1")
        mine = ["0", "0"] if held is None else [str(held[1]), str(held[2])]
        return [str(self.cash), str(self.buys), str(self.shares), *mine]


def digits(acct: CashAccount) -> list[str]:
    """Everything the account's reservations move, as digits (equal values are not enough)."""
    return [str(acct.reserved_cash), str(acct.open_buy_qty("MEBL")), str(acct.reserved_shares("MEBL")),
            *(str(x) for x in acct.reserved_for("o1"))]


def possible_steps(order: Order, market: bool) -> list[str]:
    """The changes an order's life allows next (each one the runtime tracks)."""
    status = order.status
    steps = ["track_again"]
    if status is OrderStatus.PENDING_NEW:
        steps.append("ack")
    if status in (OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED):
        steps += ["amend_qty"] if market else ["amend_price", "amend_qty"]
    if status is OrderStatus.PENDING_REPLACE:
        steps += ["replaced", "replace_refused"]
    if status is OrderStatus.PENDING_CANCEL:
        steps.append("cancel_refused")
    # a fill leaves room under the pending quantity too: the venue confirms no amend below what filled
    room = order.qty if order.pending_qty is None else min(order.qty, order.pending_qty)
    if not order.is_terminal and order.cum_qty + 1 < room:
        steps.append("fill")
    if order.can_transition(OrderStatus.PENDING_CANCEL):
        steps.append("cancel_sent")
    if order.can_transition(OrderStatus.CANCELLED):
        steps.append("cancelled")
    return steps


@settings(max_examples=300, deadline=None)
@given(side=st.sampled_from((Side.BUY, Side.SELL)), market=st.booleans(), fee_min=st.sampled_from(("0", "40.00")),
       length=st.integers(0, 12), data=st.data())
def test_tracked_totals_are_those_of_recomputing_every_time(side, market, fee_min, length, data) -> None:
    """After every change of an order's life (acks, amends asked, confirmed and refused, fills,
    cancels) the account holds exactly (digits too) what it held when track recomputed and moved
    the reservation on every call: a reservation kept for the same terms, or taken from the
    confirmed amend's own terms, is never a stale one."""
    packs = resolve_packs("broker-doc", {"fee_min": fee_min}, None, INSTRUMENTS)

    def fresh() -> CashAccount:
        return CashAccount(AccountConfig(cash=D(10**9), holdings={"MEBL": D(10**6)}), TradingCalendar(),
                           INSTRUMENTS, packs)

    acct = fresh()
    ref = ReferenceTotals(fresh())
    # another order of the same side, its amounts in other exponents, stays open throughout
    other = Order("o0", "s", "psx", "MEBL", side, D("2.0"), D("187.400"))
    acct.track(other)
    ref.track(other)
    order = Order("o1", "s", "psx", "MEBL", side, D(300), None if market else D("187.40"),
                  OrderType.MARKET if market else OrderType.LIMIT)
    acct.track(order)
    ref.track(order)
    for _ in range(length):
        step = data.draw(st.sampled_from(possible_steps(order, market)))
        if step == "ack":
            order.transition(OrderStatus.NEW)
        elif step == "amend_price":
            order.request_replace(D(data.draw(st.integers(18000, 19000))) / 100, None)
        elif step == "amend_qty":
            order.request_replace(None, order.cum_qty + data.draw(st.integers(1, 400)))
        elif step == "replaced":
            order.confirm_replace(order.pending_price, order.pending_qty)
        elif step == "replace_refused":
            order.confirm_replace(None, None)
        elif step == "fill":
            order.apply_fill(D(1), D("187.40"))
        elif step == "cancel_sent":
            order.transition(OrderStatus.PENDING_CANCEL)
        elif step == "cancel_refused":
            order.transition(order.live_status())
        elif step == "cancelled":
            order.transition(OrderStatus.CANCELLED)
        acct.track(order)
        ref.track(order)
        assert digits(acct) == ref.digits(), step


def test_an_ack_and_a_confirmed_amend_are_not_worked_out_again(monkeypatch) -> None:
    """The ack changes none of the terms a reservation is made of, and the venue's confirmation of
    an amend brings the terms whose amounts were worked out when it was asked: track works
    neither out again. An amend asked works out only its new terms (the current ones hold what
    they held); a fill is worked out in full."""
    acct = empty_account()
    calls: list[str] = []
    amounts = CashAccount._amounts
    with_pending = CashAccount._with_pending

    def counted(self: CashAccount, order: Order) -> tuple:
        calls.append(order.status.value)
        return amounts(self, order)

    def counted_pending(self: CashAccount, order: Order, *held: object) -> tuple:
        calls.append("new terms")
        return with_pending(self, order, *held)

    monkeypatch.setattr(CashAccount, "_amounts", counted)
    monkeypatch.setattr(CashAccount, "_with_pending", counted_pending)
    order = Order("o1", "s", "psx", "MEBL", Side.BUY, D(100), D("187.40"))
    acct.track(order)
    before = acct.reserved_cash
    order.transition(OrderStatus.NEW)
    acct.track(order)
    assert calls == ["pending_new"] and acct.reserved_cash is before
    order.request_replace(D("187.45"), None)
    acct.track(order)
    assert calls == ["pending_new", "new terms"] and acct.reserved_cash > before
    assert [str(x) for x in acct.reservation(order)] == [str(x) for x in acct.reserved_for("o1")]
    asked = len(calls)  # reservation() just above worked it out in full, as it always does
    order.confirm_replace(order.pending_price, None)
    acct.track(order)
    assert len(calls) == asked
    assert acct.reservation(order) == acct.reserved_for("o1")
    assert [str(x) for x in acct.reservation(order)] == [str(x) for x in acct.reserved_for("o1")]
    order.apply_fill(D(10), D("187.45"))
    acct.track(order)
    assert calls[-1] == "partially_filled" and acct.reserved_for("o1")[1] == 90


def test_a_total_keeps_its_digits_when_an_order_holds_the_same_amount() -> None:
    """A lower price asked holds what the order held (the larger of old and new): the account's
    total is left as it was, the very object, and so is it when the venue confirms a price-only
    amend (the shares held are the same). Other orders' amounts in other exponents change nothing."""
    acct = empty_account()
    other = Order("o0", "s", "psx", "MEBL", Side.BUY, D("1.0"), D("187.400"))
    acct.track(other)
    order = Order("o1", "s", "psx", "MEBL", Side.BUY, D(100), D("187.40"))
    acct.track(order)
    order.transition(OrderStatus.NEW)
    acct.track(order)
    cash, buys = acct.reserved_cash, acct.open_buy_qty("MEBL")
    order.request_replace(D("187.39"), None)
    acct.track(order)
    assert acct.reserved_cash is cash and acct.open_buy_qty("MEBL") is buys
    order.confirm_replace(order.pending_price, None)
    acct.track(order)
    assert acct.open_buy_qty("MEBL") is buys and acct.reserved_cash < cash
    ref = ReferenceTotals(empty_account())
    for step in (other, order):
        ref.track(step)
    assert [str(acct.reserved_cash), str(acct.open_buy_qty("MEBL"))] == [str(ref.cash), str(ref.buys)]


# ---- fat finger: the deviation band kept per symbol ------------------------------------------


class Book:
    def __init__(self) -> None:
        self.mid: Decimal | None = None
        self.known_mid: Decimal | None = None  # None, or the mid already worked out


class Facts:
    def __init__(self) -> None:
        self.book = Book()
        self.last_price: Decimal | None = None


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 2**32))
def test_fat_finger_band_follows_every_reference(seed) -> None:
    rng = random.Random(seed)
    packs = resolve_packs("broker-doc", {"max_price_deviation_pct": "0.05"}, None, ["MEBL"])
    rule = FatFinger(None, packs)  # type: ignore[arg-type]  # facts come with each request
    facts = Facts()
    for _ in range(60):
        # equal references as new objects and in other exponents, moves, and no reference at all
        ref = rng.choice((None, D("100"), D("100.00"), D("100.0"), D("104.98"), D(rng.randint(90, 110))))
        if rng.random() < 0.5:
            facts.last_price, facts.book.mid = ref, rng.choice((None, D("101.5")))
        else:
            facts.last_price, facts.book.mid = None, ref
        facts.book.known_mid = rng.choice((None, facts.book.mid))
        price = D(rng.randint(9000, 11500)) / 100
        used = facts.last_price if facts.last_price is not None else facts.book.mid
        rejection = rule.check(request(qty=D(1), price=price, facts=facts))
        if used is None or used - used * D("0.05") <= price <= used + used * D("0.05"):
            assert rejection is None
        else:
            assert rejection is not None and rejection.code == 7011
            assert f"{used} of MEBL" in rejection.reason


# ---- the account's reservation, read from the order's slots --------------------------------


def reference_reservation(acct: CashAccount, order: Order) -> tuple[Decimal, Decimal]:
    """CashAccount.reservation as it was: public properties, buy_cost and max()."""
    if order.is_terminal:
        return D(0), D(0)
    cum = order.cum_qty
    leaves = order.qty - cum
    if leaves < 0:
        leaves = D(0)
    pending = order.pending_qty is not None or order.pending_price is not None
    p_leaves = D(0)
    if pending:
        p_leaves = (order.pending_qty if order.pending_qty is not None else order.qty) - cum
        if p_leaves < 0:
            p_leaves = D(0)
    if order.side is Side.SELL:
        return D(0), max(leaves, p_leaves)
    price = order.price
    if price is None:
        price = acct.market_buy_price(order.symbol) or D(0)
    cash = acct.buy_cost(order.symbol, leaves, price)
    if pending:
        p_price = order.pending_price if order.pending_price is not None else price
        cash = max(cash, acct.buy_cost(order.symbol, p_leaves, p_price))
        leaves = max(leaves, p_leaves)
    return cash, leaves


@settings(max_examples=300, deadline=None)
@given(
    side=st.sampled_from((Side.BUY, Side.SELL)), qty=st.integers(1, 500),
    price=st.one_of(st.none(), st.integers(1, 30000)), filled=st.integers(0, 500),
    new_qty=st.one_of(st.none(), st.integers(1, 600)),
    new_price=st.one_of(st.none(), st.integers(1, 30000)), fee_min=st.sampled_from(("0", "5", "40.00")),
    end=st.booleans(),
)
def test_reservation_matches_the_property_code(side, qty, price, filled, new_qty, new_price, fee_min, end) -> None:
    packs = resolve_packs("broker-doc", {"fee_min": fee_min}, None, INSTRUMENTS)
    acct = CashAccount(AccountConfig(), TradingCalendar(), INSTRUMENTS, packs)
    order = Order("o1", "s", "psx", "MEBL", side, D(qty), None if price is None else D(price) / 100,
                  OrderType.LIMIT if price is not None else OrderType.MARKET)
    order.transition(OrderStatus.NEW)
    if 0 < filled < qty:
        order.apply_fill(D(filled), D("187.00"))
    if new_qty is not None or new_price is not None:
        order.request_replace(None if new_price is None else D(new_price) / 100,
                              None if new_qty is None else D(new_qty))
    if end:
        order.transition(OrderStatus.CANCELLED)
    got = acct.reservation(order)
    want = reference_reservation(acct, order)
    assert got == want
    assert [str(x) for x in got] == [str(x) for x in want]  # the same objects' digits, not just equal values
    acct.track(order)
    assert acct.reserved_for("o1") == ((D(0), D(0)) if end else want)


# ---- enum members as module globals ------------------------------------------------------------


def test_module_globals_are_the_enum_members() -> None:
    assert model._BUY is Side.BUY and model._SELL is Side.SELL
    for name in ("PENDING_NEW", "NEW", "PARTIALLY_FILLED", "PENDING_CANCEL", "PENDING_REPLACE", "FILLED",
                 "CANCELLED", "REJECTED", "EXPIRED", "UNKNOWN"):
        assert getattr(model, f"_{name}") is OrderStatus[name]


# ---- lot and tick: the last objects that passed pass again unseen ----------------------------


class Grid:
    def __init__(self, lot: Decimal, tick: Decimal) -> None:
        self.lot_size = lot
        self.tick_size = tick


@settings(max_examples=200, deadline=None)
@given(steps=st.lists(st.tuples(st.integers(0, 7), st.integers(0, 3), st.integers(0, 6), st.integers(0, 2)),
                      min_size=1, max_size=30))
def test_lot_and_tick_answers_are_those_of_a_fresh_rule(steps) -> None:
    """One LotSize and one TickGrid asked over and over (the same objects again, equal ones, other
    lots and ticks, refusals between) answer exactly as a new rule asked once does."""
    qtys = (D(100), D("1E+2"), D("100.0"), D(7), D(0), D(-100), D("1e30"), D(35))
    lots = (D(1), D(7), D(100), D("0.5"))
    prices = (D("187.40"), D("187.4"), D("187.405"), D("1e30"), D("0.05"), D(-1), D("187.35"))
    ticks = (D("0.01"), D("0.05"), D("0.1"))
    lot_rule, tick_rule = LotSize(), TickGrid()
    for q, lot, p, tick in steps:
        req = request(qty=qtys[q], price=prices[p])
        req.instrument = Grid(lots[lot], ticks[tick])  # type: ignore[assignment]
        assert lot_rule.check(req) == LotSize().check(req)
        assert tick_rule.check(req) == TickGrid().check(req)


def test_a_small_int_argument_is_one_decimal_object() -> None:
    """The order context hands out one Decimal per small int (so the lot rule sees the same object
    again), with the digits Decimal(int) has, large ones too."""
    from engine.context import _exact

    first, again = _exact(100, "quantity"), _exact(100, "quantity")
    assert first is again and str(first) == str(Decimal(100)) and type(first) is Decimal
    assert str(_exact(-3, "quantity")) == "-3" and _exact(0, "quantity") == 0
    big = 10**40 + 1
    assert str(_exact(big, "quantity")) == str(Decimal(big))
