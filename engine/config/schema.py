"""The config file's schema: strict pydantic models, one per section, and the checks across sections.

Unknown keys are refused everywhere (a typo must never be silently ignored). A check that involves
several entries (a duplicate name, a venue no section defines) raises
:class:`~engine.config.errors.CrossFieldProblems` with each problem's key path, so the loader can
name each one's line.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from engine.config.errors import CrossFieldProblems, KeyPath, did_you_mean
from engine.model import Instrument, Side
from engine.risk.account import AccountConfig, PositionLimits
from engine.risk.derivatives import DerivativesAccountConfig
from engine.risk.killswitch import KillSwitchConfig
from engine.risk.mmp import MmpConfig
from engine.risk.ratelimit import RateLimitConfig
from engine.risk.rulepack import DEFAULT_PROFILE, RulePack, shipped_profiles
from engine.risk.storm import RepeatRefusalsConfig
from engine.sessions import SessionsConfig

__all__ = [
    "EngineConfig",
    "InstrumentConfig",
    "LoggingConfig",
    "MetricsConfig",
    "RiskConfig",
    "RunConfig",
    "StrategyConfig",
    "VenueConfig",
    "tick_decimals",
]

EXTENSION_PREFIX = "x-"  # top-level keys ignored by validation, for YAML anchors
# 16: a client id is <name>-<epoch>-<n> within a venue's 32 characters (engine/clientids.py)
STRATEGY_NAME = re.compile(r"^[A-Za-z0-9_-]{1,16}$")
#: a registered algorithm id (SECP: every algorithm under a unique id): short and venue-safe, so it
#: fits a journal column, a CSV cell and any venue's free-text field without escaping
ALGO_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
VENUE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class _Strict(BaseModel):
    """Unknown keys are refused: a typo must never be silently ignored."""

    model_config = ConfigDict(extra="forbid")


class RunConfig(_Strict):
    """How a run goes: which clock, from which day, for how long, how fast."""

    clock: Literal["simulated", "wall"] = "simulated"
    # First trading day to run; None = the next trading day from today in Asia/Karachi, which the
    # runtime resolves (config never reads the clock).
    start: dt.date | None = None
    days: int = Field(default=1, ge=1)
    # Simulated clock pace: 0 = as fast as possible, X = X times real time.
    speed: Decimal = Field(default=Decimal(0), ge=0)
    seed: int = 0
    report: Path | None = None
    heartbeat_seconds: Decimal = Field(default=Decimal(5), gt=0)
    # How long shutdown keeps cancelling (real seconds; simulated ones on the simulated clock)
    # before it gives up and exits 3 naming every order still working.
    shutdown_timeout_s: Decimal = Field(default=Decimal(30), gt=0, le=3600)
    # Record every market-data event the run receives to Parquet under this folder (relative to
    # the config's folder; README "Recording and replay"). Needs pyarrow (the ``record`` extra).
    record: Path | None = None

    @field_validator("record")
    @classmethod
    def _record_folder(cls, record: Path | None) -> Path | None:
        """Refused at load, not at the first event: an engine without pyarrow (14:30 is no time
        to learn it is missing). A path that is a file is refused once it is resolved against the
        config's folder (``engine.app``)."""
        if record is None:
            return None
        if not str(record).strip():
            raise ValueError("record is a folder to write the recording into; got an empty path")
        from engine.recording.format import require_pyarrow

        try:
            require_pyarrow()
        except ImportError as exc:
            raise ValueError(str(exc)) from None
        return record


class LoggingConfig(_Strict):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    format: Literal["human", "json"] = "human"

    @field_validator("level", mode="before")
    @classmethod
    def _level_any_case(cls, value: Any) -> Any:
        """``level: debug`` reads as naturally as ``DEBUG``."""
        return value.upper() if isinstance(value, str) else value


#: the engine's metrics port: fixed and documented so scrape configs and firewalls can name it
DEFAULT_METRICS_PORT = 9310
DEFAULT_LISTEN = f"127.0.0.1:{DEFAULT_METRICS_PORT}"
METRICS_LISTEN_ENV = "ENGINE_METRICS_LISTEN"


class MetricsConfig(_Strict):
    """Prometheus metrics and health endpoints (``/metrics``, ``/healthz``, ``/readyz``)."""

    enabled: bool = True
    # host:port. Loopback by default: a trading engine's internals are not for the whole network;
    # 0.0.0.0 (or another address) only when written here. Port 0 picks a free port (tests).
    # ENGINE_METRICS_LISTEN, when set, replaces the default (not a value written in the config):
    # for test suites and hosts running several engines from one shipped config.
    listen: str = Field(
        default_factory=lambda: os.environ.get(METRICS_LISTEN_ENV) or DEFAULT_LISTEN, validate_default=True
    )
    # how often (real time) the event loop publishes a snapshot for scrapes
    publish_seconds: Decimal = Field(default=Decimal(1), gt=0, le=60)
    # /healthz answers 503 when the loop has not published for this long
    stall_seconds: Decimal = Field(default=Decimal(10), gt=0)

    @field_validator("listen")
    @classmethod
    def _host_port(cls, listen: str) -> str:
        host, sep, port = listen.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ValueError(f"listen is 'host:port', e.g. '127.0.0.1:{DEFAULT_METRICS_PORT}'; got {listen!r}")
        return listen

    @property
    def address(self) -> tuple[str, int]:
        host, _, port = self.listen.rpartition(":")
        return host.strip("[]"), int(port)


class InstrumentConfig(_Strict):
    """One entry of the instrument master."""

    symbol: str = Field(min_length=1)
    venue: str = Field(min_length=1)
    tick_size: Decimal = Field(gt=0)
    lot_size: Decimal = Field(default=Decimal(1), gt=0)
    previous_close: Decimal = Field(default=Decimal(0), ge=0)
    sector: str = ""
    # the currency a derivatives account settles this instrument's PnL and margin in (USD for
    # BTC_USD-PERPETUAL on Pulse); the account's currency when venues.<name>.account.currency is unset
    settlement_currency: str | None = Field(default=None, pattern=r"^[A-Z0-9]{2,10}$")
    # None = as many decimals as tick_size has (0.01 -> 2, 0.05 -> 2, 1 -> 0).
    price_precision: int | None = Field(default=None, ge=0)

    @field_validator("symbol")
    @classmethod
    def _symbol_has_no_spaces(cls, symbol: str) -> str:
        if symbol != symbol.strip() or " " in symbol:
            raise ValueError(f"a symbol has no spaces, got {symbol!r}")
        return symbol

    @model_validator(mode="after")
    def _tick_fits_precision(self) -> InstrumentConfig:
        decimals = tick_decimals(self.tick_size)
        if self.price_precision is not None and decimals > self.price_precision:
            raise ValueError(
                f"tick_size {self.tick_size} has {decimals} decimals but price_precision is "
                f"{self.price_precision}; raise price_precision or leave it out"
            )
        return self

    @model_validator(mode="after")
    def _previous_close_on_tick(self) -> InstrumentConfig:
        """A close is a traded price, so it sits on the tick grid; one off it is a typo, and the
        band and the paper market built on it would be off the grid too."""
        instrument = self.to_instrument()
        close = self.previous_close
        try:
            if instrument.on_tick(close):
                return self
            below, above = instrument.round_to_tick(close, Side.BUY), instrument.round_to_tick(close, Side.SELL)
        except ArithmeticError:  # more ticks than 28 digits hold: no venue quotes such a price
            sentence = f"previous_close {close} is too many ticks of tick_size {self.tick_size} for exact arithmetic"
        else:
            sentence = (f"previous_close {close} is not on the tick grid of tick_size {self.tick_size} "
                        f"(nearest ticks {below} and {above})")
        raise CrossFieldProblems([(("previous_close",), sentence)])

    @property
    def key(self) -> tuple[str, str]:
        return (self.venue, self.symbol)

    def to_instrument(self) -> Instrument:
        """The runtime's slotted :class:`~engine.model.Instrument` for this entry."""
        precision = self.price_precision if self.price_precision is not None else tick_decimals(self.tick_size)
        return Instrument(
            symbol=self.symbol,
            venue=self.venue,
            tick_size=self.tick_size,
            lot_size=self.lot_size,
            previous_close=self.previous_close,
            sector=self.sector,
            price_precision=precision,
        )


class VenueRateLimit(_Strict):
    """A venue account's request budget, replacing what the adapter declares from the venue's
    documents (``scope``: orders, cancels or all)."""

    scope: Literal["orders", "cancels", "all"]
    count: int = Field(gt=0)
    per_seconds: Decimal = Field(default=Decimal(1), gt=0)
    burst: int | None = Field(default=None, gt=0)


class MarketDataConfig(_Strict):
    """Market data for a venue from an adapter other than the one carrying its orders (PSX: the
    Live Feed for data, the Optimus broker API for orders)."""

    adapter: str = Field(min_length=1)
    options: dict[str, Any] = Field(default_factory=dict)


def _account_kind(value: Any) -> str:
    """``venues.<name>.account.kind``, ``cash`` when left out (every config before derivatives)."""
    if isinstance(value, dict):
        return str(value.get("kind", "cash"))
    return str(getattr(value, "kind", "cash"))


class VenueConfig(_Strict):
    """A venue: which adapter serves it, and that adapter's own options (checked later by the
    adapter's ``options_model`` through :func:`validate_section`), plus the engine's side of the
    venue account: the cash account, cancel-on-disconnect and request budgets."""

    adapter: str = Field(min_length=1)
    options: dict[str, Any] = Field(default_factory=dict)
    # kind: cash (the default, a PSX cash account) or derivatives (positions may go short, margin
    # and equity in the settlement currency, reconciled with the venue's account figures)
    account: Annotated[
        Annotated[AccountConfig, Tag("cash")] | Annotated[DerivativesAccountConfig, Tag("derivatives")],
        Discriminator(_account_kind),
    ] = Field(default_factory=AccountConfig)
    # When the connection drops: open orders become "unknown", new orders are refused (9001); on
    # reconnect the engine reconciles and then cancels (or keeps) the orders open at the drop.
    cancel_on_disconnect: bool = True
    on_reconnect: Literal["cancel", "keep"] = "cancel"
    # None = the limits the adapter declares from the venue's documents
    rate_limits: list[VenueRateLimit] | None = None
    # None = market data from ``adapter`` too; a feed's drop makes data stale, never orders unknown
    market_data: MarketDataConfig | None = None
    # halt and shutdown cancel with one mass-cancel request where the adapter has one. It cancels
    # EVERY order of the account at that venue: set false when people or other systems share it.
    mass_cancel: bool = True


class RestartConfig(_Strict):
    """What restart reconciliation does with orders the venue works for us."""

    # an order at the venue with one of our strategies' client ids that the engine has no record of
    # (sent in the last flush window before a crash, or found by the reconciliation after a
    # reconnect): cancel it without its strategy seeing it, or adopt it into its strategy
    unknown_orders: Literal["cancel", "adopt"] = "cancel"
    # orders the journal and the venue both know as open: keep them working for their strategies
    # (ctx.open_orders lists them), or cancel them before the strategies start
    open_orders: Literal["keep", "cancel"] = "keep"


class JournalConfig(_Strict):
    """The durable journal (README "Journal and restart")."""

    enabled: bool = True
    # None = "<config name>.journal.sqlite" next to the config file
    path: Path | None = None
    # full: every commit reaches the disk (survives power loss); normal: survives an engine crash,
    # and restart reconciliation recovers from the venue what an OS crash could lose
    sync: Literal["full", "normal"] = "full"
    # order intents and state changes are group-committed at most this long after they happen
    flush_ms: int = Field(default=50, ge=1, le=10_000)
    # strategies' on_save state is stored this often (engine time), at each close and at stop
    save_seconds: Decimal = Field(default=Decimal(60), gt=0)
    # true: every run starts a new account (the old journal is moved aside, never deleted)
    fresh_account: bool = False
    on_restart: RestartConfig = Field(default_factory=RestartConfig)


class ContainmentConfig(_Strict):
    """How much misbehaviour a strategy gets before the engine stops it."""

    max_hook_failures: int = Field(default=1, ge=1)
    hook_budget_ms: Decimal = Field(default=Decimal(50), gt=0)
    max_hook_overruns: int = Field(default=3, ge=1)
    # reject storms (engine/risk/storm.py): a refusal spends from the strategy's order budget, or
    # from this many per second where the strategy has no rate_limit.orders_per_s (null: nothing)
    refusals_per_s: int | None = Field(default=10, ge=1)
    # the same refusal repeated: pause or fail the strategy; null turns the rule off
    repeat_refusals: RepeatRefusalsConfig | None = Field(default_factory=RepeatRefusalsConfig)


class RiskConfig(_Strict):
    """The PSX rule pack (profile plus overrides), the kill switch and strategy containment."""

    profile: str = DEFAULT_PROFILE
    rules: dict[str, Any] = Field(default_factory=dict)
    instruments: dict[str, dict[str, Any]] = Field(default_factory=dict)
    kill_switch: KillSwitchConfig = Field(default_factory=KillSwitchConfig)
    containment: ContainmentConfig = Field(default_factory=ContainmentConfig)

    @field_validator("profile")
    @classmethod
    def _known_profile(cls, profile: str) -> str:
        known = shipped_profiles()
        if profile not in known:
            raise ValueError(
                f"unknown risk profile {profile!r}; shipped profiles: {', '.join(sorted(known))}"
                f"{did_you_mean(profile, known)}"
            )
        return profile

    @model_validator(mode="after")
    def _packs_valid(self) -> RiskConfig:
        base = {**shipped_profiles()[self.profile], **self.rules}
        problems: list[tuple[KeyPath, str]] = []
        for path, values in [(("rules",), base)] + [
            (("instruments", symbol), {**base, **own}) for symbol, own in self.instruments.items()
        ]:
            try:
                RulePack.model_validate(values)
            except ValidationError as exc:
                for error in exc.errors():
                    where = path + tuple(error["loc"])
                    problems.append((where, _rule_error(error)))
        if problems:
            raise CrossFieldProblems(problems)
        return self


def _rule_error(error: Any) -> str:
    if error["type"] == "extra_forbidden":
        field_name = str(error["loc"][-1]) if error["loc"] else "?"
        return f"unknown rule {field_name!r}{did_you_mean(field_name, RulePack.model_fields)}"
    return str(error["msg"]).removeprefix("Value error, ")


class StrategyConfig(_Strict):
    """One strategy instance. The same file may be configured several times under other names."""

    name: str
    file: Path
    venue: str
    instruments: list[str] = Field(default_factory=list)
    # Checked against the strategy's declared PARAMS by the loader, which knows their types.
    params: dict[str, Any] = Field(default_factory=dict)
    enabled: bool = True
    # internal position limits (2008), the strategy's own request budget (3001), market-maker
    # protection for its mmp=True orders, and a loss (day PnL, in its venue account's currency) at which it is stopped
    limits: PositionLimits | None = None
    rate_limit: RateLimitConfig = Field(default_factory=RateLimitConfig)
    mmp: MmpConfig | None = None
    loss_limit: Decimal | None = Field(default=None, gt=0)
    # the id the algorithm is registered under with the broker/regulator; defaults to the name
    algo_id: str | None = None

    @property
    def algorithm_id(self) -> str:
        """The algo id every order of this strategy carries: ``algo_id``, else the strategy's name
        (names are unique too, so a config that sets none still has one id per algorithm)."""
        return self.algo_id if self.algo_id is not None else self.name

    @field_validator("algo_id")
    @classmethod
    def _algo_id_venue_safe(cls, algo_id: str | None) -> str | None:
        if algo_id is not None and not ALGO_ID.match(algo_id):
            raise ValueError(f"an algo_id is 1 to 32 letters, digits, '_' or '-', got {algo_id!r}")
        return algo_id

    @field_validator("name")
    @classmethod
    def _name_fits_order_ids(cls, name: str) -> str:
        if not STRATEGY_NAME.match(name):
            raise ValueError(
                f"a strategy name is 1 to 16 letters, digits, '_' or '-' (it goes into client order ids), got {name!r}"
            )
        return name

    @field_validator("file")
    @classmethod
    def _file_not_empty(cls, file: Path) -> Path:
        if str(file) in ("", "."):
            raise ValueError("give the strategy's .py file, relative to the config file's folder")
        return file


class EngineConfig(_Strict):
    """The whole config file."""

    run: RunConfig = Field(default_factory=RunConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    sessions: SessionsConfig = Field(default_factory=SessionsConfig)
    instruments: list[InstrumentConfig] = Field(default_factory=list)
    venues: dict[str, VenueConfig] = Field(default_factory=dict)
    strategies: list[StrategyConfig] = Field(default_factory=list)
    risk: RiskConfig = Field(default_factory=RiskConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    journal: JournalConfig = Field(default_factory=JournalConfig)

    @field_validator("venues")
    @classmethod
    def _venue_names(cls, venues: dict[str, VenueConfig]) -> dict[str, VenueConfig]:
        bad = [name for name in venues if not VENUE_NAME.match(name)]
        if bad:
            raise CrossFieldProblems(
                [((name,), "a venue name is 1 to 32 letters, digits, '_' or '-'") for name in bad]
            )
        return venues

    @model_validator(mode="after")
    def _entries_agree(self) -> EngineConfig:
        problems: list[tuple[KeyPath, str]] = []
        venue_names = list(self.venues)
        master: dict[str, set[str]] = {}
        first_seen: dict[tuple[str, str], int] = {}
        for index, instrument in enumerate(self.instruments):
            if instrument.venue not in self.venues:
                problems.append(
                    (
                        ("instruments", index, "venue"),
                        f"venue {instrument.venue!r} is not defined under venues"
                        f"{did_you_mean(instrument.venue, venue_names)}",
                    )
                )
            if instrument.key in first_seen:
                problems.append(
                    (
                        ("instruments", index),
                        f"{instrument.venue}:{instrument.symbol} is already in the instrument master "
                        f"at instruments[{first_seen[instrument.key]}]",
                    )
                )
            else:
                first_seen[instrument.key] = index
            master.setdefault(instrument.venue, set()).add(instrument.symbol)

        names: dict[str, int] = {}
        algo_ids: dict[str, int] = {}
        for index, strategy in enumerate(self.strategies):
            if strategy.algorithm_id in algo_ids and not (strategy.algo_id is None and strategy.name in names):
                problems.append(
                    (
                        ("strategies", index, "algo_id"),
                        f"algo_id {strategy.algorithm_id!r} is already the algo id of strategies"
                        f"[{algo_ids[strategy.algorithm_id]}] (an unset algo_id is the strategy's name); "
                        "each algorithm needs its own",
                    )
                )
            else:
                algo_ids[strategy.algorithm_id] = index
            if strategy.name in names:
                problems.append(
                    (
                        ("strategies", index, "name"),
                        f"strategy name {strategy.name!r} is already used by strategies[{names[strategy.name]}]; "
                        "names must be unique",
                    )
                )
            else:
                names[strategy.name] = index
            if strategy.venue not in self.venues:
                problems.append(
                    (
                        ("strategies", index, "venue"),
                        f"venue {strategy.venue!r} is not defined under venues"
                        f"{did_you_mean(strategy.venue, venue_names)}",
                    )
                )
                continue
            known = master.get(strategy.venue, set())
            listed: set[str] = set()
            for position, symbol in enumerate(strategy.instruments):
                if symbol in listed:
                    problems.append(
                        (("strategies", index, "instruments", position), f"{symbol} is listed twice")
                    )
                listed.add(symbol)
                if symbol not in known:
                    problems.append(
                        (
                            ("strategies", index, "instruments", position),
                            f"{symbol} is not in the instrument master for venue {strategy.venue!r}"
                            f"{did_you_mean(symbol, sorted(known))}",
                        )
                    )
        for name, venue in self.venues.items():
            problems.extend(self._account_problems(name, venue, master.get(name, set())))
        used = {s.venue for s in self.strategies if s.enabled and s.venue in self.venues}
        kill = self.risk.kill_switch
        if (kill.daily_loss_limit is not None or kill.max_drawdown is not None) and not problems:
            currencies = {self.account_currency(name) for name in used}
            if len(currencies) > 1:
                problems.append((("risk", "kill_switch"),
                                 "the account loss limits add PnL across venues, but these settle in "
                                 f"{', '.join(sorted(currencies))}: run one engine per currency"))
        all_symbols = {symbol for symbols in master.values() for symbol in symbols}
        for symbol in self.risk.instruments:
            if symbol not in all_symbols:
                problems.append(
                    (("risk", "instruments", symbol),
                     f"{symbol} is not in the instrument master{did_you_mean(symbol, sorted(all_symbols))}")
                )
        if not any(strategy.enabled for strategy in self.strategies):
            problems.append((("strategies",), "no strategy is enabled; configure at least one with enabled: true"))
        if problems:
            raise CrossFieldProblems(problems)
        return self

    def _account_problems(self, name: str, venue: VenueConfig, symbols: set[str]) -> list[tuple[KeyPath, str]]:
        """A derivatives account needs one settlement currency and positions in listed instruments."""
        account = venue.account
        if not isinstance(account, DerivativesAccountConfig):
            return []
        problems: list[tuple[KeyPath, str]] = []
        path: KeyPath = ("venues", name, "account")
        stated = {i.settlement_currency for i in self.instruments if i.venue == name and i.settlement_currency}
        if account.currency is None and len(stated) != 1:
            problems.append(((*path, "currency"),
                             "a derivatives account needs its settlement currency: set currency, or one "
                             "settlement_currency on the venue's instruments"
                             + (f" (they name {', '.join(sorted(stated))})" if stated else "")))
        elif account.currency is not None and stated - {account.currency}:
            problems.append(((*path, "currency"),
                             f"currency {account.currency} but the venue's instruments settle in "
                             f"{', '.join(sorted(stated))}"))
        for symbol in account.positions:
            if symbol not in symbols:
                problems.append(((*path, "positions", symbol),
                                 f"{symbol} is not in the instrument master for venue {name!r}"))
        return problems

    def account_currency(self, venue: str) -> str:
        """The currency every amount of ``venue``'s account is in: a cash account's ``currency``
        (PKR unless set), the configured or the instruments' settlement currency for a derivatives
        account."""
        account = self.venues[venue].account
        if not isinstance(account, DerivativesAccountConfig):
            return account.currency
        if account.currency is not None:
            return account.currency
        return next(i.settlement_currency for i in self.instruments if i.venue == venue and i.settlement_currency)

    def instrument_master(self, venue: str | None = None) -> list[Instrument]:
        """The master as runtime instruments, optionally for one venue."""
        return [i.to_instrument() for i in self.instruments if venue is None or i.venue == venue]


def tick_decimals(tick_size: Decimal) -> int:
    """How many decimals a tick has: 0.01 -> 2, 0.050 -> 2, 5 -> 0."""
    exponent = tick_size.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0
