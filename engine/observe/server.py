"""The HTTP side of metrics and health: ``/metrics`` (Prometheus), ``/healthz`` and ``/readyz``.

A small server on its own daemon thread answers from the last snapshot the event loop published
(:class:`engine.observe.snapshot.Observer`), never from live state: a scrape never waits for the
loop, and ``/healthz`` can say "stalled" (503) while the loop is stuck instead of timing out.
"""

from __future__ import annotations

import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client.exposition import choose_encoder

from engine.errors import StartupError
from engine.observe.snapshot import Observer

# the logger keeps its name from before engine/observe/ (operators filter on it)
log = logging.getLogger("engine.metrics")

__all__ = ["MetricsServer"]


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        observer = self.server.observer
        if path == "/metrics":
            encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
            self._reply(200, encoder(observer.registry), content_type)
        elif path in ("/healthz", "/readyz"):
            ok, why = observer.health() if path == "/healthz" else observer.readiness()
            self._reply(200 if ok else 503, (why + "\n").encode(), "text/plain; charset=utf-8")
        else:
            self._reply(404, b"not found: try /metrics, /healthz or /readyz\n", "text/plain; charset=utf-8")

    def _reply(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("http %s", format % args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], observer: Observer) -> None:
        self.observer = observer
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)


class MetricsServer:
    """The HTTP endpoints on a daemon thread. ``start`` raises a clear error when the address is
    taken, so two engines on one host cannot silently share (or fight over) a port."""

    def __init__(self, observer: Observer, address: tuple[str, int]) -> None:
        self.observer = observer
        self.address = address
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("metrics server not started")
        host, port = self._server.server_address[:2]
        return f"http://{'[' + host + ']' if ':' in host else host}:{port}"

    def start(self) -> None:
        try:
            self._server = _Server(self.address, self.observer)
        except OSError as exc:
            host, port = self.address
            raise StartupError(
                f"metrics.listen {host}:{port}: {exc.strerror or exc}. Is another engine running on this host? "
                "Set metrics.listen to a free port, or metrics.enabled: false"
            ) from exc
        self._thread = threading.Thread(target=self._server.serve_forever, name="engine-metrics", daemon=True)
        self._thread.start()
        log.info("metrics on %s/metrics (health %s/healthz, readiness %s/readyz)", self.url, self.url, self.url)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
