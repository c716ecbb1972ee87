"""The MidChains FIX session state machine, one transition per test, with no socket: bytes and
times in, actions out. Field values are the document's where it gives them (CompIDs MIDCDEV1 and
YOURSENDCOMP, 98=0, 108=60, the Logon's SendingTime, the gateway's Logon 34=422, "Session closed")."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.midchains_fix import (
    CLIENT,
    GATEWAY,
    NS,
    T0,
    Gateway,
    delivered,
    disconnects,
    example,
    fields,
    logged_on,
    sends,
    session,
)

from adapters.midchains.codec import encode
from adapters.midchains.session import Disconnect, SessionState, Skipped, sending_time

D_BODY = [(11, "43637618552482556000"), (21, "2"), (38, "1"), (40, "2"), (44, "150"), (54, "1"), (55, "LTCUSD"),
          (59, "1"), (43229, "10")]


# ---- logon -----------------------------------------------------------------------------------


def test_connect_sends_the_documents_logon() -> None:
    fix = session()
    (logon,) = sends(fix.connect(T0))
    assert fields(logon, 35, 34, 49, 52, 56, 98, 108) == ("A", "1", CLIENT, "20210714-01:01:10.569", GATEWAY, "0", "60")
    assert fix.state is SessionState.LOGON_SENT


def test_the_gateways_logon_makes_the_session_active() -> None:
    fix = session()
    fix.connect(T0)
    assert fix.receive(Gateway().logon(), T0) == []
    assert fix.state is SessionState.ACTIVE
    assert fix.store.next_in == 2


def test_a_gateway_logon_with_the_documents_34_422_is_a_gap_asked_for_once() -> None:
    """The document's gateway Logon carries 34=422 where we expect 1: logged on, and a
    ResendRequest for 1 to infinity (7=1, 16=0)."""
    fix = session()
    fix.connect(T0)
    actions = fix.receive(Gateway().logon(seq=422), T0)
    assert fix.state is SessionState.ACTIVE
    assert sends(fix.receive(Gateway().frame("0", seq=423), T0)) == []  # still the one ResendRequest
    (resend,) = sends(actions)
    assert fields(resend, 35, 34, 7, 16) == ("2", "2", "1", "0")


def test_a_refused_logon_beyond_a_gap_sends_nothing_after_its_logout() -> None:
    """A Logon with a higher 34 but no HeartBtInt is refused: Logout, Disconnect, and no
    ResendRequest after them (it used to follow the Disconnect and consume a sequence number)."""
    fix = session()
    fix.connect(T0)
    actions = fix.receive(Gateway().frame("A", (98, "0"), seq=5), T0)
    assert [m.msg_type for m in sends(actions)] == ["5"]
    assert isinstance(actions[-1], Disconnect)
    assert fix.store.next_out == 3


def test_the_documents_gateway_logon_as_printed_is_refused_for_its_target_comp_id() -> None:
    """The document's gateway Logon is addressed to YOURSENDCOMD (a typo for YOURSENDCOMP,
    venue-notes 3.4): a CompID problem, rejected (373=9), and the session ends."""
    fix = session()
    fix.connect(T0)
    actions = fix.receive(example("A"), T0)
    assert [(m.msg_type, m.get(45), m.get(373)) for m in sends(actions)] == [("3", "422", "9"), ("5", None, None)]
    assert disconnects(actions)


def test_no_logon_answer_in_time_disconnects() -> None:
    fix = session(logon_timeout_s=10)
    fix.connect(T0)
    assert fix.next_deadline() == T0 + 10 * NS
    assert fix.tick(T0 + 10 * NS - 1) == []
    (gone,) = disconnects(fix.tick(T0 + 10 * NS))
    assert "Logon" in gone.reason
    assert fix.state is SessionState.DISCONNECTED


def test_a_first_message_other_than_logon_ends_the_session() -> None:
    fix = session()
    fix.connect(T0)
    actions = fix.receive(Gateway().frame("0"), T0)
    (logout,) = sends(actions)
    assert logout.msg_type == "5" and "not a Logon" in (logout.get(58) or "")
    assert disconnects(actions)


def test_a_logout_instead_of_a_logon_is_confirmed() -> None:
    fix = session()
    fix.connect(T0)
    actions = fix.receive(Gateway().frame("5", (58, "MsgSeqNum too low, expecting 7 but received 1")), T0)
    assert [m.msg_type for m in sends(actions)] == ["5"]
    (gone,) = disconnects(actions)
    assert "too low" in gone.reason and gone.error


# ---- heartbeat and test request -------------------------------------------------------------


def test_a_heartbeat_goes_after_108_seconds_of_sending_nothing() -> None:
    fix = logged_on()
    assert fix.tick(T0 + 60 * NS - 1) == []
    (heartbeat,) = sends(fix.tick(T0 + 60 * NS))
    assert fields(heartbeat, 35, 34, 112) == ("0", "2", None)
    assert fix.tick(T0 + 60 * NS + 1) == []


def test_sending_an_application_message_postpones_the_heartbeat() -> None:
    gateway = Gateway()
    fix = logged_on(gateway=gateway)
    fix.send_application("D", D_BODY, T0 + 30 * NS)
    fix.receive(gateway.frame("0"), T0 + 50 * NS)
    assert sends(fix.tick(T0 + 60 * NS)) == []
    assert fix.next_deadline() == T0 + 90 * NS
    assert sends(fix.tick(T0 + 90 * NS - 1)) == []
    assert [m.msg_type for m in sends(fix.tick(T0 + 90 * NS))] == ["0"]


def test_a_test_request_is_answered_with_its_112() -> None:
    gateway = Gateway()
    fix = logged_on(gateway=gateway)
    (heartbeat,) = sends(fix.receive(gateway.frame("1", (112, "TEST-1626224470")), T0 + NS))
    assert fields(heartbeat, 35, 112) == ("0", "TEST-1626224470")


def test_silence_past_108_and_grace_sends_our_test_request_and_its_answer_clears_it() -> None:
    gateway = Gateway()
    fix = logged_on(gateway=gateway)
    fix.receive(gateway.frame("0"), T0 + 50 * NS)
    assert [m.msg_type for m in sends(fix.tick(T0 + 60 * NS))] == ["0"]
    assert [m.msg_type for m in sends(fix.tick(T0 + 121 * NS))] == ["0"]  # 71 s of silence: grace (12 s) not over
    (test_request,) = sends(fix.tick(T0 + 122 * NS))
    test_id = test_request.get(112)
    assert test_request.msg_type == "1" and test_id
    fix.receive(gateway.frame("0", (112, test_id)), T0 + 123 * NS)
    assert disconnects(fix.tick(T0 + 200 * NS)) == []
    assert fix.state is SessionState.ACTIVE


def test_a_test_request_answered_beyond_a_gap_is_answered() -> None:
    """The Heartbeat echoing our 112 arrives with a 34 beyond a gap: it answers the TestRequest
    now (the gap only delays its sequence processing), so the session does not drop a live link."""
    gateway = Gateway()
    fix = logged_on(gateway=gateway)
    later = T0 + 100 * NS
    (test_request,) = sends(fix.tick(later))
    gateway.seq = 5
    actions = fix.receive(gateway.frame("0", (112, test_request.get(112) or "")), later + NS)
    assert [m.msg_type for m in sends(actions)] == ["2"]
    assert fix.test_request_pending is None
    assert not disconnects(fix.tick(later + 73 * NS))


def test_an_unanswered_test_request_disconnects() -> None:
    gateway = Gateway()
    fix = logged_on(gateway=gateway)
    (test_request,) = [m for m in sends(fix.tick(T0 + 72 * NS)) if m.msg_type == "1"]
    fix.receive(gateway.frame("0"), T0 + 80 * NS)  # a heartbeat without our 112 does not answer it
    assert disconnects(fix.tick(T0 + 144 * NS - 1)) == []
    (gone,) = disconnects(fix.tick(T0 + 144 * NS))
    assert test_request.get(112) in gone.reason
    assert fix.state is SessionState.DISCONNECTED


# ---- inbound gaps ---------------------------------------------------------------------------


def test_an_inbound_gap_asks_once_and_queues_until_the_resent_messages_fill_it() -> None:
    gateway = Gateway()
    fix = logged_on(gateway=gateway)  # gateway's Logon was 1; next expected 2
    report = [(37, "62XGZUU7W05SC3"), (17, "30005_582"), (150, "0"), (39, "0")]
    assert delivered(fix.receive(gateway.frame("8", *report), T0)) != []  # 34=2
    first = fix.receive(gateway.frame("8", (17, "E4"), seq=4), T0)
    (resend,) = sends(first)
    assert fields(resend, 35, 7, 16) == ("2", "3", "0")
    assert delivered(first) == []
    assert fix.receive(gateway.frame("8", (17, "E5"), seq=5), T0) == []  # still one ResendRequest
    filled = fix.receive(gateway.frame("8", (17, "E3"), seq=3, header=[(43, "Y"), (122, "20210714-07:52:46.000")]), T0)
    assert [m.get(17) for m in delivered(filled)] == ["E3", "E4", "E5"]
    assert fix.store.next_in == 6


def test_a_gap_never_filled_ends_the_session_before_the_queue_grows_without_bound() -> None:
    gateway = Gateway()
    fix = session(max_queued=3)
    fix.connect(T0)
    fix.receive(gateway.logon(), T0)
    for seq in (5, 6, 7):
        assert not disconnects(fix.receive(gateway.frame("0", seq=seq), T0))
    actions = fix.receive(gateway.frame("0", seq=8), T0)
    (gone,) = disconnects(actions)
    assert "gap from 2 not filled after 3 later messages" in gone.reason


def test_a_gap_never_filled_ends_the_session_before_the_queued_bytes_grow_without_bound() -> None:
    """Few but large messages beyond a gap: the byte bound ends the session long before the count
    bound would (10,000 frames of 64 KiB would be 640 MiB)."""
    gateway = Gateway()
    fix = session(max_queued_bytes=10_000)
    fix.connect(T0)
    fix.receive(gateway.logon(), T0)
    gateway.seq = 10
    actions = []
    for _ in range(5):
        actions += fix.receive(gateway.frame("8", (58, "x" * 3_000)), T0)
    (gone,) = disconnects(actions)
    assert "not filled" in gone.reason and "bytes" in gone.reason
    assert fix.state is SessionState.DISCONNECTED


def test_a_gap_that_does_not_shrink_is_asked_for_again() -> None:
    """Our ResendRequest (or its answer) was lost: after 108 s + grace without progress, ask again
    from what we still expect; progress in between postpones it."""
    gateway = Gateway()
    fix = logged_on(gateway=gateway)
    fix.receive(gateway.frame("0", seq=5), T0)  # asks for 2..
    fix.receive(gateway.frame("0", seq=2, header=[(43, "Y")]), T0 + 30 * NS)  # progress: 3 expected
    assert [m.msg_type for m in sends(fix.tick(T0 + 72 * NS))] == ["0"]  # a heartbeat, no new ResendRequest yet
    assert fix.next_deadline() == T0 + 102 * NS
    (again,) = [m for m in sends(fix.tick(T0 + 102 * NS)) if m.msg_type == "2"]
    assert fields(again, 7, 16) == ("3", "0")


def test_a_gap_fill_skips_administrative_numbers_and_releases_the_queue() -> None:
    gateway = Gateway()
    fix = logged_on(gateway=gateway)
    fix.receive(gateway.frame("8", (17, "E5"), seq=5), T0)
    filled = fix.receive(gateway.frame("4", (123, "Y"), (36, "5"), seq=2, header=[(43, "Y")]), T0)
    assert [m.get(17) for m in delivered(filled)] == ["E5"]
    assert fix.store.next_in == 6
    # FIX lets a sender gap-fill application messages it deems stale: the session cannot tell, so the
    # adapter is told which numbers will never come, before the message after them
    assert [a for a in filled if isinstance(a, Skipped)] == [Skipped(2, 4, "SequenceReset-GapFill 2 to 5")]
    assert isinstance(filled[0], Skipped)


def test_a_resend_request_inside_a_gap_is_answered_at_once_and_not_twice() -> None:
    gateway = Gateway()
    fix = logged_on(gateway=gateway)
    fix.send_application("D", D_BODY, T0)
    early = fix.receive(gateway.frame("2", (7, "2"), (16, "2"), seq=3), T0)
    assert [m.msg_type for m in sends(early)] == ["D", "2"]
    later = fix.receive(gateway.frame("0", seq=2, header=[(43, "Y")]), T0)
    assert sends(later) == []
    assert fix.store.next_in == 4


# ---- replay of our messages -----------------------------------------------------------------


def test_a_resend_request_replays_application_messages_and_gap_fills_administrative_ones() -> None:
    gateway = Gateway()
    fix = logged_on(gateway=gateway)  # our Logon was 1
    (order,) = sends(fix.send_application("D", D_BODY, T0 + NS))  # 2
    fix.tick(T0 + 61 * NS)  # heartbeat 3
    fix.receive(gateway.frame("0"), T0 + 62 * NS)
    fix.send_application("D", [(11, "second"), *D_BODY[1:]], T0 + 63 * NS)  # 4
    replay = sends(fix.receive(gateway.frame("2", (7, "1"), (16, "0")), T0 + 64 * NS))
    assert [(m.msg_type, m.get(34), m.get(43), m.get(123), m.get(36)) for m in replay] == [
        ("4", "1", "Y", "Y", "2"),
        ("D", "2", "Y", None, None),
        ("4", "3", "Y", "Y", "4"),
        ("D", "4", "Y", None, None),
    ]
    resent = replay[1]
    assert resent.get(122) == order.get(52) == sending_time(T0 + NS)
    assert resent.get(52) == sending_time(T0 + 64 * NS)
    assert resent.body() == order.body()
    assert fix.store.next_out == 5  # a replay takes no new numbers


def test_a_resend_request_for_a_bounded_range() -> None:
    gateway = Gateway()
    fix = logged_on(gateway=gateway)
    for number in range(3):
        fix.send_application("D", [(11, f"C{number}"), *D_BODY[1:]], T0)  # 2, 3, 4
    replay = sends(fix.receive(gateway.frame("2", (7, "3"), (16, "3")), T0))
    assert [(m.get(34), m.get(11)) for m in replay] == [("3", "C1")]


# ---- sequence reset, reject -----------------------------------------------------------------


def test_a_resend_request_for_nothing_we_sent_does_not_postpone_the_heartbeat() -> None:
    """A ResendRequest beyond our last 34 replays nothing: the Heartbeat stays due 108 s after
    what we really sent (the Logon at T0), not after the request."""
    gateway = Gateway()
    fix = logged_on(gateway=gateway)
    assert sends(fix.receive(gateway.frame("2", (7, "5"), (16, "0")), T0 + 50 * NS)) == []
    assert fix.next_deadline() == T0 + 60 * NS
    assert [m.msg_type for m in sends(fix.tick(T0 + 60 * NS))] == ["0"]


def test_sequence_reset_reset_moves_the_expected_number_whatever_its_34() -> None:
    gateway = Gateway()
    fix = logged_on(gateway=gateway)
    assert fix.receive(gateway.frame("4", (36, "100"), seq=77), T0) == [
        Skipped(2, 99, "SequenceReset-Reset to 100")]  # the adapter is told what will never come
    assert fix.store.next_in == 100
    assert delivered(fix.receive(gateway.frame("8", (17, "E100"), seq=100), T0))


def test_sequence_reset_reset_may_not_lower_the_number() -> None:
    gateway = Gateway()
    fix = logged_on(gateway=gateway)
    fix.receive(gateway.frame("4", (36, "50"), seq=2), T0)
    (reject,) = sends(fix.receive(gateway.frame("4", (36, "10"), seq=50), T0))
    assert fields(reject, 35, 45, 371, 373) == ("3", "50", "36", "5")
    assert fix.store.next_in == 50


def test_a_test_request_without_112_gets_a_session_reject() -> None:
    gateway = Gateway()
    fix = logged_on(gateway=gateway)
    (reject,) = sends(fix.receive(gateway.frame("1"), T0))
    assert fields(reject, 35, 45, 371, 373) == ("3", "2", "112", "1")
    assert fix.store.next_in == 3  # a rejected message still takes its number


def test_a_message_without_sending_time_is_rejected_not_delivered() -> None:
    """FIX 4.2: SendingTime (52) is a required header field; without it the message gets a session
    Reject (373=1, 371=52), is not delivered, and its 34 counts."""
    fix = logged_on()
    actions = fix.receive(encode("8", [(34, "2"), (49, GATEWAY), (56, CLIENT)], [(17, "E1")]), T0)
    assert not delivered(actions)
    (reject,) = sends(actions)
    assert fields(reject, 35, 45, 371, 373) == ("3", "2", "52", "1")
    assert fix.store.next_in == 3


@pytest.mark.parametrize(
    ("msg_type", "fields_", "ref_tag", "reason"),
    [
        ("2", ((16, "0"),), "7", "1"),  # ResendRequest without BeginSeqNo: required tag missing
        ("2", ((7, "1"),), "16", "1"),  # ... without EndSeqNo: names 16, not 7
        ("2", ((7, "1"), (16, "x")), "16", "6"),  # EndSeqNo present but no number: data format
        ("4", ((123, "Y"), (36, "x")), "36", "6"),  # GapFill
        ("4", ((36, "-1"),), "36", "6"),  # Reset
        ("4", (), "36", "1"),
    ],
)
def test_a_bad_sequence_field_is_rejected_naming_the_tag_and_why(
    msg_type: str, fields_: tuple[tuple[int, str], ...], ref_tag: str, reason: str
) -> None:
    gateway = Gateway()
    fix = logged_on(gateway=gateway)
    (reject,) = sends(fix.receive(gateway.frame(msg_type, *fields_), T0))
    assert fields(reject, 35, 371, 373) == ("3", ref_tag, reason)


def test_the_gateways_session_reject_is_delivered_to_the_adapter() -> None:
    gateway = Gateway()
    fix = logged_on(gateway=gateway)
    (reject,) = delivered(fix.receive(gateway.frame("3", (45, "2"), (58, "Invalid tag")), T0))
    assert fields(reject, 45, 58) == ("2", "Invalid tag")


def test_a_wrong_comp_id_is_rejected_and_ends_the_session() -> None:
    gateway = Gateway()
    fix = logged_on(gateway=gateway)
    actions = fix.receive(gateway.frame("0", sender="HASFIX02"), T0)
    assert [(m.msg_type, m.get(373)) for m in sends(actions)] == [("3", "9"), ("5", None)]
    assert disconnects(actions)


def test_an_unreadable_stream_disconnects() -> None:
    fix = logged_on()
    (gone,) = disconnects(fix.receive(b"8=FIX.4.2\x019=7\x0135=0\x0110=000\x01", T0))
    assert "BodyLength" in gone.reason


def test_frames_split_anywhere_are_processed_the_same() -> None:
    gateway = Gateway()
    fix = logged_on(gateway=gateway)
    stream = gateway.frame("1", (112, "A")) + gateway.frame("1", (112, "B"))
    answers = []
    for index in range(len(stream)):
        answers += sends(fix.receive(stream[index : index + 1], T0))
    assert [m.get(112) for m in answers] == ["A", "B"]


# ---- too-low sequence numbers ---------------------------------------------------------------


def test_a_too_low_34_without_possdup_logs_out_as_the_documents_gateway_does() -> None:
    gateway = Gateway()
    fix = logged_on(gateway=gateway)
    fix.receive(gateway.frame("0"), T0)  # 2
    fix.receive(gateway.frame("0"), T0)  # 3
    (logout,) = sends(fix.receive(gateway.frame("0", seq=2), T0 + NS))
    assert fields(logout, 35, 58) == ("5", "MsgSeqNum too low, expecting 4 but received 2")
    assert fix.state is SessionState.LOGOUT_SENT
    (gone,) = disconnects(fix.tick(T0 + 11 * NS))  # no confirming Logout within 10 s
    assert "confirming Logout" in gone.reason


def test_a_too_low_34_with_possdup_is_a_duplicate_and_ignored() -> None:
    gateway = Gateway()
    fix = logged_on(gateway=gateway)
    fix.receive(gateway.frame("8", (17, "E2")), T0)
    assert fix.receive(gateway.frame("8", (17, "E2"), seq=2, header=[(43, "Y")]), T0) == []
    assert fix.state is SessionState.ACTIVE


# ---- logout -------------------------------------------------------------------------------


def test_a_gateway_logout_is_confirmed_then_the_connection_closes() -> None:
    gateway = Gateway()
    fix = logged_on(gateway=gateway)
    actions = fix.receive(gateway.frame("5", (58, "Session closed")), T0)
    (confirm,) = sends(actions)
    assert confirm.msg_type == "5"
    (gone,) = disconnects(actions)
    assert "Session closed" in gone.reason
    assert fix.state is SessionState.DISCONNECTED


def test_our_logout_waits_for_the_confirmation() -> None:
    gateway = Gateway()
    fix = logged_on(gateway=gateway)
    (logout,) = sends(fix.logout(T0))
    assert logout.msg_type == "5"
    (gone,) = disconnects(fix.receive(gateway.frame("5"), T0 + NS))
    assert not gone.error
    assert fix.state is SessionState.DISCONNECTED


def test_our_logout_unconfirmed_disconnects_after_the_timeout() -> None:
    fix = logged_on()
    fix.logout(T0)
    assert fix.tick(T0 + 10 * NS - 1) == []
    assert disconnects(fix.tick(T0 + 10 * NS))


def test_administrative_types_cannot_be_sent_as_application_messages() -> None:
    fix = logged_on()
    try:
        fix.send_application("A", [], T0)
    except ValueError as exc:
        assert "administrative" in str(exc)
    else:
        raise AssertionError("a Logon passed as an application message")


# ---- hostile values: the session answers, it never raises --------------------------------


@pytest.mark.parametrize(
    ("msg_type", "fields_", "seq", "answer"),
    [
        ("0", (), b"\xb2", "5"),  # '²' (latin-1) is a digit to str.isdigit, not to int: a Logout
        ("2", ((7, b"\xb2"), (16, "0")), 2, "3"),  # ResendRequest: Reject
        ("4", ((36, b"\xb3"),), 2, "3"),  # SequenceReset-Reset: Reject
        ("4", ((123, "Y"), (36, b"\xb9")), 2, "3"),  # GapFill: Reject
    ],
)
def test_latin_1_digits_are_not_numbers(
    msg_type: str, fields_: tuple[tuple[int, str | bytes], ...], seq: int | bytes, answer: str
) -> None:
    gateway = Gateway()
    fix = logged_on(gateway=gateway)
    answers = sends(fix.receive(gateway.frame(msg_type, *fields_, seq=seq), T0))
    assert [m.msg_type for m in answers][:1] == [answer]


HUGE = "9" * 5000  # past int()'s 4,300-digit limit for str
BEYOND_SQLITE = str(2**63)  # an int, but not a 64-bit SQLite INTEGER


@pytest.mark.parametrize(
    ("msg_type", "fields_", "seq", "answer"),
    [
        ("0", (), HUGE, "5"),  # MsgSeqNum: a Logout, not a ValueError
        ("0", (), BEYOND_SQLITE, "5"),
        ("2", ((7, HUGE), (16, "0")), 2, "3"),  # ResendRequest: Reject
        ("2", ((7, "1"), (16, HUGE)), 2, "3"),
        ("4", ((36, BEYOND_SQLITE),), 2, "3"),  # SequenceReset-Reset: Reject, not an OverflowError
        ("4", ((123, "Y"), (36, BEYOND_SQLITE)), 2, "3"),  # GapFill: Reject
    ],
)
def test_sequence_numbers_too_big_for_int_or_sqlite_are_not_numbers(
    msg_type: str, fields_: tuple[tuple[int, str], ...], seq: int | str, answer: str
) -> None:
    gateway = Gateway()
    fix = logged_on(gateway=gateway)
    answers = sends(fix.receive(gateway.frame(msg_type, *fields_, seq=seq), T0))
    assert [m.msg_type for m in answers][:1] == [answer]
    assert fix.store.next_in <= 3


SESSION_TAGS = (34, 7, 16, 36, 43, 45, 58, 108, 112, 122, 123)
#: any bytes but SOH, with the digits and flags that matter drawn often
VALUES = st.one_of(
    st.sampled_from([b"0", b"1", b"2", b"3", b"9", b"Y", b"N", b"\xb2", b"00", b"-1"]),
    st.binary(min_size=1, max_size=6).filter(lambda value: b"\x01" not in value),
)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["0", "1", "2", "3", "4", "5", "A", "8"]),
            st.lists(st.tuples(st.sampled_from(SESSION_TAGS), VALUES), max_size=4),
            st.integers(0, 8),
        ),
        max_size=12,
    )
)
def test_any_well_framed_messages_give_actions_never_an_exception(
    messages: list[tuple[str, list[tuple[int, bytes]], int]],
) -> None:
    """Framing is the codec's job; everything a well-framed message can carry in the session's
    own tags (numbers that are not numbers, '²', gaps, resets, duplicates) ends in actions."""
    fix = session()
    fix.connect(T0)
    gateway = Gateway()
    for msg_type, extra, seq in messages:
        data = gateway.frame(msg_type, *[(tag, value) for tag, value in extra if tag not in (34, 43, 122)],
                             seq=seq, header=[(tag, value) for tag, value in extra if tag in (43, 122)][:1])
        fix.receive(data, T0)
        fix.tick(T0 + 200 * NS)
        if fix.disconnected:
            fix.connect(T0)
