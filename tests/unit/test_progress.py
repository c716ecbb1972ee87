"""The progress module (engine/progress.py): a bar redrawn in place on a terminal, at most every
tenth of a second; plain lines at each tenth of the way elsewhere, never a control character."""

from __future__ import annotations

import io
import logging

from engine.progress import Progress


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_not_a_terminal_prints_a_plain_line_per_tenth_and_a_last_one() -> None:
    stream, clock = io.StringIO(), Clock()
    progress = Progress("import", 1000, stream=stream, clock=clock, check_every=1, quiet_s=0)
    for _ in range(1000):
        clock.now += 0.001
        progress.advance()
    progress.close()
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue() and "\x1b" not in stream.getvalue()
    assert [line.split()[1] for line in lines] == [f"{p}%" for p in range(10, 100, 10)] + ["100%"]
    assert lines[0] == "import: 10% 100/1,000 events 1,000/s ETA 0:01"
    assert lines[-1] == "import: 100% 1,000/1,000 events 1,000/s in 0:01"


def test_a_job_done_within_a_second_prints_only_its_last_line() -> None:
    stream, clock = io.StringIO(), Clock()
    progress = Progress("read x.csv", 30, "rows", stream=stream, clock=clock, check_every=1)
    for _ in range(30):
        clock.now += 0.01
        progress.advance()
    progress.close()
    assert stream.getvalue() == "read x.csv: 100% 30/30 rows 100/s in 0:00\n"


def test_a_terminal_gets_one_line_redrawn_in_place_at_most_ten_times_a_second() -> None:
    stream, clock = Tty(), Clock()
    progress = Progress("replay", 200_000, unit="book events", stream=stream, clock=clock, check_every=1)
    assert progress.tty
    for _ in range(200_000):
        clock.now += 0.00001  # 2 s in all: at most about 20 redraws, not 200,000
        progress.advance()
    progress.close()
    text = stream.getvalue()
    draws = text.split("\r")[1:]
    assert 15 <= len(draws) <= 25
    assert text.endswith("\n") and text.count("\n") == 1
    assert draws[-1].startswith("[" + "#" * 28 + "] replay: 100% 200,000/200,000 book events 100.0k/s in 0:02")
    half = next(d for d in draws if "50%" in d)
    assert half.startswith("[" + "#" * 14 + "-" * 14 + "]") and "ETA 0:01" in half


def test_a_shorter_redraw_wipes_the_longer_one_before() -> None:
    stream, clock = Tty(), Clock()
    progress = Progress("x", None, stream=stream, clock=clock, check_every=1)
    progress.advance(1_000_000)
    clock.now += 1
    progress.advance(1)
    first, second = stream.getvalue().split("\r")[1:]
    assert len(second) >= len(first)


def test_unknown_total_shows_the_count_and_a_pipe_gets_only_the_last_line() -> None:
    stream, clock = io.StringIO(), Clock()
    progress = Progress("import", None, stream=stream, clock=clock)
    progress.advance(5000)
    clock.now = 2.0
    progress.close()
    progress.close()  # twice is harmless
    assert stream.getvalue() == "import: 5,000 events 2,500/s in 0:02\n"


def test_a_stream_without_isatty_is_not_a_terminal() -> None:
    class Bare:
        def write(self, text: str) -> int:
            return len(text)

        def flush(self) -> None:
            pass

    assert Progress("x", 1, stream=Bare()).tty is False  # type: ignore[arg-type]
    assert Progress("x", 1, stream=Tty(), tty=False).tty is False


def test_a_log_line_never_starts_inside_a_drawn_bar() -> None:
    stream, clock = Tty(), Clock()
    handler = logging.StreamHandler(stream)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        progress = Progress("replay", 100, stream=stream, clock=clock, check_every=1)
        progress.advance(50)
        logging.getLogger("engine.test").warning("a fill")
        clock.now += 1
        progress.advance(10)
        progress.close()
        assert handler.filters == []  # the wiping filter is removed at close
    finally:
        root.removeHandler(handler)
    text = stream.getvalue()
    assert "\r\x1b[Ka fill\n\r[" in text  # the bar wiped, the line written, the bar drawn again


def test_plain_lines_can_go_through_a_logger(caplog) -> None:
    clock = Clock()
    with caplog.at_level(logging.INFO, logger="engine.replay.test"):
        progress = Progress("replay psx", 10, stream=io.StringIO(), tty=False, clock=clock,
                            log=logging.getLogger("engine.replay.test"))
        progress.advance(10)
        progress.close()
    assert [r.getMessage().split()[2] for r in caplog.records] == ["100%"]
    assert progress.stream.getvalue() == ""
