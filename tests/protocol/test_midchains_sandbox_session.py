"""The MidChains sandbox's FIX session layer and faults, driven by a bare simplefix client: the
Logon text of document 001 (resend on a high 34, Logout on a low one), the FIX 4.2 session
messages it relies on (TestRequest, ResendRequest, SequenceReset, Reject, Logout both ways), the
queue of messages delivered after the next logon of the same trading day, the daily reset
(MID-13), the fault vocabulary and the rate limits of MID-9."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from support.midchains_client import FixClient, logged_on, new_order, running, text

from adapters.midchains.sandbox import parse_fault

pytestmark = pytest.mark.anyio
D = Decimal


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# ---- heartbeats and test requests ------------------------------------------------------------------


async def test_a_test_request_is_answered_with_its_id() -> None:
    async with running() as venue, logged_on(venue) as client:
        client.send("1", (112, "PING-7"))
        answer = await client.expect("0")
        assert text(answer, 112) == "PING-7"


async def test_the_gateway_sends_heartbeats_at_the_clients_interval() -> None:
    async with running() as venue, logged_on(venue, heartbeat_s=1) as client:
        started = time.monotonic()
        beat = await client.expect("0", timeout=5)
        assert text(beat, 112) is None and time.monotonic() - started < 4


async def test_a_silent_client_gets_a_test_request_then_is_disconnected() -> None:
    async with running() as venue, logged_on(venue, heartbeat_s=1) as client:
        client.answer_test_requests = False
        probe = await client.expect("1", timeout=5)
        assert text(probe, 112)
        await client.closed(timeout=6)
        assert venue.counters["oe.test_request_timeouts"] == 1


# ---- sequence numbers --------------------------------------------------------------------------------


async def test_a_resend_request_replays_reports_with_possdup_and_gap_fills_admin() -> None:
    async with running() as venue, logged_on(venue) as client:
        client.send("D", *new_order("R1"))
        report = await client.expect("8")
        assert text(report, 34) == "2"
        client.send("2", (7, 1), (16, 0))
        fill = await client.expect("4")
        assert text(fill, 34) == "1" and text(fill, 123) == "Y" and text(fill, 36) == "2" and text(fill, 43) == "Y"
        again = await client.expect("8")
        assert text(again, 34) == "2" and text(again, 43) == "Y" and text(again, 122) == text(report, 52)
        assert text(again, 17) == text(report, 17) and text(again, 11) == "R1"


async def test_a_logon_above_the_expected_number_is_answered_then_a_resend_is_asked() -> None:
    async with running() as venue:
        client = await FixClient(venue.port).connect()
        client.send("A", (98, 0), (108, 30), seq=5)
        await client.expect("A", skip_admin=False)
        ask = await client.expect("2", skip_admin=False)
        assert (text(ask, 7), text(ask, 16)) == ("1", "0")
        client.send("D", *new_order("H1"), seq=6)  # held until the gap is filled
        client.send("4", (123, "Y"), (36, 5), seq=1, header=((43, "Y"),))
        report = await client.expect("8")
        assert text(report, 11) == "H1"
        assert venue.sessions()["YOURSENDCOMP"][1] == 7
        client.close()


async def test_a_message_below_the_expected_number_ends_the_session_with_a_logout() -> None:
    async with running() as venue, logged_on(venue) as client:
        client.send("0", seq=1)  # the Logon's number again, without PossDup
        logout = await client.expect("5")
        assert text(logout, 58) == "MsgSeqNum too low, expecting 2 but received 1"
        client.answer_test_requests = False
        await client.closed(timeout=5)  # no confirmation: closed after the timeout
        assert venue.counters["oe.logout_timeouts"] == 1


async def test_a_possdup_below_the_expected_number_is_ignored() -> None:
    async with running() as venue, logged_on(venue) as client:
        client.send("1", (112, "OLD"), seq=1, header=((43, "Y"),))
        client.send("1", (112, "NEW"))
        answer = await client.expect("0")
        assert text(answer, 112) == "NEW"


async def test_a_logon_below_the_expected_number_is_refused_with_a_logout() -> None:
    async with running() as venue:
        async with logged_on(venue) as first:
            first.send("0")
            first.send("5")
            await first.closed()
        client = await FixClient(venue.port, seq=1).connect()
        client.send("A", (98, 0), (108, 30))
        answer = await client.recv()
        assert text(answer, 35) == "5" and text(answer, 58) == "MsgSeqNum too low, expecting 4 but received 1"
        client.send("5", seq=2)
        await client.closed()


async def test_a_sequence_reset_moves_the_expected_number_whatever_its_own() -> None:
    async with running() as venue, logged_on(venue) as client:
        client.send("4", (36, 10), seq=99)
        client.seq = 10
        client.send("1", (112, "AFTER-RESET"))
        answer = await client.expect("0")
        assert text(answer, 112) == "AFTER-RESET" and venue.sessions()["YOURSENDCOMP"][1] == 11


async def test_a_sequence_reset_backwards_is_a_session_reject() -> None:
    async with running() as venue, logged_on(venue) as client:
        client.send("4", (36, 1))
        reject = await client.expect("3")
        assert text(reject, 373) == "5" and text(reject, 45) == "2"


async def test_a_message_without_sending_time_is_a_session_reject() -> None:
    async with running() as venue, logged_on(venue) as client:
        raw = client.frame("1", (112, "X")).replace(b"\x0152=", b"\x01999=")
        body = raw[raw.index(b"35="):raw.rindex(b"10=")]
        head = b"8=FIX.4.2\x019=" + str(len(body)).encode() + b"\x01"
        client.send_raw(head + body + b"10=%03d\x01" % (sum(head + body) % 256))
        reject = await client.expect("3")
        assert text(reject, 373) == "1" and "52" in (text(reject, 58) or "")


async def test_a_garbled_frame_is_ignored_and_the_session_goes_on() -> None:
    async with running() as venue, logged_on(venue) as client:
        frame = client.frame("1", (112, "LOST"))
        client.send_raw(frame[:-4] + b"000\x01")  # a wrong CheckSum
        client.seq -= 1  # the garbled one was never counted by the gateway
        client.send("1", (112, "KEPT"))
        answer = await client.expect("0")
        assert text(answer, 112) == "KEPT" and venue.counters["oe.garbled"] == 1


async def test_another_comp_id_after_logon_is_rejected_and_logged_out() -> None:
    async with running() as venue, logged_on(venue) as client:
        client.sender = "INTRUDER"
        client.send("1", (112, "X"))
        await client.expect("3")
        logout = await client.expect("5")
        assert text(logout, 58) == "CompID problem"


async def test_a_client_logout_is_confirmed_then_the_socket_closes() -> None:
    async with running() as venue, logged_on(venue) as client:
        client.send("5", (58, "bye"))
        confirm = await client.expect("5")
        assert text(confirm, 56) == "YOURSENDCOMP"
        await client.closed()


# ---- queued delivery and the trading day ------------------------------------------------------------


async def test_fills_while_logged_out_are_delivered_after_the_next_logon() -> None:
    async with running() as venue:
        async with logged_on(venue) as client:
            client.send("D", *new_order("Q1", side="2", qty=1, base=10, price="140"))
            await client.expect("8")
            client.send("5")
            await client.closed()
        venue.place("LTCUSD", "buy", D("0.1"), D(140))
        assert venue.counters.get("oe.queued_delivered", 0) == 0
        back = await FixClient(venue.port, seq=4).connect()
        logon = await back.logon()
        fill = await back.expect("8")
        assert text(fill, 11) == "Q1" and text(fill, 39) == "2" and text(fill, 43214) == "P"
        assert int(text(fill, 34) or 0) == int(text(logon, 34) or 0) + 1  # numbered now, after the Logon
        assert venue.counters["oe.queued_delivered"] == 1
        back.close()


async def test_the_daily_reset_logs_out_and_starts_both_sides_at_one() -> None:
    async with running() as venue:
        async with logged_on(venue) as client:
            client.send("D", *new_order("Z1"))
            await client.expect("8")
            venue.day_reset()
            logout = await client.expect("5")
            assert text(logout, 58) == "Session closed"
            await client.closed()
        fresh = await FixClient(venue.port, seq=1).connect()
        logon = await fresh.logon()
        assert text(logon, 34) == "1"
        fresh.close()
        assert venue.orders()[0]["open"]  # GTC orders live on: only the numbers reset


async def test_the_day_boundary_on_the_clock_resets_the_sessions() -> None:
    """MID-13: one configurable boundary; here it is set to pass 2.5 seconds from now."""
    now = datetime.now(UTC)
    soon = now + timedelta(seconds=2.5)
    boundary = timedelta(hours=soon.hour, minutes=soon.minute, seconds=soon.second,
                         microseconds=soon.microsecond)
    if soon.date() != now.date():
        pytest.skip("too close to midnight UTC")
    async with running(day_boundary=boundary) as venue, logged_on(venue) as client:
        logout = await client.expect("5", timeout=15)
        assert text(logout, 58) == "Session closed" and venue.counters["oe.daily_resets"] == 1


# ---- faults ---------------------------------------------------------------------------------------------


async def test_drop_closes_without_a_logout_and_the_numbers_carry_on() -> None:
    async with running() as venue:
        client = await FixClient(venue.port).connect()
        await client.logon()
        venue.apply_fault(parse_fault("broker.drop"))
        await client.closed()
        assert all(text(m, 35) != "5" for m in client.log)
        again = await FixClient(venue.port, seq=client.seq).connect()
        logon = await again.logon()
        assert text(logon, 34) == "2"
        again.close()


async def test_a_gap_is_filled_by_the_clients_resend_request() -> None:
    async with running() as venue, logged_on(venue) as client:
        venue.apply_fault(parse_fault("gap,count=1"))
        client.send("D", *new_order("GAP1"))
        client.send("1", (112, "T"))
        beat = await client.expect("0")
        assert text(beat, 34) == "3"  # 2 was numbered and never sent
        client.send("2", (7, 2), (16, 2))
        resent = await client.expect("8")
        assert text(resent, 34) == "2" and text(resent, 43) == "Y" and text(resent, 11) == "GAP1"
        assert venue.counters["oe.gap_lost"] == 1


async def test_a_stale_test_request_is_never_answered_or_answered_late() -> None:
    async with running() as venue, logged_on(venue) as client:
        venue.apply_fault(parse_fault("stale_test_request,count=1"))
        client.send("1", (112, "IGNORED"))
        with pytest.raises(TimeoutError):
            await client.expect("0", timeout=0.5)
        venue.stale_test_requests(count=1, delay_s=0.6)
        started = time.monotonic()
        client.send("1", (112, "LATE"))
        answer = await client.expect("0", timeout=3)
        assert text(answer, 112) == "LATE" and time.monotonic() - started >= 0.5


async def test_a_gateway_logout_says_session_closed_and_waits_for_the_confirmation() -> None:
    async with running(logout_timeout_s=30) as venue, logged_on(venue) as client:
        venue.apply_fault(parse_fault("logout"))
        logout = await client.expect("5")
        assert text(logout, 58) == "Session closed"
        client.send("5")
        await client.closed(timeout=10)  # closed on the confirmation, long before the 30 s timeout
        assert venue.counters.get("oe.logout_timeouts", 0) == 0


async def test_a_stall_delays_and_keeps_the_messages() -> None:
    async with running() as venue, logged_on(venue) as client:
        venue.stall(0.5)
        started = time.monotonic()
        client.send("D", *new_order("S1"))
        report = await client.expect("8", timeout=3)
        assert text(report, 11) == "S1" and time.monotonic() - started >= 0.4


async def test_an_injected_reject_and_refused_cancels() -> None:
    async with running() as venue, logged_on(venue) as client:
        venue.apply_fault(parse_fault("reject,reason=no crypto pos"))
        client.send("D", *new_order("J1"))
        rejected = await client.expect("8")
        assert text(rejected, 39) == "8" and text(rejected, 58) == "no crypto pos"
        client.send("D", *new_order("J2"))
        await client.expect("8")
        venue.apply_fault(parse_fault("reject_cancels,duration_s=5,reason=failed"))
        client.send("F", (11, "J3"), (38, 1), (41, "J2"), (54, "1"), (55, "LTCUSD"))
        refused = await client.expect("9")
        assert text(refused, 58) == "failed" and text(refused, 39) == "0" and venue.orders()[0]["open"]


async def test_duplicate_reports_repeat_the_exec_id_under_a_new_number() -> None:
    async with running() as venue, logged_on(venue) as client:
        venue.apply_fault(parse_fault("duplicate_reports,count=1"))
        client.send("D", *new_order("U1"))
        first, second = await client.expect("8"), await client.expect("8")
        assert text(first, 17) == text(second, 17) and text(first, 34) != text(second, 34)
        assert venue.counters["oe.duplicates_sent"] == 1


def test_faults_the_venue_does_not_play_are_refused_by_name() -> None:
    with pytest.raises(ValueError, match="not supported by venue midchains"):
        parse_fault("expire_tokens")
    with pytest.raises(ValueError, match="24/7"):
        parse_fault("drop@10:00")
    assert parse_fault("feed.gap,count=2").target == "feed"


# ---- rate limits (MID-9) ----------------------------------------------------------------------------


async def test_an_eleventh_message_within_a_second_is_refused_and_counted() -> None:
    async with running() as venue, logged_on(venue) as client:
        for n in range(11):
            client.send("F", (11, f"N{n}"), (38, 1), (41, "NOPE"), (54, "1"), (55, "LTCUSD"))
        answers = [await client.expect("9") for _ in range(11)]
        assert [text(a, 58) for a in answers].count("exceed message/sec limit") == 1
        assert venue.violations() == {"messages": 1, "orders": 0}


async def test_a_fifth_order_within_a_second_is_refused_in_everyday_mode() -> None:
    async with running() as venue, logged_on(venue) as client:
        for n in range(5):
            client.send("D", *new_order(f"O{n}", price="100"))
        answers = [await client.expect("8") for _ in range(5)]
        assert [text(a, 39) for a in answers] == ["0", "0", "0", "0", "8"]
        assert text(answers[4], 58) == "exceed order/sec limit"
        assert venue.violations()["orders"] == 1


async def test_literal_mode_takes_the_fifth_order_but_still_counts_it() -> None:
    async with running(literal=True) as venue, logged_on(venue) as client:
        for n in range(5):
            client.send("D", *new_order(f"O{n}", price="100"))
        answers = [await client.expect("8") for _ in range(5)]
        assert [text(a, 39) for a in answers] == ["0"] * 5
        assert venue.violations()["orders"] == 1


async def test_a_client_within_four_orders_a_second_causes_no_violation() -> None:
    async with running() as venue, logged_on(venue) as client:
        for n in range(8):
            client.send("D", *new_order(f"W{n}", price="100"))
            await client.expect("8")
            await asyncio.sleep(0.26)
        assert venue.violations() == {"messages": 0, "orders": 0}


async def test_the_message_limit_can_be_raised_as_001_says() -> None:
    """001: "10 commands per second by default. This can be increased as needed." """
    async with running(message_rate=20) as venue, logged_on(venue) as client:
        for n in range(11):
            client.send("F", (11, f"N{n}"), (38, 1), (41, "NOPE"), (54, "1"), (55, "LTCUSD"))
        answers = [await client.expect("9") for _ in range(11)]
        assert all(text(a, 58) == "unknown order" for a in answers)
        assert venue.violations() == {"messages": 0, "orders": 0}
