"""The run's timeline: exact decimal strings, local ISO times, bounded memory that says what it
left out, and JSON that survives json.dumps unchanged."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from support import json_leaves

from engine.observe.timeline import Timeline, dec, iso_time

KARACHI = ZoneInfo("Asia/Karachi")
S = 1_000_000_000


def ns(hh: int, mm: int, ss: int = 0, day: int = 23) -> int:
    """Engine time (ns since the epoch) of a Karachi wall time on 2026-11-<day>."""
    return int(dt.datetime(2026, 11, day, hh, mm, ss, tzinfo=KARACHI).timestamp()) * S


def one(realized: str = "0", unrealized: str = "0", **positions: str) -> dict:
    return {"realized": Decimal(realized), "unrealized": Decimal(unrealized),
            "positions": {k: Decimal(v) for k, v in positions.items()}}


def test_decimals_are_exact_strings_never_floats():
    tl = Timeline()
    tl.phase(ns(9, 30), "open")
    total = Decimal("0.1") + Decimal("0.2")  # 0.30000000000000004 as floats
    tl.sample(ns(9, 31), {"mm": one("12345678.905", str(total), MEBL="1E+2")}, {"paper:MEBL": Decimal("187.50")})
    tl.fill(ns(9, 31, 5), "mm", "paper", "MEBL", "buy", Decimal("100"), Decimal("187.49"), "maker")
    tl.band("2026-11-23", "paper:MEBL", Decimal("168.75"), Decimal("206.25"), Decimal("187.50"))
    out = tl.to_json()
    sample = out["samples"][0]
    assert sample["strategies"]["mm"] == {"realized": "12345678.905", "unrealized": "0.3", "positions": {"MEBL": "100"}}
    assert sample["prices"] == {"paper:MEBL": "187.50"}  # trailing zero kept: the tick, as the venue sent it
    assert out["fills"][0]["qty"] == "100" and out["fills"][0]["price"] == "187.49"
    assert out["bands"] == {"2026-11-23": {"paper:MEBL": {"low": "168.75", "high": "206.25", "reference": "187.50"}}}
    assert not [leaf for leaf in json_leaves(out) if isinstance(leaf, float)]


def test_dec_never_uses_exponent_form():
    assert dec(Decimal("1E+2")) == "100"
    assert dec(Decimal("-0.00010")) == "-0.00010"
    assert dec(Decimal("0E-8")) == "0.00000000"


def test_times_are_iso_8601_in_karachi_with_offset():
    tl = Timeline()
    tl.phase(ns(9, 15), "pre_open")
    tl.fill(ns(9, 42, 19) + 125_000_000, "mm", "paper", "KEL", "sell", Decimal(100), Decimal("102.44"), "taker")
    tl.reject(ns(10, 0, 1), "mm", 2003)
    out = tl.to_json()
    assert out["phases"] == [{"ts": "2026-11-23T09:15:00.000+05:00", "phase": "pre_open"}]
    assert out["fills"][0]["ts"] == "2026-11-23T09:42:19.125+05:00"
    assert out["rejects"] == [{"ts": "2026-11-23T10:00:01.000+05:00", "strategy": "mm", "code": 2003}]
    # the string is the same instant as the engine's ns: 09:42:19.125 PKT is 04:42:19.125 UTC
    parsed = dt.datetime.fromisoformat(out["fills"][0]["ts"])
    assert parsed.utcoffset() == dt.timedelta(hours=5)
    assert parsed.astimezone(dt.UTC) == dt.datetime(2026, 11, 23, 4, 42, 19, 125_000, tzinfo=dt.UTC)
    assert out["timezone"] == "Asia/Karachi"


def test_iso_time_uses_integer_maths_at_the_millisecond():
    # a float of this ns count would round the last digits; the string must not drift
    assert iso_time(ns(15, 29, 59) + 999_999_999, KARACHI) == "2026-11-23T15:29:59.999+05:00"


def test_fill_and_reject_caps_keep_the_first_and_count_the_rest():
    tl = Timeline(max_fills=3, max_rejects=2)
    for k in range(5):
        tl.fill(ns(10, k), "mm", "paper", "MEBL", "buy", Decimal(1), Decimal(100), "maker")
        tl.reject(ns(10, k), "mm", 3001)
    out = tl.to_json()
    assert [f["ts"][11:16] for f in out["fills"]] == ["10:00", "10:01", "10:02"]
    assert len(out["rejects"]) == 2
    assert out["dropped"]["fills"] == 2 and out["dropped"]["rejects"] == 3


def test_sample_cap_thins_but_spans_the_whole_run_and_counts_what_it_dropped():
    tl = Timeline(max_samples=8)
    tl.phase(ns(9, 30), "open")
    calls = 100
    for k in range(calls):
        tl.sample(ns(9, 30) + k * 60 * S, {"mm": one(str(k))}, {})
    out = tl.to_json()
    kept = out["samples"]
    assert len(kept) <= 8 + 1  # the cap, plus the run's latest sample
    assert kept[0]["strategies"]["mm"]["realized"] == "0"
    assert kept[-1]["strategies"]["mm"]["realized"] == str(calls - 1)  # the end of the run is always there
    assert out["dropped"]["samples"] + len(kept) == calls
    assert out["dropped"]["sample_stride"] > 1
    times = [s["ts"] for s in kept]
    assert times == sorted(times)


def test_a_phase_change_is_sampled_even_when_thinning():
    tl = Timeline(max_samples=4)
    tl.phase(ns(9, 30), "open")
    for k in range(20):
        tl.sample(ns(9, 30) + k * 60 * S, {"mm": one()}, {})
    tl.phase(ns(15, 30), "post_close")
    tl.sample(ns(15, 30), {"mm": one("7")}, {})
    tl.sample(ns(15, 31), {"mm": one("8")}, {})  # the end: kept too
    kept = [(s["ts"][11:16], s["strategies"]["mm"]["realized"]) for s in tl.to_json()["samples"]]
    assert ("15:30", "7") in kept and kept[-1] == ("15:31", "8")


def test_closed_stretches_keep_only_their_first_and_latest_sample():
    tl = Timeline()
    tl.phase(ns(9, 30), "open")
    tl.sample(ns(9, 30), {"mm": one("1")}, {})
    tl.phase(ns(15, 35), "closed")
    for k in range(600):  # a night of 60 s timer samples while closed
        tl.sample(ns(15, 35) + k * 60 * S, {"mm": one("2")}, {})
    out = tl.to_json()
    assert [s["ts"][11:19] for s in out["samples"]] == ["09:30:00", "15:35:00", "01:34:00"]
    assert out["dropped"]["samples"] == 0  # not a cap: nothing happens at night


def test_samples_are_copied_and_missing_prices_left_out():
    tl = Timeline()
    tl.phase(ns(9, 30), "open")
    strategies = {"mm": one("5", MEBL="100")}
    prices: dict = {"paper:MEBL": Decimal("187.5"), "paper:KEL": None}
    tl.sample(ns(9, 31), strategies, prices)
    strategies["mm"]["positions"]["MEBL"] = Decimal(0)  # the caller reuses its dicts
    prices["paper:MEBL"] = Decimal(1)
    sample = tl.to_json()["samples"][0]
    assert sample["strategies"]["mm"]["positions"] == {"MEBL": "100"}
    assert sample["prices"] == {"paper:MEBL": "187.5"}


def test_to_json_has_the_documented_shape_and_round_trips_through_json():
    tl = Timeline(interval_s=30)
    tl.phase(ns(9, 15), "pre_open")
    tl.phase(ns(9, 30), "open")
    tl.sample(ns(9, 31), {"mm": one("-45.00", "10.00", MEBL="100"), "momentum": one()}, {"paper:MEBL": Decimal("1")})
    tl.fill(ns(9, 31), "mm", "paper", "MEBL", "buy", Decimal(100), Decimal("187.86"), "taker")
    tl.reject(ns(9, 32), "momentum", 7011)
    tl.band("2026-11-23", "paper:MEBL", Decimal("168.75"), Decimal("206.25"), Decimal("187.50"))
    out = tl.to_json()
    assert set(out) == {"interval_s", "timezone", "phases", "samples", "fills", "rejects", "bands", "dropped"}
    assert out["interval_s"] == 30
    assert set(out["fills"][0]) == {"ts", "strategy", "venue", "symbol", "side", "qty", "price", "liquidity"}
    assert set(out["dropped"]) == {"samples", "fills", "rejects", "phases", "sample_stride"}
    assert json.loads(json.dumps(out)) == out
    assert tl.counts == {"phases": 2, "samples": 1, "fills": 1, "rejects": 1}


def test_enum_like_sides_are_written_as_their_value():
    from engine.model import Liquidity, Side

    tl = Timeline()
    tl.fill(ns(10, 0), "mm", "paper", "MEBL", Side.SELL, Decimal(1), Decimal(2), Liquidity.MAKER)
    fill = tl.to_json()["fills"][0]
    assert fill["side"] == "sell" and fill["liquidity"] == "maker"
    assert json.dumps(fill)


def test_a_cap_below_two_samples_is_refused():
    with pytest.raises(ValueError):
        Timeline(max_samples=1)
