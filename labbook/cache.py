"""A cache of parsed run records keyed by blob id, kept under the git directory.

A blob id names its content, so an entry is never stale: a record that
changed has a new blob id, and a teammate's pulled runs are simply ids not yet
seen. The cache also keeps, for each fan-out tree id (``runs/3f``), the runs
it holds, so listing the branch re-reads only the fan-out folders that
changed. It is stored with ``marshal`` (plain values only, nothing executable)
and rewritten atomically; a cache that cannot be read is rebuilt.
"""

from __future__ import annotations

import marshal
import os
from pathlib import Path
from typing import Any

CACHE_VERSION = 1


class RecordCache:
    """Parsed records by blob id and run listings by fan-out tree id."""

    def __init__(self, folder: Path):
        self.path = folder / f"records-v{CACHE_VERSION}.marshal"
        self.records: dict[str, dict[str, Any]] = {}
        self.fanouts: dict[str, list[tuple[str, str, str]]] = {}
        self._loaded_mtime: float | None = None
        self.dirty = False

    def load(self) -> None:
        """Read the cache from disk if it changed since the last load (errors: start empty)."""
        try:
            mtime = self.path.stat().st_mtime
        except OSError:
            return
        if mtime == self._loaded_mtime:
            return
        try:
            with open(self.path, "rb") as handle:
                data = marshal.load(handle)
            if data.get("version") != CACHE_VERSION:
                return
            self.records = data["records"]
            self.fanouts = data["fanouts"]
            self._loaded_mtime = mtime
        except (OSError, EOFError, ValueError, TypeError, KeyError, AttributeError):
            self.records, self.fanouts = {}, {}

    def save(self, live_records: set[str], live_fanouts: set[str]) -> None:
        """Keep only what the current tip uses and write atomically, if anything changed."""
        if not self.dirty:
            return
        self.records = {k: v for k, v in self.records.items() if k in live_records}
        self.fanouts = {k: v for k, v in self.fanouts.items() if k in live_fanouts}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            with open(tmp, "wb") as handle:
                marshal.dump({"version": CACHE_VERSION, "records": self.records,
                              "fanouts": self.fanouts}, handle)
            os.replace(tmp, self.path)
            self._loaded_mtime = self.path.stat().st_mtime
        except OSError:
            tmp.unlink(missing_ok=True)  # a cache that cannot be written is only slower
        self.dirty = False
