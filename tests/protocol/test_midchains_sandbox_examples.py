"""Document 001's own FIX examples (tests/fixtures/midchains/fix_examples.txt, verbatim copies)
fed to the MidChains sandbox, and its answers held against the document's gateway examples: the
same tags and, where the venue's state is the same, the same values. A FIX engine we did not
write (asyncfix's initiator) logs on, trades, fills a gap and logs out against it."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

import pytest
import simplefix
from asyncfix import FIXMessage
from asyncfix.connection import ConnectionState
from asyncfix.connection_client import AsyncFIXClient
from asyncfix.journaler import Journaler
from asyncfix.protocol import FIXProtocol44
from support.midchains_client import CLIENT, GATEWAY, FixClient, running, text

from adapters.midchains.sandbox_wire import decode

pytestmark = pytest.mark.anyio
D = Decimal
FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "midchains" / "fix_examples.txt"
#: the client CompIDs of 001's examples (Logon SENDERCOMP, D YOURSENDCOMP, F HASFIX02)
DOCUMENT_CLIENTS = ("SENDERCOMP", "YOURSENDCOMP", "HASFIX02")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def example(msg_type: str, sender: str) -> list[tuple[int, str]]:
    """The first example of ``msg_type`` from ``sender``, as (tag, value) pairs in document order."""
    for line in FIXTURE.read_text(encoding="utf-8").splitlines():
        pairs = [tuple(field.split("=", 1)) for field in line.split("^A") if "=" in field]
        fields = [(int(tag), value) for tag, value in pairs if tag.isdigit()]
        if (35, msg_type) in fields and (49, sender) in fields:
            return fields
    raise LookupError(f"no 35={msg_type} example from {sender}")


def reframed(fields: list[tuple[int, str]], **changes: str) -> bytes:
    """The example re-encoded by simplefix: the document's fields and order, 9 and 10 computed
    (the document's are all wrong, venue-notes 3.4), ``changes`` (``t34="2"``) applied."""
    message = simplefix.FixMessage()
    for tag, value in fields:
        if tag in (9, 10):
            continue
        message.append_pair(tag, changes.get(f"t{tag}", value), header=tag in (8, 35, 34, 49, 52, 56))
    data: bytes = message.encode()
    return data


def body_tags(message: simplefix.FixMessage) -> list[int]:
    return [int(tag) for tag, _ in message.pairs if int(tag) not in (8, 9, 10, 34, 35, 49, 52, 56, 43, 122)]


async def test_the_documents_client_logon_with_34_2_is_answered_then_a_resend_is_asked() -> None:
    """001: "Initiate retransmission processing via a resend request if the Logon sequence number
    is greater than the value expected" (the example logs on with 34=2 on a fresh day: 1 expected)."""
    async with running(client_comp_ids=DOCUMENT_CLIENTS) as venue:
        client = await FixClient(venue.port, sender="SENDERCOMP").connect()
        client.send_raw(reframed(example("A", "SENDERCOMP")))
        logon = await client.expect("A", skip_admin=False)
        assert body_tags(logon) == [98, 108] and (text(logon, 98), text(logon, 108)) == ("0", "60")
        assert text(logon, 56) == "SENDERCOMP"  # 001's YOURSENDCOMD is a typo (venue-notes 3.4)
        ask = await client.expect("2", skip_admin=False)
        assert (text(ask, 7), text(ask, 16)) == ("1", "0")
        client.close()


async def test_the_documents_order_gets_the_documents_er_new_and_er_fill() -> None:
    """001's D (38=1, 43229=10) against a resting 0.1 at 141.78: the ER NEW and ER FILL carry every
    tag of 001's examples with the same values (38=1000, 43229=10000, 31=141.78, 43214=T ...)."""
    new_example = dict(example("8", GATEWAY))
    fill_example = dict(
        next(fields for fields in _all("8", GATEWAY) if (150, "2") in fields))
    async with running(client_comp_ids=DOCUMENT_CLIENTS) as venue:
        client = await FixClient(venue.port).connect()
        await client.logon()
        venue.place("LTCUSD", "sell", D("0.1"), D("141.78"))
        client.send_raw(reframed(example("D", CLIENT), t34="2"))
        new, fill = await client.expect("8"), await client.expect("8")
        for report, documented in ((new, new_example), (fill, fill_example)):
            mine = set(body_tags(report))
            assert set(documented) - {8, 9, 10, 34, 35, 49, 52, 56} <= mine
            for tag in (6, 11, 14, 20, 31, 32, 38, 39, 40, 44, 54, 55, 59, 150, 151, 43211, 43212, 43214, 43229):
                if tag in documented:
                    assert text(report, tag) == documented[tag], (tag, text(report, tag), documented[tag])
        client.close()


def _all(msg_type: str, sender: str) -> list[list[tuple[int, str]]]:
    found = []
    for line in FIXTURE.read_text(encoding="utf-8").splitlines():
        fields = [(int(t), v) for t, _, v in (f.partition("=") for f in line.split("^A")) if t.isdigit()]
        if (35, msg_type) in fields and (49, sender) in fields:
            found.append(fields)
    return found


@pytest.mark.parametrize("literal", [False, True])
async def test_the_documents_cancel_cancels_the_order_it_names(literal: bool) -> None:
    """001's F from HASFIX02 (41=62637618638809898000, 38=1, 43229=100); literal mode echoes it first,
    as 001's gateway example does."""
    cancel = example("F", "HASFIX02")
    fields = dict(cancel)
    async with running(literal=literal, client_comp_ids=DOCUMENT_CLIENTS) as venue:
        client = await FixClient(venue.port, sender="HASFIX02").connect()
        await client.logon()
        client.send("D", (11, fields[41]), (21, "1"), (38, 1), (40, "2"), (44, "125"), (54, "1"), (55, "LTCUSD"),
                    (59, "1"), (43229, 100))
        await client.expect("8")
        client.send_raw(reframed(cancel, t34=str(client.seq)))
        first = await client.recv()
        if literal:
            assert text(first, 35) == "F" and body_tags(first) == [tag for tag, _ in cancel
                                                                    if tag not in (8, 9, 10, 34, 35, 49, 52, 56)]
            first = await client.recv()
        assert text(first, 35) == "8" and (text(first, 150), text(first, 39)) == ("4", "4")
        assert (text(first, 11), text(first, 41)) == (fields[11], fields[41])
        assert venue.depth("LTCUSD") == ([], [])
        client.close()


async def test_market_data_has_the_layout_of_the_documents_w_and_x() -> None:
    w_layout = [tag for tag, _ in example("W", GATEWAY) if tag not in (8, 9, 10, 34, 35, 49, 52, 56)]
    x_line = FIXTURE.read_text(encoding="utf-8").splitlines()[-1]
    x_fields = [int(f.split("=")[0]) for f in x_line.split("^A")[-14:] if "=" in f]
    x_layout = x_fields[x_fields.index(262):x_fields.index(10)]
    async with running() as venue:
        venue.place("LTCUSD", "buy", D("0.1"), D(120))
        client = await FixClient(venue.md_port).connect()
        await client.logon()
        x = await client.expect("X")
        assert body_tags(x) == x_layout == [262, 268, 279, 269, 278, 55, 270, 271, 58]
        w = await client.expect("W")
        assert body_tags(w) == w_layout == [55, 262, 268, 269, 270, 271]
        client.close()


async def test_every_frame_the_sandbox_writes_has_a_correct_body_length_and_checksum() -> None:
    async with running() as venue:
        client = await FixClient(venue.port).connect()
        await client.logon()
        client.send("1", (112, "X"))
        await client.expect("0")
        for message in client.log:
            assert decode(message.encode(raw=True)).msg_type  # 9 and 10 recomputed and checked
        client.close()


# ---- a FIX engine we did not write ----------------------------------------------------------------------


class Fix42(FIXProtocol44):
    beginstring = "FIX.4.2"


class Initiator(AsyncFIXClient):
    """asyncfix's initiator as YOURSENDCOMP, keeping the application messages it gets."""

    def __init__(self, port: int) -> None:
        super().__init__(Fix42(), CLIENT, GATEWAY, Journaler(), "127.0.0.1", port, heartbeat_period=1)
        self.received: list[FIXMessage] = []
        self.logged_on = asyncio.Event()

    async def on_connect(self) -> None:
        await self.send_msg(FIXMessage("A", {98: "0", 108: "1"}))

    async def on_logon(self, is_healthy: bool) -> None:
        self.logged_on.set()

    async def on_message(self, msg: FIXMessage) -> None:
        self.received.append(msg)


async def until(condition, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


async def test_asyncfix_logs_on_trades_survives_heartbeats_and_fills_a_gap() -> None:
    async with running() as venue:
        initiator = Initiator(venue.port)
        before = asyncio.all_tasks()
        await initiator.connect()
        its_tasks = asyncio.all_tasks() - before  # asyncfix's reader and heartbeat tasks
        try:
            await asyncio.wait_for(initiator.logged_on.wait(), 5)
            order = {11: "AF1", 21: "1", 38: "5", 40: "2", 44: "130", 54: "1", 55: "LTCUSD", 59: "1",
                     60: "20260101-00:00:00.000", 43229: "10"}
            await initiator.send_msg(FIXMessage("D", order))
            await until(lambda: len(initiator.received) == 1)
            assert initiator.received[0][39] == "0" and initiator.received[0][38] == "5000"
            venue.gap(count=1, target="broker")  # the next report is numbered, never sent
            await initiator.send_msg(FIXMessage("F", {11: "AF2", 41: "AF1", 38: "5", 54: "1", 55: "LTCUSD"}))
            await until(lambda: len(initiator.received) == 2, timeout=8)  # asyncfix asks, the sandbox resends
            assert initiator.received[1][150] == "4" and initiator.received[1][43] == "Y"
            await asyncio.sleep(2.5)  # heartbeats and TestRequests both ways, nobody drops
            assert initiator.connection_state == ConnectionState.ACTIVE
            assert venue.counters.get("oe.test_request_timeouts", 0) == 0
            assert venue.counters["oe.resend_requests_answered"] >= 1
        finally:
            await initiator.disconnect(ConnectionState.DISCONNECTED_WCONN_TODAY, logout_message="")
            for task in its_tasks:
                task.cancel()
