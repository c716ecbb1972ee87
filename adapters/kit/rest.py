"""The request/outcome flow every REST order-entry adapter shares (Optimus, Algo724).

A request ends in one of three ways, and the adapters act on which: it never left
(:class:`NotSent`: resend it, or reject the order), it may have reached the venue and its answer
was lost (:class:`OutcomeUnknown`: never call the order rejected, ask again), or the venue
answered. :func:`exchange` sorts httpx's outcomes into these and keeps the link's health
(:class:`RestLink`: ``disconnected`` after so many failures in a row, ``connected`` on the next
answer). The venue-specific parts (paths, envelopes, token shapes) stay in each adapter.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Collection, Iterable
from decimal import Decimal
from typing import Any, Protocol, TypeVar

import anyio
import httpx

from adapters.kit.orders import OrderTracker, TrackedOrder
from adapters.kit.pacing import PacerClosed, WirePacer, WriteHold, WriteTurn
from engine.model import Side
from engine.venue import RateLimit, VenueEvents
from engine.venue.badinput import BadInput
from engine.venue.clock import NS_PER_S, Clock

LOG_FIRST = 5
LOG_EVERY = 1000
#: the sample of an unreadable login/refresh answer: it may carry a token, so it is never logged
WITHHELD = b"<auth answer withheld>"

T = TypeVar("T")


class PacedOrder(TrackedOrder):
    """A tracked order whose placing request waits for the pacer: whether it was asked for and
    whether it has left. Until it leaves, a cancel takes it back (:func:`take_back_unsent`): at a
    venue's budget a burst queues orders for seconds, and one the strategy no longer wants must
    not go live there (it could fill) only to be cancelled a round trip later."""

    __slots__ = ("placing", "left")

    def __init__(self, client_id: str, symbol: str, side: Side, qty: Decimal, price: Decimal | None = None,
                 venue_order_id: str = "") -> None:
        super().__init__(client_id, symbol, side, qty, price, venue_order_id)
        self.placing = False  # its placing request was asked for ...
        self.left = False  # ... and the pacer let it go: from then on the venue may have it


P = TypeVar("P", bound=PacedOrder)


def take_back_unsent(pacer: WirePacer, orders: OrderTracker[P], rec: P, lane: str = "order") -> bool:
    """A cancel of ``rec`` while its placing request has not left (waiting in ``lane`` of the
    pacer, or its task not yet begun): the request is taken back and the order ends cancelled now
    (told after the caller returns). False when the request has left (cancel it at the venue) or
    the order is already final or was never placed here."""
    if not rec.placing or rec.left or rec.final is not None:
        return False
    pacer.take_back_sender(lane, rec)
    orders.taken_back(rec, "its request")
    return True


def still_wanted(rec: PacedOrder) -> None:
    """Raises :class:`PacerClosed` (not sent) when ``rec`` is already final: cancelled while its
    placing request had not left (a token being renewed, a retry's backoff, the pacer's queue)."""
    if rec.final is not None:
        raise PacerClosed(f"order {rec.client_id} was cancelled before it left")


def leaving(rec: PacedOrder) -> None:
    """``rec``'s placing request was granted and is about to be written: from now on the venue may
    have it. Raises :class:`PacerClosed` (not sent) when the order was cancelled since the grant."""
    still_wanted(rec)
    rec.left = True


class NotSent(Exception):
    """The request never left: the venue cannot have acted on it."""


class OutcomeUnknown(Exception):
    """The request may have reached the venue; its answer was lost or unreadable."""


class AuthFailed(Exception):
    """Login or refresh refused."""


class Failed(Protocol):
    """What :func:`exchange` needs of a venue's non-2xx answer."""

    http_status: int

    def describe(self) -> str: ...


class RestLink:
    """One REST adapter's link health and its complaints about what the venue said.

    ``is_closed`` and ``has_session`` are asked at each answer: a closed adapter reports nothing,
    and a link without a session is not ``connected`` again however the venue answers."""

    def __init__(self, label: str, venue: str, sink: VenueEvents, counts: Counter[str], logger: logging.Logger,
                 disconnect_after: int, *, is_closed: Callable[[], bool], has_session: Callable[[], bool],
                 peer: str = "venue", bad: BadInput | None = None, bad_kinds: Collection[str] = ()) -> None:
        self.label = label
        self.venue = venue
        self.sink = sink
        self.counts = counts
        self.log = logger
        self.disconnect_after = disconnect_after
        self.is_closed = is_closed
        self.has_session = has_session
        self.peer = peer
        self.bad = bad
        self.bad_kinds = frozenset(bad_kinds)
        self.status = "disconnected"
        self.failures = 0

    def up(self) -> None:
        """Connected (the login answered)."""
        self.status = "connected"
        self.failures = 0

    def failed(self, why: str) -> None:
        """A request failed: ``disconnect_after`` in a row report ``disconnected``."""
        self.failures += 1
        if self.failures >= self.disconnect_after and self.status == "connected" and not self.is_closed():
            self.status = "disconnected"
            self.log.warning("%s %s: %d failed requests in a row (last: %s): disconnected", self.label, self.venue,
                             self.failures, why)
            self.sink.on_venue_status(self.venue, "disconnected", why)

    def answered(self) -> None:
        """The venue answered: a disconnected link is connected again."""
        self.failures = 0
        if self.status == "disconnected" and not self.is_closed() and self.has_session():
            self.status = "connected"
            self.counts["reconnects"] += 1
            self.sink.on_venue_status(self.venue, "connected", f"the {self.peer} answers again")

    def complain(self, kind: str, message: str, *args: object) -> None:
        """Something the venue said that we cannot use: counted by kind (a bad-input kind also in
        the report's bad-input counts), logged the first times and then every thousandth."""
        if self.bad is not None and kind in self.bad_kinds:
            self.bad.counts[kind] = self.bad.counts.get(kind, 0) + 1
        self.counts[kind] += 1
        n = self.counts[kind]
        if n <= LOG_FIRST or n % LOG_EVERY == 0:
            self.log.error("%s %s %s (#%d): " + message, self.label, self.venue, kind, n, *args)


def with_declared(limits: Iterable[RateLimit], declared: Iterable[RateLimit], scope: str) -> tuple[RateLimit, ...]:
    """The engine's effective limits, plus the adapter's declared ``scope`` budget when the
    config's list does not name that scope (the adapter's own requests still need a pace)."""
    limits = tuple(limits)
    if not any(limit.scope == scope for limit in limits):
        limits += tuple(limit for limit in declared if limit.scope == scope)
    return limits


def new_client(base_url: str, request_timeout_s: Decimal, connect_timeout_s: Decimal, max_connections: int,
               user_agent: str) -> httpx.AsyncClient:
    """The adapter's one client: explicit timeouts (a pool wait counts as a connect: it never
    left), one kept-alive connection per place the pacer lets in flight."""
    timeout = httpx.Timeout(float(request_timeout_s), connect=float(connect_timeout_s),
                            pool=float(connect_timeout_s))
    return httpx.AsyncClient(
        base_url=base_url, timeout=timeout,
        limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        headers={"User-Agent": user_agent, "Accept": "application/json"},
    )


class HeldWrite:
    """httpcore's trace callback for one request, writing it through the pacer's
    :class:`WriteHold`: the turn starts when the client is about to write the request's headers
    and ends when its body is written (or the write failed), so the hold counts the times requests
    reached the socket, not the times the pacer let them go. Between the two a stall (the loop
    busy, the process descheduled, a connection still being opened) moves a request later by a
    varying amount, and the broker counts arrivals: without the hold, the requests a stall delayed
    and those the next window lets go could land in one of the broker's windows. A request the
    transport never traces (a test's mock transport) is not held."""

    __slots__ = ("hold", "lane", "_turn", "traced")

    def __init__(self, hold: WriteHold, lane: str) -> None:
        self.hold = hold
        self.lane = lane
        self._turn: WriteTurn | None = None
        self.traced = False

    async def __call__(self, event: str, info: dict[str, Any]) -> None:
        if event.endswith(".send_request_headers.started"):
            self.traced = True
            self.end()  # a second attempt on another connection: the first one's write ended
            self._turn = await self.hold.turn(self.lane)
        elif event.endswith((".send_request_body.complete", ".send_request_body.failed",
                             ".send_request_headers.failed")):
            self.end()

    def end(self) -> None:
        """The write is over (written, failed or cancelled: either may have left, so it counts)."""
        turn, self._turn = self._turn, None
        if turn is not None:
            turn.end()


async def exchange(link: RestLink, client: httpx.AsyncClient, method: str, path: str, what: str, *,
                   headers: dict[str, str], parse: Callable[[int, bytes], T], failure: type[Any],
                   parse_error: type[Exception], kind_of: Callable[[Exception], str], withhold: bool,
                   params: dict[str, Any] | None = None, content: bytes | None = None,
                   hold: WriteHold | None = None, lane: str = "") -> T:
    """One request and its outcome: NotSent when it provably never left (connect failures, pool
    waits), OutcomeUnknown when it may have been processed (read timeouts, resets, an unreadable
    answer), else the parsed answer (a 5xx counts against the link). ``withhold`` keeps the sample
    of an unreadable answer out of the log (a login's may carry a token). With ``hold``, the
    request is written through it in ``lane`` (:class:`HeldWrite`)."""
    link.counts["messages_out"] += 1
    held = HeldWrite(hold, lane) if hold is not None else None
    try:
        try:
            response = await client.request(method, path, params=params, content=content, headers=headers,
                                            extensions=None if held is None else {"trace": held})
        finally:
            if held is not None:
                held.end()  # cancelled or failed between the two trace events: let the next write go
    except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
        link.failed(f"{what}: {type(exc).__name__}")
        link.counts["not_sent"] += 1
        raise NotSent(f"{type(exc).__name__}: {exc}") from None
    except httpx.TransportError as exc:  # read timeouts, resets: it may have been processed
        link.failed(f"{what}: {type(exc).__name__}")
        link.counts["transport_errors"] += 1
        raise OutcomeUnknown(f"{type(exc).__name__}: {str(exc) or 'no detail'}") from None
    link.counts["messages_in"] += 1
    try:
        result = parse(response.status_code, response.content)
    except parse_error as exc:
        link.failed(f"{what}: unreadable answer")
        sample = WITHHELD if withhold else response.content[:200]
        link.complain(kind_of(exc), "HTTP %d from %s: %s; sample %r", response.status_code, what, exc, sample)
        raise OutcomeUnknown(f"unreadable answer (HTTP {response.status_code}): {exc}") from None
    if isinstance(result, failure):
        failed: Failed = result
        if failed.http_status >= 500:
            link.failed(f"{what}: {failed.describe()}")
            link.counts["http_5xx"] += 1
            return result
        link.counts["http_4xx"] += 1
    link.answered()
    return result


async def resend_unsent(send: Callable[[], Awaitable[T]], retries: int, backoff: Callable[[], Awaitable[None]],
                        closed: Callable[[], bool]) -> T:
    """Send; resend only what provably never left (NotSent), ``retries`` times at most."""
    attempt = 0
    while True:
        try:
            return await send()
        except NotSent:
            attempt += 1
            if attempt > retries or closed():
                raise
            await backoff()


def renewal_due_ns(expires_ns: int, issued_ns: int, margin_s: Decimal) -> int:
    """When to renew a token: ``margin_s`` before it runs out, at half life for short-lived ones."""
    life = expires_ns - issued_ns
    return expires_ns - min(int(margin_s * NS_PER_S), life // 2)


class Background:
    """An adapter's background tasks, each under a scope :meth:`cancel_all` ends, and sleeps on
    the engine's clock (wall or scaled), not the system's."""

    def __init__(self, start_task: Callable[..., None], label: str, venue: str, clock: Clock) -> None:
        self.start_task = start_task
        self.label = label
        self.venue = venue
        self.clock = clock
        self.scopes: set[anyio.CancelScope] = set()

    def spawn(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        self.start_task(self.guarded, fn, args, name=f"{self.label}-{self.venue}-{fn.__name__}")

    async def guarded(self, fn: Callable[..., Awaitable[Any]], args: tuple[Any, ...]) -> None:
        """A task ``close`` can cancel (a failure is contained and logged by ``start_task``)."""
        with anyio.CancelScope() as scope:
            self.scopes.add(scope)
            try:
                await fn(*args)
            finally:
                self.scopes.discard(scope)

    def cancel_all(self) -> None:
        for scope in list(self.scopes):
            scope.cancel()

    async def sleep_until(self, when_ns: int) -> None:
        if when_ns <= self.clock.now_ns():
            await anyio.sleep(0)
            return
        event = anyio.Event()
        timer = self.clock.call_at(when_ns, event.set)
        try:
            await event.wait()
        finally:
            timer.cancel()

    async def sleep(self, seconds: Decimal) -> None:
        await self.sleep_until(self.clock.now_ns() + int(seconds * NS_PER_S))


class Session(Protocol):
    """What :class:`TokenKeeper` needs of a venue's login answer."""

    access_token: str
    access_expires_ns: int


R = TypeVar("R")


class TokenKeeper:
    """Keeps an adapter's access token fresh: renewed ahead of its expiry by :meth:`run`, and on
    a 401 by :meth:`authorized`. How a venue refreshes or logs in stays the adapter's ``renew``
    (``renew(stale)`` replaces ``stale`` unless another task already did)."""

    def __init__(self, link: RestLink, tasks: Background, renew: Callable[[Any], Awaitable[None]],
                 session: Callable[[], Session | None], issued_ns: Callable[[], int], margin_s: Decimal,
                 idle_s: Decimal) -> None:
        self.link = link
        self.tasks = tasks
        self.renew = renew
        self.session = session
        self.issued_ns = issued_ns
        self.margin_s = margin_s
        self.idle_s = idle_s

    async def run(self) -> None:
        """Renew each token ``margin_s`` before it runs out (at half life for short ones)."""
        while not self.link.is_closed():
            session = self.session()
            if session is None:
                await self.tasks.sleep(self.idle_s)
                continue
            await self.tasks.sleep_until(renewal_due_ns(session.access_expires_ns, self.issued_ns(), self.margin_s))
            if self.link.is_closed() or self.session() is not session:
                continue  # renewed meanwhile (a 401 on some request)
            try:
                await self.renew(session)
            except (NotSent, OutcomeUnknown, AuthFailed) as exc:
                self.link.log.warning("%s %s: token renewal failed (%s); retrying", self.link.label, self.link.venue,
                                      exc)
                await self.tasks.sleep(self.idle_s)

    async def authorized(self, send: Callable[[str], Awaitable[R]], refused: Callable[[R], bool],
                         describe: Callable[[R], str]) -> R:
        """``send(token)`` with a valid token; a 401 (``refused``) renews it and sends once more
        (a request refused for its token was not processed, so resending cannot duplicate it)."""
        session = self.session()
        if session is None or self.tasks.clock.now_ns() >= session.access_expires_ns:
            try:
                await self.renew(session)
            except (OutcomeUnknown, AuthFailed) as exc:  # no token, so the request itself never left
                raise NotSent(f"no valid access token: {exc}") from None
            session = self.session()
        assert session is not None
        result = await send(session.access_token)
        if refused(result):
            self.link.counts["auth_retries"] += 1
            try:
                await self.renew(session)
            except (NotSent, OutcomeUnknown, AuthFailed) as exc:
                self.link.log.error("%s %s: token renewal after %s failed: %s", self.link.label, self.link.venue,
                                    describe(result), exc)
                return result
            renewed = self.session()
            assert renewed is not None
            result = await send(renewed.access_token)
        return result
