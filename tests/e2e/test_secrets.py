"""Secrets from the environment never reach logs, the report, the HTML page or the metrics.

The strategy here is careless on purpose: it logs its token, puts the password into an exception
(which fails it, so the message lands in the log's traceback and the report's failure text), and
the run writes every output there is. Then every byte the engine wrote is searched.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families
from support import INSTRUMENTS, REPO
from support.scrape import free_port, get

from engine.secrets import MIN_SECRET_LEN, Redactor

TOKEN = "tok-7f3a9c1e55d24b"
PASSWORD = "hunter2-correct-horse"

CARELESS = """\
from engine import hookimpl

PARAMS = {"api_token": "", "password": ""}
calls = {"n": 0}

@hookimpl
def on_start(ctx):
    ctx.log.info("connecting with token %s", ctx.params.api_token)

@hookimpl
def on_book(ctx, book):
    calls["n"] += 1
    if calls["n"] == 50:
        raise RuntimeError(f"login refused for password {ctx.params.password}")
"""


def test_no_output_carries_a_secret_from_the_environment(tmp_path: Path):
    (tmp_path / "careless.py").write_text(CARELESS)
    port = free_port()
    (tmp_path / "config.yaml").write_text(
        "run: {clock: simulated, start: 2026-11-23, days: 1, seed: 3}\n"
        + INSTRUMENTS
        + "venues:\n  paper: {adapter: paper}\n"
        + "strategies:\n"
        + "  - {name: careless, file: careless.py, venue: paper, instruments: [MEBL],\n"
        + "     params: {api_token: '${TEST_API_TOKEN}', password: 'pw=${TEST_PASSWORD}'}}\n"
        + f"metrics: {{listen: '127.0.0.1:{port}'}}\n"
    )
    env = {**os.environ, "TEST_API_TOKEN": TOKEN, "TEST_PASSWORD": PASSWORD, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(
        [sys.executable, "-m", "engine.cli", "run", "config.yaml", "--speed", "600", "--log-format", "json",
         "--log-level", "DEBUG", "--report", "out/report.json", "--html", "out/day.html"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    scrapes: list[str] = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(scrapes) < 3:
            time.sleep(1)
            try:
                status, text = get(f"http://127.0.0.1:{port}/metrics", timeout=2)
            except OSError:
                continue
            failed = [s for f in text_string_to_metric_families(text) for s in f.samples
                      if s.name == "engine_strategy_state" and s.labels["state"] == "failed" and s.value == 1]
            if status == 200 and failed:
                scrapes.append(text)
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, stderr[-3000:]
    assert scrapes, "the strategy never showed as failed in a scrape"
    report = (tmp_path / "out" / "report.json").read_text()
    page = (tmp_path / "out" / "day.html").read_text()
    # the careless lines were really written, with the secret scrubbed out of them
    assert "connecting with token ***" in stderr
    assert "login refused for password pw=***" in stderr
    assert "login refused for password pw=***" in report
    for output in (stdout, stderr, report, page, *scrapes):
        assert TOKEN not in output
        assert PASSWORD not in output


def test_redactor_scrubs_longest_first_and_leaves_short_values():
    redactor = Redactor(["abcd1234", "abcd", "xy"])
    assert redactor.scrub("key=abcd1234 other=abcd short=xy") == "key=*** other=*** short=xy"
    assert len("xy") < MIN_SECRET_LEN
    assert not Redactor([])
    assert Redactor([]).scrub("anything") == "anything"

