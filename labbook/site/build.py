"""Build the journal site of a repository's experiments branch into a folder.

``build(repo, out_dir)`` reads every run through the catalog's caches, turns
them into view models (``context``), renders the templates (``render``) and
hands the files to the ``writer``, which skips what did not change. A run whose
record, history, experiment name and relatives are unchanged is not even
rendered again: its key is the same as in the previous build's manifest.
"""

from __future__ import annotations

import base64
import hashlib
import json
import marshal
import os
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import FormatError
from ..format import record
from ..format.yamlio import load as load_yaml
from ..reading.query import catalog_for
from ..runs.repository import Repository
from ..storage.store import Snapshot
from . import context, render
from .writer import Report, Writer

Progress = Callable[[int, int], None]
PREVIEW_BYTES = 8192


@dataclass
class BuildResult:
    """Where the site is and what the build wrote."""

    root: Path
    index: Path
    runs: int
    report: Report


def default_output(repo: Repository) -> Path:
    """``<git dir>/labbook/site``: inside .git, so the site never shows in ``git status``."""
    return Path(repo.git.common_dir, "labbook", "site")


def build(repo: Repository, out_dir: str | os.PathLike[str] | None = None,
          progress: Progress | None = None) -> BuildResult:
    """Build (or bring up to date) the site in ``out_dir``; returns where index.html is."""
    root = Path(out_dir) if out_dir is not None else default_output(repo)
    catalog = catalog_for(repo)
    snapshot = repo.store.snapshot()
    entries = {e.run_id: e for e in catalog.entries(snapshot, warn=False)}  # records() warns
    runs = context.live(catalog.records(snapshot))
    experiments = read_experiments(snapshot)
    names = context.experiment_names(experiments, runs)
    book = context.GoalBook(experiments)
    writer = Writer(root, render.fingerprint())
    env = render.environment()
    copy_static(writer)
    _RunWriter(repo, snapshot, catalog, env, writer, names, entries, book).write_all(runs, progress)
    blobs = {run_id: entry.record_blob for run_id, entry in entries.items()}
    write_journal(env, writer, runs, names, blobs, book)
    write_experiments(env, writer, runs, experiments, names, blobs, book)
    for name in ("compare.html", "search.html"):
        writer.write(name, env.get_template(name).render(active=name))
    handles_key = _key(sorted((r["id"], r["name"], r.get("start_time")) for r in runs))
    if not writer.fresh("data/handles.js", handles_key):
        writer.write("data/handles.js", render.js_assign("LB_HANDLES", None, context.handles(runs)),
                     handles_key)
    search_key = _key(sorted(blobs.get(r["id"], r["id"]) for r in runs), names)
    if not writer.fresh("data/search.js", search_key):
        writer.write("data/search.js", render.js_assign("LB_SEARCH", None, context.search_index(runs, names)),
                     search_key)
    report = writer.finish()
    return BuildResult(root, root / "index.html", len(runs), report)


def read_experiments(snapshot: Snapshot) -> dict[str, dict[str, Any]]:
    """slug → plain experiment data, for every experiment file that parses."""
    found = {}
    for entry in snapshot.list("experiments"):
        if entry.name.endswith(".yaml") and not entry.is_tree:
            slug = entry.name[: -len(".yaml")]
            try:
                found[slug] = record.to_plain(record.experiment_from_yaml(
                    snapshot.store.git.read_blob(entry.oid), slug))
            except FormatError:
                continue
    return found


def copy_static(writer: Writer) -> None:
    folder = render.static_dir()
    for path in sorted(folder.rglob("*")):
        if (path.is_file() and path.suffix in (".css", ".js", ".txt")) or path.name.startswith("LICENSE"):
            writer.write("static/" + path.relative_to(folder).as_posix(), path.read_bytes())


def _key(*parts: Any) -> str:
    return hashlib.sha1(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


class _RunWriter:
    """Writes each run's page, data script and artifacts, skipping runs whose inputs are unchanged."""

    def __init__(self, repo, snapshot, catalog, env, writer, names, entries, book):
        self.repo, self.snapshot, self.catalog, self.env = repo, snapshot, catalog, env
        self.writer, self.names, self.entries, self.book = writer, names, entries, book
        self.packages: dict[str, list[tuple[str, str]]] = {}

    def write_all(self, runs: list[dict[str, Any]], progress: Progress | None) -> None:
        by_id = {r["id"]: r for r in runs}
        children: dict[str, list[dict[str, Any]]] = {}
        for run in runs:
            if run.get("parent") in by_id:
                children.setdefault(run["parent"], []).append(run)
        todo = []
        for run in runs:
            related = {"parent": by_id.get(run.get("parent") or ""), "children": children.get(run["id"], [])}
            key = self.key(run, related)
            outputs = self.outputs(run)
            if not all(self.writer.fresh(path, key) for path in outputs):
                todo.append((run, related, key))
        total = len(todo)
        for start in range(0, total, 500):
            batch = todo[start:start + 500]
            known = [self.entries[r["id"]] for r, _, _ in batch if r["id"] in self.entries]
            histories = self.catalog.history(known)
            for run, related, key in batch:
                self.write_run(run, related, key, histories.get(run["id"], []))
            if progress:
                progress(min(start + 500, total), total)

    def key(self, run: dict[str, Any], related: dict[str, Any]) -> str:
        entry = self.entries.get(run["id"])
        parent = related["parent"]
        kids = [(c["id"], c["name"], c.get("status"), (c.get("conclusion") or {}).get("verdict"))
                for c in related["children"]]
        return _key(entry.record_blob if entry else run, entry.history_blob if entry else "",
                    self.names.get(run["experiment"]), parent and (parent["id"], parent["name"]), kids,
                    self.book.fingerprint(run["experiment"]))

    def outputs(self, run: dict[str, Any]) -> list[str]:
        paths = [context.run_page(run["id"]), context.run_script(run["id"])]
        for art in run.get("artifacts") or []:
            if art.get("location") == "store" and (self.repo.artifact_store.remote or
                                                   not self.repo.artifact_store.has(str(art.get("sha256")))):
                continue
            kind = context.artifact_kind(art["path"], art.get("size") or 0)
            paths.append(context.artifact_target(run["id"], art["path"], kind))
        return paths

    def write_run(self, run: dict[str, Any], related: dict[str, Any], key: str,
                  history: list[tuple[str, int, int, float]]) -> None:
        extras = {"diff": self.read_text((run.get("code") or {}).get("diff")),
                  "packages": self.read_packages((run.get("environment") or {}).get("packages")),
                  "artifacts": [self.write_artifact(run["id"], a, key) for a in run.get("artifacts") or []]}
        view = context.run_view(run, self.names, related, history, extras, self.book)
        self.writer.write(context.run_page(run["id"]),
                          self.env.get_template("run.html").render(run=view, active=""), key)
        data = context.run_data(run, self.names, history, self.book)
        self.writer.write(context.run_script(run["id"]), render.js_assign("LB_RUNS", run["id"], data), key)

    def read_text(self, path: str | None) -> str | None:
        if not path or not isinstance(path, str):
            return None
        data = self.snapshot.read(path)
        return None if data is None else data[:2_000_000].decode("utf-8", errors="replace")

    def read_packages(self, path: str | None) -> list[tuple[str, str]]:
        if not path or not isinstance(path, str):
            return []
        if path not in self.packages:
            data = self.snapshot.read(path)
            try:
                packages = (load_yaml(data, path) or {}).get("packages") or {} if data else {}
            except (FormatError, AttributeError):
                packages = {}
            self.packages[path] = [(str(k), str(v)) for k, v in sorted(packages.items())] \
                if isinstance(packages, dict) else []
        return self.packages[path]

    def artifact_bytes(self, run_id: str, art: dict[str, Any]) -> bytes | None:
        if art.get("location") == "store":
            local = self.repo.artifact_store.location_of(str(art.get("sha256")))
            return local.read_bytes() if local.is_file() else None
        return self.snapshot.read(record.artifact_branch_path(run_id, art["path"]))

    def write_artifact(self, run_id: str, art: dict[str, Any], key: str) -> dict[str, Any]:
        path, size = str(art["path"]), art.get("size") or 0
        kind = context.artifact_kind(path, size)
        target = context.artifact_target(run_id, path, kind)
        view = {"path": path, "size": size, "sha256": art.get("sha256") or "", "kind": kind,
                "location": art.get("location"), "href": None, "preview": None, "data_uri": None}
        if art.get("location") == "store" and self.repo.artifact_store.remote:
            view["kind"] = "remote"  # never downloaded into the site; `labbook get` fetches and checks it
            view["fetch"] = f"labbook get {run_id[:8]} {shlex.quote(path)}"
            return view
        data = self.artifact_bytes(run_id, art)
        if data is None:
            view["kind"] = "missing"
            return view
        self.writer.write(target, data, key)
        view["href"] = target
        if kind == "text":
            view["preview"] = data[:PREVIEW_BYTES].decode("utf-8", errors="replace")
        elif kind == "svg":
            view["data_uri"] = "data:image/svg+xml;base64," + base64.b64encode(data).decode()
        return view


def write_journal(env, writer: Writer, runs: list[dict[str, Any]], names: dict[str, str],
                  blobs: dict[str, str], book: context.GoalBook) -> None:
    """The journal pages; an entry is recomputed only when what it shows may have changed."""
    template = env.get_template("journal.html")
    before, best = context.previous_runs(runs), context.best_before(runs, book)
    cache = _EntryCache(writer.root / ".labbook-journal-entries.marshal")
    entries, keys = [], {}
    for run in runs:
        prev = before[run["id"]]
        key = _key(blobs.get(run["id"], run), prev and blobs.get(prev["id"], prev), best[run["id"]],
                   names.get(run["experiment"]), book.fingerprint(run["experiment"]))
        entry = cache.get(key)
        if entry is None:
            entry = cache.put(key, context.journal_entry(run, prev, best[run["id"]], names, book))
        keys[id(entry)] = key
        entries.append(entry)
    cache.save()
    for page in context.journal_pages(entries):
        key = _key([keys[id(e)] for e in page["entries"]], page["archive"], page["older"], page["newer"])
        if not writer.fresh(page["path"], key):
            writer.write(page["path"], template.render(page=page, active="index.html"), key)


class _EntryCache:
    """Journal entries by the key of their inputs, kept beside the site between builds."""

    def __init__(self, path: Path):
        self.path = path
        try:
            self.old = marshal.loads(path.read_bytes())
            assert isinstance(self.old, dict)
        except (OSError, EOFError, ValueError, TypeError, AssertionError):
            self.old = {}
        self.new: dict[str, Any] = {}

    def get(self, key: str) -> dict[str, Any] | None:
        found = self.new.get(key) or self.old.get(key)
        if found is not None:
            self.new[key] = found
        return found

    def put(self, key: str, entry: dict[str, Any]) -> dict[str, Any]:
        self.new[key] = entry
        return entry

    def save(self) -> None:
        if self.new.keys() != self.old.keys():
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                tmp = self.path.with_name(self.path.name + ".tmp")
                tmp.write_bytes(marshal.dumps(self.new))
                os.replace(tmp, self.path)
            except (OSError, ValueError):
                pass  # without the cache the next build only recomputes more


def write_experiments(env, writer: Writer, runs: list[dict[str, Any]],
                      experiments: dict[str, dict[str, Any]], names: dict[str, str],
                      blobs: dict[str, str], book: context.GoalBook) -> None:
    grouped = context.runs_by_experiment(runs)
    views = []
    for slug in sorted(set(experiments) | set(grouped), key=lambda s: names.get(s, s).lower()):
        mine = grouped.get(slug, [])
        view = context.experiment_view(slug, experiments.get(slug, {"name": names.get(slug, slug)}), mine)
        views.append(view)
        writer.write(view["page"], env.get_template("experiment.html").render(exp=view, active=""))
        table_key = _key([blobs.get(r["id"], r["id"]) for r in mine], names, book.fingerprint(slug))
        if not writer.fresh(view["data"], table_key):
            writer.write(view["data"], render.js_assign("LB_EXP", None, context.experiment_table(mine, book)),
                         table_key)
    writer.write("experiments.html", env.get_template("experiments.html").render(
        experiments=views, active="experiments.html"))
