"""Turning query results into text for the terminal and for scripts.

Tables go through rich (fitted to the terminal width); ``--format`` csv, json
and markdown are plain and stable. No function here reads the repository.
"""

from __future__ import annotations

import fnmatch
import io
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..errors import InvalidValue
from ..format.goals import MAXIMIZE, MINIMIZE, NO_GOAL, Goal, goals_of, key_metrics
from ..format.record import MetricSpec, MetricSummary, RunRecord
from ..format.validation import escape_controls

FORMATS = ("table", "csv", "json", "markdown")
DEFAULT_LS_COLUMNS = ["run_id", "run_name", "experiment", "status", "start_time", "verdict"]
DEFAULT_METRICS = 4
_SPARKS = "▁▂▃▄▅▆▇█"
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"^[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$")


def select_columns(frame: pd.DataFrame, patterns: Sequence[str] | None) -> pd.DataFrame:
    """Keep the columns matching glob patterns (``metrics.*``), in the patterns' order.

    With no patterns: the run's name, experiment, status, start and verdict, and the
    four metrics most runs have.
    """
    chosen: list[str] = []
    if not patterns:
        metrics = frame[[c for c in frame.columns if c.startswith("metrics.")]]
        common = metrics.notna().sum().sort_values(ascending=False, kind="mergesort")
        patterns = DEFAULT_LS_COLUMNS + list(common.index[:DEFAULT_METRICS])
    for pattern in patterns:
        hits = [c for c in frame.columns if fnmatch.fnmatchcase(c, pattern)]
        if not hits and not any(ch in pattern for ch in "*?["):
            raise InvalidValue(f"no column {pattern!r}; columns are: " + ", ".join(frame.columns))
        chosen.extend(c for c in hits if c not in chosen)
    return frame[chosen]


SHORT_HEADERS = {"run_id": "id", "run_name": "name", "start_time": "started", "end_time": "ended"}
NAME_WIDTH = 28  # a longer run name is cut with … in a fitted table (all of it with --wide)
_GAP = 3  # rich puts padding (1 each side) and a divider between two columns


def ls_table(frame: pd.DataFrame, width: int, specs: Mapping[str, MetricSpec] | None = None,
             wide: bool = False) -> str:
    """Runs as a table that fits ``width`` columns: id, name, status, start and the key metrics
    first (declared ``key`` metrics, else those most runs have), then the experiment (when
    several), the verdict and more metrics while they fit. Ids and numbers are never cut: the
    name, the start time and the status give way first, then trailing columns. ``wide``
    shows every column that has a value, however wide. A column whose cells are all empty is
    never shown."""
    goals = goals_of((c[len("metrics."):] for c in frame.columns if c.startswith("metrics.")), specs)
    chosen = _ls_columns(frame, width, key_metrics(specs), goals, wide)
    sizes = {c: _natural_width(frame, c, goals, wide) for c in chosen}
    if not wide:
        chosen, sizes = _squeeze(chosen, sizes, width)
    shown = frame[chosen].copy()
    if "run_id" in shown.columns:
        shown["run_id"] = shown["run_id"].map(lambda v: v[:8] if isinstance(v, str) else v)
    if "start_time" in shown.columns:
        form = "%Y-%m-%d %H:%M" if sizes["start_time"] >= 16 else "%Y-%m-%d"
        shown["start_time"] = shown["start_time"].map(
            lambda v: v.strftime(form) if isinstance(v, pd.Timestamp) else v)
    table = Table(box=box.SIMPLE_HEAD, show_edge=False)
    for column in chosen:
        table.add_column(Text(_header(column, goals)), justify="right" if _numeric(column) else "left",
                         overflow="ellipsis", no_wrap=True, width=sizes[column])
    for row in shown.itertuples(index=False):
        table.add_row(*(_text(v) for v in row))
    return _to_text(table, max(_total(sizes), 1) if wide else width)


def _total(sizes: Mapping[str, int]) -> int:
    return sum(w + _GAP for w in sizes.values()) - 1


_SQUEEZE = (("run_name", 8), ("start_time", 10), ("status", 3), ("experiment", 8), ("verdict", 5))


def _squeeze(chosen: list[str], sizes: dict[str, int], width: int,
             order: tuple[tuple[str, int], ...] = _SQUEEZE) -> tuple[list[str], dict[str, int]]:
    """Narrow the text columns (in ``order``, to their floors), then drop trailing columns."""
    sizes = dict(sizes)
    for column, floor in order:
        excess = _total(sizes) - width
        if excess > 0 and column in sizes:
            sizes[column] = max(floor, sizes[column] - excess)
    chosen = list(chosen)
    while _total(sizes) > width and len(chosen) > 2:
        sizes.pop(chosen.pop())
    return chosen, sizes


def experiments_table(frame: pd.DataFrame, width: int) -> str:
    """``labbook experiments`` fitted to ``width``: names and numbers whole, the question cut."""
    shown = frame.copy()
    if "last_activity" in shown.columns:
        shown["last_activity"] = shown["last_activity"].map(
            lambda v: v.strftime("%Y-%m-%d %H:%M") if isinstance(v, pd.Timestamp) else v)
    texts = {c: shown[c].map(cell) for c in shown.columns}
    sizes = {c: max([len(str(c)), *texts[c].map(len)]) for c in shown.columns}
    chosen, sizes = _squeeze(list(shown.columns), sizes, width,
                             (("description", 10), ("goal", 6), ("experiment", 12)))
    table = Table(box=box.SIMPLE_HEAD, show_edge=False)
    for column in chosen:
        numeric = column == "runs" or column.startswith("best ")
        table.add_column(Text(cell(column)), justify="right" if numeric else "left", overflow="ellipsis",
                         no_wrap=True, width=sizes[column])
    for i in range(len(shown)):
        table.add_row(*(Text(texts[c].iloc[i]) for c in chosen))
    return _to_text(table, width)


def _ls_columns(frame: pd.DataFrame, width: int, keys: list[str], goals: Mapping[str, Goal],
                wide: bool) -> list[str]:
    has = {c for c in frame.columns if frame[c].map(lambda v: cell(v) != "").any()} if len(frame) else set()
    metrics = [c for c in frame.columns if c.startswith("metrics.") and c in has]
    key_columns = [f"metrics.{k}" for k in keys if f"metrics.{k}" in has]
    others = sorted((c for c in metrics if c not in key_columns),
                    key=lambda c: (-frame[c].notna().sum(), not goals[c[len("metrics."):]].known, c))
    if not key_columns and others:
        key_columns, others = others[:1], others[1:]
    must = [c for c in ("run_id", "run_name", "status", "start_time") if c in has] + key_columns
    extras = ["experiment"] if "experiment" in has and frame["experiment"].nunique() > 1 else []
    extras += [c for c in ("verdict",) if c in has]
    if wide:
        rest = [c for c in ("end_time", "duration", "user", "parent_run_id") if c in has]
        return must + extras + others + rest + sorted(c for c in has if c.startswith(("params.", "tags.")))
    chosen = list(must)
    used = sum(_natural_width(frame, c, goals, False) + _GAP for c in chosen) - 1
    for column in extras + others:
        need = _natural_width(frame, column, goals, False) + _GAP
        if used + need <= width:
            chosen.append(column)
            used += need
    order = {c: i for i, c in enumerate(must + extras + others)}
    return sorted(chosen, key=order.__getitem__)


def _header(column: str, goals: Mapping[str, Goal]) -> str:
    if column.startswith("metrics."):
        goal = goals.get(column[len("metrics."):], NO_GOAL)
        arrow = {MAXIMIZE: " ↑", MINIMIZE: " ↓"}.get(goal.goal or "", "")
        return column[len("metrics."):] + arrow
    return SHORT_HEADERS.get(column, column)


def _numeric(column: str) -> bool:
    return column.startswith("metrics.") or column == "duration"


def _natural_width(frame: pd.DataFrame, column: str, goals: Mapping[str, Goal], wide: bool) -> int:
    if column == "run_id":
        return 8
    if column == "start_time":
        return 16
    cells = frame[column].map(cell) if len(frame) else pd.Series([], dtype=object)
    widest = int(cells.map(len).max()) if len(cells) else 0
    if column == "run_name" and not wide:
        widest = min(widest, NAME_WIDTH)
    return max(widest, len(_header(column, goals)))


def cell(value: Any) -> str:
    """One value as table text, on one line, control characters escaped: missing is blank,
    a logged NaN is 'NaN'."""
    if value is None or value is pd.NA:
        return ""
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, float):
        return f"{value:.6g}"
    return escape_controls(str(value), keep="")


def _text(value: Any) -> Text:
    """A table cell rich shows as it is: no markup (``[bold]``), no emoji codes."""
    return Text(cell(value))


def csv_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` whose text cells a spreadsheet would run as a formula (starting
    with =, +, -, @, tab or CR, and not a plain number such as ``-0.5``) start with ``'``.
    Numbers stay numbers."""
    out = frame.copy()
    for column in out.columns:
        if out[column].dtype == object:
            values = [_neutralised(v) for v in out[column]]
            out[column] = pd.Series(values, index=out.index, dtype=object)  # 3 stays 3, not 3.0
    return out


def _neutralised(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(_FORMULA_START) \
            and not _PLAIN_NUMBER.match(value):
        return "'" + value
    return value


def plain(value: Any) -> Any:
    """One value as JSON data: ISO times, null for missing, "NaN" for a logged NaN."""
    if value is None or value is pd.NA:
        return None
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    if isinstance(value, pd.Timestamp):
        return value.isoformat().replace("+00:00", "Z")
    if hasattr(value, "item"):
        return plain(value.item())
    if isinstance(value, float) and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return value


def render_frame(frame: pd.DataFrame, fmt: str, width: int | None = None, short_ids: bool = True
                 ) -> str:
    """A DataFrame as a table, CSV, JSON (a list of objects) or markdown."""
    if fmt not in FORMATS:
        raise InvalidValue(f"format {fmt!r} is not one of {', '.join(FORMATS)}")
    if fmt == "json":
        rows = [{c: plain(v) for c, v in zip(frame.columns, row, strict=True)}
                for row in frame.itertuples(index=False)]
        return json.dumps(rows, indent=2, ensure_ascii=False) + "\n"
    if fmt == "csv":
        return csv_safe(frame).to_csv(index=False)
    shown = frame.copy()
    if short_ids:
        for column in ("run_id", "parent_run_id"):
            if column in shown.columns:
                shown[column] = shown[column].map(lambda v: v[:8] if isinstance(v, str) else v)
    if fmt == "markdown":
        lines = ["| " + " | ".join(cell(c) for c in shown.columns) + " |",
                 "|" + "|".join("---" for _ in shown.columns) + "|"]
        lines += ["| " + " | ".join(cell(v).replace("|", "\\|") for v in row) + " |"
                  for row in shown.itertuples(index=False)]
        return "\n".join(lines) + "\n"
    table = Table(box=box.SIMPLE_HEAD, show_edge=False)
    for column in shown.columns:
        numeric = column.startswith("metrics.") or column == "duration"
        table.add_column(_text(column), justify="right" if numeric else "left",
                         overflow="ellipsis", no_wrap=True)
    for row in shown.itertuples(index=False):
        table.add_row(*(_text(v) for v in row))
    return _to_text(table, width)


def _to_text(renderable: Any, width: int | None) -> str:
    buffer = io.StringIO()
    console = Console(file=buffer, width=width or 100, force_terminal=False, color_system=None,
                      soft_wrap=False)
    console.print(renderable)
    return buffer.getvalue()


def sparkline(values: Iterable[float], width: int = 40) -> str:
    """A one-line sketch of a series (resampled to ``width`` characters)."""
    points = [v for v in values if isinstance(v, int | float) and math.isfinite(v)]
    if not points:
        return ""
    if len(points) > width:
        step = len(points) / width
        points = [points[int(i * step)] for i in range(width - 1)] + [points[-1]]
    low, high = min(points), max(points)
    span = high - low or 1.0
    return "".join(_SPARKS[int((p - low) / span * (len(_SPARKS) - 1))] for p in points)


def render_children(metric: str | None, children: pd.DataFrame) -> str:
    """A parent's child runs, one line each (best first when their key metric has a goal)."""
    if not len(children):
        return ""
    name = metric[len("metrics."):] if metric else None
    out = [f"\nchildren ({len(children)})" + (f", by {name}" if name else "")]
    width = min(max(len(str(n)) for n in children["run_name"]), 40)
    values = children[metric].tolist() if metric else [None] * len(children)
    for rid, run_name, status, value in zip(children["run_id"], children["run_name"], children["status"],
                                            values, strict=True):
        shown = "" if value is None else metric_text(value)
        out.append(f"  {rid[:8]}  {str(run_name)[:width]:<{width}}  {status:<8}  {shown}".rstrip())
    return "\n".join(out) + "\n"


def render_run(rec: RunRecord, experiment: str,
               history: dict[str, list[float]], width: int | None = None) -> str:
    """Everything about one run, as a reader wants it on a terminal."""
    out = [f"{cell(rec.name)}  ({cell(rec.id)})", ""]
    fields = [("experiment", experiment), ("status", rec.status), ("started", rec.start_time),
              ("ended", rec.end_time or ""), ("user", rec.user or ""), ("host", rec.host or ""),
              ("parent", rec.parent or ""), ("command", " ".join(rec.command)),
              ("code", _code_line(rec)), ("python", rec.environment.python or ""),
              ("platform", rec.environment.platform or "")]
    if rec.error:
        fields.append(("error", rec.error))
    out += [f"  {name:<11}{cell(value)}" for name, value in fields if value]
    if rec.hypothesis:
        out += ["", "hypothesis", _indent(rec.hypothesis)]
    for title, mapping in (("params", rec.params), ("tags", rec.tags)):
        if mapping:
            out += ["", title] + [f"  {k} = {v!r}" if not isinstance(v, str) else f"  {k} = {v}"
                                  for k, v in mapping.items()]
    if rec.metrics:
        out += ["", "metrics                  last         min         max   step  history"]
        for key, s in rec.metrics.items():
            out.append(f"  {key:<20}{s.last:>10.6g}  {s.min:>10.6g}  {s.max:>10.6g}  {s.step:>5}  "
                       f"{sparkline(history.get(key, []))}")
    if rec.notes:
        out += ["", "notes"]
        for note in rec.notes:
            out += [f"  {note.time}  {note.author}", _indent(note.text, 4)]
    if rec.conclusion:
        out += ["", f"conclusion: {rec.conclusion.verdict.upper()}", _indent(rec.conclusion.text)]
    if rec.artifacts:
        out += ["", "artifacts"] + [f"  {a.path}  {a.size} bytes  {a.location}  sha256:{a.sha256[:12]}"
                                    for a in rec.artifacts]
    if rec.conflicts:
        out += ["", "conflicts (values a merge set aside; see docs/sync.md)"]
        out += [f"  {c.field} = {c.value!r}" + (f"  from {c.commit[:12]}" if c.commit else "")
                for c in rec.conflicts]
    return "\n".join(out) + "\n"


def _code_line(rec: RunRecord) -> str:
    code = rec.code
    if not code.commit:
        return ""
    parts = [code.commit[:12], f"on {code.branch}" if code.branch else "(detached)"]
    if code.dirty:
        parts.append("+ uncommitted changes")
    if code.remote:
        parts.append(code.remote)
    return " ".join(parts)


def _indent(text: str, spaces: int = 2) -> str:
    return "\n".join(" " * spaces + line for line in text.splitlines())


def render_compare(records: list[RunRecord], goals: Mapping[str, Goal], width: int | None = None,
                   means: Mapping[tuple[str, str], float] | None = None) -> str:
    """Runs side by side: status, verdict, the params that differ, then every metric (best
    marked ★ where the metric has a goal; a goal guessed from the name is marked ~), each
    run's value being its declared summary (``means`` holds (run id, key) → mean for the
    metrics summarised by their mean). Params that are the same in every run are listed
    once, under the table."""
    width = width or 100
    labels: list[str] = ["status", "verdict"]
    rows: list[list[str]] = [[r.status for r in records],
                             [r.conclusion.verdict if r.conclusion else "" for r in records]]
    same = []
    for key in sorted({k for r in records for k in r.params}):
        values = [r.params.get(key) for r in records]
        if len(records) > 1 and len({json.dumps(v, sort_keys=True, default=str) for v in values}) == 1:
            same.append(f"{key}={cell(values[0])}")
            continue
        labels.append(f"params.{key}")
        rows.append([cell(v) if key in r.params else "—" for v, r in zip(values, records, strict=True)])
    inferred = False
    for key in sorted({k for r in records for k in r.metrics}):
        goal = goals.get(key, NO_GOAL)
        values = [run_value(r.metrics[key], goal, (means or {}).get((r.id, key))) if key in r.metrics
                  else None for r in records]
        best = goal.best(values) if sum(v is not None for v in values) > 1 else None
        arrow = {MAXIMIZE: " ↑", MINIMIZE: " ↓"}.get(goal.goal or "", "")
        inferred |= bool(arrow) and not goal.declared
        labels.append(f"metrics.{key}{arrow}{'' if goal.declared or not arrow else '~'}")
        rows.append([("—" if v is None else metric_text(v)) + (" ★" if best is not None and v == best else "")
                     for v in values])
    numbers = max((len(v) for i, row in enumerate(rows) if labels[i].startswith("metrics.") for v in row),
                  default=8)
    label_width = min(max(map(len, labels)), max(16, width // 3))
    share = (width - label_width - _GAP * len(records)) // max(len(records), 1)
    if share < numbers:  # numbers are not folded while the labels can give way
        label_width = max(12, label_width - (numbers - share) * len(records))
        share = (width - label_width - _GAP * len(records)) // max(len(records), 1)
    table = Table(box=box.SIMPLE_HEAD, show_edge=False)
    table.add_column("", no_wrap=True, overflow="ellipsis", width=label_width)
    for rec in records:
        table.add_column(Text(f"{cell(rec.name)}\n{cell(rec.id[:8])}"), overflow="fold",
                         max_width=max(share, 8))
    for label, values in zip(labels, rows, strict=True):
        table.add_row(Text(label, style="bold") if label in ("status", "verdict") else Text(cell(label)),
                      *(Text(v) for v in values))
    legend = "★ best value by the metric's goal (↑ higher, ↓ lower is better)"
    if inferred:
        legend += "\n~ goal guessed from the name; declare it: labbook experiment metric EXP KEY --goal max"
    if same:
        legend += "\nthe same in every run: " + ", ".join(same)
    return _to_text(table, width) + _wrap(legend, width) + "\n"


def metric_text(value: float) -> str:
    """A metric value as table text: NaN and ±inf spelled out, never blank."""
    if math.isnan(value):
        return "NaN"
    return cell(value)


def _wrap(text: str, width: int) -> str:
    import textwrap

    return "\n".join(textwrap.fill(line, width=max(width, 20), subsequent_indent="  ",
                                    break_on_hyphens=False) for line in text.splitlines())


def run_value(summary: MetricSummary, goal: Goal, mean: float | None = None) -> float:
    """The value that stands for a run: the last, or the min, max or mean (of its history,
    given as ``mean``) when the metric's declared summary says so."""
    if goal.summary == "mean" and mean is not None:
        return mean
    if goal.summary == "min":
        return summary.min
    if goal.summary == "max":
        return summary.max
    return summary.last


def render_diff(a: RunRecord, b: RunRecord, code_diff: str | None,
                patches: list[tuple[str, str]]) -> str:
    """Param and metric differences of two runs, then their code differences."""
    out = [f"--- {a.name} ({a.id[:8]})", f"+++ {b.name} ({b.id[:8]})", ""]
    for key in sorted(set(a.params) | set(b.params)):
        left, right = a.params.get(key, "(unset)"), b.params.get(key, "(unset)")
        if left != right or type(left) is not type(right):
            out.append(f"params.{key}: {left!r} → {right!r}")
    for key in sorted(set(a.metrics) | set(b.metrics)):
        left = a.metrics[key].last if key in a.metrics else None
        right = b.metrics[key].last if key in b.metrics else None
        if left != right:
            change = ""
            if left not in (None, 0) and right is not None and math.isfinite(left) and math.isfinite(right):
                change = f"  ({(right - left) / abs(left):+.2%})"
            out.append(f"metrics.{key}: {cell(left) or '(none)'} → {cell(right) or '(none)'}{change}")
    if len(out) == 3:
        out.append("params and metrics are the same")
    out.append("")
    if code_diff is None:
        out.append("code: both runs ran on the same commit" if a.code.commit == b.code.commit
                   else "code: a commit is missing here, cannot diff the code")
    else:
        out += [f"code: git diff {a.code.commit[:12]} {b.code.commit[:12]}"  # type: ignore[index]
                , code_diff or "(no difference)"]
    for label, patch in patches:
        out += ["", f"uncommitted changes of {label}:", patch]
    return "\n".join(out).rstrip("\n") + "\n"
