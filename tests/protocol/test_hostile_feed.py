"""Issue 17, item 1: nothing a feed sends can stop the engine.

Each class of hostile frame the sandboxes' ``badframe`` fault sends (adapters/sim/badframes.py:
``{"type":[]}``, an array nested 100,000 deep, ``1e9999999999999999999``, a binary frame, half a
real message, 10 MiB) is tried twice:

- against each WebSocket adapter alone (PSX Live Feed, Pulse) over loopback: the frame is dropped
  and counted by kind in ``bad_input()``, logged once per kind (50 of a kind make one line, plus
  one "49 more" line when the adapter closes), the socket stays up, and the next good frame is
  applied; a frame that may have been a book change (a used-up seq, a change on a book channel)
  leads to a fresh snapshot, never to a silently wrong book;
- end to end, a real engine trading through the sandbox while every class arrives: the run ends
  normally (exit 0), the log has one line per kind and its counts add up to what was sent, and
  no order is left working at the venue.

Which kind a frame is counted under is the codec's to say (``.kind`` of its error) once it labels
every failure; until then ``badinput.kind_of`` names what it can. So a frame whose kind depends on
that labelling is checked against the kinds it may honestly have.
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path

import anyio
import pytest
from support import ENGINE, until
from support.psx_feed import (  # noqa: F401 (token_env, no_leaked_connections: autouse fixtures)
    delta,
    level,
    no_leaked_connections,
    running,
    same_book,
    sandbox,
    token_env,
)
from support.pulse import venue
from support.runs import SECRETS, copy_config, engine_command, interrupt, psx_config_on_a_short_day, summary

from adapters.psx.sandbox import parse_fault_spec
from adapters.pulse.sandbox import FaultSpec, PulseSandbox, parse_fault
from adapters.sim.market import MarketOptions
from engine.model import Side
from engine.venue.badinput import (
    BAD_NUMBER,
    BINARY,
    MALFORMED,
    NOT_JSON,
    TOO_DEEP,
    TOO_LARGE,
    UNKNOWN_MESSAGE,
)

pytestmark = pytest.mark.anyio

#: frame class -> the kinds it may be counted under
KINDS_OF = {
    "type_list": {MALFORMED, UNKNOWN_MESSAGE},
    "deep": {TOO_DEEP},
    "huge_number": {BAD_NUMBER},
    "binary": {BINARY},
    "truncated": {NOT_JSON, MALFORMED},
}
SMALL_FRAMES = tuple(KINDS_OF)
PER_CLASS = 50  # of each class: one log line per kind, not fifty
#: "<where>: dropped bad input (<kind>): ..." (the first of a kind) or "... (<kind>) 49 more times ..."
LOGGED = re.compile(r"dropped bad input \((\w+)\)(?::| ([\d,]+) more time)")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # websockets runs on asyncio


def logged_kinds(text: str) -> tuple[Counter[str], Counter[str]]:
    """From a log: the first lines per kind, and the total each kind's lines account for."""
    first: Counter[str] = Counter()
    total: Counter[str] = Counter()
    for match in LOGGED.finditer(text):
        kind, more = match.group(1), match.group(2)
        if more is None:
            first[kind] += 1
            total[kind] += 1
        else:
            total[kind] += int(more.replace(",", ""))
    return first, total


def messages(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(record.getMessage() for record in caplog.records)


# ---- the PSX Live Feed adapter ----------------------------------------------------------------------


@pytest.mark.parametrize("frame", SMALL_FRAMES)
async def test_psx_feed_drops_a_bad_frame_counts_it_once_per_kind_and_keeps_the_socket(
    frame: str, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="engine.psx_feed")
    async with sandbox() as server, running(server) as (adapter, sink):
        server.inject("badframe", frame=frame, count=PER_CLASS)
        server.on_book(delta("MEBL", level(Side.SELL, "187.55", 100)))  # the next good frame
        await until(lambda: sum(adapter.bad_input().values()) == PER_CLASS and same_book(sink, server, "MEBL"))
        [kind] = adapter.bad_input()
        assert kind in KINDS_OF[frame]
        assert adapter.reconnects == 0 and sink.statuses() == ["connected"]
        if frame == "truncated":  # half a real message: its seq is lost, the books are fetched again
            assert adapter.gaps == 1 and sink.snapshots("MEBL") == 2
        else:  # extra frames standing for no message: nothing lost, nothing to fetch again
            assert adapter.gaps == 0 and sink.snapshots("MEBL") == 1
        first, _ = logged_kinds(messages(caplog))
        assert first == {kind: 1}
    first, total = logged_kinds(messages(caplog))  # close() told the rest
    assert first == {kind: 1} and total == {kind: PER_CLASS}


async def test_psx_feed_a_frame_over_max_message_bytes_is_counted_and_the_feed_reconnects(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="engine.psx_feed")
    async with sandbox() as server, running(server) as (adapter, sink):
        server.inject("badframe", frame="huge")
        await until(lambda: adapter.reconnects == 1 and sink.snapshots("MEBL") == 2)
        assert adapter.bad_input() == {TOO_LARGE: 1}
        assert sink.statuses() == ["connected", "disconnected", "connected"]
        assert "code 1009" in adapter.last_error and "max_message_bytes=1,048,576" in adapter.last_error
        server.on_book(delta("MEBL", level(Side.BUY, "187.50", 900)))
        await until(lambda: same_book(sink, server, "MEBL"))
    assert logged_kinds(messages(caplog))[0] == {TOO_LARGE: 1}


async def test_psx_feed_sending_only_bad_frames_is_stale_then_reconnected() -> None:
    """Frames that cannot be used are not data: a feed that sends nothing else goes stale (the
    strategies hear it) and is reconnected like a silent one, whatever it sends meanwhile."""
    async with sandbox() as server, running(server, stale_seconds=Decimal("0.2"),
                                            stale_reconnect_seconds=Decimal("0.6")) as (adapter, sink):
        with anyio.fail_after(10):
            while adapter.reconnects == 0:
                server.inject("badframe", frame="type_list")  # faster than the stale bound, without a pause
                await anyio.sleep(0.01)
        assert sink.statuses()[:3] == ["connected", "stale", "disconnected"]
        await until(lambda: sink.snapshots("MEBL") == 2 and sink.statuses()[-1] == "connected")
        assert adapter.bad_input()[MALFORMED] >= 1


# ---- the Pulse adapter ------------------------------------------------------------------------------


@pytest.mark.parametrize("frame", SMALL_FRAMES)
async def test_pulse_drops_a_bad_frame_counts_it_once_per_kind_and_keeps_the_socket(
    frame: str, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="engine.pulse")
    async with venue() as v:
        v.sandbox.badframe(frame, PER_CLASS)
        await until(lambda: sum(v.adapter.bad_input().values()) == PER_CLASS, timeout=10, what="all counted")
        [kind] = v.adapter.bad_input()
        assert kind in KINDS_OF[frame]
        if frame == "type_list":  # a change on BTC's book channel that cannot be read: a snapshot at once
            await until(lambda: v.adapter.counters["book_snapshots"] == 2, what="a fresh snapshot")
            assert v.adapter.counters["book_resubscribes"] == 1
        order = v.submit("buy", 10, 49000)  # the socket still carries orders, and the book follows
        await v.acked(order)
        await until(v.book_matches_venue, what="the book equal to the venue's")
        if frame == "truncated":  # half a real change: its change_id is lost, the next change shows the gap
            assert v.adapter.counters["book_gaps"] == 1 and v.adapter.counters["book_resubscribes"] == 1
        assert v.sink.statuses() == ["connected"] and v.adapter.counters["reconnects"] == 0
        assert logged_kinds(messages(caplog))[0] == {kind: 1}
    first, total = logged_kinds(messages(caplog))
    assert first == {kind: 1} and total == {kind: PER_CLASS}


async def test_pulse_a_frame_over_max_message_bytes_is_counted_and_the_adapter_reconnects(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="engine.pulse")
    async with venue() as v:
        v.sandbox.badframe("huge")
        await until(lambda: v.adapter.counters["reconnects"] == 1, timeout=10, what="a reconnect")
        assert v.adapter.bad_input() == {TOO_LARGE: 1}
        assert v.sink.statuses() == ["connected", "disconnected", "connected"]
        order = v.submit("buy", 10, 49000)
        await v.acked(order)
        await until(v.book_matches_venue, what="the book equal to the venue's after the reconnect")
    assert logged_kinds(messages(caplog))[0] == {TOO_LARGE: 1}


# ---- the fault, as the command lines take it --------------------------------------------------------


def test_the_badframe_fault_is_parsed_and_checked_where_it_is_written() -> None:
    assert parse_fault_spec("badframe@5/10,frame=deep,count=50").params == {"frame": "deep", "count": 50}
    for wrong in ("badframe@5", "badframe@5,frame=nested", "badframe@5,frame=deep,count=0"):
        with pytest.raises(ValueError, match=r"badframe|frame|count"):
            parse_fault_spec(wrong)
    assert parse_fault("badframe@2:huge_number:7") == FaultSpec("badframe", {"frame": "huge_number", "count": 7},
                                                                after_s=Decimal(2))
    for wrong in ("badframe@2", "badframe@2:nested", "badframe@2:deep:0"):
        with pytest.raises(ValueError, match="badframe"):
            parse_fault(wrong)


# ---- end to end: a real engine trading while the feed sends every class -----------------------------


def check_log(text: str) -> None:
    """One line per kind (plus at most one "N more" line at close), the counts adding up to every
    frame sent: PER_CLASS of each small class and the one huge frame."""
    first, total = logged_kinds(text)
    assert first and set(first.values()) == {1}, first
    assert {TOO_DEEP, BAD_NUMBER, BINARY, TOO_LARGE} <= set(first), first
    assert set(first) <= {TOO_DEEP, BAD_NUMBER, BINARY, TOO_LARGE, MALFORMED, NOT_JSON, UNKNOWN_MESSAGE}, first
    assert total[TOO_LARGE] == 1 and total[TOO_DEEP] == total[BAD_NUMBER] == total[BINARY] == PER_CLASS, total
    assert sum(total.values()) == PER_CLASS * len(SMALL_FRAMES) + 1, total
    more = Counter(match.group(1) for match in LOGGED.finditer(text) if match.group(2) is not None)
    assert set(more.values()) <= {1}, more


def test_engine_trades_through_the_psx_sandbox_while_the_feed_sends_every_bad_frame(tmp_path: Path) -> None:
    """``engine sandbox psx --run`` (one process, the real Live Feed and Optimus adapters): the
    frames arrive during continuous trading; once the huge one (sent last) made the feed reconnect,
    every class was read, and the engine is stopped with SIGINT like Ctrl-C."""
    config = psx_config_on_a_short_day(tmp_path)
    faults = [f"badframe@{4 + i * 0.5},frame={frame},count={PER_CLASS}" for i, frame in enumerate(SMALL_FRAMES)]
    faults.append(f"badframe@{4 + len(SMALL_FRAMES) * 0.5},frame=huge")
    command = [str(ENGINE), "sandbox", "psx", "--run", str(config), "--speed", "20", "--start", "2026-11-23T09:00",
               "--report", str(tmp_path / "report.json")]
    for fault in faults:
        command += ["--fault", fault]
    env = {**os.environ, **SECRETS, "ENGINE_METRICS_LISTEN": "127.0.0.1:0"}
    process = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    seen = ""
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 120
        while "dropped bad input (too_large)" not in seen or "psx_feed venue psx: reconnected" not in seen:
            line = process.stdout.readline()
            if not line:
                break  # the engine ended by itself: the assertions below say whether it should have
            seen += line
            assert time.monotonic() < deadline, seen[-4000:]
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=60)
        out = seen + rest
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, out[-4000:]
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["stopped_by"] in ("SIGINT", "end"), report["stopped_by"]
    assert "open" in report["sessions"] and report["strategies"]["mm"]["orders"] > 0  # it traded meanwhile
    assert report["orders"]["open_at_exit"] == 0
    assert "orders working at the broker: 0" in out, out[-4000:]
    assert "Traceback" not in out, out[-4000:]
    check_log(out)


async def test_engine_trades_through_the_pulse_sandbox_while_it_sends_every_bad_frame(tmp_path: Path) -> None:
    """``engine run`` on the shipped Pulse config (a subprocess) against the sandbox in this process:
    once the market maker quotes, every class arrives; the huge frame, last, makes it reconnect;
    then SIGINT."""
    market = MarketOptions(enabled=True, step_interval_s=Decimal("0.3"), aggressive_interval_s=Decimal(1),
                           size_unit_shares=1)
    async with PulseSandbox(credentials={"sandbox": "hostile-feed-secret-1"}, market=market, seed=3) as sb:
        config = copy_config(tmp_path, sb.url)
        report_path = tmp_path / "report.json"
        log_path = tmp_path / "engine.log"
        env = dict(os.environ, PULSE_CLIENT_SECRET="hostile-feed-secret-1")
        with log_path.open("w") as log_file:
            process = subprocess.Popen(engine_command("run", str(config), "--report", str(report_path)),
                                       cwd=tmp_path, env=env, stdout=log_file, stderr=subprocess.STDOUT, text=True)
            try:
                account = sb.accounts["sandbox"]

                def quoting() -> bool:
                    return any(o.is_open for o in account.orders.values())

                async def wait(condition: object, what: str) -> None:
                    deadline = time.monotonic() + 60
                    while not condition() and process.poll() is None:  # type: ignore[operator]
                        assert time.monotonic() < deadline, f"{what}:\n" + summary(log_path.read_text())
                        await anyio.sleep(0.1)
                    assert condition(), f"{what}; the engine exited:\n" + summary(log_path.read_text())  # type: ignore[operator]

                await wait(quoting, "no quote working")
                for frame in SMALL_FRAMES:
                    sb.badframe(frame, PER_CLASS)
                sb.badframe("huge")
                await wait(lambda: "dropped bad input (too_large)" in log_path.read_text()
                           and "pulse pulse: reconnected" in log_path.read_text(), "no reconnect after the huge frame")
                await wait(quoting, "no quote working after the reconnect")
                await interrupt(process, 60)
            finally:
                if process.poll() is None:
                    process.kill()
                    process.wait()
        log = log_path.read_text()
        assert process.returncode == 0, summary(log)
        left = [o.label for o in account.orders.values() if o.is_open]
        assert not left, f"orders left working at the venue: {left}\n" + summary(log)
    report = json.loads(report_path.read_text())
    assert report["stopped_by"] == "SIGINT" and report["orders"]["open_at_exit"] == 0
    assert report["orders"]["submitted"] >= 2
    assert "Traceback" not in log, summary(log)
    check_log(log)
