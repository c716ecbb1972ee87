"""MidChains over FIX 4.2 (issue 23): framing (:mod:`.codec`, on simplefix), the sans-I/O session
state machine (:mod:`.session`), its durable sequence store (:mod:`.store`), the thin TLS/TCP loop
that drives it (:mod:`.transport`), the reconnecting link both FIX adapters run on (:mod:`.link`),
and order entry: the wire mapping (:mod:`.orders`), the durable order memory (:mod:`.state`) and the
``midchains_fix`` adapter (:mod:`.adapter`, options in :mod:`.options`); and market data: the L3
book (:mod:`.l3book`), the sans-I/O W/X/Y mapping (:mod:`.mdfeed`) and the ``midchains_fix_md``
adapter (:mod:`.marketdata`)."""
