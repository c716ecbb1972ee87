"""The queue-position model: the recorded book as "crowd" orders in the simulated venue's matching
engine, so our orders meet it by the engine's own price-time priority.

The model (README "Recording and replay" says the same):

- **Joining.** When our order reaches the venue, the levels it can meet are first set to their
  recorded size as crowd orders (its own price, and the other side's prices it crosses); an order
  that rests joins *behind the displayed size* at its price. One that crosses trades against the
  recorded levels at their prices.
- **Trades.** A recorded trade at price P and quantity Q is an immediate-or-cancel crowd order on
  the aggressor's side: it consumes, by price-time priority, the crowd ahead of us, then us, then
  the crowd behind us. A print without an aggressor is taken to come from the side that could
  reach our order.
- **Deltas.** A recorded level that grows gets a crowd order at the back (behind us). One that
  shrinks with no trade loses crowd from the *back* first (orders that joined after ours), then
  from the front: we advance only by what trades consumed, or when the level falls below what was
  ahead of us (risk-averse, as hftbacktest's ``RiskAverseQueueModel``). A level that grows past
  our resting order on the other side (the market moved through our price) trades against it.
- **No market impact.** What our orders take is given back at the next recorded change of that
  level, or before our next order reaches the venue: the recording is the market without us.
- **Lazily kept.** Levels where we have no order are only remembered (one dict write per change);
  they are set in the engine when our next order arrives. That is what keeps a replay near the
  speed of the recorded feed.

A feed that sends the level's delta *before* the trade that caused it makes the shrink count
twice for the queue ahead (the delta is taken from the back first, so at most the trade's
quantity): the simulated venue and the PSX and Pulse sandboxes print the trade first.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from adapters.sim.matching import MatchingEngine
from engine.model import BookUpdate, OrderType, Side, TimeInForce, Trade

CROWD = "crowd"  # the owner of every recorded order in the engine (crossing ones: "crowd-<n>", see CrowdTrade)
BUY = Side.BUY
SELL = Side.SELL
ZERO = Decimal(0)
_LIMIT = OrderType.LIMIT
_DAY = TimeInForce.DAY
_IOC = TimeInForce.IOC

Key = tuple[Side, Decimal]
#: submit a crowd order through the venue (so fills of ours it causes reach the engine):
#: ``(owner, side, qty, price, tif)``. Each such order has an owner of its own (``crowd-<n>``):
#: self-trade prevention must not stop a recorded print at the crowd resting ahead of us, while a
#: plain add that meets a stale crowd level is stopped by it (it must not trade crowd with crowd)
CrowdTrade = Callable[[str, Side, Decimal, Decimal, TimeInForce], None]


class ReplayBook:
    """One symbol: the recorded book (``mirror``), the crowd orders standing for it in ``engine``,
    and where our own orders rest (set by the adapter from the venue's answers)."""

    __slots__ = ("engine", "cross", "now_ns", "mirror", "crowd", "ours", "best_ours", "our_bid", "our_ask",
                 "refused", "_owners")

    def __init__(self, engine: MatchingEngine, cross: CrowdTrade, now_ns: Callable[[], int]) -> None:
        self.engine = engine
        self.cross = cross
        self.now_ns = now_ns
        self.mirror: dict[Side, dict[Decimal, Decimal]] = {BUY: {}, SELL: {}}
        self.crowd: dict[Key, list[int]] = {}
        self.ours: frozenset[Key] = frozenset()
        #: our best resting price per side (highest buy, lowest sell), None when none rests
        self.best_ours: dict[Side, Decimal | None] = {BUY: None, SELL: None}
        self.our_bid: Decimal | None = None  # best_ours as plain fields, for the per-event path
        self.our_ask: Decimal | None = None
        self.refused = 0  # crowd orders the engine refused (off tick, closed phase): counted
        self._owners = 0

    # ---- our orders ------------------------------------------------------------------------
    def set_ours(self, levels: list[Key]) -> None:
        """Where our orders rest now; other levels are kept lazily. Called after every answer to
        one of our orders, most of which leave the levels as they were: nothing is recomputed then."""
        new = frozenset(levels)
        if new == self.ours:
            return
        self.ours = new
        bid = ask = None
        for side, price in new:
            if side is BUY:
                if bid is None or price > bid:
                    bid = price
            elif ask is None or price < ask:
                ask = price
        self.our_bid = bid
        self.our_ask = ask
        self.best_ours = {BUY: bid, SELL: ask}

    def sync(self, side: Side | None = None, price: Decimal | None = None) -> None:
        """Set lazily kept levels to their recorded size before our order reaches the venue:
        every level, or (``side`` given) only the ones an order on ``side`` at ``price`` can meet:
        its own level (it joins behind the displayed size) and the other side's levels it
        crosses (all of them for a market order, ``price`` None). Levels where our orders rest
        are kept exactly all along and left alone. Shrinks first, so a level never crosses a
        fresh one. No list of what changed is kept: the per-event path stays one dict write."""
        if side is None:
            keys = {(s, p) for s, levels in self.mirror.items() for p in levels} | set(self.crowd)
        else:
            other = SELL if side is BUY else BUY
            if price is None:
                keys = {(other, p) for p in self.mirror[other]} | {k for k in self.crowd if k[0] is other}
            elif other is SELL:
                keys = {(other, p) for p in self.mirror[other] if p <= price} | {
                    k for k in self.crowd if k[0] is other and k[1] <= price}
            else:
                keys = {(other, p) for p in self.mirror[other] if p >= price} | {
                    k for k in self.crowd if k[0] is other and k[1] >= price}
            if price is not None:
                keys.add((side, price))
        self._sync_keys(keys)

    def _sync_keys(self, keys: set[Key]) -> None:
        ours = self.ours
        mirror = self.mirror
        grow = []
        for key in sorted(keys) if len(keys) > 1 else keys:  # side, then price (Side is a str); one: far off
            if key in ours:
                continue
            target = mirror[key[0]].get(key[1], ZERO)
            current = self._crowd_qty(key)
            if current > target:
                self._set(key, target)
            elif current < target:
                grow.append((key, target))
        for key, target in grow:
            self._set(key, target)

    # ---- recorded events ---------------------------------------------------------------------
    def apply_book(self, update: BookUpdate) -> None:
        """One recorded book update: remembered; set in the engine where it meets our orders."""
        mirror = self.mirror
        snapshot = update.snapshot
        if snapshot:
            mirror[BUY].clear()
            mirror[SELL].clear()
        ours = self.ours
        our_bid = self.our_bid
        our_ask = self.our_ask
        for side, price, qty in update.changes:
            if qty:
                mirror[side][price] = qty
            else:
                mirror[side].pop(price, None)
            if ours and (side, price) in ours:
                self._set((side, price), qty)
            elif qty and ((our_bid is not None and side is SELL and price <= our_bid)
                          or (our_ask is not None and side is BUY and price >= our_ask)):
                self._set((side, price), qty)  # through our price: trades against us
        if snapshot and ours:
            for key in ours:  # a snapshot that no longer shows our level empties it
                if key[1] not in mirror[key[0]]:
                    self._set(key, ZERO)

    def apply_trade(self, trade: Trade) -> None:
        """A print that can reach our order is replayed as a crowd IOC (see the module docstring)."""
        price = trade.price
        best = self.best_ours
        aggressor = trade.aggressor
        bid, ask = best[BUY], best[SELL]
        if aggressor is None:
            if bid is not None and price <= bid:
                aggressor = SELL
            elif ask is not None and price >= ask:
                aggressor = BUY
            else:
                return
        if aggressor is SELL:
            if bid is None or price > bid:
                return
            passive = BUY
        else:
            if ask is None or price < ask:
                return
            passive = SELL
        # the passive side's levels at or better than the print are set to the recording first
        mirror = self.mirror[passive]
        if passive is BUY:
            keys = {(BUY, p) for p in mirror if p >= price} | {k for k in self.crowd if k[0] is BUY and k[1] >= price}
        else:
            keys = {(SELL, p) for p in mirror if p <= price} | {k for k in self.crowd if k[0] is SELL and k[1] <= price}
        self._sync_keys(keys)
        self.cross(self._owner(), aggressor, trade.qty, price, _IOC)
        self._forget_dead()

    # ---- the engine ----------------------------------------------------------------------------
    def _crowd_qty(self, key: Key) -> Decimal:
        ids = self.crowd.get(key)
        if not ids:
            return ZERO
        order = self.engine.order
        total = ZERO
        for order_id in ids:
            resting = order(order_id)
            if resting is not None:
                total += resting.leaves
        return total

    def _set(self, key: Key, target: Decimal) -> None:
        """Make the crowd at ``key`` total ``target``: grow at the back, shrink from the back."""
        engine = self.engine
        ids = [i for i in self.crowd.get(key, ()) if engine.order(i) is not None]
        current = ZERO
        for order_id in ids:
            current += engine.order(order_id).leaves  # type: ignore[union-attr]
        side, price = key
        if target > current:
            add = target - current
            best = self.best_ours
            crosses_us = (best[BUY] is not None and price <= best[BUY]) if side is SELL else (  # type: ignore[operator]
                best[SELL] is not None and price >= best[SELL])  # type: ignore[operator]
            if crosses_us:
                before = set(engine.resting)
                owner = self._owner()
                self.cross(owner, side, add, price, _DAY)
                ids.extend(i for i in engine.resting if i not in before and engine.resting[i].owner == owner)
            else:
                outcome = engine.submit(CROWD, "", side, add, price, _LIMIT, _DAY, False, self.now_ns())
                accepted = outcome.events[0]
                new_id: int | None = getattr(accepted, "order_id", None)  # None: Rejected
                if new_id is None:
                    self.refused += 1
                elif engine.order(new_id) is not None:
                    ids.append(new_id)
        elif target < current:
            cut = current - target
            for order_id in reversed(ids):
                resting = engine.order(order_id)
                assert resting is not None
                if resting.leaves <= cut:
                    cut -= resting.leaves
                    engine.cancel(order_id, self.now_ns())
                else:
                    engine.amend(order_id, None, resting.qty - cut, self.now_ns())
                    cut = ZERO
                if not cut:
                    break
            ids = [i for i in ids if engine.order(i) is not None]
        if ids:
            self.crowd[key] = ids
        else:
            self.crowd.pop(key, None)

    def _owner(self) -> str:
        self._owners += 1
        return f"{CROWD}-{self._owners}"

    def _forget_dead(self) -> None:
        """Drop crowd ids a trade filled completely (kept lists stay short)."""
        order = self.engine.order
        for key in list(self.crowd):
            ids = [i for i in self.crowd[key] if order(i) is not None]
            if ids:
                self.crowd[key] = ids
            else:
                del self.crowd[key]
