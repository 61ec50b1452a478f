"""Small crash-safe file operations: atomic replacement, JSON records and ``flock`` locks.

A file written with :func:`write_atomic` is either its old content or its new content after a
kill at any moment: the bytes go to a temporary sibling that is renamed over the target
(``rename`` is atomic on POSIX file systems). :class:`FileLock` is an exclusive ``flock``: it
serialises threads (each lock opens its own file description) and processes on one machine,
and the kernel releases it when its process dies, so a killed writer never leaves a stale lock.
"""

from __future__ import annotations

import json
import os
import socket
import uuid
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None

__all__ = [
    "FileLock",
    "process_tag",
    "read_json",
    "tag_is_dead",
    "writable",
    "write_atomic",
    "write_json",
]


def process_tag() -> str:
    """``host-pid-random``: names temporary files of this process (see :func:`tag_is_dead`)."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def tag_is_dead(tag: str) -> bool:
    """True if ``tag`` (from :func:`process_tag`) names a process of this host that has ended.

    Tags of other hosts, or that do not parse, are never called dead (their files are kept).
    """
    parts = tag.rsplit("-", 2)
    if len(parts) != 3 or parts[0] != socket.gethostname() or not parts[1].isdigit():
        return False
    try:
        os.kill(int(parts[1]), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


def writable(folder: str | os.PathLike) -> bool:
    """True if a file can be created in ``folder`` (tried: permission bits do not stop root,
    but read-only mounts and immutable folders do)."""
    probe = Path(folder) / f".gammaxr-probe-{process_tag()}"
    try:
        probe.touch(exist_ok=False)
    except OSError:
        return False
    probe.unlink(missing_ok=True)
    return True


def write_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Replace the file ``path`` by ``data`` atomically (temporary sibling, then rename).

    Parameters
    ----------
    path : str or path-like
        Target file; its directory must exist.
    data : bytes
        New content.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{process_tag()}.partial")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_json(path: str | os.PathLike, record: Any) -> None:
    """Write ``record`` as JSON atomically (:func:`write_atomic`)."""
    write_atomic(path, json.dumps(record, sort_keys=True).encode())


def read_json(path: str | os.PathLike, default: Any = None) -> Any:
    """The JSON content of ``path``, or ``default`` if the file does not exist."""
    try:
        with open(path, "rb") as f:
            return json.loads(f.read())
    except FileNotFoundError:
        return default


class FileLock:
    """An exclusive ``flock`` on the file ``path`` (created if missing), as a context manager.

    Parameters
    ----------
    path : str or path-like
        The lock file; its directory must exist.
    blocking : bool
        Wait for the lock (default); if False, entering raises ``BlockingIOError`` when
        another holder has it.
    """

    def __init__(self, path: str | os.PathLike, *, blocking: bool = True):
        if fcntl is None:  # pragma: no cover
            raise RuntimeError("gammaxr store locks need POSIX flock")
        self._path = os.fspath(path)
        self._blocking = blocking
        self._fd: int | None = None

    def __enter__(self) -> FileLock:
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if self._blocking else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        fd, self._fd = self._fd, None
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
