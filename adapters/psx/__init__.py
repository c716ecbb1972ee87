"""The whole PSX venue as the engine trades it: Live Feed market data plus Optimus order entry,
served together by one sandbox (``engine sandbox psx``)."""
