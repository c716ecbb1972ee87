"""The ``bus`` market-data adapter: an engine's books from ``engine feed`` over NATS (issue 27)."""
