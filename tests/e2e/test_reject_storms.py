"""Reject storms (issue 18): a strategy that keeps sending what the gate refuses is slowed, then
stopped, and the log stays readable.

Before: the README's market maker on an account with no holdings sent 69,067 refused sells (4002)
in one simulated day and wrote a log line for each; the shipped market maker after ``engine halt``
sent thousands of 7013 refusals in 20 simulated minutes.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import anyio
import yaml
from support import REPO, open_session, settle
from support.gate import build

from engine.app import Engine
from engine.config import load_config
from engine.risk.killswitch import TradingState

# The README's strategy example as it stood when issue 18 was filed (the first code block under
# "Writing a strategy", copied verbatim): it sells whenever its position reaches ``size``, but a
# position bought today is not sellable under T+2, so every book event resubmitted a refused sell.
README_MM_BEFORE_ISSUE_18 = """\
from engine import hookimpl

PARAMS = {"size": 100, "half_spread_ticks": 3}   # defaults; config.yaml may override by name

quotes = {}                                      # module state is per configured instance

@hookimpl
def on_start(ctx):
    for order in ctx.open_orders():              # after a restart: the quotes the venue still works
        quotes[(order.symbol, order.side)] = order

@hookimpl
def on_book(ctx, book):
    if ctx.session != "open" or book.mid is None:
        return
    inst = ctx.instrument(book.symbol)
    offset = ctx.params.half_spread_ticks * inst.tick_size
    for side, price in (("buy", book.mid - offset), ("sell", book.mid + offset)):
        price = inst.round_to_tick(price, side)
        if side == "sell" and ctx.position(book.symbol) < ctx.params.size:
            continue                             # PSX: no short selling
        order = quotes.get((book.symbol, side))
        if order is None or not order.is_open:
            quotes[(book.symbol, side)] = ctx.submit(book.symbol, side, ctx.params.size, price)
        elif order.status == "new" and order.price != price:
            ctx.amend(order, price=price)

@hookimpl
def on_session_change(ctx, old, new):
    if new != "open":
        ctx.cancel_all()
"""

NS_PER_MIN = 60 * 1_000_000_000


def shipped_config(folder: Path, **changes: Any) -> dict[str, Any]:
    """The shipped config.yaml as a mapping, without a journal (each test starts a fresh account)."""
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["journal"] = {"enabled": False}
    for strategy in config["strategies"]:
        strategy["file"] = str(REPO / strategy["file"])
    config.update(changes)
    return config


def engine_for(folder: Path, config: dict[str, Any]) -> Engine:
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return Engine(load_config(path))


def engine_lines(records: list[logging.LogRecord]) -> list[str]:
    """What the engine itself wrote at WARNING and above (refusals, pauses, failures)."""
    return [r.getMessage() for r in records if r.name == "engine" and r.levelno >= logging.WARNING]


def test_the_readme_strategy_without_holdings_is_slowed_then_stopped_in_a_handful_of_lines(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    (tmp_path / "readme_mm.py").write_text(README_MM_BEFORE_ISSUE_18)
    config = shipped_config(tmp_path)
    config["venues"]["paper"]["account"]["holdings"] = {}
    config["strategies"] = [
        {"name": "readme", "file": "readme_mm.py", "venue": "paper", "instruments": ["MEBL", "OGDC", "KEL"]}
    ]
    result = anyio.run(engine_for(tmp_path, config).run)
    report = result.report
    strategy = report["strategies"]["readme"]
    refused = report["orders"]["refused"]
    # shipped rule: 20 of the same refusal within 60 s pause it (300 s or the next phase), the 4th
    # trip in a day fails it: about 4 x 20 refusals instead of 69,067
    assert 20 <= refused <= 200, report["rejects_by_code"]
    assert strategy["state"] == "failed" and strategy["pauses"] == 3
    assert "refused 20 times within 60 s after 3 pauses today" in strategy["failure"]
    assert "repeat_refusals" in strategy["pause_reason"] and "paused for 300 s" in strategy["pause_reason"]
    lines = engine_lines(caplog.records)
    assert len(lines) <= 20, lines  # 69,067 lines before: one per refusal
    assert sum("paused for 300 s" in line for line in lines) >= 3
    counted = [line for line in lines if "sell order refused" in line and "more times in the last" in line]
    assert counted, lines  # the refusals between two lines are told as a count


def test_the_shipped_market_maker_after_a_halt_does_not_storm(tmp_path, caplog):
    """``engine halt`` refuses every order (7013); the market maker resubmits its quotes on every
    book. Its refusals spend its budget and the repeat rule pauses it: bounded, like any storm."""
    caplog.set_level(logging.INFO)
    config = shipped_config(tmp_path)
    config["strategies"] = [s for s in config["strategies"] if s["name"] == "mm"]
    engine = engine_for(tmp_path, config)
    pre_open, _ = engine.schedule.day_window(engine.days[0])
    halt_at = pre_open + 30 * NS_PER_MIN  # 09:45, a quarter of an hour into continuous trading
    engine.clock.call_at(halt_at, lambda: engine.runtime.manual_trigger(TradingState.HALTED, "engine halt"))
    engine.clock.call_at(halt_at + 20 * NS_PER_MIN, lambda: engine.request_stop("test: 20 minutes after the halt"))
    report = anyio.run(engine.run).report
    halted = report["rejects_by_code"].get("7013", 0)
    assert report["kill_switch"]["state"] == "halted"
    # 7,431 refusals in these 20 minutes before; now at most 20 of each (code, symbol, side) per
    # pause cycle: 3 symbols x 2 sides, three pauses, then the strategy fails
    assert 0 < halted <= 500, report["rejects_by_code"]
    assert report["orders"]["refused"] <= 520, report["rejects_by_code"]
    mm = report["strategies"]["mm"]
    assert mm["state"] == "failed" and mm["pauses"] == 3, mm
    assert "7013" in mm["pause_reason"] and "7013" in mm["failure"]
    lines = engine_lines(caplog.records)
    assert len(lines) <= 60, lines  # a line per refusal before


def readme_strategy() -> str:
    """The first code block under "Writing a strategy" in README.md, as it is now."""
    text = (REPO / "README.md").read_text()
    section = text[text.index("## Writing a strategy"):]
    start = section.index("```python\n") + len("```python\n")
    return section[start:section.index("```", start)]


def test_the_readme_and_shipped_strategies_sell_only_what_is_sellable(tmp_path):
    """With no holdings nothing bought today may be sold (T+2): the README example and both shipped
    examples ask ctx.sellable and are never refused 4002 (the README example was, 69,067 times)."""
    (tmp_path / "readme_mm.py").write_text(readme_strategy())
    config = shipped_config(tmp_path)
    config["venues"]["paper"]["account"]["holdings"] = {}
    config["strategies"].append(
        {"name": "readme", "file": "readme_mm.py", "venue": "paper", "instruments": ["MEBL", "OGDC", "KEL"]}
    )
    report = anyio.run(engine_for(tmp_path, config).run).report
    for name in ("readme", "mm", "momentum"):
        strategy = report["strategies"][name]
        assert strategy["fills"] > 0 and strategy["state"] == "stopped", (name, strategy)
    by_code = report["rejects_by_code"]
    assert "4002" not in by_code and "2005" not in by_code, by_code
    assert report["orders"]["refused"] == 0, report["rejects_by_code"]


IDLE = "from engine import hookimpl\n\n@hookimpl\ndef on_start(ctx):\n    pass\n"


def test_refusals_spend_the_order_budget_and_an_empty_budget_refuses_before_any_rule(tmp_path):
    """orders_per_s: 2. Two refused orders (7001) spend both tokens; the third is refused 3001 at
    once, before the tick rule; a second later the budget has room and the rules run again. An
    accepted order in between is untouched by any of it."""
    engine = build(tmp_path, {"s": IDLE}, per_strategy={"s": {"rate_limit": {"orders_per_s": 2}}})
    open_session(engine)
    ctx = engine.runtime.runners["s"].ctx
    codes = [ctx.submit("MEBL", "buy", 1, "187.001").reject_code for _ in range(3)]
    assert codes == [7001, 7001, 3001]
    third = engine.runtime.runners["s"].open_orders  # nothing went out
    assert not third
    settle(engine, 1.0)
    assert ctx.submit("MEBL", "buy", 1, "187.001").reject_code == 7001  # the rules run again
    accepted = ctx.submit("MEBL", "buy", 1, "187.00")
    assert accepted.reject_code is None and accepted.status == "pending_new"


def test_a_strategy_without_a_rate_limit_spends_the_refusals_budget(tmp_path):
    """No rate_limit: refusals spend risk.containment.refusals_per_s (here 3), accepted orders never do."""
    engine = build(tmp_path, {"s": IDLE}, risk={"containment": {"refusals_per_s": 3}})
    open_session(engine)
    ctx = engine.runtime.runners["s"].ctx
    for _ in range(10):  # accepted orders: no budget of their own
        assert ctx.submit("MEBL", "buy", 1, "187.00").reject_code is None
    refusals = [ctx.submit("MEBL", "buy", 1, "187.001") for _ in range(5)]
    assert [o.reject_code for o in refusals] == [7001, 7001, 7001, 3001, 3001]
    assert "strategy 's' refusals 3/1s exhausted" in refusals[-1].reject_reason
    assert "no other check ran" in refusals[-1].reject_reason


def test_refusals_are_logged_once_then_counted_per_minute_of_engine_time(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    engine = build(tmp_path, {"s": IDLE}, risk={"containment": {"repeat_refusals": None}})
    open_session(engine)
    ctx = engine.runtime.runners["s"].ctx
    for _ in range(130):  # 130 s: one refused order a second
        ctx.submit("MEBL", "sell", 1, "187.00")
        settle(engine, 1.0)
    engine.runtime.flush_logs()
    lines = [r.getMessage() for r in caplog.records if r.name == "engine" and "MEBL" in r.getMessage()]
    assert len(lines) == 4, lines  # the first in full, one a minute, the rest at the flush
    assert lines[0].startswith("reject s") and "2005" in lines[0]
    assert lines[1].startswith("s: 2005 MEBL sell order refused 60 more times in the last 60 s; latest: ")
    assert lines[2].startswith("s: 2005 MEBL sell order refused 60 more times in the last 60 s")
    assert lines[3].startswith("s: 2005 MEBL sell order refused 9 more times in the last 10 s")
