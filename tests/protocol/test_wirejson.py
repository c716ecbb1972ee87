"""The kit's reader parses with msgspec and lets stdlib json decide whatever msgspec refuses: for
every input the answer (the values, or the refusal's kind and message) is stdlib's alone."""

from __future__ import annotations

import importlib.util
import json
from decimal import Decimal
from typing import Any

import msgspec
import pytest
from support import REPO

from adapters.kit import wirejson
from engine.venue.badinput import BAD_NUMBER, NOT_JSON

_spec = importlib.util.spec_from_file_location("wirejson_fuzz", REPO / "benchmarks" / "fuzz.py")
assert _spec is not None and _spec.loader is not None
fuzz = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fuzz)


def outcome(loads: Any, raw: str | bytes) -> tuple[str, str]:
    """Values with their types (Decimal "1.0" and int 1 differ), or the refusal's kind and text."""
    try:
        value = loads(raw)
    except wirejson.WireError as exc:
        return ("refused", f"{exc.kind}: {exc.reason}")
    return ("read", json.dumps(value, default=lambda v: f"{type(v).__name__}:{v}", sort_keys=True))


def test_fractions_are_exact_decimals_and_integers_ints() -> None:
    value = wirejson.Reader().loads('{"p": 187.45, "q": 1.0000000000000000000000000001, "n": 500, "e": 1e5}')
    assert value == {"p": Decimal("187.45"), "q": Decimal("1.0000000000000000000000000001"), "n": 500,
                     "e": Decimal("1E+5")}
    assert type(value["n"]) is int and type(value["e"]) is Decimal


@pytest.mark.parametrize("raw", ['"\\ud800"', '["\\udfff", 1.5]'])
def test_what_msgspec_refuses_but_json_reads_is_still_read(raw: str) -> None:
    """msgspec refuses a lone-surrogate escape; stdlib json (and so the reader) reads it."""
    with pytest.raises(msgspec.DecodeError):
        msgspec.json.decode(raw)
    reader = wirejson.Reader()
    assert reader.loads(raw) == reader.stdlib_loads(raw) == json.loads(raw, parse_float=Decimal)


@pytest.mark.parametrize(("raw", "kind", "text"), [
    ('{"ltp": NaN}', BAD_NUMBER, "non-finite number NaN refused"),
    ("[Infinity]", BAD_NUMBER, "non-finite number Infinity refused"),
    ('{"a": 1', NOT_JSON, "not JSON: Expecting ',' delimiter: line 1 column 8 (char 7)"),
    ("[1] x", NOT_JSON, "not JSON: Extra data: line 1 column 5 (char 4)"),
    ("[" + "9" * 5000 + "]", BAD_NUMBER, "number out of range: Exceeds the limit (4300 digits)"),
    ("[1e999999]", BAD_NUMBER, "number out of range (Overflow)"),
])
def test_a_refusal_has_stdlib_kind_and_message(raw: str, kind: str, text: str) -> None:
    with pytest.raises(wirejson.WireError) as caught:
        wirejson.Reader().loads(raw)
    assert caught.value.kind == kind and caught.value.reason.startswith(text)


@pytest.mark.parametrize("codec", fuzz.CODECS)
def test_the_reader_answers_as_stdlib_json_on_fuzzed_frames(codec: str) -> None:
    """3,000 mutated documented frames per codec (benchmarks/fuzz.py): same values, or the same
    refusal, as the stdlib reader."""
    reader = wirejson.Reader()
    mutator = fuzz.Mutator(fuzz.SEEDS[codec](), fuzz.hostile_seeds(codec), 19)
    differing = []
    for index in range(3000):
        raw = mutator.message(index)
        if outcome(reader.loads, raw) != outcome(reader.stdlib_loads, raw):
            differing.append(raw)
    assert differing == []


# ---- the number cache of the fast parser (issue 22)


def test_a_repeated_number_comes_back_as_the_same_decimal():
    """A feed repeats its prices: the second read of a number text gives the same (immutable)
    Decimal object, whose hash a book keyed by price has already computed."""
    reader = wirejson.Reader()
    first = reader.loads('{"p":[100.01,2.5e3]}')["p"]
    again = reader.loads('[100.01, 2.5e3]')
    assert again[0] is first[0] and again[1] is first[1]
    assert again == [Decimal("100.01"), Decimal("2.5E+3")] and type(again[0]) is Decimal


def test_the_number_cache_keeps_every_refusal_and_stays_bounded():
    reader = wirejson.Reader()
    first = reader.loads("[7.25]")[0]
    for _ in range(2):  # a refused number is never remembered: refused again, the same way
        with pytest.raises(wirejson.WireError) as refused:
            reader.loads("[1e999999]")
        assert refused.value.kind == BAD_NUMBER
    assert reader.loads("[7.25]")[0] is first
    for index in range(wirejson.NUMBER_CACHE_SIZE + 1):  # ever-new numbers: it starts over
        assert reader.loads(f"[{index}.5]")[0] == Decimal(f"{index}.5")
    later = reader.loads("[7.25]")[0]
    assert later == first and later is not first


def test_int_decimal_is_exact_and_shared():
    assert wirejson.int_decimal(500) == Decimal(500) and type(wirejson.int_decimal(500)) is Decimal
    assert wirejson.int_decimal(-7) is wirejson.int_decimal(-7)
    assert wirejson.int_decimal(10**18 - 1) == Decimal(10**18 - 1)
    remembered = wirejson.int_decimal.__self__  # type: ignore[attr-defined]  # the cache behind it
    for value in range(10**9, 10**9 + 2 * wirejson.NUMBER_CACHE_SIZE):
        assert wirejson.int_decimal(value) == Decimal(value)
    assert len(remembered) <= wirejson.NUMBER_CACHE_SIZE  # bounded: it started over


class _Level(msgspec.Struct):
    price: Any
    size: Any


def test_a_typed_decoder_reads_numbers_as_the_reader_does() -> None:
    """``typed_decoder``'s untyped numbers are the reader's: exact, the very same Decimal object
    (the shared cache), ints left as ints; a number past the bounds raises (the caller then reads
    the text with its Reader, which decides)."""
    decode = wirejson.typed_decoder(list[_Level])
    levels = decode('[{"price": 49974.5, "size": 10}, {"price": 1e3, "size": 0.10}]')
    loaded = wirejson.Reader().loads('[49974.5, 1e3, 0.10]')
    assert [(lv.price, lv.size) for lv in levels] == [(Decimal("49974.5"), 10), (Decimal("1E+3"), Decimal("0.10"))]
    assert levels[0].price is loaded[0] and levels[1].price is loaded[1] and levels[1].size is loaded[2]
    assert type(levels[0].size) is int
    for refused in ('[{"price": 1e999999, "size": 1}]', '[{"price": 0.' + "1" * 70 + ', "size": 1}]'):
        with pytest.raises(Exception):  # noqa: B017 - any refusal: the Reader gives the verdict
            decode(refused)
        with pytest.raises(wirejson.WireError):
            wirejson.Reader().loads(refused)
