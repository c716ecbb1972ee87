"""The derivatives account (issue 20 section 4): short positions, margin from the venue's figures,
reduce-only, limits and every amount in the settlement currency; the config that selects it, the
``derivatives`` rule pack, and Pulse's account queries and reduce-only flag on the wire."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support import REPO

from adapters.pulse import codec
from engine.config import load_config
from engine.model import Fill, Instrument, Order, OrderStatus, OrderType, Side, TimeInForce, VenueAccount, VenuePosition
from engine.portfolio import Position
from engine.rejects import Reject
from engine.risk.account import AccountConfig, CashAccount
from engine.risk.derivatives import (
    DerivativesAccount,
    DerivativesAccountConfig,
    DerivativesPositionLimit,
    MarginCheck,
    ReduceOnly,
)
from engine.risk.gate import OrderRequest
from engine.risk.rulepack import resolve_packs
from engine.sessions import TradingCalendar

BTC = "BTC_USD-PERPETUAL"
D = Decimal
SEED_004 = Path("/work/shared/seeds/004_df0ce6c3f341e5af.txt")


def _account(equity: str = "100000", mark: str | None = "50000", **config: object) -> DerivativesAccount:
    instrument = Instrument(BTC, "pulse", D("0.5"), D(10), D(50000))
    packs = resolve_packs("derivatives", {"fee_rate": "0"}, None, [BTC])
    cfg = DerivativesAccountConfig.model_validate({"kind": "derivatives", "equity": equity, **config})
    return DerivativesAccount(cfg, "USD", {BTC: instrument}, packs, lambda _s: None if mark is None else D(mark))


def _fill(side: Side, qty: str, price: str = "50000", fee: str = "0", n: int = 0) -> Fill:
    return Fill("pulse", BTC, f"c{n}", f"v{n}", f"e{n}", side, D(price), D(qty), 0, fee=D(fee))


def _request(side: Side, qty: str, price: str | None = "50000", reduce_only: bool = False,
             amend_of: Order | None = None) -> OrderRequest:
    return OrderRequest("mm", "pulse", BTC, None, side, D(qty), None if price is None else D(price),
                        OrderType.LIMIT, TimeInForce.GTC, False, "c1", amend_of, reduce_only=reduce_only)


def _order(side: Side, qty: str, price: str = "50000", reduce_only: bool = False, client_id: str = "o1") -> Order:
    order = Order(client_id, "mm", "pulse", BTC, side, D(qty), D(price), reduce_only=reduce_only)
    order.transition(OrderStatus.NEW, 1)
    return order


# ---- positions, PnL and currency -------------------------------------------------------------------


def test_a_sell_from_flat_opens_a_short_and_its_pnl_is_in_the_settlement_currency() -> None:
    account = _account(mark="49000")
    account.apply_fill(_fill(Side.SELL, "10", "50000", fee="0.75"))
    assert account.position(BTC) == D(-10)
    # short 10 from 50,000 marked at 49,000: +10,000 unrealized; the fee came off the balance
    assert account.unrealized(BTC) == D(10000)
    assert account.balance == D("99999.25")
    assert account.equity() == D("109999.25")
    snap = account.snapshot()
    assert snap["currency"] == "USD" and snap["kind"] == "derivatives"
    assert snap["positions"][BTC]["side"] == "short" and snap["positions"][BTC]["qty"] == "-10"
    account.apply_fill(_fill(Side.BUY, "10", "49000", n=1))  # covered: realized, flat
    assert account.position(BTC) == 0
    assert account.balance == D("109999.25")


def test_a_difference_that_goes_away_by_the_next_answer_is_never_taken() -> None:
    """The venue filled an order whose notice had not arrived: its position leads the engine's by
    one fill. The notice then arrives and the next answer agrees: nothing taken, nothing counted,
    the fill counted once."""
    account = _account(equity="1000000", mark="50000")
    ahead = VenueAccount("USD", D(1000000), initial_margin=D(0), maintenance_margin=D(0),
                         positions=(VenuePosition(BTC, D(-10), D(50000), D(50000)),))
    assert account.reconcile(ahead) == [] and account.awaiting_confirmation
    account.apply_fill(_fill(Side.SELL, "10"))  # the notice arrives
    assert account.reconcile(ahead) == [] and not account.awaiting_confirmation
    assert account.position(BTC) == D(-10) and account.snapshot()["mismatches"] == 0


def test_an_equity_difference_is_taken_when_the_next_answer_repeats_it() -> None:
    account = _account(equity="1000000", mark="50000")
    poorer = VenueAccount("USD", D("999000"), initial_margin=D(0), maintenance_margin=D(0))
    assert account.reconcile(poorer) == [] and account.balance == D(1000000)
    found = account.reconcile(poorer)
    assert found == ["equity 1,000,000.00 USD here, 999,000.00 at the venue; the venue's taken"]
    assert account.balance == D(999000) and account.margin_source == "venue"
    # inside the tolerance the venue's figure is taken at once, without an anomaly
    assert account.reconcile(VenueAccount("USD", D("999000.004"))) == [] and account.balance == D("999000.004")


def test_a_derivatives_account_settles_nothing() -> None:
    account = _account()
    account.apply_fill(_fill(Side.BUY, "10"))
    assert account.roll(None) == [] and not account.has_unsettled


# ---- margin ------------------------------------------------------------------------------------------


def test_margin_check_refuses_new_exposure_beyond_available_margin_and_names_the_currency() -> None:
    account = _account(equity="1000")  # 10% initial margin: 10,000 of notional
    check = MarginCheck(account)
    assert check.check(_request(Side.SELL, "0.2")) is None  # 10,000 notional: 1,000 margin, all of it
    refused = check.check(_request(Side.SELL, "0.3"))
    assert refused is not None and refused.code == Reject.INSUFFICIENT_BUYING_POWER
    assert "USD" in refused.reason and "PKR" not in refused.reason


def test_open_orders_reserve_margin_and_reducing_orders_need_none() -> None:
    account = _account(equity="1000")
    account.apply_fill(_fill(Side.SELL, "0.2"))  # short 0.2: its margin takes all the equity
    check = MarginCheck(account)
    assert account.available() == 0
    assert check.check(_request(Side.SELL, "0.01")) is not None  # more short: no margin left
    assert check.check(_request(Side.BUY, "0.2")) is None  # closes the short: no margin needed
    assert check.check(_request(Side.BUY, "0.3")) is not None  # crosses to long: new exposure
    account.track(_order(Side.BUY, "0.2"))
    assert account.open_qty(BTC, Side.BUY) == D("0.2")
    assert account.reserved_margin == D(1000)  # an open order reserves what it could add


def test_the_venues_margin_figures_replace_the_estimate_until_the_next_fill() -> None:
    account = _account(equity="100000")
    account.apply_fill(_fill(Side.BUY, "1"))
    assert account.initial_margin() == D(5000)  # the engine's estimate: 10% of 50,000
    found = account.reconcile(VenueAccount("USD", D(100000), initial_margin=D(20000), maintenance_margin=D(9000),
                                           positions=(VenuePosition(BTC, D(1), D(50000), D(50000)),)))
    assert found == []
    assert account.initial_margin() == D(20000) and account.margin_source == "venue"
    assert account.available() == D(80000)
    account.apply_fill(_fill(Side.BUY, "1", n=1))
    assert account.margin_source == "engine" and account.initial_margin() == D(10000)


# ---- reduce-only ---------------------------------------------------------------------------------------


def test_reduce_only_is_refused_when_it_would_not_reduce_the_position() -> None:
    account = _account()
    check = ReduceOnly(account)
    flat = check.check(_request(Side.SELL, "10", reduce_only=True))
    assert flat is not None and flat.code == Reject.POSITION_NOT_HELD and "flat" in flat.reason
    account.apply_fill(_fill(Side.SELL, "20"))  # short 20
    assert check.check(_request(Side.SELL, "10", reduce_only=True)) is not None  # same side: adds
    assert check.check(_request(Side.BUY, "20", reduce_only=True)) is None
    assert check.check(_request(Side.BUY, "30", reduce_only=True)) is not None  # would cross to long
    account.track(_order(Side.BUY, "15", reduce_only=True))
    crowded = check.check(_request(Side.BUY, "10", reduce_only=True))  # 15 already reduce-only: 25 > 20
    assert crowded is not None and "15" in crowded.reason
    assert check.check(_request(Side.BUY, "10")) is None  # a plain order is not this rule's business
    assert account.reserved_margin == 0  # reduce-only orders reserve no margin


def test_reduce_only_reaches_the_pulse_wire() -> None:
    order = _order(Side.BUY, "10", reduce_only=True)
    method, params = codec.order_request(order)
    assert method == "private/buy" and params["reduce_only"] is True
    assert codec.order_request(_order(Side.BUY, "10"))[1]["reduce_only"] is False


# ---- limits ------------------------------------------------------------------------------------------


def test_account_position_limit_counts_shorts_and_open_orders_in_the_settlement_currency() -> None:
    account = _account(limits={"max_position": "30", "max_notional": "2000000"})
    check = DerivativesPositionLimit(account)
    account.apply_fill(_fill(Side.SELL, "20"))
    assert check.check(_request(Side.SELL, "10")) is None
    over = check.check(_request(Side.SELL, "11"))
    assert over is not None and over.code == Reject.POSITION_LIMIT_EXCEEDED and "max_position 30" in over.reason
    assert check.check(_request(Side.BUY, "20")) is None  # reduces
    notional = _account(limits={"max_notional": "1000000"})
    refused = DerivativesPositionLimit(notional).check(_request(Side.SELL, "21"))
    assert refused is not None and "1,050,000.00 USD" in refused.reason


# ---- reconciliation --------------------------------------------------------------------------------------


def test_reconciliation_takes_the_venues_position_and_equity_and_reports_each_difference() -> None:
    account = _account(equity="1000000", mark="50000")
    account.apply_fill(_fill(Side.SELL, "10"))
    venue = VenueAccount("USD", D("1000100"), initial_margin=D(0), maintenance_margin=D(0),
                         positions=(VenuePosition(BTC, D(-30), D(50000), D(49990)),))
    # seen once: held, since a fill whose notice is still on its way looks the same
    assert account.reconcile(venue) == [] and account.awaiting_confirmation
    assert account.position(BTC) == D(-10) and account.margin_source == "engine"
    found = account.reconcile(venue)  # the same difference again: taken
    assert any("position -10 here, -30 at the venue" in s for s in found)
    assert any("equity" in s and "USD" in s for s in found)
    assert account.position(BTC) == D(-30) and account.external(BTC) == D(-20)
    assert not account.awaiting_confirmation
    # at the venue's marks the account's equity is now exactly the venue's
    assert account.balance + (D(49990) * -30 - D(50000) * -30) == D("1000100")
    assert account.snapshot()["mismatches"] == 2
    assert account.reconcile(VenueAccount("EUR", D(1))) == [  # not a race: at once
        "the venue reports the account in EUR, the config says USD; its figures are not taken"]


def test_decode_account_reads_the_004_example_shapes() -> None:
    summary = {"balance": 302.60065765, "creation_timestamp": 1687352432143, "currency": "USD",
               "equity": 302.61869214, "initial_margin": 1.24669592, "maintenance_margin": 0.8857841,
               "margin_balance": 302.62729214}
    positions = [{"average_price": 50000, "direction": "sell", "instrument_name": BTC, "mark_price": 49500,
                  "size": 1}]
    decoded = codec.decode_account(json.loads(json.dumps(summary), parse_float=Decimal),
                                   json.loads(json.dumps(positions), parse_float=Decimal), "USD")
    assert decoded.currency == "USD" and decoded.equity == D("302.61869214")
    assert decoded.initial_margin == D("1.24669592") and decoded.maintenance_margin == D("0.8857841")
    assert decoded.positions == (VenuePosition(BTC, D(-1), D(50000), D(49500)),)
    if SEED_004.exists():  # the fields read are the document's
        text = SEED_004.read_text()
        for field in ("equity", "initial_margin", "maintenance_margin", "margin_balance", "average_price",
                      "mark_price", "direction", "size"):
            assert f'"{field}"' in text
    with pytest.raises(codec.CodecError):
        codec.decode_account({"balance": 1}, [], "USD")


# ---- the property: the account agrees with the strategies' portfolios ------------------------------------


FILLS = st.lists(
    st.tuples(st.sampled_from(["mm", "taker", "hedge"]), st.sampled_from([Side.BUY, Side.SELL]),
              st.integers(1, 50).map(lambda n: D(n) * 10), st.integers(49000, 51000).map(D),
              st.integers(0, 100).map(lambda n: D(n) / 100)),
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(fills=FILLS, start=st.integers(-100, 100).map(lambda n: D(n) * 10))
def test_no_sequence_of_fills_makes_the_account_disagree_with_the_portfolio(fills, start) -> None:
    account = _account(positions={BTC: str(start)} if start else {})
    portfolio: dict[str, Position] = {}
    for n, (strategy, side, qty, price, fee) in enumerate(fills):
        fill = _fill(side, str(qty), str(price), str(fee), n)
        portfolio.setdefault(strategy, Position(BTC)).apply_fill(side, qty, price, fee)
        account.apply_fill(fill)
        assert account.position(BTC) == account.external(BTC) + sum(p.qty for p in portfolio.values())
        # the order path's one-pass figure is the sum of its parts
        assert account.available() == account.equity() - account.initial_margin() - account.reserved_margin
    if not start:  # marked alike, the account's equity is the start plus every strategy's whole PnL
        pnl = sum((p.realized_pnl + p.unrealized_pnl(D(50000)) for p in portfolio.values()), D(0))
        assert account.equity() == D(100000) + pnl


# ---- config and rule pack ----------------------------------------------------------------------------------


def test_the_shipped_pulse_config_uses_a_derivatives_account_in_usd_and_holds_nothing() -> None:
    cfg = load_config(REPO / "config.pulse-sandbox.yaml").config
    account = cfg.venues["pulse"].account
    assert account.kind == "derivatives" and not account.positions
    assert cfg.account_currency("pulse") == "USD"
    assert cfg.risk.profile == "derivatives"
    pack = resolve_packs(cfg.risk.profile, cfg.risk.rules, cfg.risk.instruments, [BTC])[BTC]
    assert not pack.circuit_band and pack.settlement_days(None) == 0 and pack.lot_size is None and not pack.fees


def test_cash_stays_the_default_account_kind() -> None:
    cfg = load_config(REPO / "config.psx-sandbox.yaml").config
    assert all(v.account.kind == "cash" for v in cfg.venues.values())
    assert {cfg.account_currency(name) for name in cfg.venues} == {"PKR"}


def test_a_crypto_cash_account_is_in_its_quote_currency() -> None:
    """A spot account on Algo724 holds USDT, on MidChains USD: every amount (reports, ctx.currency,
    the kill switch's cross-venue check) says so, where it said PKR for every cash account."""
    for config, venue, currency in (("config.algo724-sandbox.yaml", "algo724", "USDT"),
                                    ("config.midchains-sandbox.yaml", "midchains", "USD"),
                                    ("config.midchains-ws-sandbox.yaml", "midchains", "USD")):
        cfg = load_config(REPO / config).config
        assert cfg.venues[venue].account.kind == "cash"
        assert cfg.account_currency(venue) == currency
    account = CashAccount(AccountConfig(cash=D(1000), currency="USDT"), TradingCalendar(), {}, {})
    assert account.currency == "USDT" and CashAccount(AccountConfig(), TradingCalendar(), {}, {}).currency == "PKR"


def _pulse_config(tmp_path: Path, account: str, currency_line: str = "") -> Path:
    text = (REPO / "config.pulse-sandbox.yaml").read_text()
    text = text.replace("\n     settlement_currency: USD}", "}" if not currency_line else f"\n     {currency_line}}}")
    start = text.index("    account:\n")
    end = text.index("    cancel_on_disconnect: true                 # the engine's side")
    text = text[:start] + account + text[end:]
    text = text.replace("file: strategies/market_maker.py", f"file: {REPO / 'strategies/market_maker.py'}")
    path = tmp_path / "pulse.yaml"
    path.write_text(text)
    return path


def test_a_derivatives_account_without_a_settlement_currency_is_a_config_error(tmp_path: Path) -> None:
    from engine.config import ConfigError

    with pytest.raises(ConfigError, match="needs its settlement currency"):
        load_config(_pulse_config(tmp_path, "    account: {kind: derivatives, equity: 1000}\n"))
    cfg = load_config(_pulse_config(tmp_path, "    account: {kind: derivatives, equity: 1000, currency: USDC}\n"))
    assert cfg.config.account_currency("pulse") == "USDC"
    with pytest.raises(ConfigError, match="settle in USD"):
        load_config(_pulse_config(tmp_path, "    account: {kind: derivatives, equity: 1000, currency: EUR}\n",
                                  "settlement_currency: USD"))


# ---- journal: the account survives a restart, and a changed kind is refused ------------------------------


def _runtime_with(account: object) -> object:
    from adapters.paper.adapter import PaperAdapter
    from adapters.paper.options import PaperOptions
    from engine.clock import SimClock
    from engine.runtime import Runtime

    clock = SimClock(0)
    runtime = Runtime(clock)
    listed = [Instrument(BTC, "pulse", D("0.5"), D(10), D(50000))]
    adapter = PaperAdapter("pulse", PaperOptions(market={"enabled": False}), listed, clock, runtime)
    runtime.add_venue("pulse", adapter, listed, account=account, currency="USD")
    return runtime


def test_a_journal_snapshot_restores_the_short_and_a_changed_account_kind_is_refused(tmp_path: Path) -> None:
    import datetime as dt

    from engine.errors import StartupError
    from engine.journal import Journal
    from engine.risk.account import AccountConfig
    from engine.runtime.recovery import restore

    day = dt.date(2026, 11, 23)
    derivatives = DerivativesAccountConfig(kind="derivatives", equity=D(1000))
    before = _runtime_with(derivatives)
    before.venues["pulse"].account.apply_fill(_fill(Side.SELL, "10", fee="0.5"))
    journal = Journal.open(tmp_path / "j.sqlite")
    journal.begin_run(1, "config.yaml", day)
    journal.snapshot(1, day, "test", before.persisted_state())
    journal.commit(1)
    journal.close()
    after = _runtime_with(derivatives)
    restore(after, Journal.open(tmp_path / "j.sqlite"), day)
    assert after.venues["pulse"].account.position(BTC) == D(-10)
    assert after.venues["pulse"].account.balance == D("999.5")
    with pytest.raises(StartupError, match="the journal holds a derivatives account, the config a cash one"):
        restore(_runtime_with(AccountConfig()), Journal.open(tmp_path / "j.sqlite", lock=False), day)


# ---- the example market maker quotes both sides where the account may go short -----------------------------


def test_the_market_maker_quotes_asks_from_flat_on_a_derivatives_account(tmp_path: Path) -> None:
    from support import open_session, settle, write_engine_config

    from engine.app import Engine

    config = write_engine_config(tmp_path, {"mm": (REPO / "strategies" / "market_maker.py").read_text()},
                                 market=True, symbols=("MEBL",),
                                 venue={"account": {"kind": "derivatives", "equity": 100000000, "currency": "USD"}})
    engine = Engine(load_config(config))
    open_session(engine)
    settle(engine, 600)
    runtime = engine.runtime
    sells = [o for o in runtime.venues["paper"].orders.values() if o.side is Side.SELL]
    assert sells, "no ask was ever quoted"  # a cash account holding nothing quotes bids only
    assert not [o for o in sells if o.reject_code in (Reject.POSITION_NOT_HELD, 4002)]
    assert runtime.runners["mm"].ctx.account_kind == "derivatives" and runtime.runners["mm"].ctx.currency == "USD"

