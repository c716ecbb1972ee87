"""Engine configs for the bus tests: one ``psx`` venue (paper order entry) with OGDC and one
do-nothing strategy, its market data given by the test: the bus, or a PSX Live Feed for a feed."""

from __future__ import annotations

from pathlib import Path


def psx_config(folder: Path, name: str, venue_block: str) -> Path:
    """``folder/name.yaml``; ``venue_block``: the lines of venue ``psx`` after ``adapter: paper``,
    indented by four spaces."""
    strategy = folder / "s.py"
    strategy.write_text("from engine import hookimpl\n\n\n@hookimpl\ndef on_start(ctx):\n    pass\n")
    path = folder / f"{name}.yaml"
    path.write_text(f"""\
instruments: [{{symbol: OGDC, venue: psx, tick_size: 0.01, lot_size: 1, previous_close: 109.30}}]
venues:
  psx:
    adapter: paper
{venue_block}
strategies: [{{name: s, file: {strategy}, venue: psx, instruments: [OGDC]}}]
""")
    return path


def engine_config(folder: Path, bus_options: str) -> Path:
    """An engine whose ``psx`` market data is the ``bus`` adapter with ``bus_options`` (YAML flow)."""
    return psx_config(folder, "engine", f"    market_data: {{adapter: bus, options: {{{bus_options}}}}}")


def feed_config(folder: Path, venue_port: int, token_env: str = "PSX_FEED_TOKEN") -> Path:
    """A feed of the PSX Live Feed sandbox at ``venue_port`` (none runs there unless a test starts it)."""
    return psx_config(folder, "feed", f"""\
    market_data:
      adapter: psx_feed
      options: {{url: "ws://127.0.0.1:{venue_port}", access: l2, token_env: {token_env}, max_connections: 1}}""")
