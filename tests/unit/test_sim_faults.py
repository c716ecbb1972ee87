"""The one fault vocabulary (adapters/sim/faults.py): the spec text every sandbox's ``--fault`` and
the paper config read, written back exactly, and refused by name where a venue does not play it."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from adapters.midchains.sandbox import SUPPORTED_FAULTS as MIDCHAINS_FAULTS
from adapters.optimus.sandbox import SUPPORTED_FAULTS as BROKER_FAULTS
from adapters.paper.faults import SUPPORTED_FAULTS as PAPER_FAULTS
from adapters.paper.options import PaperOptions
from adapters.psx.sandbox import SUPPORTED_FAULTS as PSX_FAULTS
from adapters.psx_feed.sandbox import SUPPORTED_FAULTS as FEED_FAULTS
from adapters.pulse.sandbox import SUPPORTED_FAULTS as PULSE_FAULTS
from adapters.sim.badframes import BAD_FRAME_KINDS
from adapters.sim.faults import (
    FAULT_KINDS,
    FAULT_TARGETS,
    FaultSpec,
    FaultTimers,
    UnsupportedFault,
    check_supported,
    fault_help,
    format_fault_spec,
    parse_fault_spec,
)
from engine.clock import KARACHI, NS_PER_S, SimClock, WallClock

D = Decimal

# ---- the property: parse(format(spec)) == spec ----------------------------------------------------

_SECONDS = st.decimals(min_value=0, max_value=100_000, places=3, allow_nan=False, allow_infinity=False)
_POSITIVE = _SECONDS.filter(lambda value: value > 0)
_TEXT = st.text(st.characters(min_codepoint=33, max_codepoint=126, exclude_characters=",="), min_size=1, max_size=12)
#: a valid value of each parameter name, as the reader returns it
_VALUES = {
    "duration_s": _POSITIVE, "seconds": _SECONDS, "delay_s": _SECONDS, "delay_ms": _POSITIVE,
    "count": st.integers(1, 10_000), "code": st.integers(-10, 99_999), "status": st.integers(500, 599),
    "process": st.booleans(), "refresh": st.booleans(), "rotate": st.booleans(),
    "target": st.sampled_from(("both", "feed", "broker")), "level": st.sampled_from(("L0", "L1", "L2")),
    "frame": st.sampled_from(tuple(BAD_FRAME_KINDS)),
    "instrument": _TEXT, "symbol": _TEXT, "method": _TEXT, "event": _TEXT, "reason": _TEXT, "text": _TEXT,
    "token": _TEXT,
}


@st.composite
def specs(draw: st.DrawFn) -> FaultSpec:
    kind = FAULT_KINDS[draw(st.sampled_from(tuple(FAULT_KINDS)))]
    names = [name for name in kind.params if name in kind.required or draw(st.booleans())]
    params = {name: draw(_VALUES[name]) for name in names}
    at_time = draw(st.none() | st.times().map(lambda t: t.replace(microsecond=0)))
    after_s = draw(_SECONDS) if at_time is None else D(0)
    every_s = draw(st.none() | _POSITIVE)
    target = draw(st.sampled_from(("", *FAULT_TARGETS)))
    return FaultSpec(kind.name, params, after_s=after_s, at_time=at_time, every_s=every_s, target=target)


@given(specs())
def test_every_spec_is_written_back_to_text_that_reads_the_same(spec: FaultSpec) -> None:
    assert parse_fault_spec(format_fault_spec(spec)) == spec


def test_every_parameter_of_every_kind_has_a_generator() -> None:
    """So the property above covers every kind's every parameter."""
    assert {name for kind in FAULT_KINDS.values() for name in kind.params} <= set(_VALUES)


# ---- the text, as users write it --------------------------------------------------------------------


def test_the_long_form_with_schedules_targets_and_checked_parameters() -> None:
    spec = parse_fault_spec("5xx@30/60,count=3,status=502,process=true")
    assert spec == FaultSpec("5xx", {"count": 3, "status": 502, "process": True}, after_s=D(30), every_s=D(60))
    assert parse_fault_spec("expire_tokens@10:15").at_time == dt.time(10, 15)
    assert parse_fault_spec("slow@11:00:03,delay_s=0").at_time == dt.time(11, 0, 3)
    gap = parse_fault_spec("feed.gap@0.2,count=1")
    assert (gap.kind, gap.target, gap.name, gap.after_s) == ("gap", "feed", "feed.gap", D("0.2"))


def test_pulses_short_form_still_reads() -> None:
    assert parse_fault_spec("stall@5:2.5") == FaultSpec("stall", {"duration_s": D("2.5")}, after_s=D(5))
    assert parse_fault_spec("error@1:private/buy:11:3").params == {"method": "private/buy", "code": 11, "count": 3}
    assert parse_fault_spec("gap@2:BTC_USD-PERPETUAL").params == {"instrument": "BTC_USD-PERPETUAL"}
    assert parse_fault_spec("badframe@2:huge_number:7").params == {"frame": "huge_number", "count": 7}


def test_older_names_read_as_the_new_ones() -> None:
    assert parse_fault_spec("lose_webhooks,count=2").kind == "lost_webhooks"
    assert parse_fault_spec("duplicate_webhooks").kind == "duplicate_reports"
    assert parse_fault_spec("broker.error_5xx").name == "broker.5xx"


@pytest.mark.parametrize(("text", "says"), [
    ("meltdown", "unknown kind 'meltdown'"),
    ("feed.nope", "unknown kind 'nope'"),
    ("5xx,count=0", "count must be at least 1"),
    ("5xx,status=404", "5xx code"),
    ("slow,delay=1", "unknown parameter"),
    ("drop_sockets,target=db", "target must be"),
    ("drop_sockets@soon", "expected seconds"),
    ("drop_sockets@25:99", "not a time of day"),
    ("drop@30/0", "repeat interval must be positive"),
    ("lose_webhooks,count", "expected key=value"),
    ("error@1", "needs a method"),
    ("badframe@5", "needs a frame"),
    ("badframe@5,frame=nested", "bad frame kind"),
    ("stall@5:1:2", "at most 1 argument"),
])
def test_a_wrong_spec_is_refused_saying_what_is_wrong(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        parse_fault_spec(text)


def test_a_token_never_reaches_a_log_line() -> None:
    spec = parse_fault_spec("add_token,token=s3cret-value,level=L1")
    assert spec.params["token"] == "s3cret-value"
    assert "s3cret" not in str(spec) and "token=***" in str(spec)


def test_one_help_text_lists_every_kind_and_a_venue_its_own() -> None:
    text = fault_help()
    for kind in FAULT_KINDS:
        assert f"  {kind}: " in text
    paper = fault_help(PAPER_FAULTS)
    assert "  halt: " in paper and "  badframe: " not in paper


# ---- each venue refuses what it does not play --------------------------------------------------------


def venues() -> dict[str, frozenset[str]]:
    """Every simulated venue and the kinds it declares."""
    return {"paper": PAPER_FAULTS, "psx": PSX_FAULTS, "psx_feed": FEED_FAULTS, "optimus": BROKER_FAULTS,
            "pulse": PULSE_FAULTS, "midchains": MIDCHAINS_FAULTS}


def test_every_kind_is_played_by_some_venue() -> None:
    assert set().union(*venues().values()) == set(FAULT_KINDS)


@pytest.mark.parametrize("venue", sorted(venues()))
def test_every_kind_a_venue_does_not_play_is_refused_naming_kind_and_venue(venue: str) -> None:
    supported = venues()[venue]
    assert supported <= set(FAULT_KINDS)
    for kind in FAULT_KINDS:
        if kind in supported:
            check_supported(kind, venue, supported)
            continue
        with pytest.raises(UnsupportedFault, match=rf"fault '{kind}' is not supported by venue {venue}"):
            check_supported(minimal_spec(kind), venue, supported)


def minimal_spec(kind: str) -> FaultSpec:
    """A ``kind`` fault with its required parameters only."""
    required = {"frame": "deep", "method": "private/buy", "symbol": "MEBL", "token": "t", "duration_s": "1",
                "delay_ms": "5"}
    return parse_fault_spec(kind + "".join(f",{name}={required[name]}" for name in FAULT_KINDS[kind].required))


# ---- the paper config takes the same text -------------------------------------------------------------


def test_the_paper_config_takes_spec_text_beside_its_mappings() -> None:
    options = PaperOptions(faults=["drop@11:00,duration_s=30", {"kind": "halt", "at": "13:00", "duration_s": 600,
                                                                 "symbol": "MEBL"}])
    drop, halt = options.faults
    assert (drop.kind, drop.at, drop.duration_s) == ("drop", dt.time(11), D(30))
    assert str(halt.spec()) == "halt@13:00,duration_s=600,symbol=MEBL"
    assert PaperOptions(faults=[str(halt.spec())]).faults == (halt,)


@pytest.mark.parametrize(("entry", "says"), [
    ("stall@11:00", "fault 'stall' is not supported by venue paper"),
    ("drop@30,duration_s=1", "give a time of day"),
    ("drop@11:00", "duration_s"),
])
def test_the_paper_config_refuses_what_the_paper_venue_cannot_play(entry: str, says: str) -> None:
    with pytest.raises(ValidationError, match=says):
        PaperOptions(faults=[entry])


# ---- FaultTimers: one scheduler for every sandbox's --fault ---------------------------------


def test_fault_timers_play_a_time_of_day_on_the_sandbox_clock_and_go_on_after_a_failure() -> None:
    """A spec at 09:32 fires when the sandbox clock reaches 09:32 (not before), a fault that fails
    is logged and the schedule goes on, and cancel() stops everything."""
    start = dt.datetime(2026, 12, 7, 9, 30, tzinfo=KARACHI)
    clock = SimClock(int(start.timestamp()) * NS_PER_S)
    played: list[tuple[str, int]] = []

    def play(spec: FaultSpec) -> None:
        played.append((spec.kind, clock.now_ns()))
        if spec.kind == "drop":
            raise RuntimeError("the server is gone")

    async def run() -> None:
        timers = FaultTimers(clock, play, logging.getLogger("test.faults"))
        timers.arm([parse_fault_spec("drop@09:32"), parse_fault_spec("gap@09:31")])
        assert played == []
        while clock.advance():
            pass
        await asyncio.sleep(0)
        timers.cancel()
        timers.cancel()  # twice is fine

    asyncio.run(run())
    minute = 60 * NS_PER_S
    assert played == [("gap", clock.now_ns() - minute), ("drop", clock.now_ns())]
    assert dt.datetime.fromtimestamp(played[-1][1] / NS_PER_S, KARACHI).time() == dt.time(9, 32)


def test_fault_timers_repeat_every_period_until_cancelled() -> None:
    played: list[str] = []

    async def run() -> int:
        timers = FaultTimers(WallClock(), lambda spec: played.append(spec.kind), logging.getLogger("test.faults"))
        timers.arm([parse_fault_spec("stall@0/0.01,duration_s=1")])
        while len(played) < 3:
            await asyncio.sleep(0.01)
        timers.cancel()
        seen = len(played)
        await asyncio.sleep(0.05)
        return seen

    seen = asyncio.run(run())
    assert played == ["stall"] * seen  # nothing after cancel


def test_fault_timers_keep_one_handle_per_repeating_fault() -> None:
    """A fault repeating every period keeps one pending handle, not one more per firing (a
    sandbox runs for days: ``stall@0/1`` would have kept 86,400 handles a day)."""
    played: list[str] = []

    async def run() -> list[int]:
        timers = FaultTimers(WallClock(), lambda spec: played.append(spec.kind), logging.getLogger("test.faults"))
        timers.arm([parse_fault_spec("stall@0/0.005,duration_s=1"), parse_fault_spec("drop@0")])
        pending = []
        while len(played) < 6:
            await asyncio.sleep(0.005)
            pending.append(len(timers._handles))
        timers.cancel()
        return pending

    pending = asyncio.run(run())
    assert played.count("drop") == 1 and played.count("stall") >= 5
    assert max(pending[1:]) == 1  # the one-shot drop has left; the stall holds only its next firing
