"""Reading runs back as pandas DataFrames: search_runs, metric histories, experiments.

``search_runs`` builds one row per run from the cached records (see
``catalog``), applies the parsed filter as pandas operations (never
``eval``/``DataFrame.query`` on user text), sorts with missing values last,
and limits.

Comparison rules of the filter: a number compares numerically with numeric
values (a param logged as ``0.9`` matches ``params.alpha = 0.9``); a quoted
string compares with the value's text (``params.alpha = '0.9'`` matches too);
times compare with ISO dates (``start_time > '2026-01-01'``) or milliseconds
since the epoch. A run without the column never matches a comparison, LIKE or
IN (as in SQL); ``IS NULL`` finds it. ``NOT`` negates the whole test.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from ..errors import FormatError, InvalidValue
from ..format import goals, record
from ..runs import lifecycle
from ..runs.repository import Repository
from . import filterlang
from .catalog import Catalog
from .filterlang import BoolOp, Column, Comparison, Not

BASE_COLUMNS = ["run_id", "run_name", "experiment", "status", "start_time", "end_time", "duration",
                "user", "parent_run_id", "code_commit", "code_dirty", "hypothesis", "verdict"]
RUN_VIEWS = ("active", "deleted", "all")
_TIME_COLUMNS = ("start_time", "end_time")
NAN_MARK = "~nan."  # internal columns: ~nan.metrics.x is True where NaN was logged for x
_log = logging.getLogger("labbook")
_INT64 = (-2**63, 2**63 - 1)
_catalogs: weakref.WeakKeyDictionary[Repository, Catalog] = weakref.WeakKeyDictionary()


def catalog_for(repo: Repository) -> Catalog:
    """The repository's catalog (one per repository object, so its cache stays warm)."""
    found = _catalogs.get(repo)
    if found is None:
        found = _catalogs[repo] = Catalog(repo)
    return found


def experiment_names(repo: Repository) -> dict[str, str]:
    """Experiment slug → name for every experiment file on the branch."""
    snapshot = repo.store.snapshot()
    names = {}
    for entry in snapshot.list("experiments"):
        if entry.name.endswith(".yaml") and not entry.is_tree:
            slug = entry.name[: -len(".yaml")]
            try:
                rec = record.experiment_from_yaml(repo.store.blobs([entry.oid])[entry.oid], slug)
            except FormatError as exc:
                _log.warning("labbook: skipping %s (commit %s): %s", exc.path, (snapshot.commit or "")[:12],
                             exc.reason)
                continue
            names[slug] = rec.name
    return names


def metric_specs(repo: Repository, slugs: Iterable[str] | None = None) -> dict[str, record.MetricSpec]:
    """The metrics declared by the experiments ``slugs`` (default: all of them); where two
    experiments declare the same metric, the first in name order wins."""
    snapshot = repo.store.snapshot()
    wanted = None if slugs is None else set(slugs)
    specs: dict[str, record.MetricSpec] = {}
    for entry in sorted(snapshot.list("experiments"), key=lambda e: e.name):
        slug = entry.name[: -len(".yaml")] if entry.name.endswith(".yaml") else None
        if slug is None or (wanted is not None and slug not in wanted):
            continue
        exp = repo.experiment(slug)
        for key, spec in (exp.metrics if exp else {}).items():
            specs.setdefault(key, spec)
    return specs


def metric_goal(repo: Repository, key: str, slugs: Iterable[str] | None = None,
                mode: str | None = None) -> goals.Goal:
    """The goal of ``key`` in those experiments; ``mode`` "max"/"min" overrides it."""
    if mode is not None:
        return goals.Goal(goals.parse_goal(mode), declared=True)
    return goals.goal_of(key, metric_specs(repo, slugs))


def frame_specs(repo: Repository, frame: pd.DataFrame) -> dict[str, record.MetricSpec]:
    """The metrics declared by the experiments that ``frame``'s runs belong to."""
    shown = set(frame["experiment"]) if "experiment" in frame.columns else set()
    return metric_specs(repo, [slug for slug, name in experiment_names(repo).items() if name in shown])


def sort_clauses(repo: Callable[[], Repository], items: Iterable[str],
                 experiments: Iterable[str] | None = None) -> list[str]:
    """``labbook ls --sort`` items as order_by clauses: ``-COL`` descending, ``+COL`` ascending,
    and a bare ``metrics.KEY`` best first by the metric's goal (ascending when it has none).
    ``repo`` is called only when a goal must be looked up."""
    clauses = []
    for item in items:
        if item.startswith("-"):
            clauses.append(f"{item[1:]} DESC")
        elif item.startswith("+") or not item.startswith("metrics."):
            clauses.append(f"{item.lstrip('+')} ASC")
        else:
            where = repo()
            slugs = None if experiments is None else _experiment_slugs(experiments, experiment_names(where))
            goal = goals.goal_of(item[len("metrics."):], metric_specs(where, slugs))
            clauses.append(f"{item} {'DESC' if goal.sort_descending else 'ASC'}")
    return clauses


def record_goals(repo: Repository, records: Iterable[record.RunRecord]) -> dict[str, goals.Goal]:
    """The goal of every metric of ``records``, as their experiments declare (else inferred)."""
    chosen = list(records)
    specs = metric_specs(repo, {rec.experiment for rec in chosen})
    return goals.goals_of({key for rec in chosen for key in rec.metrics}, specs)


def history_means(repo: Repository, records: Iterable[record.RunRecord],
                  wanted: Mapping[str, goals.Goal]) -> dict[tuple[str, str], float]:
    """(run id, key) → the mean of the key's logged values (NaN left out), for the metrics
    whose declared summary is the mean; the histories of other metrics are not read."""
    keys = {key for key, goal in wanted.items() if goal.summary == "mean"}
    out: dict[tuple[str, str], float] = {}
    for rec in records:
        if not keys & set(rec.metrics):
            continue
        sums: dict[str, list[float]] = {}
        for key, _step, _ts, value in lifecycle.load(repo, rec.id).history:
            if key in keys and not np.isnan(value):
                sums.setdefault(key, []).append(value)
        out.update({(rec.id, key): float(np.mean(values)) for key, values in sums.items()})
    return out


def no_goal_error(key: str) -> InvalidValue:
    """The error for asking which run is best by a metric that has no goal."""
    return InvalidValue(f"metric {key!r} has no known goal, so no value is best; declare one "
                        f"(labbook experiment metric EXPERIMENT {key} --goal max) or pass --max or --min")


def runs_frame(repo: Repository, experiments: Iterable[str] | None = None,
               run_view: str = "active") -> pd.DataFrame:
    """Every run of the branch (optionally of some experiments) as a DataFrame, unsorted."""
    if run_view not in RUN_VIEWS:
        raise InvalidValue(f"run_view {run_view!r} is not one of {', '.join(RUN_VIEWS)}")
    names = experiment_names(repo)
    columns = catalog_for(repo).rows()
    count = len(columns.get("run_id", []))
    keep = np.ones(count, dtype=bool)
    if experiments is not None:
        wanted = _experiment_slugs(experiments, names)
        keep &= np.fromiter((slug in wanted for slug in columns["experiment"]), bool, count)
    if run_view != "all":
        deleted = np.fromiter((bool(d) for d in columns.get("deleted", [False] * count)), bool, count)
        keep &= deleted if run_view == "deleted" else ~deleted
    index = np.flatnonzero(keep)
    picked = {name: [values[i] for i in index] for name, values in columns.items()} \
        if len(index) < count else columns
    extra = sorted((k for k in picked if k not in BASE_COLUMNS and k != "deleted"
                    and any(v is not None for v in picked[k])),
                   key=lambda k: (("params.", "metrics.", "tags.").index(k[: k.index(".") + 1]), k))
    frame = pd.DataFrame({c: _column(picked.get(c, [None] * len(index))) for c in BASE_COLUMNS + extra})
    if any(slug != name for slug, name in names.items()):
        frame["experiment"] = [names.get(slug, slug) for slug in frame["experiment"]]
    for column in _TIME_COLUMNS:
        frame[column] = pd.to_datetime(frame[column], utc=True, format="ISO8601")
    frame["duration"] = (frame["end_time"] - frame["start_time"]).dt.total_seconds()
    for column in extra:
        if column.startswith("metrics."):
            frame[column] = frame[column].astype("float64")
            logged_nan = [isinstance(v, float) and v != v for v in picked[column]]
            if any(logged_nan):  # a NaN that was logged is a value, not a missing metric
                frame[NAN_MARK + column] = logged_nan
    return frame


def without_marks(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame without the columns that tell a logged NaN from a missing metric."""
    marks = [c for c in frame.columns if c.startswith(NAN_MARK)]
    return frame.drop(columns=marks) if marks else frame


def with_nullable_metrics(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame as search_runs returns it: each metric column Float64, where a run that did
    not log the metric holds <NA> and a logged NaN stays NaN (the marks are dropped)."""
    out = without_marks(frame)
    for column in [c for c in out.columns if c.startswith("metrics.")]:
        values = out[column].to_numpy(dtype="float64", na_value=np.nan)
        mark = NAN_MARK + column
        logged_nan = frame[mark].to_numpy(dtype=bool) if mark in frame.columns else np.zeros(len(out), bool)
        missing = np.isnan(values) & ~logged_nan
        out[column] = pd.Series(pd.arrays.FloatingArray(values, missing), index=out.index)
    return out


def _present(frame: pd.DataFrame, name: str, values: pd.Series) -> np.ndarray:
    """Rows that have a value in the column: a logged NaN counts, a missing metric does not."""
    present = values.notna().to_numpy()
    mark = NAN_MARK + name
    if mark in frame.columns:
        present = present | frame[mark].to_numpy(dtype=bool)
    return present


def _column(values: list[Any]) -> pd.Series:
    """A column keeping values as logged: one dtype when every value shares a type, pandas'
    nullable one when some runs lack it (ints → Int64, bools → boolean), anything else (ints
    beside floats too, so a 3 stays an int) as objects."""
    kinds = set(map(type, values))
    missing = type(None) in kinds
    kinds.discard(type(None))
    if kinds == {float}:
        return pd.Series(values, dtype="float64")
    if kinds == {int}:
        ints = [v for v in values if v is not None]
        if min(ints) < _INT64[0] or max(ints) > _INT64[1]:
            return pd.Series(values, dtype=object)  # an int beyond 64 bits keeps its exact value
        return pd.Series(values, dtype="Int64" if missing else "int64")
    if kinds == {bool}:
        return pd.Series(values, dtype="boolean")
    return pd.Series(values, dtype=object)


def _experiment_slugs(experiments: Iterable[str], names: dict[str, str]) -> set[str]:
    if isinstance(experiments, str):
        experiments = [experiments]
    by_name = {name: slug for slug, name in names.items()}
    wanted = set()
    for item in experiments:
        slug = by_name.get(item) or (item if item in names else None)
        if slug is None:
            known = ", ".join(sorted(by_name)) or "none yet"
            raise InvalidValue(f"no experiment named {item!r} (experiments: {known})")
        wanted.add(slug)
    return wanted


def search_runs(repo: Repository, experiments: Iterable[str] | None = None,
                filter_string: str | None = None, order_by: Iterable[str] | None = None,
                max_results: int | None = None, run_view: str = "active",
                commit: str | None = None) -> pd.DataFrame:
    """Runs matching a filter, sorted (default: newest first), as a DataFrame."""
    tree = filterlang.parse(filter_string) if filter_string else None
    orders = [filterlang.parse_order_by(item) for item in (order_by or [])]
    frame = runs_frame(repo, experiments, run_view)
    if commit is not None:
        full = repo.git.resolve_commit(commit)
        if full is None:
            raise InvalidValue(f"{commit!r} is not a commit of this repository")
        frame = frame[frame["code_commit"] == full]
    if tree is not None:
        frame = frame[evaluate(tree, frame)]
    frame = with_nullable_metrics(sort_runs(frame, orders))
    if max_results is not None:
        if not isinstance(max_results, int) or max_results < 0:
            raise InvalidValue(f"max_results {max_results!r} is not a whole number ≥ 0")
        frame = frame.head(max_results)
    return frame.reset_index(drop=True)


def sort_runs(frame: pd.DataFrame, orders: list[tuple[Column, bool]],
              text_prefixes: tuple[str, ...] = ()) -> pd.DataFrame:
    """Sort by each (column, ascending), as MLflow does: missing values last whatever the
    direction, a metric's logged NaN after every number and before missing; ties newest
    first (start_time descending), then by run id. A column no run has sorts every run as
    missing, so the next keys (and the newest-first tie-break) still order them. Columns
    named with ``text_prefixes`` compare as text (MLflow's params and tags are strings)."""
    if frame.empty:
        return frame
    keys: dict[str, pd.Series] = {}
    ascending: list[bool] = []
    for i, (column, up) in enumerate(orders):
        name = column.name
        values = frame[name] if name in frame.columns else pd.Series(None, index=frame.index,
                                                                      dtype=object)
        rank = np.where(_present(frame, name, values), 0, 2)
        if name.startswith("metrics."):
            rank = np.where(values.isna().to_numpy() & (rank == 0), 1, rank)
        keys[f"r{i}"] = pd.Series(rank, index=frame.index)
        keys[f"k{i}"] = values.map(lambda v: None if _missing(v) else str(v)) \
            if name.startswith(text_prefixes) else _sortable(values)
        ascending += [True, up]
    if not any(column.name == "start_time" for column, _ in orders):
        keys["start"] = frame["start_time"]
        ascending.append(False)
    keys["tie"] = frame["run_id"]
    ascending.append(True)
    table = pd.DataFrame(keys, index=frame.index)
    order = table.sort_values(by=list(table.columns), ascending=ascending, na_position="last",
                              kind="mergesort").index
    return frame.loc[order]


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value) or value is pd.NaT


def _sortable(values: pd.Series) -> pd.Series:
    """A column pandas can sort: numbers when every value is a number, else text."""
    if values.dtype != object:
        return values
    present = values.dropna()
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in present):
        return pd.to_numeric(values, errors="coerce")
    return values.map(lambda v: None if v is None else str(v))


# -- evaluating a filter --------------------------------------------------------
def evaluate(node: object, frame: pd.DataFrame) -> np.ndarray:
    """The boolean mask of the rows a parsed filter selects."""
    if isinstance(node, BoolOp):
        masks = [evaluate(operand, frame) for operand in node.operands]
        combine = np.logical_and if node.op == "and" else np.logical_or
        result = masks[0]
        for mask in masks[1:]:
            result = combine(result, mask)
        return result
    if isinstance(node, Not):
        return ~evaluate(node.operand, frame)
    assert isinstance(node, Comparison)
    return _compare(node, frame)


def _compare(node: Comparison, frame: pd.DataFrame) -> np.ndarray:
    name = node.column.name
    if name not in frame.columns:
        values = pd.Series([None] * len(frame), index=frame.index, dtype=object)
    else:
        values = frame[name]
    present = _present(frame, name, values)
    if node.op == "null":
        return present if node.negated else ~present
    if node.op in ("like", "ilike"):
        pattern = str(node.value)
        texts = _as_text(values)
        hit = np.array([t is not None and like(pattern, t, node.op == "ilike") for t in texts],
                       dtype=bool)
    elif node.op == "in":
        hit = np.zeros(len(frame), dtype=bool)
        for literal in node.value:  # type: ignore[union-attr]
            hit |= _equal(values, literal)
    elif node.op == "=":
        hit = _equal(values, node.value)
    elif node.op == "!=":
        hit = present & ~_equal(values, node.value)
    else:
        hit = _order(values, node.op, node.value, node.column)
    if node.negated:
        hit = present & ~hit
    return hit & present


def _as_text(values: pd.Series) -> list[str | None]:
    return [None if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)) else _text(v)
            for v in values]


def _text(value: Any) -> str:
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return str(value)


def _numbers(values: pd.Series) -> np.ndarray:
    if values.dtype.kind in "fi":
        return values.to_numpy(dtype="float64", na_value=np.nan)
    if values.dtype.kind == "M":
        return (values.astype("int64") // 1_000_000).to_numpy(dtype="float64")
    out = np.full(len(values), np.nan)
    for i, value in enumerate(values):
        if isinstance(value, int | float) and not isinstance(value, bool):
            out[i] = value
    return out


def _equal(values: pd.Series, literal: Any) -> np.ndarray:
    if values.dtype.kind == "M":
        return _order(values, "=", literal, None)
    truth = _truth(literal)
    if truth is not None:  # true/false, and MLflow's 'True'/'false' for a boolean value
        flags = [v if isinstance(v, bool | np.bool_) else None for v in values]
        if isinstance(literal, bool) or any(f is not None for f in flags):
            return np.array([f is not None and bool(f) == truth for f in flags], dtype=bool) | (
                _equal_text(values, literal) if isinstance(literal, str) else False)
    if isinstance(literal, str):
        return _equal_text(values, literal)
    return _numbers(values) == float(literal)


def _truth(literal: Any) -> bool | None:
    if isinstance(literal, bool):
        return literal
    if isinstance(literal, str) and literal.lower() in ("true", "false"):
        return literal.lower() == "true"
    return None


def _equal_text(values: pd.Series, literal: str) -> np.ndarray:
    texts = _as_text(values)
    return np.array([t == literal for t in texts], dtype=bool)


def _order(values: pd.Series, op: str, literal: Any, column: Column | None) -> np.ndarray:
    if values.dtype.kind == "M":
        moment = _time_literal(literal, column)
        return np.asarray(_apply(op, values, moment), dtype=bool)  # NaT compares False
    if isinstance(literal, str):
        texts = _as_text(values)
        return np.array([t is not None and bool(_apply(op, t, literal)) for t in texts], dtype=bool)
    numbers = _numbers(values)
    with np.errstate(invalid="ignore"):
        return np.asarray(_apply(op, numbers, float(literal)), dtype=bool) & ~np.isnan(numbers)


def _time_literal(literal: Any, column: Column | None) -> pd.Timestamp:
    try:
        if isinstance(literal, str):
            moment = pd.Timestamp(literal)
            return moment.tz_localize("UTC") if moment.tzinfo is None else moment.tz_convert("UTC")
        return pd.Timestamp(int(literal), unit="ms", tz="UTC")
    except (ValueError, TypeError) as exc:
        what = column.name if column else "a time"
        raise InvalidValue(f"{literal!r} is not a time for {what}: use an ISO date such as "
                           "'2026-01-31' or milliseconds since the epoch") from exc


def _apply(op: str, left: Any, right: Any) -> Any:
    if op == "<":
        return left < right
    if op == "<=":
        return left <= right
    if op == ">":
        return left > right
    if op == ">=":
        return left >= right
    if op == "=":
        return left == right
    raise InvalidValue(f"unknown comparison {op!r}")


def like(pattern: str, text: str, ignore_case: bool = False) -> bool:
    """SQL LIKE: ``%`` any run of characters, ``_`` one character, the rest literal.

    Matched by one scan that only ever goes back to the last ``%`` (time at most
    len(pattern) × len(text)), never a backtracking regex: ``'%a%a%a…%b'`` against a
    long text of ``a`` s takes milliseconds, not hours.
    """
    if ignore_case:
        pattern, text = pattern.lower(), text.lower()
    p = t = 0
    star, resume = -1, 0
    while t < len(text):
        if p < len(pattern) and pattern[p] == "%":
            star, resume, p = p, t, p + 1
        elif p < len(pattern) and (pattern[p] == "_" or pattern[p] == text[t]):
            p, t = p + 1, t + 1
        elif star >= 0:
            resume += 1
            p, t = star + 1, resume
        else:
            return False
    return all(ch == "%" for ch in pattern[p:])


# -- histories ----------------------------------------------------------------
def history_frame(rows: list[tuple[str, str, int, int, float]]) -> pd.DataFrame:
    """(run_id, key, step, timestamp ms, value) rows as a long DataFrame."""
    frame = pd.DataFrame(rows, columns=["run_id", "key", "step", "timestamp", "value"])
    frame["step"] = frame["step"].astype("int64")
    frame["value"] = frame["value"].astype("float64")
    frame["timestamp"] = pd.to_datetime(frame["timestamp"].astype("int64"), unit="ms", utc=True)
    return frame


def get_metric_history(repo: Repository, run: str, key: str) -> pd.DataFrame:
    """step, timestamp, value of one metric of one run (id, prefix or name)."""
    found = lifecycle.load(repo, run)
    if key not in found.record.metrics:
        known = ", ".join(sorted(found.record.metrics)) or "none"
        raise InvalidValue(f"run {found.name!r} has no metric {key!r} (metrics: {known})")
    rows = [(found.id, k, s, t, v) for k, s, t, v in found.history if k == key]
    return history_frame(rows).drop(columns=["run_id", "key"])


def load_history(repo: Repository, runs: Iterable[str], keys: Iterable[str] | None = None
                 ) -> pd.DataFrame:
    """The histories of many runs in long format: run_id, key, step, timestamp, value."""
    snapshot = repo.store.snapshot()
    wanted_ids = {lifecycle.resolve(snapshot, str(r)) for r in runs}
    wanted_keys = set(keys) if keys is not None else None
    catalog = catalog_for(repo)
    entries = [e for e in catalog.entries(snapshot) if e.run_id in wanted_ids]
    rows = []
    for run_id, history in catalog.history(entries).items():
        rows.extend((run_id, k, s, t, v) for k, s, t, v in history
                    if wanted_keys is None or k in wanted_keys)
    return history_frame(rows)


def experiments_frame(repo: Repository, metric: str | None = None,
                      mode: str | None = None) -> pd.DataFrame:
    """One row per experiment: name, description, runs, last activity, best ``metric`` by its goal
    in that experiment (``mode`` "max"/"min" overrides every goal)."""
    names = experiment_names(repo)
    runs = runs_frame(repo, run_view="active")
    rows = []
    heading = f"best {metric}" if metric else None
    for slug, name in sorted(names.items(), key=lambda item: item[1].lower()):
        exp = repo.experiment(slug)
        mine = runs[runs["experiment"] == name]
        last = mine[["start_time", "end_time"]].max().max() if len(mine) else None
        row = {"experiment": name, "description": exp.description if exp else None,
               "runs": len(mine), "last_activity": last}
        if metric and heading:
            column = f"metrics.{metric}"
            goal = metric_goal(repo, metric, [slug], mode)
            values = mine[column] if column in mine.columns else pd.Series(dtype="float64")
            if values.notna().any() and not goal.known:
                raise no_goal_error(metric)
            row[heading] = goal.best(values.tolist())
            row["goal"] = goal.label
        rows.append(row)
    columns = ["experiment", "description", "runs", "last_activity"] + \
        ([heading, "goal"] if heading else [])
    return pd.DataFrame(rows, columns=columns)


def run_details(repo: Repository, run: str) -> tuple[record.RunRecord, str, dict[str, list[float]]]:
    """One run's record, its experiment's name, and each metric's values in order."""
    found = lifecycle.load(repo, run)
    histories: dict[str, list[float]] = {}
    for key, _, _, value in sorted(found.history, key=lambda row: (row[0], row[1], row[2])):
        histories.setdefault(key, []).append(value)
    exp = repo.experiment(found.experiment)
    return found.record, exp.name if exp else found.experiment, histories


def children_of(repo: Repository, rec: record.RunRecord) -> tuple[str | None, pd.DataFrame]:
    """A run's child runs (a sweep's trials) with their key metric, best first; returns the
    metric's column (None when the children logged no metric) and the rows."""
    runs = runs_frame(repo)
    mine = runs[runs["parent_run_id"] == rec.id]
    if not len(mine):
        return None, mine
    specs = metric_specs(repo, [rec.experiment])
    logged = [c for c in mine.columns if c.startswith("metrics.") and mine[c].notna().any()]
    keys = [f"metrics.{k}" for k in goals.key_metrics(specs) if f"metrics.{k}" in logged]
    if not keys:
        keys = sorted(logged, key=lambda c: (-mine[c].notna().sum(),
                                              not goals.goal_of(c[len("metrics."):], specs).known, c))
    if not keys:
        return None, mine.sort_values("start_time")
    goal = goals.goal_of(keys[0][len("metrics."):], specs)
    ordered = mine.sort_values([keys[0], "start_time"], ascending=[not goal.sort_descending, True],
                               na_position="last", kind="mergesort") if goal.known else \
        mine.sort_values("start_time", kind="mergesort")
    return keys[0], ordered


def run_records(repo: Repository, runs: Iterable[str]) -> list[record.RunRecord]:
    """The records of several runs (ids, prefixes or names), in the order given."""
    snapshot = repo.store.snapshot()
    return [lifecycle.load(repo, run, snapshot).record for run in runs]


def code_differences(repo: Repository, a: record.RunRecord, b: record.RunRecord
                     ) -> tuple[str | None, list[tuple[str, str]]]:
    """The code diff between two runs' commits, and each run's uncommitted patch."""
    code_diff = None
    if a.code.commit and b.code.commit and a.code.commit != b.code.commit:
        code_diff = repo.git.diff_commits(a.code.commit, b.code.commit)
    snapshot = repo.store.snapshot()
    patches = []
    for rec in (a, b):
        if rec.code.diff:
            data = snapshot.read(rec.code.diff)
            if data is not None:
                patches.append((f"{rec.name} ({rec.id[:8]})", data.decode("utf-8", "replace")))
    return code_diff, patches


def export_runs(frame: pd.DataFrame, fmt: str, path: str) -> None:
    """Write runs to a file as csv, json (records) or parquet."""
    if fmt == "csv":  # formula-looking text cells neutralised; CRLF lines (RFC 4180), so
        from .display import csv_safe  # a cell holding a CR or LF is always quoted

        csv_safe(frame).to_csv(path, index=False, lineterminator="\r\n")
    elif fmt == "json":
        frame.to_json(path, orient="records", date_format="iso", indent=2)
    elif fmt == "parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError as exc:
            raise InvalidValue("parquet export needs pyarrow: pip install 'labbook[parquet]'") from exc
        table = frame.copy()
        for column in table.columns:  # params keep their types; parquet wants one type a column
            if table[column].dtype == object:
                table[column] = table[column].map(lambda v: None if v is None else str(v))
        table.to_parquet(path, index=False)
    else:
        raise InvalidValue(f"export format {fmt!r} is not one of csv, json, parquet")


def run_report(repo: Repository, run: str, baseline: str | None = None) -> tuple[
        record.RunRecord, str, dict[str, goals.Goal], dict[str, tuple[float, int]], record.RunRecord | None]:
    """What ``show --format markdown`` shows: the record, its experiment's name, its metrics'
    goals, their bests in the experiment, and the baseline's record (or None)."""
    rec, experiment, _ = run_details(repo, run)
    base = lifecycle.load(repo, baseline).record if baseline else None
    chosen = record_goals(repo, [rec])
    return rec, experiment, chosen, experiment_bests(repo, rec, chosen), base


def experiment_bests(repo: Repository, rec: record.RunRecord, chosen: dict[str, goals.Goal]
                     ) -> dict[str, tuple[float, int]]:
    """For each metric of ``rec`` with a goal: the best last value among the active runs of its
    experiment, and how many runs logged it."""
    frame = runs_frame(repo, [rec.experiment])
    out = {}
    for key, goal in chosen.items():
        column = f"metrics.{key}"
        if key in rec.metrics and goal.known and column in frame.columns:
            values = [float(v) for v in frame[column].dropna()]
            best = goal.best(values)
            if best is not None:
                out[key] = (best, len(values))
    return out
