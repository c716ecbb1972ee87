"""The paper venue: the engine-facing adapter (:mod:`.adapter`) over the simulated venue in
:mod:`adapters.sim` (matching engine, synthetic market, ledger), with its options and the paper
config's fault list."""
