"""MidChains over FIX 4.2 (issue 23). So far the session layer only: framing (:mod:`.codec`, on
simplefix), the sans-I/O session state machine (:mod:`.session`) and its durable sequence store
(:mod:`.store`). It is not yet an adapter: order entry, market data, the transport and the sandbox
acceptor come next, on top of these."""
