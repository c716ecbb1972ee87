"""The Optimus webhook receiver tried as an attacker or a broken broker would (issue 17 item 4):
malformed signature headers, signed but malformed bodies, oversized and slow requests, and a
captured delivery replayed to a restarted engine. Everything over real HTTP on 127.0.0.1 against
the adapter's own listener (the adapter connected to the Optimus sandbox, as in
tests/protocol/test_optimus_adapter.py)."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import stat
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.optimus import (  # the fixtures too: the same event loop, the same credentials
    SECRET,
    anyio_backend,  # noqa: F401
    credentials,  # noqa: F401
    signed,
    venue,
)

from adapters.optimus import codec
from engine.clock import NS_PER_S
from engine.venue.badinput import BAD_SIGNATURE, MALFORMED, NOT_JSON, REPLAYED, TOO_DEEP, TOO_LARGE

D = Decimal
TOLERANCE_S = 300



def alert(event_id: str = "EVT-H1") -> bytes:
    """A signed-able account alert: applying it only counts it, so 'applied' is easy to see."""
    return codec.dumps({"event": "margin.call", "event_id": event_id, "occurred_at": codec.format_ts(time.time_ns()),
                        "data": {"margin_level": D("0.5")}})


def execution_text(**replace: str) -> bytes:
    """An order.execution event as text, with some fields' JSON replaced verbatim."""
    fields = {"order_id": '"OPT-X"', "client_order_id": '"nobody"', "symbol": '"MEBL"', "side": '"buy"',
              "status": '"partially_filled"', "filled_quantity": "100", "remaining_quantity": "400",
              "price": "187.45", "average_price": "187.45", "execution_id": '"X1"', "last_fill_price": "187.45",
              "last_fill_quantity": "100"}
    fields.update(replace)
    data = ",".join(f'"{k}":{v}' for k, v in fields.items())
    return (f'{{"event":"order.execution","event_id":"EVT-B","occurred_at":"{codec.format_ts(time.time_ns())}",'
            f'"data":{{{data}}}}}').encode()


async def deliver(client: httpx.AsyncClient, url: str, body: bytes) -> httpx.Response:
    """POST ``body`` signed now (sign the very bytes sent: two alert() calls differ by their time)."""
    return await client.post(url, content=body, headers=signed(body))


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def valid_v1(body: bytes, ts_ms: int) -> str:
    return codec.sign_webhook(SECRET.encode(), ts_ms, body).split(",v1=")[1]


def malformed_headers(body: bytes) -> dict[str, bytes]:
    """Signature headers as raw bytes (h11 passes bytes 0x80-0xff through; we read them as latin-1)."""
    t = now_ms()
    sig = valid_v1(body, t).encode()
    return {
        "superscript digit t": b"t=\xb2,v1=" + sig,               # '²'.isdigit() but int('²') raises
        "arabic-indic digit t": "t=٣".encode() + b",v1=" + sig,   # UTF-8 bytes of U+0663
        "5000-digit t": b"t=" + b"9" * 5000 + b",v1=" + sig,       # int() refuses over 4,300 digits
        "non-ascii v1": b"t=%d,v1=" % t + b"\xe9" * 64,            # compare_digest refuses non-ASCII str
        "short v1": b"t=%d,v1=abc" % t,
        "missing v1": b"t=%d" % t,
        "missing t": b"v1=" + sig,
        "duplicated t": b"t=%d,t=%d,v1=" % (t - 10 * TOLERANCE_S * 1000, t) + sig,  # which t was signed?
        "no equals": b"t%d v1%s" % (t, sig),
        "empty": b"",
        "only commas": b",,,",
        "huge": b"t=%d," % t + b"v1=" + sig + b"," + b"x=" + b"y" * 4000,
    }


def no_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    for record in caplog.records:
        assert record.exc_info is None, record.getMessage()
        assert "Traceback" not in record.getMessage()
        assert "handler failed" not in record.getMessage()


def bad_input_lines(caplog: pytest.LogCaptureFixture, kind: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if f"dropped bad input ({kind})" in r.getMessage()]


HEADER_PARTS = st.lists(
    st.tuples(st.sampled_from(["t", "v1", "T", "x", "", " t"]), st.sampled_from(["=", "", "=="]),
              st.one_of(st.text(max_size=80), st.from_regex(r"[0-9a-f]{64}", fullmatch=True),
                        st.from_regex(r"[0-9]{1,20}", fullmatch=True),
                        st.text(alphabet="0123456789²³¹٣۳߃", max_size=9))),  # int() takes some, not others
    max_size=6,
)


@settings(max_examples=300, deadline=None)
@given(HEADER_PARTS)
def test_the_signature_check_raises_only_signature_error_for_any_header(parts: list[tuple[str, str, str]]) -> None:
    body = b"{}"
    header = ",".join(key + eq + value for key, eq, value in parts)
    with pytest.raises(codec.SignatureError):
        codec.verify_webhook([SECRET.encode()], header, body, time.time_ns(), TOLERANCE_S)


@pytest.mark.anyio
async def test_every_malformed_signature_header_is_answered_401_without_a_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    async with venue() as v:
        body = alert()
        cases = malformed_headers(body)
        async with httpx.AsyncClient() as client:
            answers = {name: (await client.post(v.adapter.webhook_url, content=body,
                                                headers=[(codec.SIGNATURE_HEADER.encode(), header)])).status_code
                       for name, header in cases.items()}
        assert answers == dict.fromkeys(cases, 401)
        assert v.adapter.counts["margin.call"] == 0  # none applied
        assert v.adapter.bad_input() == {BAD_SIGNATURE: len(cases)}
    no_tracebacks(caplog)


def malformed_bodies() -> dict[str, tuple[bytes, set[str]]]:
    """Signed bodies the codec must refuse, and the kind the codec gives each (issue 17 item 2)."""
    either = {MALFORMED}
    return {
        "not json": (b"\xff\xfe not json", {NOT_JSON}),
        "not an object": (b'[1, 2, 3]', either),
        "event not a string": (json.dumps({"event": ["x"], "event_id": "E", "occurred_at": "x"}).encode(), either),
        "side an object": (execution_text(side="{}"), either),
        "quantity a string": (execution_text(filled_quantity='"many"'), either),
        "huge sum (decimal.Overflow)": (execution_text(filled_quantity="9e999999", remaining_quantity="9e999999"),
                                        {"bad_number"}),
        "huge exponent (InvalidOperation)": (execution_text(last_fill_quantity="1e9999999999999999999"),
                                             {"bad_number"}),
        "fill quantity 9e999999": (execution_text(last_fill_quantity="9e999999"), {"bad_number"}),
        "negative fill quantity": (execution_text(last_fill_quantity="-5"), either),
        "zero fill price": (execution_text(last_fill_price="0"), either),
        "fill quantity 1e-999999": (execution_text(last_fill_quantity="1e-999999"), {"bad_number"}),
        "5000-digit integer": (execution_text(filled_quantity="9" * 5000), {"bad_number"}),
        "deep nesting": (b"[" * 100_000, {TOO_DEEP}),
        "deep object": (b'{"a":' * 50_000, {TOO_DEEP}),
        "event id over 128 chars": (alert("E" * 129), either),
    }


@pytest.mark.anyio
async def test_every_signed_but_malformed_body_is_answered_400_without_a_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    cases = malformed_bodies()
    async with venue() as v:
        async with httpx.AsyncClient() as client:
            answers = {name: (await client.post(v.adapter.webhook_url, content=body, headers=signed(body))).status_code
                       for name, (body, _) in cases.items()}
        assert answers == dict.fromkeys(cases, 400)
        counted = v.adapter.bad_input()
        assert sum(counted.values()) == len(cases)
        allowed = set().union(*(kinds for _, kinds in cases.values()))
        assert set(counted) <= allowed, counted
        assert v.adapter.counts["webhook_unknown_order"] == 0  # nothing reached the engine
    no_tracebacks(caplog)


@pytest.mark.anyio
async def test_a_burst_of_bad_requests_logs_one_line_per_kind_and_counts_them_all(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    async with venue() as v:
        garbage = b"not json at all"
        async with httpx.AsyncClient() as client:
            for i in range(100):
                body = alert(f"EVT-F{i}")
                forged = await client.post(v.adapter.webhook_url, content=body, headers=signed(body, "guessed"))
                junk = await client.post(v.adapter.webhook_url, content=garbage, headers=signed(garbage))
                assert (forged.status_code, junk.status_code) == (401, 400)
        counted = v.adapter.bad_input()
        assert counted[BAD_SIGNATURE] == 100
        [junk_kind] = set(counted) - {BAD_SIGNATURE}
        assert counted[junk_kind] == 100
        assert len(bad_input_lines(caplog, BAD_SIGNATURE)) == 1
        assert len(bad_input_lines(caplog, junk_kind)) == 1
    no_tracebacks(caplog)


@pytest.mark.anyio
async def test_an_oversized_body_is_refused_413_and_counted() -> None:
    async with venue() as v:  # the default limit, 1 MiB
        body = b'{"event":"margin.call","pad":"' + b"x" * (1 << 20) + b'"}'
        async with httpx.AsyncClient() as client:
            answer = await client.post(v.adapter.webhook_url, content=body, headers=signed(body))
            after = await deliver(client, v.adapter.webhook_url, alert())
        assert answer.status_code == 413
        assert after.status_code == 200  # the next delivery still gets through
        assert v.adapter.bad_input() == {TOO_LARGE: 1}


@pytest.mark.anyio
async def test_a_slow_sender_is_cut_off_and_does_not_hold_up_other_deliveries() -> None:
    async with venue(webhook_read_timeout_s=D("0.5")) as v:
        port = int(v.adapter.webhook_url.split(":")[2].split("/")[0])
        async with await anyio.connect_tcp("127.0.0.1", port) as slow:
            await slow.send(b"POST /webhook/visionmax HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n\r\n{")
            body = alert()
            async with httpx.AsyncClient() as client:
                answer = await client.post(v.adapter.webhook_url, content=body, headers=signed(body))
            assert answer.status_code == 200 and v.adapter.counts["margin.call"] == 1
            received = b""
            with anyio.fail_after(10):  # generous: the server's own deadline is 0.5 s
                while True:
                    try:
                        received += await slow.receive()
                    except (anyio.EndOfStream, anyio.BrokenResourceError):
                        break
        assert received.startswith(b"HTTP/1.1 408")
        assert v.adapter.bad_input() == {MALFORMED: 1}


@pytest.mark.anyio
async def test_connections_over_the_cap_are_closed_at_accept() -> None:
    async with venue(webhook_max_connections=2) as v:
        port = int(v.adapter.webhook_url.split(":")[2].split("/")[0])
        held = [await anyio.connect_tcp("127.0.0.1", port) for _ in range(2)]
        # the server accepts in order and counts a connection before its first await: no wait needed
        try:
            async with await anyio.connect_tcp("127.0.0.1", port) as third:
                await third.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                with anyio.fail_after(10), pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)):
                    await third.receive()
        finally:
            for stream in held:
                await stream.aclose()
        assert v.adapter.bad_input() == {TOO_LARGE: 1}
        body = alert()
        async with httpx.AsyncClient() as client:  # the slots are free again
            answer = await client.post(v.adapter.webhook_url, content=body, headers=signed(body))
        assert answer.status_code == 200


def with_state(path: Path) -> Any:
    return lambda adapter: adapter.set_state_path(path)


@pytest.mark.anyio
async def test_a_delivery_replayed_to_a_restarted_adapter_is_not_applied_again(tmp_path: Path) -> None:
    state = tmp_path / "engine.journal.venue-psx.sqlite"
    body = alert("EVT-REPLAY")
    captured = signed(body)  # what an attacker copied off the wire: valid for another ~300 s
    async with venue(before_connect=with_state(state)) as v:
        async with httpx.AsyncClient() as client:
            first = await client.post(v.adapter.webhook_url, content=body, headers=captured)
        assert first.status_code == 200 and v.adapter.counts["margin.call"] == 1
    assert stat.S_IMODE(os.stat(state).st_mode) == 0o600
    async with venue(before_connect=with_state(state)) as v:  # a new process: nothing in memory
        async with httpx.AsyncClient() as client:
            replay = await client.post(v.adapter.webhook_url, content=body, headers=captured)
            fresh = await deliver(client, v.adapter.webhook_url, alert("EVT-NEW"))
        # 200, not 409: the broker retries until a 2xx (OPT-5 at-least-once), so a genuine retry must
        # stop there too; what matters is that it is not applied
        assert replay.status_code == 200 and replay.json()["message"] == "duplicate"
        assert fresh.status_code == 200
        assert v.adapter.counts["margin.call"] == 1  # only the fresh one
        assert v.adapter.bad_input() == {REPLAYED: 1}


@pytest.mark.anyio
async def test_stored_delivery_ids_older_than_twice_the_window_are_pruned(tmp_path: Path) -> None:
    state = tmp_path / "engine.journal.venue-psx.sqlite"
    async with venue(before_connect=with_state(state)) as v:
        async with httpx.AsyncClient() as client:
            kept = await deliver(client, v.adapter.webhook_url, alert("EVT-KEEP"))
        assert kept.status_code == 200
    now = time.time_ns()
    with sqlite3.connect(state) as db:
        db.execute("INSERT INTO seen VALUES ('EVT-OLD', ?)", (now - (2 * TOLERANCE_S + 5) * NS_PER_S,))
        db.execute("INSERT INTO seen VALUES ('EVT-RECENT', ?)", (now - (2 * TOLERANCE_S - 60) * NS_PER_S,))
    db.close()
    async with venue(before_connect=with_state(state)) as v:
        async with httpx.AsyncClient() as client:
            recent = await deliver(client, v.adapter.webhook_url, alert("EVT-RECENT"))
        assert recent.json()["message"] == "duplicate"  # still inside twice the window: remembered
    db = sqlite3.connect(state)
    try:
        ids = {row[0] for row in db.execute("SELECT delivery_id FROM seen")}
    finally:
        db.close()
    assert ids == {"EVT-KEEP", "EVT-RECENT"}
