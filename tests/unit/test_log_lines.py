"""What the engine's log lines say (issue 18, section 4): a strategy's lines name the strategy in
both formats and stay scrubbed of secrets; the settlement at each close is one short line of totals.

Each test drives a real engine (real loader, the paper venue on a simulated clock) through the
handler ``engine run`` installs (:func:`engine.cli.setup_logging`), reading what it writes to stderr.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import logging
from decimal import Decimal

import pytest
from support import open_session

from engine.cli import setup_logging
from engine.model import Fill, Phase, SessionState, Side
from engine.risk.account import LedgerEntry, settlement_summary
from engine.secrets import Redactor

D = Decimal

SECRET = "tok-7f3a9c1e55d24b"

CHATTY = """\
from engine import hookimpl

@hookimpl
def on_start(ctx):
    pass
"""


@pytest.fixture
def engine_log(capsys):
    """Install the engine's stderr handler for one test and put the root logger back afterwards
    (pytest's own capture handlers included). Yields a function that reads what was written."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level

    def install(fmt: str) -> None:
        setup_logging("INFO", fmt, Redactor([SECRET]))

    def written() -> list[str]:
        return capsys.readouterr().err.splitlines()

    try:
        yield install, written
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


def _log_from_strategy(build_engine) -> None:
    engine = build_engine({"mm": CHATTY})
    ctx = engine.runtime.runners["mm"].ctx
    ctx.log.info("quote moved to %s", "187.55")
    ctx.log.warning("login with token %s", SECRET)
    ctx.log.getChild("quotes").info("child line")
    logging.getLogger("engine").info("an engine line")
    logging.getLogger("engine").info("an engine line about mm", extra={"strategy": "mm"})


def test_a_strategy_line_names_the_strategy_in_the_human_format(build_engine, engine_log):
    install, written = engine_log
    install("human")
    _log_from_strategy(build_engine)
    lines = written()
    quote = next(line for line in lines if "quote moved" in line)
    assert quote.endswith("INFO    [mm] quote moved to 187.55")
    assert any(line.endswith("WARNING [mm] login with token ***") for line in lines)
    assert any(line.endswith("INFO    [mm] child line") for line in lines)  # ctx.log's children too
    assert any(line.endswith("INFO    an engine line") for line in lines)  # the engine's own: no tag
    assert any(line.endswith("INFO    [mm] an engine line about mm") for line in lines)
    assert all(SECRET not in line for line in lines)


def test_a_strategy_line_carries_a_strategy_field_in_json(build_engine, engine_log):
    install, written = engine_log
    install("json")
    _log_from_strategy(build_engine)
    entries = [json.loads(line) for line in written()]
    quote = next(e for e in entries if e["message"] == "quote moved to 187.55")
    assert quote["strategy"] == "mm" and quote["logger"] == "strategy.mm"
    token = next(e for e in entries if e["message"].startswith("login with token"))
    assert token["strategy"] == "mm" and token["message"] == "login with token ***"
    assert next(e for e in entries if e["message"] == "child line")["strategy"] == "mm"
    assert "strategy" not in next(e for e in entries if e["message"] == "an engine line")
    assert next(e for e in entries if e["message"] == "an engine line about mm")["strategy"] == "mm"
    assert all(SECRET not in json.dumps(e) for e in entries)


# ---- the settlement line at each close ---------------------------------------------------------

FRI, MON = dt.date(2026, 11, 20), dt.date(2026, 11, 23)


def _fill(side: Side, symbol: str, qty: int, price: str) -> Fill:
    return Fill("paper", symbol, "c", "v", f"x{next(_fill_ids)}", side, D(price), D(qty), 0, fee=D(0))


_fill_ids = itertools.count()


def test_the_close_logs_one_short_line_of_settlement_totals(build_engine, caplog):
    engine = build_engine()
    open_session(engine)  # Monday 2026-11-23, broker-doc: T+2
    account = engine.runtime.venues["paper"].account
    for _ in range(150):  # Friday's buys and sales settle Tuesday: usable from Tuesday's open
        account.apply_fill(_fill(Side.BUY, "MEBL", 10, "187.50"), FRI)
    for _ in range(50):
        account.apply_fill(_fill(Side.SELL, "OGDC", 10, "109.30"), FRI)
    for _ in range(100):  # Monday's buys settle Wednesday
        account.apply_fill(_fill(Side.BUY, "OGDC", 10, "109.30"), MON)
    closed = SessionState(Phase.CLOSED, False, False, False, "2026-11-23")
    with caplog.at_level(logging.INFO, logger="engine"):
        engine.runtime.on_session_change(engine.runtime.session, closed)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("settlement")]
    assert lines == [
        "settlement paper 2026-11-23 close: 200 settled (cash +54,650.00; shares MEBL +1,500); "
        "unsettled: 100 due 2026-11-25 (shares OGDC +1,000)"
    ]
    assert account.cash == D(10_000_000) - 1500 * D("187.50") - 1000 * D("109.30") + D("54650.00")


def test_the_settlement_line_stays_short_however_many_entries_symbols_and_days():
    symbols = [f"SYM{n:02d}" for n in range(50)]
    settled = [LedgerEntry("shares", FRI, MON, symbol, D(n + 1)) for n, symbol in enumerate(symbols)] * 40
    settled += [LedgerEntry("cash", FRI, MON, "SYM00", D("1000.25"))] * 1000
    days = [MON + dt.timedelta(days=n) for n in range(1, 6)]
    unsettled = [LedgerEntry("shares", MON, day, symbol, D(10)) for day in days for symbol in symbols] * 10
    line = "settlement paper 2026-11-23 close: " + settlement_summary(settled, unsettled)
    assert len(line) < 300, line
    # totals: cash summed, the largest share totals named, the rest counted
    assert line.startswith(
        "settlement paper 2026-11-23 close: 3000 settled (cash +1,000,250.00; shares SYM49 +2,000, SYM48 +1,960, "
        "SYM47 +1,920, +47 more symbols); unsettled: 500 due 2026-11-24 (shares SYM00 +100, "
    )
    assert line.endswith("+47 more symbols), 2000 due on 4 later days")
