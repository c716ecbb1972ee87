"""What the engine shows about itself while it runs and after: metrics, health, timings, timeline.

- :mod:`engine.observe.metrics`: the catalogue of every Prometheus series (names, kinds, labels);
- :mod:`engine.observe.snapshot`: the snapshot the event loop publishes for scrapes, and readiness;
- :mod:`engine.observe.server`: the ``/metrics``, ``/healthz`` and ``/readyz`` HTTP server;
- :mod:`engine.observe.timing`: power-of-two latency histograms cheap enough for the per-event path;
- :mod:`engine.observe.timeline`: what the HTML page draws, sampled during the run.

Import the module you need (``from engine.observe.metrics import CATALOG``): this package
re-exports nothing, so importing one part never loads the HTTP server or prometheus-client.
"""
