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
from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from .errors import InvalidValue
from .record import RunRecord
from .validation import escape_controls

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


def cell(value: Any) -> str:
    """One value as table text, on one line, control characters escaped."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
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
    """One value as JSON data: ISO times, null for missing and NaN."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
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


def render_compare(records: list[RunRecord], goals: dict[str, str], width: int | None = None) -> str:
    """Runs side by side: params (differences marked *) and metrics (best marked ★)."""
    table = Table(box=box.SIMPLE_HEAD, show_edge=False)
    table.add_column("")
    for rec in records:
        table.add_column(Text(f"{cell(rec.name)}\n{cell(rec.id[:8])}"), overflow="fold")
    table.add_row(Text("status", style="bold"), *(_text(r.status) for r in records))
    table.add_row(Text("verdict", style="bold"),
                  *(_text(r.conclusion.verdict if r.conclusion else "") for r in records))
    for key in sorted({k for r in records for k in r.params}):
        values = [r.params.get(key) for r in records]
        differs = len({json.dumps(v, sort_keys=True, default=str) for v in values}) > 1
        table.add_row(_text(f"{'* ' if differs else '  '}params.{key}"), *(_text(v) for v in values))
    for key in sorted({k for r in records for k in r.metrics}):
        values = [r.metrics[key].last if key in r.metrics else None for r in records]
        known = [v for v in values if v is not None and not math.isnan(v)]
        best = (max(known) if goals.get(key) == "max" else min(known)) if known else None
        table.add_row(_text(f"  metrics.{key}"),
                      *(Text(cell(v) + (" ★" if v == best and len(known) > 1 else "")) for v in values))
    return _to_text(table, width) + "* params that differ · ★ best value " \
        "(lowest, or highest for metrics named like accuracy, r2, auc, f1, precision, recall)\n"


def metric_goal(key: str) -> str:
    """'max' for metrics where higher is better (by name), else 'min'."""
    lowered = key.lower()
    higher = ("acc", "r2", "auc", "f1", "precision", "recall", "score", "iou", "map", "bleu")
    return "max" if any(word in lowered for word in higher) else "min"


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
