"""Hostile input to the MidChains WebSocket codec: whatever arrives, ``decode_message`` and
``decode_request`` raise only ``WsCodecError`` with an engine.venue.badinput kind, and whatever
they accept is written back and read again to the same object (so the sandbox, which answers with
:func:`encode`, cannot send what the adapter would read otherwise).

Three sources: any bytes and any text; the document's examples (tests/fixtures/midchains/
ws_examples.*) with bytes inserted, deleted and replaced; and well-formed JSON objects of every
documented type whose fields are drawn from the codec's own field names with values of any JSON
type (numbers as text no encoder writes: huge exponents, 5,000 digits, NaN). benchmarks/fuzz.py's
``midchains_ws`` driver runs the same entry points for 100,000s of messages."""

from __future__ import annotations

import json
from dataclasses import fields
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.midchains_ws import example, names

from adapters.midchains import ws_codec as ws
from engine.venue.badinput import KINDS

EXAMPLES = [example(name) for name in names()]
TYPES = sorted({*ws.MESSAGE_TYPES, *ws.REQUEST_TYPES})
FIELDS = sorted({spec.wire for cls in {*ws.MESSAGE_TYPES.values(), *ws.REQUEST_TYPES.values(), ws.OrderMsg, ws.SaleMsg,
                                       ws.PositionMsg, ws.BookEntry, ws.SymbolInfo, ws.SymbolStatus,
                                       ws.HistoryTick, ws.MinuteBar, ws.SubscribeEntry}
                 for spec in cls.WIRE} | {"data", "books", "request", "clientorderi"})
HOSTILE_NUMBERS = ["1e999999", "1e9999999999999999999", "9" * 5000, "NaN", "-0", "1E-64", "0.0000000001",
                   "99999999999999999999", "1626338416747", "1626338416", "-1"]


def check(raw: str | bytes) -> None:
    """Each entry point raises only the codec's error; what one accepts survives a round trip."""
    for decode in (ws.decode_message, ws.decode_request):
        try:
            message = decode(raw)
        except ws.WsCodecError as exc:
            assert exc.kind in KINDS, f"kind {exc.kind!r} of {exc}"
            continue
        if decode is ws.decode_message:
            assert decode(ws.encode(message)) == message
            ws.answer_key(message)
            continue
        ws.request_key(message)
        if isinstance(message, ws.AddOrder) and message.problem() is not None:
            with pytest.raises(ws.WsCodecError, match="addorder: "):  # the sandbox reads it; we never send it
                ws.encode(message)
            continue
        # a request's times go out as whole seconds (MID-2): once written, it reads back the same
        once = decode(ws.encode(message))
        assert decode(ws.encode(once)) == once
        assert [f.name for f in fields(once) if getattr(once, f.name) != getattr(message, f.name)] in ([], ["from_ms"],
                                                                                             ["start_ms"],
                                                                                             ["expire_ms"])


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes(raw: bytes) -> None:
    check(raw)


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=300))
def test_any_text(raw: str) -> None:
    check(raw)


@st.composite
def mutated_example(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(EXAMPLES))
    for _ in range(draw(st.integers(1, 8))):
        position = draw(st.integers(0, len(text)))
        edit = draw(st.sampled_from(["insert", "delete", "replace"]))
        piece = draw(st.sampled_from(['"', "{", "}", "[", "]", ",", ":", "0", "-", "e", "\\", "\x00", "é",
                                      "null", "true", '"x"', "[]", "{}", *HOSTILE_NUMBERS]))
        if edit == "insert":
            text = text[:position] + piece + text[position:]
        elif edit == "delete":
            text = text[:position] + text[position + draw(st.integers(1, 20)):]
        else:
            text = text[:position] + piece + text[position + len(piece):]
    return text


@settings(max_examples=700, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_example())
def test_the_documents_examples_mutated(raw: str) -> None:
    check(raw)


class Raw(str):
    """A JSON value's text, written as is."""


def dump(value: Any) -> str:
    if isinstance(value, Raw):
        return str(value)
    if isinstance(value, dict):
        return "{" + ",".join(json.dumps(k) + ":" + dump(v) for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(dump(v) for v in value) + "]"
    return json.dumps(value)


scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**20), 10**20), st.text(max_size=12),
    st.sampled_from(["B", "S", "U", "R", "OK", "LMT", "MKT", "GTC", "IOC", "GTT", "Open", "Executed", "Cancelled",
                     "Rejected", "Halt", "true", "1626338416747", "0.46", "100", "1E+3", "*", "CROX"]),
    st.sampled_from(HOSTILE_NUMBERS).map(Raw), st.sampled_from(HOSTILE_NUMBERS),
    st.decimals(allow_nan=False, allow_infinity=False, places=6).map(lambda d: Raw(str(d))),
)
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(FIELDS), inner, max_size=6)), max_leaves=12)


@st.composite
def shaped_message(draw: st.DrawFn) -> str:
    obj = draw(st.dictionaries(st.sampled_from(FIELDS), values, max_size=12))
    if draw(st.booleans()):
        obj["type"] = draw(st.sampled_from(TYPES))
    return dump(obj)


@settings(max_examples=700, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(shaped_message())
def test_every_documented_type_with_fields_of_any_json_type(raw: str) -> None:
    check(raw)


@pytest.mark.parametrize(("raw", "kind"), [
    ("[" * 100_000, "too_deep"), ('{"a":' * 50_000 + "1" + "}" * 50_000, "too_deep"),
    (b"\x00\xff\xfe", "not_json"), ("\ud800", "not_json"), ("", "not_json"),
    ('{"type":"trade","security":"X","price":1e999999,"qty":1,"time":"1626338546538","matchid":"m"}', "bad_number"),
    ('{"type":"book","security":"X","books":[{"act":"U","id":' + "9" * 4299 + ',"side":"B","price":1,"qty":1}]}',
     "bad_number"),
    ('{"type":"order","refno":"R","security":"X","side":"B","qty":NaN}', "bad_number"),
    ('{"type":"sale","traderefno":"E","refno":"R","security":"X","side":"B","execprice":"1","execqty":"1",'
     '"trdtime":"' + "9" * 100_000 + '"}', "bad_number"),
    ('{"type":"querytrade","result":"OK","total_rec":"99999999999999999999","data":[]}', "bad_number"),
    ('{"type":"login","result":"\\ud800"}', "malformed"),
])
def test_the_hostile_examples_of_issue_17(raw: str | bytes, kind: str) -> None:
    """Each is refused by the venue side's decoder under its own kind (accepting any of them would be
    a regression), and the request side holds to the round-trip contract."""
    with pytest.raises(ws.WsCodecError) as refused:
        ws.decode_message(raw)
    assert refused.value.kind == kind
    check(raw)
