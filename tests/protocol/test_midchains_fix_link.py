"""The reconnecting FIX link (adapters/midchains/link.py) against a scripted gateway on 127.0.0.1:
"connected" only once the messages the gateway queued while we were away are in, the venue's
message limit held on the wire for every frame (admin ones too) as the gateway counts arrivals,
and a dropped connection reported, reconnected and the queued messages delivered again in order."""

from __future__ import annotations

import random
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import pytest
from support.midchains_fix import CLIENT, GATEWAY, NS, ORDER
from support.midchains_gateway import ScriptedGateway
from support.threaded import Served, served_in_thread, serving

from adapters.kit.backoff import Backoff
from adapters.kit.pacing import max_in_window
from adapters.midchains.codec import FixMessage
from adapters.midchains.link import FixLink, LinkDown, Outgoing
from adapters.midchains.session import SessionConfig
from adapters.midchains.store import SequenceStore
from adapters.midchains.transport import Endpoint
from engine.venue import RateLimit
from engine.venue.clock import WallClock

pytestmark = pytest.mark.anyio

LIMITS = (RateLimit("all", 10, Decimal(1), source="001: FIX 10/s"), RateLimit("orders", 4, Decimal(1)))


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Harness:
    def __init__(self, gateway: ScriptedGateway, link: FixLink, served: Served[ScriptedGateway] | None = None) -> None:
        self.gateway = gateway
        self.link = link
        self.served = served  # the gateway's own thread and loop, when it has them
        self.events: list[tuple[str, str]] = []  # ("status", s) or ("message", ClOrdID)

    def arrivals(self, msg_type: str | None = None) -> list[int]:
        """When the gateway read each frame (of ``msg_type``), wall ns, read on the gateway's loop."""
        def read() -> list[int]:
            return [a.ns for a in (self.gateway.arrivals if msg_type is None else self.gateway.received(msg_type))]
        return self.served.call(read) if self.served is not None else read()

    async def until_arrived(self, msg_type: str, count: int, timeout_s: float = 10) -> list[int]:
        """Wait until the gateway has read ``count`` frames of ``msg_type``; their arrival times."""
        with anyio.fail_after(timeout_s):  # 50 ms: each look asks the gateway's thread and waits
            while len(arrived := self.arrivals(msg_type)) < count:
                await anyio.sleep(0.05)
        return arrived


async def _harness(tmp_path: Path, limits: tuple[RateLimit, ...] = LIMITS, heartbeat_s: int = 60,
                   threaded: bool = False, **link_options: Any) -> AsyncIterator[Harness]:
    """A link to a scripted gateway; ``threaded``: the gateway serves from its own thread and loop
    (tests/support/threaded.py), so its arrival times are the wire's, for the rate-limit counts."""
    async with AsyncExitStack() as stack:
        served: Served[ScriptedGateway] | None = None
        if threaded:
            served = await stack.enter_async_context(served_in_thread(lambda: serving(ScriptedGateway())))
            gateway = served.it
        else:
            gateway = await stack.enter_async_context(serving(ScriptedGateway()))
        tasks = await stack.enter_async_context(anyio.create_task_group())
        events: list[tuple[str, str]] = []

        def on_message(message: FixMessage) -> None:
            events.append(("message", message.get(11) or message.msg_type))

        link = FixLink("midchains_fix test", Endpoint("127.0.0.1", gateway.port, tls=False),
                       SessionConfig(CLIENT, GATEWAY, heartbeat_s=heartbeat_s), tmp_path / "fix.sqlite", WallClock(),
                       on_message,
                       lambda status, detail: events.append(("status", status)),
                       backoff=Backoff(0.05, 0.2, random.Random(7)), limits=limits, **link_options)
        link.set_limits(limits)
        harness = Harness(gateway, link, served)
        harness.events = events
        tasks.start_soon(link.run)
        try:
            yield harness
        finally:
            await link.close()
            tasks.cancel_scope.cancel()


def _er(cl_ord_id: str, exec_id: str) -> tuple[str, list[tuple[int, str]]]:
    return ("8", [(11, cl_ord_id), (17, exec_id), (20, "0"), (37, "O1"), (39, "0"), (150, "0"), (55, "LTCUSD"),
                  (54, "1"), (38, "1000"), (14, "0"), (151, "1000"), (6, "0"), (43229, "10000")])


async def test_connected_only_after_the_messages_queued_while_away(tmp_path: Path) -> None:
    async for h in _harness(tmp_path):
        h.gateway.queued = [_er("A1", "E1"), _er("A2", "E2")]
        await h.link.wait_connected(10)
        assert h.events == [("message", "A1"), ("message", "A2"), ("status", "connected")]
        probe = h.gateway.received("1")
        assert probe and probe[0].fields[112].startswith("SYNC-")  # the barrier TestRequest


async def test_send_refused_while_down_and_every_frame_within_the_message_limit(tmp_path: Path) -> None:
    # 3 messages/s on the wire: Logon, the sync TestRequest and 7 orders must spread over > 2 s
    limits = (RateLimit("all", 3, Decimal(1)),)
    async for h in _harness(tmp_path, limits, threaded=True):
        with pytest.raises(LinkDown):
            h.link.send("order", "D", ORDER)
        await h.link.wait_connected(10)
        for n in range(7):
            h.link.send("order", "D", [(11, f"B{n}"), *ORDER[1:]])
        # ~6.3 s idle (one order a window: 2 of the 3 are kept for session messages); a loaded
        # CI machine (4 workers, two CPU burners, 2 cores) once took over 15 s: no idle machine assumed
        await h.until_arrived("D", 7, 60)
        arrivals = h.arrivals()
        assert len(arrivals) >= 9
        assert max_in_window(arrivals, NS) <= 3


async def test_a_dropped_connection_is_reported_and_reconnected(tmp_path: Path) -> None:
    async for h in _harness(tmp_path):
        await h.link.wait_connected(10)
        h.gateway.queued = [_er("Q1", "E9")]  # what the gateway generated while we were away
        await h.gateway.drop()
        with anyio.fail_after(10):
            while h.events.count(("status", "connected")) < 2:
                await anyio.sleep(0.02)
        assert h.events == [("status", "connected"), ("status", "disconnected"), ("message", "Q1"),
                            ("status", "connected")]
        assert h.link.stats["reconnects"] == 1
        assert h.gateway.logons == 2
        logons = h.gateway.received("A")
        assert int(logons[1].fields[34]) > int(logons[0].fields[34])  # numbers kept across the drop


async def test_a_silent_gateway_is_stale_then_connected_when_it_answers(tmp_path: Path) -> None:
    """HeartBtInt 1 s: after 1 s + 1 s grace of silence our TestRequest goes out and the link says
    "stale"; the gateway's (late) Heartbeat echoing it makes it "connected" again."""
    async for h in _harness(tmp_path, heartbeat_s=1):
        await h.link.wait_connected(10)
        h.gateway.answer_test_requests = False
        with anyio.fail_after(10):
            while ("status", "stale") not in h.events:
                await anyio.sleep(0.02)
        late = h.gateway.received("1")[-1].fields[112]
        assert late.startswith("TEST-")
        await h.gateway.send("0", [(112, late)])
        with anyio.fail_after(10):
            while h.events[-1] != ("status", "connected"):
                await anyio.sleep(0.02)
        assert h.events == [("status", "connected"), ("status", "stale"), ("status", "connected")]


async def test_the_budget_spent_before_a_drop_still_counts_after_it(tmp_path: Path) -> None:
    """The venue counts per session, not per connection: 4 orders, a drop, a quick reconnect and 4
    more never put more than 4 orders in any 1 s window at the gateway."""
    async for h in _harness(tmp_path, threaded=True):
        assert h.served is not None
        await h.link.wait_connected(10)
        for n in range(4):
            h.link.send("order", "D", [(11, f"P{n}"), *ORDER[1:]])
        await h.until_arrived("D", 4, 10)
        await h.served.run(h.gateway.drop)
        with anyio.fail_after(10):
            while h.events.count(("status", "connected")) < 2:
                await anyio.sleep(0.01)
        for n in range(4):
            h.link.send("order", "D", [(11, f"R{n}"), *ORDER[1:]])
        await h.until_arrived("D", 8, 10)
        assert max_in_window(h.arrivals("D"), NS) <= 4


class _StallingStore(SequenceStore):
    """Blocks the loop for ``stall_s`` while recording the first D: a slow store write (or the
    process descheduled) between the pacer's release and the socket write."""

    def __init__(self, path: Path, stall_s: float) -> None:
        super().__init__(path, f"{CLIENT}->{GATEWAY}")
        self.stall_s = stall_s

    def record_sent(self, seq: int, frame: bytes | None) -> None:
        if frame is not None and b"\x0135=D\x01" in frame and self.stall_s:
            time.sleep(self.stall_s)
            self.stall_s = 0
        super().record_sent(seq, frame)


async def test_orders_held_on_the_wire_after_a_stall_between_release_and_write(tmp_path: Path) -> None:
    """The pacer releases 4 orders at once and the next one window later; the first write stalls
    0.4 s, so the four reach the wire at 0.4 s. Paced on release times alone, the fifth would land
    0.7 s after them: 5 orders in one of the venue's seconds. The stream holds the orders limit on
    write times, so it waits. The gateway runs on its own thread, so its arrival times are the
    wire's (a gateway on the link's loop would read late through the same stall)."""
    store = _StallingStore(tmp_path / "fix.sqlite", 0.4)
    async for h in _harness(tmp_path, threaded=True, store=store):
        await h.link.wait_connected(10)
        for n in range(6):
            h.link.send("order", "D", [(11, f"S{n}"), *ORDER[1:]])
        await h.until_arrived("D", 6, 20)
        assert max_in_window(h.arrivals("D"), NS) <= 4
        assert h.link.stats["paced"] >= 1  # the write hold, not the pacer, held the fifth
    store.close()


async def test_an_order_the_hold_keeps_when_the_connection_drops_is_reported_not_sent(tmp_path: Path) -> None:
    """After a stall the write hold keeps the fifth order; the gateway drops the connection before
    it may leave. It was never numbered, so no resend can bring it: its sender hears "not sent"
    (every one of the six hears exactly one of sent / not sent), never silence."""
    store = _StallingStore(tmp_path / "fix.sqlite", 0.4)
    heard: dict[str, list[str]] = {}
    async for h in _harness(tmp_path, threaded=True, store=store):
        assert h.served is not None
        await h.link.wait_connected(10)
        for n in range(6):
            client_id = f"H{n}"
            h.link.send("order", "D", [(11, client_id), *ORDER[1:]],
                        on_unsent=lambda why, c=client_id: heard.setdefault(c, []).append(f"not sent: {why}"),
                        on_sent=lambda c=client_id: heard.setdefault(c, []).append("sent"))
        await h.until_arrived("D", 4)
        with anyio.fail_after(10):  # the pacer let the fifth go; the hold keeps it (1.05 s from the writes)
            while h.link._pacer.departed["order"] < 5:
                await anyio.sleep(0.005)
        await h.served.run(h.gateway.drop)
        with anyio.fail_after(10):
            while len(heard) < 6:
                await anyio.sleep(0.01)
        await anyio.sleep(0.2)  # time for a second callback, which must not come
        assert all(len(said) == 1 for said in heard.values()), heard
        assert [heard[f"H{n}"] for n in range(4)] == [["sent"]] * 4
        assert heard["H4"][0].startswith("not sent") and heard["H5"][0].startswith("not sent")
    store.close()


async def test_a_message_taken_back_before_it_is_numbered_never_leaves(tmp_path: Path) -> None:
    """After a stall the write hold keeps the fifth order and the pacer the sixth (its budget not
    yet there). Both are taken back (their orders cancelled): neither ever reaches the gateway and
    neither sender hears anything from the link (the adapter answered the cancel itself), while a
    numbered one cannot be taken back. The seventh, sent after, leaves in the budget they did not use."""
    store = _StallingStore(tmp_path / "fix.sqlite", 0.4)
    heard: dict[str, list[str]] = {}
    async for h in _harness(tmp_path, threaded=True, store=store):
        await h.link.wait_connected(10)

        def send(client_id: str, link: FixLink = h.link) -> Outgoing:
            return link.send("order", "D", [(11, client_id), *ORDER[1:]],
                               on_unsent=lambda why: heard.setdefault(client_id, []).append(f"not sent: {why}"),
                               on_sent=lambda: heard.setdefault(client_id, []).append("sent"))

        items = [send(f"T{n}") for n in range(6)]
        await h.until_arrived("D", 4)
        with anyio.fail_after(10):  # the pacer let the fifth go; the hold keeps it (1.05 s from the writes)
            while h.link._pacer.departed["order"] < 5:
                await anyio.sleep(0.005)
        assert not items[4].numbered and h.link.take_back(items[4])  # held at the write
        assert h.link.take_back(items[5])  # still waiting for the budget
        assert not h.link.take_back(items[0])  # numbered and written: on the wire
        send("T6")
        arrived = await h.until_arrived("D", 5, 10)
        await anyio.sleep(1.5)  # a fifth or sixth that still left would be here by now
        assert h.served is not None
        ids = [a.fields[11] for a in h.served.call(lambda gateway=h.gateway: gateway.received("D"))]
        assert ids == ["T0", "T1", "T2", "T3", "T6"] and len(arrived) == 5
        assert heard == {f"T{n}": ["sent"] for n in (0, 1, 2, 3, 6)}
        assert max_in_window(h.arrivals("D"), NS) <= 4
    store.close()


async def test_a_cancel_is_not_written_behind_an_order_the_hold_keeps(tmp_path: Path) -> None:
    """After a 0.9 s stall the write hold keeps the fifth order (the orders budget counted from
    the writes) until ~1.95 s. A cancel asked at ~1.1 s spends only the message budget, which has
    room: it is written at once, ahead of the held order, not behind it. (One writer for all lanes
    wrote it after the fifth order.)"""
    store = _StallingStore(tmp_path / "fix.sqlite", 0.9)
    async for h in _harness(tmp_path, threaded=True, store=store):
        assert h.served is not None
        await h.link.wait_connected(10)
        for n in range(6):
            h.link.send("order", "D", [(11, f"K{n}"), *ORDER[1:]])
        await h.until_arrived("D", 4)
        with anyio.fail_after(10):  # the pacer let the fifth go; the hold keeps it
            while h.link._pacer.departed["order"] < 5:
                await anyio.sleep(0.005)
        h.link.send("cancel", "F", [(11, "X0"), (41, "K0"), *ORDER[5:7], (60, "20261207-10:00:00.000")])
        await h.until_arrived("D", 6, 20)
        order = [a.fields[11] for a in h.served.call(lambda gateway=h.gateway: list(gateway.arrivals))
                 if a.msg_type in ("D", "F")]
        assert order.index("X0") < order.index("K4"), order
        assert max_in_window(h.arrivals("D"), NS) <= 4
    store.close()


async def test_a_message_the_session_refuses_to_number_is_not_sent(tmp_path: Path) -> None:
    """The session leaves ACTIVE (a logout under way) while the link still says up: a D written
    then is refused by the session before it is numbered. Its sender hears "not sent", never
    "sent" (which would mark the order's row as possibly at the venue), and it reaches nobody.
    Found by a review: the writer had marked it numbered before the session refused it."""
    heard: list[str] = []
    async for h in _harness(tmp_path):
        await h.link.wait_connected(10)
        session = h.link.open()
        before = session.store.next_out
        session.logout(0)  # as close() begins; the link is still up
        h.link.send("order", "D", [(11, "Z1"), *ORDER[1:]], on_sent=lambda: heard.append("sent"),
                    on_unsent=lambda why: heard.append(f"not sent: {why}"))
        with anyio.fail_after(10):
            while not heard:
                await anyio.sleep(0.01)
        await anyio.sleep(0.2)  # time for a second callback, which must not come
        assert len(heard) == 1 and heard[0].startswith("not sent") and "not logged on" in heard[0], heard
        assert session.store.next_out == before + 1  # the Logout took a number; the D none
        assert h.gateway.received("D") == []


async def test_a_body_that_will_not_encode_is_not_sent_and_the_link_goes_on(tmp_path: Path) -> None:
    """A D whose ClOrdID holds a SOH (the FIX field separator) cannot be framed: the session's
    codec refuses it before numbering it. Its sender hears "not sent" naming the codec's reason,
    never "sent" (the writer used to mark it numbered before the call and, on an error that was
    not a refusal, reported it sent); nothing is numbered, and the next order goes out."""
    heard: list[str] = []
    async for h in _harness(tmp_path):
        await h.link.wait_connected(10)
        session = h.link.open()
        before = session.store.next_out
        h.link.send("order", "D", [(11, "BAD\x01ID"), *ORDER[1:]], on_sent=lambda: heard.append("sent"),
                    on_unsent=lambda why: heard.append(f"not sent: {why}"))
        h.link.send("order", "D", [(11, "GOOD1"), *ORDER[1:]], on_sent=lambda: heard.append("sent"),
                    on_unsent=lambda why: heard.append(f"not sent: {why}"))
        with anyio.fail_after(10):
            while len(heard) < 2:
                await anyio.sleep(0.01)
        assert heard[0].startswith("not sent") and heard[1] == "sent", heard
        assert session.store.next_out == before + 1  # the good D's number only
        with anyio.fail_after(10):
            while not h.gateway.received("D"):
                await anyio.sleep(0.01)
        assert [m.fields.get(11) for m in h.gateway.received("D")] == ["GOOD1"]
