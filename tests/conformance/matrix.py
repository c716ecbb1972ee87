"""The conformance matrix: which adapter passes what, as README shows it.

    python -m tests.conformance.matrix            # run the suite, print the matrix (Markdown)
    python -m tests.conformance.matrix -o FILE    # and write it to FILE

Each row has an id (``OE-nn`` order entry, ``MD-nn`` market data), in the manner of
NautilusTrader's execution testing spec, so a report or an issue can name a case. It runs
``tests/conformance`` with pytest in this process and reads each test's outcome per venue:
``pass`` (with what the venue did, where a test records it), ``skip`` and ``xfail`` with the reason
the test gives, ``FAIL``. A column is one adapter against its venue in one mode (``pulse-everyday``,
``pulse-literal``: the sandbox answering exactly its document's shapes). The exit code is pytest's,
so a failing adapter fails the command too."""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent

ORDER_ENTRY_ROWS = {
    "test_connect_and_authenticate": "OE-01 connect and authenticate",
    "test_subscribe_receives_a_book_snapshot": "OE-02 subscribe: book snapshot",
    "test_submit_ack_fill": "OE-03 submit -> ack -> fill",
    "test_partial_fill": "OE-04 partial fill",
    "test_cancel": "OE-05 cancel",
    "test_amend_or_refused_2007_by_capability": "OE-06 amend (or 2007 by capability)",
    "test_mass_cancel_or_per_order_fallback": "OE-07 mass cancel (or per-order)",
    "test_post_only_refused_or_repriced_by_capability": "OE-08 post-only by capability",
    "test_drop_mid_order_unknown_then_reconciled": "OE-09 drop mid-order -> unknown -> reconciled",
    "test_duplicate_fill_dropped": "OE-10 duplicate fill dropped",
    "test_restart_finds_open_and_finished_orders": "OE-11 restart: open and finished orders",
    "test_restart_finds_fills_made_before_it": "OE-12 restart: fills made before it",
    "test_every_venue_reject_maps_to_an_engine_code": "OE-13 every venue reject -> engine code",
    "test_no_secret_in_any_log_line": "OE-14 no secret in any log line",
    "test_a_cancel_in_the_same_step_as_its_order_leaves_nothing_working": "OE-15 cancel in the same step as its order",
}
MARKET_DATA_ROWS = {
    "test_snapshot_first": "MD-01 snapshot first",
    "test_deltas_applied": "MD-02 deltas applied",
    "test_gap_then_resync": "MD-03 gap -> resync",
    "test_staleness_detected": "MD-04 staleness detected",
}


@dataclass
class Outcome:
    status: str  # pass | skip | xfail | FAIL
    reason: str = ""


@dataclass
class Collector:
    """A pytest plugin: each test's outcome by (file, function, venue)."""

    outcomes: dict[tuple[str, str, str], Outcome] = field(default_factory=dict)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        match = re.fullmatch(r".*/(test_\w+)\.py::(test_\w+)\[([\w-]+)\]", report.nodeid)
        if match is None:
            return
        key = (match[1], match[2], match[3])
        props = dict(report.user_properties)
        if hasattr(report, "wasxfail"):
            if report.skipped:
                self.outcomes[key] = Outcome("xfail", report.wasxfail.removeprefix("reason: "))
            else:  # strict xfail that passed: pytest reports it failed
                self.outcomes[key] = Outcome("FAIL", "passed although marked as a known gap")
        elif report.skipped:
            longrepr = report.longrepr
            reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
            self.outcomes[key] = Outcome("skip", reason.removeprefix("Skipped: "))
        elif report.failed:
            self.outcomes[key] = Outcome("FAIL", report.when)
        elif report.when == "call" and key not in self.outcomes:
            self.outcomes[key] = Outcome("pass", str(props.get("detail", "")))


def table(collector: Collector, module: str, rows: dict[str, str], notes: list[str]) -> list[str]:
    venues = sorted({venue for (mod, _test, venue) in collector.outcomes if mod == module})
    lines = ["| behaviour | " + " | ".join(venues) + " |", "|---|" + "---|" * len(venues)]
    for test, label in rows.items():
        cells = []
        for venue in venues:
            outcome = collector.outcomes.get((module, test, venue))
            if outcome is None:
                cells.append("not run")
                continue
            if outcome.status == "pass":
                cells.append(f"pass ({outcome.reason})" if outcome.reason else "pass")
                continue
            if outcome.reason not in notes:  # one note per reason, however many cells give it
                notes.append(outcome.reason)
            cells.append(f"{outcome.status} [{notes.index(outcome.reason) + 1}]")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def render(collector: Collector) -> str:
    notes: list[str] = []
    lines = ["Order entry (`tests/conformance/test_order_entry.py`):", ""]
    lines += table(collector, "test_order_entry", ORDER_ENTRY_ROWS, notes)
    lines += ["", "Market data (`tests/conformance/test_market_data.py`):", ""]
    lines += table(collector, "test_market_data", MARKET_DATA_ROWS, notes)
    if notes:
        lines += [""] + [f"[{i}] {note}" for i, note in enumerate(notes, 1)]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.conformance.matrix", description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", type=Path, help="also write the matrix to this file")
    parser.add_argument("-k", dest="keyword", help="only the tests pytest -k selects")
    args = parser.parse_args(argv)
    collector = Collector()
    pytest_args = [str(HERE), "-q", "-p", "no:cacheprovider", "--no-header", "-o", "addopts="]
    if args.keyword:
        pytest_args += ["-k", args.keyword]
    code = pytest.main(pytest_args, plugins=[collector])
    text = render(collector)
    print(text)
    if args.output is not None:
        args.output.write_text(text, encoding="utf-8")
    return int(code)


if __name__ == "__main__":
    sys.exit(main())
