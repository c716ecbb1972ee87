"""The Algo724 Cadenza Fermata adapter: crypto order entry over REST (document 003, VENUES.md 4).

One ``httpx.AsyncClient`` per adapter, explicit timeouts, every request paced at departure
(ALG-10's assumed 10 requests/second). Methods and paths are configurable (routes.py, ALG-1).

How an order travels (requests run as background tasks, so ``submit``/``cancel`` return at once):

- Its intent is written to the id journal (ids.py) and ``POST /tradeOrder`` sent with our client
  id as ``idempotencyKey`` and ``clientOrderId`` (ALG-4). The answer is an array of Orders
  (ALG-8): element 0 is ours; its ``tradeOrderId`` is bound to our id and journalled (the Order
  object has no ``clientOrderId``: this mapping is the only way back).
- A timeout, a transport error, a 5xx or an unreadable answer makes the order **unknown**, never
  rejected: the same body with the same ``idempotencyKey`` is sent again every ``unknown_retry_s``
  until the venue answers; the venue replays the original order for a key it has (ALG-4), so
  exactly one order exists whatever was lost. A refusal (4xx) is a reject with the engine code of
  its ``details.code`` (ALG-6); a 422 carrying the REJECTED Order, or a literal ``success`` answer
  with ``status: REJECTED``, is read from the Order's ``rejectReason``.
- Cancel takes ``tradeOrderId`` only, so a cancel waits for its order's placing answer.
- With ``streams_url`` the Centrifugo stream (adapters/algo724/streams.py) brings each order's
  changes at once, books and trades. It plugs in through :meth:`Algo724Adapter.access_token` (its
  ``connect.token``) and :meth:`Algo724Adapter.on_order_object` (each Order it is pushed, applied
  like a poll's); a stream that cannot recover what it missed makes the adapter list at once. The
  poll stays as the safety net: the open orders are listed every ``poll_interval_s``, and every
  ``poll_interval_streaming_s`` while the account channel is subscribed on a live stream
  (``GET /tradeOrder``, cursor pages): states and fills come from the Order objects, fills
  de-duplicated by ``executionId`` (adapters/kit/orders.py), fees from each execution's ``fees[]``
  in the quote asset (codec.py).
- Tokens: ``expiresIn`` from login/refresh; refreshed ``refresh_margin_s`` before it runs out (at
  half life for short ones); a 401 renews and resends once; a refused refresh logs in again;
  ``close`` logs out.
- ``disconnect_after_failures`` failed requests in a row report ``disconnected``; the next answer
  reports ``connected`` and the engine reconciles with the queries.

Credentials come from environment variables or files named in the options, never from config,
and never reach a log line.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

import anyio
import httpx

from adapters.algo724 import codec
from adapters.algo724.codec import CodecError, Failure, OrderView, Success
from adapters.algo724.ids import IdEntry, IdJournal
from adapters.algo724.options import Algo724Options
from adapters.algo724.streams import Algo724Streams
from adapters.algo724.streams_codec import ExecutionMessage, OrderMessage
from adapters.kit import rest
from adapters.kit.credentials import Secret, read_secret
from adapters.kit.orders import OrderTracker
from adapters.kit.pacing import ORDER_LANES, LaneSpec, PacerClosed, WirePacer
from adapters.kit.rest import AuthFailed, NotSent, OutcomeUnknown
from engine.model import Fill, Instrument, Order, OrderStatus, VenueOrder
from engine.venue import Adapter, AdapterOptions, Capabilities, RateLimit, VenueEvents
from engine.venue.badinput import KINDS, BadInput
from engine.venue.clock import NS_PER_S, Clock
from engine.venue.rejects import Reject

__all__ = ["Algo724Adapter", "Algo724Options"]

log = logging.getLogger("engine.algo724")
NS_PER_MS = 1_000_000
#: fills of orders created this long before ``since`` are still looked for (an order lives on)
FILL_LOOKBACK_MS = 7 * 24 * 3600 * 1000
#: codec error kinds, counted in ``bad_input()`` as well
BAD_INPUT_KINDS = frozenset(KINDS)
#: at most this many pages per listing (a runaway cursor must not loop forever)
MAX_PAGES = 1000
#: how long close waits for its logout: a window of the queries budget for room in the write
#: hold (1 s and its guard), then the request itself
LOGOUT_WAIT_S = 2.0


class _Tracked(rest.PacedOrder):
    __slots__ = ("body", "lock", "created_ms")

    def __init__(self, order: Order) -> None:
        super().__init__(order.client_id, order.symbol, order.side, order.qty, order.price, order.venue_order_id)
        self.body: dict[str, Any] | None = None
        self.lock = anyio.Lock()  # the placing answer before any cancel
        self.created_ms: int | None = None


class Algo724Adapter(Adapter):
    """Algo724 Cadenza Fermata REST (VENUES.md section 4)."""

    name: ClassVar[str] = "algo724"
    # 4.6: no amend, no mass cancel, no cancel-on-disconnect, no MMP. GTC/IOC/FOK are timeInForce
    # values. GTX (post-only, ALG-7) is sent for a post-only order, but the venue's answer to one
    # that would take is a plain REJECTED, so the engine's gate keeps refusing post-only ("none").
    capabilities: ClassVar[Capabilities] = Capabilities(
        amend=False, mass_cancel=False, post_only="none", ioc=True, fok=True, gtc=True, market_orders=True,
        mmp=False, cancel_on_disconnect=False, self_trade_prevention=False,
    )
    # ALG-10: no limits documented; assumed 10 requests/second per token. Orders and cancels spend
    # "all" (the gate's), the adapter's polls, reconciliation reads and token requests "queries".
    rate_limits: ClassVar[tuple[RateLimit, ...]] = (
        RateLimit("all", 7, Decimal(1), None, source="ALG-10: assumed 10 requests/second, less the adapter's 3/s"),
        RateLimit("queries", 3, Decimal(1), None, source="ALG-10: the adapter's polls and token requests"),
    )
    options_model: ClassVar[type[AdapterOptions]] = Algo724Options

    def __init__(self, venue: str, options: AdapterOptions, instruments: Iterable[Instrument], clock: Clock,
                 sink: VenueEvents, seed: int = 0) -> None:
        super().__init__(venue, options, instruments, clock, sink, seed)
        self.opts: Algo724Options = self.options  # type: ignore[assignment]
        self._email = read_secret(self.opts.email_env, None, "algo724 email")
        self._password = Secret(read_secret(self.opts.password_env, self.opts.password_file, "algo724 password"))
        self._client: httpx.AsyncClient | None = None
        self._session: codec.Session | None = None
        self._session_at_ns = 0
        self._token_lock = anyio.Lock()
        self._closed = True
        self.counts: Counter[str] = Counter()
        self._tasks = rest.Background(self.start_task, "algo724", venue, clock)
        self._orders: OrderTracker[_Tracked] = OrderTracker(venue, sink, clock.now_ns, counts=self.counts, logger=log,
                                                            defer=partial(clock.call_later, 0))
        self.ids = IdJournal(durable=self.opts.journal_fsync)
        self._state_path: Path | None = None
        self.bad = BadInput(log, f"algo724 {venue}")
        self.link = rest.RestLink("algo724", venue, sink, self.counts, log, self.opts.disconnect_after_failures,
                                  is_closed=lambda: self._closed, has_session=lambda: self._session is not None,
                                  bad=self.bad, bad_kinds=BAD_INPUT_KINDS)
        self._tokens = rest.TokenKeeper(self.link, self._tasks, self._renew, lambda: self._session,
                                        lambda: self._session_at_ns, self.opts.refresh_margin_s,
                                        self.opts.poll_interval_s)
        self._symbols = {self.opts.instrument_id(symbol): symbol for symbol in self.instruments}
        self._limits = self.rate_limits
        self._pacer = self._new_pacer()
        #: the Centrifugo streams (streams_url): order updates, books, trades (branch algcf)
        self.streams: Algo724Streams | None = None
        self._stream_token_given = ""

    # ---- pacing ----------------------------------------------------------------------------
    def _new_pacer(self) -> WirePacer:
        return WirePacer(self.venue, self._limits, _lanes(self._limits), self.clock,
                         max_in_flight=self.opts.max_connections)

    def set_rate_limits(self, limits: tuple[RateLimit, ...]) -> tuple[RateLimit, ...]:
        limits = rest.with_declared(limits, self.rate_limits, "queries")
        self._limits = limits
        self._pacer.set_limits(limits, _lanes(limits))
        return self._pacer.departure_limits

    # ---- lifecycle -------------------------------------------------------------------------
    async def connect(self) -> None:
        """Log in, start token upkeep and the poll, report ``connected``. ConnectionError (the
        venue's words, never a secret) when the login fails."""
        if not self.bound:
            raise RuntimeError(f"algo724 venue {self.venue!r}: bind(task_group) must come before connect()")
        opts = self.opts
        self._closed = False
        if self._pacer.closed:
            self._pacer = self._new_pacer()
        self._client = rest.new_client(opts.base_url, opts.request_timeout_s, opts.connect_timeout_s,
                                       opts.max_connections, "psx-strategy-engine algo724 adapter")
        if self._state_path is not None:
            try:
                known = self.ids.open(self._state_path)
            except OSError as exc:
                await self.close()
                raise ConnectionError(f"algo724 venue {self.venue!r}: cannot open the order id journal "
                                      f"{self._state_path}: {exc.strerror or exc}") from None
            log.info("algo724 %s: order ids kept in %s (%d known)", self.venue, self._state_path, known)
        else:
            log.warning("algo724 %s: no state path (journal disabled): the clientOrderId <-> tradeOrderId map "
                        "lives in this process only; a restart cannot cancel the orders placed before", self.venue)
        try:
            await self._renew(None)
        except (NotSent, OutcomeUnknown, AuthFailed) as exc:
            await self.close()
            raise ConnectionError(f"algo724 venue {self.venue!r}: cannot log in at {opts.base_url}: {exc}") from None
        self._spawn(self._tokens.run)
        self._spawn(self._poll_loop)
        if opts.streams_url is not None:
            self._start_streams(opts.streams_url)
        self.link.up()
        log.info("algo724 %s connected to %s (account %s)", self.venue, opts.base_url, opts.trading_account_id)
        self.sink.on_venue_status(self.venue, "connected", opts.base_url)

    async def close(self) -> None:
        """Log out (best effort), stop the background work and the client. Never raises."""
        was_open = not self._closed
        self._closed = True
        for lane, rec in self._pacer.close():
            if isinstance(rec, _Tracked) and rec.final is None:
                if lane == "order":
                    self._orders.finish(rec, OrderStatus.REJECTED, int(Reject.BACKEND_CONNECTIVITY),
                                        "order not sent: the adapter closed first")
                elif lane == "cancel":
                    self._orders.answer(rec, int(Reject.BACKEND_CONNECTIVITY), "cancel not sent: the adapter closed")
        if self.streams is not None:
            await self.streams.close()
        self._tasks.cancel_all()
        client, self._client = self._client, None
        session, self._session = self._session, None
        if client is not None:
            if was_open and session is not None:
                await self._log_out(client, session.access_token)
            try:
                await client.aclose()
            except Exception:
                log.exception("algo724 %s: closing the HTTP client failed", self.venue)
        self.ids.close()

    async def _log_out(self, client: httpx.AsyncClient, token: str) -> None:
        """Best effort, and written through the write hold in the queries budget like every other
        request: the pacer is closed by now, but the hold still knows when the last window's polls
        reached the wire, so a logout behind a full budget waits for room instead of going over
        it. At most :data:`LOGOUT_WAIT_S`; a logout that fails costs nothing (the token expires)."""
        route = self.opts.route("logout")
        # the hold waits on the pacer's clock: a sandbox day slower than real time stretches it
        wait_s = LOGOUT_WAIT_S * max(1.0, 1.0 / float(self._pacer.clock.speed))
        try:
            with anyio.fail_after(wait_s):
                result = await rest.exchange(self.link, client, route.method, route.path, "logout",
                                             headers=self._headers(token), parse=_logout_answer,
                                             failure=Failure, parse_error=CodecError, kind_of=_kind_of,
                                             withhold=False, hold=self._pacer.hold, lane="auth")
        except Exception as exc:
            log.info("algo724 %s: logout failed (%s)", self.venue, type(exc).__name__)
            return
        self.counts["logouts"] += 1
        if isinstance(result, Failure):
            log.info("algo724 %s: logout refused (%s)", self.venue, _describe(result))

    def set_state_path(self, path: Path) -> None:
        """Keep the client id <-> tradeOrderId map there (ids.py), so a restarted engine finds its
        orders. Opened at ``connect``: ``--fresh-account`` moves the file aside after this call."""
        self._state_path = Path(path)

    def subscribe(self, symbols: Iterable[str]) -> None:
        """Market data arrives on the Centrifugo stream (``streams_url``), which subscribes the book
        and trade channels of every configured instrument at connect; nothing to ask here."""
        return None

    def bad_input(self) -> dict[str, int]:
        counts = dict(self.bad.counts)
        if self.streams is not None:
            for kind, n in self.streams.bad.counts.items():
                counts[kind] = counts.get(kind, 0) + n
        return counts

    def stats(self) -> dict[str, int]:
        out = dict(self.counts)
        for key in ("messages_in", "messages_out", "reconnects"):
            out.setdefault(key, 0)
        if self.streams is not None:
            stream = self.streams.stats()
            out["messages_in"] += stream["queued"]
            out["reconnects"] += max(0, stream["connects"] - 1)
            out.update({f"stream_{key}": value for key, value in stream.items()})
        out["writes_held"] = self._pacer.hold.held  # requests a stall after their release held back
        return out

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "venue": self.venue, "base_url": self.opts.base_url,
                "trading_account_id": self.opts.trading_account_id, **self.stats()}

    # ---- background ------------------------------------------------------------------------
    def _spawn(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        self._tasks.spawn(fn, *args)

    async def _sleep(self, seconds: Decimal) -> None:
        await self._tasks.sleep(seconds)

    async def _poll_loop(self) -> None:
        """List the open orders every ``poll_interval_s``; while the stream's account channel is
        live (each change pushed as it happens) only every ``poll_interval_streaming_s``, as a
        safety net. The loop still wakes at the short interval, so a stream that stops brings the
        short one back within it."""
        last_poll_ns = self.clock.now_ns()
        while not self._closed:
            await self._sleep(self.opts.poll_interval_s)
            if self._closed:
                break
            self.ids.sync()  # the bindings written since the last intent (ids.py), every short interval
            now = self.clock.now_ns()
            streams = self.streams
            if streams is not None and streams.account_live() and (
                    now - last_poll_ns < self.opts.poll_interval_streaming_s * NS_PER_S):
                self.counts["polls_skipped_streaming"] += 1
                continue
            last_poll_ns = now
            self.counts["polls"] += 1
            try:
                await self._poll_once()
            except (NotSent, OutcomeUnknown, ConnectionError) as exc:
                log.debug("algo724 %s: poll failed: %s", self.venue, exc)

    async def _poll_once(self) -> None:
        """The open orders' states and fills, from one listing of the orders created since the
        oldest of them (cursor pages); without open orders, nothing is asked."""
        open_recs = [r for r in self._orders.open_records() if r.venue_order_id and not r.unknown]
        if not open_recs:  # one cheap listing keeps the link's heartbeat (a drop is seen, and its end)
            query = codec.encode_list_query(self.opts.trading_account_id, limit=1)
            await self._call("list", query, lane="query")
            return
        start = min((r.created_ms for r in open_recs if r.created_ms is not None), default=None)
        views = await self._list(start_ms=start)
        by_id = {v.trade_order_id: v for v in views}
        for rec in open_recs:
            view = by_id.get(rec.venue_order_id)
            if view is None and start is None:
                continue
            if view is None:  # created before ``start``? ask for it alone
                found = await self._list(trade_order_id=rec.venue_order_id)
                view = found[0] if found else None
            if view is not None:
                self._apply_view(rec, view)

    # ---- HTTP ------------------------------------------------------------------------------
    def _headers(self, token: str | None) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"  # ALG-6: bearer (assumed; the 401 is documented)
        return headers

    async def _send(self, operation: str, payload: dict[str, Any] | None, *, token: str | None, lane: str,
                    rec: _Tracked | None = None) -> Success | Failure:
        """One request, leaving when ``lane``'s budget has room and a connection is free."""
        if self._client is None:
            raise NotSent("adapter is closed")
        try:
            if rec is not None and lane == "order":
                rest.still_wanted(rec)  # cancelled before this attempt queued: no token spent on it
            async with self._pacer.sending(lane, rec):
                if rec is not None and lane == "order":
                    rest.leaving(rec)  # cancelled since the grant: it never leaves
                return await self._send_now(operation, payload, token, lane)
        except PacerClosed as exc:
            raise NotSent(str(exc)) from None

    async def _send_now(self, operation: str, payload: dict[str, Any] | None, token: str | None,
                        lane: str) -> Success | Failure:
        client = self._client
        if client is None:
            raise NotSent("adapter is closed")
        route = self.opts.route(operation)
        get = route.method == "GET"
        return await rest.exchange(self.link, client, route.method, route.path, operation, headers=self._headers(token),
                                   params=payload if get else None, content=None if get else codec.dumps(payload or {}),
                                   parse=codec.parse_envelope, failure=Failure, parse_error=CodecError,
                                   kind_of=_kind_of, withhold=operation in ("login", "refresh"),
                                   hold=self._pacer.hold, lane=lane)

    async def _call(self, operation: str, payload: dict[str, Any] | None, *, lane: str = "query",
                    rec: _Tracked | None = None) -> Success | Failure:
        """An authenticated request; a 401 renews the token and resends once (a request refused for
        its token was not processed)."""
        return await self._tokens.authorized(
            lambda token: self._send(operation, payload, token=token, lane=lane, rec=rec),
            lambda result: isinstance(result, Failure) and codec.classify_failure(result) == "auth", _describe)

    async def _renew(self, stale: codec.Session | None) -> None:
        """Refresh (or log in) unless another task already replaced ``stale``."""
        async with self._token_lock:
            current = self._session
            if current is not stale and current is not None and self.clock.now_ns() < current.access_expires_ns:
                return
            if current is not None:
                result = await self._send("refresh", codec.encode_refresh(current.refresh_token), token=None,
                                          lane="auth")
                if isinstance(result, Success):
                    self._set_session(result)
                    self.counts["token_refreshes"] += 1
                    return
                if codec.classify_failure(result) != "auth" and result.http_status != 400:
                    raise AuthFailed(result.describe())
                log.warning("algo724 %s: refresh refused (%s); logging in again", self.venue, result.describe())
            result = await self._send("login", codec.encode_login(self._email, self._password.value), token=None,
                                      lane="auth")
            if isinstance(result, Failure):
                raise AuthFailed(result.describe())
            self._set_session(result)
            self.counts["logins"] += 1

    def _set_session(self, result: Success) -> None:
        now = self.clock.now_ns()
        try:
            self._session = codec.decode_session(result.data, now)
        except CodecError as exc:
            self._complain(exc.kind, "session answer: %s", exc)
            raise AuthFailed(f"unreadable session: {exc}") from None
        self._session_at_ns = now

    def _complain(self, kind: str, message: str, *args: object) -> None:
        self.link.complain(kind, message, *args)

    # ---- orders ----------------------------------------------------------------------------
    def _track(self, order: Order) -> _Tracked:
        rec = self._orders.get(order.client_id)
        if rec is None:
            rec = self._orders.add(_Tracked(order))
            if not rec.venue_order_id:
                self._orders.bind(rec, self.ids.trade_of(order.client_id))
        return rec

    def submit(self, order: Order) -> None:
        rec = self._track(order)
        try:
            rec.body = codec.encode_submit(order, self.opts.trading_account_id, self.opts.instrument_id(order.symbol),
                                           order.client_id)
        except (CodecError, KeyError) as exc:  # the gate refuses these first; never send half an order
            self._spawn(self._finish_later, rec, int(Reject.ORDER_TYPE_NOT_SUPPORTED), str(exc))
            return
        self.ids.intent(IdEntry(order.client_id, order.symbol, order.side.value, str(order.qty),
                                None if order.price is None else str(order.price)))
        rec.placing = True
        self._spawn(self._place, rec)

    async def _finish_later(self, rec: _Tracked, code: int, reason: str) -> None:
        self._orders.finish(rec, OrderStatus.REJECTED, code, reason)

    def cancel(self, order: Order) -> None:
        rec = self._track(order)
        if rest.take_back_unsent(self._pacer, self._orders, rec):
            return  # its request had not left: the order is cancelled here, never live at the venue
        self._spawn(self._cancel, rec)

    def amend(self, order: Order, price: Decimal | None, qty: Decimal | None) -> None:
        """Document 003 has no amend (4.6); the engine refuses amends first (capabilities)."""
        rec = self._track(order)
        status = order.live_status()
        self._spawn(self._answer_later, rec, status)

    async def _answer_later(self, rec: _Tracked, status: OrderStatus) -> None:
        self._orders.answer(rec, int(Reject.ORDER_TYPE_NOT_SUPPORTED), "Algo724 offers no order modification",
                            status=status)

    async def _place(self, rec: _Tracked) -> None:
        """Send the order; while its outcome is unknown, ask again with the same key."""
        assert rec.body is not None
        async with rec.lock:
            while rec.final is None and not self._closed:
                try:
                    result = await self._with_retries("submit", rec.body, "order", rec)
                except NotSent as exc:
                    if not rec.unknown:
                        self._orders.finish(rec, OrderStatus.REJECTED, int(Reject.BACKEND_CONNECTIVITY),
                                            f"order not sent: {exc}")
                        return
                    why = str(exc)  # an earlier attempt may have arrived: keep asking
                except OutcomeUnknown as exc:
                    why = str(exc)
                else:
                    if self._placed(rec, result):
                        return
                    why = result.describe() if isinstance(result, Failure) else "unreadable submit answer"
                self._orders.mark_unknown(rec, f"{why}; asking again with the same idempotencyKey")
                self.counts["idempotent_resends"] += 1
                await self._sleep(self.opts.unknown_retry_s)

    async def _with_retries(self, operation: str, payload: dict[str, Any], lane: str,
                            rec: _Tracked) -> Success | Failure:
        """Send; resend only what provably never left (a connect failure)."""
        return await rest.resend_unsent(lambda: self._call(operation, payload, lane=lane, rec=rec),
                                        self.opts.connect_retries, lambda: self._sleep(self.opts.retry_backoff_s),
                                        lambda: self._closed or rec.final is not None)

    def _placed(self, rec: _Tracked, result: Success | Failure) -> bool:
        """Apply the submit answer; False when its outcome is still unknown."""
        if isinstance(result, Success):
            view = self._first_order(rec, result.data)
            if view is None:
                return False
            self._apply_view(rec, view)
            return True
        outcome = codec.classify_failure(result)
        if outcome == "unknown":
            return False
        code = codec.engine_code(result)
        if result.data is not None:  # ALG-6: a 422 carrying the REJECTED order (or a 409 the one it has)
            view = self._first_order(rec, result.data)
            if view is not None:
                self._apply_view(rec, view, code)
                if rec.final is not None or view.engine_status is not OrderStatus.REJECTED:
                    return True  # the venue has the order: its state stands, whatever the status line says
        if rec.unknown and (result.code == "DUPLICATE_IDEMPOTENCY_KEY" or result.http_status == 409):
            # ALG-4: an earlier attempt of ours arrived, so the order exists; an answer without it
            # cannot say its id: keep asking rather than call an existing order rejected
            self._complain("duplicate_key_unresolved", "%s: %s", rec.client_id, result.describe())
            return False
        self._orders.mark_known(rec)
        self._orders.finish(rec, OrderStatus.REJECTED, code, result.message or result.describe())
        return True

    def _first_order(self, rec: _Tracked, data: Any) -> OrderView | None:
        """ALG-8: the submit answer is an array; element 0 is ours, the rest logged."""
        try:
            views = codec.decode_orders(data if isinstance(data, list) else [data])
            if not views:
                raise CodecError("empty array of orders")
        except CodecError as exc:
            self._complain(exc.kind, "submit answer for %s: %s", rec.client_id, exc)
            return None
        if len(views) > 1:
            self._complain("extra_orders", "submit of %s answered %d orders; taking %s", rec.client_id, len(views),
                           views[0].trade_order_id)
        return views[0]

    async def _cancel(self, rec: _Tracked) -> None:
        async with rec.lock:  # after the placing answer (a cancel needs the tradeOrderId)
            if rec.final is not None or self._closed:
                return
            if not rec.venue_order_id:
                self._orders.answer(rec, int(Reject.ORDER_NOT_OPEN), "cancel refused: the venue never gave this "
                                    "order an id")
                return
            body = codec.encode_cancel(self.opts.trading_account_id, rec.venue_order_id)
            why, code = "cancel could not be delivered", int(Reject.BACKEND_CONNECTIVITY)
            for _ in range(self.opts.connect_retries + 1):
                if rec.final is not None or self._closed:
                    return
                try:
                    result = await self._with_retries("cancel", body, "cancel", rec)
                except NotSent as exc:
                    why = f"cancel not sent: {exc}"
                    break
                except OutcomeUnknown as exc:
                    why = f"cancel unanswered: {exc}"
                    await self._refresh(rec)
                    continue
                if isinstance(result, Success):
                    try:
                        self._apply_view(rec, codec.decode_order(result.data))
                    except CodecError as exc:
                        self._complain(exc.kind, "cancel answer for %s: %s", rec.client_id, exc)
                    return
                why, code = f"cancel refused: {result.describe()}", codec.engine_code(result)
                await self._refresh(rec)
                if codec.classify_failure(result) != "unknown":
                    break
            if rec.final is None:
                log.warning("algo724 %s: %s: %s", self.venue, rec.client_id, why)
                self._orders.answer(rec, code, why, status=rec.live)

    async def _refresh(self, rec: _Tracked) -> None:
        """Ask for one order's state (by its tradeOrderId) and apply it."""
        try:
            views = await self._list(trade_order_id=rec.venue_order_id)
        except (NotSent, OutcomeUnknown, ConnectionError):
            return
        if views:
            self._apply_view(rec, views[0])

    # ---- the Centrifugo streams (adapters/algo724/streams.py; added by branch algcf) ----------
    def _start_streams(self, url: str) -> None:
        opts = self.opts
        symbols = {symbol: opts.instrument_id(symbol) for symbol in self.instruments}
        self.streams = Algo724Streams(
            self.venue, url, opts.trading_account_id, symbols, self.sink, self.clock, self._stream_token,
            on_recovery_failed=self._stream_recovery_failed, report=self._stream_status, orders=self,
            queue_size=opts.streams_queue_size, stale_s=float(opts.streams_stale_s), seed=self.seed)
        self._spawn(self.streams.run)

    async def _stream_token(self) -> str:
        """The stream's JWT is :meth:`access_token`. Asked again for the token it already has (the
        stream's ttl ran out before our refresh, or the server refused it as expired, 109: the
        venue's clock, or an ``expire_tokens``, may differ from ours), the session is renewed."""
        token = await self.access_token()
        if token == self._stream_token_given:
            await self._renew(self._session)
            token = await self.access_token()
        self._stream_token_given = token
        return token

    def _stream_recovery_failed(self, reason: str) -> None:
        """The stream missed something it cannot replay: ask REST now (the poll's listing)."""
        self.counts["stream_reconciles"] += 1
        log.warning("algo724 %s: %s; reconciling over REST", self.venue, reason)
        self._spawn(self._reconcile_now)

    async def _reconcile_now(self) -> None:
        try:
            await self._poll_once()
        except (NotSent, OutcomeUnknown, ConnectionError) as exc:
            log.warning("algo724 %s: reconciliation failed (%s); the poll goes on", self.venue, exc)

    def _stream_status(self, status: str, detail: str) -> None:
        """Stream health reaches the strategies as ``stale`` and its end, never as the REST link's
        ``disconnected`` (orders still go over REST); ``connected`` only while REST is up."""
        if status == "stale" or self.link.status == "connected":
            self.sink.on_venue_status(self.venue, status, f"stream: {detail}")

    def stream_order(self, message: OrderMessage) -> bool:
        """An ORDER publication (streams.OrderStream): :meth:`on_order_object`. False (the stream
        holds it until :meth:`_apply_view` binds the id) when the order is not ours yet."""
        return self.on_order_object(message.data)

    def stream_execution(self, message: ExecutionMessage) -> bool:
        """An EXECUTION publication: the order is listed over REST (its Order object has it all)."""
        rec = self._orders.by_venue_id(message.trade_order_id)
        if rec is None:
            return False
        self._spawn(self._refresh, rec)
        return True

    # ---- the venue's word (answers, polls: all idempotent) ---------------------------------
    def _apply_view(self, rec: _Tracked, view: OrderView, reject_code: int | None = None) -> None:
        self._apply_view_now(rec, view, reject_code)
        if self.streams is not None and rec.venue_order_id == view.trade_order_id:
            self.streams.bind_order(view.trade_order_id, rec.client_id)  # what the stream said first

    def _apply_view_now(self, rec: _Tracked, view: OrderView, reject_code: int | None = None) -> None:
        if rec.venue_order_id and rec.venue_order_id != view.trade_order_id:
            self._complain("malformed", "order %s is %s, an answer names %s", rec.client_id, rec.venue_order_id,
                           view.trade_order_id)
            return
        self._orders.bind(rec, view.trade_order_id)
        self.ids.bind(rec.client_id, view.trade_order_id)
        if view.created_ms is not None:
            rec.created_ms = view.created_ms
        status = view.engine_status
        if status is OrderStatus.UNKNOWN:
            return  # the venue does not know yet: the next poll asks again (ALG-5)
        self._orders.mark_known(rec)
        symbol = self._symbols.get(view.instrument_id, rec.symbol)
        for execution in sorted(view.executions, key=lambda e: (e.ts_ns, e.execution_id)):
            if self._orders.seen_fill(execution.execution_id):
                continue
            fill = view.fill(execution, self.venue, rec.client_id, symbol)
            if fill.fee is None:
                self._complain("fees_unconverted", "fill %s of %s: a fee in an asset other than %s/%s",
                               execution.execution_id, rec.client_id, view.base, view.quote)
            self._orders.fill(rec, fill)
        if status is OrderStatus.NEW or status is OrderStatus.PARTIALLY_FILLED:
            self._orders.ack(rec)
        elif status is OrderStatus.FILLED:
            if rec.cum_qty < view.executed_quantity:
                self._complain("fills_missing", "%s filled, %s of %s in executions[]", rec.client_id, rec.cum_qty,
                               view.executed_quantity)
        elif status is OrderStatus.REJECTED:
            self._orders.finish(rec, status, reject_code or int(Reject.EXCHANGE_REJECT),
                                view.reject_reason or "rejected by the venue")
        elif status is OrderStatus.CANCELLED or status is OrderStatus.EXPIRED:
            self._orders.finish_after_fills(rec, status, view.executed_quantity, None, view.cancel_reason)
            self._orders.release_held(rec, force=True)

    # ---- what the Centrifugo stream client plugs into (adapters/algo724/streams*.py) ---------
    async def access_token(self) -> str:
        """A valid access token (renewed first when due): the Centrifugo ``connect.token`` is the
        same JWT (document 003, WebSocket section). Never log it."""
        session = self._session
        if session is None or self.clock.now_ns() >= session.access_expires_ns:
            await self._renew(session)
            session = self._session
        assert session is not None
        return session.access_token

    def on_order_object(self, data: Any) -> bool:
        """Apply one Order object from outside the REST answers (a ``tradingAccount:{id}``
        publication, ALG-3): states and fills exactly as a poll would, de-duplicated by
        ``executionId``. An order of ours only (found by ``tradeOrderId``); returns False for
        another one or one that does not decode (counted as bad input)."""
        try:
            view = codec.decode_order(data)
        except CodecError as exc:
            self._complain(exc.kind, "pushed order: %s", exc)
            return False
        rec = self._orders.by_venue_id(view.trade_order_id)
        if rec is None:
            client_id = self.ids.client_of(view.trade_order_id)
            rec = self._orders.get(client_id) if client_id else None
        if rec is None:
            self.counts["pushed_unknown_order"] += 1
            return False
        self._apply_view(rec, view)
        return True

    # ---- listing and reconciliation --------------------------------------------------------
    async def _list(self, **filters: Any) -> list[OrderView]:
        """Every order of the listing (cursor pages). NotSent/OutcomeUnknown/ConnectionError."""
        views: list[OrderView] = []
        cursor: str | None = None
        for _ in range(MAX_PAGES):
            query = codec.encode_list_query(self.opts.trading_account_id, limit=self.opts.page_size, cursor=cursor,
                                            **filters)
            result = await self._call("list", query, lane="query")
            if isinstance(result, Failure):
                raise ConnectionError(f"algo724 {self.venue}: list: {result.describe()}")
            try:
                views += codec.decode_orders(result.data)
                page = codec.decode_page(result.pagination)
            except CodecError as exc:
                self._complain(exc.kind, "list answer: %s", exc)
                raise ConnectionError(f"algo724 {self.venue}: unreadable list answer: {exc}") from None
            if not page.has_next:
                return views
            if page.cursor == cursor:  # a cursor that does not move would page forever
                self._complain("malformed", "list answer: hasNext with the same cursor %r", cursor)
                raise ConnectionError(f"algo724 {self.venue}: list: the cursor does not advance")
            cursor = page.cursor
        raise ConnectionError(f"algo724 {self.venue}: list: more than {MAX_PAGES} pages")

    async def _reconcile_list(self, **filters: Any) -> list[OrderView]:
        try:
            return await self._list(**filters)
        except (NotSent, OutcomeUnknown) as exc:
            raise ConnectionError(f"algo724 {self.venue}: list: {exc}") from None

    def _client_of(self, trade_order_id: str) -> str:
        rec = self._orders.by_venue_id(trade_order_id)
        if rec is not None:
            return rec.client_id
        return self.ids.client_of(trade_order_id) or trade_order_id  # not ours: the venue's id stands in

    def _symbol_of(self, view: OrderView) -> str:
        return self._symbols.get(view.instrument_id, view.instrument_id)

    async def query_open_orders(self) -> list[VenueOrder]:
        """Every working order of the account: one listing per open status (the list filters on
        one ``orderStatus`` at a time)."""
        found: dict[str, VenueOrder] = {}
        for status in sorted(codec.OPEN_STATUSES):
            for view in await self._reconcile_list(status=status):
                found[view.trade_order_id] = view.to_venue_order(self.venue, self._client_of(view.trade_order_id),
                                                                 self._symbol_of(view))
        return list(found.values())

    async def query_order(self, client_id: str) -> VenueOrder | None:
        """One order by our id: through its tradeOrderId (tracked or journalled); None when the
        venue never gave it one. An order whose submit answer is still lost raises ConnectionError
        (its idempotencyKey is being asked again; the answer settles it)."""
        rec = self._orders.get(client_id)
        trade_order_id = rec.venue_order_id if rec is not None and rec.venue_order_id else self.ids.trade_of(client_id)
        if not trade_order_id:
            if rec is not None and rec.unknown:
                raise ConnectionError(f"algo724 {self.venue}: {client_id}: outcome still unknown")
            return None
        views = await self._reconcile_list(trade_order_id=trade_order_id)
        if not views:
            return None
        if rec is not None:
            self._orders.bind(rec, views[0].trade_order_id)
        return views[0].to_venue_order(self.venue, client_id, self._symbol_of(views[0]))

    async def query_fills(self, since_ns: int) -> list[Fill]:
        """Our executions at or after ``since_ns``, from the orders created up to a week before it.
        Noted (not delivered): the engine applies them itself."""
        start_ms = max(0, since_ns // NS_PER_MS - FILL_LOOKBACK_MS)
        fills: list[Fill] = []
        for view in await self._reconcile_list(start_ms=start_ms):
            client_id = self._client_of(view.trade_order_id)
            rec = self._orders.get(client_id)
            for execution in view.executions:
                if execution.ts_ns < since_ns:
                    continue
                fill = view.fill(execution, self.venue, client_id, self._symbol_of(view))
                if rec is not None and self._orders.note_fill(rec, execution.execution_id, execution.quantity):
                    self._orders.note_acked(rec)
                fills.append(fill)
        return fills


def _logout_answer(status: int, body: bytes) -> Success | Failure | None:
    """The envelope of a logout's answer; None for one that is not (after close nobody needs it:
    not worth an error in the log nor a count of bad input)."""
    try:
        return codec.parse_envelope(status, body)
    except CodecError:
        return None


def _describe(result: Success | Failure) -> str:
    return result.describe() if isinstance(result, Failure) else "success"


def _kind_of(exc: Exception) -> str:
    """An unreadable answer is counted under its codec error's kind."""
    return exc.kind if isinstance(exc, CodecError) else "malformed"


def _lanes(limits: tuple[RateLimit, ...]) -> dict[str, LaneSpec]:
    """Orders and cancels spend "all" (the gate's); polls, reconciliation and tokens "queries"
    (in "all" when the limits have no "queries"). Lanes are served in this order: a token renewal
    first, so polls filling the queries budget never starve it past the token's expiry."""
    has_queries = any(limit.scope == "queries" for limit in limits)
    query: LaneSpec = (("queries",), "cancel") if has_queries else (("all",), "order")
    return {"auth": query, "cancel": ORDER_LANES["cancel"], "order": ORDER_LANES["order"], "query": query}
