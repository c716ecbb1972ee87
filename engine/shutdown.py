"""A stop that leaves no order working, or says which ones it could not close.

Shutdown's first cancels (one mass cancel per venue that has it, else order by order within the
venue's budget) are only the start: a venue may refuse a cancel (3001 when its rate limit is spent,
9001 when its backend is down), lose it with the connection, or never answer. :class:`OrderCloser`
looks at every order not yet final, over and over until each one is or the deadline passes:

- an order the venue still works (a refused cancel put it back) gets its cancel again, backing off
  per order, through :meth:`Runtime.cancel_order` as an engine cancel: it spends only the venue's
  budget and is paced when that is exhausted, so retries never become the burst the venue refuses;
- an order whose cancel went unanswered for ``ANSWER_WAIT_NS``, or whose state is ``unknown``, is
  asked about: the same reconciliation a reconnect runs (:func:`engine.runtime.recovery.ask_venue` and
  :func:`engine.runtime.recovery.reconcile_venue`) gives it the venue's state, missed fills included;
- a venue that dropped meanwhile gets the cancels when it is back (the reconnect's reconciliation
  sends them), as long as the deadline allows;
- orders of strategies this config no longer runs (orphans) are cancelled too.

What is still working at the deadline is listed by :meth:`OrderCloser.left_working`; the engine
logs each one, puts them in the report and exits non-zero (``EXIT_ORDERS_LEFT_WORKING``).

Its times (deadline, backoff, answer wait) are on the clock it is given: engine time on the
simulated clock, real time otherwise, since a network venue answers in real time even when the
engine's clock runs faster (``engine sandbox psx --run --speed 60``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from engine.clock import NS_PER_S
from engine.model import Order, OrderStatus
from engine.runtime.connectivity import CONNECTED
from engine.runtime.recovery import ask_venue, reconcile_venue

if TYPE_CHECKING:
    from engine.runtime import Runtime, StrategyRunner, VenueState

log = logging.getLogger("engine")

__all__ = ["ANSWER_WAIT_NS", "EXIT_ORDERS_LEFT_WORKING", "OrderCloser"]

#: ``engine run``'s exit code when shutdown could not confirm every order final before its deadline
EXIT_ORDERS_LEFT_WORKING = 3
#: a cancel unanswered this long was lost, or its answer was: ask the venue
ANSWER_WAIT_NS = 2 * NS_PER_S
#: a refused cancel is sent again after 0.25 s, then 0.5, 1, 2 s (per order): a venue refusing for
#: its rate limit gets room, one refusing for a while is asked often enough to catch its return
RETRY_FIRST_NS = NS_PER_S // 4
RETRY_MAX_NS = 2 * NS_PER_S
#: at most one reconciliation query per venue this often
QUERY_INTERVAL_NS = 2 * NS_PER_S


class OrderCloser:
    """Drives every open order to a final state for ``timeout_ns`` of ``now_ns`` (the engine's
    clock when it is simulated, a monotonic real-time clock otherwise). The caller lets venues
    answer between two calls of :meth:`chase` and stops once :meth:`done`."""

    def __init__(self, runtime: Runtime, timeout_ns: int, now_ns: Callable[[], int]) -> None:
        self.runtime = runtime
        self.now_ns = now_ns
        self.started_ns = runtime.clock.now_ns()  # engine time: the venue's fills are asked from here
        self.deadline_ns = now_ns() + timeout_ns
        self._attempts: dict[str, int] = {}  # cancels sent by this closer, per client id
        self._next_try_ns: dict[str, int] = {}
        self._pending_since: dict[str, int] = {}  # when this closer first saw the order's cancel pending
        self._asked_ns: dict[str, int] = {}  # per venue: when it was last asked
        self._asking: set[str] = set()  # venues with a query in flight
        self.cancels_sent = 0  # after the first round: the retries
        self.queries = 0

    def working(self) -> Iterator[tuple[VenueState, StrategyRunner | None, Order]]:
        """Every order that may still trade: the strategies' open ones and the venues' orphans."""
        runtime = self.runtime
        for runner in runtime.runners.values():
            venue = runtime.venues[runner.venue]
            for order in list(runner.open_orders.values()):
                yield venue, runner, order
        for venue in runtime.venues.values():
            for order in list(venue.orphans.values()):
                if not order.is_terminal:
                    yield venue, None, order

    def done(self) -> bool:
        return next(self.working(), None) is None

    def seconds_left(self) -> float:
        return max(0, self.deadline_ns - self.now_ns()) / NS_PER_S

    def chase(self) -> None:
        """One look at every order not final yet: cancel again what the venue still works, ask
        about what is unknown or unanswered."""
        runtime = self.runtime
        now = self.now_ns()
        to_ask: set[str] = set()
        for venue, runner, order in self.working():
            status = order.status
            client_id = order.client_id
            if status is OrderStatus.PENDING_CANCEL:
                if now - self._pending_since.setdefault(client_id, now) >= ANSWER_WAIT_NS:
                    to_ask.add(venue.name)
                continue  # its answer is awaited
            self._pending_since.pop(client_id, None)
            if status is OrderStatus.UNKNOWN:
                to_ask.add(venue.name)
                continue
            if runner is None:
                continue  # orphans: cancel_orphans below
            if now < self._next_try_ns.get(client_id, 0):
                continue
            if venue.limiter.next_cancel_ns() > runtime.clock.now_ns():
                continue  # the venue's budget is spent: the runtime's paced retry or a later look sends it
            attempt = self._attempts.get(client_id, 0) + 1
            self._attempts[client_id] = attempt
            self._next_try_ns[client_id] = now + min(RETRY_FIRST_NS << min(attempt - 1, 4), RETRY_MAX_NS)
            if runtime.cancel_order(runner, order, by_engine=True, allow_reconciling=True):
                self.cancels_sent += 1
        for venue in runtime.venues.values():
            if venue.orphans and venue.status is CONNECTED:
                runtime.cancel_orphans(venue)
        for name in sorted(to_ask):
            self._ask(runtime.venues[name], now)

    def _ask(self, venue: VenueState, now: int) -> None:
        """Reconcile with one venue (not while it is down or reconciling after a reconnect, which
        does the same and sends the cancels decided meanwhile)."""
        if venue.status is not CONNECTED or venue.name in self._asking:
            return
        if now - self._asked_ns.get(venue.name, -QUERY_INTERVAL_NS) < QUERY_INTERVAL_NS:
            return
        self._asked_ns[venue.name] = now
        self._asking.add(venue.name)
        self.queries += 1
        self.runtime.spawn(lambda: self._reconcile(venue))

    async def _reconcile(self, venue: VenueState) -> None:
        runtime = self.runtime
        since = min(self.started_ns, venue.dropped_at_ns or self.started_ns) - NS_PER_S
        try:
            asked_ns = self.now_ns()
            answer = await ask_venue(runtime, venue, since)
        except Exception as exc:  # asked again at the next look, until the deadline
            log.warning("shutdown: venue %s did not answer the order query (%s: %s); asking again", venue.name,
                        type(exc).__name__, exc)
            return
        finally:
            self._asking.discard(venue.name)
        if venue.status is not CONNECTED:
            return  # dropped meanwhile: the reconnect reconciles
        now = runtime.clock.now_ns()
        for _, _, order in self.working():
            # still no answer to the cancel: the venue's word decides (live orders are cancelled again)
            pending_since = self._pending_since.get(order.client_id)
            if (order.venue == venue.name and order.status is OrderStatus.PENDING_CANCEL
                    and pending_since is not None and asked_ns - pending_since >= ANSWER_WAIT_NS):
                order.transition(OrderStatus.UNKNOWN, now)
        reconcile_venue(runtime, venue, answer, runtime.unknown_orders)
        if runtime.journal is not None:
            runtime.journal.commit(now)

    def left_working(self) -> list[dict[str, Any]]:
        """Every order not confirmed final: for the log, the report and the supervisor."""
        return [
            {
                "strategy": order.strategy, "venue": venue.name, "client_id": order.client_id,
                "venue_order_id": order.venue_order_id, "symbol": order.symbol, "side": order.side.value,
                "leaves": str(order.leaves_qty), "status": order.status.value,
            }
            for venue, _, order in self.working()
        ]
