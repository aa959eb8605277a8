"""The three-way merge of two versions of the branch, path by path and field by field.

Pure functions, no I/O: :func:`plan` decides what to do with every path the two
sides changed since their merge base; :func:`merge_run` and
:func:`merge_experiment` merge the files of one run or one experiment that both
sides changed. docs/sync.md describes the rules for users:

* a path changed on one side only: that side's version (a file under ``runs/``
  removed on the other side is never removed by a merge);
* a run changed on both sides, field by field: notes are a union ordered by
  time; metric histories a union by (key, step, timestamp) with the summaries
  recomputed; a terminal status beats RUNNING (both terminal: the later
  ``end_time``); params, tags and other fields changed differently on both sides
  keep the local value and put the other side's in the record's ``conflicts``
  list; the later conclusion wins (the other goes to ``conflicts``); artifacts
  are a union by path;
* an experiment changed on both sides: tags merged key by key and declared metric goals
  field by field,
  the local name and description, the
  earlier ``created`` (the other description is quoted in the merge message);
* any other file changed on both sides: the local version (the message names
  the other blob).

Git's content merge never sees a record: it could apply one run's edit to another.
"""

from __future__ import annotations

import copy
import heapq
import json
import re
from dataclasses import dataclass, field
from typing import Any

from . import record
from .record import Conflict, MetricSummary, Note, RunRecord

Row = tuple[str, int, int, float]
_RUN_FILE = re.compile(r"runs/[^/]+/([^/]+)/(run\.yaml|metrics\.tsv)")
_RUN_FOLDER = re.compile(r"runs/[^/]+/[^/]+(?=/)")
FOLDER_MODE = "40000"
_EXPERIMENT_FILE = re.compile(r"experiments/([^/]+)\.yaml")
_MISSING = object()


# -- which paths need what -------------------------------------------------------------
@dataclass(frozen=True)
class PathChange:
    """How one side changed one path since the merge base (from ``git diff-tree --raw``)."""

    old: str | None  # the blob in the base; None when the side added the path
    new: str | None  # the blob on this side; None when the side removed the path
    mode: str | None = None  # the file mode on this side


@dataclass
class Plan:
    """What a merge does, before any record is read."""

    take: dict[str, PathChange] = field(default_factory=dict)  # set these paths to theirs
    runs: set[str] = field(default_factory=set)  # run ids whose record or history both changed
    experiments: set[str] = field(default_factory=set)  # slugs of experiments both changed
    notes: list[str] = field(default_factory=list)  # what the merge message should say
    new_runs: int = 0  # runs the other side added


def plan(ours: dict[str, PathChange], theirs: dict[str, PathChange],
         folders: dict[str, str] | None = None) -> Plan:
    """Decide, path by path, how to merge ``theirs`` into ``ours`` (both against one base).

    ``folders`` (path → tree id on the other side) lets a run folder that only the other
    side changed, removing nothing, be taken as one tree instead of file by file.
    """
    out = Plan()
    for path, change in theirs.items():
        mine = ours.get(path)
        if mine is None and change.old is None and change.new is not None \
                and _RUN_FILE.fullmatch(path) and path.endswith("/run.yaml"):
            out.new_runs += 1
        if mine is None:
            if change.new is None and path.startswith("runs/"):
                out.notes.append(f"kept {path}: the other side removed it; a merge never removes "
                                 "run files")
            else:
                out.take[path] = change
        elif (mine.new, mine.mode) != (change.new, change.mode):
            _both_changed(path, mine, change, out)
    if folders:
        _take_whole_folders(out, ours, theirs, folders)
    return out


def _take_whole_folders(out: Plan, ours: dict[str, PathChange], theirs: dict[str, PathChange],
                        folders: dict[str, str]) -> None:
    blocked = {m[0] for path in ours if (m := _RUN_FOLDER.match(path))}
    taken: dict[str, list[str]] = {}
    for path, change in theirs.items():
        if (found := _RUN_FOLDER.match(path)) is None:
            continue
        if change.new is None or path not in out.take:
            blocked.add(found[0])
        else:
            taken.setdefault(found[0], []).append(path)
    for folder, paths in taken.items():
        if folder not in blocked and folder in folders:
            for path in paths:
                del out.take[path]
            out.take[folder] = PathChange(None, folders[folder], FOLDER_MODE)


def _both_changed(path: str, mine: PathChange, change: PathChange, out: Plan) -> None:
    if mine.new is None:
        out.take[path] = change
        out.notes.append(f"kept {path}: changed on the other side, removed here")
    elif change.new is None:
        out.notes.append(f"kept {path}: changed here, removed on the other side")
    elif (found := _RUN_FILE.fullmatch(path)) and path.startswith(record.run_dir(found[1]) + "/"):
        out.runs.add(found[1])
    elif found := _EXPERIMENT_FILE.fullmatch(path):
        out.experiments.add(found[1])
    else:
        out.notes.append(f"kept the local {path}; the other side's is blob {change.new}")


# -- runs ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class RunFiles:
    """One side's run.yaml and metrics.tsv of a run (None when the side has no such file)."""

    record: bytes | None = None
    history: bytes | None = None


def merge_run(run_id: str, base: RunFiles, ours: RunFiles, theirs: RunFiles,
              source: str | None = None) -> tuple[RunFiles, str]:
    """Merge one run changed on both sides; returns its files and a line for the message.

    ``source`` (the other side's commit) is written into each conflict entry.
    """
    rpath, hpath = record.run_path(run_id), record.history_path(run_id)
    recs = [record.run_from_yaml(f.record, rpath) if f.record is not None else None
            for f in (base, ours, theirs)]
    rows = [record.history_from_tsv(f.history, hpath) if f.history is not None else None
            for f in (base, ours, theirs)]
    said: list[str] = []
    history = None
    if rows[1] is not None or rows[2] is not None:
        history = merge_history(rows[1] or [], rows[2] or [])
        if rows[1] is not None and rows[2] is not None and history != rows[1] and history != rows[2]:
            said.append(f"metric values {len(rows[1])} + {len(rows[2])} → {len(history)}")
    b, o, t = recs
    if o is not None and t is not None:
        merged = merge_records(b, o, t, source, said)
    else:
        merged = copy.deepcopy(o or t)
    if merged is not None and history is not None:
        _recompute_summaries(merged, history)
    files = RunFiles(record.run_to_yaml(merged) if merged is not None else None,
                     record.history_to_tsv(history) if history is not None else None)
    shown = merged or o or t
    name = f"run {shown.name} ({run_id[:8]})" if shown is not None else f"run {run_id[:8]}"
    return files, f"{name}: {', '.join(said) or 'merged'}"


def merge_history(ours: list[Row], theirs: list[Row]) -> list[Row]:
    """Every logged value of both sides once, by (key, step, timestamp); the local value
    wins a tie. Each side's own order is kept; the two are interleaved by timestamp."""
    seen = {(k, s, t) for k, s, t, _ in ours}
    extra = [row for row in theirs if (row[0], row[1], row[2]) not in seen]
    if not extra:
        return list(ours)
    return list(heapq.merge(ours, _unique(extra), key=lambda row: row[2]))


def _unique(rows: list[Row]) -> list[Row]:
    seen: set[tuple[str, int, int]] = set()
    out = []
    for row in rows:
        if (row[0], row[1], row[2]) not in seen:
            seen.add((row[0], row[1], row[2]))
            out.append(row)
    return out


def _recompute_summaries(rec: RunRecord, history: list[Row]) -> None:
    """Summaries of every key with a history, folded in logging order like a live run does."""
    fresh: dict[str, MetricSummary] = {}
    for key, step, ts, value in history:
        if key in fresh:
            fresh[key].add(value, step, ts)
        else:
            fresh[key] = MetricSummary.first(value, step, ts)
    rec.metrics = {**{k: fresh.get(k, v) for k, v in rec.metrics.items()}, **fresh}


def merge_records(base: RunRecord | None, ours: RunRecord, theirs: RunRecord,
                  source: str | None = None, said: list[str] | None = None) -> RunRecord:
    """Merge two versions of a run record against their common version (None: no base)."""
    said = [] if said is None else said
    out = copy.deepcopy(ours)
    conflicts: list[Conflict] = []

    def clash(where: str, value: Any, why: str = "kept the local value") -> None:
        conflicts.append(Conflict(field=where, value=record.to_plain(value), commit=source))
        said.append(f"{where}: {why}, the other in conflicts")

    for name in ("name", "experiment", "start_time", "parent", "user", "host", "command", "code",
                 "environment", "hypothesis"):
        value, clashed = _three_way(_get(base, name), getattr(ours, name), getattr(theirs, name))
        setattr(out, name, copy.deepcopy(value))
        if clashed:
            clash(name, getattr(theirs, name))
    _merge_status(out, ours, theirs, said)
    out.params = _merge_mapping("params", _get(base, "params", {}), ours.params, theirs.params, clash)
    out.tags = _merge_mapping("tags", _get(base, "tags", {}), ours.tags, theirs.tags, clash)
    out.extra = _merge_mapping("", _get(base, "extra", {}), ours.extra, theirs.extra, clash)
    out.metrics = _merge_metrics(_get(base, "metrics", {}), ours.metrics, theirs.metrics)
    out.notes = merge_notes(ours.notes, theirs.notes)
    if len(out.notes) > max(len(ours.notes), len(theirs.notes)):
        said.append(f"notes {len(ours.notes)} + {len(theirs.notes)} → {len(out.notes)}")
    out.conclusion = _merge_conclusion(_get(base, "conclusion"), ours, theirs, clash, said)
    out.artifacts = _merge_artifacts(_get(base, "artifacts", []), ours.artifacts, theirs.artifacts,
                                     clash)
    out.conflicts = _merge_conflicts(out, ours.conflicts + theirs.conflicts + conflicts)
    return out


def merge_notes(ours: list[Note], theirs: list[Note]) -> list[Note]:
    """Both sides' notes, identical ones once, ordered by time (local first on a tie)."""
    seen = {(n.time, n.author, n.text) for n in ours}
    extra = [n for n in theirs if (n.time, n.author, n.text) not in seen]
    return sorted(copy.deepcopy(ours) + copy.deepcopy(extra), key=lambda n: n.time)


def _merge_status(out: RunRecord, ours: RunRecord, theirs: RunRecord, said: list[str]) -> None:
    """A terminal status beats RUNNING; of two terminal ones the later end_time wins."""
    mine, other = (ours.status, ours.end_time, ours.error), (theirs.status, theirs.end_time,
                                                            theirs.error)
    winner = mine
    if mine != other:
        mine_done, other_done = ours.status in record.TERMINAL_STATUSES, \
            theirs.status in record.TERMINAL_STATUSES
        if other_done and (not mine_done or (theirs.end_time or "") > (ours.end_time or "")):
            winner = other
            said.append(f"status {theirs.status} from the other side "
                        + ("(it ended the run)" if not mine_done else "(it ended later)"))
    out.status, out.end_time, out.error = winner


def _merge_conclusion(base: Any, ours: RunRecord, theirs: RunRecord, clash: Any,
                      said: list[str]) -> Any:
    value, clashed = _three_way(base, ours.conclusion, theirs.conclusion)
    if not clashed:
        if value is theirs.conclusion and value is not None and value != ours.conclusion:
            said.append("conclusion from the other side")
        return copy.deepcopy(value)
    if ours.conclusion is None or theirs.conclusion is None:
        return copy.deepcopy(ours.conclusion or theirs.conclusion)
    theirs_later = theirs.conclusion.time > ours.conclusion.time
    later, earlier = (theirs.conclusion, ours.conclusion) if theirs_later \
        else (ours.conclusion, theirs.conclusion)
    clash("conclusion", earlier, "kept the later one" + (" (the other side's)" if theirs_later else ""))
    return copy.deepcopy(later)


def _merge_mapping(prefix: str, base: dict[str, Any], ours: dict[str, Any], theirs: dict[str, Any],
                   clash: Any) -> dict[str, Any]:
    """Key by key: one side changed it → that side; both, differently → local, other in conflicts.
    A key removed on one side and changed on the other is kept."""
    out: dict[str, Any] = {}
    for key in [*ours, *(k for k in theirs if k not in ours), *(k for k in base if
                                                                 k not in ours and k not in theirs)]:
        mine, other = ours.get(key, _MISSING), theirs.get(key, _MISSING)
        value, clashed = _three_way(base.get(key, _MISSING), mine, other)
        if clashed and _MISSING in (mine, other):
            value, clashed = (other if mine is _MISSING else mine), False
        if value is not _MISSING:
            out[key] = copy.deepcopy(value)
        if clashed:
            clash(f"{prefix}.{key}" if prefix else key, other)
    return out


def _merge_metrics(base: dict[str, MetricSummary], ours: dict[str, MetricSummary],
                   theirs: dict[str, MetricSummary]) -> dict[str, MetricSummary]:
    """Summaries of keys with no history on either side: the one logged last wins."""
    out = copy.deepcopy(ours)
    for key, other in theirs.items():
        mine = out.get(key)
        if mine is None or (other != mine and other != base.get(key)
                            and (mine == base.get(key) or other.timestamp > mine.timestamp)):
            out[key] = copy.deepcopy(other)
    return out


def _merge_artifacts(base: list[Any], ours: list[Any], theirs: list[Any], clash: Any) -> list[Any]:
    by_path = _merge_mapping("artifacts", {a.path: a for a in base}, {a.path: a for a in ours},
                             {a.path: a for a in theirs}, clash)
    return list(by_path.values())


def _merge_conflicts(rec: RunRecord, entries: list[Conflict]) -> list[Conflict]:
    """Each set-aside value once, and none that is the value the record now holds."""
    out: list[Conflict] = []
    seen: set[tuple[str, str]] = set()
    for entry in entries:
        key = (entry.field, _canonical(entry.value))
        if key in seen or _canonical(_current(rec, entry.field)) == key[1]:
            continue
        seen.add(key)
        out.append(entry)
    return out


def _current(rec: RunRecord, where: str) -> Any:
    head, _, rest = where.partition(".")
    if head in ("params", "tags") and rest:
        return getattr(rec, head).get(rest, _MISSING)
    if head == "artifacts" and rest:
        return next((a for a in rec.artifacts if a.path == rest), _MISSING)
    if head in {f for f in RunRecord.__dataclass_fields__} and not rest:
        return getattr(rec, head)
    return rec.extra.get(where, _MISSING)


# -- experiments ------------------------------------------------------------------------
def merge_experiment(slug: str, base: bytes | None, ours: bytes, theirs: bytes) -> tuple[bytes, str]:
    """Merge an experiment file changed on both sides: local name and description (unless
    the local one has none), the earlier ``created``; returns the bytes and a message line."""
    b = record.experiment_from_yaml(base, slug) if base is not None else None
    o, t = record.experiment_from_yaml(ours, slug), record.experiment_from_yaml(theirs, slug)
    out = copy.deepcopy(o)
    line = f"experiment {o.name}: {'created' if b is None else 'changed'} on both sides, merged"
    out.name = _three_way(_get(b, "name"), o.name, t.name)[0]
    description, clashed = _three_way(_get(b, "description"), o.description, t.description)
    out.description = description if description is not None else t.description
    if clashed and o.description is not None and t.description is not None:
        line = f"experiment {o.name}: kept the local description; the other was: {t.description!r}"
    out.created = min(x for x in (o.created, t.created) if x) if (o.created or t.created) else ""
    out.tags = _merge_mapping("", _get(b, "tags", {}), o.tags, t.tags, lambda *_: None)
    out.extra = _merge_mapping("", _get(b, "extra", {}), o.extra, t.extra, lambda *_: None)
    out.metrics = _merge_metric_specs(_get(b, "metrics", {}), o.metrics, t.metrics)
    return record.experiment_to_yaml(out), line


def _merge_metric_specs(base: dict[str, record.MetricSpec], ours: dict[str, record.MetricSpec],
                        theirs: dict[str, record.MetricSpec]) -> dict[str, record.MetricSpec]:
    """Declared metric goals, field by field: a field one side declared or changed is kept
    (both changed it differently → the local one)."""
    def plain(specs: dict[str, record.MetricSpec]) -> dict[str, Any]:
        return {key: spec.to_plain() for key, spec in specs.items()}

    merged: dict[str, Any] = {}
    b, o, t = plain(base), plain(ours), plain(theirs)
    for key in [*o, *(k for k in t if k not in o)]:
        merged[key] = _merge_mapping(key, b.get(key, {}), o.get(key, {}), t.get(key, {}), lambda *_: None)
    return record.metric_specs_from_plain(merged)


# -- helpers ----------------------------------------------------------------------------
def _get(obj: Any, name: str, default: Any = _MISSING) -> Any:
    return default if obj is None else getattr(obj, name)


def _canonical(value: Any) -> str:
    if value is _MISSING:
        return "\0missing"
    return json.dumps(record.to_plain(value), sort_keys=True, default=repr)


def _same(a: Any, b: Any) -> bool:
    if a is _MISSING or b is _MISSING:
        return a is b
    return a is b or _canonical(a) == _canonical(b)


def _three_way(base: Any, ours: Any, theirs: Any) -> tuple[Any, bool]:
    """(value, conflicted): equal sides → it; one side as in the base → the other; else the
    local value, conflicted. A missing base (``_MISSING``) matches nothing."""
    if _same(ours, theirs):
        return ours, False
    if _same(ours, base):
        return theirs, False
    if _same(theirs, base):
        return ours, False
    return ours, True
