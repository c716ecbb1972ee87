"""The Optimus codec against the broker document's own text (tests/fixtures/optimus, verbatim from
shared/seeds/000_fea88fb25a350a1d.txt) and against the assumed formats (VENUES.md 1.13, OPT-n).
No sockets: the codec is sans-I/O."""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest
from support import json_leaves

from adapters.optimus import codec
from adapters.optimus.adapter import OptimusAdapter
from adapters.optimus.codec import CodecError, Failure, Paths, SignatureError, Success
from engine.clock import SimClock
from engine.model import Order, OrderStatus, OrderType, Side, TimeInForce
from engine.rejects import REJECT_CODES, Reject
from engine.risk.ratelimit import venue_buckets

D = Decimal
FIXTURES = Path(__file__).parent.parent / "fixtures" / "optimus"
NS = 1_000_000_000
T0 = 1_795_407_600 * NS + 123_456_789  # 2026-11-23T04:20:00.123456789Z


def fixture_lines(name: str) -> list[str]:
    return (FIXTURES / name).read_text(encoding="utf-8").splitlines()


def order(**overrides: object) -> Order:
    values: dict = dict(client_id="mm-1", strategy="mm", venue="psx", symbol="MEBL", side=Side.BUY,
                        qty=D(500), price=D("187.50"))
    values.update(overrides)
    return Order(**values)


def order_data(**overrides: object) -> dict:
    data: dict = {
        "order_id": "OPT-1", "client_order_id": "mm-1", "symbol": "MEBL", "side": "buy", "order_type": "limit",
        "time_in_force": "day", "quantity": 1000, "price": D("187.50"), "status": "partially_filled",
        "filled_quantity": 500, "remaining_quantity": 500, "average_price": D("187.45"), "reject_code": None,
        "reason": "", "created_at": "2026-11-23T04:20:00.000Z", "updated_at": "2026-11-23T04:20:01.000Z",
        "executions": [{"execution_id": "EXE-1", "price": D("187.45"), "quantity": 500,
                        "executed_at": "2026-11-23T04:20:01.250Z"}],
    }
    data.update(overrides)
    return data


# ---- section 12: the response envelope ---------------------------------------------------------


def envelope_examples() -> dict[str, bytes]:
    """The two envelopes of section 12. The document writes ``{ ... }`` for "some object", which is
    not JSON: the test puts ``{}`` in its place and changes nothing else."""
    examples = {}
    for line in fixture_lines("envelope.txt")[1:]:
        kind, _, text = line.partition(": ")
        examples[kind] = text.replace("{ ... }", "{}").encode()
    return examples


def test_the_documents_success_envelope_parses() -> None:
    result = codec.parse_envelope(200, envelope_examples()["Success"])
    assert result == Success(200, {}, "...")


def test_the_documents_error_envelope_parses_into_a_failure() -> None:
    result = codec.parse_envelope(400, envelope_examples()["Error"])
    assert isinstance(result, Failure)
    assert (result.http_status, result.error_code, result.message, result.request_id) == (400, None, "Summary", "...")
    assert result.engine_code == Reject.INVALID_ORDER  # a 4xx without a business code: the request was refused


def test_the_business_code_is_read_from_error_details() -> None:  # OPT-4
    raw = (b'{"status": "error", "code": 400, "message": "lot", "error_details": {"error_code": 2002},'
           b' "request_id": "r1"}')
    result = codec.parse_envelope(400, raw)
    assert isinstance(result, Failure) and result.error_code == 2002 and result.engine_code == 2002
    assert "2002 lot" in result.describe() and "r1" in result.describe()


@pytest.mark.parametrize("raw", [b"<html>502</html>", b"", b"[1, 2]", b'{"status": "maybe"}', b'{"status": "success"}'])
def test_a_garbage_answer_is_a_codec_error(raw: bytes) -> None:
    with pytest.raises(CodecError):
        codec.parse_envelope(200, raw)


def test_a_5xx_without_an_envelope_is_still_a_failure_whose_outcome_is_unknown() -> None:
    result = codec.parse_envelope(502, b"<html>Bad Gateway</html>")
    assert isinstance(result, Failure) and result.http_status == 502
    assert codec.classify_order_failure(result) == "unknown"
    assert result.engine_code == Reject.BACKEND_CONNECTIVITY


# ---- section 13: error codes -------------------------------------------------------------------


def document_error_table() -> dict[int, str]:
    table = {}
    for line in fixture_lines("error_codes.txt"):
        code, _, text = line.partition(" ")
        table[int(code)] = text
    return table


def test_the_codec_carries_the_documents_error_table_exactly() -> None:
    assert codec.BROKER_ERRORS == document_error_table()


def test_every_broker_code_is_the_engines_code_with_the_documents_sentence() -> None:
    for code, text in document_error_table().items():
        assert codec.engine_code(code, 400) == code
        assert REJECT_CODES[code] == text.split(" - ", 1)[1]


@pytest.mark.parametrize(("code", "http", "expected"), [
    (None, 401, 1001), (None, 403, 1003), (None, 429, 3001), (None, 503, 9001), (None, 400, 7005), (None, 404, 7005),
    (2999, 400, 9002),  # a code the table does not know: "rejected by exchange", the number kept in the reason
])
def test_http_statuses_without_a_table_code_map_to_engine_codes(code: int | None, http: int, expected: int) -> None:
    assert codec.engine_code(code, http) == expected


def test_a_rejected_order_without_a_known_code_reads_as_rejected_by_the_exchange() -> None:
    assert codec.order_reject_code(2002) == 2002
    assert codec.order_reject_code(None) == codec.order_reject_code(7006) == Reject.EXCHANGE_REJECT


@pytest.mark.parametrize(("http", "code", "outcome"), [
    (401, 1002, "auth"), (401, None, "auth"), (400, 1001, "auth"),
    (409, 3002, "duplicate"),
    (500, None, "unknown"), (503, 9001, "unknown"), (400, 9001, "unknown"),
    (400, 2002, "rejected"), (429, 3001, "rejected"), (400, 9002, "rejected"), (400, None, "rejected"),
])
def test_a_failed_order_request_is_classified_without_guessing(http: int, code: int | None, outcome: str) -> None:
    assert codec.classify_order_failure(Failure(http, code, "", {}, "")) == outcome


# ---- section 11: rate limits, idempotency, JWT lifetimes ---------------------------------------


def test_the_adapter_declares_the_documents_rate_limits_as_data() -> None:
    documented = {}
    for line in fixture_lines("rate_limits.txt")[1:]:
        match = re.match(r"- (\w[\w ]*) APIs: (\d+) requests per (second|minute) per (IP|user)", line)
        assert match, line
        documented[match[1]] = (int(match[2]), D(1) if match[3] == "second" else D(60))
    declared = {limit.scope: limit for limit in OptimusAdapter.rate_limits}
    assert (declared["auth"].count, declared["auth"].per_seconds) == documented["Authentication"]
    assert (declared["public_data"].count, declared["public_data"].per_seconds) == documented["Public Data"]
    # the trading budget is shared: the engine's orders and cancels plus the adapter's own queries
    trading_count, trading_window = documented["Trading"]
    assert declared["all"].per_seconds == declared["queries"].per_seconds == trading_window
    assert declared["all"].count + declared["queries"].count == trading_count
    assert all(limit.source for limit in OptimusAdapter.rate_limits)
    # the engine turns the order budget into its bucket; the other scopes are the adapter's own
    [bucket] = venue_buckets("psx", OptimusAdapter.rate_limits, SimClock(0))
    assert (bucket.scope, bucket.count, bucket.per_seconds) == ("all", declared["all"].count, D(1))


def test_token_lifetimes_default_to_the_documents_one_hour_and_seven_days() -> None:
    assert fixture_lines("security.txt")[1].endswith("JWT Expiry: 1 hour access tokens, 7 day refresh tokens")
    tokens = codec.decode_tokens({"access_token": "a.b.c", "refresh_token": "d.e.f", "token_type": "Bearer"}, T0)
    assert tokens.access_expires_ns - T0 == 3600 * NS
    assert tokens.refresh_expires_ns - T0 == 7 * 24 * 3600 * NS
    assert "a.b.c" not in repr(tokens) and "d.e.f" not in repr(tokens)


def test_token_lifetimes_from_the_answer_win() -> None:
    data = {"access_token": "a", "refresh_token": "r", "token_type": "Bearer", "expires_in": 60,
            "refresh_expires_in": 120}
    tokens = codec.decode_tokens(data, T0)
    assert (tokens.access_expires_ns - T0, tokens.refresh_expires_ns - T0) == (60 * NS, 120 * NS)


@pytest.mark.parametrize("data", [{"access_token": "a"}, {"access_token": "", "refresh_token": "r"},
                                  {"access_token": "a", "refresh_token": "r", "token_type": "MAC"}])
def test_a_bad_token_answer_is_refused(data: dict) -> None:
    with pytest.raises(CodecError):
        codec.decode_tokens(data, T0)


def test_every_order_request_carries_its_idempotency_key() -> None:  # OPT-8
    assert fixture_lines("security.txt")[0].endswith("Idempotency Keys: Prevent duplicate order submissions")
    body = codec.encode_place(order())
    assert body["idempotency_key"] == body["client_order_id"] == "mm-1"
    assert codec.encode_cancel("mm-1", "OPT-1", "mm-1-cxl1")["idempotency_key"] == "mm-1-cxl1"


# ---- section 12: naming, timestamps, numbers ---------------------------------------------------


def test_timestamps_are_written_in_the_documents_format() -> None:
    shape = re.search(r"ISO 8601 format \((.+)\)", fixture_lines("json_standards.txt")[1])
    assert shape is not None and shape[1] == "YYYY-MM-DDTHH:mm:ss.sssZ"
    pattern = shape[1]
    for token, digits in ((".sss", r"\.\d{3}"), ("YYYY", r"\d{4}"), ("MM", r"\d{2}"), ("DD", r"\d{2}"),
                          ("HH", r"\d{2}"), ("mm", r"\d{2}"), ("ss", r"\d{2}")):
        pattern = pattern.replace(token, digits)
    text = codec.format_ts(T0)
    assert re.fullmatch(pattern, text)
    assert text == "2026-11-23T04:20:00.123Z"
    assert codec.parse_ts(text) == T0 - 456_789  # milliseconds on the wire


@pytest.mark.parametrize(("text", "ns"), [
    ("2026-11-23T04:20:00Z", 1_795_407_600 * NS),
    ("2026-11-23T09:20:00.5+05:00", 1_795_407_600 * NS + 500_000_000),
    ("2026-11-23T04:20:00.000000001Z", 1_795_407_600 * NS + 1),
])
def test_timestamps_are_read_exactly_with_any_offset_and_fraction(text: str, ns: int) -> None:
    assert codec.parse_ts(text) == ns


@pytest.mark.parametrize("text", ["2026-11-23 04:20:00Z", "2026-11-23T04:20:00", "2026-13-01T00:00:00Z", 1795412400])
def test_a_malformed_timestamp_is_refused(text: object) -> None:
    with pytest.raises(CodecError):
        codec.parse_ts(text)


def test_numbers_go_out_as_exact_json_numbers_never_strings_floats_or_exponents() -> None:
    assert fixture_lines("json_standards.txt")[2].endswith("Numbers: Use JSON number type (not strings)")
    text = codec.dumps(codec.encode_place(order(qty=D(1000), price=D("187.50"))))
    assert b'"quantity":1000' in text and b'"price":187.50' in text
    assert codec.dumps({"x": D("1E+3"), "y": D("0.000001")}) == b'{"x":1000,"y":0.000001}'
    with pytest.raises(CodecError):
        codec.dumps({"price": 187.5})
    with pytest.raises(CodecError):
        codec.dumps({"price": D("NaN")})


def test_numbers_come_in_as_decimals_never_floats() -> None:
    data = codec.loads(b'{"a": 187.50, "b": [0.1, 2], "c": {"d": 1e-7}}')
    assert data["a"] == D("187.50") and str(data["a"]) == "187.50"
    assert all(not isinstance(leaf, float) for leaf in json_leaves(data))
    with pytest.raises(CodecError):
        codec.loads(b'{"a": NaN}')


def test_a_number_sent_as_a_string_is_a_misread_not_a_number() -> None:
    with pytest.raises(CodecError, match="'quantity' must be a JSON number"):
        codec.decode_order(order_data(quantity="1000"))


def test_request_names_are_snake_case() -> None:
    assert fixture_lines("json_standards.txt")[0].endswith("snake_case for all JSON property names")
    bodies = [codec.encode_place(order()), codec.encode_place(order(qty=D(500), price=None,
                                                                    order_type=OrderType.MARKET)),
              codec.encode_cancel("a", "b", "c"), codec.encode_status("a"), codec.encode_executions_query(T0),
              codec.encode_login("u", "p"), codec.encode_refresh("r")]
    for body in bodies:
        assert all(re.fullmatch(r"[a-z][a-z0-9_]*", key) for key in body), body


# ---- orders (OPT-3, OPT-7, OPT-9) ---------------------------------------------------------------


def test_a_limit_buy_is_encoded_with_every_assumed_field() -> None:
    assert codec.encode_place(order()) == {
        "symbol": "MEBL", "side": "buy", "order_type": "limit", "time_in_force": "day", "quantity": D(500),
        "client_order_id": "mm-1", "idempotency_key": "mm-1", "price": D("187.50"),
    }


def test_ioc_and_fok_are_time_in_force_and_gtc_is_not_offered() -> None:  # OPT-7, OPT-9
    assert fixture_lines("order_types.txt")[0].count("IOC: Immediate or Cancel") == 1
    assert codec.encode_place(order(tif=TimeInForce.IOC))["time_in_force"] == "ioc"
    assert codec.encode_place(order(tif=TimeInForce.FOK))["time_in_force"] == "fok"
    with pytest.raises(CodecError, match="gtc"):
        codec.encode_place(order(tif=TimeInForce.GTC))
    market = codec.encode_place(order(price=None, order_type=OrderType.MARKET))
    assert market["order_type"] == "market" and "price" not in market


def test_an_order_view_decodes_with_its_executions() -> None:
    view = codec.decode_order(order_data())
    assert view.status is OrderStatus.PARTIALLY_FILLED and view.is_open
    assert (view.quantity, view.filled_quantity, view.price) == (D(1000), D(500), D("187.50"))
    [execution] = view.executions
    fill = execution.to_fill("psx")
    assert (fill.exec_id, fill.client_id, fill.venue_order_id, fill.side) == ("EXE-1", "mm-1", "OPT-1", Side.BUY)
    assert (fill.price, fill.qty, fill.ts) == (D("187.45"), D(500), codec.parse_ts("2026-11-23T04:20:01.250Z"))
    assert fill.fee is None  # no commission field in the document: the engine charges its schedule
    vo = view.to_venue_order("psx")
    assert (vo.client_id, vo.venue_order_id, vo.status, vo.cum_qty) == ("mm-1", "OPT-1", view.status, D(500))


def test_pending_means_accepted_by_optimus_but_not_yet_by_the_exchange() -> None:
    view = codec.decode_order(order_data(status="pending", filled_quantity=0, executions=[]))
    assert view.status is None and view.is_open
    assert view.to_venue_order("psx").status is OrderStatus.NEW  # the broker has it: reconciliation keeps it


@pytest.mark.parametrize(("change", "message"), [
    ({"status": "working"}, "unknown order status"),
    ({"side": "short"}, "'side'"),
    ({"filled_quantity": 1001}, "outside"),
    ({"symbol": None}, "'symbol' must be a string"),
    ({"executions": [{"execution_id": "E", "price": D(1), "quantity": 0, "executed_at": "2026-11-23T04:20:00Z"}]},
     "positive"),
])
def test_a_malformed_order_view_names_what_is_wrong(change: dict, message: str) -> None:
    with pytest.raises(CodecError, match=message):
        codec.decode_order(order_data(**change))


def test_a_missing_field_is_named() -> None:
    data = order_data()
    del data["order_id"]
    with pytest.raises(CodecError, match="missing field 'order_id'"):
        codec.decode_order(data)


def test_open_orders_and_executions_listings_decode() -> None:
    rows = codec.decode_orders({"orders": [order_data(executions=[])]})
    assert [r.client_order_id for r in rows] == ["mm-1"]
    executions = codec.decode_executions({"executions": [{
        "execution_id": "EXE-9", "order_id": "OPT-1", "client_order_id": "mm-1", "symbol": "MEBL", "side": "sell",
        "price": D("75.12"), "quantity": 3000, "executed_at": "2026-11-23T04:20:00.000Z"}]})
    assert executions[0].side is Side.SELL and executions[0].quantity == D(3000)
    with pytest.raises(CodecError):
        codec.decode_orders({"orders": {}})


# ---- the document's sample data: the holdings card ----------------------------------------------

CARD_ROW = re.compile(r"^([A-Z]+)(\d+\.\d{2})([\d,]+)PKR ([\d.]+)K([+-][\d.]+)%$")


def document_holdings() -> list[tuple[str, Decimal, Decimal, Decimal, Decimal]]:
    rows = []
    for line in fixture_lines("holdings_card.txt"):
        match = CARD_ROW.match(line)
        if match:
            symbol, price, qty, value_k, change = match.groups()
            rows.append((symbol, D(price), D(qty.replace(",", "")), D(value_k), D(change)))
    return rows


def test_the_holdings_card_rows_decode_with_exact_values() -> None:
    rows = document_holdings()
    assert [r[0] for r in rows] == ["MEBL", "SYS", "ENGRO", "OGDC", "PSO", "KEL"]
    answer = {"holdings": [
        {"symbol": s, "quantity": q, "available_quantity": q, "current_price": p, "market_value": p * q,
         "change_percent": c} for s, p, q, _v, c in rows
    ], "last_updated": "2026-11-23T06:30:00.000Z"}  # the card's "11:30 AM PKT"
    holdings = codec.decode_holdings(codec.loads(codec.dumps(answer)))
    for holding, (_s, price, qty, value_k, change) in zip(holdings, rows, strict=True):
        assert holding.market_value == price * qty  # VENUES.md 1.12: price x qty = value for every row
        assert (holding.market_value / 1000).quantize(D("0.1"), ROUND_HALF_UP) == value_k
        assert holding.change_percent == change
    assert sum(h.market_value for h in holdings) == D("1258660.00")  # the six shown rows, not the card's total


def test_the_portfolio_card_and_buying_power_decode() -> None:
    summary = codec.decode_summary({
        "total_value": 1875000, "todays_pnl": 42500, "todays_pnl_percent": D("2.3"), "total_pnl": 125000,
        "total_pnl_percent": D("7.14"), "positions": 12, "sectors": 6, "currency": "PKR",
        "last_updated": "2026-11-23T06:30:00.000Z",
    })
    assert (summary.total_value, summary.total_pnl_percent, summary.positions) == (D(1875000), D("7.14"), 12)
    power = codec.decode_buying_power({"buying_power": D("100.5"), "cash_balance": 200, "unsettled_funds": 99})
    assert (power.buying_power, power.unsettled_funds, power.currency) == (D("100.5"), D(99), "PKR")


def test_the_paths_are_the_documents() -> None:
    text = "\n".join(fixture_lines("endpoints.txt"))
    for path in (Paths.SUMMARY, Paths.HOLDINGS, Paths.BUYING_POWER, Paths.WEBHOOK):
        assert f"POST {path}" in text
    assert "https://api.optimuscapital.com/v1" in text


# ---- webhooks (OPT-5) ---------------------------------------------------------------------------


def test_the_codec_knows_exactly_the_documents_six_events() -> None:
    documented = tuple(line.split(" - ")[0] for line in fixture_lines("webhook_events.txt"))
    assert codec.WEBHOOK_EVENTS == documented


def execution_event() -> bytes:
    return codec.dumps({
        "event": "order.execution", "event_id": "EVT-7", "occurred_at": "2026-11-23T04:20:01.250Z",
        "data": {**{k: v for k, v in order_data().items() if k != "executions"}, "execution_id": "EXE-1",
                 "last_fill_price": D("187.45"), "last_fill_quantity": 500},
    })


def test_an_execution_event_decodes_into_its_order_and_its_fill() -> None:
    event = codec.decode_webhook(execution_event())
    assert (event.event, event.event_id) == ("order.execution", "EVT-7")
    assert event.order().filled_quantity == D(500)
    execution = event.execution()
    assert (execution.execution_id, execution.price, execution.quantity) == ("EXE-1", D("187.45"), D(500))
    assert execution.ts_ns == event.occurred_ns


def test_an_order_event_without_quantity_derives_it_from_filled_and_remaining() -> None:
    data = {k: v for k, v in order_data().items() if k not in ("quantity", "executions")}
    event = codec.WebhookEvent("order.confirmed", "E", T0, data)
    assert event.order().quantity == D(1000)


@pytest.mark.parametrize("raw", [
    b"not json", b'{"event": "order.filled", "event_id": "E", "occurred_at": "2026-11-23T04:20:00Z"}',
    b'{"event": "order.confirmed", "event_id": "", "occurred_at": "2026-11-23T04:20:00Z"}',
    b'{"event": "order.confirmed", "event_id": "E"}',
])
def test_a_malformed_or_unknown_event_is_refused(raw: bytes) -> None:
    with pytest.raises(CodecError):
        codec.decode_webhook(raw)


SECRET = b"whsec-test-only"


def test_a_signed_webhook_verifies() -> None:
    body = execution_event()
    header = codec.sign_webhook(SECRET, T0 // 1_000_000, body)
    assert re.fullmatch(r"t=\d+,v1=[0-9a-f]{64}", header)
    codec.verify_webhook([SECRET], header, body, T0 + 2 * NS, tolerance_s=300)


def test_a_rotated_secret_still_verifies_and_several_signatures_are_accepted() -> None:
    body = b'{"x": 1}'
    header = codec.sign_webhook(b"old", T0 // 1_000_000, body)
    codec.verify_webhook([b"new", b"old"], header, body, T0, tolerance_s=1)
    new = codec.sign_webhook(b"new", T0 // 1_000_000, body).split(",v1=")[1]
    codec.verify_webhook([b"new"], f"{header},v1={new}", body, T0, tolerance_s=1)


@pytest.mark.parametrize(("case", "message"), [
    ("tampered", "does not match"), ("wrong_secret", "does not match"), ("stale", "away from our clock"),
    ("missing", "missing"), ("malformed", "malformed"),
])
def test_a_bad_signature_is_refused(case: str, message: str) -> None:
    body = execution_event()
    header: str | None = codec.sign_webhook(SECRET, T0 // 1_000_000, body)
    now = T0
    if case == "tampered":
        body = body.replace(b"187.45", b"18.745")
    elif case == "wrong_secret":
        header = codec.sign_webhook(b"guess", T0 // 1_000_000, body)
    elif case == "stale":
        now = T0 + 301 * NS
    elif case == "missing":
        header = None
    else:
        header = "sha256=abc"
    with pytest.raises(SignatureError, match=message):
        codec.verify_webhook([SECRET], header, body, now, tolerance_s=300)
