"""Issue 17 item 9: the journal holds no secret and nobody but the engine's user can read it.

A strategy saves the token it was configured with (``${TEST_JOURNAL_TOKEN}``) in its ``on_save``
state, in strings, a dict key, a list and a number; every byte of the journal, its -wal, its
``.bak`` copy (``--fresh-account``) and the venue's state is searched for it. Every one of those
files is mode 0600."""

from __future__ import annotations

import datetime as dt
import logging
import os
import stat
from decimal import Decimal
from pathlib import Path

import pytest
from support import INSTRUMENTS

from engine.app import run_config
from engine.config import load_config
from engine.journal import Journal
from engine.model import Order, Side
from engine.secrets import Redactor

TOKEN = "jt-7f3a9c1e55d24b"
PIN = "80417263"  # a secret that is all digits: a careless strategy saves it as an int

CARELESS_SAVER = """\
from engine import hookimpl

PARAMS = {"api_token": "", "pin": ""}

@hookimpl
def on_save(ctx):
    token = ctx.params.api_token
    return {"token": token, token: "as a key", "nested": [{"header": f"Bearer {token}"}],
            "pin": int(ctx.params.pin), "plain": "nothing secret"}
"""


def _config(folder: Path) -> Path:
    (folder / "careless.py").write_text(CARELESS_SAVER)
    config = folder / "config.yaml"
    config.write_text(
        "run: {clock: simulated, start: 2026-11-23, days: 1, seed: 3}\nlogging: {level: WARNING}\n"
        + INSTRUMENTS
        + "venues:\n  paper: {adapter: paper}\n"
        + "strategies:\n"
        + "  - {name: careless, file: careless.py, venue: paper, instruments: [MEBL],\n"
        + "     params: {api_token: '${TEST_JOURNAL_TOKEN}', pin: '${TEST_JOURNAL_PIN}'}}\n"
    )
    return config


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def permissive_umask():
    """The engine must not rely on the caller's umask: with 0, a file created 0644 stays 0666."""
    old = os.umask(0)
    yield
    os.umask(old)


def test_a_secret_a_strategy_saves_never_reaches_the_journal_or_its_copies(tmp_path, monkeypatch, caplog,
                                                                          permissive_umask):
    monkeypatch.setenv("TEST_JOURNAL_TOKEN", TOKEN)
    monkeypatch.setenv("TEST_JOURNAL_PIN", PIN)
    config = _config(tmp_path)
    caplog.set_level(logging.WARNING, logger="engine.journal")
    run_config(load_config(config))
    journal = Journal.open_readonly(tmp_path / "config.journal.sqlite")
    try:
        saved = journal.strategy_states()["careless"]
    finally:
        journal.close()
    assert saved == {"token": "***", "***": "as a key", "nested": [{"header": "Bearer ***"}], "pin": "***",
                     "plain": "nothing secret"}
    run_config(load_config(config), fresh_account=True)  # the first journal becomes a .bak copy
    files = [p for p in tmp_path.iterdir() if ".journal" in p.name and p.is_file()]
    assert any(p.name.endswith(".bak") for p in files) and any("venue-paper" in p.name for p in files)
    for path in files:
        data = path.read_bytes()
        assert TOKEN.encode() not in data and PIN.encode() not in data, path.name
        assert _mode(path) == 0o600, f"{path.name}: {oct(_mode(path))}"
    assert any("strategy careless: on_save returned a secret" in r.getMessage() for r in caplog.records)


def test_journal_files_and_their_wal_and_shm_are_owner_only_even_under_a_permissive_umask(tmp_path,
                                                                                         permissive_umask):
    legacy = tmp_path / "old.sqlite"
    legacy.write_bytes(b"")
    legacy.chmod(0o644)  # a journal from before, with its WAL: tightened when opened
    legacy_wal = tmp_path / "old.sqlite-wal"
    legacy_wal.write_bytes(b"")
    legacy_wal.chmod(0o644)
    for path in (tmp_path / "j.sqlite", legacy):
        journal = Journal.open(path)
        try:
            journal.save_strategy_state(1, "s", {"n": 1})  # the WAL has a frame
            sides = [path.with_name(path.name + s) for s in ("-wal", "-shm", ".lock")]
            assert all(p.exists() for p in sides)
            assert {p.name: oct(_mode(p)) for p in (path, *sides)} == {
                p.name: "0o600" for p in (path, *sides)}
        finally:
            journal.close()


def test_scrub_value_reaches_every_string_and_number_of_a_json_value():
    redactor = Redactor([TOKEN, PIN])
    value, found = redactor.scrub_value({"a": [1, 2.5, True, None, {TOKEN: f'x"{TOKEN}"'}], "p": int(PIN)})
    assert found and value == {"a": [1, 2.5, True, None, {"***": 'x"***"'}], "p": "***"}
    assert Redactor([TOKEN]).scrub_value({"a": "clean"}) == ({"a": "clean"}, False)


def test_reject_reasons_order_details_and_kill_switch_reasons_are_scrubbed(tmp_path):
    """A venue's reject text or an operator's halt reason may echo a credential: the journal keeps
    the sentence, with the secret as ``***``."""
    path = tmp_path / "j.sqlite"
    journal = Journal.open(path, redactor=Redactor([TOKEN]))
    journal.begin_run(0, "config.yaml", dt.date(2026, 11, 23))
    order = Order("s-abcde-1", "s", "paper", "MEBL", Side.BUY, Decimal(100), Decimal("180.00"))
    journal.order(order, detail=f"sent with Bearer {TOKEN}")
    order.reject(1001, f"Invalid token {TOKEN}", 1)
    journal.order(order, detail=f"rejected: {TOKEN} refused")
    journal.control(2, "kill_switch", "account", {"state": "halted", "reason": f"operator: leaked {TOKEN}"})
    journal.commit(3)
    journal.close()
    reader = Journal.open_readonly(path)
    try:
        rows = reader.db.execute("SELECT reason FROM orders").fetchall()
        details = reader.db.execute("SELECT detail FROM order_events ORDER BY rowid").fetchall()
    finally:
        reader.close()
    assert [r[0] for r in rows] == ["Invalid token ***"]
    assert [d[0] for d in details] == ["sent with Bearer ***", "rejected: *** refused"]
    for each in tmp_path.iterdir():
        assert TOKEN.encode() not in each.read_bytes(), each.name
