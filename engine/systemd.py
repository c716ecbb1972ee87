"""A tiny sd_notify client: tell systemd when the engine is ready, alive and stopping.

Why: the shipped unit (``deploy/systemd/engine.service``) is ``Type=notify`` with ``WatchdogSec=30``.
systemd then counts the service as started only when the engine says ``READY=1`` (venues connected,
``on_start`` done), and restarts it when the ``WATCHDOG=1`` pings stop, which is what a stalled event
loop looks like from outside. The protocol is one datagram of ``KEY=value`` lines sent to the
AF_UNIX socket named by ``$NOTIFY_SOCKET``; that is small enough not to need libsystemd or a
dependency.

Everything here is a no-op when ``NOTIFY_SOCKET`` is unset (a terminal, Docker, a test), and nothing
here raises on a socket error: the engine must keep trading if systemd cannot be told something.
The first failure is logged as a warning, later ones only at debug level.

Intended calls from ``engine/app.py``::

    from engine import systemd

    # once every venue is connected and every strategy's on_start has run:
    systemd.ready("trading: 2 strategies on paper")
    # optional, at session changes or reconnects (shows in `systemctl status engine`):
    systemd.status("session open")
    # a periodic task on the event loop, so a stalled loop stops the pings:
    interval = systemd.watchdog_interval()      # None: no watchdog configured for this process
    if interval is not None:
        ...every `interval` seconds: systemd.watchdog()
    # when shutdown starts (SIGTERM, SIGINT or the end of the run), before on_stop and the cancels:
    systemd.stopping("cancelling open orders")

A :class:`Notifier` can also be created directly (``Notifier("/run/x.sock")``) when the address
should not come from the environment, e.g. in tests.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping

__all__ = ["Notifier", "notify", "ready", "status", "stopping", "watchdog", "watchdog_interval"]

log = logging.getLogger("engine.systemd")


def _socket_address(address: str) -> bytes | None:
    """The bytes address for ``sendto``: a filesystem path, or ``@name`` as a Linux abstract socket
    (leading NUL). None for anything else (e.g. systemd's ``vsock:`` form, which is not supported)."""
    if address.startswith("@"):
        return b"\0" + os.fsencode(address[1:])
    if address.startswith("/"):
        return os.fsencode(address)
    return None


class Notifier:
    """Sends sd_notify datagrams to one address; a no-op when the address is None or empty."""

    def __init__(self, address: str | None) -> None:
        self.address = address or None
        self._target = _socket_address(self.address) if self.address else None
        self._sock: socket.socket | None = None
        self._warned = False
        if self.address and self._target is None:
            self._warn(f"unsupported NOTIFY_SOCKET address {self.address!r}; not notifying systemd")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Notifier:
        """The notifier systemd asked for through ``$NOTIFY_SOCKET`` (a no-op one when unset)."""
        env = os.environ if environ is None else environ
        return cls(env.get("NOTIFY_SOCKET"))

    @property
    def enabled(self) -> bool:
        """True when datagrams are actually sent somewhere."""
        return self._target is not None

    def notify(self, *fields: str) -> bool:
        """Send ``fields`` (``"KEY=value"`` each) as one datagram. True when sent; False when disabled
        or on any socket error (never raises: a missing systemd must not stop trading)."""
        if self._target is None or not fields:
            return False
        payload = "\n".join(fields).encode("utf-8", "replace")
        try:
            if self._sock is None:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                # Never block the event loop on a busy receiver: a dropped ping beats a stalled loop.
                sock.setblocking(False)
                self._sock = sock
            self._sock.sendto(payload, self._target)
        except (OSError, AttributeError) as exc:  # AttributeError: no AF_UNIX on this platform
            self._warn(f"cannot notify systemd at {self.address!r}: {exc}")
            self.close()  # the next call starts over with a fresh socket
            return False
        return True

    def ready(self, status: str | None = None) -> bool:
        """``READY=1``: startup is finished (venues connected, ``on_start`` ran); systemd starts
        ordering dependent units and the start timeout ends."""
        return self.notify("READY=1", *_status_field(status))

    def status(self, text: str) -> bool:
        """``STATUS=...``: one line shown by ``systemctl status``."""
        return self.notify(*_status_field(text))

    def watchdog(self) -> bool:
        """``WATCHDOG=1``: the event loop is alive; systemd kills and restarts the service when these
        stop for ``WatchdogSec``."""
        return self.notify("WATCHDOG=1")

    def stopping(self, status: str | None = None) -> bool:
        """``STOPPING=1``: shutdown began on purpose, so systemd does not read the coming exit (or a
        slow graceful stop) as a failure of the running service."""
        return self.notify("STOPPING=1", *_status_field(status))

    def close(self) -> None:
        """Close the socket; the next notification opens a new one."""
        sock, self._sock = self._sock, None
        if sock is not None:
            try:
                sock.close()
            except OSError:
                pass

    def _warn(self, message: str) -> None:
        if self._warned:
            log.debug("%s", message)
        else:
            self._warned = True
            log.warning("%s", message)


def _status_field(text: str | None) -> tuple[str, ...]:
    """``STATUS=text`` on one line: a newline inside would start another (unintended) field."""
    if text is None:
        return ()
    return ("STATUS=" + " ".join(str(text).splitlines()),)


def watchdog_interval(environ: Mapping[str, str] | None = None, pid: int | None = None) -> float | None:
    """Seconds between ``WATCHDOG=1`` pings: half of ``$WATCHDOG_USEC`` (systemd's advice), or None
    when no watchdog applies: no ``NOTIFY_SOCKET`` (nothing to ping), no or a bad ``WATCHDOG_USEC``,
    or ``WATCHDOG_PID`` naming another process (the variables were inherited from a parent)."""
    env = os.environ if environ is None else environ
    if not env.get("NOTIFY_SOCKET"):
        return None
    watchdog_pid = env.get("WATCHDOG_PID")
    if watchdog_pid:
        try:
            if int(watchdog_pid) != (os.getpid() if pid is None else pid):
                return None
        except ValueError:
            return None
    try:
        usec = int(env.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    if usec <= 0:
        return None
    return usec / 2 / 1_000_000


# ---- module-level helpers: one notifier per NOTIFY_SOCKET value, read at each call ---------------

_default: Notifier | None = None


def _notifier() -> Notifier:
    """The shared notifier for the current ``$NOTIFY_SOCKET``; re-created if the variable changed,
    so the warn-once state and the socket are kept across calls."""
    global _default
    address = os.environ.get("NOTIFY_SOCKET") or None
    if _default is None or _default.address != address:
        if _default is not None:
            _default.close()
        _default = Notifier(address)
    return _default


def notify(*fields: str) -> bool:
    """Send raw ``KEY=value`` fields to ``$NOTIFY_SOCKET``; see :meth:`Notifier.notify`."""
    return _notifier().notify(*fields)


def ready(status: str | None = None) -> bool:
    """``READY=1`` (plus an optional status line); see :meth:`Notifier.ready`."""
    return _notifier().ready(status)


def status(text: str) -> bool:
    """``STATUS=text``; see :meth:`Notifier.status`."""
    return _notifier().status(text)


def watchdog() -> bool:
    """``WATCHDOG=1``; see :meth:`Notifier.watchdog`."""
    return _notifier().watchdog()


def stopping(status: str | None = None) -> bool:
    """``STOPPING=1`` (plus an optional status line); see :meth:`Notifier.stopping`."""
    return _notifier().stopping(status)
