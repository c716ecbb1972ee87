"""Reports go only to a regular file or a new path (issue 17, item 10).

The atomic write renames a temp file over the target, which would silently replace a FIFO a
monitor reads, a device, or the symbolic link itself with a regular file; a directory failed only
after the whole run. Every such path is refused at start (exit 1, nothing traded, the path and what
it is named) and again at write time; a link to a regular file has its target written, the link
kept.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from support import IDLE_STRATEGY, INSTRUMENTS, REPO

from engine.cli import main
from engine.outfile import OutputPathError, write_atomic
from engine.secrets import write_scrubbed

CONFIG = (
    "run: {clock: simulated, start: 2026-11-23REPORT}\n"
    + INSTRUMENTS
    + "venues:\n  paper: {adapter: paper, options: {market: {enabled: false}}}\n"
    + "journal: {enabled: false}\n"
    + "strategies:\n  - {name: s, file: s.py, venue: paper, instruments: [MEBL]}\n"
)


def write_config(tmp_path: Path, report: str | None = None) -> Path:
    (tmp_path / "s.py").write_text(IDLE_STRATEGY)
    path = tmp_path / "config.yaml"
    path.write_text(textwrap.dedent(CONFIG.replace("REPORT", f", report: {report}" if report else "")))
    return path


def make(kind: str, path: Path) -> str:
    """Put a ``kind`` of thing at ``path``; returns the words the refusal must use."""
    if kind == "fifo":
        os.mkfifo(path)
        return "FIFO"
    if kind == "directory":
        path.mkdir()
        return "directory"
    if kind == "link-to-fifo":
        os.mkfifo(path.with_name("pipe"))
        path.symlink_to(path.with_name("pipe"))
        return "symbolic link"
    if kind == "link-to-device":
        path.symlink_to("/dev/null")  # a character device; the link (not /dev/null) is at risk
        return "character device"
    raise AssertionError(kind)


def unchanged(kind: str, path: Path) -> bool:
    if kind == "fifo":
        return stat.S_ISFIFO(os.lstat(path).st_mode)
    if kind == "directory":
        return path.is_dir() and not any(path.iterdir())
    if kind == "link-to-fifo":
        return path.is_symlink() and stat.S_ISFIFO(os.stat(path).st_mode)
    return path.is_symlink() and os.readlink(path) == "/dev/null"


KINDS = ["fifo", "directory", "link-to-fifo", "link-to-device"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("option", ["--report", "--html", "run.report"])
def test_a_path_that_is_not_a_regular_file_is_refused_at_start(tmp_path, capsys, kind, option):
    target = tmp_path / "out.json"
    words = make(kind, target)
    config = write_config(tmp_path, report="out.json" if option == "run.report" else None)
    argv = ["run", str(config)] + ([] if option == "run.report" else [option, str(target)])
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert f"engine: {option} {target}" in captured.err
    assert words in captured.err and "refusing to start" in captured.err
    assert "strategy" not in captured.out  # no summary table: nothing ran
    assert unchanged(kind, target)


def test_a_link_to_a_regular_file_writes_the_target_and_keeps_the_link(tmp_path, capsys):
    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / "day.json").write_text("old\n")
    (runs / "day.json").chmod(0o640)
    link = tmp_path / "latest.json"
    link.symlink_to(runs / "day.json")
    assert main(["run", str(write_config(tmp_path)), "--report", str(link)]) == 0
    assert link.is_symlink() and os.readlink(link) == str(runs / "day.json")
    assert '"trading_days"' in (runs / "day.json").read_text()
    assert stat.S_IMODE(os.stat(runs / "day.json").st_mode) == 0o640  # a replaced file keeps its mode
    assert sorted(p.name for p in runs.iterdir()) == ["day.json"]  # no temp file left behind


def test_engine_report_refuses_to_draw_the_page_into_a_fifo(tmp_path, capsys):
    source = tmp_path / "day.json"
    assert main(["run", str(write_config(tmp_path)), "--report", str(source)]) == 0
    page = tmp_path / "page.html"
    os.mkfifo(page)
    capsys.readouterr()
    assert main(["report", str(source), "--html", str(page)]) == 1
    assert f"{page} is a FIFO (named pipe)" in capsys.readouterr().err
    assert stat.S_ISFIFO(os.lstat(page).st_mode)


@pytest.mark.parametrize("kind", KINDS)
def test_the_write_itself_refuses_what_appeared_during_the_run(tmp_path, kind):
    target = tmp_path / "out.json"
    make(kind, target)
    with pytest.raises(OutputPathError, match=re.escape(str(target))):
        write_scrubbed(target, "{}\n")
    assert unchanged(kind, target)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")) == []


def test_a_path_below_a_regular_file_is_refused(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputPathError, match=r"(?i)not a directory"):
        write_atomic(tmp_path / "file" / "out.json", "{}")


def test_a_new_path_is_created_with_its_folders(tmp_path):
    out = write_atomic(tmp_path / "a" / "b" / "out.json", "{}\n")
    assert out.read_text() == "{}\n" and [p.name for p in out.parent.iterdir()] == ["out.json"]


def test_a_fifo_where_the_pid_file_goes_does_not_block_the_run(tmp_path):
    """``config.pid`` is written beside the config; opening a FIFO there for writing blocked the
    engine before it traded (no reader, forever). Now it is refused with the usual warning and the
    run goes on (the timeout only ends a hang; it is never reached when the engine works)."""
    config = write_config(tmp_path)
    pid_file = tmp_path / "config.pid"
    os.mkfifo(pid_file)
    try:
        done = subprocess.run([sys.executable, "-m", "engine.cli", "run", str(config)], cwd=REPO,
                              capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        os.close(os.open(pid_file, os.O_RDONLY | os.O_NONBLOCK))
        raise
    assert done.returncode == 0, done.stderr
    assert "cannot write pid file" in done.stderr and "FIFO" in done.stderr
    assert stat.S_ISFIFO(os.lstat(pid_file).st_mode)
    halt = subprocess.run([sys.executable, "-m", "engine.cli", "halt", str(config)], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert halt.returncode == 1 and "no running engine" in halt.stderr  # not blocked reading the FIFO


@pytest.mark.parametrize("option", ["--report", "--html"])
def test_sandbox_psx_run_refuses_a_fifo_before_the_day(tmp_path, option):
    """``engine sandbox psx --run`` writes the same report and page: refused before venue and
    engine start (the timeout only ends a day run by mistake; never reached when refused)."""
    target = tmp_path / "out"
    os.mkfifo(target)
    done = subprocess.run(
        [sys.executable, "-m", "engine.cli", "sandbox", "psx", "--run", str(REPO / "config.psx-sandbox.yaml"),
         "--journal", str(tmp_path / "j.sqlite"), option, str(target), "--duration", "5"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 1
    assert f"{option} {target} is a FIFO" in done.stderr and "refusing to start" in done.stderr
    assert "psx sandbox:" not in done.stderr  # the venue never started
    assert stat.S_ISFIFO(os.lstat(target).st_mode)
