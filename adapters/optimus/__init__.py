"""Optimus Capital (Vision Max integration, PSX): order entry over REST with webhooks.

``codec`` is the sans-I/O wire format (every assumption where the broker document is silent is
marked with its gap number from shared/VENUES.md section 1, OPT-n), ``adapter`` the engine adapter
(httpx client, JWT upkeep, webhook receiver, polling), ``webhooks`` the small HTTP/1.1 server the
receiver runs on, and ``sandbox`` a local Optimus REST server on the simulated venue (adapters/sim).
"""
