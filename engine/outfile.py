"""Where the engine may write a file a user named (``--report``, ``--html``, ``run.report``).

A report is written atomically: a temporary file beside the target, renamed over it. A rename
replaces whatever the name points at, so ``--report /dev/stdout`` or a named pipe a monitor reads
would silently become a regular file, and a directory would fail only after a whole trading day.
So the engine writes only to a regular file or a path that does not exist yet, and checks that
twice: at start (:func:`check_output_path`, before anything trades) and again at write time
(:func:`output_target`, since the path may have changed during the run).

Symbolic links are followed: a link to a regular file (or to a path not there yet) has its target
replaced and the link kept (``latest.json -> runs/day-12.json`` stays a link); a link to anything
else is refused like the thing itself.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from engine.errors import StartupError

__all__ = ["OutputPathError", "check_output_path", "output_target", "write_atomic"]


class OutputPathError(OSError):
    """The path cannot take a report; ``str()`` names the path and what is there. An ``OSError``
    so that every place that already reports a failed write reports this too."""


def _kind(mode: int) -> str:
    """What a file of ``mode`` is, in words a user recognises."""
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def output_target(path: Path | str) -> Path:
    """The file a write to ``path`` replaces: ``path`` itself, or where its symbolic links lead.

    Raises :class:`OutputPathError` unless that is a regular file or does not exist, inside a
    folder that exists (or can be created) and is writable."""
    path = Path(path)
    target = Path(os.path.realpath(path))
    via = f" (a symbolic link to {target})" if target != path.absolute() and path.is_symlink() else ""
    try:
        mode = os.lstat(target).st_mode
    except FileNotFoundError:
        mode = None
    except OSError as exc:  # e.g. a path component is a regular file
        raise OutputPathError(f"{path}{via}: cannot be written ({exc.strerror or exc})") from None
    if mode is not None and not stat.S_ISREG(mode):
        raise OutputPathError(
            f"{path}{via} is {_kind(mode)}; reports are written only to a regular file or a new path"
        )
    folder = target.parent
    while not folder.exists():  # created at write time (mkdir -p): the nearest existing one decides
        folder = folder.parent
    if not folder.is_dir():
        raise OutputPathError(f"{path}{via}: {folder} is not a directory")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputPathError(f"{path}{via}: the directory {folder} is not writable")
    return target


def check_output_path(path: Path | str | None, option: str) -> None:
    """At start: refuse an output path the report could not be written to, as a
    :class:`StartupError` naming the ``option`` it came from (exit 1, nothing traded)."""
    if path is None:
        return
    try:
        output_target(path)
    except OutputPathError as exc:
        raise StartupError(f"{option} {exc}") from None


def write_atomic(path: Path | str, text: str | bytes, new_mode: int = 0o666) -> Path:
    """Write ``text`` (or bytes) to ``path`` (see :func:`output_target`) through a temporary file
    renamed over the target, so a crash mid-write never leaves half a file. A file replaced keeps
    its permission bits; a new one gets ``new_mode`` (default 0666) minus umask. Returns the file
    written."""
    target = output_target(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        keep_mode: int | None = stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        keep_mode = None
    # O_EXCL: never through a link or over another file that happens to have this name
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, new_mode)
    try:
        with os.fdopen(fd, "wb") if isinstance(text, bytes) else os.fdopen(fd, "w", encoding="utf-8") as handle:
            if keep_mode is not None:
                os.fchmod(handle.fileno(), keep_mode)
            handle.write(text)
        output_target(target)  # still a regular file (or absent) right before the rename
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target
