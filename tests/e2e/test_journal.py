"""The journal (engine/journal.py), restart (engine/runtime/recovery.py) and the paper venue's own ledger,
on real SQLite files and real engine runs."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import textwrap
from decimal import Decimal
from pathlib import Path

import anyio
import pytest
from support import INSTRUMENTS

from adapters.paper.adapter import PaperAdapter, PaperOptions
from engine.app import run_config
from engine.cli import main
from engine.clientids import format_client_id
from engine.clock import KARACHI, NS_PER_S, SimClock
from engine.config import load_config
from engine.errors import StartupError
from engine.journal import MIGRATIONS, Journal, JournalError
from engine.model import Instrument, Order, OrderStatus, OrderType, Phase, SessionState, Side, TimeInForce
from engine.rejects import Reject
from engine.risk.connectivity import VenueConnected, VenueStatus
from engine.risk.gate import OrderRequest

ACCOUNT = "    account: {cash: 1000000, holdings: {MEBL: 1000, OGDC: 1000}}\n"

# sells 100 MEBL at the first open of the account's life; logs what it sees at each start
SELLER = """\
import json
from engine import hookimpl

PARAMS = {"log": "", "journal": ""}
state = {"sold": False, "starts": 0}

@hookimpl
def on_load(ctx, state):
    globals()["state"] = state

@hookimpl
def on_start(ctx):
    state["starts"] += 1
    with open(ctx.params.log, "a") as out:
        out.write(json.dumps({"day": ctx.now().date().isoformat(), "bp": str(ctx.buying_power),
                              "starts": state["starts"], "mebl": str(ctx.sellable("MEBL"))}) + "\\n")

@hookimpl
def on_session_change(ctx, old, new):
    if new == "open" and not state["sold"]:
        ctx.submit("MEBL", "sell", 100, ctx.instrument("MEBL").round_to_tick(180, "sell"))
        state["sold"] = True

@hookimpl
def on_fill(ctx, fill):
    import sqlite3
    db = sqlite3.connect(ctx.params.journal)
    found = db.execute("SELECT COUNT(*) FROM fills WHERE exec_id = ?", (fill.exec_id,)).fetchone()[0]
    db.close()
    with open(ctx.params.log, "a") as out:
        out.write(json.dumps({"fill": fill.exec_id, "in_journal_before_on_fill": found}) + "\\n")

@hookimpl
def on_save(ctx):
    return state
"""


def _config(folder: Path, strategy: str = SELLER, *, run: str = "{clock: simulated, days: 1, seed: 7}",
            extra: str = "", venue_extra: str = "") -> Path:
    (folder / "s.py").write_text(textwrap.dedent(strategy))
    log = folder / "log.jsonl"
    config = folder / "config.yaml"
    config.write_text(
        f"run: {run}\nlogging: {{level: WARNING}}\n" + INSTRUMENTS
        + "venues:\n  paper:\n    adapter: paper\n    options: {market: {enabled: true}}\n" + ACCOUNT + venue_extra
        + "strategies:\n  - {name: s, file: s.py, venue: paper, instruments: [MEBL, OGDC], "
        + f"params: {{log: '{log}', journal: '{folder / 'config.journal.sqlite'}'}}}}\n" + extra
    )
    return config


def _log(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "log.jsonl").read_text().splitlines()]


def test_three_days_continue_one_account_and_t_plus_2_proceeds_are_usable_on_day_three(tmp_path):
    config = _config(tmp_path)
    reports = [run_config(load_config(config)).report for _ in range(3)]
    days = [r["trading_days"][0] for r in reports]
    assert len(set(days)) == 3 and days == sorted(days)  # consecutive runs, consecutive trading days
    starts = [e for e in _log(tmp_path) if "day" in e]
    fills = [e for e in _log(tmp_path) if "fill" in e]
    assert [s["day"] for s in starts] == days
    assert [s["starts"] for s in starts] == [1, 2, 3]  # on_save / on_load carried the strategy's state
    assert sum(r["fills"] for r in reports) == len(fills) >= 1  # sold once, on day 1 only
    assert all(f["in_journal_before_on_fill"] == 1 for f in fills)  # durable before on_fill
    journal = Journal.open_readonly(tmp_path / "config.journal.sqlite")
    try:
        proceeds = sum(f.fill.qty * f.fill.price - f.fill.fee for f in journal.fills())
    finally:
        journal.close()
    assert proceeds > 0
    bp = [Decimal(s["bp"]) for s in starts]
    assert bp[0] == bp[1] == Decimal(1_000_000)  # T+2: day 1's sale is not cash on day 2
    assert bp[2] == Decimal(1_000_000) + proceeds  # ... and is on day 3
    assert [Decimal(s["mebl"]) for s in starts] == [1000, 900, 900]


def _venue_meta(folder: Path, key: str) -> tuple[str, Decimal]:
    with sqlite3.connect(folder / "config.journal.venue-paper.sqlite") as db:
        day, price = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()[0].split()
    return day, Decimal(price)


def test_the_paper_venue_opens_the_next_run_on_its_own_last_close_not_the_configs_previous_close(tmp_path):
    config = _config(tmp_path)
    first = run_config(load_config(config))
    day1, close1 = _venue_meta(tmp_path, "close:MEBL")
    assert day1 == first.report["trading_days"][0] and close1 != Decimal("187.50")  # the market moved
    second = run_config(load_config(config))
    day2, reference2 = _venue_meta(tmp_path, "reference:MEBL")
    assert day2 == second.report["trading_days"][0] > day1
    assert reference2 == close1
    assert second.report["anomalies"] == {}


class _Statuses:
    """A sink keeping the instrument statuses a venue announces (reference and closing prices)."""

    def __init__(self) -> None:
        self.statuses: list = []

    def on_instrument_status(self, status) -> None:
        self.statuses.append(status)

    def __getattr__(self, name):
        return lambda *args, **kwargs: None


def test_a_paper_venue_restarted_after_the_close_keeps_the_days_close_and_rolls_it_into_tomorrow(tmp_path):
    state = tmp_path / "venue.sqlite"
    instrument = Instrument("MEBL", "paper", Decimal("0.01"), Decimal(1), Decimal("187.50"))
    clock = SimClock(int(dt.datetime(2026, 11, 23, 9, 40, tzinfo=KARACHI).timestamp()) * NS_PER_S)

    def session(phase: Phase, day: str = "2026-11-23") -> SessionState:
        return SessionState(phase, phase is not Phase.CLOSED, phase is not Phase.CLOSED, phase is Phase.OPEN, day)

    async def first_run() -> None:
        venue = PaperAdapter("paper", PaperOptions(market={"enabled": False}), [instrument], clock, _Statuses())
        venue.set_state_path(state)
        await venue.connect()
        venue.on_session(session(Phase.OPEN))
        book = venue.matching_engine("MEBL")
        book.submit("street", "a", Side.SELL, Decimal(10), Decimal("190.00"), ts=clock.now_ns())
        book.submit("avenue", "b", Side.BUY, Decimal(10), Decimal("190.00"), ts=clock.now_ns())  # trades at 190
        venue.on_session(session(Phase.POST_CLOSE))
        await venue.close()

    anyio.run(first_run)
    clock.advance(clock.now_ns() + 6 * 3600 * NS_PER_S)  # 15:40, still the 23rd
    sink = _Statuses()
    venue = PaperAdapter("paper", PaperOptions(market={"enabled": False}), [instrument], clock, sink)
    venue.set_state_path(state)

    async def restarted() -> None:
        await venue.connect()
        venue.on_session(session(Phase.POST_CLOSE))
        assert [s.closing_price for s in sink.statuses if s.closing_price is not None] == [Decimal("190.00")]
        assert venue.matching_engine("MEBL").closing_price == Decimal("190.00")  # post-close trades at it
        venue.on_session(session(Phase.CLOSED))
        venue.on_session(session(Phase.PRE_OPEN, "2026-11-24"))
        assert [s.reference_price for s in sink.statuses if s.reference_price is not None][-1] == Decimal("190.00")
        await venue.close()

    anyio.run(restarted)


def test_a_start_before_the_accounts_next_day_is_refused_and_fresh_account_moves_the_journal_aside(tmp_path):
    config = _config(tmp_path, run="{clock: simulated, start: 2026-11-23, days: 1, seed: 7}")
    run_config(load_config(config))
    with pytest.raises(StartupError, match="--fresh-account"):
        run_config(load_config(config))
    report = run_config(load_config(config), fresh_account=True).report
    assert report["trading_days"] == ["2026-11-23"] and report["journal"]["restored"] == "new account"
    assert len(list(tmp_path.glob("config.journal.sqlite.*.bak"))) == 1  # moved aside, not deleted
    assert len(list(tmp_path.glob("config.journal.venue-paper.sqlite.*.bak"))) == 1


def test_second_engine_on_one_journal_is_refused_naming_the_pid(tmp_path):
    first = Journal.open(tmp_path / "j.sqlite")
    try:
        with pytest.raises(JournalError, match=r"in use by another engine \(pid \d+\)"):
            Journal.open(tmp_path / "j.sqlite")
    finally:
        first.close()
    Journal.open(tmp_path / "j.sqlite").close()  # the lock goes with the engine


def test_schema_migrates_forward_and_a_newer_journal_is_refused(tmp_path):
    path = tmp_path / "j.sqlite"
    journal = Journal.open(path)
    journal.save_strategy_state(1, "s", {"n": 1})
    journal.close()
    newer = (*MIGRATIONS, "CREATE TABLE notes (text TEXT NOT NULL)")
    journal = Journal.open(path, migrations=newer)
    assert journal.schema_version() == len(MIGRATIONS) + 1
    assert journal.strategy_states() == {"s": {"n": 1}}  # data kept across the migration
    journal.close()
    with pytest.raises(JournalError, match="newer than this engine"):
        Journal.open(path)
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(JournalError, match="not a journal"):
        Journal.open(garbage)


def test_a_version_1_journal_keeps_its_client_id_reservation_as_its_last_block(tmp_path):
    path = tmp_path / "j.sqlite"
    db = sqlite3.connect(path)
    db.executescript(MIGRATIONS[0] + "INSERT INTO client_ids (strategy, reserved) VALUES ('s', 2000);"
                     "PRAGMA user_version = 1;")
    db.close()
    journal = Journal.open(path)
    try:
        assert journal.client_epoch == ""  # its ids keep the <strategy>-<n> shape: still recognised
        assert journal.client_ids_reserved("s") == 2000  # never handed out again
        assert journal.client_id_blocks_after("s", 0) == [1001]
        assert journal.reserve_client_ids("s", 2001) == 3000
        assert journal.client_id_blocks_after("s", 1001) == [2001]
    finally:
        journal.close()


def test_restart_refuses_orders_with_7015_until_reconciled():
    class Venue:
        name = "paper"
        status = VenueStatus.RECOVERING

    request = OrderRequest("s", "paper", "MEBL", None, Side.BUY, Decimal(1), Decimal(1), OrderType.LIMIT,
                           TimeInForce.DAY, False, "s-1")
    rejection = VenueConnected(Venue()).check(request)
    assert rejection is not None and rejection.code == Reject.RECOVERING and "restart" in rejection.reason


def _rest_an_order_at_the_venue(state: Path, client_id: str, filled_by_street: int = 0,
                                tif: TimeInForce = TimeInForce.DAY) -> None:
    """What a crash leaves: the venue works an order the journal never recorded (and, with
    ``filled_by_street``, the order took that much of another participant's offer meanwhile)."""
    clock = SimClock(int(dt.datetime(2026, 11, 23, 9, 40, tzinfo=KARACHI).timestamp()) * NS_PER_S)

    class Sink:
        def __getattr__(self, name):
            return lambda *args, **kwargs: None

    instrument = Instrument("MEBL", "paper", Decimal("0.01"), Decimal(1), Decimal("187.50"))
    venue = PaperAdapter("paper", PaperOptions(market={"enabled": False}), [instrument], clock, Sink())
    venue.set_state_path(state)

    async def go() -> None:
        await venue.connect()
        venue.on_session(SessionState(Phase.OPEN, True, True, True, "2026-11-23"))
        if filled_by_street:
            venue.matching_engine("MEBL").submit("street", "cp-1", Side.SELL, Decimal(filled_by_street),
                                                 Decimal("180.00"), ts=clock.now_ns())
        venue.submit(Order(client_id, "s", "paper", "MEBL", Side.BUY, Decimal(100), Decimal("180.00"), tif=tif))
        while clock.advance():
            pass
        await venue.close()

    anyio.run(go)


def _id(folder: Path, strategy: str, n: int) -> str:
    """The client id ``n`` of ``strategy`` in the journal at ``folder`` (created on first use, which
    draws its client-id epoch)."""
    journal = Journal.open(folder / "config.journal.sqlite")
    try:
        return format_client_id(strategy, journal.client_epoch, n)
    finally:
        journal.close()


def _earlier_run_journaled(folder: Path, *client_ids: str, status: OrderStatus = OrderStatus.NEW,
                           blocks: tuple[int, ...] = ()) -> None:
    """What an earlier run left in the journal: these orders (a 100 MEBL buy each, the strategy
    named by the id) and, with ``blocks``, strategy "s"'s client-id blocks starting at those ids."""
    journal = Journal.open(folder / "config.journal.sqlite")
    journal.begin_run(0, "earlier run", dt.date(2026, 11, 23))
    for first in blocks:
        journal.reserve_client_ids("s", first)
    for n, client_id in enumerate(client_ids, 1):
        order = Order(client_id, client_id.split("-")[0], "paper", "MEBL", Side.BUY, Decimal(100),
                      Decimal("180.00"))
        order.restore(status, Decimal(0), Decimal(0), str(n), 1)
        journal.order(order)
    journal.close()


LOOKER = """\
import json
from engine import hookimpl

PARAMS = {"log": "", "journal": ""}

@hookimpl
def on_start(ctx):
    with open(ctx.params.log, "a") as out:
        out.write(json.dumps({"open": [o.client_id for o in ctx.open_orders()]}) + "\\n")
"""


@pytest.mark.parametrize("policy", ["cancel", "adopt"])
def test_an_order_the_venue_works_but_the_journal_never_saw_is_cancelled_or_adopted(tmp_path, policy):
    ours = _id(tmp_path, "s", 424242)
    _rest_an_order_at_the_venue(tmp_path / "config.journal.venue-paper.sqlite", ours)
    config = _config(tmp_path, LOOKER, run="{clock: simulated, start: 2026-11-23, days: 1, seed: 7}",
                     extra=f"journal: {{on_restart: {{unknown_orders: {policy}}}}}\n")
    report = run_config(load_config(config)).report
    seen = _log(tmp_path)[0]["open"]
    assert seen == ([] if policy == "cancel" else [ours])
    with sqlite3.connect(tmp_path / "config.journal.venue-paper.sqlite") as db:
        status = db.execute("SELECT status FROM orders WHERE client_id = ?", (ours,)).fetchone()[0]
    # cancelled by the engine as soon as the venue takes cancels (pre-open), or, adopted, worked by the
    # strategy until the DAY order expired at the close
    final = "cancelled" if policy == "cancel" else "expired"
    assert status == final
    journal = Journal.open_readonly(tmp_path / "config.journal.sqlite")
    try:
        assert {r["client_id"]: r["status"] for r in journal.orders()}[ours] == final
    finally:
        journal.close()
    assert report["orders"]["open_at_exit"] == 0


@pytest.mark.parametrize("policy", ["keep", "cancel"])
def test_orders_both_sides_know_are_kept_for_their_strategy_or_cancelled_by_the_engine(tmp_path, policy):
    ours = _id(tmp_path, "s", 7)
    _rest_an_order_at_the_venue(tmp_path / "config.journal.venue-paper.sqlite", ours)
    _earlier_run_journaled(tmp_path, ours)
    config = _config(tmp_path, LOOKER, run="{clock: simulated, start: 2026-11-23, days: 1, seed: 7}",
                     extra=f"journal: {{on_restart: {{open_orders: {policy}}}}}\n")
    run_config(load_config(config))
    assert _log(tmp_path)[0]["open"] == ([ours] if policy == "keep" else [])
    final = "expired" if policy == "keep" else "cancelled"  # cancelled once the venue takes cancels
    with sqlite3.connect(tmp_path / "config.journal.venue-paper.sqlite") as db:
        assert db.execute("SELECT status FROM orders WHERE client_id = ?", (ours,)).fetchone()[0] == final


def test_a_fill_for_a_strategy_no_longer_in_the_config_moves_the_account_and_its_kept_position(tmp_path):
    """Strategy "gone" left the config while its order worked; 40 of it filled while the engine was
    down. The fill is the account's (cash, holdings) and "gone"'s position, kept in the snapshots;
    the rest of the order is cancelled by the engine."""
    gone = _id(tmp_path, "gone", 1)
    _rest_an_order_at_the_venue(tmp_path / "config.journal.venue-paper.sqlite", gone, filled_by_street=40)
    _earlier_run_journaled(tmp_path, gone)
    config = _config(tmp_path, LOOKER, run="{clock: simulated, start: 2026-11-23, days: 1, seed: 7}")
    run_config(load_config(config))
    journal = Journal.open_readonly(tmp_path / "config.journal.sqlite")
    try:
        _, _, state = journal.last_snapshot()
        assert state["venues"]["paper"]["held"]["MEBL"] == "1040"
        assert Decimal(state["strategies"]["gone"]["positions"]["MEBL"]["qty"]) == 40
        assert {r["client_id"]: r["status"] for r in journal.orders()}[gone] == "cancelled"
    finally:
        journal.close()
    with sqlite3.connect(tmp_path / "config.journal.venue-paper.sqlite") as db:
        assert db.execute("SELECT status FROM orders WHERE client_id = ?", (gone,)).fetchone()[0] == "cancelled"


@pytest.mark.parametrize("lost, blocks", [(3, (1,)), (1001, (1, 1001)), (2001, (1, 1001, 2001))])
def test_an_order_that_ended_unfilled_in_the_last_flush_window_is_found_by_asking_the_venue(tmp_path, lost, blocks):
    """A crash lost the row of s-<lost>, an IOC the venue cancelled with nothing filled: no fill and no
    open order tell of it, so restart asks the venue for the ids after the journal's last (s-2), and
    from the first id of each later block: a run restarted after a crash took ids 1001-2000, and the
    order it sent first is the one whose row the next crash lost (seen in the SIGKILL test)."""
    state = tmp_path / "config.journal.venue-paper.sqlite"
    _rest_an_order_at_the_venue(state, _id(tmp_path, "s", lost), tif=TimeInForce.IOC)
    _earlier_run_journaled(tmp_path, _id(tmp_path, "s", 1), _id(tmp_path, "s", 2), status=OrderStatus.CANCELLED,
                           blocks=blocks)
    config = _config(tmp_path, LOOKER, run="{clock: simulated, start: 2026-11-23, days: 1, seed: 7}")
    run_config(load_config(config))
    journal = Journal.open_readonly(tmp_path / "config.journal.sqlite")
    try:
        rows = {r["client_id"]: r["status"] for r in journal.orders()}
    finally:
        journal.close()
    assert rows[_id(tmp_path, "s", lost)] == "cancelled"


REFUSED_THEN_SENT = """\
import json
import sqlite3
from engine import hookimpl

PARAMS = {"log": "", "journal": ""}

@hookimpl
def on_session_change(ctx, old, new):
    if new != "open":
        return
    orders = [ctx.submit("MEBL", "sideways", 1, "180.00") for _ in range(2)]  # refused: no such side
    sent = ctx.submit("MEBL", "buy", 1, ctx.instrument("MEBL").round_to_tick(180, "buy"))
    db = sqlite3.connect(ctx.params.journal)
    durable = [r[0] for r in db.execute("SELECT client_id FROM orders WHERE status = 'rejected'")]
    db.close()
    with open(ctx.params.log, "a") as out:
        out.write(json.dumps({"refused": [o.client_id for o in orders], "sent": sent.client_id,
                              "status": sent.status.value, "durable": durable}) + "\\n")
"""


def test_ids_refused_in_a_row_are_durable_before_the_next_order_goes_out(tmp_path):
    """Restart asks the venue about the ids after the journal's last and stops after PROBE_MISSES
    unknown in a row. Ids refused locally are unknown at the venue, so were their rows lost with the
    order sent after them, the probe would stop short of it: the journal commits them first."""
    config = _config(tmp_path, REFUSED_THEN_SENT, run="{clock: simulated, start: 2026-11-23, days: 1, seed: 7}")
    run_config(load_config(config))
    seen = _log(tmp_path)[0]
    assert seen["status"] == "pending_new"
    refused = [_id(tmp_path, "s", 1), _id(tmp_path, "s", 2)]
    assert seen["refused"] == refused and seen["sent"] == _id(tmp_path, "s", 3)
    assert sorted(seen["durable"]) == sorted(refused)


def test_journal_inspect_prints_account_positions_orders_and_fills(tmp_path, capsys):
    config = _config(tmp_path)
    run_config(load_config(config))
    capsys.readouterr()
    assert main(["journal", "inspect", str(tmp_path / "config.journal.sqlite"), "--fills", "5"]) == 0
    out = capsys.readouterr().out
    for section in ("runs", "account (last snapshot", "positions by strategy", "open orders (0)", "fills"):
        assert section in out
    assert "MEBL:900" in out and " s " in out
    (tmp_path / "not.sqlite").write_text("hello")
    assert main(["journal", "inspect", str(tmp_path / "not.sqlite")]) == 1
    assert "not a journal" in capsys.readouterr().err


# at each open: one sell that fills at once and one GTC buy that rests until the engine cancels it at stop
TWO_ORDERS = """\
import json
from engine import hookimpl

PARAMS = {"log": "", "journal": ""}

@hookimpl
def on_start(ctx):
    with open(ctx.params.log, "a") as out:
        out.write(json.dumps({"open": [o.client_id for o in ctx.open_orders()]}) + "\\n")

@hookimpl
def on_session_change(ctx, old, new):
    if new == "open":
        mebl = ctx.instrument("MEBL")
        ctx.submit("MEBL", "sell", 100, mebl.round_to_tick(180, "sell"))
        ctx.submit("MEBL", "buy", 100, mebl.round_to_tick(182, "buy"), tif="gtc")
"""


def _journal_rows(path: Path) -> tuple[set[str], set[str]]:
    """(client ids of the orders, client ids of the fills) a journal holds."""
    with sqlite3.connect(path) as db:
        return ({r[0] for r in db.execute("SELECT client_id FROM orders")},
                {r[0] for r in db.execute("SELECT client_id FROM fills")})


def test_a_new_journal_on_an_account_with_history_reuses_no_client_id_and_adopts_nothing_of_the_old_one(tmp_path):
    """Issue 17 item 7: the venue keeps its state (and its memory of client ids) across journals. A
    second journal on it must hand out ids the venue never saw, and must not take the first
    journal's fills, or an order of it still working, for its own, even under ``adopt``."""
    state = tmp_path / "config.journal.venue-paper.sqlite"
    first_journal = tmp_path / "config.journal.sqlite"
    config = _config(tmp_path, TWO_ORDERS, run="{clock: simulated, start: 2026-11-23, days: 1, seed: 7}",
                     extra="journal: {on_restart: {unknown_orders: adopt}}\n")
    run_config(load_config(config))
    first_orders, first_fills = _journal_rows(first_journal)
    assert len(first_orders) == 2 and len(first_fills) >= 1
    # the first journal's order still working (a crash left it): its epoch, its strategy's name
    left = _id(tmp_path, "s", 99)
    _rest_an_order_at_the_venue(state, left, tif=TimeInForce.GTC)
    first_journal.rename(tmp_path / "first.journal.sqlite")  # a new journal, the venue's state kept
    config = _config(tmp_path, TWO_ORDERS, run="{clock: simulated, start: 2026-11-24, days: 1, seed: 7}",
                     extra="journal: {on_restart: {unknown_orders: adopt}}\n")
    report = run_config(load_config(config)).report
    second_orders, second_fills = _journal_rows(first_journal)
    assert len(second_orders) == 2 and not second_orders & (first_orders | {left})  # no id reused
    assert second_fills <= second_orders  # none of the first journal's fills taken
    assert _log(tmp_path)[-1]["open"] == []  # nothing adopted into the strategy
    assert report["anomalies"].get("venue_earlier_journal", 0) >= 2  # its fill and its working order, reported
    with sqlite3.connect(state) as db:
        venue_ids = [r[0] for r in db.execute("SELECT client_id FROM orders")]
        assert db.execute("SELECT status FROM orders WHERE client_id = ?", (left,)).fetchone()[0] == "new"
    assert sorted(venue_ids) == sorted(first_orders | second_orders | {left})  # the venue saw 5 distinct ids


def test_a_reduce_only_order_keeps_its_flag_across_a_restart(tmp_path):
    """A derivatives account's reduce-only order, restored from the journal after a restart, is
    still one that may only shrink the position (issue 20); an order journaled by an engine before
    the flag existed reads as not reduce-only."""
    path = tmp_path / "j.sqlite"
    journal = Journal.open(path)
    reducing = Order("s-1", "s", "pulse", "BTC_USD-PERPETUAL", Side.SELL, Decimal(10), Decimal(50000),
                     reduce_only=True)
    plain = Order("s-2", "s", "pulse", "BTC_USD-PERPETUAL", Side.BUY, Decimal(10), Decimal(49000))
    for order in (reducing, plain):
        order.transition(OrderStatus.NEW, 1)
        journal.order(order)
    journal.commit(1)
    journal.close()
    journal = Journal.open(path)
    try:
        restored = {o.client_id: o for o in journal.open_orders()}
        assert restored["s-1"].reduce_only and not restored["s-2"].reduce_only
    finally:
        journal.close()
    # a journal written before the flag existed: its order rows have no reduce_only column at all
    old = tmp_path / "old.sqlite"
    Journal.open(old, migrations=MIGRATIONS[:-1]).close()
    db = sqlite3.connect(old)
    db.execute("INSERT INTO orders (venue, client_id, strategy, symbol, side, order_type, tif, price, qty, cum_qty, "
               "notional, status, venue_order_id, post_only, mmp, reject_code, reason, created_ns, updated_ns, "
               "run_id, algo_id) VALUES ('pulse', 's-9', 's', 'BTC_USD-PERPETUAL', 'sell', 'limit', 'day', '50000', "
               "'10', '0', '0', 'new', '', 0, 0, NULL, '', 1, 1, 0, 's')")
    db.commit()
    db.close()
    journal = Journal.open(old)  # migrated forward
    try:
        (before,) = journal.open_orders()
        assert before.client_id == "s-9" and not before.reduce_only
    finally:
        journal.close()
