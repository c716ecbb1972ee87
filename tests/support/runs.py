"""Whole runs in a subprocess: the engine command as users run it, its readiness (sd_notify READY=1
on a socket the test listens on), SIGINT and wait, the log
without its frames for an assertion message, and the shipped sandbox configs made runnable from a
temporary folder (the Pulse one pointed at a sandbox's URL, the PSX one on a ten-minute day)."""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import anyio

from support import ENGINE, MEBL_TAKER, PSX_SHORT_DAY, add_strategy, shipped_config, write_config


def engine_command(*args: str) -> list[str]:
    """``engine ARGS`` as users run it: the installed script, else ``python -m engine.cli``."""
    if ENGINE.exists():
        return [str(ENGINE), *args]
    return [sys.executable, "-m", "engine.cli", *args]


def summary(log: str) -> str:
    """The log without its DEBUG lines (the frames), for an assertion message."""
    return "\n".join(line for line in log.splitlines() if " DEBUG " not in line)[-4000:]


def copy_config(folder: Path, url: str) -> Path:
    """The shipped Pulse sandbox config, written into ``folder``, pointed at the sandbox at ``url``."""
    config = shipped_config("config.pulse-sandbox.yaml")
    config["venues"]["pulse"]["options"]["url"] = url
    return write_config(folder, config, "config.pulse-sandbox.yaml")


async def interrupt(process: subprocess.Popen, seconds: float) -> None:
    """Ctrl-C the engine and wait up to ``seconds`` for it to end, yielding to the event loop: the
    sandbox in this process answers the shutdown's cancels and the logout meanwhile."""
    process.send_signal(signal.SIGINT)
    deadline = time.monotonic() + seconds
    while process.poll() is None and time.monotonic() < deadline:
        await anyio.sleep(0.1)



SECRETS = {"PSX_FEED_TOKEN": "run-feed-token-7f3a", "OPTIMUS_USERNAME": "run-user",
           "OPTIMUS_PASSWORD": "run-password-91c2", "OPTIMUS_WEBHOOK_SECRET": "run-webhook-secret-5d0e"}


def psx_config_on_a_short_day(tmp_path: Path) -> Path:
    config = shipped_config("config.psx-sandbox.yaml")
    config["sessions"] = PSX_SHORT_DAY
    add_strategy(tmp_path, config, "taker", MEBL_TAKER, "psx", ["MEBL"])
    return write_config(tmp_path, config)


@contextlib.contextmanager
def notify_socket() -> Iterator[tuple[socket.socket, str]]:
    """A datagram socket to give an engine as ``$NOTIFY_SOCKET``: yields it and the variable's value.
    Abstract (Linux): no path length limit and nothing to clean up."""
    name = f"engine-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        yield sock, "@" + name


def wait_until_ready(notify: socket.socket, process: subprocess.Popen, timeout: float) -> bool:
    """Wait for the engine's sd_notify ``READY=1``, sent once its venues are connected, on_start has
    run and the session driver has started (engine/app.py); False if the engine ended first or
    ``timeout`` seconds passed. Waiting for it, not for a fixed time, keeps a slow start on a loaded
    machine from looking like a failure."""
    deadline = time.monotonic() + timeout
    while process.poll() is None and time.monotonic() < deadline:
        notify.settimeout(0.1)
        try:
            datagram = notify.recv(4096)
        except TimeoutError:
            continue
        if b"READY=1" in datagram.split(b"\n"):
            return True
    return False


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``condition`` every 0.1 s until it holds, or fail naming ``what`` was awaited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def port_open(port: int) -> bool:
    """Something listens on 127.0.0.1:``port`` (a sandbox started as a process is up)."""
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0
