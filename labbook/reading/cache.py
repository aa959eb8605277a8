"""Caches of what was read from the branch, kept under the git directory.

Everything is keyed by git object ids, which name their content, so an entry
is never stale: a record that changed has a new blob id, and a teammate's
pulled runs are simply ids not yet seen. Three things are kept:

* for each fan-out tree id (``runs/3f``), the runs it holds, so listing the
  branch re-reads only the fan-out folders that changed;
* the rows of the runs table, column by column, with the blob id of each row
  (what ``search_runs`` needs, loadable in milliseconds);
* the parsed records by blob id (loaded only by readers that want every field).

Files are written with ``marshal`` (plain values only, nothing executable) and
replaced atomically; a file that cannot be read is rebuilt.
"""

from __future__ import annotations

import contextlib
import marshal
import os
from pathlib import Path
from typing import Any

CACHE_VERSION = 4


class _File:
    """One marshal file, reloaded only when it changed on disk."""

    def __init__(self, path: Path, empty: dict[str, Any]):
        self.path = path
        self.empty = empty
        self.data: dict[str, Any] = _fresh(empty)
        self._stamp: tuple[float, int] | None = None
        self.dirty = False

    def load(self) -> dict[str, Any]:
        try:
            info = self.path.stat()
        except OSError:
            return self.data
        stamp = (info.st_mtime, info.st_size)
        if stamp != self._stamp:
            try:
                data = marshal.loads(self.path.read_bytes())
                if not isinstance(data, dict) or data.get("version") != CACHE_VERSION:
                    raise ValueError("old cache")
                self.data = data
            except (OSError, EOFError, ValueError, TypeError):
                self.data = _fresh(self.empty)
            self._stamp = stamp
        return self.data

    def save(self) -> None:
        if not self.dirty:
            return
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_bytes(marshal.dumps(self.data))
            os.replace(tmp, self.path)
            info = self.path.stat()
            self._stamp = (info.st_mtime, info.st_size)
        except OSError:  # a read-only repository, a full disk: reads are only slower
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
        self.dirty = False


def _fresh(empty: dict[str, Any]) -> dict[str, Any]:
    return {"version": CACHE_VERSION, **{k: type(v)() for k, v in empty.items()}}


class ListingCache:
    """Fan-out tree id → [(run id, run.yaml blob id, metrics.tsv blob id or "")]."""

    def __init__(self, folder: Path):
        self._file = _File(folder / "listing.marshal", {"fanouts": {}})

    def get(self) -> dict[str, list[tuple[str, str, str]]]:
        return self._file.load()["fanouts"]

    def update(self, found: dict[str, list[tuple[str, str, str]]], live: set[str]) -> None:
        fanouts = self.get()
        fanouts.update(found)
        for oid in [k for k in fanouts if k not in live]:
            del fanouts[oid]
        self._file.dirty = True
        self._file.save()


class RowCache:
    """The runs table, column by column, each row tagged with its run.yaml blob id."""

    def __init__(self, folder: Path):
        self._file = _File(folder / "rows.marshal", {"blobs": [], "columns": {}})

    def built_from(self, runs_tree: str) -> dict[str, list[Any]] | None:
        """The columns, if they were last made from the ``runs/`` tree ``runs_tree``."""
        data = self._file.load()
        return data["columns"] if data.get("runs_tree") == runs_tree else None

    def rows_for(self, blobs: list[str], parse: Any, runs_tree: str) -> dict[str, list[Any]]:
        """Columns with one row for each of ``blobs`` that parses, in no particular order
        (readers sort). ``parse(missing)`` yields, for blobs not cached yet, parts of rows
        as ``(blob ids, columns, skipped)``, each column as long as its part's blob ids, and
        ``skipped`` the (blob id, path, reason) of each record left out (kept: see :meth:`skipped`).
        ``runs_tree`` is the id of the ``runs/`` tree listing those blobs.

        A new run appends a row and a changed record replaces one: nothing is reordered,
        so a read after one new run costs one parse and one append per column.
        """
        data = self._file.load()
        cached: list[str] = data["blobs"]
        bad: dict[str, tuple[str, str]] = data.setdefault("bad", {})
        wanted = set(blobs)
        have = set(cached)
        if have <= wanted and wanted <= have | set(bad):
            if data.get("runs_tree") != runs_tree:
                data["runs_tree"] = runs_tree
                self._file.dirty = True
                self._file.save()
            return data["columns"]
        columns: dict[str, list[Any]] = data["columns"]
        if not have <= wanted:  # records no longer on the tip (changed or gone)
            keep = [i for i, blob in enumerate(cached) if blob in wanted]
            cached = [cached[i] for i in keep]
            columns = {name: [values[i] for i in keep] for name, values in columns.items()}
        known = set(cached) | set(bad)
        missing = list(dict.fromkeys(b for b in blobs if b not in known))
        for part_blobs, part_columns, part_skipped in parse(missing) if missing else ():
            for blob, path, reason in part_skipped:
                bad[blob] = (path, reason)
            base, count = len(cached), len(part_blobs)
            for name, values in part_columns.items():
                column = columns.get(name)
                if column is None:
                    columns[name] = [None] * base + values
                else:
                    column += values
            for column in columns.values():
                if len(column) < base + count:  # a column this part has no value in
                    column += [None] * count
            cached += part_blobs
        parsed = set(cached)
        data["blobs"], data["columns"] = cached, columns
        data["bad"] = {b: why for b, why in bad.items() if b in wanted and b not in parsed}
        data["runs_tree"] = runs_tree
        self._file.dirty = True
        self._file.save()
        return columns

    def skipped(self) -> list[tuple[str, str, str]]:
        """(blob id, path, reason) of each record the cached rows leave out."""
        return [(blob, path, reason) for blob, (path, reason) in self._file.load().get("bad", {}).items()]


class RecordCache:
    """Parsed records (plain data) by run.yaml blob id."""

    def __init__(self, folder: Path):
        self._file = _File(folder / "records.marshal", {"records": {}})

    def get(self) -> dict[str, dict[str, Any]]:
        return self._file.load()["records"]

    def update(self, found: dict[str, dict[str, Any]], live: set[str]) -> None:
        records = self.get()
        records.update(found)
        for oid in [k for k in records if k not in live]:
            del records[oid]
        self._file.dirty = True
        self._file.save()
