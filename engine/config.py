"""The engine's config file: YAML read with exact line numbers into strict pydantic models.

Why it is built by hand from the YAML node tree instead of ``yaml.safe_load``:

- every key keeps its line and column, so any later complaint (a pydantic error, an unknown
  strategy param, a bad adapter option) names the line to fix;
- YAML floats become ``Decimal`` from the scalar's source text (``tick_size: 0.01`` is exactly
  ``Decimal("0.01")``): money never passes through a binary float;
- duplicate keys are an error instead of the last one silently winning;
- ``${ENV_VAR}`` / ``${ENV_VAR:-default}`` inside strings is substituted, and the key paths whose
  values came from the environment are remembered so reports and logs can redact them.

Three deliberate departures from YAML 1.1, all towards YAML 1.2: mapping keys are always strings
(their source text), only ``true``/``false`` are booleans (``on``, ``no``, ``yes`` stay text: a
strategy named ``on`` or a symbol ``NO`` keeps its name), and base-60 numbers stay strings
(``9:30`` is a time of day to a quant, not the integer 570). Top-level keys starting with ``x-``
are ignored, so shared blocks can be written once and merged with ``<<: *anchor``.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import difflib
import os
import re
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml
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

from engine.errors import ConfigError
from engine.model import Instrument, Side
from engine.risk.account import AccountConfig, PositionLimits
from engine.risk.derivatives import DerivativesAccountConfig
from engine.risk.killswitch import KillSwitchConfig
from engine.risk.mmp import MmpConfig
from engine.risk.ratelimit import RateLimitConfig
from engine.risk.rulepack import DEFAULT_PROFILE, RulePack, shipped_profiles
from engine.risk.storm import RepeatRefusalsConfig
from engine.secrets import REDACTED  # one replacement text for every secret (config dumps, logs, reports)
from engine.sessions import SessionsConfig

__all__ = [
    "REDACTED",
    "ConfigError",
    "CrossFieldProblems",
    "EngineConfig",
    "InstrumentConfig",
    "KeyPath",
    "LoadedConfig",
    "LoggingConfig",
    "MetricsConfig",
    "RiskConfig",
    "RunConfig",
    "StrategyConfig",
    "VenueConfig",
    "apply_overrides",
    "format_key_path",
    "load_config",
    "validate_section",
]

KeyPath = tuple[str | int, ...]
"""Where a value sits in the config: ``("strategies", 0, "params", "spread")``."""

EXTENSION_PREFIX = "x-"  # top-level keys ignored by validation, for YAML anchors
# 16: a client id is <name>-<epoch>-<n> within a venue's 32 characters (engine/clientids.py)
STRATEGY_NAME = re.compile(r"^[A-Za-z0-9_-]{1,16}$")
#: a registered algorithm id (SECP: every algorithm under a unique id): short and venue-safe, so it
#: fits a journal column, a CSV cell and any venue's free-text field without escaping
ALGO_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
VENUE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

ModelT = TypeVar("ModelT", bound=BaseModel)


# --------------------------------------------------------------------------------------------
# Models


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
                f"{_did_you_mean(profile, known)}"
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
        return f"unknown rule {field_name!r}{_did_you_mean(field_name, RulePack.model_fields)}"
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


class CrossFieldProblems(ValueError):
    """Problems that involve several entries (a duplicate name, a dangling venue), each with the
    key path it belongs to, so :func:`load_config` can name each one's line."""

    def __init__(self, problems: list[tuple[KeyPath, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{format_key_path(path)}: {sentence}" for path, sentence in problems))


def _did_you_mean(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


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
                        f"{_did_you_mean(instrument.venue, venue_names)}",
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
                        f"{_did_you_mean(strategy.venue, venue_names)}",
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
                            f"{_did_you_mean(symbol, sorted(known))}",
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
                     f"{symbol} is not in the instrument master{_did_you_mean(symbol, sorted(all_symbols))}")
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
        """The currency every amount of ``venue``'s account is in: PKR for a cash account, the
        configured or the instruments' settlement currency for a derivatives account."""
        account = self.venues[venue].account
        if not isinstance(account, DerivativesAccountConfig):
            return "PKR"
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


# --------------------------------------------------------------------------------------------
# The loaded config


@dataclass(frozen=True, repr=False)
class LoadedConfig:
    """A validated config plus what is needed to point back into the file.

    ``path`` and ``base_dir`` are kept as the user gave them, so messages show what they typed.
    ``lines`` maps each key path (and list item) to its 1-based ``(line, column)``. ``secret_paths``
    are the key paths whose values were substituted from the environment: redact them everywhere.
    ``data`` is the plain data the models were validated from.
    """

    config: EngineConfig
    path: Path
    lines: Mapping[KeyPath, tuple[int, int]]
    secret_paths: frozenset[KeyPath]
    base_dir: Path
    data: dict[str, Any] = field(default_factory=dict)
    #: the values read from the environment: logs, reports and pages scrub them wherever they appear
    secret_values: frozenset[str] = frozenset()

    @property
    def display(self) -> str:
        return str(self.path)

    def position(self, key_path: KeyPath) -> tuple[int, int] | None:
        """``(line, column)`` of the deepest key of ``key_path`` that is in the file."""
        for end in range(len(key_path), -1, -1):
            found = self.lines.get(tuple(key_path[:end]))
            if found is not None:
                return found
        return None

    def line_of(self, key_path: KeyPath) -> int | None:
        found = self.position(key_path)
        return found[0] if found else None

    def error(self, key_path: KeyPath, sentence: str) -> ConfigError:
        """A :class:`ConfigError` at the line of ``key_path``, reading ``path:line: a.b[0]: sentence``."""
        shown = format_key_path(key_path)
        message = f"{shown}: {sentence}" if shown else sentence
        return ConfigError(message, self.display, self.line_of(key_path))

    def is_secret(self, key_path: KeyPath) -> bool:
        """True when the value at ``key_path`` is, or holds, a value from the environment."""
        path = tuple(key_path)
        return any(path[: len(secret)] == secret or secret[: len(path)] == path for secret in self.secret_paths)

    def resolve(self, relative: str | os.PathLike[str]) -> Path:
        """A path from the config, relative to the config file's folder unless absolute."""
        candidate = Path(relative)
        return candidate if candidate.is_absolute() else self.base_dir / candidate

    @property
    def journal_path(self) -> Path:
        """``journal.path`` resolved; by default ``<config name>.journal.sqlite`` beside the config."""
        configured = self.config.journal.path
        if configured is not None:
            return self.resolve(configured)
        return self.base_dir / f"{Path(self.path).stem}.journal.sqlite"

    def redacted(self) -> dict[str, Any]:
        """The config as JSON-ready data with every environment-substituted value replaced by
        ``"***"``: what a report or a log may show."""
        dumped = self.config.model_dump(mode="json")
        for secret in self.secret_paths:
            _replace_at(dumped, secret, REDACTED)
        return dumped

    def __repr__(self) -> str:
        # Never let a debug print show a secret.
        return f"LoadedConfig(path={self.display!r}, strategies={[s.name for s in self.config.strategies]})"


def _replace_at(data: Any, key_path: KeyPath, replacement: Any) -> None:
    node = data
    for key in key_path[:-1]:
        try:
            node = node[key]
        except (KeyError, IndexError, TypeError):
            return
    try:
        if key_path and ((isinstance(node, dict) and key_path[-1] in node) or isinstance(node, list)):
            node[key_path[-1]] = replacement
    except (IndexError, TypeError):
        return


def format_key_path(key_path: KeyPath) -> str:
    """``("strategies", 0, "params", "spread")`` -> ``strategies[0].params.spread``."""
    text = ""
    for key in key_path:
        if isinstance(key, int):
            text += f"[{key}]"
        else:
            text += f".{key}" if text else str(key)
    return text


# --------------------------------------------------------------------------------------------
# YAML -> plain data with a line map

_TAG = "tag:yaml.org,2002:"
_ENV_REFERENCE = re.compile(r"\$\$\{|\$\{([^}]*)\}|\$\{")
_ENV_BODY = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?$", re.DOTALL)
_SPECIAL_FLOATS = {".inf": "Infinity", "+.inf": "Infinity", "-.inf": "-Infinity", ".nan": "NaN"}


class _TreeBuilder:
    """Builds plain Python data from a composed YAML node tree, recording key positions, env
    substitutions and every problem found (all of them, not just the first)."""

    def __init__(self, display: str, environ: Mapping[str, str]) -> None:
        self.display = display
        self.environ = environ
        self.lines: dict[KeyPath, tuple[int, int]] = {}
        self.secret_paths: set[KeyPath] = set()
        self.secret_values: set[str] = set()
        self.problems: list[ConfigError] = []
        self._constructor = yaml.constructor.SafeConstructor()
        self._active: set[int] = set()

    def problem(self, node: yaml.Node, key_path: KeyPath, sentence: str) -> None:
        shown = format_key_path(key_path)
        message = f"{shown}: {sentence}" if shown else sentence
        self.problems.append(ConfigError(message, self.display, node.start_mark.line + 1))

    def mark(self, key_path: KeyPath, node: yaml.Node) -> None:
        self.lines[key_path] = (node.start_mark.line + 1, node.start_mark.column + 1)

    def build(self, node: yaml.Node, key_path: KeyPath) -> Any:
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node, key_path)
        if id(node) in self._active:
            self.problem(node, key_path, "this alias refers to itself (a recursive anchor)")
            return None
        self._active.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                if node.tag != _TAG + "seq":
                    self.problem(node, key_path, f"the tag {node.tag} is not supported here")
                items = []
                for index, child in enumerate(node.value):
                    child_path = (*key_path, index)
                    self.mark(child_path, child)
                    items.append(self.build(child, child_path))
                return items
            if isinstance(node, yaml.MappingNode):
                if node.tag != _TAG + "map":
                    self.problem(node, key_path, f"the tag {node.tag} is not supported here")
                return self._mapping(node, key_path)
            self.problem(node, key_path, "this YAML node type is not supported")
            return None
        finally:
            self._active.discard(id(node))

    def _mapping(self, node: yaml.MappingNode, key_path: KeyPath) -> dict[str, Any]:
        result: dict[str, Any] = {}
        merged_keys: set[str] = set()
        explicit: dict[str, int] = {}
        # Merge keys (<<: *defaults) go first so that explicit keys override them, as YAML says.
        for key_node, value_node in node.value:
            if key_node.tag == _TAG + "merge":
                for source in self._merge_sources(value_node, key_path):
                    for key, value in self._mapping(source, key_path).items():
                        if key not in result:
                            result[key] = value
                            merged_keys.add(key)
        for key_node, value_node in node.value:
            if key_node.tag == _TAG + "merge":
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                self.problem(key_node, key_path, "a key must be a plain name, not a list or mapping")
                continue
            key = key_node.value
            if key == "":
                self.problem(key_node, key_path, "a key is empty")
                continue
            child_path = (*key_path, key)
            if key in explicit:
                self.problem(
                    key_node,
                    child_path,
                    f"key {key!r} appears twice in this mapping (first at line {explicit[key]}); keep one",
                )
                continue
            explicit[key] = key_node.start_mark.line + 1
            if key in merged_keys:
                self._forget_below(child_path)
            self.mark(child_path, key_node)
            result[key] = self.build(value_node, child_path)
        return result

    def _merge_sources(self, value_node: yaml.Node, key_path: KeyPath) -> list[yaml.MappingNode]:
        """The mappings a ``<<`` merges, highest priority first: earlier entries of a sequence
        override later ones."""
        if isinstance(value_node, yaml.MappingNode):
            return [value_node]
        if isinstance(value_node, yaml.SequenceNode) and all(
            isinstance(item, yaml.MappingNode) for item in value_node.value
        ):
            return list(value_node.value)
        self.problem(value_node, key_path, "<< merges a mapping or a list of mappings (*anchors)")
        return []

    def _forget_below(self, key_path: KeyPath) -> None:
        size = len(key_path)
        for stale in [path for path in self.lines if path[:size] == key_path]:
            del self.lines[stale]
        self.secret_paths = {path for path in self.secret_paths if path[:size] != key_path}

    def _scalar(self, node: yaml.ScalarNode, key_path: KeyPath) -> Any:
        tag = node.tag
        text = node.value
        try:
            if tag == _TAG + "str" or tag == _TAG + "value":
                return self._substitute(node, key_path)
            if tag == _TAG + "null":
                return None
            if tag == _TAG + "bool":
                # YAML 1.2: only true/false. yes/no/on/off stay text (a strategy named "on", a
                # symbol "NO"); pydantic's bool fields still accept those words.
                return text.lower() == "true" if text.lower() in ("true", "false") else text
            if tag == _TAG + "int":
                if ":" in text:  # base 60 (9:30): a time, not 570
                    return text
                return self._constructor.construct_yaml_int(node)
            if tag == _TAG + "float":
                if ":" in text:
                    return text
                return _decimal_from_yaml(text)
            if tag == _TAG + "timestamp":
                return self._constructor.construct_yaml_timestamp(node)
        except (ValueError, InvalidOperation, yaml.YAMLError) as exc:
            self.problem(node, key_path, f"{text!r} is not a valid {tag.removeprefix(_TAG)} ({exc})")
            return text
        self.problem(node, key_path, f"the tag {tag} is not supported; write the value without it")
        return text

    def _substitute(self, node: yaml.ScalarNode, key_path: KeyPath) -> str:
        """Replace ``${NAME}`` / ``${NAME:-default}``; ``$${`` is a literal ``${``. Errors name
        the variable, never a value."""
        raw = node.value
        if "${" not in raw:
            return raw
        from_environment = False
        pieces: list[str] = []
        position = 0
        for match in _ENV_REFERENCE.finditer(raw):
            pieces.append(raw[position : match.start()])
            position = match.end()
            token = match.group(0)
            if token == "$${":
                pieces.append("${")
                continue
            body = match.group(1)
            if body is None:
                self.problem(node, key_path, "'${' is not closed; write ${NAME} (or $${ for a literal '${')")
                continue
            parsed = _ENV_BODY.match(body)
            if parsed is None:
                self.problem(
                    node,
                    key_path,
                    f"'${{{body}}}' is not an environment reference; write ${{NAME}} or ${{NAME:-default}}",
                )
                continue
            name, default = parsed.group(1), parsed.group(2)
            from_environment = True
            value = self.environ.get(name)
            if default is not None and not value:
                value = default
            if value is None:
                self.problem(
                    node,
                    key_path,
                    f"environment variable {name} is not set (set it, or write ${{{name}:-default}})",
                )
                continue
            if value != default:
                self.secret_values.add(value)
            pieces.append(value)
        pieces.append(raw[position:])
        if from_environment:
            self.secret_paths.add(key_path)
        return "".join(pieces)


def _decimal_from_yaml(text: str) -> Decimal:
    """A YAML 1.1 float's source text as an exact Decimal."""
    cleaned = text.replace("_", "")
    special = _SPECIAL_FLOATS.get(cleaned.lower())
    return Decimal(special if special is not None else cleaned)


def _compose(path: Path, display: str) -> yaml.Node:
    """The file's YAML node tree, or a ConfigError saying why not."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError("the config file does not exist", display) from None
    except IsADirectoryError:
        raise ConfigError("this is a directory; give the config .yaml file", display) from None
    except OSError as exc:
        raise ConfigError(f"the config file cannot be read: {exc.strerror}", display) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError("the file is not UTF-8 text", display, line) from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "unknown problem"
        if exc.context and exc.problem and exc.context_mark is not None:
            problem += f" ({exc.context} at line {exc.context_mark.line + 1})"
        line = mark.line + 1 if mark is not None else None
        column = mark.column + 1 if mark is not None else None
        raise ConfigError(f"the YAML does not parse: {problem}", display, line, column) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"the YAML does not parse: {exc}", display) from None
    if root is None:
        raise ConfigError("the config file is empty", display, 1)
    return root


def load_config(path: str | os.PathLike[str], *, environ: Mapping[str, str] | None = None) -> LoadedConfig:
    """Read, substitute and validate a config file.

    Raises :class:`ConfigError` listing every problem found, each as ``path:line: key.path: sentence``.
    ``environ`` defaults to ``os.environ`` (tests pass their own).
    """
    display = os.fspath(path)
    config_path = Path(display)
    root = _compose(config_path, display)
    builder = _TreeBuilder(display, os.environ if environ is None else environ)
    builder.mark((), root)
    data = builder.build(root, ())
    if builder.problems:
        raise ConfigError.combine(builder.problems, f"{display}: {len(builder.problems)} problems in the config:")
    if not isinstance(data, dict):
        raise ConfigError("the top level of the config must be a mapping (run:, venues:, strategies: ...)", display, 1)
    # validate_section needs the line map; the placeholder config is replaced just below.
    loaded = LoadedConfig(
        config=EngineConfig.model_construct(),
        path=config_path,
        lines=builder.lines,
        secret_paths=frozenset(builder.secret_paths),
        secret_values=frozenset(builder.secret_values),
        base_dir=config_path.parent,
        data=data,
    )
    # Top-level "x-..." keys are free space for YAML anchors (the docker-compose convention).
    settings = {key: value for key, value in data.items() if not key.startswith(EXTENSION_PREFIX)}
    config = validate_section(loaded, EngineConfig, settings, ())
    return dataclasses.replace(loaded, config=config)


# --------------------------------------------------------------------------------------------
# Validation errors -> line-numbered sentences


def validate_section(loaded: LoadedConfig, model_cls: type[ModelT], data: Any, key_path: KeyPath) -> ModelT:
    """Validate ``data`` (found at ``key_path`` in the config) with ``model_cls``, turning every
    problem into a line-numbered sentence. For sub-blocks checked after loading, such as an
    adapter's options: ``validate_section(loaded, Adapter.options_model, venue.options,
    ("venues", "psx", "options"))``."""
    try:
        return model_cls.model_validate(data)
    except ValidationError as exc:
        problems = _problems_from_validation(loaded, model_cls, data, tuple(key_path), exc)
        problems.sort(key=lambda problem: problem.line or 0)  # read top to bottom, like the file
        summary = f"{loaded.display}: {len(problems)} problems in the config:"
        raise ConfigError.combine(problems, summary) from None


def _problems_from_validation(
    loaded: LoadedConfig, model_cls: type[BaseModel], data: Any, prefix: KeyPath, exc: ValidationError
) -> list[ConfigError]:
    problems: list[ConfigError] = []
    seen: set[str] = set()
    for error in exc.errors(include_url=False):
        cause = (error.get("ctx") or {}).get("error")
        if isinstance(cause, CrossFieldProblems):
            base = _data_path(data, error["loc"], error["type"])
            located = [(base + path, sentence) for path, sentence in cause.problems]
        else:
            path = _data_path(data, error["loc"], error["type"])
            located = [(path, _sentence(error, model_cls, path, loaded.is_secret(prefix + path)))]
        for path, sentence in located:
            problem = loaded.error(prefix + path, sentence)
            if str(problem) not in seen:  # a union reports once per member; say it once
                seen.add(str(problem))
                problems.append(problem)
    return problems


def _data_path(data: Any, loc: tuple[str | int, ...], error_type: str) -> KeyPath:
    """The part of pydantic's ``loc`` that names places in the data: pydantic adds steps of its
    own (union members, ``[key]``, ``function-after[...]``) which are dropped; a missing key is
    kept as the last step."""
    path: list[str | int] = []
    node = data
    for index, step in enumerate(loc):
        if isinstance(node, dict) and step in node:
            path.append(step)
            node = node[step]
        elif isinstance(node, list) and isinstance(step, int) and 0 <= step < len(node):
            path.append(step)
            node = node[step]
        elif index == len(loc) - 1 and error_type == "missing" and isinstance(step, str):
            path.append(step)
    return tuple(path)


def _sentence(error: Mapping[str, Any], model_cls: type[BaseModel], path: KeyPath, secret: bool) -> str:
    kind = error["type"]
    if kind == "extra_forbidden" and path:
        key = str(path[-1])
        parent = _model_at(model_cls, path[:-1])
        allowed = list(parent.model_fields) if parent is not None else []
        hint = _did_you_mean(key, allowed)
        if not hint and allowed:
            hint = f" (allowed: {', '.join(allowed)})"
        return f"unknown key {key!r}{hint}"
    if kind == "missing" and path:
        return f"required key {path[-1]!r} is missing"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"expected a mapping (key: value lines), got {_describe(error.get('input'))}"
    if kind == "list_type":
        return f"expected a list, got {_describe(error.get('input'))}"
    message = str(error["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    shown = _shown_value(error.get("input"))
    if shown is not None and not secret and kind not in ("value_error", "assertion_error"):
        message += f" (got {shown})"
    return message


def _describe(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"the {type(value).__name__} value"


def _shown_value(value: Any) -> str | None:
    """A short rendering of a scalar input for an error message; None for containers."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, Decimal | int):
        return str(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str):
        return repr(value if len(value) <= 60 else value[:57] + "...")
    return None


def _model_at(model_cls: type[BaseModel], path: KeyPath) -> type[BaseModel] | None:
    """The model class that validates the mapping at ``path`` (for "did you mean" suggestions)."""
    annotation: Any = model_cls
    for step in path:
        annotation = _unwrap(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field_info = annotation.model_fields.get(step) if isinstance(step, str) else None
            if field_info is None:
                return None
            annotation = field_info.annotation
            continue
        origin, args = typing.get_origin(annotation), typing.get_args(annotation)
        if origin in (list, tuple, set, frozenset) and isinstance(step, int) and args:
            annotation = args[0]
        elif origin is dict and len(args) == 2:
            annotation = args[1]
        else:
            return None
    annotation = _unwrap(annotation)
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


def _unwrap(annotation: Any) -> Any:
    """``X | None`` -> ``X``; ``Annotated[X, ...]`` -> ``X``."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            members = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
            if len(members) != 1:
                return annotation
            annotation = members[0]
        else:
            return annotation


# --------------------------------------------------------------------------------------------
# CLI overrides


_ConfigT = TypeVar("_ConfigT", EngineConfig, LoadedConfig)


def apply_overrides(
    config: _ConfigT,
    speed: Decimal | int | str | None = None,
    seed: int | None = None,
    report: str | os.PathLike[str] | None = None,
    shutdown_timeout_s: Decimal | int | str | None = None,
) -> _ConfigT:
    """A copy with command-line values in place of ``run.speed`` / ``run.seed`` / ``run.report`` /
    ``run.shutdown_timeout_s``;
    the original is untouched. Accepts an :class:`EngineConfig` or a :class:`LoadedConfig` and
    returns the same kind. Bad values raise :class:`ConfigError` naming the option."""
    if isinstance(config, LoadedConfig):
        return dataclasses.replace(
            config, config=apply_overrides(config.config, speed, seed, report, shutdown_timeout_s)
        )
    changes: dict[str, Any] = {}
    if speed is not None:
        if isinstance(speed, float):
            raise ConfigError("--speed: give the speed as text or an integer, not a binary float")
        changes["speed"] = speed
    if seed is not None:
        changes["seed"] = seed
    if report is not None:
        changes["report"] = Path(report)
    if shutdown_timeout_s is not None:
        changes["shutdown_timeout_s"] = shutdown_timeout_s
    if not changes:
        return copy.deepcopy(config)
    try:
        run = RunConfig.model_validate({**config.run.model_dump(), **changes})
    except ValidationError as exc:
        problems = [
            ConfigError(f"--{'.'.join(str(step) for step in error['loc'])}: {error['msg']}")
            for error in exc.errors(include_url=False)
        ]
        raise ConfigError.combine(problems, "the command-line overrides are not valid:") from None
    return config.model_copy(update={"run": run}, deep=True)
