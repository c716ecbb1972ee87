"""The FIX session's durable store: a restart continues the numbering on both sides, a resend
request after a restart replays from the store, and the 01:00 UTC trading-day boundary (MID-13)
starts both sides at 1."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from support.midchains_fix import NS, T0, Gateway, at, fields, logged_on, sends, session

from adapters.midchains.session import SessionState
from adapters.midchains.store import SequenceStore, trading_day

ORDER = [(11, "43637618552482556000"), (21, "2"), (38, "1"), (40, "2"), (44, "150"), (54, "1"), (55, "LTCUSD"),
         (59, "1"), (43229, "10")]


def test_the_trading_day_turns_at_01_00_utc() -> None:
    assert trading_day(at("2021-07-14 00:59:59.999")) == "2021-07-13"
    assert trading_day(at("2021-07-14 01:00:00.000") - 1) == "2021-07-13"  # 1 ns before: no float rounding
    assert trading_day(at("2021-07-14 01:00:00.000")) == "2021-07-14"
    assert trading_day(at("2021-07-14 23:59:59.000")) == "2021-07-14"


def test_a_restart_mid_session_continues_the_numbering(tmp_path: Path) -> None:
    path = tmp_path / "journal.midchains-fix.sqlite"
    gateway = Gateway()
    fix = logged_on(path, gateway=gateway)  # we sent Logon 1, gateway Logon 1
    fix.send_application("D", ORDER, T0 + NS)  # 2
    fix.receive(gateway.frame("8", (17, "30005_582")), T0 + 2 * NS)  # gateway 2
    fix.commit_inbound()  # the adapter had the report
    fix.store.close()  # the process dies here

    again = session(path)
    (logon,) = sends(again.connect(T0 + 60 * NS))
    assert fields(logon, 35, 34) == ("A", "3")
    assert again.store.next_in == 3
    assert again.receive(gateway.logon(), T0 + 61 * NS) == []  # gateway's Logon 3: in sequence
    assert again.state is SessionState.ACTIVE


def test_a_message_received_but_not_handed_on_is_asked_for_again_after_a_restart(tmp_path: Path) -> None:
    """The session read the gateway's report, but the process died before the adapter had it (no
    commit_inbound): the restarted session expects it again, so the gateway's next number is a
    gap and the report comes back as a resend, not lost."""
    path = tmp_path / "fix.sqlite"
    gateway = Gateway()
    fix = logged_on(path, gateway=gateway)
    fix.receive(gateway.frame("8", (17, "30005_582")), T0 + NS)  # gateway 2, never handled
    fix.store.close()

    again = session(path)
    again.connect(T0 + 60 * NS)
    assert again.store.next_in == 2
    (resend,) = sends(again.receive(gateway.logon(), T0 + 61 * NS))  # gateway's Logon 3: a gap
    assert fields(resend, 35, 7) == ("2", "2")


def test_one_durable_write_per_read_not_per_message(tmp_path: Path) -> None:
    """set_next_in only moves the number; commit_inbound writes it (SQLite's statement count shows)."""
    store = SequenceStore(tmp_path / "fix.sqlite", "A->B")
    before = store.changes()
    for seq in range(2, 200):
        store.set_next_in(seq)
    assert store.changes() == before
    store.commit_inbound()
    assert store.changes() == before + 1
    store.close()
    assert SequenceStore(tmp_path / "fix.sqlite", "A->B").next_in == 199


def test_a_resend_request_after_a_restart_replays_from_the_store(tmp_path: Path) -> None:
    path = tmp_path / "fix.sqlite"
    gateway = Gateway()
    fix = logged_on(path, gateway=gateway)
    (order,) = sends(fix.send_application("D", ORDER, T0 + NS))  # 2
    fix.store.close()

    again = session(path)
    again.connect(T0 + 30 * NS)  # Logon 3
    again.receive(gateway.logon(), T0 + 30 * NS)
    replay = sends(again.receive(gateway.frame("2", (7, "1"), (16, "0")), T0 + 31 * NS))
    assert [(m.msg_type, m.get(34), m.get(43), m.get(36)) for m in replay] == [
        ("4", "1", "Y", "2"),
        ("D", "2", "Y", None),
        ("4", "3", "Y", "4"),
    ]
    assert replay[1].get(122) == order.get(52)
    assert replay[1].body() == order.body()


def test_a_new_trading_day_starts_both_sides_at_1(tmp_path: Path) -> None:
    path = tmp_path / "fix.sqlite"
    before = at("2021-07-14 00:59:00.000")
    gateway = Gateway()
    fix = logged_on(path, now_ns=before, gateway=gateway)
    fix.send_application("D", ORDER, before)
    fix.logout(before)
    fix.receive(gateway.frame("5"), before)
    fix.store.close()

    after = at("2021-07-14 01:00:00.000")
    again = session(path)
    (logon,) = sends(again.connect(after))
    assert logon.get(34) == "1"
    assert again.receive(Gateway().logon(), after) == []  # the gateway's numbering restarted too
    assert (again.store.next_out, again.store.next_in, again.store.day) == (2, 2, "2021-07-14")
    assert again.store.sent_frames(1, 100) == {}  # yesterday's order can no longer be asked for


def test_the_same_trading_day_after_midnight_utc_keeps_the_numbers(tmp_path: Path) -> None:
    """00:30 UTC still belongs to the day that began at 01:00 UTC the day before."""
    path = tmp_path / "fix.sqlite"
    fix = logged_on(path, now_ns=at("2021-07-13 23:30:00.000"))
    fix.store.close()
    again = session(path)
    (logon,) = sends(again.connect(at("2021-07-14 00:30:00.000")))
    assert logon.get(34) == "2"


def test_a_session_logged_on_across_the_boundary_logs_out(tmp_path: Path) -> None:
    before = at("2021-07-14 00:59:30.000")
    gateway = Gateway()
    fix = logged_on(tmp_path / "fix.sqlite", now_ns=before, gateway=gateway)
    fix.receive(gateway.frame("0"), before + 20 * NS)
    boundary = at("2021-07-14 01:00:00.000")
    assert fix.next_deadline() == boundary
    (logout,) = sends(fix.tick(boundary))
    assert logout.msg_type == "5" and "trading day" in (logout.get(58) or "")
    assert fix.state is SessionState.LOGOUT_SENT


def test_an_order_after_the_boundary_but_before_the_tick_is_refused(tmp_path: Path) -> None:
    """The timer that logs out at 01:00 UTC may fire late: an order sent in between would carry
    the old day's next 34 to a gateway counting from 1 again. It is refused and not numbered."""
    before = at("2021-07-14 00:59:30.000")
    fix = logged_on(tmp_path / "fix.sqlite", now_ns=before)
    fix.send_application("D", ORDER, before + NS)
    with pytest.raises(ConnectionError, match="trading day"):
        fix.send_application("D", ORDER, at("2021-07-14 01:00:00.000"))
    assert fix.store.next_out == 3
    assert [m.msg_type for m in sends(fix.tick(at("2021-07-14 01:00:00.001")))] == ["5"]


def test_the_store_writes_before_the_bytes_leave(tmp_path: Path) -> None:
    """A number handed out is on disk when the Send action is returned, so a crash right after
    sending never reuses it."""
    path = tmp_path / "fix.sqlite"
    fix = logged_on(path)
    fix.send_application("D", ORDER, T0)
    reader = SequenceStore(path, fix.store.session_key)
    assert (reader.next_out, sorted(reader.sent_frames(1, 10))) == (3, [2])


def test_a_write_that_fails_leaves_the_number_unused(tmp_path: Path) -> None:
    """The disk refuses the write of a message's number (full, read-only): the number is not
    taken, so the link reads the message as never numbered and reports it not sent (review: it
    used to move ``next_out`` first and the message read as sent though never stored or written),
    and the next message takes that number."""
    store = SequenceStore(tmp_path / "journal.midchains-fix.sqlite", "US->MIDCHAINS")
    before = store.next_out
    store._db.execute("PRAGMA query_only = ON")  # every write now fails, as a full disk's would
    for frame in (None, b"8=FIX.4.2|..."):  # an administrative message's number, an application message's
        with pytest.raises(sqlite3.OperationalError):
            store.record_sent(before, frame)
        assert store.next_out == before
    store._db.execute("PRAGMA query_only = OFF")
    store.record_sent(before, b"8=FIX.4.2|...")
    assert store.next_out == before + 1 and store.sent_frames(before, before) == {before: b"8=FIX.4.2|..."}
