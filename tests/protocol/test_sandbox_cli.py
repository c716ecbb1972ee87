"""One sandbox command shape (issue 19, item 4): every registered sandbox takes the same common
flags with the same meaning, `engine sandbox VENUE --help` lists them, and the engine's half of
`--run` points a config at whatever sandbox started, through the port's SandboxLink."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from support import REPO

from adapters.sim.cli import COMMON_FLAGS
from engine.cli import main
from engine.clock import WallClock
from engine.config import ConfigError, load_config
from engine.sandboxrun import RUN_FLAGS, point_config_at
from engine.venue import SandboxCommand, SandboxLink, sandbox_registry

SANDBOXES = sorted(sandbox_registry())
#: the sandboxes serving two servers name a port per server instead of --port
PORT_FLAGS = {"psx": ("--feed-port", "--broker-port")}


def _ports(name: str) -> tuple[str, ...]:
    return PORT_FLAGS.get(name, ("--port",))


def _parse(name: str, argv: list[str]) -> argparse.Namespace:
    return sandbox_registry()[name].build_parser().parse_args(argv)


def test_every_shipped_venue_has_a_sandbox_command() -> None:
    assert SANDBOXES == ["algo724", "optimus", "psx", "psx_feed", "pulse"]
    for name, command in sandbox_registry().items():
        assert isinstance(command, SandboxCommand) and command.name == name


@pytest.mark.parametrize("name", SANDBOXES)
def test_every_sandbox_parser_accepts_the_common_flags(name: str) -> None:
    ports = [arg for flag in _ports(name) for arg in (flag, "0")]
    args = _parse(name, ["--host", "127.0.0.2", *ports, "--seed", "9", "--no-market", "--always-open", "--speed",
                         "60", "--start", "2026-11-23T09:00", "--duration", "2.5", "--log-level", "warning",
                         "--config", "some.yaml"])
    assert (args.host, args.seed, args.no_market, args.always_open) == ("127.0.0.2", 9, True, True)
    assert (args.speed, args.start, args.duration, args.log_level) == (60.0, "2026-11-23T09:00", 2.5, "WARNING")
    assert args.config == Path("some.yaml") and args.fault == []
    for flag in _ports(name):
        assert getattr(args, flag.removeprefix("--").replace("-", "_")) == 0


@pytest.mark.parametrize("name", SANDBOXES)
def test_alone_every_sandbox_listens_on_its_documented_ports_unless_told(name: str) -> None:
    args = _parse(name, [])
    for flag in _ports(name):
        assert getattr(args, flag.removeprefix("--").replace("-", "_")) is None  # the default is chosen at start
    assert (args.speed, args.duration, args.start, args.log_level) == (1.0, 0, None, None)


@pytest.mark.parametrize("name", SANDBOXES)
@pytest.mark.parametrize("bad", [["--speed", "0"], ["--speed", "fast"], ["--start", "monday"],
                                 ["--duration", "-1"], ["--log-level", "LOUD"], ["--port-of-call", "1"]])
def test_every_sandbox_refuses_the_same_bad_common_values(name: str, bad: list[str],
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["sandbox", name, *bad])
    assert done.value.code == 2
    assert f"engine sandbox {name}" in capsys.readouterr().err


@pytest.mark.parametrize("name", SANDBOXES)
def test_every_sandbox_refuses_a_port_out_of_range(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["sandbox", name, _ports(name)[0], "70000"])
    assert done.value.code == 2 and "must be 0-65535" in capsys.readouterr().err


@pytest.mark.parametrize("name", SANDBOXES)
def test_help_of_every_sandbox_lists_every_common_flag(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["sandbox", name, "--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    for flag in (*(f for f in COMMON_FLAGS if f != "--port"), *_ports(name), *RUN_FLAGS):
        assert flag in text, flag


@pytest.mark.parametrize("name", SANDBOXES)
@pytest.mark.parametrize("flag", ["--report", "--html", "--journal"])
def test_engine_run_flags_need_run_on_every_sandbox(name: str, flag: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["sandbox", name, flag, "out"])
    assert done.value.code == 2 and f"{flag} needs --run CONFIG" in capsys.readouterr().err


@pytest.mark.parametrize(("name", "spec", "kind"), [("psx", "drop_sockets@30/60", "drop_sockets"),
                                                     ("pulse", "stall@5:2.5", "stall"),
                                                     ("psx_feed", "gap@10,count=3", "gap"),
                                                     ("optimus", "error_5xx@10:15,count=2", "5xx")])
def test_every_sandbox_reads_faults_in_the_one_vocabulary(name: str, spec: str, kind: str) -> None:
    (fault,) = _parse(name, ["--fault", spec]).fault
    assert fault.kind == kind


@pytest.mark.parametrize(("name", "spec"), [("psx_feed", "halt@1"), ("optimus", "gap@1"),
                                            ("pulse", "expire_tokens@1")])
def test_a_known_kind_the_venue_does_not_play_is_refused_naming_the_venue(
        name: str, spec: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["sandbox", name, "--fault", spec])
    assert done.value.code == 2
    err = capsys.readouterr().err
    assert f"not supported by venue {name}" in err, err


@pytest.mark.parametrize(("name", "spec"), [("psx_feed", "feed.drop@1"), ("optimus", "broker.outage@1")])
def test_a_sandbox_serving_one_server_refuses_a_target(name: str, spec: str,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["sandbox", name, "--fault", spec])
    assert done.value.code == 2 and "serves one server" in capsys.readouterr().err


@pytest.mark.parametrize(("name", "spec", "counted"), [
    ("psx_feed", "drop@0/0.2", '"fault_drop": '),
    ("optimus", "drop_connections@0/0.2", '"fault_drop_connections": '),
])
def test_a_sandbox_alone_plays_its_scheduled_faults(name: str, spec: str, counted: str,
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """--fault on the feed or the broker alone: played at its moment and again every period (their
    stopped line counts the faults played), not only on request."""
    for env in ("OPTIMUS_USERNAME", "OPTIMUS_PASSWORD", "OPTIMUS_WEBHOOK_SECRET"):
        monkeypatch.setenv(env, "sandbox-test-value")
    code = main(["sandbox", name, "--port", "0", "--no-market", "--always-open", "--duration", "1",
                 "--fault", spec])
    out = capsys.readouterr().out
    assert code == 0, out
    stopped = out.strip().splitlines()[-1]
    assert counted in stopped, stopped
    played = int(stopped.split(counted)[1].split(",")[0].split("}")[0])
    assert played >= 2, stopped  # the first at once, then repeated


@pytest.mark.parametrize("name", SANDBOXES)
def test_a_fault_the_venue_does_not_play_is_refused_naming_it(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["sandbox", name, "--fault", "melt@1"])
    assert done.value.code == 2
    err = capsys.readouterr().err
    assert "--fault" in err and "melt" in err


# ---- the engine's half of --run: any sandbox, through the link ----------------------------------


def _link(**changes: object) -> SandboxLink:
    fields: dict[str, object] = {
        "clock": WallClock(), "description": "test sandbox", "stopped": lambda: "stopped",
        "adapter_options": {"optimus": {"base_url": "http://127.0.0.1:1/v1", "password_file": None},
                            "psx_feed": {"url": "ws://127.0.0.1:2"}},
        "environment": {"OPTIMUS_PASSWORD": "pw-7a1c"}, "secret_values": frozenset({"pw-7a1c"}),
        "order_adapter": "optimus",
    }
    return SandboxLink(**{**fields, **changes})  # type: ignore[arg-type]


def test_the_link_points_each_served_adapter_and_drops_options_it_replaces(tmp_path: Path) -> None:
    text = (REPO / "config.psx-sandbox.yaml").read_text().replace(
        "      password_env: OPTIMUS_PASSWORD", "      password_env: OPTIMUS_PASSWORD\n      password_file: pw.txt", 1)
    assert "password_file: pw.txt" in text
    (tmp_path / "config.yaml").write_text(text)
    loaded = load_config(tmp_path / "config.yaml")
    pointed, venue = point_config_at(loaded, _link())
    psx = pointed.config.venues["psx"]
    assert venue == "psx"
    assert psx.options["base_url"] == "http://127.0.0.1:1/v1" and "password_file" not in psx.options
    assert psx.market_data.options["url"] == "ws://127.0.0.1:2"
    assert "pw-7a1c" in pointed.secret_values
    assert loaded.config.venues["psx"].options["password_file"] == "pw.txt"  # the loaded config is untouched


def test_the_link_never_shows_its_credentials() -> None:
    assert "pw-7a1c" not in repr(_link()) and "pw-7a1c" not in str(_link())


def test_a_config_the_sandbox_serves_nothing_of_is_refused() -> None:
    loaded = load_config(REPO / "config.psx-sandbox.yaml")
    with pytest.raises(ConfigError, match=r"exactly one venue with adapter: pulse .*found none"):
        point_config_at(loaded, _link(adapter_options={"pulse": {"url": "ws://x"}}, order_adapter="pulse"))
    with pytest.raises(ConfigError, match=r"a venue using one of this sandbox's adapters \(pulse\)"):
        point_config_at(loaded, _link(adapter_options={"pulse": {"url": "ws://x"}}, order_adapter=None))


def test_a_market_data_sandbox_points_the_feed_and_takes_no_orders() -> None:
    loaded = load_config(REPO / "config.psx-sandbox.yaml")
    pointed, venue = point_config_at(loaded, _link(adapter_options={"psx_feed": {"url": "ws://127.0.0.1:3"}},
                                                   order_adapter=None))
    assert venue is None
    assert pointed.config.venues["psx"].market_data.options["url"] == "ws://127.0.0.1:3"
    assert pointed.config.venues["psx"].options["base_url"] == "http://127.0.0.1:8090/v1"  # not served: unchanged
