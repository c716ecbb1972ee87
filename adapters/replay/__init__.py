"""The replay venue: recorded market data through the same runtime, orders matched by the simulated
venue against the recorded book (issue 26 part 2)."""
