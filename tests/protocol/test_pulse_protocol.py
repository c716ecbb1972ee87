"""The Pulse session's protocol state without any socket or clock: the document's example frames
(tests/fixtures/pulse, verbatim from shared/seeds/004_df0ce6c3f341e5af.txt, wrapped in the JSON-RPC
envelope VENUES.md 5.2 assumes) go in, answers matched to requests, book verdicts and
de-duplicated trades come out. Times are plain numbers passed in."""

from __future__ import annotations

import json
import math
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from adapters.pulse import codec
from adapters.pulse.codec import CodecError, Heartbeat, Notification
from adapters.pulse.protocol import (
    APPLY,
    DUPLICATE,
    GAP,
    SNAPSHOT,
    UNKNOWN,
    WAITING,
    Answer,
    PulseProtocol,
    RecentIds,
)

FIXTURES = Path(__file__).parent.parent / "fixtures" / "pulse"
BTC = "BTC_USD-PERPETUAL"
OPTION = "BTC-31JUN23-50000-C"  # the instrument of the document's order and trade examples


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def as_response(name: str, req_id: int) -> str:
    return '{"jsonrpc":"2.0","id":' + str(req_id) + ',"result":' + fixture(name) + "}"


def as_notification(name: str, channel: str) -> str:
    return '{"jsonrpc":"2.0","method":"subscription","params":{"channel":"' + channel + '","data":' + \
        fixture(name) + "}}"


def documented_params(name: str) -> dict[str, Any]:
    body = json.loads(fixture(name), parse_float=Decimal)
    return body["params"] if "params" in body else body


def book(kind: str, change_id: int, prev_change_id: int | None, symbol: str = BTC) -> Any:
    """The document's book example (004 prints its levels as ``[[null]]``, PUL-6) with levels in
    the assumed Deribit format and the given change ids, decoded by the codec."""
    data = json.loads(fixture("book.instrument_name.interval.response.json"))
    data.update(type=kind, change_id=change_id, instrument_name=symbol,
                bids=[["new", 49999, 20]], asks=[["new", 50001, 10]])
    if prev_change_id is None:
        del data["prev_change_id"]
    else:
        data["prev_change_id"] = prev_change_id
    return codec.decode_book(data)


# ---- requests and answers ------------------------------------------------------------------


def test_requests_get_increasing_ids_and_encode_the_documented_params() -> None:
    protocol = PulseProtocol([BTC])
    params = documented_params("private.buy.request.json")
    first, frame = protocol.request("private/buy", params, context="order 1", epoch=1)
    second, _ = protocol.request("private/cancel", documented_params("private.cancel.request.json"), epoch=1)
    assert (first, second) == (1, 2)
    sent = json.loads(frame, parse_float=Decimal)
    assert sent == {"jsonrpc": "2.0", "id": 1, "method": "private/buy", "params": params}
    assert sorted(protocol.pending) == [1, 2] and protocol.pending[1].context == "order 1"


def typed(value: Any) -> Any:
    """``value`` with each leaf paired with its type: 10 and Decimal("10") differ, as on the wire."""
    if isinstance(value, dict):
        return {key: typed(item) for key, item in value.items()}
    if isinstance(value, list):
        return [typed(item) for item in value]
    return (type(value).__name__, value)


def documented_method(name: str) -> str:
    """The method a request fixture documents: ``private.get_order_state.request.json`` ->
    ``private/get_order_state``."""
    scope, method = name.removesuffix(".request.json").split(".", 1)
    return f"{scope}/{method}"


@pytest.mark.parametrize("name", sorted(p.name for p in FIXTURES.glob("*.request.json")))
def test_each_documented_request_body_leaves_as_the_document_prints_it(name: str) -> None:
    """Every "Body parameter" block of 004, sent through the session, leaves as a frame with the
    document's params, value for value and JSON type for type; where 004 prints the whole JSON-RPC
    envelope (it mixes envelopes and bare params, PUL-1), the frame has exactly its keys, its
    ``jsonrpc`` and an integer ``id`` like it (its ``method`` is the placeholder "Method Name")."""
    protocol = PulseProtocol([BTC])
    body = json.loads(fixture(name), parse_float=Decimal)
    params = documented_params(name)
    req_id, frame = protocol.request(documented_method(name), params, epoch=1)
    sent = json.loads(frame, parse_float=Decimal)
    assert sent["method"] == documented_method(name) and sent["id"] == req_id
    assert typed(sent["params"]) == typed(params)
    if "params" in body:
        assert set(sent) == set(body) and sent["jsonrpc"] == body["jsonrpc"] == "2.0"
        assert type(sent["id"]) is type(body["id"]) is int


def test_an_answer_is_matched_to_its_request_once_and_a_second_one_is_late() -> None:
    protocol = PulseProtocol([BTC])
    req_id, _ = protocol.request("private/buy", documented_params("private.buy.request.json"), "cb", epoch=1)
    answer = protocol.receive(as_response("private.buy.response.json", req_id))
    assert isinstance(answer, Answer) and answer.error is None
    assert answer.pending is not None and answer.pending.method == "private/buy" and answer.pending.context == "cb"
    assert codec.decode_order(answer.result["order"]).order_id == "60c72b2f9b1e8a001c8e4d5a"
    assert protocol.pending == {}
    again = protocol.receive(as_response("private.buy.response.json", req_id))
    assert isinstance(again, Answer) and again.pending is None  # nobody waits: a late answer


def test_an_error_answer_is_matched_with_its_code() -> None:
    protocol = PulseProtocol([BTC])
    req_id, _ = protocol.request("private/cancel", {"order_id": "x"}, epoch=1)
    answer = protocol.receive('{"jsonrpc":"2.0","id":' + str(req_id) + ',"error":{"code":10004,"message":"no"}}')
    assert isinstance(answer, Answer) and answer.pending is not None
    assert answer.result is None and answer.error is not None and answer.error.code == 10004
    unreadable = protocol.receive('{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"parse error"}}')
    assert isinstance(unreadable, Answer) and unreadable.pending is None and unreadable.req_id is None


def test_a_request_times_out_only_after_it_departed() -> None:
    protocol = PulseProtocol([BTC])
    waiting, _ = protocol.request("private/buy", {}, epoch=1)
    sent, _ = protocol.request("private/sell", {}, epoch=1)
    assert protocol.pending[waiting].deadline == math.inf  # still held by the rate limit
    protocol.departed(sent, deadline=105.0)
    assert protocol.expired(now=104.9) == []
    assert [p.req_id for p in protocol.expired(now=105.0)] == [sent]
    assert list(protocol.pending) == [waiting] and protocol.expired(now=1e12) == []
    protocol.departed(sent, deadline=1.0)  # already gone: nothing to update
    assert protocol.withdraw(waiting) is not None and protocol.withdraw(waiting) is None


def test_a_lost_connection_gives_back_its_own_requests_and_unsyncs_every_book() -> None:
    protocol = PulseProtocol([BTC])
    old, _ = protocol.request("private/buy", {}, epoch=1)
    new, _ = protocol.request("private/buy", {}, epoch=2)
    assert protocol.book(book("snapshot", 1, 0))[0] == SNAPSHOT
    assert [p.req_id for p in protocol.lost(1)] == [old]
    assert list(protocol.pending) == [new]
    assert protocol.book(book("change", 2, 1))[0] == WAITING  # the book waits for a new snapshot
    late = protocol.receive(as_response("public.set_heartbeat.response.json", old))
    assert isinstance(late, Answer) and late.pending is None


def test_an_unencodable_request_leaves_nothing_pending() -> None:
    protocol = PulseProtocol([BTC])
    with pytest.raises(CodecError, match="money must be Decimal"):
        protocol.request("private/buy", {"amount": 0.1}, epoch=1)  # a binary float: never on the wire
    assert protocol.pending == {}


# ---- notifications and heartbeats pass through -----------------------------------------------


def test_notifications_and_heartbeats_pass_through_decoded() -> None:
    protocol = PulseProtocol([BTC])
    channel = f"user.orders.{OPTION}.raw"
    msg = protocol.receive(as_notification("user.orders.instrument_name.raw.response.json", channel))
    assert isinstance(msg, Notification) and msg.channel == channel
    assert codec.decode_order(msg.data).label == "my_order"
    beat = protocol.receive('{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"test_request"}}')
    assert isinstance(beat, Heartbeat) and beat.kind == "test_request"
    with pytest.raises(CodecError):
        protocol.receive('{"jsonrpc":"2.0","id":1,"result":')  # cut short: the adapter counts it


# ---- book continuity ------------------------------------------------------------------------


def test_book_changes_apply_in_chain_and_a_gap_waits_for_the_next_snapshot() -> None:
    protocol = PulseProtocol([BTC])
    assert protocol.book(book("change", 5, 4))[0] == WAITING  # no snapshot yet
    verdict, state = protocol.book(book("snapshot", 1, 0))
    assert verdict == SNAPSHOT and state is not None and state.synced and state.change_id == 1
    assert protocol.book(book("change", 2, 1))[0] == APPLY
    assert protocol.book(book("change", 3, 2))[0] == APPLY
    verdict, state = protocol.book(book("change", 5, 4))  # change 4 never came
    assert verdict == GAP and state is not None and state.gaps == 1 and state.change_id == 3
    assert protocol.book(book("change", 6, 5))[0] == WAITING  # skipped until the resubscribe's snapshot
    assert protocol.book(book("snapshot", 9, 8))[0] == SNAPSHOT
    assert protocol.book(book("change", 10, 9))[0] == APPLY
    assert protocol.book(book("snapshot", 1, 0, symbol="ETH_USD-PERPETUAL")) == (UNKNOWN, None)


def test_a_change_sent_again_is_a_duplicate_not_a_gap() -> None:
    """Issue 20 (2.6): a duplicate change used to count as a gap (and resubscribe every time)."""
    protocol = PulseProtocol([BTC])
    protocol.book(book("snapshot", 1, 0))
    assert protocol.book(book("change", 2, 1))[0] == APPLY
    verdict, state = protocol.book(book("change", 2, 1))  # the same change again
    assert verdict == DUPLICATE and state is not None and state.synced and state.gaps == 0
    assert state.duplicates == 1 and state.change_id == 2
    assert protocol.book(book("change", 1, 0))[0] == DUPLICATE  # older than the snapshot's
    assert protocol.book(book("change", 3, 2))[0] == APPLY


def test_a_change_without_prev_change_id_applies_when_newer() -> None:
    """004 marks ``prev_change_id`` ``required: false``: a change without it cannot show a gap, so
    it applies when its ``change_id`` is newer (it used to count as a gap every time)."""
    protocol = PulseProtocol([BTC])
    protocol.book(book("snapshot", 10, 9))
    assert protocol.book(book("change", 14, None))[0] == APPLY
    assert protocol.book(book("change", 14, None))[0] == DUPLICATE
    assert protocol.book(book("change", 15, 14))[0] == APPLY
    assert protocol.book(book("change", 17, 16))[0] == GAP  # a prev that does not chain is still a gap


def test_a_fetched_snapshot_lets_the_next_change_start_the_chain() -> None:
    """``private/get_order_book`` has no change_id: after it, the next change (whatever its prev)
    starts the chain again, and the chain is checked from there."""
    protocol = PulseProtocol([BTC])
    fetched = codec.decode_order_book({"instrument_name": BTC, "bids": [[49000, 2]], "asks": [[49010, 1]],
                                       "timestamp": 1550757626706})
    assert fetched.snapshot and fetched.change_id == codec.NO_CHANGE_ID
    assert protocol.book(fetched)[0] == SNAPSHOT
    assert protocol.book(book("change", 500, 499))[0] == APPLY
    assert protocol.book(book("change", 502, 501))[0] == GAP


def test_a_fetched_snapshot_continues_from_the_last_change_the_channel_brought() -> None:
    """A venue that sends no snapshot (004 never says it does): the book is fetched after a gap,
    while changes keep coming. The answer holds every change sent before it on the same socket, so
    the chain continues from the last one seen, and a change lost after the fetch is a gap too."""
    protocol = PulseProtocol([BTC])
    fetched = codec.decode_order_book({"instrument_name": BTC, "bids": [[49000, 2]], "asks": [], "timestamp": 1})
    protocol.book(fetched)
    assert protocol.book(book("change", 7, 6))[0] == APPLY
    assert protocol.book(book("change", 9, 8))[0] == GAP  # 8 lost
    assert protocol.book(book("change", 10, 9))[0] == WAITING  # before the fetch's answer
    verdict, state = protocol.book(fetched)
    assert verdict == SNAPSHOT and state is not None and state.change_id == 10
    assert protocol.book(book("change", 10, 9))[0] == DUPLICATE  # already in the fetched book
    assert protocol.book(book("change", 12, 11))[0] == GAP  # 11 lost after the fetch
    protocol.unsync_books()  # a new connection: its change ids start afresh
    protocol.book(fetched)
    assert protocol.book(book("change", 2, 1))[0] == APPLY


def test_an_unreadable_book_frame_unsyncs_a_synced_book_once() -> None:
    protocol = PulseProtocol([BTC])
    assert protocol.book_unreadable(BTC) is None  # not synced: nothing to undo
    protocol.book(book("snapshot", 1, 0))
    state = protocol.book_unreadable(BTC)
    assert state is not None and not state.synced and state.gaps == 1
    assert protocol.book_unreadable(BTC) is None  # one resubscribe until the snapshot
    assert protocol.book(book("change", 2, 1))[0] == WAITING
    assert protocol.book_unreadable("ETH_USD-PERPETUAL") is None


# ---- de-duplication ------------------------------------------------------------------------


def test_each_public_trade_is_delivered_once() -> None:
    protocol = PulseProtocol([OPTION])
    trades = codec.decode_trades(json.loads(fixture("public.last_trades_by_instrument.response.json"),
                                            parse_float=Decimal))
    trade_id = trades[0].trade_id
    assert trade_id == "66fa560b912a3148d07efacf"
    assert protocol.first_public_trade(OPTION, trade_id)
    assert not protocol.first_public_trade(OPTION, trade_id)  # the channel and the poll both brought it
    assert protocol.first_public_trade(BTC, trade_id)  # an instrument without memory: always new


def test_recent_ids_remember_only_the_last_ones() -> None:
    seen = RecentIds(2)
    assert [seen.add(x) for x in ("a", "b", "a", "c", "a")] == [True, True, False, True, True]
    assert {x for x in ("a", "b", "c") if x in seen} == {"c", "a"} and len(seen) == 2
