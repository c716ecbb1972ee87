"""The tests' shared helpers, in one place that every test folder imports (``from support import
...``; pyproject's ``pythonpath`` puts ``tests/`` on the path): build a real engine (real config
loader, real strategy loader, real paper venue on a simulated clock) from a strategy source written
into a temporary folder, run a sandbox, poll a condition. Fixtures and hooks live in conftest.py;
no test module imports another."""

from __future__ import annotations

import ast
import itertools
import os
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import anyio
import yaml

from adapters.pulse.adapter import PulseAdapter, PulseOptions
from adapters.pulse.sandbox import PulseSandbox
from engine.app import Engine
from engine.clock import WallClock
from engine.config import load_config
from engine.model import Instrument, Phase, SessionState
from engine.risk.account import AccountConfig
from engine.risk.derivatives import DerivativesAccountConfig
from engine.risk.mmp import MmpConfig
from engine.runtime import Runtime, StrategyRunner

REPO = Path(__file__).resolve().parents[2]

#: the test folders below tests/, each its own marker (registered in pyproject.toml, set by
#: conftest.py from the folder); what belongs where is README "Running the tests"
KINDS = ("unit", "protocol", "e2e", "conformance")


def could_select(markexpr: str, kind: str) -> bool:
    """Whether ``markexpr`` can be true for a test marked ``kind`` and no other kind. Marker
    expressions are Python's ``and``/``or``/``not`` over names; anything else (marker arguments)
    is answered True, which only means the folder is collected."""
    try:
        code = compile(markexpr, "<-m>", "eval")
    except SyntaxError:
        return True
    others = [name for name in code.co_names if name not in KINDS]
    if len(others) > 8:
        return True
    for values in itertools.product((False, True), repeat=len(others)):
        names = {name: name == kind for name in KINDS} | dict(zip(others, values, strict=True))
        try:
            if eval(code, {"__builtins__": {}}, names):
                return True
        except Exception:
            return True
    return False


DAY = "2026-11-23"  # a Monday; T+2 settles on Wednesday 2026-11-25

#: the paper venue's instruments, as YAML text for the tests that write a config by hand
INSTRUMENTS = """\
instruments:
  - {symbol: MEBL, venue: paper, tick_size: 0.01, lot_size: 1, previous_close: 187.50, sector: Commercial Banks}
  - {symbol: OGDC, venue: paper, tick_size: 0.01, lot_size: 10, previous_close: 109.30, sector: Oil & Gas}
"""
#: the same entries as data for :func:`write_engine_config`; every value a string (YAML's base
#: loader), so money stays exact ("187.50") on its way to Decimal
INSTRUMENT_ENTRIES: list[dict[str, Any]] = yaml.load(INSTRUMENTS, Loader=yaml.BaseLoader)["instruments"]

IDLE_STRATEGY = """\
from engine import hookimpl

@hookimpl
def on_start(ctx):
    pass
"""

def taker(symbol: str, side: str, qty: int, comment: str = "missed: try again") -> str:
    """A strategy that takes ``qty`` of ``symbol`` in continuous trading with a marketable IOC 1%
    through the touch (it fills at the touch; the margin only covers a book that moved meanwhile),
    again while none has filled: a fill within seconds on a loaded machine too (the sandbox runs)."""
    touch, through = ("best_ask", "1.01") if side == "buy" else ("best_bid", "0.99")
    return f"""\
from decimal import Decimal

from engine import hookimpl

state = {{"working": False}}

@hookimpl
def on_book(ctx, book):
    if (not state["working"] and ctx.position("{symbol}") == 0 and ctx.session == "open" and book.symbol == "{symbol}"
            and book.{touch} is not None):
        state["working"] = True
        price = ctx.instrument("{symbol}").round_to_tick(book.{touch} * Decimal("{through}"), "{side}")
        ctx.submit("{symbol}", "{side}", {qty}, price, tif="ioc")

@hookimpl
def on_order_update(ctx, order):
    if order.status in ("cancelled", "expired"):  # {comment}
        state["working"] = False
"""


# Buys 500 MEBL (the PSX sandbox end-to-end tests).
MEBL_TAKER = taker("MEBL", "buy", 500, "missed: try again (a refusal is not retried)")

#: the PSX sessions cut to a ten-minute day from 09:00 (pre-open, open, post-close): at 60x, about
#: ten seconds of real time
PSX_SHORT_DAY = {
    "profile": "short",
    "profiles": {"short": {"mon_sun": [
        {"phase": "pre_open", "start": "09:00", "end": "09:01", "accepts_new": True, "accepts_modify_cancel": True},
        {"phase": "open", "start": "09:01", "end": "09:08", "accepts_new": True, "accepts_modify_cancel": True,
         "matches": True},
        {"phase": "post_close", "start": "09:08", "end": "09:09", "accepts_modify_cancel": True,
         "closing_price_only": True},
    ]}},
    "holidays": {"provider": "none", "trading_weekdays": "mon_sun"},
}
#: Pulse's 24-hour profile cut to a five-minute open session from 00:01: at 60x, about five seconds
PULSE_SHORT_SESSION = {"pulse-24h": {"mon_sun": [
    {"phase": "open", "start": "00:01", "end": "00:06", "accepts_new": True, "accepts_modify_cancel": True,
     "matches": True},
]}}


def shipped_config(name: str) -> dict:
    """A config shipped at the repository's root, its strategy files made absolute so that the
    config can be written anywhere."""
    config = yaml.safe_load((REPO / name).read_text())
    for strategy in config["strategies"]:
        strategy["file"] = str(REPO / strategy["file"])
    return config


def add_strategy(folder: Path, config: dict, name: str, source: str, venue: str, instruments: list[str]) -> None:
    """Write ``source`` as ``name``.py into ``folder`` and add it to ``config``'s strategies."""
    (folder / f"{name}.py").write_text(source)
    config["strategies"].append({"name": name, "file": f"{name}.py", "venue": venue, "instruments": instruments})


ENGINE = Path(sys.executable).parent / "engine"


def run_sandbox(folder: Path, venue: str, config: Path, *flags: str, env: dict[str, str | None] | None = None,
                timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``engine sandbox VENUE --run CONFIG --speed 60 FLAGS`` in ``folder``, this process's
    environment with ``env`` on top (a None value removes that variable)."""
    full = {**os.environ, **(env or {})}
    return subprocess.run(
        [str(ENGINE), "sandbox", venue, "--run", str(config), "--speed", "60", *flags], cwd=folder,
        env={name: value for name, value in full.items() if value is not None},
        capture_output=True, text=True, timeout=timeout,
    )


def write_config(folder: Path, config: dict, name: str = "config.yaml") -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def write_engine_config(
    folder: Path,
    strategies: dict[str, str],
    *,
    market: bool = False,
    per_strategy: dict[str, dict[str, Any]] | None = None,
    venue: dict[str, Any] | None = None,
    options: dict[str, Any] | None = None,
    risk: dict[str, Any] | None = None,
    run: dict[str, Any] | None = None,
    sessions: dict[str, Any] | None = None,
    journal: dict[str, Any] | None = None,
    symbols: tuple[str, ...] = ("MEBL", "OGDC"),
    extra_instruments: list[dict[str, Any]] | None = None,
    file_name: str = "config.yaml",
) -> Path:
    """Write one strategy file per entry and a YAML config naming them all (every strategy on the
    paper venue, a simulated day from :data:`DAY`); return the config path. The suite's one engine
    config builder.

    ``market`` turns on the paper venue's synthetic market; ``per_strategy[name]`` adds keys to that
    strategy's entry (limits, rate_limit, mmp, loss_limit); ``venue`` to ``venues.paper`` (account,
    cancel_on_disconnect, on_reconnect, rate_limits); ``options`` to ``venues.paper.options``
    (faults, ...); ``run`` to the ``run:`` section."""
    entries = []
    for name, source in strategies.items():
        (folder / f"{name}.py").write_text(textwrap.dedent(source))
        entry: dict[str, Any] = {"name": name, "file": f"{name}.py", "venue": "paper", "instruments": list(symbols)}
        entry.update((per_strategy or {}).get(name, {}))
        entries.append(entry)
    paper: dict[str, Any] = {"adapter": "paper", "options": {"market": {"enabled": market}, **(options or {})}}
    paper.update(venue or {})
    config: dict[str, Any] = {
        "run": {"clock": "simulated", "start": DAY, "days": 1, "seed": 7, **(run or {})},
        "instruments": INSTRUMENT_ENTRIES + (extra_instruments or []),
        "venues": {"paper": paper},
        "strategies": entries,
    }
    for section, value in (("risk", risk), ("sessions", sessions), ("journal", journal)):
        if value:
            config[section] = value
    return write_config(folder, config, file_name)


def engine_in(folder: Path, strategies: dict[str, str] | None = None, **kwargs: Any) -> Engine:
    """A real engine from a config :func:`write_engine_config` writes into ``folder`` (one idle
    strategy "s" unless ``strategies`` says otherwise)."""
    return Engine(load_config(write_engine_config(folder, strategies or {"s": IDLE_STRATEGY}, **kwargs)))


def connect(engine: Engine) -> None:
    """Connect every adapter (each venue's, and a separate market-data one) and subscribe, without
    touching the session (it stays closed)."""
    for adapter in engine.all_adapters():
        anyio.run(adapter.connect)
    for name, adapter in engine.adapters.items():
        engine.feeds.get(name, adapter).subscribe(engine.runtime.subscriptions(name))


def enter(engine: Engine, phase: Phase, *, accepts_new: bool = True, accepts_modify_cancel: bool = True,
          closing_price_only: bool = False) -> None:
    """Move runtime and venue into ``phase`` of the test day, as the session driver would."""
    new = SessionState(phase, accepts_new, accepts_modify_cancel, phase is not Phase.PRE_OPEN, DAY,
                       flags={"closing_price_only": closing_price_only})
    engine.runtime.on_session_change(engine.runtime.session, new)


def open_session(engine: Engine) -> None:
    """Connect and subscribe the venues, then put runtime and venue into continuous trading
    without running the session driver."""
    connect(engine)
    enter(engine, Phase.OPEN)


def settle(engine: Engine, seconds: float = 1.0) -> None:
    """Let the venue answer: run the simulated clock's timers for ``seconds``."""
    clock = engine.clock
    deadline = clock.now_ns() + int(seconds * 1e9)
    while clock.advance(deadline):
        pass


async def until(condition: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    """Poll ``condition`` every 5 ms until it holds; fail naming ``what`` after ``timeout`` seconds.
    The suite's one poller for real-time waits (sandboxes, adapters): the timeout only bounds how
    long a failing test takes, so it is generous enough for a loaded machine."""
    with anyio.move_on_after(timeout):
        while not condition():
            await anyio.sleep(0.005)
        return
    raise AssertionError(f"{what}: not reached within {timeout}s")


PULSE_BTC = "BTC_USD-PERPETUAL"


@asynccontextmanager
async def pulse_runtime(
    secret_env: str, account: AccountConfig | DerivativesAccountConfig, *, currency: str | None = None,
    venue_mmp: dict | None = None, engine_mmp: MmpConfig | None = None, mass_cancel: bool = True,
) -> AsyncIterator[tuple[PulseSandbox, Runtime, PulseAdapter, StrategyRunner]]:
    """The real Runtime with one strategy ("mm", on ``PULSE_BTC``) on a Pulse venue: the real Pulse
    adapter against the Pulse sandbox on 127.0.0.1 (port 0), connected, subscribed, session open.
    The client secret is read from ``secret_env``; ``engine_mmp`` is set as the engine sets a
    strategy's mmp (the engine's check, and the venue's MMP block)."""
    async with PulseSandbox(credentials={"mm": os.environ[secret_env]}) as sandbox:
        clock = WallClock()
        runtime = Runtime(clock)
        listed = [Instrument(PULSE_BTC, "pulse", tick_size=Decimal("0.5"), lot_size=Decimal(10),
                             previous_close=Decimal(50000))]
        options = PulseOptions(url=sandbox.url, client_id="mm", client_secret_env=secret_env, mmp=venue_mmp or {})
        adapter = PulseAdapter("pulse", options, listed, clock, runtime)
        runtime.add_venue("pulse", adapter, listed, account=account, currency=currency)
        runtime.venues["pulse"].mass_cancel = mass_cancel
        runner = StrategyRunner("mm", "pulse", listed, SimpleNamespace(hooks={}, pm=None))
        runtime.add_strategy(runner, None, mmp=engine_mmp)
        if engine_mmp is not None:
            adapter.configure_mmp("mm", [PULSE_BTC], engine_mmp.interval, engine_mmp.frozen_time,
                                  engine_mmp.quantity_limit)
        async with anyio.create_task_group() as tg:
            adapter.bind(tg)
            runtime.task_starter = lambda make: tg.start_soon(make)
            await adapter.connect()
            adapter.subscribe([PULSE_BTC])
            runtime.on_session_change(runtime.session, SessionState(Phase.OPEN, True, True, True, "2026-11-23"))
            try:
                yield sandbox, runtime, adapter, runner
            finally:
                await adapter.close()
                tg.cancel_scope.cancel()


def absolute_imports(path: Path) -> list[tuple[int, str]]:
    """Every absolute import in the Python file ``path`` (module level, in functions, under
    ``TYPE_CHECKING``) as ``(line, module)``: ``import a.b`` gives ``a.b``, ``from a.b import c``
    gives ``a.b``."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


def json_leaves(value):
    """Every leaf of a JSON-like structure (tests that prove money is never a float use it)."""
    if isinstance(value, dict):
        for v in value.values():
            yield from json_leaves(v)
    elif isinstance(value, list):
        for v in value:
            yield from json_leaves(v)
    else:
        yield value
