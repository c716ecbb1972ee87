"""Issue 17 item 8: after a crash and restart, the shipped market maker takes back the quotes it
left working at the venue (``ctx.open_orders()`` in ``on_start``) instead of quoting again beside
them. Deterministic and in-process: the engine dies at 10:30 engine time (an exception out of its
simulated clock: no on_stop, no shutdown cancels, exactly what a crash leaves), and a second
engine on the same journal and venue state finishes the day."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import anyio
import pytest
import yaml
from support import REPO

from adapters.paper.adapter import PaperAdapter
from engine.app import Engine, run_config
from engine.clock import KARACHI, NS_PER_S
from engine.config import load_config
from engine.model import Order

SYMBOLS = ("MEBL", "OGDC", "KEL")


class Crash(BaseException):
    """The process dies here (not an Exception: nothing in the engine may catch it)."""


#: most of the market maker's orders working at once, per (symbol, side), since the last clear()
most_working: Counter[tuple[str, str]] = Counter()


class CountingPaper(PaperAdapter):
    """The paper venue, noting how many of the market maker's orders work at once per book side:
    the venue's resting ones (restored from its state after a restart included) plus those in
    flight towards it."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.sent: list[Order] = []

    def submit(self, order: Order) -> None:
        self.sent.append(order)
        super().submit(order)
        working: Counter[tuple[str, str]] = Counter()
        ids = set()
        for symbol in SYMBOLS:
            for resting in self.matching_engine(symbol).resting_orders():
                ids.add(resting.client_id)
                working[(symbol, resting.side.value)] += resting.client_id.startswith("mm-")
        for sent in self.sent:
            if sent.is_open and sent.client_id not in ids and sent.strategy == "mm":
                working[(sent.symbol, sent.side.value)] += 1
        for side, n in working.items():
            most_working[side] = max(most_working[side], n)


def _config(folder):
    data = yaml.safe_load((REPO / "config.yaml").read_text())
    data["run"].update({"start": "2026-11-23", "days": 1})
    data["logging"] = {"level": "WARNING", "format": "human"}
    data["strategies"] = [s for s in data["strategies"] if s["name"] == "mm"]
    data["strategies"][0]["file"] = str(REPO / "strategies" / "market_maker.py")
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _only_crash(exc: BaseException) -> bool:
    if isinstance(exc, BaseExceptionGroup):
        return all(_only_crash(e) for e in exc.exceptions)
    return isinstance(exc, Crash)


def _working_at_venue(engine: Engine) -> Counter[tuple[str, str]]:
    venue = engine.adapters["paper"]
    return Counter((s, r.side.value) for s in SYMBOLS for r in venue.matching_engine(s).resting_orders()
                   if r.client_id.startswith("mm-"))


def test_the_shipped_market_maker_restarted_after_a_crash_never_quotes_twice(tmp_path, monkeypatch):
    monkeypatch.setattr("engine.app.get_adapter", lambda name: CountingPaper)
    most_working.clear()
    config = _config(tmp_path)
    crashed = Engine(load_config(config))
    crash_at = int(dt.datetime(2026, 11, 23, 10, 30, tzinfo=KARACHI).timestamp()) * NS_PER_S

    def crash() -> None:
        raise Crash

    crashed.clock.call_later(crash_at - crashed.clock.now_ns(), crash)
    with pytest.raises(BaseException) as died:
        anyio.run(crashed.run)
    assert _only_crash(died.value)  # it died of the crash, not of something else
    left = _working_at_venue(crashed)
    assert sum(left.values()) >= 3 and max(left.values()) == 1  # quotes left working by the crash, one a side
    anyio.run(crashed.adapters["paper"].close)
    most_working.clear()
    report = run_config(load_config(config)).report
    assert report["journal"]["restored"] != "new account"
    assert most_working and max(most_working.values()) == 1  # one quote per side
    assert report["orders"]["open_at_exit"] == 0
