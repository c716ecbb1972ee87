"""The queue-position model: the recorded book as "crowd" orders in the simulated venue's matching
engine, so our orders meet it by the engine's own price-time priority.

The model (README "Recording and replay" says the same):

- **Joining.** When our order reaches the venue, every level is first set to its recorded size as
  crowd orders; an order that rests joins *behind the displayed size* at its price. One that
  crosses trades against the recorded levels at their prices.
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

    __slots__ = ("engine", "cross", "now_ns", "mirror", "crowd", "ours", "best_ours", "stale", "refused", "_owners")

    def __init__(self, engine: MatchingEngine, cross: CrowdTrade, now_ns: Callable[[], int]) -> None:
        self.engine = engine
        self.cross = cross
        self.now_ns = now_ns
        self.mirror: dict[Side, dict[Decimal, Decimal]] = {BUY: {}, SELL: {}}
        self.crowd: dict[Key, list[int]] = {}
        self.ours: frozenset[Key] = frozenset()
        #: our best resting price per side (highest buy, lowest sell), None when none rests
        self.best_ours: dict[Side, Decimal | None] = {BUY: None, SELL: None}
        self.stale: set[Key] = set()
        self.refused = 0  # crowd orders the engine refused (off tick, closed phase): counted
        self._owners = 0

    # ---- our orders ------------------------------------------------------------------------
    def set_ours(self, levels: list[Key]) -> None:
        """Where our orders rest now. A level we left is lazily kept from now on."""
        new = frozenset(levels)
        self.stale.update(self.ours - new)
        self.ours = new
        buys = [p for s, p in new if s is BUY]
        sells = [p for s, p in new if s is SELL]
        self.best_ours = {BUY: max(buys) if buys else None, SELL: min(sells) if sells else None}

    def taken(self, side: Side, price: Decimal) -> None:
        """Our order took crowd liquidity at this level: given back at the next sync."""
        self.stale.add((side, price))

    def sync(self) -> None:
        """Set every lazily kept level to its recorded size (before our order reaches the venue):
        shrinks first, so a stale level never crosses a fresh one."""
        if not self.stale:
            return
        keys = sorted(self.stale - self.ours, key=lambda k: (k[0], k[1]))
        self.stale.clear()
        grow = []
        for key in keys:
            target = self.mirror[key[0]].get(key[1], ZERO)
            if self._crowd_qty(key) > target:
                self._set(key, target)
            else:
                grow.append((key, target))
        for key, target in grow:
            self._set(key, target)

    def resync_all(self) -> None:
        """After a session phase change (the close expires every DAY order): all levels stale."""
        self.stale.update(self.crowd)
        for side, levels in self.mirror.items():
            self.stale.update((side, price) for price in levels)

    # ---- recorded events ---------------------------------------------------------------------
    def apply_book(self, update: BookUpdate) -> None:
        mirror = self.mirror
        if update.snapshot:
            for side, levels in mirror.items():
                self.stale.update((side, price) for price in levels)
                levels.clear()
        ours = self.ours
        best = self.best_ours
        for side, price, qty in update.changes:
            levels = mirror[side]
            if qty:
                levels[price] = qty
            else:
                levels.pop(price, None)
            key = (side, price)
            if key in ours:
                self._set(key, qty)
            elif qty and (
                (side is SELL and best[BUY] is not None and price <= best[BUY])  # type: ignore[operator]
                or (side is BUY and best[SELL] is not None and price >= best[SELL])  # type: ignore[operator]
            ):
                self._set(key, qty)  # through our price: trades against us
            else:
                self.stale.add(key)
        if update.snapshot and ours:
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
        better = [k for k in self.stale if k[0] is passive and (k[1] >= price if passive is BUY else k[1] <= price)]
        if better:
            self.stale.difference_update(better)
            for key in better:
                if key not in self.ours:
                    self._set(key, self.mirror[passive].get(key[1], ZERO))
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
                order_id = getattr(accepted, "order_id", None)
                if order_id is None:
                    self.refused += 1
                elif engine.order(order_id) is not None:
                    ids.append(order_id)
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
