"""The Optimus broker adapter: PSX order entry over REST, order updates over webhooks.

Execution only: market data for the same PSX symbols comes from the PSX Live Feed adapter, so
``subscribe`` does nothing here.

How an order travels (all requests run as background tasks, so ``submit``/``cancel`` return at once):

- ``POST /orders`` with the client order id as idempotency key (OPT-8). The broker's answer is
  "pending" (accepted by Optimus); the exchange's word comes later as a webhook (``order.confirmed``,
  ``order.execution``, ``order.rejected``, ``order.cancelled``). A pre-trade refusal comes back at
  once as an error envelope whose 4-digit code the engine uses as is (document section 13).
- A transport error, a timeout, a 5xx or a garbage answer leaves the order's outcome **unknown**:
  never guessed rejected. A status query (``POST /orders/status``) resolves it; "not found" is
  believed only once ``unknown_grace_s`` has passed since the request was sent (a slow request may
  still arrive), and then reported as 9001 "the broker never received it".
- Webhooks may be lost or repeated. They are de-duplicated on ``event_id``; fills on the broker's
  ``execution_id``; statuses by never reporting the same state twice. A poll of the open orders
  every ``poll_interval_s`` finds what a lost webhook did not say, and queries the order's status
  (with its executions) for the details.
- Tokens: the JWT access token (1 h) is renewed with the refresh token (7 d) ``refresh_margin_s``
  before it expires (at half its life for tokens shorter than twice that); a 401 / 1002 triggers a renewal
  and one resend; a refused refresh falls back to a new login.
- ``disconnect_after_failures`` failed requests in a row report the venue ``disconnected`` (the
  engine marks the open orders unknown and refuses new ones); the first answer after that reports
  ``connected`` and the engine reconciles through :meth:`query_open_orders`, :meth:`query_order`
  and :meth:`query_fills`.

Credentials and the webhook secret are read from environment variables or files named in the
options, never from the config itself, and never logged.
"""

from __future__ import annotations

import contextlib
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

import anyio
import httpx

from adapters.kit import rest
from adapters.kit.credentials import Secret, read_secret
from adapters.kit.orders import OrderTracker
from adapters.kit.pacing import ORDER_LANES, LaneSpec, PacerClosed, WirePacer
from adapters.kit.rest import AuthFailed, NotSent, OutcomeUnknown
from adapters.optimus import codec
from adapters.optimus.codec import (
    IDEMPOTENCY_HEADER,
    ORDER_EVENTS,
    CodecError,
    Execution,
    Failure,
    OrderView,
    Paths,
    Success,
    Tokens,
    WebhookEvent,
)
from adapters.optimus.options import OptimusOptions
from adapters.optimus.webhooks import HttpServer, WebhookReceiver, parse_listen
from engine.model import ACCOUNT_ALERT, MARGIN_CALL, AccountEvent, Fill, Instrument, Order, OrderStatus, VenueOrder
from engine.venue import Adapter, AdapterOptions, Capabilities, RateLimit, VenueEvents
from engine.venue.badinput import BadInput
from engine.venue.clock import NS_PER_S, Clock
from engine.venue.rejects import Reject

__all__ = ["OptimusAdapter", "OptimusOptions"]

log = logging.getLogger("engine.optimus")

NOT_FOUND = 404


class ClosedBeforeSent(NotSent):
    """The adapter closed while the request waited for the rate limit: ``close`` reports it."""


class _Tracked(rest.PacedOrder):
    """One of our orders (what the engine was told: :class:`adapters.kit.orders.TrackedOrder`) and
    the state of the requests this adapter makes for it."""

    __slots__ = ("in_flight", "sent_ns", "lock", "cancels")

    def __init__(self, order: Order) -> None:
        super().__init__(order.client_id, order.symbol, order.side, order.qty, order.price, order.venue_order_id)
        self.in_flight = False  # the placing request awaits its answer
        self.sent_ns = 0
        self.lock = anyio.Lock()  # one request at a time per order: a cancel never overtakes its placing
        self.cancels = 0


#: Optimus's account webhooks (000, "Webhooks") by the engine's names for them
ACCOUNT_EVENTS = {"margin.call": MARGIN_CALL, "account.alert": ACCOUNT_ALERT}


class OptimusAdapter(Adapter):
    """Optimus Capital REST + webhooks (VENUES.md section 1)."""

    name: ClassVar[str] = "optimus"
    # VENUES.md 6.9: no amend, no mass cancel, no cancel-on-disconnect, IOC/FOK as TIF (OPT-7),
    # no GTC (OPT-9), no post-only.
    capabilities: ClassVar[Capabilities] = Capabilities(
        amend=False, mass_cancel=False, post_only="none", ioc=True, fok=True, gtc=False,
        market_orders=True, mmp=False, cancel_on_disconnect=False, self_trade_prevention=False,
    )
    # Document section 11. "all" is what the engine's buckets enforce on orders and cancels; the
    # adapter keeps 5 of the documented 100/s for its own status polls and reconciliation queries
    # ("queries"), so together they never exceed the broker's number. "auth" is enforced by the
    # adapter on login/refresh; it calls no public data API (market data comes from the Live Feed).
    rate_limits: ClassVar[tuple[RateLimit, ...]] = (
        RateLimit("all", 95, Decimal(1), None,
                  source="document section 11: Trading APIs 100 requests/second/user, less the adapter's 5/s queries"),
        RateLimit("queries", 5, Decimal(1), None, source="the adapter's status polls, inside the 100/s trading budget"),
        RateLimit("auth", 5, Decimal(60), None, source="document section 11: Authentication APIs 5 requests/minute/IP"),
        RateLimit("public_data", 200, Decimal(60), None,
                  source="document section 11: Public Data APIs 200 requests/minute/IP (not used by this adapter)"),
    )
    options_model: ClassVar[type[AdapterOptions]] = OptimusOptions
    whole_shares: ClassVar[bool] = True  # PSX shares: lots of 1 (regular market) or 500 (ETFs, futures)

    def __init__(
        self,
        venue: str,
        options: AdapterOptions,
        instruments: Iterable[Instrument],
        clock: Clock,
        sink: VenueEvents,
        seed: int = 0,
    ) -> None:
        super().__init__(venue, options, instruments, clock, sink, seed)
        options = self.options  # a OptimusOptions: Adapter.__init__ validates it against options_model
        self.opts = options
        self._username = read_secret(options.username_env, None, "optimus username")
        self._password = Secret(read_secret(options.password_env, options.password_file, "optimus password"))
        webhook_secret = read_secret(options.webhook_secret_env, options.webhook_secret_file, "optimus webhook secret")
        self._client: httpx.AsyncClient | None = None
        self._tokens: Tokens | None = None
        self._tokens_at_ns = 0
        self._token_lock = anyio.Lock()
        self._closed = True
        # cancels asked for whose first request has not yet reached the pacer: close() reports them
        self._cancels_not_started: set[_Tracked] = set()
        self.counts: Counter[str] = Counter()
        self._tasks = rest.Background(self.start_task, "optimus", venue, clock)
        self.link = rest.RestLink("optimus", venue, sink, self.counts, log, options.disconnect_after_failures,
                                  is_closed=lambda: self._closed, has_session=lambda: self._tokens is not None,
                                  peer="broker")
        self._keeper = rest.TokenKeeper(self.link, self._tasks, self._renew_tokens, lambda: self._tokens,
                                        lambda: self._tokens_at_ns, options.refresh_margin_s, options.poll_interval_s)
        # every order of the run (late webhooks find theirs); what the engine was told of each
        self._orders: OrderTracker[_Tracked] = OrderTracker(venue, sink, clock.now_ns, counts=self.counts,
                                                            logger=log, defer=partial(clock.call_later, 0))
        self._limits = self.rate_limits
        self._pacer = self._new_pacer()
        host, port = parse_listen(options.webhook_listen)
        self.bad = BadInput(log, f"optimus {venue}")
        self._state_path: Path | None = None  # set_state_path: where the webhook delivery ids outlive us
        #: False once the broker answered the order listing (``/orders/open``, ``/orders/executions``)
        #: with "no such endpoint": 000 documents neither (OPT-3), so each order's status stands in
        self._listing: bool | None = None
        self.receiver = WebhookReceiver(
            [webhook_secret.encode()], clock, self._on_webhook, path=options.webhook_path,
            tolerance_s=options.webhook_tolerance_s, venue=venue, bad_input=self.bad,
        )
        self._server = HttpServer(
            self._on_http, host, port, name=f"optimus {venue} webhooks", max_body=options.webhook_max_body,
            read_timeout_s=float(options.webhook_read_timeout_s), max_connections=options.webhook_max_connections,
            bad_input=self.bad,
        )

    def set_rate_limits(self, limits: tuple[RateLimit, ...]) -> tuple[RateLimit, ...]:
        """Pace every request at departure with the engine's effective limits, and give the gate
        the limits requests really leave at. The login's own budget (5/minute per IP, not the
        trading account's) stays the declared one when the config's list does not name ``auth``."""
        limits = rest.with_declared(limits, self.rate_limits, "auth")
        self._limits = limits
        self._pacer.set_limits(limits, _lanes(limits))
        return self._pacer.departure_limits

    def _new_pacer(self) -> WirePacer:
        # one place per kept-alive connection: a request only leaves when a connection is free
        return WirePacer(self.venue, self._limits, _lanes(self._limits), self.clock,
                         max_in_flight=self.opts.max_connections)

    # ---- lifecycle -----------------------------------------------------------------------
    async def connect(self) -> None:
        """Start the webhook receiver, log in, start token upkeep and polling, report ``connected``.
        Raises ``ConnectionError`` (with the broker's words, never a secret) when login fails."""
        if self._task_group is None:
            raise RuntimeError(f"optimus venue {self.venue!r}: bind(task_group) must come before connect()")
        opts = self.opts
        self._closed = False
        if self._pacer.closed:  # connected again after a close
            self._pacer = self._new_pacer()
        self._client = rest.new_client(opts.base_url, opts.request_timeout_s, opts.connect_timeout_s,
                                       opts.max_connections, "psx-strategy-engine optimus adapter")
        try:
            self.receiver.open_store(self._state_path)
            await self._server.start()
            await self._renew_tokens(None)
        except (NotSent, OutcomeUnknown, AuthFailed, OSError) as exc:
            await self.close()
            raise ConnectionError(f"optimus venue {self.venue!r}: cannot log in at {opts.base_url}: {exc}") from None
        self._spawn(self._keeper.run)
        self._spawn(self._poll_loop)
        self.link.up()
        log.info("optimus %s connected to %s; webhooks on %s", self.venue, opts.base_url, self.webhook_url)
        self.sink.on_venue_status(self.venue, "connected", f"webhooks on {self.webhook_url}")

    async def close(self) -> None:
        """Stop the background work, the receiver and the HTTP client. Never raises."""
        self._closed = True
        self._unsent(self._pacer.close())
        self._cancels_never_started()
        self._tasks.cancel_all()
        try:
            await self._server.close()
        except Exception:
            log.exception("optimus %s: closing the webhook receiver failed", self.venue)
        self.receiver.close()
        client, self._client = self._client, None
        if client is not None:
            try:
                await client.aclose()
            except Exception:
                log.exception("optimus %s: closing the HTTP client failed", self.venue)

    def set_state_path(self, path: Path) -> None:
        """Keep the applied webhook delivery ids there, so a replay after a restart is caught."""
        self._state_path = Path(path)

    def bad_input(self) -> dict[str, int]:
        return dict(self.bad.counts)

    @property
    def webhook_url(self) -> str:
        """Where the broker must POST webhooks (the receiver's bound address and path)."""
        return self._server.url + self.opts.webhook_path

    def subscribe(self, symbols: Iterable[str]) -> None:
        """Market data comes from the PSX Live Feed adapter; Optimus carries orders only."""
        return None

    def stats(self) -> dict[str, int]:
        """Counters for the report: ``messages_in`` (answers and webhooks), ``messages_out``
        (requests), ``reconnects``, ``writes_held`` (requests the write hold kept back after a
        stall), and every error kind seen."""
        out = dict(self.counts)
        for key in ("messages_in", "messages_out", "reconnects"):
            out.setdefault(key, 0)
        for kind, n in self.receiver.counts.items():
            out[f"webhook_{kind}"] = n
        out["writes_held"] = self._pacer.hold.held  # requests a stall after their release held back
        return out

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "venue": self.venue,
            "base_url": self.opts.base_url,
            "webhook_url": self.webhook_url if not self._closed else None,
            "poll_interval_s": str(self.opts.poll_interval_s),
            **self.stats(),
        }

    # ---- background tasks ----------------------------------------------------------------
    def _spawn(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        self._tasks.spawn(fn, *args)

    async def _sleep(self, seconds: Decimal) -> None:
        await self._tasks.sleep(seconds)

    async def _poll_loop(self) -> None:
        interval = self.opts.poll_interval_s
        while not self._closed:
            await self._sleep(interval)
            if not self._closed:
                await self._poll_once()

    async def _poll_once(self) -> None:
        """One look at the open orders: the backup for lost webhooks and the link's heartbeat."""
        if self._listing is False:
            await self._poll_each()
            return
        try:
            result = await self._query(Paths.OPEN_ORDERS, {})
        except (NotSent, OutcomeUnknown):
            return
        if isinstance(result, Failure):
            if self._no_listing(result):
                await self._poll_each()
            else:
                self._complain("poll_failed", "open orders poll: %s", result.describe())
            return
        self._listing = True
        try:
            listed = {view.client_order_id: view for view in codec.decode_orders(result.data)}
        except CodecError as exc:
            self._complain("malformed", "open orders answer: %s", exc)
            return
        for rec in self._orders.open_records():
            if rec.final is not None or rec.in_flight:
                continue
            view = listed.get(rec.client_id)
            if rec.unknown or view is None or view.filled_quantity != rec.cum_qty:
                await self._resolve(rec)  # finished, filled meanwhile, or never confirmed: ask for details
            else:
                self._apply_view(rec, view)

    async def _poll_each(self) -> None:
        """The poll on a broker without an order listing: each open order's status in turn; with
        none to ask about, the buying power (000's own read) keeps the link's heartbeat."""
        asked = False
        for rec in self._orders.open_records():
            if rec.final is None and not rec.in_flight:
                asked = True
                await self._resolve(rec)
        if not asked:
            with contextlib.suppress(NotSent, OutcomeUnknown):
                await self._query(Paths.BUYING_POWER, {})  # the answer only proves the link

    def _no_listing(self, result: Failure) -> bool:
        """True (and remembered) when a listing request was answered "no such endpoint": HTTP 404
        without a business code (a document-literal broker: 000 has no order listing)."""
        if result.http_status != NOT_FOUND or result.error_code is not None:
            return False
        if self._listing is not False:
            self._listing = False
            log.warning("optimus %s: the broker lists no orders (%s); asking each order's status instead",
                        self.venue, result.describe())
        return True

    # ---- HTTP ----------------------------------------------------------------------------
    async def _post(
        self, path: str, body: dict[str, Any], *, token: str | None, idempotency_key: str | None = None,
        lane: str, rec: _Tracked | None = None,
    ) -> Success | Failure:
        """One request on the wire, leaving only when ``lane``'s share of the venue's budget has
        room and a connection is free: the broker counts arrivals, so a request paced earlier and
        then queued for a connection would still arrive in a bunch."""
        if self._client is None:
            raise NotSent("adapter is closed")
        try:
            if rec is not None and lane == "order":
                rest.still_wanted(rec)  # cancelled before this attempt queued: no token spent on it
            async with self._pacer.sending(lane, rec):
                if rec is not None and lane == "order":
                    rest.leaving(rec)  # cancelled since the grant: it never leaves
                    rec.sent_ns = self.clock.now_ns()  # the grace for "not found" runs from the departure
                return await self._post_now(path, body, token, idempotency_key, lane)
        except PacerClosed as exc:
            raise ClosedBeforeSent(str(exc)) from None

    async def _post_now(
        self, path: str, body: dict[str, Any], token: str | None, idempotency_key: str | None, lane: str
    ) -> Success | Failure:
        client = self._client
        if client is None:
            raise NotSent("adapter is closed")
        headers = {"Content-Type": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        if idempotency_key is not None:
            headers[IDEMPOTENCY_HEADER] = idempotency_key
        return await rest.exchange(self.link, client, "POST", path, path, headers=headers, content=codec.dumps(body),
                                   parse=codec.parse_envelope, failure=Failure, parse_error=CodecError,
                                   kind_of=_malformed, withhold=path in (Paths.LOGIN, Paths.REFRESH),
                                   hold=self._pacer.hold, lane=lane)

    async def _call(
        self, path: str, body: dict[str, Any], *, idempotency_key: str | None = None, lane: str = "query",
        rec: _Tracked | None = None,
    ) -> Success | Failure:
        """An authenticated request; a 401 renews the token and sends it once more (a request
        refused for its token was not processed, so resending cannot duplicate it)."""
        return await self._keeper.authorized(
            lambda token: self._post(path, body, token=token, idempotency_key=idempotency_key, lane=lane, rec=rec),
            lambda result: isinstance(result, Failure) and codec.classify_order_failure(result) == "auth", _describe)

    async def _query(self, path: str, body: dict[str, Any]) -> Success | Failure:
        """A read (status, listing): paced by the adapter's own share of the trading budget."""
        return await self._call(path, body, lane="query")

    async def _renew_tokens(self, stale: Tokens | None) -> None:
        """Refresh (or log in) unless another task already replaced ``stale``. Auth calls are paced
        by the document's 5/minute so a broken refresh never hammers the broker."""
        async with self._token_lock:
            current = self._tokens
            if current is not stale and current is not None and self.clock.now_ns() < current.access_expires_ns:
                return
            if current is not None and self.clock.now_ns() < current.refresh_expires_ns:
                result = await self._post(Paths.REFRESH, codec.encode_refresh(current.refresh_token), token=None,
                                          lane="auth")
                if isinstance(result, Success):
                    self._set_tokens(result)
                    self.counts["token_refreshes"] += 1
                    return
                if codec.classify_order_failure(result) != "auth":
                    raise AuthFailed(result.describe())
                log.warning("optimus %s: refresh token refused (%s); logging in again", self.venue, result.describe())
            result = await self._post(
                Paths.LOGIN, codec.encode_login(self._username, self._password.value), token=None, lane="auth"
            )
            if isinstance(result, Failure):
                raise AuthFailed(result.describe())
            self._set_tokens(result)
            self.counts["logins"] += 1

    def _set_tokens(self, result: Success) -> None:
        now = self.clock.now_ns()
        try:
            self._tokens = codec.decode_tokens(result.data, now)
        except CodecError as exc:
            self._complain("malformed", "token answer: %s", exc)
            raise AuthFailed(f"unreadable token answer: {exc}") from None
        self._tokens_at_ns = now

    def _complain(self, kind: str, message: str, *args: object) -> None:
        self.link.complain(kind, message, *args)

    # ---- orders --------------------------------------------------------------------------
    def _track(self, order: Order) -> _Tracked:
        rec = self._orders.get(order.client_id)
        if rec is None:
            rec = self._orders.add(_Tracked(order))
        return rec

    def submit(self, order: Order) -> None:
        rec = self._track(order)
        try:
            body = codec.encode_place(order)
        except CodecError as exc:  # the engine's gate refuses these first; never send half an order
            self._spawn(self._finish_later, rec, OrderStatus.REJECTED, int(Reject.ORDER_TYPE_NOT_SUPPORTED), str(exc))
            return
        rec.placing = True
        self._spawn(self._place, rec, body)

    def cancel(self, order: Order) -> None:
        rec = self._track(order)
        if rest.take_back_unsent(self._pacer, self._orders, rec):
            return  # its request had not left: the order is cancelled here, never live at the broker
        self._cancels_not_started.add(rec)
        self._spawn(self._cancel, rec)

    def _cancels_never_started(self) -> None:
        """Cancels asked for just before close whose task never reached the pacer (still waiting for
        the placing answer, or not yet scheduled): they never left either, so they are refused like
        the ones the pacer held, and the engine does not wait for a cancel that will never come."""
        waiting, self._cancels_not_started = self._cancels_not_started, set()
        for rec in waiting:
            if rec.final is None:
                self._refuse_cancel(rec, int(Reject.BACKEND_CONNECTIVITY),
                                    "cancel not sent: the adapter closed before it left")

    def amend(self, order: Order, price: Decimal | None, qty: Decimal | None) -> None:
        """Optimus offers no modification (VENUES.md 1.8); the engine refuses amends before they get
        here (capabilities.amend is False), so this only answers a caller that did not ask."""
        rec = self._track(order)
        self._spawn(self._refuse_amend, rec, order.live_status())

    async def _refuse_amend(self, rec: _Tracked, live: OrderStatus) -> None:
        self._orders.answer(rec, int(Reject.ORDER_TYPE_NOT_SUPPORTED), "Optimus offers no order modification",
                            status=live)

    async def _finish_later(self, rec: _Tracked, status: OrderStatus, code: int | None, reason: str) -> None:
        self._finish(rec, status, code, reason)

    async def _place(self, rec: _Tracked, body: dict[str, Any]) -> None:
        async with rec.lock:
            if rec.final is not None:
                return  # cancelled before its task began
            rec.in_flight = True
            rec.sent_ns = self.clock.now_ns()
            try:
                result = await self._send_with_retries(Paths.ORDERS, body, rec.client_id, "order", rec)
            except NotSent as exc:
                rec.in_flight = False
                self._finish(rec, OrderStatus.REJECTED, int(Reject.BACKEND_CONNECTIVITY), f"order not sent: {exc}")
                return
            except OutcomeUnknown as exc:
                rec.in_flight = False
                self._mark_unknown(rec, str(exc))
            else:
                rec.in_flight = False
                self._placed(rec, result)
        if rec.unknown:
            await self._resolve(rec)

    async def _send_with_retries(
        self, path: str, body: dict[str, Any], key: str, lane: str, rec: _Tracked
    ) -> Success | Failure:
        """Send; resend only what provably never left (a connect failure), with the same key."""
        return await rest.resend_unsent(lambda: self._call(path, body, idempotency_key=key, lane=lane, rec=rec),
                                        self.opts.connect_retries, lambda: self._sleep(self.opts.retry_backoff_s),
                                        lambda: self._closed or rec.final is not None)

    def _unsent(self, waiting: list[tuple[str, Any]]) -> None:
        """Requests the pacer still held when the adapter closed: they never left, so an order is
        rejected as not sent and a cancel refused (the order still works at the broker, and the
        engine must hear so rather than wait for a cancel that will never come)."""
        why = "the adapter closed before the venue's rate limit let it leave"
        for lane, rec in waiting:
            if not isinstance(rec, _Tracked) or rec.final is not None:
                continue
            if lane == "order":
                self._finish(rec, OrderStatus.REJECTED, int(Reject.BACKEND_CONNECTIVITY), f"order not sent: {why}")
            elif lane == "cancel":
                self._refuse_cancel(rec, int(Reject.BACKEND_CONNECTIVITY), f"cancel not sent: {why}")

    def _placed(self, rec: _Tracked, result: Success | Failure) -> None:
        if isinstance(result, Success):
            try:
                view = codec.decode_order(result.data)
            except CodecError as exc:
                self._complain("malformed", "order answer for %s: %s", rec.client_id, exc)
                self._mark_unknown(rec, f"unreadable answer: {exc}")
                return
            self._apply_view(rec, view)
            return
        outcome = codec.classify_order_failure(result)
        if outcome == "rejected" or outcome == "auth":  # auth: still refused after a renewal: not placed
            code = result.engine_code
            reason = result.message or codec.BROKER_ERRORS.get(code, "")
            if result.error_code is not None and result.error_code != code:
                reason += f" (broker code {result.error_code})"
            self._orders.bind(rec, result.details.get("order_id"))
            self._finish(rec, OrderStatus.REJECTED, code, reason)
        else:  # 5xx, 9001, or 3002 (the broker already holds this key): it may exist
            self._mark_unknown(rec, result.describe())

    def _mark_unknown(self, rec: _Tracked, why: str) -> None:
        self._orders.mark_unknown(rec, f"{why}; resolving by status query")

    async def _resolve(self, rec: _Tracked) -> None:
        """Ask the broker for the order (with its executions) and report what it says."""
        self.counts["status_queries"] += 1
        try:
            result = await self._query(Paths.STATUS, codec.encode_status(rec.client_id))
        except (NotSent, OutcomeUnknown):
            return  # still unknown: the next poll asks again
        if isinstance(result, Failure):
            if result.http_status == NOT_FOUND and result.error_code is None:
                self._not_found(rec)
            else:
                self._complain("status_failed", "status of %s: %s", rec.client_id, result.describe())
            return
        try:
            view = codec.decode_order(result.data)
        except CodecError as exc:
            self._complain("malformed", "status answer for %s: %s", rec.client_id, exc)
            return
        if view.client_order_id != rec.client_id:
            self._complain("malformed", "status answer for %s names %s", rec.client_id, view.client_order_id)
            return
        self._apply_view(rec, view)

    def _not_found(self, rec: _Tracked) -> None:
        if rec.in_flight:
            return
        waited = self.clock.now_ns() - rec.sent_ns
        if not rec.unknown:
            if not rec.acked:  # sent, answered "pending", then forgotten? say so, keep waiting for the truth
                self._complain("lost_order", "broker answered pending for %s but now says not found", rec.client_id)
            return
        if waited < int(self.opts.unknown_grace_s * NS_PER_S):
            return  # a slow request may still arrive: ask again at the next poll
        self._orders.mark_known(rec)
        self._finish(rec, OrderStatus.REJECTED, int(Reject.BACKEND_CONNECTIVITY),
                     "the broker has no record of this order: its request was lost (status query)")

    async def _cancel(self, rec: _Tracked) -> None:
        """Send the cancel; the cancelled state itself comes from ``order.cancelled`` or the poll.
        A cancel whose answer was lost is checked by a status query and sent again while the
        order still works; one that cannot be delivered is reported refused, so the engine leaves
        pending_cancel and decides again."""
        async with rec.lock:  # after the placing answer, never before it
            why = "cancel could not be delivered"
            code = int(Reject.BACKEND_CONNECTIVITY)
            for _ in range(self.opts.connect_retries + 1):
                if self._closed:
                    return  # a first attempt never started is reported by close()
                self._cancels_not_started.discard(rec)
                if rec.final is not None:
                    return
                rec.cancels += 1
                key = f"{rec.client_id}-cxl{rec.cancels}"
                try:
                    result = await self._send_with_retries(
                        Paths.CANCEL, codec.encode_cancel(rec.client_id, rec.venue_order_id, key), key, "cancel",
                        rec
                    )
                except ClosedBeforeSent:
                    return  # close() told the engine this cancel never left
                except NotSent as exc:
                    why = f"cancel not sent: {exc}"
                    break
                except OutcomeUnknown as exc:
                    why = f"cancel unanswered: {exc}"
                    await self._resolve(rec)
                    continue
                if isinstance(result, Success):
                    try:
                        self._apply_view(rec, codec.decode_order(result.data))
                    except CodecError as exc:
                        self._complain("malformed", "cancel answer for %s: %s", rec.client_id, exc)
                    return
                outcome = codec.classify_order_failure(result)
                if outcome == "duplicate":
                    return  # the broker already works on this cancel
                why = f"cancel refused: {result.describe()}"
                code = result.engine_code
                await self._resolve(rec)
                if outcome != "unknown":
                    break
            if rec.final is None:
                await self._resolve(rec)
            if rec.final is None:
                self._refuse_cancel(rec, code, why)

    def _refuse_cancel(self, rec: _Tracked, code: int, reason: str) -> None:
        """The order is still working: tell the engine the cancel failed (it leaves pending_cancel)."""
        log.warning("optimus %s: %s: %s", self.venue, rec.client_id, reason)
        self._orders.answer(rec, code, reason, status=rec.live)

    # ---- applying the broker's word (answers, webhooks, polls: all idempotent) ------------
    def _apply_view(self, rec: _Tracked, view: OrderView) -> None:
        self._orders.bind(rec, view.order_id)
        self._orders.mark_known(rec)  # the broker has it
        for execution in sorted(view.executions, key=_execution_ts):
            self._execution(rec, execution)
        status = view.status
        if status is OrderStatus.NEW or status is OrderStatus.PARTIALLY_FILLED:
            self._ack(rec)
        elif status is OrderStatus.FILLED:
            if rec.cum_qty < view.filled_quantity:
                self._complain("fills_missing", "%s filled at the broker, %s of %s executions seen",
                               rec.client_id, rec.cum_qty, view.filled_quantity)
        elif status is OrderStatus.REJECTED:
            code = codec.order_reject_code(view.reject_code)
            self._finish(rec, status, code, view.reason or codec.BROKER_ERRORS.get(code, ""))
        elif status is not None:  # cancelled, expired
            self._finish(rec, status, None, view.reason)

    def _ack(self, rec: _Tracked) -> None:
        self._orders.ack(rec)

    def _execution(self, rec: _Tracked, execution: Execution) -> None:
        """Book and deliver one execution once (its NEW first: an execution proves the acceptance)."""
        self._orders.fill(rec, execution.to_fill(self.venue))

    def _finish(self, rec: _Tracked, status: OrderStatus, code: int | None, reason: str) -> None:
        self._orders.finish(rec, status, code, reason)

    # ---- webhooks ------------------------------------------------------------------------
    async def _on_http(self, request: Any) -> Any:
        self.counts["messages_in"] += 1
        return await self.receiver.handle(request)

    def _on_webhook(self, event: WebhookEvent) -> None:
        """Apply one verified, new event. Raises CodecError on bad data (answered 400, counted)."""
        if event.event not in ORDER_EVENTS:
            # margin.call / account.alert: the engine's to count, log, tell and act on (issue 20)
            self.counts[event.event] += 1
            kind = ACCOUNT_EVENTS.get(event.event, event.event.replace(".", "_"))
            self.sink.on_account_event(AccountEvent(self.venue, kind, event.occurred_ns,
                                                    tuple(event.data.items()), event.event_id))
            return
        kind = event.event
        try:  # all of the event's data decoded before any of it is applied
            view = event.order()
            execution = event.execution() if kind == "order.execution" else None
        except CodecError:
            raise
        except Exception as exc:  # the codec should raise only CodecError (issue 17 item 2); until it does
            raise CodecError(f"undecodable {kind} data: {type(exc).__name__}") from None
        rec = self._orders.get(view.client_order_id) or self._orders.by_venue_id(view.order_id)
        if rec is None:
            self._unknown_order(event, view, execution)
            return
        self._orders.bind(rec, view.order_id)
        self._orders.mark_known(rec)
        if execution is not None:
            self._execution(rec, execution)
            if view.filled_quantity > rec.cum_qty:  # an earlier execution's webhook was lost
                self._spawn(self._resolve, rec)
        elif kind == "order.confirmed":
            self._ack(rec)
            if view.filled_quantity > rec.cum_qty:
                self._spawn(self._resolve, rec)
        elif kind == "order.rejected":
            code = codec.order_reject_code(view.reject_code)
            self._finish(rec, OrderStatus.REJECTED, code, view.reason or codec.BROKER_ERRORS.get(code, ""))
        else:  # order.cancelled: "expired" rides on it too (the document has no expiry event, OPT-5)
            if view.filled_quantity > rec.cum_qty:
                self._spawn(self._resolve, rec)  # fetch the missing fills first; it reports the end too
            elif view.status is not None:
                self._finish(rec, view.status, None, view.reason)

    def _unknown_order(self, event: WebhookEvent, view: OrderView, execution: Execution | None) -> None:
        """Not an order this adapter sent (or one from before a restart): counted, logged, and
        passed on so the engine records it rather than it vanishing here."""
        self._complain("webhook_unknown_order", "%s %s for unknown order %s (broker id %s)",
                       event.event, event.event_id, view.client_order_id, view.order_id)
        if execution is not None:
            self._orders.untracked_fill(execution.to_fill(self.venue))
        elif view.status is not None:
            code = codec.order_reject_code(view.reject_code) if view.status is OrderStatus.REJECTED else None
            self._orders.untracked_update(view.client_order_id, view.status, code, view.reason, view.order_id)

    # ---- reconciliation queries ----------------------------------------------------------
    async def _answer(self, path: str, body: dict[str, Any]) -> Success | Failure:
        result = await self._query(path, body)
        if isinstance(result, Failure) and result.http_status != NOT_FOUND:
            raise ConnectionError(f"optimus {self.venue}: {path}: {result.describe()}")
        return result

    async def query_open_orders(self) -> list[VenueOrder]:
        """Every order the broker still works for the account (``POST /orders/open``). A broker
        without that listing (000 documents none): the open orders this instance tracks, each by
        its status; after a restart none, and the engine asks for each of its orders by id."""
        if self._listing is False:
            return await self._open_by_status()
        try:
            result = await self._answer(Paths.OPEN_ORDERS, {})
        except (NotSent, OutcomeUnknown) as exc:
            raise ConnectionError(f"optimus {self.venue}: open orders: {exc}") from None
        if isinstance(result, Failure):
            if self._no_listing(result):
                return await self._open_by_status()
            raise ConnectionError(f"optimus {self.venue}: open orders: {result.describe()}")
        self._listing = True
        views = codec.decode_orders(result.data)
        for view in views:
            rec = self._orders.get(view.client_order_id)
            if rec is not None:
                self._orders.bind(rec, view.order_id)
        return [view.to_venue_order(self.venue) for view in views]

    async def _open_by_status(self) -> list[VenueOrder]:
        found = [await self.query_order(rec.client_id) for rec in self._orders.open_records()]
        return [vo for vo in found if vo is not None and vo.status in (OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED)]

    async def query_order(self, client_id: str) -> VenueOrder | None:
        """One order by our id; None when the broker never saw it."""
        try:
            result = await self._answer(Paths.STATUS, codec.encode_status(client_id))
        except (NotSent, OutcomeUnknown) as exc:
            raise ConnectionError(f"optimus {self.venue}: status of {client_id}: {exc}") from None
        if isinstance(result, Failure):
            return None
        view = codec.decode_order(result.data)
        rec = self._orders.get(client_id)
        if rec is not None:
            self._orders.bind(rec, view.order_id)
            self._orders.mark_known(rec)
        return view.to_venue_order(self.venue)

    async def query_fills(self, since_ns: int) -> list[Fill]:
        """Our executions since ``since_ns``. The engine applies them itself (dropping ones it has),
        so they are only noted here, never pushed to the sink a second time."""
        if self._listing is False:
            return await self._fills_by_status(since_ns)
        try:
            result = await self._answer(Paths.EXECUTIONS, codec.encode_executions_query(since_ns))
        except (NotSent, OutcomeUnknown) as exc:
            raise ConnectionError(f"optimus {self.venue}: executions: {exc}") from None
        if isinstance(result, Failure):
            if self._no_listing(result):
                return await self._fills_by_status(since_ns)
            raise ConnectionError(f"optimus {self.venue}: executions: {result.describe()}")
        return self._note_executions(codec.decode_executions(result.data))

    async def _fills_by_status(self, since_ns: int) -> list[Fill]:
        """A broker without ``/orders/executions``: the executions in the status of every order this
        instance tracks (after a restart none: the engine's looked-up orders carry their filled qty)."""
        executions: list[Execution] = []
        for rec in self._orders.records():
            try:
                result = await self._answer(Paths.STATUS, codec.encode_status(rec.client_id))
            except (NotSent, OutcomeUnknown) as exc:
                raise ConnectionError(f"optimus {self.venue}: status of {rec.client_id}: {exc}") from None
            if isinstance(result, Success):
                executions += [e for e in codec.decode_order(result.data).executions if e.ts_ns >= since_ns]
        return self._note_executions(executions)

    def _note_executions(self, executions: Iterable[Execution]) -> list[Fill]:
        fills = []
        for execution in executions:
            rec = self._orders.get(execution.client_order_id)
            if rec is not None and self._orders.note_fill(rec, execution.execution_id, execution.quantity):
                self._orders.note_acked(rec)
            fills.append(execution.to_fill(self.venue))
        return fills

    # ---- account (slow REST reads, not on the order path) --------------------------------
    async def _read(self, path: str) -> Any:
        try:
            result = await self._query(path, {})
        except (NotSent, OutcomeUnknown) as exc:
            raise ConnectionError(f"optimus {self.venue}: {path}: {exc}") from None
        if isinstance(result, Failure):
            raise ConnectionError(f"optimus {self.venue}: {path}: {result.describe()}")
        return result.data

    async def holdings(self) -> list[codec.Holding]:
        """``POST /portfolio/holdings``."""
        return codec.decode_holdings(await self._read(Paths.HOLDINGS))

    async def portfolio_summary(self) -> codec.PortfolioSummary:
        """``POST /portfolio/summary``."""
        return codec.decode_summary(await self._read(Paths.SUMMARY))

    async def buying_power(self) -> codec.BuyingPower:
        """``POST /account/buying-power`` (T+2: unsettled funds are not available)."""
        return codec.decode_buying_power(await self._read(Paths.BUYING_POWER))


def _describe(result: Success | Failure) -> str:
    return result.describe() if isinstance(result, Failure) else "success"


def _malformed(exc: Exception) -> str:
    """Optimus counts every unreadable answer as ``malformed``."""
    return "malformed"


def _execution_ts(execution: Execution) -> tuple[int, str]:
    return execution.ts_ns, execution.execution_id


def _lanes(limits: tuple[RateLimit, ...]) -> dict[str, LaneSpec]:
    """Optimus's departure lanes, cancels first. The broker counts every authenticated request in
    one 100/s per user (document section 11): orders and cancels spend the "all" budget (the gate's),
    status polls and reconciliation reads their own "queries" share of it (in "all", without the
    cancels' reserve, when the limits have no "queries"). Login and refresh have their own budget
    per IP ("auth")."""
    has_queries = any(limit.scope == "queries" for limit in limits)
    query: LaneSpec = (("queries",), "cancel") if has_queries else (("all",), "order")
    return {"cancel": ORDER_LANES["cancel"], "auth": (("auth",), "cancel"), "query": query,
            "order": ORDER_LANES["order"]}
