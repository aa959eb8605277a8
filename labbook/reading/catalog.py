"""Every run on the branch, read fast: one listing, batched reads, cached parses.

Listing walks ``runs/`` but re-reads only the fan-out folders whose tree id is
not in the cache; records are parsed only for blob ids not seen before.
Everything on the branch is input (a teammate's, a hand edit): a folder under
``runs/`` whose name is not a fan-out or a run id (``..``, ``.git``, ``git~1``…) is
never listed, and a record that does not pass the format's rules is skipped. Each
read warns about each such thing, naming its path, the commit and the reason, and
every other run still loads.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

from ..errors import FormatError
from ..format import record
from ..runs.repository import Repository
from ..storage.store import Snapshot, TreeEntry
from . import forked, rows
from .cache import ListingCache, RecordCache, RowCache

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


Skipped = list[tuple[str, str, str]]  # (blob id or "", path, reason) of what a read left out


def _warn(skipped: Sequence[tuple[str, str, str]], commit: str | None) -> None:
    at = f" (commit {commit[:12]})" if commit else ""
    for _, path, reason in skipped:
        _log.warning("labbook: skipping %s%s: %s", path, at, reason)


class Catalog:
    """Reads the runs of a repository's branch through the on-disk caches."""

    def __init__(self, repo: Repository):
        self.repo = repo
        folder = Path(repo.git.common_dir, "labbook", "cache")
        self.listing = ListingCache(folder)
        self.rows_cache = RowCache(folder)
        self.records_cache = RecordCache(folder)

    def entries(self, snapshot: Snapshot, warn: bool = True) -> list[RunEntry]:
        """Every run folder on the branch at ``snapshot`` (folders with names that are not a
        fan-out or a run id are left out, with a warning when ``warn``)."""
        runs, refused = self._scan(snapshot)
        if warn:
            _warn(refused, snapshot.commit)
        return runs

    def _scan(self, snapshot: Snapshot) -> tuple[list[RunEntry], Skipped]:
        """The run folders at ``snapshot``, and ("", path, reason) of each folder refused."""
        known = self.listing.get()
        refused: Skipped = []
        fanouts = []
        for entry in snapshot.list("runs"):
            problem = record.run_folder_problem(entry.name) if entry.is_tree else None
            if problem is None and entry.is_tree:
                fanouts.append(entry)
            elif problem is not None:
                refused.append(("", f"runs/{entry.name}", problem))
        unknown = [e for e in fanouts if e.oid not in known]
        if unknown:
            if len(unknown) > _WALK_FROM:
                found = self._walk(snapshot, unknown)
            else:
                found = self._read_fanouts(unknown)
            self.listing.update(found, {e.oid for e in fanouts})
            known = self.listing.get()
        runs = []
        for fan in fanouts:
            for item in known[fan.oid]:
                if item[1]:
                    runs.append(RunEntry(*item))
                else:  # a refused folder: (path, "", reason)
                    refused.append(("", item[0], item[2]))
        return runs, refused

    @staticmethod
    def _listed(fan: str, name: str, files: dict[str, TreeEntry]) -> tuple[str, str, str] | None:
        """The listing item of ``runs/<fan>/<name>``: (run id, run.yaml blob, metrics.tsv blob),
        (path, "", reason) when the folder is refused, or None when it holds no run.yaml."""
        problem = record.run_folder_problem(fan, name)
        if problem is not None:
            return f"runs/{fan}/{name}", "", problem
        if "run.yaml" not in files:
            return None
        for file in ("run.yaml", "metrics.tsv"):  # a submodule, a symlink: nothing to follow
            problem = record.file_mode_problem(files[file].mode) if file in files else None
            if problem is not None:
                return f"runs/{fan}/{name}/{file}", "", problem
        history = files.get("metrics.tsv")
        return name, files["run.yaml"].oid, history.oid if history is not None else ""

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
                files = {e.name: e for e in run_trees[run_dir.oid] if not e.is_tree}
                item = self._listed(fan.name, run_dir.name, files)
                if item is not None:
                    listing.append(item)
            found[fan.oid] = listing
        return found

    def _walk(self, snapshot: Snapshot, fanouts: list[TreeEntry]) -> dict[str, list[tuple[str, str, str]]]:
        """The runs in many fan-out folders, from one recursive listing of ``runs/`` by git."""
        runs_dir = snapshot.entry("runs")
        assert runs_dir is not None  # it has fan-out folders
        wanted = {e.name: e.oid for e in fanouts}
        files: dict[str, dict[str, dict[str, TreeEntry]]] = {name: {} for name in wanted}
        for path, entry in self.repo.store.files(runs_dir.oid):
            parts = path.split("/")
            if len(parts) >= 3 and parts[0] in wanted:
                got = files[parts[0]].setdefault(parts[1], {})
                if len(parts) == 3 and parts[2] in ("run.yaml", "metrics.tsv"):
                    got[parts[2]] = entry
        found = {}
        for fan, runs in files.items():
            items = (self._listed(fan, name, got) for name, got in runs.items())
            found[wanted[fan]] = [item for item in items if item is not None]
        return found

    def _parse(self, entries: Sequence[RunEntry], commit: str | None) -> list[tuple[str, dict[str, Any]]]:
        """(blob id, plain record with every field's default) of each record that parses.

        Many records are parsed in parallel (see ``forked``); each record that does not
        parse is skipped with one warning.
        """
        parsed: list[tuple[str, dict[str, Any]]] = []
        for found, skipped in forked.map_parts(self._records_part, entries, _PART):
            parsed += found
            _warn(skipped, commit)
        return parsed

    def _records_part(self, entries: Sequence[RunEntry]
                      ) -> tuple[list[tuple[str, dict[str, Any]]], Skipped]:
        """(blob id, full plain record) of the records that parse, and (blob, path, reason) of
        the others."""
        skipped: Skipped = []
        found = list(self._read_each(entries, _full_plain, skipped))
        return found, skipped

    def _rows_part(self, entries: Sequence[RunEntry]
                   ) -> tuple[list[str], dict[str, list[Any]], Skipped]:
        """The rows of the records that parse, as columns with the blob id of each row, and
        (blob, path, reason) of the records that do not."""
        skipped: Skipped = []
        blobs: list[str] = []
        columns: dict[str, list[Any]] = {}
        get = columns.get
        for blob, (names, cells) in self._read_each(entries, rows.row_of_yaml, skipped):
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
                  skipped: Skipped) -> Iterator[tuple[str, _T]]:
        """(blob id, ``read(data, path)``) of each record that reads; (blob, path, reason) of
        each other one is added to ``skipped``."""
        blobs = self.repo.store.blobs([e.record_blob for e in entries])
        for entry in entries:
            path = record.run_path(entry.run_id)
            data = blobs.pop(entry.record_blob, None)  # each blob freed once parsed
            if data is None:  # a second run folder holding the very same record
                data = self.repo.store.blobs([entry.record_blob])[entry.record_blob]
            try:
                yield entry.record_blob, read(data, path)
            except FormatError as exc:
                skipped.append((entry.record_blob, path, exc.reason))

    def rows(self, snapshot: Snapshot | None = None) -> dict[str, list[Any]]:
        """The runs table as columns (each a list, one value per run, None where unset); each
        record left out is warned about, on every call."""
        snapshot = snapshot or self.repo.store.snapshot()
        runs_dir = snapshot.entry("runs")
        runs_tree = runs_dir.oid if runs_dir else ""
        columns = self.rows_cache.built_from(runs_tree)
        if columns is not None:  # runs/ is the very tree the cached rows were made from
            self.entries(snapshot)  # warns about refused folders (a cached listing: no reads)
            _warn(self.rows_cache.skipped(), snapshot.commit)
            return columns
        entries = self.entries(snapshot)
        by_blob = {e.record_blob: e for e in entries}

        def parse(missing: list[str]) -> Iterator[tuple[list[str], dict[str, list[Any]], Skipped]]:
            yield from forked.map_parts(self._rows_part, [by_blob[b] for b in missing], _PART)

        columns = self.rows_cache.rows_for([e.record_blob for e in entries], parse, runs_tree)
        _warn(self.rows_cache.skipped(), snapshot.commit)
        return columns

    def records(self, snapshot: Snapshot | None = None) -> list[dict[str, Any]]:
        """The plain data of every parseable run.yaml (for readers that want every field)."""
        snapshot = snapshot or self.repo.store.snapshot()
        entries = self.entries(snapshot)
        cached = self.records_cache.get()
        missing = [e for e in entries if e.record_blob not in cached]
        if missing:
            self.records_cache.update(dict(self._parse(missing, snapshot.commit)),
                                      {e.record_blob for e in entries})
            cached = self.records_cache.get()
        return [cached[e.record_blob] for e in entries if e.record_blob in cached]

    def history(self, entries: list[RunEntry]) -> dict[str, list[tuple[str, int, int, float]]]:
        """The per-step history of the given runs (read only when asked for)."""
        wanted = [e for e in entries if e.history_blob]
        blobs = self.repo.store.blobs([e.history_blob for e in wanted])
        found: dict[str, list[tuple[str, int, int, float]]] = {}
        for entry in wanted:
            try:
                found[entry.run_id] = record.history_from_tsv(blobs[entry.history_blob],
                                                              record.history_path(entry.run_id))
            except FormatError as exc:  # the run reads; its history is left out
                _warn([("", exc.path, exc.reason)], None)
        return found
