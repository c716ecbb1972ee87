"""``engine record`` connects only what carries market data (issue 26): a venue whose data comes
from a ``market_data:`` adapter records without its order adapter, so the order side's credentials
(Optimus's username, password, webhook secret) need not be set."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
from support import shipped_config, write_config

from engine.app import Engine
from engine.config import ConfigError, load_config
from engine.recording.listen import NoOrders, recording_config

pytest.importorskip("pyarrow")

OPTIMUS_ENV = ("OPTIMUS_USERNAME", "OPTIMUS_PASSWORD", "OPTIMUS_WEBHOOK_SECRET")


@pytest.fixture
def psx_without_order_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in OPTIMUS_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PSX_FEED_TOKEN", "feed-token-for-the-test")
    config = shipped_config("config.psx-sandbox.yaml")
    config["metrics"] = {"enabled": False}
    return write_config(tmp_path, config)


def test_record_builds_only_the_market_data_adapter(psx_without_order_credentials: Path, tmp_path: Path) -> None:
    loaded = recording_config(load_config(psx_without_order_credentials))
    engine = Engine(loaded, record_to=tmp_path / "rec", market_data_only=True)
    assert isinstance(engine.adapters["psx"], NoOrders)
    assert engine.feeds["psx"].name == "psx_feed"
    # the no-order side reports connected without a connection, and lists nothing to reconcile
    statuses: list[tuple[str, str]] = []
    engine.adapters["psx"].sink = type("S", (), {"on_venue_status": lambda self, v, s, d="": statuses.append((v, s))})()

    async def connect_and_query() -> tuple[list, list]:
        await engine.adapters["psx"].connect()
        return await engine.adapters["psx"].query_open_orders(), await engine.adapters["psx"].query_fills(0)

    assert anyio.run(connect_and_query) == ([], [])
    assert statuses == [("psx", "connected")]


def test_a_trading_run_still_needs_the_order_credentials(psx_without_order_credentials: Path) -> None:
    # before the change, engine record built this adapter too and failed the same way
    with pytest.raises(ConfigError, match="OPTIMUS_"):
        Engine(load_config(psx_without_order_credentials))


def test_a_venue_without_market_data_records_from_its_own_adapter(tmp_path: Path) -> None:
    import yaml
    from support import REPO

    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["metrics"] = {"enabled": False}
    for strategy in config["strategies"]:
        strategy["file"] = str(REPO / strategy["file"])
    engine = Engine(recording_config(load_config(write_config(tmp_path, config))), record_to=tmp_path / "rec",
                    market_data_only=True)
    assert all(not isinstance(adapter, NoOrders) for adapter in engine.adapters.values())
    assert engine.feeds == {}
