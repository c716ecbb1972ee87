"""A venue's word on the account (issue 20, section 3): a margin call or an account alert reaches
the strategies on that venue (``on_account_event``), is counted (report, metrics), and a margin
call moves the kill switch as ``risk.kill_switch.on_margin_call`` says (reducing by default)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from support import open_session, write_engine_config

from engine.app import Engine
from engine.config import load_config
from engine.model import ACCOUNT_ALERT, MARGIN_CALL, AccountEvent
from engine.observe.snapshot import families_of
from engine.risk.killswitch import TradingState

LISTENER = """\
from engine import hookimpl

seen = []


@hookimpl
def on_account_event(ctx, event):
    seen.append((event.kind, event.fields))
"""


def _engine(tmp_path: Path, on_margin_call: str | None = None) -> Engine:
    config = write_engine_config(tmp_path, {"listener": LISTENER})
    if on_margin_call is not None:
        config.write_text(config.read_text() + f"risk:\n  kill_switch: {{on_margin_call: {on_margin_call}}}\n")
    engine = Engine(load_config(config))
    open_session(engine)
    return engine


def _event(kind: str, **fields: object) -> AccountEvent:
    return AccountEvent("paper", kind, 0, tuple(fields.items()), "EVT-1")


@pytest.mark.parametrize(("setting", "state"), [(None, TradingState.REDUCING), ("halted", TradingState.HALTED),
                                                ("off", TradingState.ACTIVE)])
def test_a_margin_call_moves_the_kill_switch_as_configured_and_tells_the_strategy(
        tmp_path: Path, setting: str | None, state: TradingState) -> None:
    engine = _engine(tmp_path, setting)
    runtime = engine.runtime
    runtime.on_account_event(_event(MARGIN_CALL, margin_level=Decimal("0.35")))
    assert runtime.kill_switch.state is state
    if state is not TradingState.ACTIVE:
        assert runtime.kill_switch.source == "margin_call" and "margin call" in runtime.kill_switch.reason
    seen = runtime.runners["listener"].loaded.module.seen
    assert seen == [(MARGIN_CALL, {"margin_level": Decimal("0.35")})]


def test_an_account_alert_is_told_and_counted_but_changes_nothing(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    runtime = engine.runtime
    runtime.on_account_event(_event(ACCOUNT_ALERT, message="Deposit/withdrawal status"))
    runtime.on_account_event(_event(ACCOUNT_ALERT, message="again"))
    assert runtime.kill_switch.state is TradingState.ACTIVE
    assert runtime.venue_summary(runtime.venues["paper"])["account_events"] == {ACCOUNT_ALERT: 2}
    assert len(runtime.runners["listener"].loaded.module.seen) == 2


def _account_series(engine: Engine) -> dict[tuple[str, ...], float]:
    return {tuple(sample.labels.values()): sample.value
            for family in families_of(engine.runtime, "simulated", 0.0) if family.name == "engine_venue_account_events"
            for sample in family.samples}


def test_account_events_are_a_metric_from_zero(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    before = _account_series(engine)
    assert before[("paper", MARGIN_CALL)] == 0 and before[("paper", ACCOUNT_ALERT)] == 0
    engine.runtime.on_account_event(_event(MARGIN_CALL))
    assert _account_series(engine)[("paper", MARGIN_CALL)] == 1


def test_an_event_from_a_venue_the_engine_does_not_run_is_an_anomaly(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    engine.runtime.on_account_event(AccountEvent("nowhere", MARGIN_CALL, 0))
    assert engine.runtime.kill_switch.state is TradingState.ACTIVE
    assert engine.runtime.anomalies["unknown_venue_event"] == 1


def test_an_adapters_anomaly_is_one_of_the_engines_counted_by_kind(tmp_path: Path) -> None:
    """VenueEvents.on_anomaly: what an adapter cannot settle (MidChains' reports dropped at the daily
    reset, a CumQty that does not follow) reaches the engine's anomalies, the report and the metric."""
    engine = _engine(tmp_path)
    engine.runtime.on_anomaly("paper", "reports_dropped_at_reset", "order c-1: reports dropped at the reset")
    engine.runtime.on_anomaly("paper", "reports_dropped_at_reset", "order c-2: reports dropped at the reset")
    assert engine.runtime.anomalies["reports_dropped_at_reset"] == 2
    assert "venue paper: order c-1: reports dropped at the reset" in engine.runtime.anomaly_samples
    [family] = [f for f in families_of(engine.runtime, "simulated", 0.0) if f.name == "engine_anomalies"]
    assert {s.labels["kind"]: s.value for s in family.samples
            if s.name.endswith("_total")}["reports_dropped_at_reset"] == 2
