"""The per-run write-ahead journal: the truth about a live run until it is committed.

Each log call appends one record before it returns, so a process killed by
SIGKILL or the OOM killer loses nothing it logged (the bytes are in the
kernel); the journal is fsynced at least once a second and at every commit, so
a power cut loses at most the last second. A record is one line::

    <payload length> <crc32 of payload, 8 hex digits> <JSON payload>\\n

A torn or corrupt last line is ignored on replay. The live process holds an
exclusive ``flock`` on its journal; a journal whose lock can be taken belongs
to a process that is gone, and is folded into a KILLED run by ``recover``.
Journals live under the *common* git directory, so worktrees share them.
"""

from __future__ import annotations

import fcntl
import json
import os
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_dumps = json.JSONEncoder(ensure_ascii=True, separators=(",", ":")).encode


def journal_dir(common_dir: str) -> Path:
    """Where journals live: <common git dir>/labbook/journal."""
    return Path(common_dir, "labbook", "journal")


class Journal:
    """An open, locked, append-only journal of one live run."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._fd)
            raise
        self.unsynced = False

    def append(self, event: dict[str, Any]) -> None:
        """Write one event; it is in the kernel (safe from a process kill) on return."""
        payload = _dumps(event).encode("ascii")
        os.write(self._fd, b"%d %08x %s\n" % (len(payload), zlib.crc32(payload), payload))
        self.unsynced = True

    def sync(self) -> None:
        """Flush the journal to disk (survives a power cut)."""
        if self.unsynced:
            os.fsync(self._fd)
            self.unsynced = False

    def close(self, remove: bool) -> None:
        """Release the journal; ``remove`` once everything in it is committed."""
        if self._fd < 0:
            return
        if remove:
            self.path.unlink(missing_ok=True)
        os.close(self._fd)
        self._fd = -1


def read_events(path: Path) -> list[dict[str, Any]]:
    """Every intact event of a journal, in order; stops at the first torn or corrupt line."""
    events = []
    with open(path, "rb") as handle:
        for line in handle:
            event = _parse_line(line)
            if event is None:
                break
            events.append(event)
    return events


def _parse_line(line: bytes) -> dict[str, Any] | None:
    if not line.endswith(b"\n"):
        return None
    try:
        length_text, crc_text, payload = line[:-1].split(b" ", 2)
        if len(payload) != int(length_text) or zlib.crc32(payload) != int(crc_text, 16):
            return None
        event = json.loads(payload)
    except ValueError:
        return None
    return event if isinstance(event, dict) else None


class Orphan:
    """A journal whose process is gone, locked by us while it is folded."""

    def __init__(self, path: Path, fd: int):
        self.path = path
        self.run_id = path.stem
        self._fd = fd

    def events(self) -> list[dict[str, Any]]:
        return read_events(self.path)

    def release(self, remove: bool) -> None:
        """Drop our lock; ``remove`` the journal once its content is committed."""
        if remove:
            self.path.unlink(missing_ok=True)
        os.close(self._fd)


def orphans(folder: Path) -> Iterator[Orphan]:
    """Journals no live process holds (their writer died), each locked while yielded."""
    try:
        names = sorted(os.listdir(folder))
    except FileNotFoundError:
        return
    for name in names:
        if not name.endswith(".log"):
            continue
        path = folder / name
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        if not path.exists():  # folded and removed by another process meanwhile
            os.close(fd)
            continue
        yield Orphan(path, fd)


def hold(folder: Path, run_id: str) -> int:
    """Mark a detached run as live (``labbook run`` waiting for its command): an flock on
    ``<id>.hold``, released by :func:`release_hold`. Never folded by ``recover``."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{run_id}.hold"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return fd


def release_hold(folder: Path, run_id: str, fd: int) -> None:
    (folder / f"{run_id}.hold").unlink(missing_ok=True)
    os.close(fd)


def is_live(folder: Path, run_id: str) -> bool:
    """True when some process holds the run's journal or hold lock (the run is live)."""
    for suffix in (".log", ".hold"):
        try:
            fd = os.open(folder / f"{run_id}{suffix}", os.O_RDONLY)
        except FileNotFoundError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)
    return False
