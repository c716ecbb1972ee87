"""The shipped config.pulse-sandbox.yaml on its derivatives account, end to end (issue 20 section 4):
`engine sandbox pulse --run` with a taker that SELLS from flat, so the account goes short, which the
PSX cash account refused (2005) and the old config hid behind 1,000 "held" contracts. The report
and the page speak the settlement currency (USD), never rupees, and the account agrees with the
venue's get_positions / get_account_summary at every sync."""

from __future__ import annotations

import json
from pathlib import Path

from support import PULSE_SHORT_SESSION, add_strategy, run_sandbox, shipped_config, taker, write_config

SECRET = "pulse-deriv-secret-51c2"
BTC = "BTC_USD-PERPETUAL"

def _config(tmp_path: Path, start_positions: dict[str, int] | None = None) -> Path:
    config = shipped_config("config.pulse-sandbox.yaml")
    if start_positions:
        config["venues"]["pulse"]["account"]["positions"] = start_positions
    config["sessions"]["profiles"] = PULSE_SHORT_SESSION
    add_strategy(tmp_path, config, "short", taker(BTC, "sell", 10), "pulse", [BTC])  # sells from flat
    return write_config(tmp_path, config)


def _run(tmp_path: Path, config: Path) -> str:
    done = run_sandbox(tmp_path, "pulse", config, "--start", "2026-11-23T00:00+00:00",
                       "--report", str(tmp_path / "report.json"), "--html", str(tmp_path / "day.html"),
                       env={"PULSE_SANDBOX_SECRET": SECRET, "PULSE_CLIENT_SECRET": None})
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-4000:]
    return out


def test_the_shipped_pulse_config_goes_short_and_reports_in_usd(tmp_path: Path) -> None:
    out = _run(tmp_path, _config(tmp_path))
    report_text = (tmp_path / "report.json").read_text()
    report = json.loads(report_text)
    # the sell from flat was taken, not refused as a blank sale: the strategy and the account are short
    assert report["strategies"]["short"]["position"] == {BTC: "-10"}
    assert report["strategies"]["short"]["rejects"] == 0
    venue = report["venues"]["pulse"]
    account = venue["account"]
    assert venue["currency"] == "USD" and account["kind"] == "derivatives" and account["currency"] == "USD"
    mm = report["strategies"]["mm"]["position"].get(BTC, "0")
    assert account["positions"][BTC]["qty"] == str(int(mm) - 10)  # the account is every strategy together
    # reconciled with the venue's own figures, and they agreed
    assert account["venue"] is not None
    assert "account_mismatch" not in report.get("anomalies", {}), report.get("anomalies")
    # nothing held that the venue does not hold, and no rupee anywhere
    html = (tmp_path / "day.html").read_text()
    assert "PnL over time (realized + unrealized, USD)" in html and "Amounts in USD" in html
    for text in (report_text, html):
        assert "PKR" not in text and "rupee" not in text.lower() and "Rs " not in text
    assert SECRET not in out + report_text + html


def test_a_configured_start_position_is_what_the_sandbox_holds_too(tmp_path: Path) -> None:
    """`account.positions` funds the sandbox's account as it does the engine's: they agree at
    every sync, and the short it started with is in the report."""
    _run(tmp_path, _config(tmp_path, {BTC: -20}))
    report = json.loads((tmp_path / "report.json").read_text())
    account = report["venues"]["pulse"]["account"]
    together = sum(int(s["position"].get(BTC, "0")) for s in report["strategies"].values())
    assert account["positions"][BTC]["qty"] == str(together - 20)
    assert "account_mismatch" not in report.get("anomalies", {}), report.get("anomaly_samples")
