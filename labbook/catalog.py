"""Every run on the branch, read fast: one listing, batched reads, cached parses.

Listing walks ``runs/`` but re-reads only the fan-out folders whose tree id is
not in the cache; records are parsed only for blob ids not seen before. A
record that does not parse is skipped with one warning naming its path and the
reason, and every other run still loads.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

from . import forked, record, runrows
from .cache import ListingCache, RecordCache, RowCache
from .errors import FormatError
from .repository import Repository
from .store import Snapshot, TreeEntry

_log = logging.getLogger("labbook")
_WALK_FROM = 16  # more unknown fan-out folders than this: let git list runs/ in one walk
_PART = 1000  # records per forked parser, at least
_T = TypeVar("_T")


class RunEntry(NamedTuple):
    """Where one run's files are on the branch."""

    run_id: str
    record_blob: str
    history_blob: str  # "" when the run logged no metric history


def _full_plain(data: bytes, path: str) -> dict[str, Any]:
    """run.yaml as plain data with every field, defaults filled in."""
    return record.run_to_plain(record.run_from_yaml(data, path))


def _warn(skipped: list[tuple[str, str]]) -> None:
    for path, reason in skipped:
        _log.warning("labbook: skipping %s: %s", path, reason)


class Catalog:
    """Reads the runs of a repository's branch through the on-disk caches."""

    def __init__(self, repo: Repository):
        self.repo = repo
        folder = Path(repo.git.common_dir, "labbook", "cache")
        self.listing = ListingCache(folder)
        self.rows_cache = RowCache(folder)
        self.records_cache = RecordCache(folder)

    def entries(self, snapshot: Snapshot) -> list[RunEntry]:
        """Every run folder on the branch at ``snapshot``."""
        known = self.listing.get()
        fanouts = [e for e in snapshot.list("runs") if e.is_tree]
        unknown = [e for e in fanouts if e.oid not in known]
        if unknown:
            if len(unknown) > _WALK_FROM:
                found = self._walk(snapshot, unknown)
            else:
                found = self._read_fanouts(unknown)
            self.listing.update(found, {e.oid for e in fanouts})
            known = self.listing.get()
        return [RunEntry(*item) for e in fanouts for item in known[e.oid]]

    def _read_fanouts(self, fanouts: list[TreeEntry]) -> dict[str, list[tuple[str, str, str]]]:
        """The runs in a few fan-out folders, their trees read in two batches."""
        store = self.repo.store
        fan_trees = store.trees([e.oid for e in fanouts])
        run_dirs = [e for fan in fanouts for e in fan_trees[fan.oid] if e.is_tree]
        run_trees = store.trees([e.oid for e in run_dirs])
        found = {}
        for fan in fanouts:
            listing = []
            for run_dir in (e for e in fan_trees[fan.oid] if e.is_tree):
                files = {e.name: e.oid for e in run_trees[run_dir.oid]}
                if "run.yaml" in files:
                    listing.append((run_dir.name, files["run.yaml"], files.get("metrics.tsv", "")))
            found[fan.oid] = listing
        return found

    def _walk(self, snapshot: Snapshot, fanouts: list[TreeEntry]) -> dict[str, list[tuple[str, str, str]]]:
        """The runs in many fan-out folders, from one recursive listing of ``runs/`` by git."""
        runs_dir = snapshot.entry("runs")
        assert runs_dir is not None  # it has fan-out folders
        wanted = {e.name: e.oid for e in fanouts}
        files: dict[str, dict[str, dict[str, str]]] = {name: {} for name in wanted}
        for path, entry in self.repo.store.files(runs_dir.oid):
            parts = path.split("/")
            if len(parts) == 3 and parts[0] in wanted and parts[2] in ("run.yaml", "metrics.tsv"):
                files[parts[0]].setdefault(parts[1], {})[parts[2]] = entry.oid
        return {wanted[fan]: [(run_id, got["run.yaml"], got.get("metrics.tsv", ""))
                              for run_id, got in runs.items() if "run.yaml" in got]
                for fan, runs in files.items()}

    def _parse(self, entries: Sequence[RunEntry]) -> list[tuple[str, dict[str, Any]]]:
        """(blob id, plain record with every field's default) of each record that parses.

        Many records are parsed in parallel (see ``forked``); each record that does not
        parse is skipped with one warning.
        """
        parsed: list[tuple[str, dict[str, Any]]] = []
        for found, skipped in forked.map_parts(self._records_part, entries, _PART):
            parsed += found
            _warn(skipped)
        return parsed

    def _records_part(self, entries: Sequence[RunEntry]
                      ) -> tuple[list[tuple[str, dict[str, Any]]], list[tuple[str, str]]]:
        """(blob id, full plain record) of the records that parse, and (path, reason) of the others."""
        skipped: list[tuple[str, str]] = []
        found = list(self._read_each(entries, _full_plain, skipped))
        return found, skipped

    def _rows_part(self, entries: Sequence[RunEntry]
                   ) -> tuple[list[str], dict[str, list[Any]], list[tuple[str, str]]]:
        """The rows of the records that parse, as columns with the blob id of each row, and
        (path, reason) of the records that do not."""
        skipped: list[tuple[str, str]] = []
        blobs: list[str] = []
        columns: dict[str, list[Any]] = {}
        get = columns.get
        for blob, (names, cells) in self._read_each(entries, runrows.row_of_yaml, skipped):
            count = len(blobs)
            for name, value in zip(names, cells, strict=True):
                values = get(name)
                if values is None:
                    values = columns[name] = [None] * count
                elif len(values) < count:
                    values += [None] * (count - len(values))
                values.append(value)
            blobs.append(blob)
        for values in columns.values():
            values += [None] * (len(blobs) - len(values))
        return blobs, columns, skipped

    def _read_each(self, entries: Sequence[RunEntry], read: Callable[[bytes, str], _T],
                  skipped: list[tuple[str, str]]) -> Iterator[tuple[str, _T]]:
        """(blob id, ``read(data, path)``) of each record that reads; (path, reason) of each
        other one is added to ``skipped``."""
        blobs = self.repo.store.blobs([e.record_blob for e in entries])
        for entry in entries:
            path = record.run_path(entry.run_id)
            data = blobs.pop(entry.record_blob, None)  # each blob freed once parsed
            if data is None:  # a second run folder holding the very same record
                data = self.repo.store.blobs([entry.record_blob])[entry.record_blob]
            try:
                yield entry.record_blob, read(data, path)
            except FormatError as exc:
                skipped.append((path, exc.reason))

    def rows(self, snapshot: Snapshot | None = None) -> dict[str, list[Any]]:
        """The runs table as columns (each a list, one value per run, None where unset)."""
        snapshot = snapshot or self.repo.store.snapshot()
        runs_dir = snapshot.entry("runs")
        runs_tree = runs_dir.oid if runs_dir else ""
        columns = self.rows_cache.built_from(runs_tree)
        if columns is not None:  # runs/ is the very tree the cached rows were made from
            return columns
        entries = self.entries(snapshot)
        by_blob = {e.record_blob: e for e in entries}

        def parse(missing: list[str]) -> Iterator[tuple[list[str], dict[str, list[Any]]]]:
            for blobs, columns, skipped in forked.map_parts(self._rows_part, [by_blob[b] for b in missing],
                                                            _PART):
                _warn(skipped)
                yield blobs, columns

        return self.rows_cache.rows_for([e.record_blob for e in entries], parse, runs_tree)

    def records(self, snapshot: Snapshot | None = None) -> list[dict[str, Any]]:
        """The plain data of every parseable run.yaml (for readers that want every field)."""
        snapshot = snapshot or self.repo.store.snapshot()
        entries = self.entries(snapshot)
        cached = self.records_cache.get()
        missing = [e for e in entries if e.record_blob not in cached]
        if missing:
            self.records_cache.update(dict(self._parse(missing)), {e.record_blob for e in entries})
            cached = self.records_cache.get()
        return [cached[e.record_blob] for e in entries if e.record_blob in cached]

    def history(self, entries: list[RunEntry]) -> dict[str, list[tuple[str, int, int, float]]]:
        """The per-step history of the given runs (read only when asked for)."""
        wanted = [e for e in entries if e.history_blob]
        blobs = self.repo.store.blobs([e.history_blob for e in wanted])
        return {e.run_id: record.history_from_tsv(blobs[e.history_blob], record.history_path(e.run_id))
                for e in wanted}
