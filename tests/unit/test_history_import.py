"""``engine data import`` (engine/history/importer.py): CSV history into the recorder's format,
readable by its reader in replay order, the same bytes every time, and all or nothing: bad input
or a failed write leaves no file behind."""

from __future__ import annotations

import io
from decimal import Decimal
from pathlib import Path

import pytest
from support import REPO

from engine.cli import main
from engine.history.bars import BookShape
from engine.history.csvread import CsvInputError
from engine.history.importer import import_history
from engine.model import BookUpdate, InstrumentStatus, SessionState, Trade
from engine.progress import Progress
from engine.recording import format as recording

SAMPLE = REPO / "engine" / "history" / "sample" / "psx-daily-sample.csv"


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_the_sample_imports_and_reads_back_in_replay_order(tmp_path: Path) -> None:
    result = import_history([SAMPLE], "bars", tmp_path / "rec")
    assert result.symbols == ["MEBL", "OGDC", "SYS"] and len(result.days) == 10
    events = list(recording.read_events(tmp_path / "rec"))
    assert len(events) == result.events
    assert [e.recv_ns for e in events] == sorted(e.recv_ns for e in events)
    kinds = {type(e.event) for e in events}
    assert kinds == {SessionState, InstrumentStatus, BookUpdate, Trade}
    per_day = [e for e in events if isinstance(e.event, Trade) and e.symbol == "OGDC"][:4]
    assert [str(e.event.price) for e in per_day] == ["109.29", "109.54", "107.56", "108.41"]  # line 2: down, high first
    assert sum(e.event.qty for e in per_day) == Decimal(2249732)
    assert {e.venue for e in events} == {"psx"}
    sessions = [e for e in events if e.symbol == recording.SESSION_SYMBOL]
    assert len(sessions) == 10 * 4  # pre-open, open, post-close, closed per day
    parts = {p.relative_to(tmp_path / "rec").parts[:3] for p in (tmp_path / "rec").rglob("*.parquet")}
    assert ("venue=psx", "symbol=OGDC", "date=2026-11-02") in parts


def test_the_same_input_gives_the_same_bytes(tmp_path: Path) -> None:
    import_history([SAMPLE], "bars", tmp_path / "a", shape=BookShape(steps=3))
    import_history([SAMPLE], "bars", tmp_path / "b", shape=BookShape(steps=3))
    assert tree(tmp_path / "a") == tree(tmp_path / "b")


def test_bad_input_writes_nothing(tmp_path: Path) -> None:
    good = tmp_path / "good.csv"
    good.write_text(SAMPLE.read_text())
    bad = tmp_path / "bad.csv"
    bad.write_text("date,symbol,open,high,low,close,volume\n2026-11-02,KEL,5.00,5.10,4.90,5.00,10\n"
                   "2026-11-03,KEL,5.00,5.10,4.90,5.00,ten\n")
    with pytest.raises(CsvInputError, match=r"bad\.csv:3:7: volume: 'ten'"):
        import_history([good, bad], "bars", tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv", "good.csv"]  # no out, no temp


def test_a_bar_on_a_day_without_a_session_names_its_cell(tmp_path: Path) -> None:
    path = tmp_path / "sunday.csv"
    path.write_text("symbol,date,open,high,low,close,volume\nKEL,2026-11-22,5.00,5.10,4.90,5.00,10\n")
    with pytest.raises(CsvInputError, match=r"sunday\.csv:2:2: date: 2026-11-22 \(Sunday\) is not a trading day"):
        import_history([path], "bars", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_the_same_bar_in_two_files_is_refused(tmp_path: Path) -> None:
    one, two = tmp_path / "one.csv", tmp_path / "two.csv"
    one.write_text("date,symbol,open,high,low,close,volume\n2026-11-23,KEL,5.00,5.10,4.90,5.00,10\n")
    two.write_text(one.read_text())
    with pytest.raises(CsvInputError, match=r"two\.csv:2:1: date: a second bar for KEL on 2026-11-23 \(the first "
                       r"is .*one\.csv:2\)"):
        import_history([one, two], "bars", tmp_path / "out")


def test_a_print_outside_the_session_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "prints.csv"
    path.write_text("time,symbol,price,qty\n2026-11-23T10:00:00+05:00,KEL,5.00,10\n2026-11-23T18:00:00,KEL,5.00,10\n")
    with pytest.raises(CsvInputError, match=r"prints\.csv:3:1: time: the print falls in the closed phase"):
        import_history([path], "trades", tmp_path / "out")


def test_prints_import_with_their_days_sessions(tmp_path: Path) -> None:
    path = tmp_path / "prints.csv"
    path.write_text("time,symbol,price,qty,side,trade_id\n2026-11-23T10:00:00+05:00,KEL,5.00,10,buy,x1\n"
                    "2026-11-24T11:00:00+05:00,KEL,5.01,20,,x2\n")
    result = import_history([path], "trades", tmp_path / "rec")
    assert result.days == ["2026-11-23", "2026-11-24"]
    events = list(recording.read_events(tmp_path / "rec"))
    trades = [e.event for e in events if isinstance(e.event, Trade)]
    assert [(t.trade_id, str(t.price), t.qty) for t in trades] == [("x1", "5.00", 10), ("x2", "5.01", 20)]
    assert sum(isinstance(e.event, SessionState) for e in events) == 8


def test_into_an_existing_recording_a_second_identical_import_is_refused(tmp_path: Path) -> None:
    rec = tmp_path / "rec"
    rec.mkdir()
    (rec / "keep.txt").write_text("not ours")
    import_history([SAMPLE], "bars", rec)
    before = tree(rec)
    with pytest.raises(FileExistsError, match="already there"):
        import_history([SAMPLE], "bars", rec)
    assert tree(rec) == before
    assert [p.name for p in rec.iterdir() if p.name.startswith(".")] == []  # the temp folder is gone
    import_history([SAMPLE], "bars", rec, replace=True)
    assert tree(rec) == before


def test_a_failed_write_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The disk fills after some of the days were written to the staging folder: nothing is left,
    neither the target nor the staging folder with its Parquet files."""
    real_flush = recording.Writer.flush
    written: list[Path] = []

    def fills_up(self: recording.Writer) -> list[Path]:
        if written:
            raise OSError(28, "No space left on device")
        written.extend(real_flush(self))
        return list(written)

    monkeypatch.setattr(recording.Writer, "flush", fills_up)
    with pytest.raises(OSError, match="No space"):
        import_history([SAMPLE], "bars", tmp_path / "rec")
    assert written and all(path.suffix == ".parquet" for path in written)  # files were on disk
    assert list(tmp_path.iterdir()) == []


def test_progress_counts_every_line_read_and_event_written(tmp_path: Path) -> None:
    stream = io.StringIO()
    made: dict[str, Progress] = {}

    def bar(label: str, total: int, unit: str) -> Progress:
        made[label] = Progress(label, total, unit, stream=stream, tty=False)
        return made[label]

    result = import_history([SAMPLE], "bars", tmp_path / "rec", progress=bar)
    assert list(made) == ["read psx-daily-sample.csv", "write"]
    assert made["read psx-daily-sample.csv"].done == 30 == made["read psx-daily-sample.csv"].total  # rows
    assert made["write"].done == result.events == made["write"].total
    lines = stream.getvalue().splitlines()
    assert lines[-1].startswith(f"write: 100% {result.events:,}/{result.events:,} events")
    assert lines[0].startswith("read psx-daily-sample.csv: 100% 30/30 rows")  # quick: only the last line


def test_cli_imports_and_reports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "import", str(SAMPLE), "--kind", "bars", "--out", str(tmp_path / "rec"),
                 "--levels", "2", "--steps", "4"]) == 0
    out = capsys.readouterr().out
    assert "3 symbols (MEBL, OGDC, SYS), 10 days 2026-11-02 to 2026-11-16" in out
    book = next(e.event for e in recording.read_events(tmp_path / "rec") if isinstance(e.event, BookUpdate))
    assert len(book.changes) == 4


def test_cli_names_the_bad_cell_and_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("date,symbol,open,high,low,close,volume\n2026-11-23,KEL,5.00,4.00,4.90,5.00,10\n")
    assert main(["data", "import", str(bad), "--kind", "bars", "--out", str(tmp_path / "rec")]) == 1
    err = capsys.readouterr().err
    assert f"{bad}:2:4: high: 4.00 is below" in err and "nothing imported" in err
    assert not (tmp_path / "rec").exists()


def test_cli_refuses_an_unknown_session_profile(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "import", str(SAMPLE), "--kind", "bars", "--out", str(tmp_path / "rec"),
                 "--sessions", "nope"]) == 2
    assert "--sessions nope: unknown profile (known: broker-doc" in capsys.readouterr().err
    assert not (tmp_path / "rec").exists()
