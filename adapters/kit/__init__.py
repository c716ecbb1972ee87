"""The adapter kit: each piece every venue adapter needs, written once (decoding, pacing,
reconnecting, order tracking, credentials, backoff). Adapters import the engine's port
(``engine.venue``), the model, and this kit; never each other."""
