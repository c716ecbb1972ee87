"""One feed, many engines, over NATS (issue 27): the wire format and subjects shared by the feed
process (``engine feed``) and the ``bus`` market-data adapter, and the feed itself."""
