"""What a user sees from the command line when something is wrong: a clear message naming file
and line, exit 1, and nothing started."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from support import INSTRUMENTS, REPO

from engine.cli import main

GOOD_STRATEGY = """\
from engine import hookimpl

PARAMS = {"size": 100}

@hookimpl
def on_book(ctx, book):
    pass
"""


def write(tmp_path, config: str, strategy: str = GOOD_STRATEGY):
    (tmp_path / "s.py").write_text(strategy)
    path = tmp_path / "config.yaml"
    path.write_text(textwrap.dedent(config))
    return path


VALID = (
    "run: {clock: simulated, start: 2026-11-23}\n"
    + INSTRUMENTS
    + "venues:\n  paper: {adapter: paper}\n"
    + "strategies:\n  - {name: s, file: s.py, venue: paper, instruments: [MEBL]}\n"
)


def test_check_accepts_the_shipped_config(capsys):
    assert main(["check", str(REPO / "config.yaml")]) == 0
    out = capsys.readouterr().out
    assert "mm" in out and "momentum" in out and "valid" in out


def test_check_refuses_broken_yaml_naming_the_line(tmp_path, capsys):
    path = write(tmp_path, VALID.replace("venues:\n", "venues:\n  : [unclosed\n"))
    assert main(["check", str(path)]) == 1
    err = capsys.readouterr().err
    assert f"{path}:" in err and "refusing to start" in err


def test_unknown_key_is_named_with_its_line_and_a_suggestion(tmp_path, capsys):
    path = write(tmp_path, VALID.replace("run: {clock: simulated,", "run: {clok: simulated,"))
    assert main(["run", str(path)]) == 1
    err = capsys.readouterr().err
    assert f"{path}:1" in err and "clok" in err and "clock" in err


def test_unknown_param_is_named_with_its_config_line(tmp_path, capsys):
    path = write(tmp_path, VALID.replace("instruments: [MEBL]}", "instruments: [MEBL], params: {sise: 5}}"))
    assert main(["check", str(path)]) == 1
    err = capsys.readouterr().err
    line = VALID.count("\n")  # the strategy entry is the last line
    assert f"{path}:{line}" in err and "sise" in err


def test_strategy_syntax_error_names_the_strategy_file_and_line(tmp_path, capsys):
    path = write(tmp_path, VALID, strategy="from engine import hookimpl\n\ndef on_book(ctx, book)\n    pass\n")
    assert main(["check", str(path)]) == 1
    err = capsys.readouterr().err
    assert f"{tmp_path / 's.py'}:3" in err


def test_missing_strategy_file_is_named(tmp_path, capsys):
    path = write(tmp_path, VALID.replace("file: s.py", "file: nowhere.py"))
    assert main(["check", str(path)]) == 1
    assert "nowhere.py" in capsys.readouterr().err


def test_unknown_adapter_is_a_config_error(tmp_path, capsys):
    path = write(tmp_path, VALID.replace("adapter: paper", "adapter: papr"))
    assert main(["check", str(path)]) == 1
    err = capsys.readouterr().err
    assert "papr" in err and "paper" in err


def test_bad_adapter_option_is_named_with_its_line(tmp_path, capsys):
    path = write(tmp_path, VALID.replace("{adapter: paper}", "{adapter: paper, options: {latency: 3}}"))
    assert main(["check", str(path)]) == 1
    err = capsys.readouterr().err
    assert "latency" in err and f"{path}:" in err


def test_missing_secret_is_named_and_no_value_printed(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("PAPER_ACCOUNT_TOKEN", raising=False)
    path = write(
        tmp_path, VALID.replace("{adapter: paper}", '{adapter: paper, options: {account: "${PAPER_ACCOUNT_TOKEN}"}}')
    )
    assert main(["check", str(path)]) == 1
    assert "PAPER_ACCOUNT_TOKEN" in capsys.readouterr().err


def test_help_describes_the_commands():
    done = subprocess.run([sys.executable, "-m", "engine.cli", "--help"], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0
    for word in ("run", "check", "codes", "exit codes"):
        assert word in done.stdout
    run_help = subprocess.run([sys.executable, "-m", "engine.cli", "run", "--help"], capture_output=True, text=True)
    for flag in ("--report", "--speed", "--seed", "--log-format"):
        assert flag in run_help.stdout


def test_codes_lists_the_broker_table_and_engine_codes(capsys):
    assert main(["codes"]) == 0
    out = capsys.readouterr().out
    assert "2002  Invalid quantity (lot size)" in out
    assert "7001" in out


@pytest.mark.parametrize("speed", ["-1", "fast", "nan"])
def test_bad_speed_is_refused_by_the_parser(speed):
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "config.yaml", "--speed", speed])
    assert exit_info.value.code == 2


def test_shipped_pulse_sandbox_config_checks_and_sandbox_names_what_exists(capsys, monkeypatch):
    monkeypatch.setenv("PULSE_CLIENT_SECRET", "sandbox-secret")  # the config names it; check builds the adapter
    assert main(["check", str(REPO / "config.pulse-sandbox.yaml")]) == 0
    capsys.readouterr()
    assert main(["sandbox", "paper"]) == 1
    err = capsys.readouterr().err
    assert "no sandbox for 'paper'" in err and "optimus, psx, psx_feed, pulse" in err
    with pytest.raises(SystemExit) as exit_info:
        main(["sandbox", "pulse", "--help"])
    assert exit_info.value.code == 0 and "--port" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        main(["sandbox", "psx", "--help"])
    out = capsys.readouterr().out
    assert exit_info.value.code == 0 and "--feed-port" in out and "--broker-port" in out


def _pulse_config(tmp_path, url: str) -> str:
    text = (REPO / "config.pulse-sandbox.yaml").read_text()
    text = text.replace("ws://127.0.0.1:8765/ws/api/v2", url)
    text = text.replace("file: strategies/market_maker.py", f"file: {REPO / 'strategies' / 'market_maker.py'}")
    path = tmp_path / "pulse.yaml"
    path.write_text(text)
    return str(path)


def test_a_venue_that_cannot_be_reached_is_one_clear_line_and_exit_1(tmp_path, capsys, monkeypatch):
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("PULSE_CLIENT_SECRET", "sandbox-secret")
    config = _pulse_config(tmp_path, f"ws://127.0.0.1:{port}/ws/api/v2")
    assert main(["run", config]) == 1
    err = capsys.readouterr().err
    assert "venue pulse (pulse) could not connect: " in err and f"127.0.0.1:{port}" in err
    assert "Traceback" not in err and "ExceptionGroup" not in err


def test_a_missing_credential_is_a_config_error_naming_the_venue(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("OPTIMUS_USERNAME", raising=False)
    (tmp_path / "s.py").write_text(textwrap.dedent(GOOD_STRATEGY))
    (tmp_path / "config.yaml").write_text(
        "run: {clock: wall}\n" + INSTRUMENTS.replace("venue: paper", "venue: psx")
        + "venues:\n  psx:\n    adapter: optimus\n    options: {base_url: 'http://127.0.0.1:9/v1'}\n"
        + "strategies:\n  - {name: s, file: s.py, venue: psx, instruments: [MEBL]}\n"
    )
    assert main(["run", str(tmp_path / "config.yaml")]) == 1
    err = capsys.readouterr().err
    assert "venues.psx.options" in err and "OPTIMUS_USERNAME is not set" in err and "Traceback" not in err
