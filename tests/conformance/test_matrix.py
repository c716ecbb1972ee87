"""The README matrix names every conformance test, so a test added to the suite shows up in it."""

from __future__ import annotations

import ast
from pathlib import Path

from conformance.matrix import MARKET_DATA_ROWS, ORDER_ENTRY_ROWS, Collector, Outcome, render

HERE = Path(__file__).resolve().parent


def functions_of(name: str) -> list[str]:
    tree = ast.parse((HERE / name).read_text(encoding="utf-8"))
    return [node.name for node in tree.body
            if isinstance(node, ast.AsyncFunctionDef | ast.FunctionDef) and node.name.startswith("test_")]


def test_every_conformance_test_has_a_row() -> None:
    assert functions_of("test_order_entry.py") == list(ORDER_ENTRY_ROWS)
    assert functions_of("test_market_data.py") == list(MARKET_DATA_ROWS)


def test_render_shows_outcomes_with_numbered_reasons() -> None:
    collector = Collector()
    collector.outcomes[("test_order_entry", "test_cancel", "a")] = Outcome("pass")
    collector.outcomes[("test_order_entry", "test_cancel", "b")] = Outcome("skip", "b cannot")
    collector.outcomes[("test_market_data", "test_snapshot_first", "f")] = Outcome("xfail", "f is wrong")
    text = render(collector)
    assert "| OE-05 cancel | pass | skip [1] |" in text
    assert "| MD-01 snapshot first | xfail [2] |" in text
    assert "[1] b cannot" in text and "[2] f is wrong" in text


def test_one_note_per_reason_and_a_column_per_mode() -> None:
    collector = Collector()
    for venue in ("a-everyday", "a-literal", "b-literal"):
        collector.outcomes[("test_order_entry", "test_cancel", venue)] = Outcome("skip", "no literal mode yet")
    collector.outcomes[("test_order_entry", "test_cancel", "a-everyday")] = Outcome("pass")
    text = render(collector)
    assert "| behaviour | a-everyday | a-literal | b-literal |" in text
    assert "| OE-05 cancel | pass | skip [1] | skip [1] |" in text and "[2]" not in text
