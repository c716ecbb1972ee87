"""Mutation fuzzer for the venue codecs: nothing a venue sends may raise anything but the codec's own
error, take more than 10 ms, or hang (issue 17).

Seeds are the documents' example messages as the tests keep them (tests/fixtures/: the PSX digest's
proposed frames, every Pulse response example wrapped as a JSON-RPC answer and as a notification,
the Optimus envelopes of section 12 plus the assumed OPT-n bodies, the MidChains FIX examples as
printed and re-framed; the JSON-level mutations leave FIX text alone, the byte-level ones do not),
and the hostile examples of issue 17 (``{"type":[]}``, 100,000-deep nesting, ``"ltp":1e9999999999999999999``,
``"timestamp":1e999999``, ``"result":NaN``, an unhashable ``direction`` ...), which also run once
verbatim. Each message is a seed after one to eight mutations: bit flips, byte insertions and
deletions, splices of other seeds, truncation, JSON values swapped for other types, hostile numbers
(huge exponents, 5,000 digits, NaN), deep nesting, unicode and invalid UTF-8, duplicate keys. Every
message goes to every decode entry point of the codec (see ``DRIVERS``).

Reported: messages run and per second; crashes (any exception other than the codec's error, or a
codec error whose ``kind`` is not an engine.venue.badinput kind) counted by exception type and entry
point, with the first sample of each saved as a reproducer; slow messages (CPU time of the thread
over ``--slow-ms``, confirmed by re-running the message on fresh decoders, so a descheduled process
is not blamed on the codec) with the slowest; hangs (the decoding process is watched from outside:
a message still running after ``--hang-seconds`` is killed, counted, saved, and the run goes on).
Exit status 1 if there was any crash, slow message or hang.

Messages are reproducible: message ``i`` of seed ``S`` is always the same bytes.

Run: ``python benchmarks/fuzz.py {psx_feed|pulse|optimus|midchains|all} N [--seed S]`` (a million messages
per codec take a few minutes on one core; run it under ``nice``).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import random
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from adapters.algo724 import codec as algo724  # noqa: E402
from adapters.algo724 import streams_codec as algo724_streams  # noqa: E402
from adapters.midchains import codec as midchains  # noqa: E402
from adapters.midchains import ws_auth as midchains_ws_auth  # noqa: E402
from adapters.midchains import ws_codec as midchains_ws  # noqa: E402
from adapters.optimus import codec as optimus  # noqa: E402
from adapters.psx_feed import codec as psx_feed  # noqa: E402
from adapters.pulse import codec as pulse  # noqa: E402
from engine.venue.badinput import KINDS, sample_of  # noqa: E402

FIXTURES = REPO / "tests" / "fixtures"
TS = "2024-01-01T04:30:00.000Z"
RECV_NS = 1_704_083_400 * 1_000_000_000
NOW_S = 1_704_083_400
CODECS = ("psx_feed", "pulse", "optimus", "midchains")

# --------------------------------------------------------------------------------------------
# Seeds: the documents' examples


def psx_feed_seeds() -> list[str]:
    """The digest's proposed frames (tests/fixtures/psx_feed/digest_proposal.txt, PSX-1) with its
    placeholders (``...``, ``a|b``) given concrete values, and an L2 book snapshot and delta."""
    seeds = []
    for line in (FIXTURES / "psx_feed" / "digest_proposal.txt").read_text(encoding="utf-8").splitlines():
        for example in re.findall(r"`(\{[^`]*\})`", line):
            text = example.replace('"...Z"', f'"{TS}"').replace("[[price,qty,orders]]", "[[187.45,1000,3]]")
            text = text.replace("[...]", '["MEBL"]').replace("true|false", "true")
            text = re.sub(r'"(\w+)\|[\w|]+"', r'"\1"', text)  # "add|modify|..." -> "add"
            text = re.sub(r'"ts":\.\.\.', f'"ts":"{TS}"', text)
            text = text.replace(":...", ":5").replace('"..."', '"OID-1"')
            seeds.append(text)
    seeds += [
        '{"type":"book","symbol":"MEBL","snapshot":true,"bids":[[187.45,1000,3],[187.4,200,1]],'
        '"asks":[[187.55,1500,2]],"seq":1}',
        '{"type":"book","symbol":"MEBL","snapshot":false,"bids":[[187.45,900,2]],"asks":[],"seq":2}',
        # 002's literal book: no ``snapshot``, every message the whole book (read as snapshot, then diffs)
        '{"type":"book","symbol":"MEBL","bids":[[187.45,1000,3],[187.4,200,1]],"asks":[[187.55,1500,2]],"seq":3}',
        '{"type":"book","symbol":"MEBL","bids":[[187.45,900,2]],"asks":[[187.55,1500,2],[187.6,10,1]],"seq":4}',
        '{"type":"error","code":"unknown_symbol","message":"no such symbol","symbols":["XYZ"]}',
        f'{{"type":"market_status","symbol":"MEBL","state":"HALT","reason":"volatility","ts":"{TS}"}}',
    ]
    for seed in seeds:
        json.loads(seed)  # a seed that is not JSON would test nothing
    return seeds


def pulse_seeds() -> list[str]:
    """Every documented response example (tests/fixtures/pulse) inside a JSON-RPC answer and inside
    a subscription notification, plus heartbeats and an error answer."""
    seeds = []
    for path in sorted((FIXTURES / "pulse").glob("*.response.json")):
        body = path.read_text(encoding="utf-8")
        seeds.append('{"jsonrpc":"2.0","id":7,"result":' + body + "}")
        channel = path.name.removesuffix(".response.json").replace("instrument_name", "BTC-PERPETUAL")
        seeds.append('{"jsonrpc":"2.0","method":"subscription","params":{"channel":"' + channel
                     + '","data":' + body + "}}")
    seeds += [
        '{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"test_request"}}',
        '{"jsonrpc":"2.0","id":9,"error":{"code":10,"message":"MMP frozen"}}',
        '{"jsonrpc":"2.0","method":"subscription","params":{"channel":"book.BTC-PERPETUAL.raw","data":'
        '{"type":"change","instrument_name":"BTC-PERPETUAL","change_id":5,"prev_change_id":4,'
        '"timestamp":1612137600000,"bids":[["new",50000.5,10],["delete",49999,0]],"asks":[[50001.5,3]]}}}',
        # the shape codec.decode_frame reads on its fast path (3-element levels, no unknown field)
        '{"jsonrpc":"2.0","method":"subscription","params":{"channel":"book.BTC-PERPETUAL.raw","data":'
        '{"asks":[["change",50001.5,3]],"bids":[["new",49974.5,10]],"change_id":3,"instrument_name":"BTC-PERPETUAL",'
        '"prev_change_id":2,"timestamp":1796605737704,"type":"change"}}}',
    ]
    return seeds


def _optimus_order() -> dict[str, Any]:
    """An order object as OPT-3 assumes it (the codec's ``decode_order`` docstring)."""
    return {
        "order_id": "OPT-1", "client_order_id": "mm-1", "symbol": "MEBL", "side": "buy", "order_type": "limit",
        "time_in_force": "day", "quantity": 1000, "price": Decimal("187.50"), "status": "partially_filled",
        "filled_quantity": 500, "remaining_quantity": 500, "average_price": Decimal("187.45"), "reject_code": None,
        "reason": "", "created_at": TS, "updated_at": TS,
        "executions": [{"execution_id": "EXE-1", "price": Decimal("187.45"), "quantity": 500, "executed_at": TS}],
    }


def optimus_seeds() -> list[str]:
    """The two envelopes of the document's section 12 (tests/fixtures/optimus/envelope.txt, ``{ ... }``
    made ``{}``) and, since the document defines no body, the bodies the codec assumes (OPT-n):
    an order, a listing, executions, holdings, summary, buying power, tokens, and a webhook per
    event of tests/fixtures/optimus/webhook_events.txt."""
    seeds = []
    for line in (FIXTURES / "optimus" / "envelope.txt").read_text(encoding="utf-8").splitlines()[1:]:
        seeds.append(line.partition(": ")[2].replace("{ ... }", "{}"))
    order = _optimus_order()
    bodies = [
        order,
        {"orders": [order, dict(order, order_id="OPT-2", status="open", filled_quantity=0, executions=[])]},
        {"executions": [{"execution_id": "EXE-1", "order_id": "OPT-1", "client_order_id": "mm-1", "symbol": "MEBL",
                         "side": "buy", "price": Decimal("187.45"), "quantity": 500, "executed_at": TS}]},
        {"holdings": [{"symbol": "MEBL", "quantity": 1000, "available_quantity": 1000,
                       "current_price": Decimal("187.50"), "market_value": 187500,
                       "change_percent": Decimal("3.88"), "average_cost": Decimal("180.5"),
                       "unrealized_pnl": 7000}], "last_updated": TS},
        {"total_value": 1000000, "todays_pnl": Decimal("1500.5"), "todays_pnl_percent": Decimal("0.15"),
         "total_pnl": 25000, "total_pnl_percent": Decimal("2.5"), "positions": 3, "sectors": 2,
         "currency": "PKR", "last_updated": TS},
        {"buying_power": Decimal("500000.00"), "cash_balance": 600000, "unsettled_funds": 100000, "currency": "PKR"},
        {"access_token": "a.b.c", "refresh_token": "d.e.f", "token_type": "Bearer", "expires_in": 3600,
         "refresh_expires_in": 604800},
    ]
    for body in bodies:
        seeds.append(dump({"status": "success", "code": 200, "data": body, "request_id": "req-1"}))
    seeds.append(dump({"status": "error", "code": 422, "message": "lot size",
                        "error_details": {"error_code": 2002}, "request_id": "req-2"}))
    events = [line.split(" - ")[0] for line in
              (FIXTURES / "optimus" / "webhook_events.txt").read_text(encoding="utf-8").splitlines()]
    for event in events:
        data = {k: v for k, v in order.items() if k != "executions"}
        data.update(execution_id="EXE-2", last_fill_price=Decimal("187.5"), last_fill_quantity=100)
        seeds.append(dump({"event": event, "event_id": f"evt-{event}", "occurred_at": TS, "data": data}))
    # 000's literal webhook: no event_id/occurred_at (the digest and receive time stand in)
    seeds.append(dump({"event": events[0], "data": {k: v for k, v in order.items() if k != "executions"}}))
    # a document-literal failure: section 13's code in "code", no error_details
    seeds.append(dump({"status": "error", "code": 2002, "message": "lot size", "request_id": "req-3"}))
    return seeds


def midchains_seeds() -> list[str]:
    """Every FIX example of the MidChains document (tests/fixtures/midchains), as printed (wrong
    BodyLength and CheckSum) and re-framed where it can be, as latin-1 text."""
    seeds = []
    for line in (FIXTURES / "midchains" / "fix_examples.txt").read_text(encoding="latin-1").splitlines():
        frame = line.encode("latin-1")
        seeds.append(line)
        try:
            seeds.append(midchains.reframe(frame).decode("latin-1"))
        except midchains.FixCodecError:
            pass  # a garbled example: kept as printed only
    return seeds


def hostile_seeds(codec: str) -> list[str | bytes]:
    """The hostile inputs issue 17 names, for ``codec``; each runs once verbatim, then is mutated."""
    deep = "[" * 100_000
    common: list[str | bytes] = [deep, deep + "]" * 100_000, '{"a":' * 50_000 + "1" + "}" * 50_000,
                                 b"\x00\xff\xfe", "\ud800", ""]
    if codec == "psx_feed":
        return [
            *common,
            '{"type":[]}', '{"type":{}}', '{"type":"tick","symbol":"MEBL","ltp":1e9999999999999999999}',
            '{"type":"tick","symbol":"MEBL","ltp":1e999999,"ltq":1,"volume":1e999999}',
            '{"type":"tick","symbol":"MEBL","ltp":NaN}', '{"type":"order","symbol":"MEBL","action":[],"order_id":"1"}',
            '{"type":"order","symbol":"MEBL","action":"add","order_id":"1","side":["B"],"price":1,"qty":1}',
            '{"type":"tick","symbol":"MEBL","ts":"' + "9" * 100_000 + '"}',
            '{"type":"book","symbol":"MEBL","snapshot":true,"bids":[[1e64,1e-64]],"asks":[[' + "9" * 4299 + ",1]]}",
        ]
    if codec == "midchains":
        soh = "\x01"
        return [
            *common, "8=FIX.4.2" + soh, "8=FIX.4.2" + soh + "9=" + "9" * 5000 + soh,
            "8=FIX.4.2" + soh + "9=-1" + soh + "35=0" + soh + "10=000" + soh,
            "8=FIX.4.2" + soh + "9=5" + soh + "35=0" + soh + "10=abc" + soh,
            "8=FIX.4.2" + soh + "9=5" + soh + "35=0" + soh + "58=" + "x" * 70_000 + soh + "10=000" + soh,
            ("8=FIX.4.2" + soh + "9=5" + soh + "35=0" + soh + "10=000" + soh) * 200,
            "=" * 1000, soh * 1000, "8=FIX.4.2" + soh + "35=0" + soh + "9=5" + soh + "10=000" + soh,
        ]
    if codec == "midchains_ws":
        order = '{"type":"order","refno":"R","security":"LTCUSD","side":"B","orderstatus":"Open",'
        return [
            *common, '{"type":[]}', '{"type":{}}', '{"result":[]}', '{"type":"book","security":"X","books":{}}',
            '{"type":"book","security":"X","books":[{"act":"U","id":' + "9" * 4299 + ',"side":"B","price":1,"qty":1}]}',
            order + '"qty":1e9999999999999999999}', order + '"qty":"1e999999","execqty":NaN}',
            order + '"updtime":"' + "9" * 100_000 + '"}', order + '"liveqty":[],"execqty":{}}',
            '{"type":"challenge","result":"OK","key":"' + "A" * 5000 + '"}',
            '{"type":"challenge","result":"OK","key":"MAMCAQE="}', '{"type":"login","result":"\\ud800"}',
            '{"type":"querytrade","result":"OK","total_rec":"99999999999999999999","data":[]}',
            '{"type":"querypos","result":"OK","total_rec":2,"data":[' + '{"security":"X","curpos":"1"},' * 101 + "{}]}",
            "{'tif': 'GTT', 'result': 'exceed order/sec limit', 'clientorderid': '" + "x" * 10_000 + "'}",
            *(text for text in midchains_ws_examples() if tree_of(text) is None),
        ]
    if codec == "algo724":
        order = '{"success":true,"errno":0,"data":{"tradeOrderId":"o","status":"FILLED","quantity":'
        return [
            *common, '{"success":[]}', '{"success":true,"errno":1e999,"data":{}}', '{"success":NaN}',
            order + '1e9999999999999999999}}', order + '"1e5"}}', order + '"+1"}}', order + '".5"}}',
            order + '"' + "9" * 5000 + '"}}', order + '"1","executions":[{"executionId":[]}]}}',
            '{"success":true,"errno":0,"data":{"accessToken":"a","refreshToken":"b","expiresIn":"9e999999"}}',
            '{"success":true,"errno":0,"data":[],"pagination":{"cursor":{},"hasMore":"yes"}}',
            '{"type":"DELTA","sequence":1e999,"bids":[["1","1"]],"asks":[]}',
            '{"type":"SNAPSHOT","sequence":1,"bids":[[1.5,"1"]],"asks":[["\u0661","1"]]}',
            '{"type":"ORDER","data":{"tradeOrderId":' + "[" * 100 + "]" * 100 + "}}",
        ]
    if codec == "pulse":
        trades = '{"jsonrpc":"2.0","method":"subscription","params":{"channel":"user.trades.X","data":'
        orders = '{"jsonrpc":"2.0","id":1,"result":'
        order = ('{"order_id":"a","order_state":"open","amount":1,"direction":%s,"time_in_force":%s,'
                 '"last_update_timestamp":%s}')
        return [
            *common,
            '{"jsonrpc":"2.0","id":7,"result":NaN}', '{"jsonrpc":"2.0","id":[],"error":{"code":1}}',
            trades + '{"trade_id":"t","price":1,"amount":1,"timestamp":1e999999}}}',
            trades + '{"trade_id":"t","price":1,"amount":1,"timestamp":1e9999999999999999999}}}',
            orders + order % ("[]", '"good_til_cancelled"', "1") + "}",
            orders + order % ('"buy"', "{}", "1") + "}",
            orders + order % ('"buy"', '"x"', "1e999999") + "}",
            orders + '{"order_id":"a","order_state":[],"amount":1}}',
            orders + '{"access_token":"t","expires_in":9e999999}}',
            orders + '{"access_token":"t","expires_in":"1e999999"}}',
            '{"jsonrpc":"2.0","method":"subscription","params":{"channel":"book.X.raw","data":{"type":"change",'
            '"instrument_name":"X","change_id":1,"bids":[[[],1,1]],"asks":[]}}}',
        ]
    order = dump({k: v for k, v in _optimus_order().items() if k != "quantity"})
    return [
        *common,
        '{"event":"order.confirmed","event_id":"e","occurred_at":"' + TS + '","data":'
        + order.replace('"remaining_quantity": 500', '"remaining_quantity": 9e999999').replace(
            '"filled_quantity": 500', '"filled_quantity": 9e999999') + "}",
        '{"status":"success","code":1e999,"data":{},"request_id":"r"}',
        '{"status":"success","code":200,"data":{"buying_power":NaN,"cash_balance":1,"unsettled_funds":1},'
        '"request_id":"r"}',
        '{"status":"success","code":200,"data":{"access_token":"a","refresh_token":"b","expires_in":'
        + "9" * 4000 + '},"request_id":"r"}',
    ]


SEEDS: dict[str, Callable[[], list[str]]] = {
    "psx_feed": psx_feed_seeds, "pulse": pulse_seeds, "optimus": optimus_seeds, "midchains": midchains_seeds,
}

# --------------------------------------------------------------------------------------------
# Drivers: one message to every decode entry point of a codec. The codec's own error (with a
# kind from engine.venue.badinput) is the only exception allowed; anything else propagates.


class BadKind(Exception):
    """A codec error whose ``kind`` is not one of engine.venue.badinput.KINDS."""


def _expected(exc: Exception) -> None:
    kind = getattr(exc, "kind", None)
    if kind not in KINDS:
        raise BadKind(f"{type(exc).__name__} with kind {kind!r}: {exc}") from exc


class PsxFeedDriver:
    """``FeedDecoder.decode`` at L1 and L2 on decoders that keep their state across messages (as
    one connection does), so sequence and book state are fuzzed too."""

    name = "psx_feed"
    error = psx_feed.Malformed

    def __init__(self) -> None:
        self.decoders = [psx_feed.FeedDecoder("PSX", "L2"), psx_feed.FeedDecoder("PSX", "L1")]
        self.count = 0

    def fresh(self) -> PsxFeedDriver:
        return PsxFeedDriver()

    def __call__(self, raw: str | bytes, where: list[str]) -> None:
        self.count += 1
        if self.count % 1000 == 0:
            for decoder in self.decoders:
                decoder.new_connection()
        for decoder in self.decoders:
            where[0] = f"FeedDecoder({decoder.level}).decode"
            try:
                decoder.decode(raw, RECV_NS)
            except psx_feed.Malformed as exc:
                _expected(exc)


_PULSE_PAYLOAD_DECODERS: list[tuple[str, Callable[[Any], Any]]] = [
    ("decode_orders", pulse.decode_orders), ("decode_order", pulse.decode_order),
    ("decode_trades", pulse.decode_trades), ("decode_trade", pulse.decode_trade),
    ("decode_book", pulse.decode_book), ("decode_quote", pulse.decode_quote),
    ("decode_mmp_trigger", pulse.decode_mmp_trigger), ("decode_heartbeat_trade", pulse.decode_heartbeat_trade),
    ("decode_login", lambda payload: pulse.decode_login(payload, NOW_S)),
    ("decode_order_book", pulse.decode_order_book),
    ("decode_trade_page", lambda payload: pulse.decode_trade_page(payload)[0]),
    # the summary and the positions come in two answers: each payload as either, the other documented
    ("decode_account(summary)", lambda payload: pulse.decode_account(payload, [], "BTC")),
    ("decode_account(positions)", lambda payload: pulse.decode_account({"equity": 1}, payload, "BTC")),
]


class PulseDriver:
    """``loads``, ``decode_message``, ``decode_frame``, then every payload decoder on the answer's ``result`` or the
    notification's ``data`` (and on the whole frame when it is no JSON-RPC message), and what the
    adapter reads off their results (``status``, ``to_venue_order``, ``reject_code``)."""

    name = "pulse"
    error = pulse.CodecError

    def fresh(self) -> PulseDriver:
        return self

    def __call__(self, raw: str | bytes, where: list[str]) -> None:
        where[0] = "loads"
        try:
            whole = pulse.loads(raw)
        except pulse.CodecError as exc:
            _expected(exc)
            whole = None
        where[0] = "decode_message"
        payload = whole
        try:
            msg = pulse.decode_message(raw)
        except pulse.CodecError as exc:
            _expected(exc)
        else:
            if isinstance(msg, pulse.Response):
                payload = msg.result
            elif isinstance(msg, pulse.Notification):
                payload = msg.data
            elif isinstance(msg, pulse.RpcError):
                where[0] = "describe_error"
                pulse.reject_code(msg.code)
                pulse.describe_error(msg)
        where[0] = "decode_frame"  # the adapter's entry point: book notifications' fast path
        try:
            frame = pulse.decode_frame(raw)
        except pulse.CodecError as exc:
            _expected(exc)
        else:
            if isinstance(frame, pulse.Notification) and isinstance(frame.data, pulse.BookMsg):
                pulse.decode_book(frame.data)
        for name, decode in _PULSE_PAYLOAD_DECODERS:
            where[0] = name
            try:
                result = decode(payload)
            except pulse.CodecError as exc:
                _expected(exc)
                continue
            for item in result if isinstance(result, list) else [result]:
                if isinstance(item, pulse.PulseOrder):
                    item.to_venue_order("pulse")


class OptimusDriver:
    """``loads``, ``parse_envelope`` at 200/400/503 and every ``decode_*`` on a success's data,
    ``decode_webhook`` and the event's ``order()`` / ``execution()``, and what the adapter reads off
    the results (``status``, ``to_venue_order``, ``to_fill``)."""

    name = "optimus"
    error = optimus.CodecError
    DATA_DECODERS: ClassVar[list[tuple[str, Callable[[Any], Any]]]] = [
        ("decode_order", optimus.decode_order), ("decode_orders", optimus.decode_orders),
        ("decode_executions", optimus.decode_executions), ("decode_holdings", optimus.decode_holdings),
        ("decode_summary", optimus.decode_summary), ("decode_buying_power", optimus.decode_buying_power),
        ("decode_tokens", lambda data: optimus.decode_tokens(data, RECV_NS)),
    ]

    def fresh(self) -> OptimusDriver:
        return self

    def __call__(self, raw: str | bytes, where: list[str]) -> None:
        body = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
        where[0] = "loads"
        try:
            whole = optimus.loads(body)
        except optimus.CodecError as exc:
            _expected(exc)
            whole = None
        payloads = [whole]
        for status in (200, 400, 503):
            where[0] = f"parse_envelope({status})"
            try:
                result = optimus.parse_envelope(status, body)
            except optimus.CodecError as exc:
                _expected(exc)
                continue
            if isinstance(result, optimus.Success):
                payloads.append(result.data)
            else:
                result.engine_code  # noqa: B018
                result.describe()
                optimus.classify_order_failure(result)
        for payload in payloads:
            for name, decode in self.DATA_DECODERS:
                where[0] = name
                try:
                    decoded = decode(payload)
                except optimus.CodecError as exc:
                    _expected(exc)
                    continue
                for item in decoded if isinstance(decoded, list) else [decoded]:
                    _use_optimus(item)
        # as the receiver reads it (receive time given: event_id/occurred_at may be absent) and strictly
        for received in (RECV_NS, None):
            where[0] = f"decode_webhook(received_ns={received})"
            try:
                event = optimus.decode_webhook(body, received)
            except optimus.CodecError as exc:
                _expected(exc)
                continue
            for name in ("order", "execution"):
                where[0] = f"WebhookEvent.{name}"
                try:
                    _use_optimus(getattr(event, name)())
                except optimus.CodecError as exc:
                    _expected(exc)


def _use_optimus(item: Any) -> None:
    if isinstance(item, optimus.OrderView):
        item.status  # noqa: B018
        item.to_venue_order("optimus")
        for execution in item.executions:
            execution.to_fill("optimus")
    elif isinstance(item, optimus.Execution):
        item.to_fill("optimus")


class MidchainsDriver:
    """The FIX codec: one ``FrameReader`` fed the message as a stream (kept across messages until it
    breaks, as one connection's), every frame it yields read as a message; ``decode`` and
    ``reframe`` on the message alone."""

    name = "midchains"
    error = midchains.FixCodecError

    def __init__(self) -> None:
        self.reader = midchains.FrameReader()

    def fresh(self) -> MidchainsDriver:
        return MidchainsDriver()

    def __call__(self, raw: str | bytes, where: list[str]) -> None:
        data = raw if isinstance(raw, bytes) else raw.encode("utf-8", "surrogatepass")
        where[0] = "FrameReader"
        try:
            self.reader.feed(data)
            while (message := self.reader.next_message()) is not None:
                message.msg_type  # noqa: B018
                message.body()
                message.loggable()
        except midchains.FixCodecError as exc:
            _expected(exc)
            self.reader = midchains.FrameReader()  # a broken stream ends its connection
        for name, entry in (("decode", midchains.decode), ("reframe", midchains.reframe)):
            where[0] = name
            try:
                entry(data)
            except midchains.FixCodecError as exc:
                _expected(exc)


DRIVERS: dict[str, Callable[[], Any]] = {
    "psx_feed": PsxFeedDriver, "pulse": PulseDriver, "optimus": OptimusDriver, "midchains": MidchainsDriver,
}


def midchains_ws_examples() -> list[str]:
    """The WebSocket examples of the MidChains document as printed (tests/fixtures/midchains/ws_examples.*)."""
    return [path.read_text(encoding="utf-8") for path in sorted((FIXTURES / "midchains").glob("ws_examples.*"))]


def midchains_ws_seeds() -> list[str]:
    """Every WebSocket example of the MidChains document that is JSON, as printed, each object of a
    two-object sample line alone, and each as the codec writes it back (compact). The invalid
    examples as printed (trailing commas, a Python repr) are hostile seeds: each runs verbatim."""
    seeds = []
    decoder = json.JSONDecoder()
    for text in midchains_ws_examples():
        if tree_of(text) is not None:
            seeds.append(text)
        position = 0
        while text[position:].strip():
            try:
                _, end = decoder.raw_decode(text, len(text) - len(text[position:].lstrip()))
            except ValueError:
                break
            seeds.append(text[position:end].strip())
            position = end
    for text in list(seeds):
        for decode in (midchains_ws.decode_message, midchains_ws.decode_request):
            try:
                seeds.append(midchains_ws.encode(decode(text)))
            except midchains_ws.WsCodecError:
                pass
    return sorted(set(seeds))


class MidchainsWsDriver:
    """The WebSocket codec: ``decode_message`` and ``decode_request``, then what the adapter and the
    sandbox do with a result (``answer_key``/``request_key``, the reject code of its ``result``,
    ``order_status``, ``RecordAssembler.add``, ``encode`` and read back, the login machine on a
    challenge or login answer: the RSA step on whatever key arrived), and ``recognise_reject`` on
    what was refused."""

    name = "midchains_ws"
    error = midchains_ws.WsCodecError

    def __init__(self) -> None:
        self.rejects = midchains_ws.RejectCodes()

    def fresh(self) -> MidchainsWsDriver:
        return MidchainsWsDriver()

    def __call__(self, raw: str | bytes, where: list[str]) -> None:
        for name, decode in (("decode_message", midchains_ws.decode_message),
                             ("decode_request", midchains_ws.decode_request)):
            where[0] = name
            try:
                message = decode(raw)
            except midchains_ws.WsCodecError as exc:
                _expected(exc)
                where[0] = "recognise_reject"
                midchains_ws.recognise_reject(raw)
                continue
            where[0] = f"{name} -> {type(message).__name__}"
            self._use(message, decode is midchains_ws.decode_message)

    def _use(self, message: Any, answer: bool) -> None:
        if answer:
            midchains_ws.answer_key(message)
        else:
            midchains_ws.request_key(message)
            if isinstance(message, midchains_ws.AddOrder) and message.problem() is not None:
                self.rejects.code(message.problem() or "")
                return
        for text in (getattr(message, "result", None), getattr(message, "text", None)):
            if isinstance(text, str):
                self.rejects.code(text)
        records = getattr(message, "records", ())
        for item in (message, *records, getattr(message, "order", None)):
            if isinstance(item, midchains_ws.OrderMsg):
                midchains_ws.order_status(item)
                item.leaves_qty  # noqa: B018
                item.to_venue_order("midchains")
        for item in (message, *records, *getattr(message, "entries", ())):
            if isinstance(item, midchains_ws.SaleMsg):
                item.to_fill("midchains")
            elif isinstance(item, midchains_ws.TradeMsg):
                item.to_trade("midchains")
            elif isinstance(item, midchains_ws.SymbolStatus):
                item.to_status("midchains", RECV_NS)
        if isinstance(message, midchains_ws.RecordsAnswer):
            try:
                midchains_ws.RecordAssembler(message.type).add(message)
            except midchains_ws.WsCodecError as exc:
                _expected(exc)
        if isinstance(message, (midchains_ws.ChallengeAnswer, midchains_ws.LoginAnswer)):
            machine = midchains_ws_auth.LoginMachine("u", lambda: "PASSWORD")
            machine.connected(0)
            if isinstance(message, midchains_ws.LoginAnswer):
                machine.state = midchains_ws_auth.LoginState.LOGIN_SENT
            machine.receive(message, 1)
        again = midchains_ws.encode(message)
        back = (midchains_ws.decode_message if answer else midchains_ws.decode_request)(again)
        if answer and back != message:
            raise AssertionError(f"{type(message).__name__} does not read back as written: {again[:200]}")


CODECS = (*CODECS, "midchains_ws")
SEEDS["midchains_ws"] = midchains_ws_seeds
DRIVERS["midchains_ws"] = MidchainsWsDriver


# --------------------------------------------------------------------------------------------
# Algo724: the REST codec and the Centrifugo payload codec (issue 25)

ALGO724_ACCOUNT = "14f773c5-2079-41e0-90e4-340a7b4d3391"
ALGO724_INSTRUMENT = "BINANCE:BTC/USDT"
_REDOC_MARKER = re.compile(r"(^|\{|\[|, )- ", re.MULTILINE)


def _redoc_values(text: str) -> list[Any]:
    """The JSON values of one Redoc excerpt (document 003 prints its examples with "- " list
    markers), in order, as tests/protocol/test_algo724_codec.py reads them."""
    text = _REDOC_MARKER.sub(r"\1", text)
    decoder = json.JSONDecoder(parse_float=Decimal)
    values, at = [], text.find("{")
    while 0 <= at < len(text):
        try:
            value, end = decoder.raw_decode(text, at)
        except json.JSONDecodeError:
            break
        values.append(value)
        at = end
        if text[at:at + 1] not in ("{", "["):
            break
    return values


def algo724_seeds() -> list[str]:
    """Every example body of document 003 (tests/fixtures/algo724/*.redoc.txt) as JSON, and the
    stream payloads the project decided (ALG-3) around the document's Order object."""
    seeds: list[str] = []
    orders: list[Any] = []
    for path in sorted((FIXTURES / "algo724").glob("*.redoc.txt")):
        for value in _redoc_values(path.read_text(encoding="utf-8")):
            seeds.append(json.dumps(value, default=str))
            data = value.get("data") if isinstance(value, dict) else None
            orders += [item for item in (data if isinstance(data, list) else [data]) if isinstance(item, dict)
                       and "tradeOrderId" in item]
    D = Decimal
    book = algo724_streams.book_payload(ALGO724_INSTRUMENT, "BINANCE", 7, False, ((D("50000.5"), D("1.25")),),
                                        ((D("50001"), D("0")),), 1_704_083_400_000)
    seeds.append(json.dumps(book))
    seeds.append(json.dumps(algo724_streams.trade_payload(ALGO724_INSTRUMENT, "BINANCE", "t-1", D("50000.5"),
                                                          D("0.01"), "BUY", 1_704_083_400_000)))
    for order in orders[:2]:
        seeds.append(json.dumps(algo724_streams.order_payload(order), default=str))
    return seeds


class Algo724Driver:
    """REST: ``loads``, ``parse_envelope`` at 200/201/400/422/503, and on a success's data
    ``decode_order`` / ``decode_orders`` / ``decode_session`` / ``decode_page`` and what the adapter
    reads off an order (``to_venue_order``, each execution's fill and fee). Streams: ``decode_text``
    on each of the three channels, and the book snapshot a subscribe reply carries."""

    name = "algo724"
    error = algo724.CodecError
    CHANNELS = (algo724_streams.account_channel(ALGO724_ACCOUNT), algo724_streams.book_channel(ALGO724_INSTRUMENT),
                algo724_streams.trade_channel(ALGO724_INSTRUMENT))

    def fresh(self) -> Algo724Driver:
        return self

    def __call__(self, raw: str | bytes, where: list[str]) -> None:
        body = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
        datas: list[Any] = []
        where[0] = "loads"
        try:
            whole = algo724.loads(body)
            datas.append(whole)
        except algo724.CodecError as exc:
            _expected(exc)
            whole = None
        for status in (200, 201, 400, 422, 503):
            where[0] = f"parse_envelope({status})"
            try:
                result = algo724.parse_envelope(status, body)
            except algo724.CodecError as exc:
                _expected(exc)
                continue
            if isinstance(result, algo724.Success):
                datas.append(result.data)
                where[0] = "decode_page"
                try:
                    algo724.decode_page(result.pagination)
                except algo724.CodecError as exc:
                    _expected(exc)
            else:
                result.describe()
                algo724.engine_code(result)
                algo724.classify_failure(result)
        for data in datas:
            for name, decode in (("decode_order", algo724.decode_order), ("decode_orders", algo724.decode_orders),
                                 ("decode_session", lambda value: algo724.decode_session(value, RECV_NS))):
                where[0] = name
                try:
                    decoded = decode(data)
                except algo724.CodecError as exc:
                    _expected(exc)
                    continue
                for item in decoded if isinstance(decoded, list) else [decoded]:
                    if isinstance(item, algo724.OrderView):
                        item.to_venue_order("algo724", "c-1", "BTC/USDT")
                        for execution in item.executions:
                            item.fill(execution, "algo724", "c-1", "BTC/USDT")
                            execution.fee_in("BTC", "USDT")
        for channel in self.CHANNELS:
            where[0] = f"streams.decode_text({channel.split(':')[0]})"
            try:
                algo724_streams.decode_text(channel, body)
            except algo724_streams.StreamCodecError as exc:
                _expected(exc)
        if whole is not None:
            where[0] = "streams.decode_book_snapshot"
            try:
                algo724_streams.decode_book_snapshot(ALGO724_INSTRUMENT, whole)
            except algo724_streams.StreamCodecError as exc:
                _expected(exc)


CODECS = (*CODECS, "algo724")
SEEDS["algo724"] = algo724_seeds
DRIVERS["algo724"] = Algo724Driver

# --------------------------------------------------------------------------------------------
# Mutations


class Raw(str):
    """JSON text to emit as is (a number no encoder would write: NaN, 1e999999, 5,000 digits)."""


class Dup:
    """An object emitted with one key twice."""

    def __init__(self, pairs: list[tuple[str, Any]]) -> None:
        self.pairs = pairs


def dump(value: Any) -> str:
    """JSON text of a seed value; Decimals as written, ``Raw`` verbatim, ``Dup`` with its repeated key."""
    if isinstance(value, Raw):
        return str(value)
    if isinstance(value, Dup):
        return "{" + ", ".join(f"{json.dumps(k)}: {dump(v)}" for k, v in value.pairs) + "}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k, ensure_ascii=False)}: {dump(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(dump(v) for v in value) + "]"
    if isinstance(value, Decimal):
        return str(value)
    return json.dumps(value, ensure_ascii=False)


HOSTILE_NUMBERS = [
    "NaN", "Infinity", "-Infinity", "1e9999999999999999999", "1e999999", "-1e999999", "1e-999999", "9" * 5000,
    "9" * 4299, "0." + "0" * 3000 + "1", "1" * 70 + ".5", "1E+64", "1e65", "-0", "0e-999", "0e999999",
    "123456789012345678901234567890", "1e18", "-1e18", "999999999999999999", "1e14", "99999999999999.9",
    "0.1", "1", "0", "-1", "2e-7", "1.0000000000000000000000000001",
]
HOSTILE_VALUES: list[Any] = [
    [], {}, None, True, False, "", "x" * 10_000, "\ud800", "\u0000", "\u202e", "😀" * 50, ["buy"], {"a": 1},
    [[1]], "NaN", "1e999999", "Infinity", "-1", "٣", "１２", " 1 ", "1_000", "0x10", TS, "2024-13-45T99:99:99Z",
    "9999-12-31T23:59:59.999999999Z", "0001-01-01T00:00:00Z", "2024-01-01T04:30:00.000+99:99",
    "2024-01-01T04:30:00." + "9" * 5000 + "Z",
] + [Raw(n) for n in HOSTILE_NUMBERS]
INTERESTING = '[]{}",:\\0123456789eE.-+ntfalsu\x00\x7f'
UNICODE = ["\u00e9", "\u20ac", "\U0001f600", "\ufeff", "\u2028", "\\ud800", "\\udfff", "\\u0000", "\udcff", "\u0301"]
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")


def tree_of(text: str) -> Any:
    """A message's JSON values with every number kept as its text (``Raw``), or None if it is not
    JSON (any more). The fuzzer's own parse must survive what it feeds the codecs."""
    try:
        return json.loads(text, parse_float=Raw, parse_int=Raw, parse_constant=Raw)
    except (ValueError, RecursionError, ArithmeticError):
        return None


def nodes_of(value: Any, out: list[tuple[Any, Any]]) -> None:
    """Every (container, key) in a parsed seed, iteratively (a seed is shallow, but be safe)."""
    stack = [value]
    while stack and len(out) < 500:
        node = stack.pop()
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for key, child in items:
            out.append((node, key))
            if isinstance(child, (dict, list)):
                stack.append(child)


class Mutator:
    """Builds message ``i`` from the seeds, deterministically from ``(seed, i)``."""

    def __init__(self, seeds: list[str], hostile: list[str | bytes], seed: int) -> None:
        self.seeds = seeds
        self.hostile = [h for h in hostile if isinstance(h, str) and len(h) < 20_000]
        self.seed = seed
        self.parsed = [tree_of(s) for s in seeds]
        self.ops: list[Callable[[str, random.Random], str]] = [
            self.flip, self.insert, self.delete, self.duplicate, self.splice, self.truncate, self.number,
            self.value, self.value, self.value, self.dup_key, self.nest, self.unicode, self.swap,
        ]

    def message(self, index: int) -> str | bytes:
        rng = random.Random(self.seed * 1_000_003 + index)
        pick = rng.random()
        if pick < 0.03 and self.hostile:
            text = rng.choice(self.hostile)
        else:
            text = rng.choice(self.seeds)
        for _ in range(rng.choice((1, 1, 1, 2, 2, 3, 4, 8))):
            text = rng.choice(self.ops)(text, rng)
        if rng.random() < 0.05:  # raw bytes, sometimes not UTF-8
            data = bytearray(text.encode("utf-8", "surrogatepass"))
            for _ in range(rng.randint(0, 3)):
                data.insert(rng.randint(0, len(data)), rng.choice((0x80, 0xC0, 0xFF, 0xED, 0xF4, 0x00)))
            return bytes(data)
        return text

    # ---- text level
    @staticmethod
    def flip(text: str, rng: random.Random) -> str:
        if not text:
            return text
        i = rng.randrange(len(text))
        code = ord(text[i]) ^ (1 << rng.randrange(8))
        return text[:i] + chr(code) + text[i + 1:]

    @staticmethod
    def insert(text: str, rng: random.Random) -> str:
        i = rng.randint(0, len(text))
        return text[:i] + "".join(rng.choice(INTERESTING) for _ in range(rng.randint(1, 4))) + text[i:]

    @staticmethod
    def delete(text: str, rng: random.Random) -> str:
        if not text:
            return text
        i = rng.randrange(len(text))
        return text[:i] + text[i + rng.randint(1, 8):]

    @staticmethod
    def duplicate(text: str, rng: random.Random) -> str:
        if not text:
            return text
        i = rng.randrange(len(text))
        j = min(len(text), i + rng.randint(1, 40))
        return text[:j] + text[i:j] * rng.randint(1, 4) + text[j:]

    def splice(self, text: str, rng: random.Random) -> str:
        other = rng.choice(self.seeds)
        i, j = sorted(rng.randint(0, len(other)) for _ in range(2))
        k = rng.randint(0, len(text))
        return text[:k] + other[i:j] + text[k:]

    @staticmethod
    def truncate(text: str, rng: random.Random) -> str:
        return text[: rng.randint(0, len(text))]

    @staticmethod
    def number(text: str, rng: random.Random) -> str:
        spots = list(_NUMBER.finditer(text))
        if not spots:
            return text
        spot = rng.choice(spots)
        return text[: spot.start()] + rng.choice(HOSTILE_NUMBERS) + text[spot.end():]

    @staticmethod
    def unicode(text: str, rng: random.Random) -> str:
        i = rng.randint(0, len(text))
        return text[:i] + rng.choice(UNICODE) + text[i:]

    @staticmethod
    def nest(text: str, rng: random.Random) -> str:
        depth = rng.choice((2, 10, 63, 64, 65, 100, 1000, 5000))
        i, j = sorted(rng.randint(0, len(text)) for _ in range(2))
        opener = rng.choice(("[", '{"a":'))
        closer = "]" if opener == "[" else "}"
        return text[:i] + opener * depth + text[i:j] + closer * depth * rng.randint(0, 1) + text[j:]

    # ---- JSON level (on a fresh parse of the text, which may already be broken: then no change)

    def value(self, text: str, rng: random.Random) -> str:
        tree = tree_of(text)
        nodes: list[tuple[Any, Any]] = []
        nodes_of(tree, nodes)
        if not nodes:
            return text
        container, key = rng.choice(nodes)
        container[key] = rng.choice(HOSTILE_VALUES) if rng.random() < 0.8 else self._other_value(rng)
        return dump(tree)

    def _other_value(self, rng: random.Random) -> Any:
        nodes: list[tuple[Any, Any]] = []
        nodes_of(rng.choice(self.parsed), nodes)
        if not nodes:
            return None
        container, key = rng.choice(nodes)
        return tree_of(dump(container[key]))  # a copy: seeds stay intact

    def swap(self, text: str, rng: random.Random) -> str:
        """A value replaced by one of another type from the documents (a list where a string was)."""
        tree = tree_of(text)
        nodes: list[tuple[Any, Any]] = []
        nodes_of(tree, nodes)
        if not nodes:
            return text
        container, key = rng.choice(nodes)
        container[key] = self._other_value(rng)
        return dump(tree)

    def dup_key(self, text: str, rng: random.Random) -> str:
        tree = tree_of(text)
        nodes: list[tuple[Any, Any]] = []
        nodes_of(tree, nodes)
        dicts = [c for c, _ in nodes if isinstance(c, dict) and c]
        if isinstance(tree, dict) and tree:
            dicts.append(tree)
        if not dicts:
            return text
        target = rng.choice(dicts)
        pairs = list(target.items())
        name, _ = rng.choice(pairs)
        pairs.insert(rng.randint(0, len(pairs)), (name, rng.choice(HOSTILE_VALUES)))
        dup = Dup(pairs)
        if target is tree:
            return dump(dup)
        for container, key in nodes:
            if container[key] is target:
                container[key] = dup
                break
        return dump(tree)


# --------------------------------------------------------------------------------------------
# The run


class Report:
    def __init__(self) -> None:
        self.messages = 0
        self.crashes: Counter[str] = Counter()
        self.crash_samples: dict[str, str] = {}
        self.slow: list[tuple[float, int, str]] = []  # confirmed slow: (ms, index, sample)
        self.unconfirmed: list[tuple[float, float]] = []  # (first run, re-run) ms of outliers not reproduced
        self.hangs: list[tuple[int, str]] = []
        self.slowest = (0.0, -1, "")


def _cpu_ms(drive: Callable[[str | bytes, list[str]], None], raw: str | bytes, where: list[str]) -> float:
    start = time.thread_time_ns()
    drive(raw, where)
    return (time.thread_time_ns() - start) / 1e6


def _worker(codec: str, seed: int, start: int, stop: int, slow_ms: float, progress: Any, out: Any,
            run_hostile: bool) -> None:
    """Runs messages ``start..stop`` in a child process; ``progress`` is the index being run (the
    parent's watchdog reads it), ``out`` a queue of events and per-chunk counts."""
    driver = DRIVERS[codec]()
    mutator = Mutator(SEEDS[codec](), hostile_seeds(codec), seed)
    where = [""]
    done = 0
    slowest = (0.0, -1, "")
    messages: Iterator[tuple[int, str | bytes]]
    hostile = [(-1 - i, h) for i, h in enumerate(hostile_seeds(codec))] if run_hostile else []
    messages = iter(hostile + [(i, b"") for i in range(start, stop)])
    for index, raw in messages:
        progress.value = index
        if index >= 0:
            raw = mutator.message(index)
        try:
            ms = _cpu_ms(driver, raw, where)
        except Exception as exc:  # anything but the codec's own error is a crash
            key = f"{type(exc).__name__} in {where[0]}"
            out.put(("crash", key, index, raw, f"{type(exc).__name__}: {str(exc)[:200]}"))
            continue
        done += 1
        if ms > slow_ms:  # confirm on fresh decoders: a stalled machine (page reclaim, a neighbour) is not the codec
            again = min(_cpu_ms(driver.fresh(), raw, where) for _ in range(2))
            if again > slow_ms:
                out.put(("slow", again, index, raw))
            else:
                out.put(("unconfirmed", ms, again))
            ms = min(ms, again)  # the message's cost: what it takes when it is run again
        if ms > slowest[0]:
            slowest = (ms, index, sample_of(raw, 80))
        if done % 5000 == 0:
            out.put(("count", done, slowest))
            done = 0
            slowest = (0.0, -1, "")
    out.put(("count", done, slowest))
    out.put(("end",))


def run(codec: str, n: int, seed: int, slow_ms: float, hang_s: float, crash_dir: Path) -> tuple[Report, float]:
    """Fuzz one codec with ``n`` mutated messages (plus its hostile seeds verbatim); a child process
    decodes and this one watches it: a message that runs past ``hang_s`` is a hang, the child is
    killed and a new one carries on from the next message."""
    ctx = mp.get_context("fork")
    report = Report()
    start, first = 0, True
    began = time.perf_counter()
    while True:
        progress = ctx.Value("q", -10**9, lock=False)
        out = ctx.Queue()
        child = ctx.Process(target=_worker, args=(codec, seed, start, n, slow_ms, progress, out, first), daemon=True)
        child.start()
        first = False
        last_index, last_change = progress.value, time.monotonic()
        while True:
            if _drain(out, report, codec, crash_dir, timeout=0.2):
                child.join()
                return report, time.perf_counter() - began
            index = progress.value
            if index != last_index:
                last_index, last_change = index, time.monotonic()
                continue
            hung = time.monotonic() - last_change > hang_s
            if not hung and child.is_alive():
                continue
            if child.is_alive():
                child.kill()
            child.join()
            _drain(out, report, codec, crash_dir, timeout=0.5)
            raw = _regenerate(codec, seed, index)
            report.messages += 1
            if hung:
                report.hangs.append((index, _save(crash_dir, codec, "hang", index, raw)))
            else:  # died without a word (a segfault, an abort)
                key = f"process died (exit {child.exitcode})"
                report.crashes[key] += 1
                report.crash_samples.setdefault(key, _save(crash_dir, codec, "died", index, raw))
            start = max(start, index + 1)
            break


def _regenerate(codec: str, seed: int, index: int) -> str | bytes:
    if index < 0:
        return hostile_seeds(codec)[-1 - index]
    return Mutator(SEEDS[codec](), hostile_seeds(codec), seed).message(index)


def _drain(out: Any, report: Report, codec: str, crash_dir: Path, timeout: float) -> bool:
    """Apply the child's events; True once it said it is done."""
    try:
        event = out.get(timeout=timeout)
    except Exception:  # queue.Empty
        return False
    while True:
        tag = event[0]
        if tag == "end":
            return True
        if tag == "count":
            report.messages += event[1]
            if event[2][0] > report.slowest[0]:
                report.slowest = event[2]
        elif tag == "crash":
            _, key, index, raw, text = event
            report.messages += 1
            report.crashes[key] += 1
            if key not in report.crash_samples:
                path = _save(crash_dir, codec, key.split()[0], index, raw)
                report.crash_samples[key] = f"{text} | sample: {sample_of(raw, 120)} | saved: {path}"
        elif tag == "slow":
            _, ms, index, raw = event
            report.slow.append((ms, index, _save(crash_dir, codec, "slow", index, raw)))
        elif tag == "unconfirmed":
            report.unconfirmed.append((event[1], event[2]))
        try:
            event = out.get_nowait()
        except Exception:
            return False


def _save(crash_dir: Path, codec: str, what: str, index: int, raw: str | bytes) -> str:
    crash_dir.mkdir(parents=True, exist_ok=True)
    path = crash_dir / f"{codec}-{what}-{index}.bin"
    path.write_bytes(raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw)
    return str(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Example: nice -n 10 python benchmarks/fuzz.py all 1000000 --seed 1. Exit status 1 if any "
               "crash, slow message or hang; reproducers are written to --crash-dir (a message file holds "
               "the exact bytes; feed it to the codec's entry point to replay).",
    )
    parser.add_argument("codec", choices=(*CODECS, "all"), help="which codec to fuzz (all: one after another)")
    parser.add_argument("messages", type=int, help="mutated messages per codec (the hostile seeds run on top)")
    parser.add_argument("--seed", type=int, default=1, help="RNG seed: message i of seed S is always the same")
    parser.add_argument("--slow-ms", type=float, default=10.0,
                        help="a message whose decoding takes more CPU time than this (confirmed on a re-run) is slow")
    parser.add_argument("--hang-seconds", type=float, default=5.0,
                        help="a message still running after this long is killed and counted as a hang")
    parser.add_argument("--crash-dir", type=Path, default=Path("fuzz-crashes"),
                        help="where reproducers are saved (created on the first finding)")
    args = parser.parse_args(argv)
    failed = False
    for codec in CODECS if args.codec == "all" else (args.codec,):
        report, seconds = run(codec, args.messages, args.seed, args.slow_ms, args.hang_seconds, args.crash_dir)
        crashes = sum(report.crashes.values())
        print(f"{codec}: {report.messages:,} messages in {seconds:.1f} s ({report.messages / seconds:,.0f}/s), "
              f"seed {args.seed}")
        print(f"  crashes: {crashes}")
        for key, count in report.crashes.most_common():
            print(f"    {count:>8,} {key}: {report.crash_samples.get(key, '')}")
        print(f"  slow (> {args.slow_ms:g} ms CPU, confirmed on a re-run): {len(report.slow)}")
        if report.unconfirmed:
            first, again = max(report.unconfirmed)
            print(f"  first-run outliers over {args.slow_ms:g} ms not reproduced: {len(report.unconfirmed)} "
                  f"(largest {first:.1f} ms, {again:.2f} ms when run again)")
        for ms, index, path in sorted(report.slow, reverse=True)[:5]:
            print(f"    {ms:.1f} ms message {index}: {path}")
        ms, index, sample = report.slowest
        print(f"  slowest: {ms:.2f} ms CPU (message {index}: {sample})")
        print(f"  hangs (> {args.hang_seconds:g} s): {len(report.hangs)}")
        for index, path in report.hangs[:5]:
            print(f"    message {index}: {path}")
        failed |= bool(crashes or report.slow or report.hangs)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
