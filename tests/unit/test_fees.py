"""Fees on every fill (issue 18 section 2): the rule pack's schedule line by line, the paper venue
charging it, cash and PnL to the paisa (net = gross - fees), a venue's own fee taken and compared,
and gross / fees / net in the report, the metrics and ``engine journal inspect``."""

from __future__ import annotations

import datetime as dt
import logging
from decimal import Decimal

import pytest
from support import IDLE_STRATEGY, open_session, settle, write_engine_config

from adapters.pulse.codec import PulseTrade
from engine.app import Engine
from engine.config import load_config
from engine.journal import Journal
from engine.journalview import inspect_text
from engine.model import Fill, Liquidity, Side, TimeInForce
from engine.observe.snapshot import families_of
from engine.report.page import render_html
from engine.risk.rulepack import ValidationError, resolve_packs

D = Decimal

# psx-2026's lines, spelled out by hand (engine/data/risk_profiles.yaml)
COMMISSION = D("0.0015")
SALES_TAX = D("0.15")  # of the commission
LEVIES = D("0.0001") + D("0.00005") + D("0.00005") + D("0.00005")  # laga, SECP, NCCPL, CDC
CVT_BUY = D("0.0002")


def hand_fee(side: str, price: Decimal, qty: Decimal) -> Decimal:
    notional = price * qty
    commission = notional * COMMISSION
    fee = commission + commission * SALES_TAX + notional * LEVIES
    return fee + notional * CVT_BUY if side == "buy" else fee


ROUND_TRIP = """\
from decimal import Decimal

from engine import hookimpl

fills = []
state = {"bought": False, "sold": False}

@hookimpl
def on_book(ctx, book):
    if book.symbol != "MEBL" or ctx.session != "open" or ctx.open_orders("MEBL"):
        return
    inst = ctx.instrument("MEBL")
    if not state["bought"] and book.best_ask is not None:
        state["bought"] = True
        ctx.submit("MEBL", "buy", 100, inst.round_to_tick(book.best_ask * Decimal("1.01"), "buy"), tif="ioc")
    elif state["bought"] and not state["sold"] and ctx.position("MEBL") > 0 and book.best_bid is not None:
        state["sold"] = True
        ctx.submit("MEBL", "sell", ctx.position("MEBL"),
                   inst.round_to_tick(book.best_bid * Decimal("0.99"), "sell"), tif="ioc")

@hookimpl
def on_fill(ctx, fill):
    fills.append((fill.side.value, fill.price, fill.qty, fill.fee))
"""


def psx_engine(tmp_path, strategies: dict[str, str], market: bool = True) -> Engine:
    config = write_engine_config(tmp_path, strategies, market=market)
    config.write_text(config.read_text() + "risk: {profile: psx-2026}\n")
    return Engine(load_config(config))


def test_the_schedule_charges_each_line_and_the_buy_reservation_is_that_fee() -> None:
    pack = resolve_packs("psx-2026", None, None, ["MEBL"])["MEBL"]
    schedule = pack.fee_schedule()
    price, qty = D("187.50"), D(200)
    for side in Side:
        lines = dict(schedule.breakdown(side, price * qty))
        assert lines["commission"] == D("56.25")
        assert lines["sales_tax_on_commission"] == D("8.4375")
        assert lines["psx_laga"] == D("3.75")
        assert ("capital_value_tax" in lines) is (side is Side.BUY)
        assert sum(lines.values()) == schedule.fee(side, price * qty) == hand_fee(side.value, price, qty)
    # the buy reservation is exactly the fee a buy fill is charged
    assert pack.estimated_fee(price * qty) == hand_fee("buy", price, qty) == D("81.5625")
    # a commission minimum carries its sales tax; the levies still scale with the notional
    small = resolve_packs("psx-2026", {"fee_min": "10"}, None, ["MEBL"])["MEBL"].fee_schedule()
    assert small.fee(Side.SELL, D(1000)) == D("10") * D("1.15") + D(1000) * LEVIES


def test_paper_round_trip_moves_cash_and_pnl_by_every_fee_to_the_paisa(tmp_path) -> None:
    engine = psx_engine(tmp_path, {"s": ROUND_TRIP})
    open_session(engine)
    settle(engine, 120)
    runner = engine.runtime.runners["s"]
    fills = runner.loaded.module.fills
    assert {side for side, *_ in fills} == {"buy", "sell"}, fills
    for side, price, qty, fee in fills:
        assert fee == hand_fee(side, price, qty)  # the paper venue charged every line
    buy_cost = sum(p * q + hand_fee(s, p, q) for s, p, q, _ in fills if s == "buy")
    proceeds = sum(p * q - hand_fee(s, p, q) for s, p, q, _ in fills if s == "sell")
    gross = sum((p * q if s == "sell" else -p * q) for s, p, q, _ in fills)
    fees = sum(hand_fee(s, p, q) for s, p, q, _ in fills)
    account = engine.runtime.venues["paper"].account
    assert account.cash == D(10_000_000) - buy_cost  # the account config's default cash
    assert account.unsettled_cash == proceeds  # T+1: the sale settles tomorrow, net of its fee
    position = runner.positions["MEBL"]
    assert position.qty == 0
    assert position.fees == fees and position.gross_pnl == gross
    assert position.realized_pnl == gross - fees
    summary = engine.runtime.strategy_summary(runner)
    assert (D(summary["gross_pnl"]), D(summary["fees"]), D(summary["realized_pnl"])) == (gross, fees, gross - fees)


def _filled_order(engine: Engine, price: str = "187.50"):
    open_session(engine)
    runner = engine.runtime.runners["s"]
    order = runner.ctx.submit("MEBL", "buy", 100, price)
    settle(engine)
    return runner, order


def test_a_fill_without_a_fee_is_charged_the_schedule(tmp_path) -> None:
    engine = psx_engine(tmp_path, {"s": IDLE_STRATEGY}, market=False)
    runner, order = _filled_order(engine)
    cash = engine.runtime.venues["paper"].account.cash
    engine.runtime.on_fill(Fill("paper", "MEBL", order.client_id, order.venue_order_id, "X1", Side.BUY,
                                D("187.50"), D(100), 1, Liquidity.MAKER))
    fee = hand_fee("buy", D("187.50"), D(100))
    assert engine.runtime.venues["paper"].account.cash == cash - D(18750) - fee
    assert runner.positions["MEBL"].realized_pnl == -fee
    assert engine.runtime.anomalies["fee_mismatch"] == 0


def test_a_venue_fee_is_taken_at_its_word_and_a_difference_is_counted_once_logged(tmp_path, caplog) -> None:
    engine = psx_engine(tmp_path, {"s": IDLE_STRATEGY}, market=False)
    _, order = _filled_order(engine)
    cash = engine.runtime.venues["paper"].account.cash
    expected = hand_fee("buy", D("187.50"), D(10))
    with caplog.at_level(logging.DEBUG, logger="engine"):
        for n, fee in enumerate([expected + D("0.005"), D("50.00"), D("60.00")]):
            engine.runtime.on_fill(Fill("paper", "MEBL", order.client_id, order.venue_order_id, f"X{n}", Side.BUY,
                                        D("187.50"), D(10), 1, Liquidity.MAKER, fee))
    assert engine.runtime.anomalies["fee_mismatch"] == 2  # within the 0.01 tolerance: not counted
    [family] = [f for f in families_of(engine.runtime, "simulated", 0.0) if f.name == "engine_anomalies"]
    assert {s.labels["kind"]: s.value for s in family.samples if s.name.endswith("_total")} == {"fee_mismatch": 2}
    assert engine.runtime.venues["paper"].account.cash == cash - D(5625) - (expected + D("0.005") + D(110))
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR and "fee" in r.getMessage()]
    assert len(errors) == 1 and "50.00" in errors[0].getMessage()


def test_pulse_trades_carry_the_venues_fee_or_none() -> None:
    trade = {"trade_id": "T1", "direction": "buy", "price": 50000, "amount": 10, "timestamp": 1}
    assert PulseTrade(trade).fee is None  # the venue stated none: the engine charges its schedule
    assert PulseTrade({**trade, "fee": D("0.75"), "fee_currency": "USD"}).fee == D("0.75")


def test_journal_inspect_shows_gross_fees_and_net_and_whose_fee(tmp_path) -> None:
    path = tmp_path / "j.sqlite"
    journal = Journal.open(path)
    buy_fee, sell_fee = hand_fee("buy", D("187.50"), D(100)), D("40.00")
    journal.add_fill(Fill("paper", "MEBL", "s-1-1", "V1", "X1", Side.BUY, D("187.50"), D(100), 1, Liquidity.MAKER,
                          buy_fee), "s", dt.date(2026, 11, 23), "schedule")
    journal.add_fill(Fill("paper", "MEBL", "s-1-2", "V2", "X2", Side.SELL, D("190.00"), D(100), 2, Liquidity.MAKER,
                          sell_fee), "s", dt.date(2026, 11, 23), "venue")
    journal.commit(3)
    journal.close()
    text = inspect_text(path)
    row = next(line for line in text.splitlines() if line.split()[:2] == ["s", "MEBL"])
    fees = buy_fee + sell_fee
    assert [D(x) for x in row.split()[4:7]] == [D(250), fees, D(250) - fees]  # gross, fees, net
    fill_rows = [line.split() for line in text.splitlines() if "X1" in line or "X2" in line]
    assert sorted(r[-2] for r in fill_rows) == ["schedule", "venue"]


def test_report_and_metrics_show_gross_fees_and_net(tmp_path) -> None:
    engine = psx_engine(tmp_path, {"s": IDLE_STRATEGY}, market=False)
    runner, order = _filled_order(engine)
    engine.runtime.on_fill(Fill("paper", "MEBL", order.client_id, order.venue_order_id, "X1", Side.BUY,
                                D("187.50"), D(100), 1, Liquidity.MAKER))
    sell = runner.ctx.submit("MEBL", "sell", 100, "190.00")
    settle(engine)
    engine.runtime.on_fill(Fill("paper", "MEBL", sell.client_id, sell.venue_order_id, "X2", Side.SELL,
                                D("190.00"), D(100), 2, Liquidity.MAKER))
    fees = hand_fee("buy", D("187.50"), D(100)) + hand_fee("sell", D("190.00"), D(100))
    gross, net = D("250.00"), D("250.00") - fees
    summary = engine.runtime.strategy_summary(runner)
    assert (D(summary["gross_pnl"]), D(summary["fees"]), D(summary["realized_pnl"])) == (gross, fees, net)
    value = {f.name: s.value for f in families_of(engine.runtime, "simulated", 0.0) for s in f.samples
             if s.labels.get("strategy") == "s" and s.name.startswith(("engine_fees", "engine_gross", "engine_real"))}
    assert value == {"engine_fees": float(fees), "engine_gross_pnl": float(gross), "engine_realized_pnl": float(net)}
    html = render_html({"strategies": {"s": summary}, "orders": {}, "trading_days": []})
    assert "<th class=\"n\">gross</th>" in html and format(fees, ",f") in html


@pytest.mark.anyio
async def test_the_pulse_sandbox_charges_its_fee_and_the_adapter_carries_it() -> None:
    """The sandbox fill path: the venue's own fee (0.2% here, not the schedule's 0.15%) reaches the
    engine on the fill, where the runtime takes it and counts the difference."""
    from support import until
    from support.pulse import BTC, venue

    async with venue(sandbox={"fee_rate": D("0.002")}) as v:
        v.sandbox.place(BTC, "sell", D(30), D(50000), tif=TimeInForce.GTC)
        order = v.submit("buy", 10, 50000, tif=TimeInForce.IOC)
        await until(lambda: bool(v.sink.fills_for(order.client_id)))
        [fill] = v.sink.fills_for(order.client_id)
    assert fill.fee == D(10) * D(50000) * D("0.002") == D(1000)


def test_fee_lines_need_their_own_names_and_a_source() -> None:
    line = {"name": "laga", "rate": "0.0001", "source": "assumption, verify with your broker"}
    with pytest.raises(ValidationError, match="its own name"):
        resolve_packs("psx-2026", {"fees": [line, line]}, None, ["MEBL"])
    with pytest.raises(ValidationError, match="source"):
        resolve_packs("psx-2026", {"fees": [{"name": "laga", "rate": "0.0001"}]}, None, ["MEBL"])
