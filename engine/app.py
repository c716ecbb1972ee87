"""Builds a runtime from a config and runs it: clock, sessions, venues, strategies, shutdown.

One process, one event loop (anyio on asyncio). On the simulated clock the engine steps time
itself, timer by timer, as fast as it can or ``speed`` times real time. On the wall clock asyncio
runs the adapters' timers and APScheduler fires the session transitions. A caller may hand in its
own clock (``Engine(..., clock=ScaledClock(...))``): ``engine sandbox psx --run`` shares one sped-up
day between the engine and the sandbox venue it talks to over loopback.

Stopping (end of the configured days, SIGINT or SIGTERM) always goes the same way: ``on_stop`` for
each strategy, cancel every open order and keep at it until the venues confirm each one final
(:mod:`engine.shutdown`), write the report; exit 0, or 3 naming every order still working when
``run.shutdown_timeout_s`` ran out. A second signal during that does not abandon the orders.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import gc
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
from anyio.abc import TaskGroup

from engine import systemd
from engine.clientids import new_epoch
from engine.clock import NS_PER_S, Clock, SimClock, WallClock
from engine.config import LoadedConfig, validate_section
from engine.errors import ConfigError, StartupError, only_error
from engine.journal import Journal, make_private, move_aside, peek
from engine.loader import LoadedStrategy, load_strategies
from engine.model import SessionState
from engine.observe.server import MetricsServer
from engine.observe.snapshot import Observer
from engine.outfile import OutputPathError, write_atomic
from engine.recording import replaydays
from engine.recording.listen import NoOrders
from engine.recording.recorder import Recorder
from engine.risk.killswitch import TradingState
from engine.risk.rulepack import RulePack, resolve_packs
from engine.runtime import Restored, Runtime, StrategyRunner, recover_venue, restore
from engine.secrets import Redactor, write_scrubbed
from engine.sessions import RecordedSessionDriver, SessionDriver, SessionSchedule
from engine.shutdown import EXIT_ORDERS_LEFT_WORKING, OrderCloser
from engine.venue import (
    Adapter,
    AdapterOptions,
    OrderEntryAdapter,
    RateLimit,
    UnknownAdapter,
    VenueAdapter,
    get_adapter,
)

log = logging.getLogger("engine")

#: seconds shutdown lets venues answer between two looks at the orders not yet final (engine time on
#: the simulated clock, real time otherwise)
SHUTDOWN_LOOK_S = 0.25
#: timers run between two looks at signals and the heartbeat on the simulated clock
SIM_BATCH = 512
#: the port's ``recorded_days`` (None): an adapter that keeps it has no recording to read
LIVE_DAYS = getattr(VenueAdapter.recorded_days, "__func__", None)


@dataclass
class RunResult:
    report: dict[str, Any]
    exit_code: int = 0
    stopped_by: str = "end"


class Engine:
    """Everything one ``engine run`` owns."""

    def __init__(
        self, loaded: LoadedConfig, strategies: list[LoadedStrategy] | None = None, *, fresh_account: bool = False,
        journal_path: Path | None = None, clock: Clock | None = None, record_to: Path | None = None,
        market_data_only: bool = False,
    ) -> None:
        """``clock``: a real-time clock the caller owns instead of ``run.clock: wall`` (a
        ``ScaledClock`` shared with an in-process sandbox venue); refused with ``run.clock:
        simulated``, whose time only the engine may move. ``market_data_only`` (``engine record``):
        a venue with a ``market_data:`` adapter connects only that one; its order adapter is never
        built, so its credentials are not needed."""
        self.loaded = loaded
        cfg = loaded.config
        self.cfg = cfg
        if clock is not None and (cfg.run.clock == "simulated" or clock.simulated):
            raise StartupError(
                f"{loaded.display}: run.clock is simulated, but this run is on a real-time clock shared with a "
                "venue over the network; set run.clock: wall"
            )
        self._outside_clock = clock
        self.schedule = SessionSchedule(cfg.sessions)
        self.calendar = self.schedule.calendar
        self.journal_path = (journal_path or loaded.journal_path) if cfg.journal.enabled else None
        self.fresh_account = fresh_account or cfg.journal.fresh_account
        # where the account's timeline stands: a simulated run continues it (read only, no lock)
        self.resume = peek(self.journal_path) if self.journal_path is not None and not self.fresh_account else None
        self.journal: Journal | None = None
        self.restored: Restored | None = None
        self.replayed = self._replayed_venues()
        self.days = self._trading_days()
        first_start, last_end = self._run_window()
        if cfg.run.clock == "simulated":
            # start a minute before the first phase so strategies see closed -> pre_open; a day
            # left in progress resumes a moment after the journal's last word
            start = first_start - replaydays.LEAD_NS
            resume = self.resume
            if resume is not None and resume.day_in_progress == self.days[0] and resume.last_ns:
                start = max(start, resume.last_ns + NS_PER_S // 1000)
            self.clock: Clock = SimClock(start)
        else:
            self.clock = clock if clock is not None else WallClock()
        self.end_ns = last_end + replaydays.TAIL_NS
        containment = cfg.risk.containment
        self.runtime = Runtime(
            self.clock,
            self.calendar,
            cfg.risk.kill_switch,
            max_hook_failures=containment.max_hook_failures,
            hook_budget_ms=containment.hook_budget_ms,
            max_hook_overruns=containment.max_hook_overruns,
            refusals_per_s=containment.refusals_per_s,
            repeat_refusals=containment.repeat_refusals,
        )
        # one policy for orders under our client ids the engine has no record of: restart and reconnect
        self.runtime.unknown_orders = cfg.journal.on_restart.unknown_orders
        self.adapters: dict[str, Adapter] = {}  # per venue: the adapter carrying its orders (and data)
        self.feeds: dict[str, VenueAdapter] = {}  # per venue with ``market_data:``: the adapter carrying its data
        self.recorder = self._make_recorder(record_to)
        self.market_data_only = market_data_only
        self._build_venues()
        self._build_strategies(strategies if strategies is not None else load_strategies(loaded))
        self.driver: SessionDriver | RecordedSessionDriver = SessionDriver(
            self.schedule, self.clock, self._session_changed if self.recorder is not None
            else self.runtime.on_session_change)
        self.stop_requested = False
        self.stopped_by = "end"
        self._wall_started = 0.0
        self._wall_done: anyio.Event | None = None
        self.closer: OrderCloser | None = None  # while shutdown cancels
        self.left_working: list[dict[str, Any]] = []  # orders shutdown could not confirm final

    # ---- build ---------------------------------------------------------------------------
    def _trading_days(self) -> list[dt.date]:
        run = self.cfg.run
        start = run.start
        resume = self.resume
        if resume is not None and run.clock == "simulated":
            # the paper account has its own timeline: the day left in progress, else the next one
            if resume.day_in_progress is not None:
                continue_from = resume.day_in_progress
            elif resume.last_day_done is not None:
                after = resume.last_day_done + dt.timedelta(days=1)
                # a replay goes on with the next recorded day, which the calendar may not trade
                continue_from = after if self.replayed else self.calendar.next_trading_day(after)
            else:
                continue_from = None
            if continue_from is not None:
                if start is not None and start < continue_from:
                    raise StartupError(
                        f"run.start {start} is before {continue_from}, where the account in journal "
                        f"{self.journal_path} continues; remove run.start, or start a new account with "
                        "--fresh-account"
                    )
                start = start or continue_from
        if self.replayed and not (self._run_gives("start") and self._run_gives("days")):
            return self._recorded_run_days(start)
        real_time = self._outside_clock or WallClock(self.calendar_tz())
        if start is None:
            start = self.schedule.local_date(real_time.now_ns())
        day = self.calendar.next_trading_day(start)
        if run.clock == "wall":
            # on the wall clock a day whose last phase has ended is already over
            now = real_time.now_ns()
            while (window := self.schedule.day_window(day)) is not None and window[1] <= now:
                day = self.calendar.next_trading_day(day + dt.timedelta(days=1))
        days = [day]
        while len(days) < run.days:
            days.append(self.calendar.next_trading_day(days[-1] + dt.timedelta(days=1)))
        if self.replayed:
            replaydays.log_left_out(replaydays.recorded_days(self.replayed), days, "run.start and run.days decide")
        return days

    # ---- a replay's days and window (engine/recording/replaydays.py) ------------------------------
    def _run_gives(self, key: str) -> bool:
        """Whether the config file sets ``run.<key>`` (a default is not a choice)."""
        if self.loaded.data:
            return key in (self.loaded.data.get("run") or {})
        return key in self.cfg.run.model_fields_set

    def _replayed_venues(self) -> list[replaydays.ReplayedVenue]:
        """The recording of each replay venue the run uses, read (receive times only) before the
        days and the clock are chosen; a selection holding nothing is a config error at its options."""
        used = {s.venue for s in self.cfg.strategies if s.enabled}
        found = []
        for name, venue_cfg in self.cfg.venues.items():
            if name not in used:
                continue
            where = ("venues", name)
            adapter_cls = self._adapter_class(where, venue_cfg.adapter)
            if getattr(adapter_cls.recorded_days, "__func__", None) is LIVE_DAYS:
                continue  # a live venue: nothing recorded, and its options are validated when it is built
            options = validate_section(self.loaded, adapter_cls.options_model, venue_cfg.options, (*where, "options"))
            symbols = [i.symbol for i in self.cfg.instruments if i.venue == name]
            try:
                days = adapter_cls.recorded_days(name, options, symbols, self.schedule.tz)
            except ValueError as exc:  # pyarrow's ArrowInvalid (a damaged file) is one too
                raise self.loaded.error((*where, "options"), str(exc)) from None
            except OSError as exc:
                raise self.loaded.error((*where, "options"), f"cannot read the recording: {exc}") from None
            if days is not None:
                found.append(replaydays.ReplayedVenue(name, days, getattr(options, "sessions", None) != "config"))
        return found

    def _recorded_run_days(self, first: dt.date | None) -> list[dt.date]:
        """The recorded days from ``first`` (run.start, or where the journal's account continues)
        on, the first run.days of them when run.days is set."""
        recorded = replaydays.recorded_days(self.replayed)
        count = self.cfg.run.days if self._run_gives("days") else None
        days, padded = replaydays.pick_days(recorded, first, count, self.calendar)
        if not days or len(padded) == len(days):
            continuing = "" if self.cfg.run.start is not None else " (where the journal's account continues)"
            raise StartupError(
                f"no recorded day to replay on or after {first}{continuing}: the recording's days are "
                f"{recorded[0]} to {recorded[-1]}; set run.start to one of them, or start a new account with "
                "--fresh-account")
        log.info("replay: the run's days are the %d recorded day%s %s (run.start and run.days not both set)",
                 len(days), "" if len(days) == 1 else "s", ", ".join(d.isoformat() for d in days))
        if padded:
            log.warning("replay: run.days is %d, but the recording holds fewer days from %s: %s replay nothing",
                        count, days[0], ", ".join(d.isoformat() for d in padded))
        replaydays.log_left_out(recorded, days, "run.start" if self._run_gives("start") else
                             "run.days" if count is not None else "the journal's account continues")
        return days

    def _run_window(self) -> tuple[int, int]:
        """(first instant, last instant) the run must reach, before its margins: the profile's
        first phase of the first day and end of the last one; a replay's follow its recording."""
        if not self.replayed:
            first_start, _ = self.schedule.day_window(self.days[0])
            _, last_end = self.schedule.day_window(self.days[-1])
            return first_start, last_end
        leading = replaydays.leader(self.replayed, self.days[0])
        windows = []
        for day in (self.days[0], self.days[-1]):
            window = replaydays.day_window(day, self.schedule, self.replayed, leading)
            if window is None:
                raise StartupError(f"day {day}: the session profile has no session and the recording holds nothing "
                                   "that day; choose other days (run.start / run.days)")
            windows.append(window)
        first, last = windows[0][0], windows[-1][1]
        if leading is None:
            replaydays.log_outside_profile(self.replayed, self.days, self.schedule,
                                           first - replaydays.LEAD_NS, last + replaydays.TAIL_NS)
        return first, last

    def calendar_tz(self):
        from zoneinfo import ZoneInfo

        return ZoneInfo(self.cfg.sessions.timezone)

    def _make_recorder(self, record_to: Path | None) -> Recorder | None:
        """``run.record`` (or ``engine record --out``): market data to Parquet as it arrives
        (README "Recording and replay"); a folder that is a file is a config error at its key."""
        if record_to is None:
            if self.cfg.run.record is None:
                return None
            record_to = self.loaded.resolve(self.cfg.run.record)
        if record_to.exists() and not record_to.is_dir():
            raise self.loaded.error(("run", "record"), f"{record_to} exists and is not a folder to record into")
        try:
            return Recorder(record_to, self.clock.now_ns)
        except ImportError as exc:
            raise self.loaded.error(("run", "record"), str(exc)) from None

    def _session_changed(self, old: SessionState, new: SessionState) -> None:
        assert self.recorder is not None
        self.recorder.record_session(list(self.adapters), new)
        self.runtime.on_session_change(old, new)

    def _build_venues(self) -> None:
        used = {s.venue for s in self.cfg.strategies if s.enabled}
        for name, venue_cfg in self.cfg.venues.items():
            if name not in used:
                continue
            master = [i.to_instrument() for i in self.cfg.instruments if i.venue == name]
            risk = self.cfg.risk
            packs = resolve_packs(risk.profile, risk.rules, risk.instruments, [i.symbol for i in master])
            if self._order_adapter_class(("venues", name), venue_cfg.adapter).whole_shares:
                self._refuse_fractional_lots(name, venue_cfg.adapter, packs)
            # the rule pack may set the lot (psx-2026: one-share lots); venue and gate see the same
            instruments = [
                dataclasses.replace(i, lot_size=packs[i.symbol].effective_lot(i.lot_size)) for i in master
            ]
            recorder = self.recorder
            sink = self.runtime if recorder is None else recorder.sink(self.runtime, name)
            if self.market_data_only and venue_cfg.market_data is not None:
                adapter: VenueAdapter = NoOrders(name, AdapterOptions(), instruments, self.clock, sink)
            else:
                adapter = self._make_adapter(name, ("venues", name), venue_cfg.adapter, venue_cfg.options,
                                             instruments, sink)
            assert isinstance(adapter, OrderEntryAdapter)  # _adapter_class refused the others
            if venue_cfg.market_data is not None:
                feed = self._make_adapter(name, ("venues", name, "market_data"), venue_cfg.market_data.adapter,
                                          venue_cfg.market_data.options, instruments,
                                          self.runtime.market_data_sink(name) if recorder is None
                                          else recorder.sink(self.runtime.market_data_sink(name), name))
                self.feeds[name] = feed
            adapter.set_cancel_on_disconnect(venue_cfg.cancel_on_disconnect)
            if self.journal_path is not None:
                adapter.set_state_path(self.venue_state_path(name))
            adapter.set_price_bands({s: (p.band_pct, p.band_abs_floor) for s, p in packs.items()})
            adapter.set_fee_schedules({s: p.fee_schedule() for s, p in packs.items()})
            self.adapters[name] = adapter
            rate_limits = (
                [RateLimit(r.scope, r.count, r.per_seconds, r.burst, source="config") for r in venue_cfg.rate_limits]
                if venue_cfg.rate_limits is not None
                else None
            )
            self.runtime.add_venue(
                name, adapter, instruments, account=venue_cfg.account, packs=packs, rate_limits=rate_limits,
                cancel_on_disconnect=venue_cfg.cancel_on_disconnect, on_reconnect=venue_cfg.on_reconnect,
                currency=self.cfg.account_currency(name), feed=self.feeds.get(name), mass_cancel=venue_cfg.mass_cancel,
            )

    def _adapter_class(self, where: tuple[str, ...], adapter_name: str) -> type[VenueAdapter]:
        """The adapter class a config section names; an unknown name, or a market-data-only adapter
        named where orders go, is a config error there."""
        try:
            adapter_cls = get_adapter(adapter_name)
        except UnknownAdapter as exc:
            raise self.loaded.error((*where, "adapter"), str(exc)) from None
        if where[-1] != "market_data" and not issubclass(adapter_cls, OrderEntryAdapter):
            raise self.loaded.error(
                (*where, "adapter"),
                f"adapter {adapter_name!r} carries market data only and takes no orders: name it under "
                f"{'.'.join((*where, 'market_data', 'adapter'))} beside an order adapter",
            )
        return adapter_cls

    def _order_adapter_class(self, where: tuple[str, ...], adapter_name: str) -> type[OrderEntryAdapter]:
        adapter_cls = self._adapter_class(where, adapter_name)
        assert issubclass(adapter_cls, OrderEntryAdapter)  # _adapter_class refused the others
        return adapter_cls

    def _refuse_fractional_lots(self, venue: str, adapter_name: str, packs: dict[str, RulePack]) -> None:
        """A venue of whole shares (PSX) takes no fractional lot: ``lot_size: 1.5`` in the instrument
        master, or in a rule pack that overrides it, is a config error at its key. Pydantic has
        already refused lots <= 0; fractions stay legal for venues that trade them (Pulse)."""
        why = f"venue {venue!r} ({adapter_name}) trades whole shares; a PSX lot is 1, or 500 for ETFs and futures"
        problems: dict[tuple[str | int, ...], ConfigError] = {}
        for index, instrument in enumerate(self.cfg.instruments):
            if instrument.venue == venue and not _is_whole(instrument.lot_size):
                where: tuple[str | int, ...] = ("instruments", index, "lot_size")
                problems[where] = self.loaded.error(where, f"lot_size {instrument.lot_size} is not whole: {why}")
        risk = self.cfg.risk
        for symbol, pack in packs.items():
            if pack.lot_size is None or _is_whole(pack.lot_size):
                continue
            if "lot_size" in risk.instruments.get(symbol, {}):
                where = ("risk", "instruments", symbol, "lot_size")
            elif "lot_size" in risk.rules:
                where = ("risk", "rules", "lot_size")
            else:
                where = ("risk", "profile")
            problems[where] = self.loaded.error(where, f"lot_size {pack.lot_size} for {symbol} is not whole: {why}")
        if problems:
            found = sorted(problems.values(), key=lambda problem: problem.line or 0)
            raise ConfigError.combine(found, f"{self.loaded.display}: {len(found)} problems in the config:")

    def _make_adapter(self, venue: str, where: tuple[str, ...], adapter_name: str, raw_options: dict[str, Any],
                      instruments: list[Any], sink: Any) -> VenueAdapter:
        """One adapter from its config section; what it refuses (a missing credential, an option
        its venue cannot honour) is a config error naming the section, not a traceback."""
        adapter_cls = self._adapter_class(where, adapter_name)
        options = validate_section(self.loaded, adapter_cls.options_model, raw_options, (*where, "options"))
        try:
            return adapter_cls(venue, options, instruments, self.clock, sink, seed=self.cfg.run.seed)
        except ValueError as exc:
            raise self.loaded.error((*where, "options"), str(exc)) from None

    def all_adapters(self) -> list[VenueAdapter]:
        """Every adapter this run owns: each venue's order adapter and any separate market-data one."""
        return [*self.adapters.values(), *self.feeds.values()]

    def venue_state_path(self, venue: str) -> Path:
        """An embedded venue's own state, beside the journal: ``config.journal.venue-paper.sqlite``."""
        assert self.journal_path is not None
        return self.journal_path.with_name(f"{self.journal_path.stem}.venue-{venue}.sqlite")

    def _open_journal(self) -> None:
        """Open (or start) the journal and rebuild the runtime's state from it."""
        if self.journal_path is None:
            self.runtime.client_epoch = new_epoch()  # nothing durable: each run is its own epoch
            return
        jcfg = self.cfg.journal
        if self.fresh_account:
            for name in self.adapters:
                state = self.venue_state_path(name)
                if state.exists():
                    moved = move_aside(state)
                    log.warning("fresh account: venue state %s moved to %s", state, moved)
            if self.journal_path.exists():
                log.warning("fresh account: the journal %s is moved aside (nothing is deleted)", self.journal_path)
        for name in self.adapters:
            make_private(self.venue_state_path(name))  # 0600 before the venue's SQLite opens it
        journal = Journal.open(self.journal_path, sync=jcfg.sync, fresh=self.fresh_account,
                               redactor=Redactor(self.loaded.secret_values))
        self.journal = journal
        try:
            journal.begin_run(self.clock.now_ns(), str(self.loaded.path), self.days[0])
            self.restored = restore(self.runtime, journal, self.days[0])
        except BaseException:
            journal.close()
            self.journal = None
            raise
        log.info("journal %s: %s", self.journal_path, self.restored.describe())

    async def _connect_and_recover(self) -> None:
        """Connect every venue; with a journal, reconcile each with it before any strategy hears
        anything (orders refused with 7015 meanwhile), then hand strategies their saved state."""
        rt = self.runtime
        journal = self.journal
        if journal is not None:
            rt.hold_strategies()
            for name in self.adapters:
                rt.mark_recovering(name)
        for adapter in self.all_adapters():
            try:
                await adapter.connect()
            except Exception as exc:
                raise StartupError(f"venue {adapter.venue} ({adapter.name}) could not connect: {exc}") from exc
        if journal is not None:
            restart = self.cfg.journal.on_restart
            # the venue's fills since the journal's last word (a second of margin: exec ids dedupe)
            since = journal.last_ns - NS_PER_S if journal.last_ns else self.clock.now_ns() - 86_400 * NS_PER_S
            for name in self.adapters:
                venue = rt.venues[name]
                try:
                    await recover_venue(rt, venue, since, rt.unknown_orders, restart.open_orders)
                except NotImplementedError as exc:
                    raise StartupError(f"venue {name}: restart reconciliation is impossible: {exc}") from None
                except Exception as exc:
                    raise StartupError(
                        f"venue {name}: restart reconciliation failed ({type(exc).__name__}: {exc}); the engine "
                        "does not trade an account it cannot reconcile"
                    ) from exc
                rt.venue_ready(venue)
            journal.commit(self.clock.now_ns())
            rt.release_strategies()
            states = self.restored.strategy_states if self.restored is not None else {}
            for runner in rt.runners.values():
                if runner.name in states:
                    rt.call_rare(runner, "on_load", state=states[runner.name])
        for name in self.adapters:  # a derivatives account takes the venue's equity, margins, positions
            await rt.sync_account(rt.venues[name])
            rt.start_account_sync(rt.venues[name])
        for name, adapter in self.adapters.items():
            self.feeds.get(name, adapter).subscribe(rt.subscriptions(name))

    async def _wait_until(self, done: Callable[[], bool], seconds: float) -> None:
        """Let venues answer until ``done()`` or ``seconds`` have passed: engine time on the
        simulated clock (timers run, queued venue queries too), real time on the wall clock."""
        rt = self.runtime
        if isinstance(self.clock, SimClock):
            deadline = self.clock.now_ns() + int(seconds * NS_PER_S)
            while not done() and self.clock.advance(deadline):
                if rt.pending_tasks:
                    await rt.run_pending()
            if rt.pending_tasks:
                await rt.run_pending()
        else:
            with anyio.move_on_after(seconds):
                while not done():
                    if rt.pending_tasks:
                        await rt.run_pending()
                    await anyio.sleep(0.02)

    async def _flush_journal(self) -> None:
        """Group commit: order rows queued on the event path reach the disk within ``flush_ms``."""
        journal = self.journal
        assert journal is not None
        interval = self.cfg.journal.flush_ms / 1000
        while True:
            await anyio.sleep(interval)
            if journal.pending_orders:
                journal.commit(self.clock.now_ns())

    def _start_save_timer(self) -> None:
        """Strategies' on_save state every ``journal.save_seconds`` of engine time."""
        step = int(self.cfg.journal.save_seconds * NS_PER_S)

        def tick() -> None:
            self.runtime.save_strategy_states()
            self.clock.call_later(step, tick)

        self.clock.call_later(step, tick)

    def _build_strategies(self, loaded_strategies: list[LoadedStrategy]) -> None:
        by_name = {s.name: s for s in self.cfg.strategies}
        for loaded in loaded_strategies:
            spec = by_name[loaded.name]
            master = self.runtime.venues[spec.venue].instruments
            instruments = [master[symbol] for symbol in spec.instruments]
            runner = StrategyRunner(loaded.name, spec.venue, instruments, loaded, spec.algorithm_id)
            self.runtime.add_strategy(
                runner, loaded.params, limits=spec.limits, rate_limit=spec.rate_limit, mmp=spec.mmp,
                loss_limit=spec.loss_limit,
            )
            adapter = self.adapters[spec.venue]
            if spec.mmp is not None and adapter.capabilities.mmp:  # the venue protects too (Pulse)
                adapter.configure_mmp(loaded.name, spec.instruments, spec.mmp.interval, spec.mmp.frozen_time,
                                      spec.mmp.quantity_limit)

    # ---- run -----------------------------------------------------------------------------
    async def run(self) -> RunResult:
        self._wall_started = time.perf_counter()
        metrics = self.cfg.metrics
        self.observer = Observer(self.runtime, self.clock.describe(), metrics.stall_seconds)
        self.metrics_server = MetricsServer(self.observer, metrics.address) if metrics.enabled else None
        if self.metrics_server is not None:
            self.metrics_server.start()  # first: /healthz answers (and /readyz says why not) during start-up
        try:
            return await self._run()
        finally:
            if self.metrics_server is not None:
                self.metrics_server.stop()

    async def _run(self) -> RunResult:
        """Adapters get a task group of their own (reader loops, heartbeats) that outlives the
        trading loop, so they can still answer during shutdown."""
        try:
            self._open_journal()
            if self.recorder is not None:
                self.recorder.start()
            async with anyio.create_task_group() as adapter_tasks:
                for adapter in self.all_adapters():
                    adapter.bind(adapter_tasks)
                try:
                    return await self._run_trading()
                finally:
                    adapter_tasks.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            refusal = only_error(group, StartupError)
            if refusal is not None:
                raise refusal from None  # one clear line, not the task group's traceback
            raise
        finally:
            self.runtime.stop_hook_watch()
            if self.recorder is not None:
                self.recorder.close()
            if self.journal is not None:
                self.journal.close()

    async def _run_trading(self) -> RunResult:
        log.info(
            "engine starting: %d strateg%s, venues %s, trading day%s %s, %s clock",
            len(self.runtime.runners), "y" if len(self.runtime.runners) == 1 else "ies",
            ", ".join(self.adapters), "" if len(self.days) == 1 else "s",
            ", ".join(d.isoformat() for d in self.days), self.clock.describe(),
        )
        # from here the per-event loop reads the clock once per event; the watch holds the budget
        # (ended in this method's finally, whose rebuild of the dispatch settles the sampled counts
        # before the report reads them; or in _run's, when starting failed)
        self.runtime.start_hook_watch()
        await self._connect_and_recover()
        for runner in self.runtime.runners.values():
            self.runtime.call_rare(runner, "on_start")
        self.runtime.tell_where_venues_stand()
        # Everything built so far (config, strategies, instrument master) lives for the whole run:
        # move it out of the collector's way so full collections stay short on the event path.
        gc.collect()
        gc.freeze()
        self._follow_recorded_sessions()
        self.driver.start()
        self.observer.session_known = True
        self.observer.publish()
        self.runtime.start_risk_timer()
        self._start_timeline_timer()
        self._write_pid_file()
        systemd.ready(f"trading: {len(self.runtime.runners)} strategies on {', '.join(self.adapters)}")
        try:
            # signals, metrics and the watchdog outlive the trading loop: shutdown may take a while
            async with anyio.create_task_group() as outer:
                outer.start_soon(self._watch_signals)
                outer.start_soon(self._publish_metrics)
                async with anyio.create_task_group() as tg:
                    if not isinstance(self.clock, SimClock):
                        self.runtime.task_starter = tg.start_soon
                    tg.start_soon(self._watch_kill_signals)
                    tg.start_soon(self._heartbeat)
                    if self.journal is not None:
                        tg.start_soon(self._flush_journal)
                        self._start_save_timer()
                    await self.runtime.run_pending()
                    if isinstance(self.clock, SimClock):
                        await self._run_simulated(self.clock)
                    else:
                        await self._run_wall()
                    tg.cancel_scope.cancel()
                self.runtime.task_starter = None
                systemd.stopping("stopping: on_stop, cancelling open orders, writing the report")
                await self._shutdown(outer)
                outer.cancel_scope.cancel()
            self.runtime.sample_timeline()
            self.observer.publish()
        finally:
            self.runtime.stop_hook_watch()
            self._remove_pid_file()
        exit_code = EXIT_ORDERS_LEFT_WORKING if self.left_working else 0
        return RunResult(self.report(), exit_code, self.stopped_by)

    def _follow_recorded_sessions(self) -> None:
        """A venue that replays recorded session changes (read at its connect) drives the sessions
        in place of the config's profile. Sessions are one per engine: with several such venues the
        first in the config leads, and the others are named in the log."""
        leading: str | None = None
        for name, adapter in self.adapters.items():
            changes = adapter.session_changes()
            if changes is None:
                continue
            if leading is not None:
                log.warning("venue %s also replays recorded sessions; those of %s are followed", name, leading)
                continue
            leading = name
            log.info("sessions: following the %d session changes recorded for venue %s", len(changes), name)
            self.driver = RecordedSessionDriver(changes, self.clock, self.driver.on_change)

    # ---- the operator's kill switch ------------------------------------------------------
    @property
    def pid_file(self) -> Path:
        """Where ``engine halt`` finds this engine: next to the config, named after it."""
        return pid_file_for(self.loaded.path)

    def _write_pid_file(self) -> None:
        try:
            write_atomic(self.pid_file, f"{os.getpid()}\n")  # a FIFO there would block the start forever
        except OSError as exc:  # a read-only folder must not stop trading; SIGUSR1 still works
            log.warning("cannot write pid file %s (%s); use kill -USR1 <pid> to halt", self.pid_file, exc)

    def _remove_pid_file(self) -> None:
        try:
            # is_file: reading a FIFO someone put there would block the exit forever
            if self.pid_file.is_file() and self.pid_file.read_text().strip() == str(os.getpid()):
                self.pid_file.unlink()
        except OSError:
            pass

    async def _watch_kill_signals(self) -> None:
        """SIGUSR1 halts the account (cancel all, refuse all); SIGUSR2 puts it in reducing."""
        with anyio.open_signal_receiver(signal.SIGUSR1, signal.SIGUSR2) as signals:
            async for signum in signals:
                state = TradingState.HALTED if signum == signal.SIGUSR1 else TradingState.REDUCING
                name = signal.Signals(signum).name
                log.error("%s received: kill switch -> %s", name, state.value)
                self.runtime.manual_trigger(state, f"manual ({name})")

    async def _run_simulated(self, clock: SimClock) -> None:
        speed = Decimal(self.cfg.run.speed)
        advance = clock.advance
        runtime = self.runtime
        pending = runtime.pending_tasks  # the same list object: truthy while async work waits
        end = self.end_ns
        sim_start = clock.now_ns()
        wall_start = time.perf_counter()
        ran = 0
        while not self.stop_requested:
            if speed > 0:
                # paced: run the next timer only once real time has caught up with it
                due = clock.next_due()
                if due is None or due > end:
                    break
                lag = float(Decimal(due - sim_start) / NS_PER_S / speed) - (time.perf_counter() - wall_start)
                if lag > 0:
                    await anyio.sleep(min(lag, 0.2))
                    continue
                advance(end)
                ran += 1
                if pending:
                    await runtime.run_pending()
            else:
                batch = 0
                while batch < SIM_BATCH and advance(end):
                    batch += 1
                    if pending:
                        break
                if pending:
                    await runtime.run_pending()  # reconciliation: time waits for the venue's answers
                    continue
                if batch < SIM_BATCH:
                    break  # nothing left before the end of the last day
                ran += batch
            if ran >= SIM_BATCH:  # let signals and the heartbeat in
                ran = 0
                await anyio.sleep(0)

    async def _run_wall(self) -> None:
        self._wall_done = anyio.Event()
        if self.stop_requested:  # asked to stop (a signal, --duration) while the venues connected
            return
        self.clock.call_at(self.end_ns, self._end_of_window)
        await self._wall_done.wait()

    def _end_of_window(self) -> None:
        """The run's end time: strategies hear no more market data from here (what venues send
        until shutdown stops them is recorded, delivered to none, as a replay of it ends here)."""
        self.runtime.close_market_data()
        if self._wall_done is not None:
            self._wall_done.set()

    async def _watch_signals(self) -> None:
        """The first SIGINT/SIGTERM stops the run. Later ones never abandon open orders: while
        shutdown cancels they say how many are left and when it gives up (SIGKILL still kills)."""
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for signum in signals:
                name = signal.Signals(signum).name
                closer = self.closer
                if closer is not None:
                    log.warning(
                        "%s received while shutdown cancels: still cancelling %d open orders; the engine gives "
                        "up in %.1f s (run.shutdown_timeout_s) and exits %d naming them. SIGKILL would leave them "
                        "working at the venue", name, sum(1 for _ in closer.working()), closer.seconds_left(),
                        EXIT_ORDERS_LEFT_WORKING,
                    )
                elif self.stop_requested:
                    log.warning("%s received: already stopping", name)
                else:
                    log.warning("%s received: stopping (on_stop, cancel open orders, write the report)", name)
                    self.request_stop(name)

    def request_stop(self, reason: str) -> None:
        """End the run the way SIGINT does (on_stop, cancel open orders, report); ``reason``
        becomes the report's ``stopped_by``."""
        self.stop_requested = True
        self.stopped_by = reason
        self.runtime.close_market_data()
        if self._wall_done is not None:
            self._wall_done.set()

    async def _heartbeat(self) -> None:
        interval = float(self.cfg.run.heartbeat_seconds)
        last_events = 0
        last_wall = time.perf_counter()
        while True:
            await anyio.sleep(interval)
            rt = self.runtime
            events = rt.n_book + rt.n_trade
            now = time.perf_counter()
            rate = (events - last_events) / max(now - last_wall, 1e-9)
            last_events, last_wall = events, now
            pnl = sum((r.realized_pnl for r in rt.runners.values()), Decimal(0))
            log.info(
                "heartbeat %s events/s=%d events=%d orders=%d refused=%d open=%d fills=%d rejects=%d realized_pnl=%s",
                rt.session.phase.value, rate, events, rt.orders_submitted, rt.orders_refused, rt.open_order_count(),
                rt.n_fill,
                sum(rt.rejects_by_code.values()), pnl,
            )

    def _start_timeline_timer(self) -> None:
        """Sample PnL, positions and prices for the page of the day every ``interval_s`` of engine
        time (simulated time in paper mode): cheap, and never per event."""
        step = self.runtime.timeline.interval_s * NS_PER_S

        def tick() -> None:
            self.runtime.sample_timeline()
            self.clock.call_later(step, tick)

        self.clock.call_later(step, tick)

    async def _publish_metrics(self) -> None:
        """Publish a metrics snapshot every ``metrics.publish_seconds`` of real time, measure how
        late the loop woke this task (its lag), and ping systemd's watchdog: a stalled loop stops
        all three, which is what /healthz and systemd then see."""
        interval = float(self.cfg.metrics.publish_seconds)
        watchdog = systemd.watchdog_interval()
        next_ping = time.monotonic()
        while True:
            asked = time.monotonic()
            await anyio.sleep(interval)
            woke = time.monotonic()
            self.observer.publish(max(0.0, woke - asked - interval))
            if watchdog is not None and woke >= next_ping:
                systemd.watchdog()
                next_ping = woke + watchdog

    async def _shutdown(self, tasks: TaskGroup) -> None:
        """``tasks`` runs venue requests on the wall clock (a query must not be cut off by the
        pause between two looks at the orders)."""
        rt = self.runtime
        rt.stop_protection_timers()
        rt.flush_logs()
        rt.save_strategy_states()
        for runner in rt.runners.values():
            rt.stop_strategy(runner, cancel=False)
        if not isinstance(self.clock, SimClock):
            rt.task_starter = tasks.start_soon
            tasks.start_soon(rt.run_pending)  # requests queued since the trading loop ended
        try:
            await self._close_every_order()
        finally:
            rt.task_starter = None
        self.driver.stop()
        for adapter in self.all_adapters():
            try:
                await adapter.close()
            except Exception:  # close must not stop the report from being written
                log.exception("closing venue %s failed", adapter.venue)
        if self.journal is not None:
            rt.take_snapshot("stop")
            stopped_by = self.stopped_by
            if self.left_working:  # the next start reconciles them: the journal says why they are open
                stopped_by += f"; {len(self.left_working)} orders left working"
            self.journal.end_run(self.clock.now_ns(), stopped_by, None)

    async def _close_every_order(self) -> None:
        """Cancel everything, then keep at it until each order is final or the deadline passes;
        what is left is logged (ERROR, one line per order), told to systemd and kept for the report."""
        rt = self.runtime
        timeout_s = self.cfg.run.shutdown_timeout_s
        # real time unless the engine steps time itself: network venues answer in real time
        now_ns = self.clock.now_ns if isinstance(self.clock, SimClock) else time.monotonic_ns
        closer = OrderCloser(rt, int(timeout_s * NS_PER_S), now_ns)
        self.closer = closer
        rt.cancel_everything()
        while not closer.done() and closer.seconds_left() > 0:
            await self._wait_until(closer.done, min(SHUTDOWN_LOOK_S, closer.seconds_left()))
            await anyio.sleep(0)  # let signals and metrics in (the simulated clock never waits)
            if not closer.done():
                closer.chase()
        self.closer = None
        if closer.cancels_sent or closer.queries:
            log.info("shutdown: %d cancels sent again, %d venue queries", closer.cancels_sent, closer.queries)
        self.left_working = closer.left_working()
        if not self.left_working:
            return
        log.error("%d orders still working after %s s of shutdown cancels (run.shutdown_timeout_s); exit %d",
                  len(self.left_working), timeout_s, EXIT_ORDERS_LEFT_WORKING)
        for each in self.left_working:
            log.error("left working at venue %s: %s %s %s leaves %s (%s), venue id %s, strategy %s",
                      each["venue"], each["client_id"], each["side"], each["symbol"], each["leaves"],
                      each["status"], each["venue_order_id"] or "none", each["strategy"])
        systemd.status(f"stopped with {len(self.left_working)} orders still working: "
                       + ", ".join(each["client_id"] for each in self.left_working))

    # ---- report --------------------------------------------------------------------------
    def report(self) -> dict[str, Any]:
        rt = self.runtime
        final = rt.final_status
        return {
            "sessions": rt.sessions_seen,
            "trading_days": [d.isoformat() for d in self.days],
            "events": {"book": rt.n_book, "trade": rt.n_trade},
            "orders": {
                "submitted": rt.orders_submitted,
                "refused": rt.orders_refused,
                "filled": final.get("filled", 0),
                "cancelled": final.get("cancelled", 0),
                "rejected": final.get("rejected", 0),
                "expired": final.get("expired", 0),
                # refusals of a change to an order (it stays as it was): not orders, counted apart;
                # rejects_by_code counts all three: rejected orders, refused amends, refused cancels
                "amends_refused": sum(r.amends_refused for r in rt.runners.values()),
                "cancels_refused": sum(r.cancels_refused for r in rt.runners.values()),
                "open_at_exit": rt.open_order_count(),
                "left_working": self.left_working,
            },
            "fills": rt.n_fill,
            "duplicate_fills_dropped": rt.n_duplicate_fills,
            "rejects_by_code": {str(code): n for code, n in sorted(rt.rejects_by_code.items())},
            "strategies": {name: rt.strategy_summary(r) for name, r in rt.runners.items()},
            "mmp_triggers": rt.mmp_triggers,
            "kill_switch": rt.kill_switch.report(),
            "venues": {name: rt.venue_summary(v) for name, v in rt.venues.items()},
            "anomalies": dict(rt.anomalies),
            "timeline": rt.timeline.to_json(),
            "journal": self._journal_report(),
            "anomaly_samples": rt.anomaly_samples,
            "seed": self.cfg.run.seed,
            "clock": self.clock.describe(),
            "stopped_by": self.stopped_by,
            "wall_seconds": round(time.perf_counter() - self._wall_started, 3),
        }


    def _journal_report(self) -> dict[str, Any] | None:
        journal = self.journal
        if journal is None:
            return None
        return {
            "path": str(self.journal_path),
            "sync": self.cfg.journal.sync,
            "restored": self.restored.describe() if self.restored is not None else "",
            "fills": journal.n_fills,
            "order_rows": journal.n_order_rows,
            "commits": journal.n_commits,
            "commit_us_mean": round(journal.commit_ns_total / journal.n_commits / 1000, 1) if journal.n_commits else 0,
        }


def _is_whole(value: Decimal) -> bool:
    return value == value.to_integral_value()


def pid_file_for(config_path: Path) -> Path:
    """``config.yaml`` -> ``config.pid`` beside it: one running engine per config file."""
    return Path(config_path).with_suffix(".pid")


def write_report(report: dict[str, Any], path: Path, redactor: Redactor | None = None) -> None:
    write_scrubbed(path, json.dumps(report, indent=2) + "\n", redactor)


def summary_table(report: dict[str, Any]) -> str:
    """The per-strategy table printed at exit."""
    rows = [("strategy", "state", "orders", "fills", "rejects", "position", "fees", "realized", "unrealized")]
    for name, s in report["strategies"].items():
        position = " ".join(f"{sym}:{qty}" for sym, qty in s["position"].items() if Decimal(qty)) or "flat"
        rows.append((name, s["state"], str(s["orders"]), str(s["fills"]), str(s["rejects"]), position,
                     s.get("fees", "0"), s["realized_pnl"], s["unrealized_pnl"]))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    o = report["orders"]
    by_code = report["rejects_by_code"]
    lines.append("")
    # "rejects" (the table, rejects_by_code) = rejected orders + refused amends + refused cancels
    lines.append(
        f"sessions: {' -> '.join(report['sessions'])}\n"
        f"events: {report['events']['book']} book, {report['events']['trade']} trade; orders: {o['submitted']} "
        f"submitted, {o['filled']} filled, {o['cancelled']} cancelled, {o['rejected']} rejected "
        f"({o.get('refused', 0)} of them by the engine, never sent), {o['expired']} expired; refused by the "
        f"engine: {o.get('amends_refused', 0)} amends, {o.get('cancels_refused', 0)} cancels; "
        f"rejects by code ({sum(by_code.values())}: orders, amends and cancels): {by_code or 'none'}"
    )
    return "\n".join(lines)


def run_config(
    loaded: LoadedConfig, report_path: Path | None = None, on_clock: Callable[[Clock], None] | None = None,
    *, fresh_account: bool = False, journal_path: Path | None = None, record_to: Path | None = None,
    market_data_only: bool = False,
) -> RunResult:
    """Build and run an engine for a loaded config; write the report if asked. ``on_clock`` gets
    the engine's clock before anything runs (the CLI stamps log lines with engine time);
    ``record_to`` records its market data there (``engine record --out``), ``market_data_only``
    leaves order adapters out where a ``market_data:`` adapter carries the data."""
    engine = Engine(loaded, fresh_account=fresh_account, journal_path=journal_path, record_to=record_to,
                    market_data_only=market_data_only)
    if on_clock is not None:
        on_clock(engine.clock)
    result = anyio.run(engine.run, backend="asyncio")
    publish_result(result, loaded, report_path)
    return result


def publish_result(result: RunResult, loaded: LoadedConfig, report_path: Path | None) -> None:
    """Print the summary table and write the JSON report (if asked), the config's secrets
    (``loaded.secret_values``) scrubbed from both. A report that cannot be written raises
    :class:`~engine.outfile.OutputPathError` naming the path (after the table is printed)."""
    redactor = Redactor(loaded.secret_values)
    print(redactor.scrub(summary_table(result.report)), file=sys.stdout, flush=True)
    if report_path is not None:
        try:
            write_report(result.report, report_path, redactor)
        except OutputPathError:
            raise  # already names the path and what is there
        except OSError as exc:
            raise OutputPathError(f"cannot write the report {report_path}: {exc.strerror or exc}") from exc
        log.info("report written to %s", report_path)


