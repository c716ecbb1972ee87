"""HTTP/1.1 requests stamped with the kernel's receive time, not a Python server's.

Why: a rate-limit test that counts arrivals stamped by a server in Python counts when that server
got to read them. On a loaded machine a sandbox in the test's process lags the wire by 10 ms at
the median and up to hundreds of milliseconds (measured: Optimus sandbox stamps against the
adapter's write times, two CPU burners beside it), unevenly, so it bunches what arrived apart and
the test judges the sandbox's scheduling, not the client. Linux stamps every TCP segment as it is
received (``SO_TIMESTAMPNS``); ``recvmsg`` hands the stamp of the (last) segment it read, and a
request is stamped with the read its first bytes came in. So these times are when the bytes
reached the receiving socket, whenever Python read them (at worst a little late, never early).
Bodies must carry a Content-Length (no chunked requests).

Two shapes, both on 127.0.0.1 with a thread per connection, Linux only (tests skip elsewhere):

    with StampedHttpServer() as server:          # answers every request 200 {} (kept alive)
        ... requests to server.url ...
    with StampedTap("http://127.0.0.1:8080") as tap:  # forwards both ways to a real server
        ... requests to tap.url ...
    server.arrivals_ns() / tap.arrivals_ns()     # one wall-clock time per request
"""

from __future__ import annotations

import socket
import struct
import sys
import threading
import time
from collections.abc import Callable
from types import TracebackType
from urllib.parse import urlsplit

#: Linux's SO_TIMESTAMPNS (== SCM_TIMESTAMPNS; the socket module does not name it)
SO_TIMESTAMPNS = 35
STAMPED = sys.platform.startswith("linux")
ANSWER = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
POLL_S = 0.1  # how often a blocked thread looks whether it should stop


class _Stamped:
    """The listener, the per-connection threads and the requests' stamps; a subclass says what
    happens to a connection's bytes (:meth:`_opened`, :meth:`_requested`)."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self._listener.settimeout(POLL_S)  # closing it does not wake a blocked accept: poll instead
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._arrivals: list[tuple[int, str]] = []  # (kernel stamp, request line)
        self._lock = threading.Lock()
        self._closed = False
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> _Stamped:
        self._start(self._accept)
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._closed = True
        for thread in list(self._threads):
            thread.join(5)
        self._listener.close()

    def arrivals_ns(self, where: Callable[[str], bool] | None = None) -> list[int]:
        """The kernel's receive time of each request's first segment, in time order; ``where``
        picks requests by their request line (``"POST /api/v1/orders HTTP/1.1"``)."""
        with self._lock:
            return sorted(stamp for stamp, line in self._arrivals if where is None or where(line))

    def _start(self, target: object, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
        self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            conn.settimeout(POLL_S)
            self._start(self._serve, conn)

    def _serve(self, conn: socket.socket) -> None:
        pending = b""
        stamp: int | None = None  # the first unread byte's segment time
        with conn:
            upstream = self._opened(conn)
            try:
                while not self._closed:
                    try:
                        data, ancillary, _flags, _addr = conn.recvmsg(65536, socket.CMSG_SPACE(16))
                    except TimeoutError:
                        continue
                    except OSError:
                        return
                    if not data:
                        return
                    if not pending:
                        stamp = _kernel_stamp(ancillary)
                    pending += data
                    try:
                        if upstream is not None:
                            upstream.sendall(data)
                        while (length := _one_request(pending)) is not None:
                            line = pending[:pending.find(b"\r\n")].decode("latin-1")
                            pending = pending[length:]
                            with self._lock:
                                self._arrivals.append((stamp if stamp is not None else time.time_ns(), line))
                            if upstream is None:
                                conn.sendall(ANSWER)
                            stamp = _kernel_stamp(ancillary) if pending else None
                    except OSError:  # either side went away (a reset, a timeout): the connection ends
                        return
            finally:
                if upstream is not None:
                    try:
                        upstream.shutdown(socket.SHUT_RDWR)  # ends the relay back, then closed here
                    except OSError:
                        pass
                    upstream.close()

    def _opened(self, conn: socket.socket) -> socket.socket | None:
        """A new connection ``conn``: the upstream socket its bytes go to (None: answer them here)."""
        return None


class StampedHttpServer(_Stamped):
    """Answers every request ``200 {}`` and stamps it (see the module docstring)."""

    def __enter__(self) -> StampedHttpServer:
        super().__enter__()
        return self


class StampedTap(_Stamped):
    """Stands in front of the server at ``upstream`` (an ``http://host:port`` URL): each connection
    is relayed to a connection of its own there, both ways, byte for byte, and each request is
    stamped as it passes (see the module docstring)."""

    def __init__(self, upstream: str) -> None:
        super().__init__()
        parts = urlsplit(upstream)
        if parts.hostname is None or parts.port is None:
            raise ValueError(f"upstream {upstream!r} names no host and port")
        self._upstream = (parts.hostname, parts.port)
        self.url += parts.path  # the same base path, through the tap

    def __enter__(self) -> StampedTap:
        super().__enter__()
        return self

    def _opened(self, conn: socket.socket) -> socket.socket:
        upstream = socket.create_connection(self._upstream, timeout=5)
        upstream.settimeout(POLL_S)
        self._start(self._relay_back, upstream, conn)
        return upstream

    def _relay_back(self, upstream: socket.socket, client: socket.socket) -> None:
        """The server's answers to the client, until either side closes (the server closing ends
        the client's connection too, as it would without the tap)."""
        while not self._closed:
            try:
                data = upstream.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                break
            if not data:
                break
            try:
                client.sendall(data)
            except OSError:
                return
        try:
            client.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def _kernel_stamp(ancillary: list[tuple[int, int, bytes]]) -> int | None:
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= 16:
            seconds, nanoseconds = struct.unpack("qq", data[:16])
            return seconds * 1_000_000_000 + nanoseconds
    return None


def _one_request(buffer: bytes) -> int | None:
    """The length of the complete request at the start of ``buffer``, or None."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return None
    length = 0
    for line in buffer[:end].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    total = end + 4 + length
    return total if len(buffer) >= total else None
