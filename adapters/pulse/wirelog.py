"""Logging for the Pulse adapter and sandbox that never carries a credential, at any level.

Pulse authenticates inside JSON-RPC frames: ``public/auth`` carries the client secret (grant
``client_credentials``), an HMAC ``signature``, or a ``refresh_token``, and its answer carries the
access and refresh tokens. The websockets library logs every frame at DEBUG (``> TEXT '...'``),
elided to its first and last few dozen characters, so a secret at the end of a frame shows in a
DEBUG log even though the middle is cut.

As for the PSX Live Feed (logger ``engine.psx_feed.wire``), websockets is given a logger of our own
whose filter rewrites each record before any handler sees it. Because Pulse's credentials are in
frame bodies, not in the handshake, the filter also works on the frame itself: a websockets frame
record still holds the frame with its whole payload, so the payload is cleaned first and only then
elided the way websockets does it (a cut can never leave half a secret behind).

The filter is the engine's one :class:`engine.venue.RedactingFilter`, with Pulse's credential fields
as its keys (``client_secret``, ``access_token``, ``refresh_token``, ``signature``; in JSON, Python
reprs and query strings, and ``Authorization:`` header values) and every secret and token the
adapter has handled as its values (``REDACT.remember``).
"""

from __future__ import annotations

import logging

from engine.venue import RedactingFilter

__all__ = ["CREDENTIAL_KEYS", "REDACT", "adapter_log", "sandbox_log", "sandbox_wire_log", "wire_log"]

#: fields whose value is a credential, in any message
CREDENTIAL_KEYS = ("client_secret", "access_token", "refresh_token", "signature")

#: the one filter of this process: every Pulse adapter remembers its secret and tokens in it
REDACT = RedactingFilter(keys=CREDENTIAL_KEYS)

#: the adapter's own log
adapter_log = logging.getLogger("engine.pulse")
#: the websockets library logs the adapter's connections through this one
wire_log = logging.getLogger("engine.pulse.wire")
#: the sandbox's own log, and the websockets server's log of the sandbox's connections
sandbox_log = logging.getLogger("engine.pulse.sandbox")
sandbox_wire_log = logging.getLogger("engine.pulse.sandbox.wire")

# a logger's filters see only the records made on that logger, not its children's: each gets it
for _logger in (adapter_log, wire_log, sandbox_log, sandbox_wire_log):
    if REDACT not in _logger.filters:
        _logger.addFilter(REDACT)
