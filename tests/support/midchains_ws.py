"""The MidChains document's WebSocket examples as the tests read them: one file per example under
tests/fixtures/midchains/ (``ws_examples.<name>.json``, or ``.txt`` for the "Reject Messages"
sample lines), each copied verbatim from shared/seeds/001_a6a531a293923345.txt and checked line for
line against it by tests/protocol/test_fixtures.py."""

from __future__ import annotations

import json
from pathlib import Path

FOLDER = Path(__file__).resolve().parent.parent / "fixtures" / "midchains"


def names() -> list[str]:
    """Every example's name (``login.response``, ``reject_margin.sample`` ...)."""
    return sorted(p.name.removeprefix("ws_examples.").rsplit(".", 1)[0] for p in FOLDER.glob("ws_examples.*"))


def example(name: str) -> str:
    """The example's text exactly as the document prints it (its lines, each with its newline)."""
    found = list(FOLDER.glob(f"ws_examples.{name}.*"))
    assert len(found) == 1, f"no single fixture for {name!r}: {found}"
    return found[0].read_text(encoding="utf-8")


def objects(text: str) -> list[str]:
    """The JSON objects a sample line holds one after another (two of the document's reject
    samples print the answer and the order push on one line), as their own texts."""
    decoder = json.JSONDecoder()
    out, position = [], 0
    while position < len(text):
        while position < len(text) and text[position].isspace():
            position += 1
        if position == len(text):
            break
        _, end = decoder.raw_decode(text, position)
        out.append(text[position:end])
        position = end
    return out
