"""The ``querytrade`` fee (``comm`` in ``commsecurity``) in the pair's quote currency, read from
document 001's own querytrade answer (tests/fixtures/midchains/ws_examples.querytrade.response.json)."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from pathlib import Path

from adapters.midchains.ws_adapter import fee_in_quote
from adapters.midchains.ws_codec import decode_message

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "midchains" / "ws_examples.querytrade.response.json"


def test_the_documents_fee_in_the_base_asset_is_valued_at_the_execution_price() -> None:
    first, second = decode_message(FIXTURE.read_text()).records
    assert (first.fee, first.fee_asset, first.price) == (Decimal("0.00001"), "LTC", Decimal(30))
    assert fee_in_quote(first) == Decimal("0.00030")  # 0.00001 LTC x 30 USD, exact
    assert fee_in_quote(second) is None  # no comm: the engine charges its schedule


def test_a_fee_in_the_quote_asset_is_taken_as_is_and_another_asset_is_not_guessed() -> None:
    first, _ = decode_message(FIXTURE.read_text()).records
    assert fee_in_quote(replace(first, fee_asset="USD")) == Decimal("0.00001")
    assert fee_in_quote(replace(first, fee_asset=None)) == Decimal("0.00001")
    assert fee_in_quote(replace(first, fee_asset="MCX")) is None
