"""PSX Live Feed codec, without sockets: the document's endpoints and limit, the digest's proposed
messages (the document has none: PSX-1), and what the decoder makes of good and bad input."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path

import pytest

from adapters.psx_feed.codec import (
    ACCESS_LEVELS,
    HOSTS,
    MAX_CONNECTIONS_PER_TOKEN,
    PATHS,
    FeedDecoder,
    FeedError,
    Gap,
    IndexValue,
    L3Order,
    Malformed,
    MarketStatus,
    OrderTable,
    Subscribed,
    Welcome,
    encode_subscribe,
    feed_url,
    parse_ts,
    public_url,
    with_token_query,
)
from engine.model import BookUpdate, InstrumentStatus, Side, Trade

D = Decimal
FIXTURES = Path(__file__).parent.parent / "fixtures" / "psx_feed"
DOCUMENT = (FIXTURES / "document_excerpt.txt").read_text(encoding="utf-8")
PROPOSAL = (FIXTURES / "digest_proposal.txt").read_text(encoding="utf-8")
TS = "2024-01-01T04:30:00.000Z"
TS_NS = 1_704_083_400 * 1_000_000_000
RECV = 1_800_000_000 * 1_000_000_000


def proposal(label: str) -> str:
    """The digest's example after ``label`` (e.g. "tick"), verbatim, from the fixture."""
    for line in PROPOSAL.splitlines():
        if line.lstrip().startswith(f"- {label} `"):
            return line.split("`", 2)[1]
    raise AssertionError(f"no {label!r} example in the fixture")


def decoder(level: str = "L2") -> FeedDecoder:
    return FeedDecoder("PSX", level)


def one(events: list, kind: type):
    found = [e for e in events if type(e) is kind]
    assert len(found) == 1, events
    return found[0]


def book_snapshot(symbol: str = "MEBL", seq: int = 1) -> str:
    return json.dumps({"type": "book", "symbol": symbol, "snapshot": True, "bids": [[187.45, 1000, 3]],
                       "asks": [[187.55, 1500, 2]], "seq": seq})


def book_delta(seq: int, symbol: str = "MEBL", qty: int = 900) -> str:
    return json.dumps({"type": "book", "symbol": symbol, "snapshot": False, "bids": [[187.45, qty, 2]],
                       "asks": [], "seq": seq})


# ---- the document's own facts ------------------------------------------------------------------
def test_paths_and_access_levels_are_the_documents():
    table = dict(re.findall(r"^(/2\.0/\S+) \| (L\d) \|", DOCUMENT, re.M))
    assert table == {PATHS[name]: ACCESS_LEVELS[name] for name in PATHS}


def test_presets_are_the_documents_hosts():
    table = {env.lower(): host for host, env in re.findall(r"^(wss://\S+) \| (\w+) \|$", DOCUMENT, re.M)}
    assert table == HOSTS


def test_connection_limit_is_the_documents():
    limit = re.search(r"Only (\d+) concurrent connections are allowed per authentication token", DOCUMENT)
    assert limit is not None and int(limit.group(1)) == MAX_CONNECTIONS_PER_TOKEN


def test_url_is_host_plus_access_path():
    assert feed_url(HOSTS["staging"], "l2") == "wss://uat.csapis.com/2.0/market/feed/l2"
    assert feed_url(HOSTS["production"], "feed") == "wss://csapis.com/2.0/market/feed"
    assert feed_url("ws://127.0.0.1:9000", "full") == "ws://127.0.0.1:9000/2.0/market/feed/full"
    assert feed_url("wss://broker.example/md/v3", "full") == "wss://broker.example/md/v3"  # any URL allowed


def test_bad_url_is_refused_by_name():
    with pytest.raises(ValueError, match="ws://"):
        feed_url("https://csapis.com", "full")
    with pytest.raises(ValueError, match="access level"):
        feed_url(HOSTS["staging"], "l3")


def test_token_in_query_is_never_in_the_public_url():
    url = with_token_query("ws://127.0.0.1:9000/2.0/market/feed?x=1", "s3cr3t-token")
    assert "token=s3cr3t-token" in url and "x=1" in url
    assert "s3cr3t" not in public_url(url)
    assert public_url(url) == "ws://127.0.0.1:9000/2.0/market/feed"


# ---- the digest's proposed messages (PSX-1), verbatim where the proposal gives values -------------
def test_welcome_example_decodes_verbatim():
    event = one(decoder().decode(proposal("connect → server"), RECV), Welcome)
    assert event.level == "L2"
    assert event.server_time == TS_NS


def test_subscribe_request_is_the_examples_shape():
    example = proposal("client")
    assert json.loads(encode_subscribe(["MEBL", "OGDC"])) == json.loads(example)


def test_subscribed_example_decodes():
    text = PROPOSAL.split("→ `", 1)[1].split("`", 1)[0]  # {"type":"subscribed","symbols":[...]}
    assert text == '{"type":"subscribed","symbols":[...]}'
    event = one(decoder().decode(text.replace("[...]", '["MEBL","OGDC"]'), RECV), Subscribed)
    assert event.symbols == ("MEBL", "OGDC")


def tick_text(**changes: object) -> str:
    """The digest's tick verbatim, its ``"ts":"...Z"`` placeholder filled with TS, and any field
    the test names set to the given JSON text."""
    text = proposal("tick")
    assert '"ts":"...Z"' in text
    text = text.replace('"ts":"...Z"', f'"ts":"{TS}"')
    for key, value in changes.items():
        text = re.sub(rf'"{key}":[^,}}]+', f'"{key}":{value}', text)
    return text


def test_tick_example_first_is_a_snapshot_reference_and_no_trade():
    events = decoder("L1").decode(tick_text(), RECV)
    status = one(events, InstrumentStatus)
    assert status.reference_price == D("180.5") and status.ts == TS_NS
    assert not [e for e in events if type(e) is Trade]  # the first tick is state, not a print
    top = one(events, BookUpdate)  # L1: top of book from the tick
    assert top.snapshot and top.seq == 123
    assert top.changes == ((Side.BUY, D("187.45"), D(1000)), (Side.SELL, D("187.55"), D(1500)))


def test_tick_whose_volume_grew_is_a_public_trade():
    dec = decoder("L1")
    dec.decode(tick_text(), RECV)
    events = dec.decode(tick_text(volume=125500, ltp=187.55, seq=124), RECV)
    trade = one(events, Trade)
    assert (trade.symbol, trade.price, trade.qty, trade.aggressor) == ("MEBL", D("187.55"), D(500), None)
    assert trade.trade_id == "MEBL:125500"
    assert not [e for e in events if type(e) is BookUpdate]  # top unchanged: no book event


def test_tick_at_l2_adds_nothing_to_the_book():
    events = decoder("L2").decode(tick_text(), RECV)
    assert not [e for e in events if type(e) is BookUpdate]


def test_tick_of_another_board_is_read_but_not_traded():
    dec = decoder("L1")
    dec.decode(tick_text(), RECV)
    assert dec.decode(tick_text(market='"ODL"', volume=130000, seq=124), RECV) == []
    assert dec.other_board == 1


def test_falling_volume_is_a_new_day_not_a_trade():
    dec = decoder("L1")
    dec.decode(tick_text(), RECV)
    events = dec.decode(tick_text(volume=500, prev_close=187.5, seq=124), RECV)
    assert not [e for e in events if type(e) is Trade]
    assert one(events, InstrumentStatus).reference_price == D("187.5")


def test_book_example_snapshot_then_delta():
    template = proposal("L2 book")
    assert '"snapshot":true|false' in template and "[[price,qty,orders]]" in template
    dec = decoder()
    snapshot = template.replace("true|false", "true").replace("[[price,qty,orders]]", "[[187.45,1000,3]]")
    snapshot = snapshot.replace('"asks":[...]', '"asks":[[187.55,1500,2],[187.60,0,0]]')
    update = one(dec.decode(snapshot, RECV), BookUpdate)
    assert update.snapshot and update.seq == 124 and update.ts == RECV  # the proposal's book has no ts
    assert update.changes == ((Side.BUY, D("187.45"), D(1000)), (Side.SELL, D("187.55"), D(1500)))
    delta = template.replace("true|false", "false").replace("[[price,qty,orders]]", "[[187.45,0,0]]")
    delta = delta.replace('"asks":[...]', '"asks":[]').replace('"seq":124', '"seq":125')
    update = one(dec.decode(delta, RECV), BookUpdate)
    assert not update.snapshot and update.changes == ((Side.BUY, D("187.45"), D(0)),)  # qty 0 deletes


@pytest.mark.parametrize("action", ["add", "modify", "delete", "execute"])
def test_order_example_each_action(action: str):
    template = proposal("L2 orders")
    text = (template.replace("add|modify|delete|execute", action).replace('"order_id":"..."', '"order_id":"A1"')
            .replace("B|S", "S").replace('"price":...', '"price":187.55').replace('"qty":...', '"qty":500')
            .replace('"seq":...', '"seq":7'))
    dec = decoder()
    dec.decode(book_snapshot(seq=6), RECV)
    event = one(dec.decode(text, RECV), L3Order)
    assert (event.action, event.order_id, event.side, event.price, event.qty) == (
        action, "A1", Side.SELL, D("187.55"), D(500))


def test_order_table_follows_add_modify_execute_delete_without_a_socket():
    def event(action: str, order_id: str, qty: str | None, price: str | None = "187.55") -> L3Order:
        return L3Order("MEBL", action, order_id, Side.SELL if action == "add" else None,
                       None if price is None else D(price), None if qty is None else D(qty), None, TS_NS)

    table = OrderTable()
    table.apply(event("add", "A1", "500"))
    table.apply(event("add", "A2", "100", "187.60"))
    table.apply(event("modify", "A1", "400", None))  # a modify keeps what it does not say
    table.apply(event("execute", "A2", "100"))  # fully executed: gone
    table.apply(event("execute", "A1", "150"))
    assert table.orders("MEBL") == {"A1": (Side.SELL, D("187.55"), D(250))}
    table.apply(event("delete", "A9", None))  # never added
    assert table.unknown == 1
    table.apply(event("delete", "A1", None))
    assert table.orders("MEBL") == {} and table.orders("OGDC") == {}
    table.apply(event("add", "A3", "10"))
    table.reset("MEBL")  # a book snapshot: the table starts again
    assert table.orders("MEBL") == {}


def test_index_example():
    text = proposal("index").replace('"value":...', '"value":78123.45').replace('"change":...', '"change":-120.5')
    text = text.replace('"ts":...', f'"ts":"{TS}"')
    event = one(decoder().decode(text, RECV), IndexValue)
    assert (event.symbol, event.value, event.change, event.ts) == ("KSE100", D("78123.45"), D("-120.5"), TS_NS)


@pytest.mark.parametrize("state", ["PRE_OPEN", "OPEN", "POST_CLOSE", "CLOSED"])
def test_market_status_example(state: str):
    text = proposal("market status").replace("PRE_OPEN|OPEN|POST_CLOSE|CLOSED", state)
    text = text.replace('"ts":...', f'"ts":"{TS}"')
    event = one(decoder().decode(text, RECV), MarketStatus)
    assert (event.state, event.ts) == (state, TS_NS)


def test_symbol_market_status_halts_and_resumes():
    dec = decoder()
    halt = one(dec.decode('{"type":"market_status","symbol":"MEBL","state":"HALT","reason":"band hit"}', RECV),
               InstrumentStatus)
    assert halt.halted is True and halt.reason == "band hit"
    resume = one(dec.decode('{"type":"market_status","symbol":"MEBL","state":"OPEN"}', RECV), InstrumentStatus)
    assert resume.halted is False


def test_error_message():
    event = one(decoder().decode('{"type":"error","code":"unknown_symbol","message":"no","symbols":["XYZ"]}', RECV),
                FeedError)
    assert (event.code, event.symbols) == ("unknown_symbol", ("XYZ",))


# ---- money is exact ------------------------------------------------------------------------------
def test_every_number_is_a_decimal_never_a_float():
    dec = decoder("L1")
    events = dec.decode(tick_text(), RECV) + dec.decode(tick_text(volume=125100, ltp=0.1, seq=124), RECV)
    values = []
    for event in events:
        for name in ("price", "qty", "reference_price"):
            value = getattr(event, name, None)
            if value is not None:
                values.append(value)
        for change in getattr(event, "changes", ()):
            values.extend(change[1:])
    assert values and all(type(v) is Decimal for v in values)
    assert D("0.1") in values  # exactly 0.1, which no binary float is


def test_timestamps_are_exact_nanoseconds():
    assert parse_ts("2024-01-01T04:30:00.123Z") == TS_NS + 123_000_000
    assert parse_ts("2024-01-01T04:30:00Z") == TS_NS
    assert parse_ts("2024-01-01T09:30:00.5+05:00") == TS_NS + 500_000_000
    with pytest.raises(ValueError):
        parse_ts("2024-01-01T04:30:00")  # no zone


# ---- sequence and snapshots -----------------------------------------------------------------------
def test_gap_is_reported_and_deltas_wait_for_a_fresh_snapshot():
    dec = decoder()
    dec.decode(book_snapshot(seq=1), RECV)
    assert one(dec.decode(book_delta(2), RECV), BookUpdate).seq == 2
    events = dec.decode(book_delta(5), RECV)
    gap = one(events, Gap)
    assert (gap.expected, gap.received) == (3, 5)
    assert not [e for e in events if type(e) is BookUpdate]  # dropped: the book missed two messages
    assert dec.decode(book_delta(6), RECV) == [] and dec.dropped == 2
    assert one(dec.decode(book_snapshot(seq=7), RECV), BookUpdate).snapshot
    assert one(dec.decode(book_delta(8), RECV), BookUpdate).seq == 8


def test_delta_before_any_snapshot_is_dropped():
    dec = decoder()
    assert dec.decode(book_delta(1), RECV) == []
    assert dec.dropped == 1


def test_new_connection_restarts_seq_and_waits_for_snapshots():
    dec = decoder()
    dec.decode(book_snapshot(seq=40), RECV)
    dec.new_connection()
    assert not [e for e in dec.decode(book_snapshot(seq=1), RECV) if type(e) is Gap]


def test_backwards_seq_is_malformed_and_changes_nothing():
    dec = decoder()
    dec.decode(book_snapshot(seq=10), RECV)
    with pytest.raises(Malformed, match="backwards"):
        dec.decode(book_delta(9), RECV)
    assert dec.last_seq == 10
    assert one(dec.decode(book_delta(11), RECV), BookUpdate).seq == 11


def test_a_malformed_sequenced_message_shows_as_a_gap_next():
    dec = decoder()
    dec.decode(book_snapshot(seq=1), RECV)
    with pytest.raises(Malformed):
        dec.decode('{"type":"book","symbol":"MEBL","snapshot":false,"bids":[[187.45,-5]],"seq":2}', RECV)
    assert one(dec.decode(book_delta(3), RECV), Gap).expected == 2


# ---- bad input ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('{"type":"tick","symbol":', "invalid JSON"),
        ("[1,2]", "not a JSON object"),
        ('{"type":"trade"}', "unknown message type"),
        ('{"type":"tick","ltp":1.5}', "missing field 'symbol'"),
        ('{"type":"tick","symbol":"MEBL","ltp":"187.5"}', "expected a JSON number"),
        ('{"type":"tick","symbol":"MEBL","ltq":true}', "expected a JSON number"),
        ('{"type":"tick","symbol":"MEBL","ltp":NaN}', "invalid JSON"),
        ('{"type":"tick","symbol":"MEBL","ltp":-1}', "must be positive"),
        ('{"type":"tick","symbol":"MEBL","ts":"yesterday"}', "tick"),
        ('{"type":"book","symbol":"MEBL","snapshot":"yes"}', "snapshot"),
        ('{"type":"book","symbol":"MEBL","bids":[[187.5]]}', "a level is"),
        ('{"type":"order","symbol":"MEBL","action":"replace","order_id":"1"}', "action"),
        ('{"type":"order","symbol":"MEBL","action":"add","order_id":"1","side":"X","price":1,"qty":1}', "side"),
        ('{"type":"order","symbol":"MEBL","action":"add","order_id":"1","side":"B"}', "add needs"),
        ('{"type":"tick","symbol":"MEBL","seq":1.5}', "seq"),
    ],
)
def test_malformed_messages_name_the_problem(text: str, reason: str):
    with pytest.raises(Malformed, match=re.escape(reason)) as info:
        decoder().decode(text, RECV)
    assert info.value.sample == text[:200]


def test_binary_frame_is_malformed():
    with pytest.raises(Malformed, match="binary"):
        decoder().decode(b'{"type":"tick"}', RECV)


def test_malformed_sample_is_bounded():
    with pytest.raises(Malformed) as info:
        decoder().decode("x" * 10_000, RECV)
    assert len(info.value.sample) == 200


def test_integer_quantities_become_decimals_and_keep_their_bounds():
    """PSX sizes are integers: each becomes a Decimal (money and sizes stay exact, never int or
    float downstream), a zero in a snapshot is no level, and a negative, boolean or out-of-range
    size is refused as before the inlined check."""
    feed = decoder()
    (update,) = feed.decode('{"type":"book","symbol":"MEBL","snapshot":true,'
                            '"bids":[[100.00,500,1],[99.99,0,0]],"asks":[[100.01,700]],"seq":1}', 0)
    assert update.changes == ((Side.BUY, Decimal("100.00"), Decimal(500)), (Side.SELL, Decimal("100.01"), Decimal(700)))
    assert all(type(qty) is Decimal for _, _, qty in update.changes)
    for bad in ("-1", "true", str(10**18)):
        with pytest.raises(Malformed):
            feed.decode('{"type":"book","symbol":"MEBL","snapshot":false,'
                        f'"bids":[[100.00,{bad},1]],"asks":[],"seq":2}}', 0)
