"""One writer per cache folder: an exclusive `filelock` on `writer.lock`, held for a whole run.

The lock is the operating system's (flock): it goes when its process does, so a lock left by
a killed run never blocks the next one. Who holds it (host, pid, start time) is written next
to it in `writer.json`, because a process that fails to take the lock cannot read that from
the lock itself. Readers of the cache take no lock: they read only published shards.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import filelock

from brogue import atomic
from brogue.errors import BrogueError

LOCK = "writer.lock"
HOLDER = "writer.json"


class CacheBusyError(BrogueError):
    """Another process is writing the cache; the message names it."""


def holder(directory: Path) -> str:
    """Who holds (or last held) the lock on `directory`, in words."""
    try:
        found = json.loads((Path(directory) / HOLDER).read_text(encoding="utf-8"))
        return f"host {found['host']}, pid {found['pid']}, started {found['started']}"
    except (OSError, ValueError, KeyError):
        return "a process that has not yet said who it is"


@contextlib.contextmanager
def writer_lock(directory: Path) -> Iterator[None]:
    """Hold the cache's writer lock for the block; refuse at once if someone else holds it."""
    directory = Path(directory)
    lock = filelock.FileLock(directory / LOCK, timeout=0)
    try:
        lock.acquire()
    except filelock.Timeout:
        raise _busy(directory) from None
    try:
        started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        facts = {"host": socket.gethostname(), "pid": os.getpid(), "started": started}
        atomic.write_text(directory / HOLDER, json.dumps(facts) + "\n")
        yield
    finally:
        lock.release()


def _busy(directory: Path) -> CacheBusyError:
    return CacheBusyError(
        f"{directory} is being written by another brogue ({holder(directory)}); "
        "wait for it to finish, or choose another --out"
    )


def refuse_if_busy(directory: Path) -> None:
    """Refuse at once, before slow preparations, if a writer holds `directory` now."""
    if is_locked(directory):
        raise _busy(directory)


def is_locked(directory: Path) -> bool:
    """Whether a writer holds `directory`'s lock now (tried without waiting, released at once)."""
    path = Path(directory) / LOCK
    if not path.exists():
        return False
    lock = filelock.FileLock(path, timeout=0)
    try:
        lock.acquire()
    except filelock.Timeout:
        return True
    lock.release()
    return False
