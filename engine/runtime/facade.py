"""What the rest of the engine may ask of the runtime: two small protocols.

:class:`StrategyDesk` is all the order context (``engine.context``) uses: the context imports
this module only (for typing), never the runtime's modules, so the two do not import each other.
:class:`EngineFacade` is all the engine's driver (``engine.app``) uses. Both are checked against
their users by tests/unit/test_runtime_facade.py: a new use is a new line here first.

The runtime (:class:`engine.runtime.Runtime`) implements both; every name is public.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal
from typing import Any, Protocol

from engine.clock import Clock
from engine.model import Book, Order, SessionState
from engine.observe.timeline import Timeline
from engine.risk.gate import Rejection
from engine.risk.killswitch import KillSwitch, TradingState
from engine.runtime.runner import StrategyRunner
from engine.venue import Adapter

__all__ = ["EngineFacade", "StrategyDesk", "StrategyRunner", "VenueView"]


class VenueView(Protocol):
    """What the order context reads of a strategy's venue: its connection state, what it can do
    (``adapter.capabilities``: read, never called) and its account (kind, currency, buying power,
    sellable)."""

    @property
    def status(self) -> str: ...

    @property
    def adapter(self) -> Adapter: ...

    @property
    def account(self) -> Any: ...


class StrategyDesk(Protocol):
    """The runtime as the order context sees it. Every order action goes through the gate's one
    entrance: :meth:`submit_order`, :meth:`amend_order`, :meth:`cancel_order`."""

    @property
    def clock(self) -> Clock: ...

    @property
    def session(self) -> SessionState: ...

    @property
    def kill_switch(self) -> KillSwitch: ...

    @property
    def venues(self) -> Mapping[str, VenueView]: ...

    def book(self, venue: str, symbol: str) -> Book | None: ...

    def next_client_id(self, runner: StrategyRunner) -> str: ...

    def submit_order(self, runner: StrategyRunner, order: Order) -> Order: ...

    def amend_order(self, runner: StrategyRunner, order: Order, price: Decimal | None, qty: Decimal | None) -> bool:
        ...

    def cancel_order(
        self, runner: StrategyRunner, order: Order, *, by_engine: bool = False, allow_reconciling: bool = False
    ) -> bool: ...

    def refuse(self, runner: StrategyRunner, order: Order, rejection: Rejection) -> Order:
        """An order refused before the entrance (its arguments): counted and told like any refusal."""

    def refuse_amend(self, runner: StrategyRunner, order: Order, rejection: Rejection) -> None: ...

    def reset_mmp(self, runner: StrategyRunner) -> None: ...


class EngineFacade(Protocol):
    """The runtime as the engine's driver (``engine.app``) sees it: build, connect and recover,
    run the day, stop, and the figures of the report."""

    # ---- construction
    @property
    def venues(self) -> Mapping[str, Any]: ...

    @property
    def runners(self) -> Mapping[str, StrategyRunner]: ...

    client_epoch: str
    unknown_orders: str
    pending_tasks: list[Awaitable[None]]
    task_starter: Callable[[Callable[[], Awaitable[None]]], None] | None

    def add_venue(self, name: str, adapter: Adapter, instruments: Any, **options: Any) -> None: ...

    def add_strategy(self, runner: StrategyRunner, params: Any = None, **limits: Any) -> StrategyRunner: ...

    def market_data_sink(self, venue: str) -> Any: ...

    def subscriptions(self, venue: str) -> list[str]: ...

    # ---- connect, recover, start
    def hold_strategies(self) -> None: ...

    def release_strategies(self) -> None: ...

    def mark_recovering(self, venue: str) -> None: ...

    def venue_ready(self, venue: Any) -> None: ...

    def tell_where_venues_stand(self) -> None: ...

    async def sync_account(self, venue: Any, confirming: bool = False) -> None: ...

    def start_account_sync(self, venue: Any) -> None: ...

    def call_rare(self, runner: StrategyRunner, hook: str, **kwargs: Any) -> Any: ...

    async def run_pending(self) -> None: ...

    def start_risk_timer(self) -> None: ...

    def start_hook_watch(self) -> None: ...

    def stop_hook_watch(self) -> None: ...

    def chase_halt(self) -> None: ...

    # ---- the day
    @property
    def session(self) -> SessionState: ...

    def on_session_change(self, old: SessionState, new: SessionState) -> None: ...

    def sample_timeline(self) -> None: ...

    def manual_trigger(self, state: TradingState, reason: str) -> None: ...

    def save_strategy_states(self) -> None: ...

    def take_snapshot(self, reason: str) -> None: ...

    # ---- stop
    def close_market_data(self) -> None: ...

    def stop_protection_timers(self) -> None: ...

    def flush_logs(self) -> None: ...

    def stop_strategy(self, runner: StrategyRunner, *, cancel: bool = True) -> None: ...

    def cancel_everything(self) -> None: ...

    # ---- figures for the heartbeat and the report
    kill_switch: KillSwitch
    timeline: Timeline
    sessions_seen: list[str]
    orders_submitted: int
    orders_refused: int
    mmp_triggers: int
    anomalies: Counter[str]
    anomaly_samples: list[str]

    @property
    def n_book(self) -> int: ...

    @property
    def n_trade(self) -> int: ...

    @property
    def n_fill(self) -> int: ...

    @property
    def n_duplicate_fills(self) -> int: ...

    @property
    def final_status(self) -> Counter[str]: ...

    @property
    def rejects_by_code(self) -> Counter[int]: ...

    def open_order_count(self) -> int: ...

    def strategy_summary(self, runner: StrategyRunner) -> dict[str, Any]: ...

    def venue_summary(self, venue: Any) -> dict[str, Any]: ...

