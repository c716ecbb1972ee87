"""The instrument master's numbers are checked before anything trades (issue 18, section 4):
``engine check`` and ``engine run`` refuse a lot, tick or previous close that no venue could take,
with the usual config error naming file, line and key.

The rule for lots: every lot_size is above 0 (any venue); a venue whose adapter trades whole
shares (``Adapter.whole_shares``: paper and Optimus, PSX) also refuses a fractional lot, in the
master or in a rule pack that overrides it; a crypto venue (Pulse) keeps fractional lots.
"""

from __future__ import annotations

import pytest
from support import IDLE_STRATEGY, REPO

from engine.cli import main

PAPER = """\
run: {clock: simulated, start: 2026-11-23, days: 1}
instruments:
  - {symbol: MEBL, venue: paper, tick_size: 0.01, lot_size: 1, previous_close: 187.50}
  - {symbol: OGDC, venue: paper, tick_size: 0.05, lot_size: 500, previous_close: 109.30}
venues:
  paper: {adapter: paper}
strategies:
  - {name: s, file: s.py, venue: paper, instruments: [MEBL, OGDC]}
"""


def write(tmp_path, text: str):
    (tmp_path / "s.py").write_text(IDLE_STRATEGY)
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def line_of(text: str, needle: str) -> int:
    return next(number for number, line in enumerate(text.splitlines(), 1) if needle in line)


def refused(tmp_path, capsys, text: str) -> str:
    """The error both ``engine check`` and ``engine run`` print for ``text`` (exit 1 each)."""
    path = write(tmp_path, text)
    assert main(["check", str(path)]) == 1
    checked = capsys.readouterr().err
    assert main(["run", str(path)]) == 1
    assert capsys.readouterr().err == checked
    return checked


@pytest.mark.parametrize(
    ("old", "new", "key", "sentence"),
    [
        ("lot_size: 1,", "lot_size: 1.5,", "instruments[0].lot_size",
         "lot_size 1.5 is not whole: venue 'paper' (paper) trades whole shares; a PSX lot is 1, or 500 for ETFs "
         "and futures"),
        ("previous_close: 187.50", "previous_close: 187.555", "instruments[0].previous_close",
         "previous_close 187.555 is not on the tick grid of tick_size 0.01 (nearest ticks 187.55 and 187.56)"),
        ("previous_close: 109.30", "previous_close: 109.32", "instruments[1].previous_close",
         "previous_close 109.32 is not on the tick grid of tick_size 0.05 (nearest ticks 109.30 and 109.35)"),
        ("previous_close: 187.50", "previous_close: 1e30", "instruments[0].previous_close",
         "previous_close 1E+30 is too many ticks of tick_size 0.01 for exact arithmetic"),
        ("tick_size: 0.01", "tick_size: 0", "instruments[0].tick_size", "Input should be greater than 0 (got 0)"),
        ("tick_size: 0.01", "tick_size: -0.01", "instruments[0].tick_size",
         "Input should be greater than 0 (got -0.01)"),
        ("lot_size: 1,", "lot_size: 0,", "instruments[0].lot_size", "Input should be greater than 0 (got 0)"),
        ("lot_size: 500,", "lot_size: -500,", "instruments[1].lot_size", "Input should be greater than 0 (got -500)"),
    ],
)
def test_a_bad_instrument_number_is_refused_at_its_key_and_line(tmp_path, capsys, old, new, key, sentence):
    text = PAPER.replace(old, new)
    err = refused(tmp_path, capsys, text)
    path = tmp_path / "config.yaml"
    assert f"{path}:{line_of(text, new)}: {key}: {sentence}" in err, err


def test_a_fractional_lot_from_a_rule_pack_is_refused_for_a_whole_share_venue(tmp_path, capsys):
    text = PAPER + "risk:\n  rules: {lot_size: '0.5'}\n  instruments:\n    OGDC: {lot_size: '2.5'}\n"
    err = refused(tmp_path, capsys, text)
    path = tmp_path / "config.yaml"
    assert "2 problems in the config" in err
    assert (f"{path}:{line_of(text, 'rules:')}: risk.rules.lot_size: lot_size 0.5 for MEBL is not whole: "
            "venue 'paper' (paper) trades whole shares") in err
    assert f"{path}:{line_of(text, 'OGDC: {')}: risk.instruments.OGDC.lot_size: lot_size 2.5 for OGDC" in err


def test_a_crypto_venue_keeps_fractional_lots(tmp_path, capsys, monkeypatch):
    """Pulse amounts are fractional (a 0.0001 lot): its adapter does not declare whole shares."""
    monkeypatch.setenv("PULSE_CLIENT_SECRET", "sandbox-secret")
    shipped = (REPO / "config.pulse-sandbox.yaml").read_text()
    text = shipped.replace("lot_size: 10,", "lot_size: 0.0001,").replace(
        "file: strategies/market_maker.py", f"file: {REPO / 'strategies' / 'market_maker.py'}"
    )
    text = text.replace("  rules:\n", "  rules:\n    lot_size: '0.001'\n")
    assert text.count("0.0001,") == 1 and "lot_size: '0.001'" in text
    path = tmp_path / "pulse.yaml"
    path.write_text(text)
    assert main(["check", str(path)]) == 0, capsys.readouterr().err


@pytest.mark.parametrize("config", ["config.yaml", "config.psx-sandbox.yaml", "config.pulse-sandbox.yaml"])
def test_the_shipped_configs_pass_check(config, capsys, monkeypatch):
    for name in ("OPTIMUS_USERNAME", "OPTIMUS_PASSWORD", "OPTIMUS_WEBHOOK_SECRET", "PSX_FEED_TOKEN",
                 "PULSE_CLIENT_SECRET"):
        monkeypatch.setenv(name, "sandbox-credential")  # the configs name them; check builds the adapters
    assert main(["check", str(REPO / config)]) == 0, capsys.readouterr().err
