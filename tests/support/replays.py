"""What the record/replay tests share (tests/e2e/test_record_replay.py, test_replay_sessions.py):
a paper config to record, a replay config over a recording, the engine run as a subprocess, and the
report with its wall-time fields removed (what must be byte-identical between two replays)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import yaml

from support import REPO, write_config
from support.runs import engine_command

#: report fields that follow the machine's wall clock, not the data: a seed cannot fix them
WALL_TIMED = ("wall_seconds",)


def deterministic(report: dict) -> str:
    """The report as canonical JSON without its wall-time fields: what must be byte-identical."""
    report = json.loads(json.dumps(report))
    for key in WALL_TIMED:
        report.pop(key)
    report["journal"].pop("path", None)
    for wall_timed in ("commit_us_mean", "commits"):
        report["journal"].pop(wall_timed, None)
    for strategy in report["strategies"].values():
        strategy.pop("slowest_hook_ms")
        strategy.pop("hook_overruns")
    return json.dumps(report, sort_keys=True, indent=1)


def paper_config(folder: Path, days: int = 1) -> Path:
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["run"].update({"start": "2026-11-23", "days": days})
    config.setdefault("risk", {})["containment"] = {"hook_budget_ms": 600_000}
    config["metrics"] = {"enabled": False}
    for strategy in config["strategies"]:
        strategy["file"] = str(REPO / strategy["file"])
    return write_config(folder, config)


def replay_config(folder: Path, source: Path, recording: Path, name: str = "replay.yaml",
                  **options: object) -> Path:
    config = yaml.safe_load(source.read_text())
    venue = next(iter(config["venues"]))
    config["venues"][venue] = {**{k: v for k, v in config["venues"][venue].items()
                                  if k not in ("adapter", "options", "market_data")},
                               "adapter": "replay", "options": {"path": str(recording), **options}}
    config["run"].pop("record", None)
    config["run"]["clock"] = "simulated"
    config["metrics"] = {"enabled": False}
    return write_config(folder, config, name)


def run(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(engine_command(*args), cwd=folder, capture_output=True, text=True, timeout=600)
