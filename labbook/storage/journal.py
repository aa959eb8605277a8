"""The per-run write-ahead journal: the truth about a live run until it is committed.

Each log call appends one record before it returns, so a process killed by
SIGKILL or the OOM killer loses nothing it logged (the bytes are in the
kernel); the journal is fsynced at least once a second and at every commit, so
a power cut loses at most the last second. A record is one line::

    <payload length> <crc32 of payload, 8 hex digits> <JSON payload>\\n

A record is appended whole or not at all: when the disk takes only part of it
(full, quota), the part is cut off again and StorageError names the value, so
the journal never has a torn record in its middle, and what is logged once
space is back replays. A torn or corrupt last line (a process killed mid-write)
is left out on replay, and :func:`read_journal` says what was left out
(``labbook recover`` prints it as a warning). The live process holds an
exclusive ``flock`` on its journal; a journal whose lock can be taken belongs
to a process that is gone, and is folded into a KILLED run by ``recover``.
Journals live under the *common* git directory, so worktrees share them.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .diskio import fsync_dir, storage_error, write_all

_dumps = json.JSONEncoder(ensure_ascii=True, separators=(",", ":")).encode


def journal_dir(common_dir: str) -> Path:
    """Where journals live: <common git dir>/labbook/journal."""
    return Path(common_dir, "labbook", "journal")


class Journal:
    """An open, locked, append-only journal of one live run."""

    def __init__(self, path: Path):
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        except OSError as exc:
            raise storage_error(exc, f"could not create the journal of run {path.stem[:8]}") from exc
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._fd)
            raise
        self.path = path
        self._end = os.fstat(self._fd).st_size  # just past the last whole record
        self._torn = False  # bytes of a failed append may still follow self._end
        self.unsynced = True  # the new file's name is not on disk yet either
        self._dir_synced = False

    def append(self, event: dict[str, Any]) -> None:
        """Write one event whole, or raise StorageError and leave the journal as it was.

        On return the event is in the kernel (safe from a process kill). A short write
        (a disk that filled up mid-record) is cut off again, so the journal stays a run
        of whole records and every event appended once space is back is read on replay.
        """
        payload = _dumps(event).encode("ascii")
        line = b"%d %08x %s\n" % (len(payload), zlib.crc32(payload), payload)
        try:
            if self._torn:
                os.ftruncate(self._fd, self._end)
                self._torn = False
            write_all(self._fd, line)
        except OSError as exc:
            self._cut_back()
            raise storage_error(exc, f"could not journal {describe(event)} of run "
                                     f"{self.path.stem[:8]} in {self.path}") from exc
        self._end += len(line)
        self.unsynced = True

    def _cut_back(self) -> None:
        """Remove the bytes of a failed append (retried before the next append if this fails)."""
        self._torn = True
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, self._end)
            self._torn = False

    def sync(self) -> None:
        """Flush the journal to disk (survives a power cut); StorageError if the disk refuses."""
        if self.unsynced:
            try:
                os.fsync(self._fd)
                if not self._dir_synced:  # the journal's own name, once
                    fsync_dir(self.path.parent)
                    self._dir_synced = True
            except OSError as exc:
                raise storage_error(exc, f"could not flush the journal {self.path} to disk") from exc
            self.unsynced = False

    def close(self, remove: bool) -> None:
        """Release the journal; ``remove`` once everything in it is committed."""
        if self._fd < 0:
            return
        if remove:
            self.path.unlink(missing_ok=True)
        os.close(self._fd)
        self._fd = -1


def describe(event: dict[str, Any]) -> str:
    """What a journal event records, for an error message (``metric 'loss' step 12``)."""
    kind = event.get("e")
    if kind == "m":
        return f"metric {event.get('k')!r} step {event.get('s')}"
    if kind == "ms":
        rows = event.get("d") or [["?", None, "?"]]
        keys = ", ".join(repr(row[0]) for row in rows[:3]) + (", …" if len(rows) > 3 else "")
        return f"metrics {keys} step {rows[0][2]}"
    named = {"p": "params", "t": "tags"}
    if kind in named:
        return f"{named[kind]} {', '.join(map(repr, list(event.get('d') or {})[:3]))}"
    if kind == "a":
        return f"artifact {(event.get('a') or {}).get('path')!r}"
    return {"start": "the start", "end": "the end", "n": "a note",
            "c": "the conclusion"}.get(str(kind), f"an event {kind!r}")


@dataclass(frozen=True)
class Dropped:
    """What replay left out of a journal: from a torn or corrupt line to the end."""

    offset: int  # where the first left-out byte is
    size: int  # bytes left out
    lines: int  # lines left out (a torn last line counts as one)
    torn: bool  # the left-out line has no newline: a write cut short (always the last line)
    entry: str  # what the first left-out line was, as far as it can be read

    def describe(self) -> str:
        """What was lost, how much, and where (for a warning)."""
        if self.torn:
            what = f"a torn last entry ({self.entry}, cut short)"
        elif self.lines == 1:
            what = f"a corrupt last entry ({self.entry})"
        else:
            what = f"{self.lines} entries, from a corrupt one ({self.entry}) to the end"
        return f"{what}: {self.size} bytes at byte {self.offset}"


@dataclass(frozen=True)
class Replay:
    """The intact events of a journal, in order, and what was left out after them."""

    events: list[dict[str, Any]]
    dropped: Dropped | None


def read_journal(path: Path) -> Replay:
    """Every intact event of a journal, in order; replay stops at the first torn or corrupt
    line, and ``dropped`` says what was left out from there on."""
    events: list[dict[str, Any]] = []
    offset = 0
    with open(path, "rb") as handle:
        data = handle.read()
    while offset < len(data):
        end = data.find(b"\n", offset)
        line = data[offset:] if end < 0 else data[offset:end + 1]
        event = _parse_line(line)
        if event is None:
            rest = data[offset:]
            lines = rest.count(b"\n") + (not rest.endswith(b"\n"))
            return Replay(events, Dropped(offset, len(rest), lines, not line.endswith(b"\n"),
                                          _entry_kind(line)))
        events.append(event)
        offset += len(line)
    return Replay(events, None)


def read_events(path: Path) -> list[dict[str, Any]]:
    """Every intact event of a journal, in order; stops at the first torn or corrupt line."""
    return read_journal(path).events


_KINDS = {"start": "the start of the run", "m": "a metric value", "ms": "metric values",
          "p": "params", "t": "tags", "n": "a note", "c": "a conclusion", "a": "an artifact",
          "end": "the end of the run"}


def _entry_kind(line: bytes) -> str:
    """What a torn or corrupt journal line held, read from its first bytes (never trusted)."""
    kind = re.search(rb'"e":"([a-z]{1,5})"', line)
    what = _KINDS.get(kind.group(1).decode(), "an unknown entry") if kind else "an unreadable entry"
    key = re.search(rb'"k":"([A-Za-z0-9_./ -]{1,80})"', line)
    return f"{what} of {key.group(1).decode()!r}" if key and kind and kind.group(1) == b"m" else what


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

    def replay(self) -> Replay:
        """The intact events and what was left out (see :func:`read_journal`)."""
        return read_journal(self.path)

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
