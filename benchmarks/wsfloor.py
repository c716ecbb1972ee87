"""The recv-only WebSocket floor for the wire benchmarks (bench_psx_feed.py, bench_pulse.py).

Why: a decode figure over loopback means little without the socket's own speed next to it, and the
sandboxes pace their sends (they build each frame while sending), so a sandbox-paced figure can be
the server's limit, not ours. Here the frames a sandbox sent are replayed by a server that writes
them *pre-framed* (every WebSocket header built before the clock starts, all frames in one
``sendall`` from its own process), so the server is never the limit. The same websockets client
(the adapters' library and options: no compression, no ping) then receives them twice per round:

- ``floor``: it only receives (``async for`` over the connection, nothing else);
- ``figure``: each frame also goes through ``handle`` (the adapter's decode path).

Rounds alternate floor and figure (the shared VM's speed changes hit both alike); the best of each
is reported with the ratio figure / floor. Everything is on 127.0.0.1.
"""

from __future__ import annotations

import base64
import hashlib
import multiprocessing
import socket
import time
from collections.abc import Callable
from pathlib import Path

import anyio
from websockets.asyncio.client import connect

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def pre_framed(texts: list[str]) -> bytes:
    """Every text as one unmasked, final WebSocket text frame (RFC 6455 5.2), back to back."""
    out = bytearray()
    for text in texts:
        payload = text.encode("utf-8")
        size = len(payload)
        if size < 126:
            out += bytes((0x81, size))
        elif size < 1 << 16:
            out += bytes((0x81, 126)) + size.to_bytes(2, "big")
        else:
            out += bytes((0x81, 127)) + size.to_bytes(8, "big")
        out += payload
    return bytes(out)


def _serve(listener: socket.socket, blob: bytes, connections: int) -> None:
    """The replay server (a child process): per connection, the handshake, then ``blob`` at once."""
    for _ in range(connections):
        conn, _address = listener.accept()
        with conn:
            request = b""
            while b"\r\n\r\n" not in request:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                request += chunk
            key = next(line.split(b":", 1)[1].strip() for line in request.split(b"\r\n")
                       if line.lower().startswith(b"sec-websocket-key:"))
            accept = base64.b64encode(hashlib.sha1(key + _GUID).digest())
            conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                         b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n" + blob)
            while conn.recv(65536):  # until the client closes
                pass


async def _receive(url: str, count: int, handle: Callable[[str], None] | None, max_size: int) -> float:
    """Frames per second from the first frame received to the ``count``-th."""
    async with connect(url, compression=None, ping_interval=None, max_size=max_size, close_timeout=1,
                       proxy=None) as ws:
        received = 0
        started = 0.0
        async for message in ws:
            if handle is not None:
                handle(message)  # type: ignore[arg-type]
            received += 1
            if received == 1:
                started = time.perf_counter()
            elif received == count:
                return (count - 1) / (time.perf_counter() - started)
    raise SystemExit(f"the replay server closed after {received} of {count} frames")


def floor_and_figure(texts: list[str], make_handle: Callable[[], Callable[[str], None]], rounds: int = 3,
                     max_size: int = 1 << 20) -> tuple[float, float]:
    """Best-of-``rounds`` frames/s of the recv-only floor and of the figure (``make_handle()`` gives
    a fresh decode path per round, so each round decodes from the same state)."""
    blob = pre_framed(texts)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    context = multiprocessing.get_context("fork")
    server = context.Process(target=_serve, args=(listener, blob, 2 * rounds), daemon=True)
    server.start()
    listener.close()  # the child holds it
    url = f"ws://127.0.0.1:{port}/"
    floor = figure = 0.0
    try:
        for _ in range(rounds):
            floor = max(floor, anyio.run(_receive, url, len(texts), None, max_size))
            figure = max(figure, anyio.run(_receive, url, len(texts), make_handle(), max_size))
    finally:
        server.join(timeout=10)
        if server.is_alive():
            server.terminate()
    return floor, figure


def _serve_texts(listener: socket.socket, texts: list[str]) -> None:
    """:func:`_serve` for one connection, framing ``texts`` itself (in the child), so the parent's
    instruction count holds the client alone."""
    _serve(listener, pre_framed(texts), 1)


def receive_once(texts: list[str], handle: Callable[[str], None] | None = None,
                 max_size: int = 1 << 20) -> float:
    """One round of the floor (``handle`` None) or of the figure, for instruction counts: the
    replay server is a forked child that frames the texts itself; frames/s as :func:`_receive`."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    server = multiprocessing.get_context("fork").Process(target=_serve_texts, args=(listener, texts), daemon=True)
    server.start()
    listener.close()
    try:
        return anyio.run(_receive, f"ws://127.0.0.1:{port}/", len(texts), handle, max_size)
    finally:
        server.join(timeout=10)
        if server.is_alive():
            server.terminate()


def write_frames(path: Path, frames: list[str]) -> None:
    """A recording for ``decode`` / ``floor``: one frame per line (a frame holding a newline cannot
    be stored so, and is refused)."""
    if any("\n" in frame for frame in frames):
        raise SystemExit("a frame holds a newline: cannot store one per line")
    path.write_text("\n".join(frames) + "\n", encoding="utf-8")
    print(f"{len(frames)} frames -> {path}")


def read_frames(path: Path, count: int) -> list[str]:
    """The first ``count`` frames of a recording (one text per line), or exit saying it is short
    (the whole file is read whatever ``count``, so that reading it cancels in a difference of two
    counts)."""
    frames = path.read_text(encoding="utf-8").splitlines()[:count]
    if len(frames) < count:
        raise SystemExit(f"{path} holds {len(frames)} frames, fewer than {count}")
    return frames


def decode_frames(frames: list[str], handle: Callable[[str], None], profile: bool = False) -> float | None:
    """The benchmarks' ``decode`` mode: ``frames`` through ``handle`` alone, no socket; frames/s, or
    (``profile``) cProfile's 20 costliest functions printed and None."""
    if profile:
        import cProfile
        import pstats
        profiler = cProfile.Profile()
        profiler.enable()
        for frame in frames:
            handle(frame)
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(20)
        return None
    started = time.perf_counter()
    for frame in frames:
        handle(frame)
    return len(frames) / (time.perf_counter() - started)


def decode_file(path: Path, count: int, handle: Callable[[str], None], figure: str, profile: bool = False) -> None:
    """The benchmarks' ``decode`` mode from a recording: the first ``count`` frames of ``path``
    through ``handle`` alone, printed as ``figure=frames/s`` (or, ``profile``, cProfile's table)."""
    rate = decode_frames(read_frames(path, count), handle, profile)
    if rate is not None:
        print(f"{figure}={int(rate)}")
