"""PSX Live Feed: market data over WebSocket (``shared/seeds/002_ad1dca0bc7545d13.txt``).

:mod:`.codec` holds the whole wire format (sans-I/O), :mod:`.adapter` the transport
(:class:`~adapters.psx_feed.adapter.LiveFeedAdapter`, registry name ``psx_feed``), and
:mod:`.sandbox` a local server on the simulated venue (adapters/sim), with faults on request."""
