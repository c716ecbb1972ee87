"""The Algo724 codec on document 003's own examples (tests/fixtures/algo724, copied line for line
from shared/seeds/003_8a08da99c6d461d3.txt; tests/protocol/test_fixtures.py checks the copies).

The document is a Redoc page dump: its examples are not JSON as printed. :func:`redoc_examples`
turns one back, and says how: every ``- `` that opens a line or follows ``{`` / ``[`` / ``, ``
(Redoc's list markers) is dropped, then each complete JSON value is decoded in turn (a request
example and its response share a line, ``}{- "success"``; a response's last ``}`` shares its
line with the next operation's title, which is ignored, as is an example cut off by the excerpt).
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from adapters.algo724 import codec
from adapters.algo724.codec import CodecError, Failure, Success
from engine.model import Order, OrderStatus, OrderType, Side, TimeInForce
from engine.rejects import REJECT_CODES, Reject

FIXTURES = Path(__file__).parent.parent / "fixtures" / "algo724"
_MARKER = re.compile(r"(^|\{|\[|, )- ", re.MULTILINE)


def redoc_examples(name: str) -> list[Any]:
    """The JSON values of one Redoc excerpt, in order."""
    text = _MARKER.sub(r"\1", (FIXTURES / name).read_text(encoding="utf-8"))
    decoder = json.JSONDecoder(parse_float=Decimal)
    values, at = [], text.find("{")
    while 0 <= at < len(text):
        try:
            value, end = decoder.raw_decode(text, at)
        except json.JSONDecodeError:
            break  # the excerpt's last line opens the next example
        values.append(value)
        at = end
        if text[at:at + 1] not in ("{", "["):
            break
    return values


def wire(value: Any) -> bytes:
    return json.dumps(value, default=str).encode()


def order(**kwargs: Any) -> Order:
    base: dict[str, Any] = {"client_id": "c-1", "strategy": "s", "venue": "algo724", "symbol": "BTC/USDT",
                            "side": Side.BUY, "qty": Decimal("1234.56789000"), "price": Decimal("1234.56789000")}
    base.update(kwargs)
    return Order(**base)


# ---- the document's examples ------------------------------------------------------------------


def test_redoc_excerpts_decode_to_request_and_response() -> None:
    for name, count in (("login.redoc.txt", 2), ("logout.redoc.txt", 1), ("refresh.redoc.txt", 2),
                        ("submit.redoc.txt", 2), ("cancel.redoc.txt", 2), ("list.redoc.txt", 1)):
        assert len(redoc_examples(name)) == count, name


def test_login_body_has_the_documents_keys_and_its_session_decodes() -> None:
    request, response = redoc_examples("login.redoc.txt")
    assert codec.encode_login("user@example.com", "securepassword123") == request
    result = codec.parse_envelope(200, wire(response))
    assert isinstance(result, Success)
    session = codec.decode_session(result.data, now_ns=1_000)
    assert session.access_token == "string" and session.refresh_token == "string"
    assert session.expires_in_s == 3600 and session.access_expires_ns == 1_000 + 3600 * 10**9
    assert "string" not in repr(session)  # a token never prints


def test_refresh_body_and_session() -> None:
    request, response = redoc_examples("refresh.redoc.txt")
    assert codec.encode_refresh("string") == request
    result = codec.parse_envelope(200, wire(response))
    assert isinstance(result, Success) and codec.decode_session(result.data, 0).expires_in_s == 3600


def test_logout_ok() -> None:
    (response,) = redoc_examples("logout.redoc.txt")
    result = codec.parse_envelope(200, wire(response))
    assert isinstance(result, Success) and result.data == "ok"


def test_submit_body_carries_the_documents_fields_as_decimal_strings() -> None:
    request, _ = redoc_examples("submit.redoc.txt")
    body = codec.encode_submit(order(tif=TimeInForce.GTC), request["tradingAccountId"], request["instrumentId"],
                               "client_order_12345")
    for key in ("tradingAccountId", "instrumentId", "orderSide", "orderType", "limitPrice", "quantity",
                "timeInForce", "quantityType"):
        assert body[key] == request[key], key
    assert body["idempotencyKey"] == body["clientOrderId"] == "client_order_12345"  # ALG-4: one key, both fields
    assert set(body) <= set(request)
    assert json.loads(codec.dumps(body))["quantity"] == "1234.56789000"  # a string on the wire, never a number


def test_submit_answer_is_an_array_with_executions_and_fees() -> None:
    _, response = redoc_examples("submit.redoc.txt")
    result = codec.parse_envelope(200, wire(response))
    assert isinstance(result, Success)
    (view,) = codec.decode_orders(result.data)
    assert view.trade_order_id == "85df4133-2159-4db1-a117-d20455178752"
    assert view.status == "FILLED" and view.engine_status is OrderStatus.FILLED
    assert view.quantity == view.executed_quantity == Decimal("1234.56789000")
    (execution,) = view.executions
    assert execution.execution_id == "fc49a52d-e069-4441-83c6-8d779c937dd9"
    assert execution.external_id == "binance-exec-12345"
    assert execution.ts_ns == 1632933600000 * 1_000_000
    fill = view.fill(execution, "algo724", "c-1", "BTC/USDT")
    # the document's BUY pays its fee in BTC (the base asset): converted at the execution price
    assert fill.fee == Decimal("1234.56789000") * Decimal("1234.56789000")
    assert fill.exec_id == execution.execution_id and fill.venue_order_id == view.trade_order_id


def test_cancel_body_and_single_order_answer() -> None:
    request, response = redoc_examples("cancel.redoc.txt")
    assert codec.encode_cancel(request["tradingAccountId"], request["tradeOrderId"]) == request
    result = codec.parse_envelope(200, wire(response))
    assert isinstance(result, Success)
    assert codec.decode_order(result.data).trade_order_id == request["tradeOrderId"]


def test_list_answer_and_cursor_pagination() -> None:
    (response,) = redoc_examples("list.redoc.txt")
    result = codec.parse_envelope(200, wire(response))
    assert isinstance(result, Success)
    assert len(codec.decode_orders(result.data)) == 1
    page = codec.decode_page(result.pagination)
    assert page.has_next and page.cursor == "string" and page.total == 100


def test_list_query_uses_the_documents_filters() -> None:
    query = codec.encode_list_query("acct", trade_order_id="t", status="FILLED", instrument_id="BINANCE:BTC/USDT",
                                    start_ms=1622505600000, end_ms=1622505600001, limit=100, cursor="abc")
    fields = (FIXTURES.parent / "algo724" / "order_status.txt").read_text(encoding="utf-8")
    assert "orderStatus" in fields
    assert query == {"tradingAccountId": "acct", "limit": "100", "ascending": "true", "tradeOrderId": "t",
                     "orderStatus": "FILLED", "instrumentId": "BINANCE:BTC/USDT", "startTime": "1622505600000",
                     "endTime": "1622505600001", "cursor": "abc"}


def test_the_fourteen_statuses_are_the_documents_and_all_mapped() -> None:
    line = (FIXTURES / "order_status.txt").read_text(encoding="utf-8")
    enum = re.search(r"Enum: (.*?) Example", line)
    assert enum is not None
    documented = re.findall(r'"([A-Z_]*)"', enum.group(1))
    assert len(documented) == 14
    assert set(codec.STATUS) == set(documented)
    assert codec.STATUS["REVOKED"] is OrderStatus.CANCELLED  # ALG-5
    assert codec.STATUS["SUBMITTED"] is OrderStatus.PENDING_NEW and codec.STATUS["ACCEPTED"] is OrderStatus.NEW


def test_decimal_pattern_is_the_documents() -> None:
    assert codec.DECIMAL_PATTERN in (FIXTURES / "submit_fields.txt").read_text(encoding="utf-8")


# ---- decimals: the pattern or a codec error ---------------------------------------------------


@pytest.mark.parametrize("text", ["0", "-1", "1234.56789000", "0.00000001", "-0.5"])
def test_decimal_strings_parse_exactly(text: str) -> None:
    assert codec.decimal_text(text, "x") == Decimal(text)


@pytest.mark.parametrize("value", ["1e3", "1E-8", "+1", ".5", "5.", " 1", "1 ", "NaN", "Infinity", "0x10", "",
                                   "1" * 65, 12, Decimal("1.5"), 1.5, True, None, ["1"]])
def test_anything_else_is_a_codec_error_not_a_guess(value: Any) -> None:
    with pytest.raises(CodecError) as caught:
        codec.decimal_text(value, "limitPrice")
    assert caught.value.kind == "bad_number"
    assert "limitPrice" in str(caught.value)


def test_a_json_number_where_a_decimal_is_due_refuses_the_order() -> None:
    _, response = redoc_examples("submit.redoc.txt")
    response["data"][0]["quantity"] = 1234.5
    result = codec.parse_envelope(200, wire(response))
    assert isinstance(result, Success)
    with pytest.raises(CodecError, match="quantity"):
        codec.decode_orders(result.data)


@pytest.mark.parametrize("value", [Decimal("1E+3"), Decimal("0.000001"), Decimal("-2.50")])
def test_decimals_go_out_as_plain_digits(value: Decimal) -> None:
    text = codec.format_decimal(value)
    assert re.fullmatch(r"-?\d+(\.\d+)?", text) and Decimal(text) == value


def test_non_finite_decimals_are_never_sent() -> None:
    with pytest.raises(CodecError):
        codec.format_decimal(Decimal("NaN"))


# ---- envelope and reject codes ----------------------------------------------------------------


def test_failure_reads_errno_error_and_details_code() -> None:
    body = {"success": False, "errno": 422, "error": "insufficient balance",
            "details": {"code": "INSUFFICIENT_BALANCE", "request_id": "req-1"}}
    result = codec.parse_envelope(422, wire(body))
    assert isinstance(result, Failure)
    assert (result.errno, result.message, result.code) == (422, "insufficient balance", "INSUFFICIENT_BALANCE")
    assert codec.engine_code(result) == Reject.INSUFFICIENT_BUYING_POWER
    assert codec.classify_failure(result) == "rejected"


def test_every_mapped_code_is_an_engine_code() -> None:
    assert set(codec.CODE_REJECTS.values()) | set(codec.HTTP_REJECTS.values()) <= set(REJECT_CODES)


@pytest.mark.parametrize(("status", "code", "outcome"), [
    (401, "INVALID_TOKEN", "auth"), (401, "TOKEN_EXPIRED", "auth"), (401, None, "auth"),
    (502, "VENUE_ERROR", "unknown"), (503, None, "unknown"), (400, "VALIDATION_ERROR", "rejected"),
    (429, "RATE_LIMITED", "rejected"),
])
def test_failures_are_classified(status: int, code: str | None, outcome: str) -> None:
    assert codec.classify_failure(Failure(status, status, "x", code)) == outcome


def test_a_proxy_page_on_a_5xx_is_a_failure_and_on_a_2xx_a_codec_error() -> None:
    html = b"<html>502 Bad Gateway</html>"
    result = codec.parse_envelope(502, html)
    assert isinstance(result, Failure) and codec.classify_failure(result) == "unknown"
    with pytest.raises(CodecError):
        codec.parse_envelope(200, html)


def test_success_that_contradicts_its_status_is_refused() -> None:
    with pytest.raises(CodecError):
        codec.parse_envelope(500, b'{"success": true, "errno": 0, "data": []}')
    with pytest.raises(CodecError):
        codec.parse_envelope(200, b'{"success": true, "errno": 7, "data": []}')
    with pytest.raises(CodecError):
        codec.parse_envelope(200, b'{"success": "yes", "data": []}')


@pytest.mark.parametrize("raw", [b"[" * 100_000, b'{"success": true, "data": ' + b"1" * 5000 + b"}",
                                 b"\xff\xfe", b'{"success": true, "data": NaN}'])
def test_hostile_bodies_are_codec_errors(raw: bytes) -> None:
    with pytest.raises(CodecError):
        codec.parse_envelope(200, raw)


def test_an_unknown_status_or_side_is_a_codec_error() -> None:
    _, response = redoc_examples("cancel.redoc.txt")
    for key, value in (("status", "HALF_DONE"), ("orderSide", "SHORT"), ("status", 3)):
        broken = dict(response["data"], **{key: value})
        with pytest.raises(CodecError):
            codec.decode_order(broken)


def test_a_fee_in_a_third_asset_is_not_converted() -> None:
    _, response = redoc_examples("submit.redoc.txt")
    data = response["data"][0]
    data["executions"][0]["fees"][0]["asset"] = "BNB"
    view = codec.decode_order(data)
    assert view.fill(view.executions[0], "algo724", "c", "BTC/USDT").fee is None


def test_post_only_goes_as_gtx_and_market_orders_without_a_price() -> None:
    body = codec.encode_submit(order(post_only=True), "a", "BINANCE:BTC/USDT", "k")
    assert body["timeInForce"] == "GTX"  # ALG-7
    market = codec.encode_submit(order(price=None, order_type=OrderType.MARKET, tif=TimeInForce.IOC), "a", "i", "k")
    assert market["orderType"] == "MARKET" and "limitPrice" not in market and market["timeInForce"] == "IOC"


HOSTILE_VALUES: list[Any] = [None, True, 0, -1, 10**30, 1.5, "", "x" * 100, "1e400", [], [1, "a"], {}, {"a": [None]}]


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            out += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            out += _paths(item, (*prefix, index))
    return out


def _replaced(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    copy = json.loads(json.dumps(value, default=str))
    target = copy
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = new
    return copy


def test_every_field_of_the_documents_order_replaced_by_anything_is_decoded_or_a_codec_error() -> None:
    """Hostile input: any field of the submit answer's Order swapped for any JSON value decodes or
    raises CodecError, never another exception (the adapter counts CodecError and goes on)."""
    _, response = redoc_examples("submit.redoc.txt")
    data = response["data"][0]
    tried = refused = 0
    for path in _paths(data):
        for value in HOSTILE_VALUES:
            broken = _replaced(data, path, value)
            try:
                view = codec.decode_order(broken)
                for execution in view.executions:
                    fill = view.fill(execution, "algo724", "c", "BTC/USDT")
                    assert isinstance(fill.qty, Decimal) and isinstance(fill.price, Decimal)
            except CodecError:
                refused += 1
            tried += 1
    assert tried > 500 and 0 < refused < tried  # the swaps are refused where they break a field, not all
