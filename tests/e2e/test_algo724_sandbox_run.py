"""`engine sandbox algo724 --run config.algo724-sandbox.yaml`: the sandbox and an engine in one
process, through the real adapter. A small strategy here places a resting order when the session
opens and cancels it once acknowledged: the order travels the whole REST path (submit, answer,
cancel) and the report says so. The shipped strategies quote on the books the Centrifugo stream
brings (streams_url, branch algcf), so the engine sees book events too."""

from __future__ import annotations

import json
from pathlib import Path

from support import add_strategy, run_sandbox, shipped_config, write_config

SECRETS = {"ALGO724_EMAIL": "e2e@example.com", "ALGO724_PASSWORD": "e2e-algo724-pw-6b2f"}
PLACE_AND_CANCEL = '''
from engine import hookimpl


@hookimpl
def on_session_change(ctx, old, new):
    if new == "open":
        ctx.submit("BTC/USDT", "buy", 1, "49500.00")  # rests: 1% under the book, within the 2% guard


@hookimpl
def on_order_update(ctx, order):
    if order.status == "new":
        ctx.cancel(order)
'''


def test_the_algo724_sandbox_runs_an_engine_in_one_process(tmp_path: Path) -> None:
    config = shipped_config("config.algo724-sandbox.yaml")
    add_strategy(tmp_path, config, "place_cancel", PLACE_AND_CANCEL, "algo724", ["BTC/USDT"])
    path = write_config(tmp_path, config)
    done = run_sandbox(tmp_path, "algo724", path, "--duration", "6", "--report", str(tmp_path / "report.json"),
                       env=SECRETS)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-4000:]
    assert SECRETS["ALGO724_PASSWORD"] not in out
    report = json.loads((tmp_path / "report.json").read_text())
    mine = report["strategies"]["place_cancel"]
    assert mine["orders"] == 1 and mine["cancels"] == 1, mine
    assert report["events"]["book"] > 0  # the stream's market data reached the strategies
    venue = report["venues"]["algo724"]
    assert venue["status"] == "connected" and venue["bad_input"] == {}
    assert "algo724 sandbox: stopped" in out and '"logins": 1' in out and '"logouts": 1' in out
