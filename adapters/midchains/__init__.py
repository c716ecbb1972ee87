"""MidChains over FIX 4.2 (issue 23). So far the session layer only: framing (:mod:`.codec`, on
simplefix), the sans-I/O session state machine (:mod:`.session`), its durable sequence store
(:mod:`.store`) and the thin TLS/TCP loop that drives it (:mod:`.transport`). It is not yet an
adapter: order entry, market data and the sandbox acceptor come next, on top of these."""
