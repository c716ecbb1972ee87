"""The paper venue: an embedded price-time matching engine per symbol (:mod:`.matching`), a
deterministic synthetic market that trades through it (:mod:`.market`), and the adapter that puts
both behind the venue interface (:mod:`.adapter`)."""
