"""What the engine's log lines say (issue 18, section 4): a strategy's lines name the strategy in
both formats and stay scrubbed of secrets; the settlement at each close is one short line of totals.

Each test drives a real engine (real loader, the paper venue on a simulated clock) through the
handler ``engine run`` installs (:func:`engine.cli.setup_logging`), reading what it writes to stderr.
"""

from __future__ import annotations

import json
import logging

import pytest

from engine.cli import setup_logging
from engine.secrets import Redactor

SECRET = "tok-7f3a9c1e55d24b"

CHATTY = """\
from engine import hookimpl

@hookimpl
def on_start(ctx):
    pass
"""


@pytest.fixture
def engine_log(capsys):
    """Install the engine's stderr handler for one test and put the root logger back afterwards
    (pytest's own capture handlers included). Yields a function that reads what was written."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level

    def install(fmt: str) -> None:
        setup_logging("INFO", fmt, Redactor([SECRET]))

    def written() -> list[str]:
        return capsys.readouterr().err.splitlines()

    try:
        yield install, written
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


def _log_from_strategy(build_engine) -> None:
    engine = build_engine({"mm": CHATTY})
    ctx = engine.runtime.runners["mm"].ctx
    ctx.log.info("quote moved to %s", "187.55")
    ctx.log.warning("login with token %s", SECRET)
    ctx.log.getChild("quotes").info("child line")
    logging.getLogger("engine").info("an engine line")


def test_a_strategy_line_names_the_strategy_in_the_human_format(build_engine, engine_log):
    install, written = engine_log
    install("human")
    _log_from_strategy(build_engine)
    lines = written()
    quote = next(line for line in lines if "quote moved" in line)
    assert quote.endswith("INFO    [mm] quote moved to 187.55")
    assert any(line.endswith("WARNING [mm] login with token ***") for line in lines)
    assert any(line.endswith("INFO    [mm] child line") for line in lines)  # ctx.log's children too
    assert any(line.endswith("INFO    an engine line") for line in lines)  # the engine's own: no tag
    assert all(SECRET not in line for line in lines)


def test_a_strategy_line_carries_a_strategy_field_in_json(build_engine, engine_log):
    install, written = engine_log
    install("json")
    _log_from_strategy(build_engine)
    entries = [json.loads(line) for line in written()]
    quote = next(e for e in entries if e["message"] == "quote moved to 187.55")
    assert quote["strategy"] == "mm" and quote["logger"] == "strategy.mm"
    token = next(e for e in entries if e["message"].startswith("login with token"))
    assert token["strategy"] == "mm" and token["message"] == "login with token ***"
    assert next(e for e in entries if e["message"] == "child line")["strategy"] == "mm"
    assert "strategy" not in next(e for e in entries if e["message"] == "an engine line")
    assert all(SECRET not in json.dumps(e) for e in entries)
