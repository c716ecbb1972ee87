"""SECP controls (README "Regulatory controls (SECP)"): a registered algo id on every order, the
order-to-trade ratio as a metric, a report figure and a kill-switch limit, and the audit export
read back and checked against the journal."""

from __future__ import annotations

import csv
import sqlite3
import textwrap
from decimal import Decimal
from pathlib import Path

import pytest
from support import IDLE_STRATEGY, INSTRUMENTS, open_session, settle
from support.gate import build, ctx_of

from engine.app import run_config
from engine.auditexport import COLUMNS
from engine.cli import main
from engine.config import ConfigError, load_config
from engine.journal import MIGRATIONS, Journal
from engine.observe.snapshot import families_of

STRATEGY_LINE = "  - {name: %s, file: s.py, venue: paper, instruments: [MEBL]%s}\n"


def _config(folder: Path, strategies: str, source: str = IDLE_STRATEGY, *,
            market: bool = False, risk: str = "") -> Path:
    (folder / "s.py").write_text(textwrap.dedent(source))
    config = folder / "config.yaml"
    config.write_text(
        "run: {clock: simulated, days: 1, seed: 7}\nlogging: {level: WARNING}\n" + INSTRUMENTS
        + f"venues:\n  paper:\n    adapter: paper\n    options: {{market: {{enabled: {str(market).lower()}}}}}\n"
        + "    account: {cash: 1000000}\n"
        + "strategies:\n" + strategies + risk
    )
    return config


# ---- algo id -----------------------------------------------------------------------------------

def test_algo_id_defaults_to_the_strategy_name_and_is_venue_safe_and_unique(tmp_path):
    loaded = load_config(_config(tmp_path, STRATEGY_LINE % ("mm", "") + STRATEGY_LINE % ("mom", ", algo_id: SECP-7")))
    ids = {s.name: s.algorithm_id for s in loaded.config.strategies}
    assert ids == {"mm": "mm", "mom": "SECP-7"}
    with pytest.raises(ConfigError, match="algo_id is 1 to 32 letters"):
        load_config(_config(tmp_path, STRATEGY_LINE % ("mm", ", algo_id: 'a b'")))
    with pytest.raises(ConfigError, match="algo_id 'mm' is already the algo id of strategies\\[0\\]"):
        load_config(_config(tmp_path, STRATEGY_LINE % ("mm", "") + STRATEGY_LINE % ("mom", ", algo_id: mm")))


def test_a_version_3_journal_migrates_its_orders_to_the_strategy_name_as_algo_id(tmp_path):
    path = tmp_path / "j.sqlite"
    db = sqlite3.connect(path)
    db.executescript(";".join(MIGRATIONS[:3]) + """;
        INSERT INTO orders VALUES ('paper', 'mm-1', 'mm', 'MEBL', 'buy', 'limit', 'day', '180', '10', '0', '0',
            'new', '', 0, 0, NULL, '', 1, 1, 1);
        INSERT INTO order_events (venue, client_id, ts, status, price, qty, cum_qty, detail)
            VALUES ('paper', 'mm-1', 1, 'new', '180', '10', '0', '');
        PRAGMA user_version = 3;""")
    db.close()
    journal = Journal.open(path)
    try:
        assert journal.schema_version() == len(MIGRATIONS)
        assert journal.open_orders()[0].algo_id == "mm"
        assert journal.db.execute("SELECT engine_ts FROM order_events").fetchone()[0] is None
    finally:
        journal.close()


# ---- order-to-trade ratio ----------------------------------------------------------------------

def _gauge(engine, name: str, **labels: str) -> float:
    for family in families_of(engine.runtime, "simulated", 0.0):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    raise AssertionError(f"no {name} {labels}")


def test_many_orders_and_few_fills_trip_the_order_to_trade_limit_with_its_action(tmp_path):
    engine = build(tmp_path, risk={"kill_switch": {"order_to_trade": {"max_ratio": "3", "min_orders": 10,
                                                                      "action": "reducing"}}},
                   per_strategy={"s": {"algo_id": "ALGO-S"}})
    open_session(engine)
    ctx = ctx_of(engine)
    for n in range(1, 6):  # order + cancel: 2 messages each, never a fill
        order = ctx.submit("MEBL", "buy", 10, "180.00")
        settle(engine, 0.01)
        assert order.algo_id == "ALGO-S" and order.status == "new", order.reject_reason
        if n < 5:
            assert ctx.cancel(order)
            settle(engine, 0.01)
            assert ctx.trading_state == "active"  # 8 messages at most: under min_orders
    assert ctx.amend(order, price="180.50")  # the 10th message: 10 per (max 1) fill > 3
    settle(engine, 0.01)
    assert ctx.trading_state == "reducing"
    report = engine.report()
    ks = report["kill_switch"]
    assert (ks["state"], ks["source"]) == ("reducing", "order_to_trade")
    assert "strategy 's': order-to-trade ratio 10.00" in ks["reason"] and "above the limit 3" in ks["reason"]
    assert order.status == "cancelled"  # REDUCING cancels the working buy: it would grow the position
    s = report["strategies"]["s"]
    assert (s["orders"], s["amends"], s["cancels"], s["fills"], s["order_to_trade"], s["algo_id"]) == (
        5, 1, 5, 0, "11.00", "ALGO-S")
    # REDUCING: what would grow the (flat) position is refused locally and is no message
    refused = ctx.submit("MEBL", "buy", 10, "180.00")
    assert refused.reject_code == 7012
    assert _gauge(engine, "engine_order_to_trade_ratio", strategy="s") >= 10.0
    assert _gauge(engine, "engine_order_messages_total", strategy="s", kind="cancel") >= 4


def test_a_strategy_whose_orders_fill_stays_under_the_ratio(tmp_path):
    from support.gate import counterparty
    engine = build(tmp_path, risk={"kill_switch": {"order_to_trade": {"max_ratio": "3", "min_orders": 2}}})
    open_session(engine)
    ctx = ctx_of(engine)
    for _ in range(4):
        counterparty(engine, "MEBL", "sell", 10, "187.50")
        order = ctx.submit("MEBL", "buy", 10, "187.50")
        settle(engine, 0.01)
        assert order.status == "filled", order.reject_reason
    assert ctx.trading_state == "active"
    assert engine.report()["strategies"]["s"]["order_to_trade"] == "1.00"
    assert _gauge(engine, "engine_order_to_trade_ratio", strategy="s") == 1.0


# ---- audit export ------------------------------------------------------------------------------

TRADER = """\
from decimal import Decimal

from engine import hookimpl

sent = {}

@hookimpl
def on_book(ctx, book):
    if ctx.session != "open" or book.mid is None or sent:
        return
    mebl = ctx.instrument("MEBL")
    sent["fill"] = ctx.submit("MEBL", "buy", 10, mebl.round_to_tick(book.best_ask, "buy"))
    sent["refused"] = ctx.submit("MEBL", "sell", 1000000, mebl.round_to_tick(book.mid, "sell"))
    sent["rest"] = ctx.submit("MEBL", "buy", 10, mebl.round_to_tick(book.best_bid * Decimal("0.95"), "buy"))

@hookimpl
def on_trade(ctx, trade):
    rest = sent.get("rest")
    if rest is not None and rest.status == "new":
        ctx.cancel(rest)
"""


def test_the_audit_export_reads_back_as_the_journal_in_csv_and_parquet(tmp_path, capsys):
    pq = pytest.importorskip("pyarrow.parquet")
    config = _config(tmp_path, STRATEGY_LINE % ("t", ", algo_id: SECP-T1"), TRADER, market=True)
    run_config(load_config(config))
    journal_path = tmp_path / "config.journal.sqlite"
    db = sqlite3.connect(journal_path)
    db.row_factory = sqlite3.Row
    events = db.execute("SELECT * FROM order_events ORDER BY seq").fetchall()
    fills = db.execute("SELECT * FROM fills ORDER BY seq").fetchall()
    rejected = db.execute("SELECT * FROM orders WHERE status = 'rejected'").fetchall()
    db.close()
    assert events and fills and rejected  # the day had every kind of row

    assert main(["journal", "export", str(journal_path), "--format", "csv", "--out", str(tmp_path / "a.csv")]) == 0
    assert main(["journal", "export", str(journal_path), "--format", "parquet"]) == 0
    assert f"{len(events) + len(fills)} rows" in capsys.readouterr().out
    with open(tmp_path / "a.csv", newline="") as handle:
        from_csv = list(csv.DictReader(handle))
    from_parquet = pq.read_table(tmp_path / "config.journal.sqlite.audit.parquet").to_pylist()
    assert (tmp_path / "a.csv").stat().st_mode & 0o077 == 0  # owner-only, like the journal
    for rows in (from_csv, from_parquet):
        assert list(rows[0]) == list(COLUMNS)
        assert [r["record"] for r in rows] == ["order_event"] * len(events) + ["fill"] * len(fills)
        assert {r["algo_id"] for r in rows} == {"SECP-T1"} and {r["strategy"] for r in rows} == {"t"}
        for row, event in zip(rows, events, strict=False):
            assert (row["client_id"], row["status"], int(row["venue_ts"]), int(row["engine_ts"])) == (
                event["client_id"], event["status"], event["ts"], event["engine_ts"])
        for row, fill in zip(rows[len(events):], fills, strict=True):
            assert (row["exec_id"], Decimal(row["fill_qty"]), Decimal(row["fill_price"]), int(row["venue_ts"])) == (
                fill["exec_id"], Decimal(fill["qty"]), Decimal(fill["price"]), fill["ts"])
        refusals = [r for r in rows if r["status"] == "rejected"]
        assert {r["client_id"] for r in refusals} == {o["client_id"] for o in rejected}
        assert all(int(r["reject_code"]) == o["reject_code"] and r["reason"] == o["reason"]
                   for r, o in zip(refusals, rejected, strict=True))


def test_the_export_writes_only_to_a_regular_file_or_a_new_path(tmp_path, capsys):
    config = _config(tmp_path, STRATEGY_LINE % ("t", ""), IDLE_STRATEGY)
    run_config(load_config(config))
    folder = tmp_path / "out"
    folder.mkdir()
    assert main(["journal", "export", str(tmp_path / "config.journal.sqlite"), "--format", "csv",
                 "--out", str(folder)]) == 1
    assert "is a directory" in capsys.readouterr().err
