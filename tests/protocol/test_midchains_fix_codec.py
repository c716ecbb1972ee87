"""The MidChains document's FIX examples (tests/fixtures/midchains/fix_examples.txt, verbatim; the
fixture is checked line for line against the document by tests/protocol/test_fixtures.py). Every
example carries a wrong BodyLength and CheckSum (venue-notes/midchains-algo724.md 3.4): the codec
refuses each as printed, naming the wrong field, and accepts it once its 9 and 10 are recomputed;
the garbled ones stay refused."""

from __future__ import annotations

from decimal import Decimal

import pytest
from support.midchains_fix import examples

from adapters.midchains.codec import FixCodecError, decode, reframe

#: (document line, MsgType, declared 9, actual body length): venue-notes 3.4's table, recomputed
WELL_FORMED = [
    (139, "A", 70, 73),  # client Logon
    (142, "A", 72, 77),  # gateway Logon
    (180, "0", 58, 63),  # gateway Heartbeat
    (199, "D", 160, 164),
    (206, "8", 230, 235),  # ER NEW
    (209, "8", 300, 305),  # ER FILL
    (234, "F", 188, 186),
    (237, "F", 183, 187),  # the "gateway reply": an echoed F (MID-4)
    (255, "F", 188, 187),  # labelled G, carries 35=F (MID-4)
    (258, "G", 183, 189),
    (336, "W", 103, 108),
]
GARBLED = {
    157: "A10",  # the client Logout: "^AA10=128"
    177: "no CheckSum",  # the client Heartbeat, printed without separators
    354: "BeginString",  # "8=FIX.4.8=FIX.4.2"
    356: "appears 2 times|not canonical|last field, once",  # two X messages run together
}
LINES = [139, 142, 157, 177, 180, 199, 206, 209, 234, 237, 255, 258, 336, 354, 356]


def as_printed(line: int) -> bytes:
    """The example at document line ``line``, its ``^A`` made SOH and nothing else changed."""
    return examples()[LINES.index(line)].replace("^A", "\x01").encode()


def test_the_fixture_holds_every_fix_example_of_the_document() -> None:
    assert len(examples()) == len(LINES) == len(WELL_FORMED) + len(GARBLED)


@pytest.mark.parametrize(("line", "msg_type", "declared", "actual"), WELL_FORMED)
def test_each_example_is_refused_as_printed_and_accepted_reframed(
    line: int, msg_type: str, declared: int, actual: int
) -> None:
    printed = as_printed(line)
    with pytest.raises(FixCodecError, match=rf"BodyLength \(9\) is '{declared}'; the body is {actual} bytes"):
        decode(printed)
    message = decode(reframe(printed))
    assert message.msg_type == msg_type
    assert message.get(9) == str(actual)
    # reframing changed 9 and 10 only
    assert [f for f in message.fields if f[0] not in (9, 10)] == [
        (int(tag), value) for tag, _, value in (f.partition("=") for f in printed.decode().split("\x01") if f)
        if int(tag) not in (9, 10)
    ]


def test_a_right_body_length_with_the_documents_checksum_is_refused_for_the_checksum() -> None:
    """The client Logon with 9 corrected but its printed 10=049 (the bytes sum to 023)."""
    fixed_length = as_printed(139).replace(b"\x019=70\x01", b"\x019=73\x01")
    with pytest.raises(FixCodecError, match=r"CheckSum \(10\) is '049'; the bytes sum to 023"):
        decode(fixed_length)


@pytest.mark.parametrize(("line", "reason"), sorted(GARBLED.items()))
def test_garbled_examples_stay_refused(line: int, reason: str) -> None:
    with pytest.raises(FixCodecError, match=reason):
        decode(as_printed(line))
    with pytest.raises(FixCodecError):
        decode(reframe(as_printed(line)))


def test_the_documents_values_come_through_exactly() -> None:
    """The reframed ER FILL: FractionBase, maker/taker and prices as the document prints them
    (prices read as Decimal, never float)."""
    fill = decode(reframe(as_printed(209)))
    assert fill.get(43229) == "10000" and fill.get(43214) == "T" and fill.get(17) == "62XGZUU7W05SC32_62XGZUU7W05T"
    assert Decimal(fill.get(31) or "") == Decimal("141.78")
    assert Decimal(fill.get(32) or "") / Decimal(fill.get(43229) or "") == Decimal("0.1")
    order = decode(reframe(as_printed(199)))
    assert order.get(52) == "20210714-10:31:02568"  # the document's missing '.' is kept, not repaired
