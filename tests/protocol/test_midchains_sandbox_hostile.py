"""Hostile input to the MidChains sandbox: what is not FIX is dropped and counted, what is FIX but
wrong is refused with a text naming the field; the session (or, for a frame that cannot be
delimited, the venue) goes on. Nothing crashes, no order is lost without an answer."""

from __future__ import annotations

import pytest
from support.midchains_client import FixClient, logged_on, new_order, running, text

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_junk_between_frames_is_skipped_and_the_session_goes_on() -> None:
    async with running() as venue, logged_on(venue) as client:
        client.send_raw(b"GET / HTTP/1.1\r\n\r\n\x00\xff" * 50)
        client.send("1", (112, "STILL-HERE"))
        answer = await client.expect("0")
        assert text(answer, 112) == "STILL-HERE"


def framed(body: bytes) -> bytes:
    """``body`` between a correct BodyLength and a correct CheckSum: only its fields are wrong."""
    head = b"8=FIX.4.2\x019=%d\x01" % len(body)
    return head + body + b"10=%03d\x01" % (sum(head + body) % 256)


@pytest.mark.parametrize("bad", [
    framed(b"35=1\x0112\xff=X\x01"),  # a tag that is not a number
    framed(b"34=2\x0135=1\x01"),  # MsgType not third
    framed(b"35=1\x01112=\x01"),  # an empty value
])
async def test_a_frame_that_is_not_tag_value_is_dropped_and_counted(bad: bytes) -> None:
    async with running() as venue, logged_on(venue) as client:
        client.send_raw(bad)
        client.send("1", (112, "AFTER"))
        answer = await client.expect("0")
        assert text(answer, 112) == "AFTER" and venue.counters["oe.garbled"] >= 1


async def test_a_value_that_is_not_utf8_is_dropped_and_counted() -> None:
    async with running() as venue, logged_on(venue) as client:
        frame = client.frame("1", (112, b"\xb2\xb3"))
        client.seq -= 1
        client.send_raw(frame)
        client.send("1", (112, "AFTER"))
        answer = await client.expect("0")
        assert text(answer, 112) == "AFTER" and venue.counters["oe.garbled"] == 1


async def test_an_impossible_body_length_closes_that_connection_only() -> None:
    async with running() as venue, logged_on(venue, md=True) as feed:
        client = await FixClient(venue.port).connect()
        await client.logon()
        client.send_raw(b"8=FIX.4.2\x019=9999999\x0135=D\x01")
        await client.closed()
        assert venue.counters["oe.garbled"] == 1
        feed.send("1", (112, "FEED-ALIVE"))
        assert text(await feed.expect("0"), 112) == "FEED-ALIVE"
        again = await FixClient(venue.port, seq=client.seq).connect()
        assert text(await again.logon(), 35) == "A"
        again.close()


@pytest.mark.parametrize(("field", "value", "why"), [
    (44, "1E+999999", "Price (44) must be positive"),
    (44, "NaN", "Price (44) must be positive"),
    (44, "150.123456789", "at most 8 decimals"),
    (44, "abc", "Price (44) 'abc' is not a number"),
    (38, "9" * 30, "at most 18 digits"),
    (38, "-1", "must be positive whole numbers"),
    (43229, "0", "must be positive whole numbers"),
    (54, "7", "Side (54) must be 1 or 2"),
    (40, "3", "OrdType (40) 3 is not supported"),
])
async def test_an_order_with_a_hostile_value_is_refused_naming_the_field(field: int, value: str, why: str) -> None:
    async with running() as venue, logged_on(venue) as client:
        fields = tuple((tag, value if tag == field else v) for tag, v in new_order("H1"))
        client.send("D", *fields)
        report = await client.expect("8")
        assert text(report, 39) == "8" and why in (text(report, 58) or ""), text(report, 58)
        assert venue.counters.get("oe.internal_errors", 0) == 0


async def test_a_garbage_expire_time_is_refused_naming_it() -> None:
    async with running() as venue, logged_on(venue) as client:
        client.send("D", *new_order("E1", tif="6", extra=((126, "tomorrow"),)))
        report = await client.expect("8")
        assert text(report, 39) == "8" and "ExpireTime 'tomorrow'" in (text(report, 58) or "")


async def test_a_time_only_expire_time_is_the_next_such_moment() -> None:
    """MID-6: 001 shows ExpireTime as a time of day (17:18:02.544)."""
    async with running() as venue, logged_on(venue) as client:
        client.send("D", *new_order("E2", tif="6", extra=((126, "17:18:02.544"),)))
        report = await client.expect("8")
        assert text(report, 39) == "0" and text(report, 126) == "17:18:02.544"


async def test_a_second_connection_of_a_logged_on_session_is_refused() -> None:
    async with running() as venue, logged_on(venue) as first:
        second = await FixClient(venue.port, seq=5).connect()
        second.send("A", (98, 0), (108, 30))
        answer = await second.recv()
        assert text(answer, 35) == "5" and text(answer, 58) == "session already logged on"
        first.send("1", (112, "FIRST"))
        assert text(await first.expect("0"), 112) == "FIRST"
        second.close()
