"""Every run on the branch, read fast: one listing, batched reads, cached parses.

Listing walks ``runs/`` but re-reads only the fan-out folders whose tree id is
not in the cache; records are parsed (C YAML loader) only for blob ids not seen
before. A record that does not parse is skipped with one warning naming its
path and the reason, and every other run still loads.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import record
from .cache import RecordCache
from .errors import FormatError
from .repository import Repository
from .store import Snapshot

_log = logging.getLogger("labbook")


@dataclass(frozen=True)
class RunEntry:
    """Where one run's files are on the branch."""

    run_id: str
    record_blob: str
    history_blob: str  # "" when the run logged no metric history


class Catalog:
    """Reads all run records of a repository's branch, with the on-disk cache."""

    def __init__(self, repo: Repository):
        self.repo = repo
        self.cache = RecordCache(Path(repo.git.common_dir, "labbook", "cache"))

    def entries(self, snapshot: Snapshot) -> list[RunEntry]:
        """Every run folder on the branch at ``snapshot``."""
        self.cache.load()
        store = self.repo.store
        fanouts = [e for e in snapshot.list("runs") if e.is_tree]
        unknown = [e.oid for e in fanouts if e.oid not in self.cache.fanouts]
        if unknown:
            fan_trees = store.trees(unknown)
            run_dirs = [e for oid in unknown for e in fan_trees[oid] if e.is_tree]
            run_trees = store.trees([e.oid for e in run_dirs])
            for oid in unknown:
                listing = []
                for run_dir in (e for e in fan_trees[oid] if e.is_tree):
                    files = {e.name: e.oid for e in run_trees[run_dir.oid]}
                    if "run.yaml" in files:
                        listing.append((run_dir.name, files["run.yaml"], files.get("metrics.tsv", "")))
                self.cache.fanouts[oid] = listing
            self.cache.dirty = True
        return [RunEntry(*item) for e in fanouts for item in self.cache.fanouts[e.oid]]

    def records(self, snapshot: Snapshot | None = None) -> list[dict[str, Any]]:
        """The plain data of every parseable run.yaml (what run_from_yaml accepts, checked)."""
        snapshot = snapshot or self.repo.store.snapshot()
        entries = self.entries(snapshot)
        cached = self.cache.records
        missing = [e for e in entries if e.record_blob not in cached]
        if missing:
            blobs = self.repo.store.blobs([e.record_blob for e in missing])
            for entry in missing:
                path = record.run_path(entry.run_id)
                try:
                    parsed = record.run_from_yaml(blobs[entry.record_blob], path)
                except FormatError as exc:
                    _log.warning("labbook: skipping %s: %s", path, exc.reason)
                    continue
                cached[entry.record_blob] = record.run_to_plain(parsed)
            self.cache.dirty = True
        self.cache.save({e.record_blob for e in entries},
                        {e.oid for e in snapshot.list("runs")})
        return [cached[e.record_blob] for e in entries if e.record_blob in cached]

    def history(self, entries: list[RunEntry]) -> dict[str, list[tuple[str, int, int, float]]]:
        """The per-step history of the given runs (read only when asked for)."""
        wanted = [e for e in entries if e.history_blob]
        blobs = self.repo.store.blobs([e.history_blob for e in wanted])
        return {e.run_id: record.history_from_tsv(blobs[e.history_blob], record.history_path(e.run_id))
                for e in wanted}
