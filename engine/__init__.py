"""A strategy runtime for the Pakistan Stock Exchange and crypto-style venues.

Strategies import :data:`hookimpl` from here; see :mod:`engine.hookspecs` for the hooks.
"""

from engine.hookspecs import hookimpl

__all__ = ["hookimpl"]
__version__ = "0.1.0"
