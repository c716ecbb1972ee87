"""The Algo724 sandbox's streams: its simulated venue published over :mod:`adapters.algo724.centrifugo`.

Attaches a :class:`~adapters.algo724.centrifugo.CentrifugoServer` to an
:class:`~adapters.algo724.sandbox.AlgoSandbox` through the sandbox's Python API only:

- the Centrifugo ``connect.token`` is the REST login's ``accessToken`` (``verify_token``; an
  unknown or expired one is answered 109 "token expired", so the client asks for a fresh token
  rather than giving up); its expiry (``token_expiry_ns``) is the connection's ``ttl``;
- ``tradingAccount:{trading_account_id}``: every change of an order (``order_listeners``), the
  REST Order object itself in an ORDER publication (ALG-3), so stream and REST never disagree;
- ``market:orderBook:{instrumentId}``: each L2 change of the simulated book as a DELTA with the
  next ``sequence``; the subscribe reply's ``data`` is a SNAPSHOT of the book at that sequence;
- ``market:trade:{instrumentId}``: each public print, aggressor side.

In document-literal mode (``--document-literal``: extension ``stream_payloads`` off) the endpoint
serves the protocol and the channels but publishes nothing, since document 003 defines no payload.

The payload shapes are the project's decision in :mod:`adapters.algo724.streams_codec` (imported
here on purpose: the sandbox must send what the project decided, ALG-3); the Centrifugo framing is
the server's, written from the protocol, not from the client.

Faults: the sandbox's ``drop_connections`` and ``expire_tokens`` reach the streams too (the stream
drops; every connection is closed 3005 "expired", the client reconnects, meets 109 and fetches a
new token over REST), plus :meth:`StreamFeed.reset_epochs` (recovery impossible) and
:meth:`StreamFeed.lose_next_change` (a lost book delta: the client must resync) and
:meth:`StreamFeed.stall` (silence: the client reports ``stale``).
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from adapters.algo724.centrifugo import CentrifugoServer, Grant, TokenRefused
from adapters.algo724.streams_codec import (
    BOOK_PREFIX,
    TRADE_PREFIX,
    account_channel,
    book_channel,
    book_payload,
    decimal_string,
    order_payload,
    trade_channel,
    trade_payload,
)
from engine.model import BookUpdate, Side, Trade
from engine.venue.clock import NS_PER_S

if TYPE_CHECKING:
    from adapters.algo724.sandbox import AlgoSandbox

__all__ = ["StreamFeed"]

log = logging.getLogger("engine.algo724.streams_sandbox")

NS_PER_MS = 1_000_000
#: levels per side in a subscribe snapshot (003's order book depth default is 10; 1000 its maximum)
SNAPSHOT_DEPTH = 1000


def _plain(value: Any) -> Any:
    """The sandbox's Order object with its Decimals as 003's decimal strings."""
    kind = type(value)
    if kind is Decimal:
        return decimal_string(value)
    if kind is dict:
        return {k: _plain(v) for k, v in value.items()}
    if kind is list or kind is tuple:
        return [_plain(v) for v in value]
    return value


class StreamFeed:
    """The sandbox's Centrifugo endpoint (``url``) and the listener that publishes to it."""

    def __init__(self, sandbox: AlgoSandbox, *, host: str = "127.0.0.1", port: int = 0, history_size: int = 1000,
                 ping_interval_s: float = 25, pong_timeout_s: float = 8, expired_close_delay_s: float = 25) -> None:
        self.sandbox = sandbox
        self.server = CentrifugoServer(
            self._authenticate, authorize=self._authorize, subscribe_data=self._snapshot, host=host, port=port,
            history_size=history_size, ping_interval_s=ping_interval_s, pong_timeout_s=pong_timeout_s,
            expired_close_delay_s=expired_close_delay_s, now=lambda: sandbox.clock.now_ns() / NS_PER_S)
        #: document-literal mode: the channels exist, nothing is published (ALG-3 is ours alone)
        self.payloads = getattr(sandbox.settings.extensions, "stream_payloads", True)
        self.sequences: dict[str, int] = {}
        self._lose: set[str] = set()
        self._account = account_channel(sandbox.trading_account_id)
        sandbox.sim.add_listener(self)
        sandbox.order_listeners.append(self._order)
        sandbox.fault_listeners.append(self._fault)

    async def start(self) -> None:
        await self.server.start()
        log.info("algo724 sandbox streams on %s", self.url)

    async def stop(self) -> None:
        await self.server.stop()

    @property
    def url(self) -> str:
        return self.server.url

    # ---- Centrifugo's questions ----------------------------------------------------------
    def _authenticate(self, token: str) -> Grant:
        user = self.sandbox.verify_token(token)
        if user is None:
            raise TokenRefused("not a live access token", expired=True)
        expires_ns = self.sandbox.token_expiry_ns(token)
        return Grant(user, None if expires_ns is None else expires_ns / NS_PER_S)

    def _authorize(self, grant: Grant, channel: str) -> bool:
        if channel == self._account:
            return True
        for prefix in (BOOK_PREFIX, TRADE_PREFIX):
            if channel.startswith(prefix):
                return self.sandbox.symbol_of(channel[len(prefix):]) is not None
        return False

    def _snapshot(self, channel: str) -> dict[str, Any] | None:
        if not self.payloads or not channel.startswith(BOOK_PREFIX):
            return None
        instrument_id = channel[len(BOOK_PREFIX):]
        symbol = self.sandbox.symbol_of(instrument_id)
        if symbol is None:
            return None
        engine = self.sandbox.sim.matching_engine(symbol)
        return book_payload(instrument_id, self.sandbox.settings.venue, self.sequences.get(instrument_id, 0), True,
                            engine.depth(Side.BUY)[:SNAPSHOT_DEPTH], engine.depth(Side.SELL)[:SNAPSHOT_DEPTH],
                            self.sandbox.clock.now_ns() // NS_PER_MS)

    # ---- the simulated venue's events ------------------------------------------------------
    def on_book(self, update: BookUpdate) -> None:
        if not self.payloads:
            return
        instrument_id = self.sandbox.instrument_id(update.symbol)
        sequence = self.sequences.get(instrument_id, 0) + 1
        self.sequences[instrument_id] = sequence
        if instrument_id in self._lose:  # fault: this change is lost upstream; its sequence is spent
            self._lose.discard(instrument_id)
            return
        bids = [(price, qty) for side, price, qty in update.changes if side is Side.BUY]
        asks = [(price, qty) for side, price, qty in update.changes if side is not Side.BUY]
        if update.snapshot:
            engine = self.sandbox.sim.matching_engine(update.symbol)
            bids, asks = engine.depth(Side.BUY)[:SNAPSHOT_DEPTH], engine.depth(Side.SELL)[:SNAPSHOT_DEPTH]
        self.server.publish(book_channel(instrument_id), book_payload(
            instrument_id, self.sandbox.settings.venue, sequence, update.snapshot, bids, asks,
            update.ts // NS_PER_MS))

    def on_trade(self, trade: Trade) -> None:
        # ALG-3 trades name their aggressor: a print without one is not sent
        if not self.payloads or trade.aggressor is None:
            return
        instrument_id = self.sandbox.instrument_id(trade.symbol)
        side = "BUY" if trade.aggressor is Side.BUY else "SELL"
        self.server.publish(trade_channel(instrument_id), trade_payload(
            instrument_id, self.sandbox.settings.venue, trade.trade_id, trade.price, trade.qty, side,
            trade.ts // NS_PER_MS))

    def _order(self, order: dict[str, Any]) -> None:
        if not self.payloads:
            return
        self.server.publish(self._account, order_payload(_plain(order)))

    # ---- faults --------------------------------------------------------------------------
    def _fault(self, kind: str, params: dict[str, Any]) -> None:
        """The sandbox's faults, as the streams feel them."""
        if kind == "drop_connections":
            self.server.drop_connections()
        elif kind == "expire_tokens":
            self.server.expire_connections()

    def reset_epochs(self) -> None:
        """Recovery impossible: every channel's history is lost (a new epoch)."""
        self.server.reset_epochs()

    def lose_next_change(self, symbol: str) -> None:
        """The next book change of ``symbol`` is lost upstream: its sequence number is spent and
        nothing is published, so the client sees the gap at the change after it."""
        self._lose.add(self.sandbox.instrument_id(symbol))

    def stall(self, seconds: float) -> None:
        """The streams send nothing for ``seconds`` (what is published meanwhile comes after)."""
        self.server.stall(seconds)
