"""The one simulated venue: matching engine, synthetic market, ledger, sessions and one fault
vocabulary. The paper adapter is a thin adapter over it; every sandbox serves its protocol on it."""
