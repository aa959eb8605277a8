"""Runs shown in a notebook as HTML, and in a terminal as text.

A :class:`~labbook.Run` displays itself in Jupyter (``_repr_html_``): its name, status,
hypothesis and verdict, its params, and each metric's last and best value (best by the
metric's goal) with a small inline SVG chart of its history. ``labbook.compare(...)``
returns a :class:`RunList` that displays as a side-by-side table (params that differ
marked, the best value of each metric starred) and prints as the ``labbook compare``
text; ``labbook.show(...)`` prints a run (or a comparison) in a terminal. Every string a
user logged is escaped with ``html.escape``, as the journal site does; nothing here runs
script or loads anything.
"""

from __future__ import annotations

import html
import math
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:  # display loads pandas and rich: only when something is shown
    from .format.goals import Goal
    from .runs.run import Run

MAX_PARAMS = 40
MAX_METRICS = 30
MAX_POINTS = 200
_FONT = "font-family:system-ui,sans-serif;font-size:13px"
_STYLE = ("font-family:system-ui,sans-serif;font-size:13px;border-collapse:collapse;"
          "margin:4px 0")
_CELL = "padding:2px 8px;border-bottom:1px solid #ddd;text-align:left;vertical-align:middle"


def esc(value: Any) -> str:
    """Any value as escaped HTML text (quotes too: safe in attributes)."""
    from .reading import display

    return html.escape(value if isinstance(value, str) else display.cell(value), quote=True)


def metric_goal(run: Run, key: str) -> Goal:
    """The goal of metric ``key`` as the run's experiment declares it (``define_metric``),
    else guessed from the name (labbook.format.goals: the one answer everywhere)."""
    from .format.goals import goal_of

    exp = run.repo.experiment(run.record.experiment)
    return goal_of(key, exp.metrics if exp is not None else None)


def goal(run: Run, key: str) -> str:
    """'max', 'min', or '' when the metric has no known goal; '~' marks a guessed one."""
    found = metric_goal(run, key)
    if found.goal is None:
        return ""
    word = "max" if found.sort_descending else "min"
    return word if found.declared else f"{word}~"


def svg_sparkline(values: Iterable[float], width: int = 120, height: int = 24) -> str:
    """A small line chart of a series as inline SVG (non-finite values left out)."""
    points = [float(v) for v in values if isinstance(v, int | float) and math.isfinite(v)]
    if not points:
        return ""
    if len(points) > MAX_POINTS:
        stride = len(points) / MAX_POINTS
        points = [points[int(i * stride)] for i in range(MAX_POINTS - 1)] + [points[-1]]
    low, high = min(points), max(points)
    span = high - low or 1.0
    last = max(len(points) - 1, 1)
    coords = [((i / last) * (width - 2) + 1 if len(points) > 1 else width / 2,
               height - 2 - (p - low) / span * (height - 4)) for i, p in enumerate(points)]
    text = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
    end_x, end_y = coords[-1]
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" role="img" aria-label="history">'
            f'<polyline fill="none" stroke="#3572b0" stroke-width="1.5" points="{text}"/>'
            f'<circle cx="{end_x:.1f}" cy="{end_y:.1f}" r="2" fill="#3572b0"/></svg>')


def _series(run: Run, key: str) -> list[float]:
    return [value for _, _, value in sorted(run.metric_history(key), key=lambda row: row[0])]


def _best(run: Run, key: str) -> float | str:
    summary = run.record.metrics[key]
    found = metric_goal(run, key)
    if found.goal is None:
        return ""
    return summary.max if found.sort_descending else summary.min


def run_html(run: Run) -> str:
    """One run as an HTML fragment (see the module docstring)."""
    rec = run.record
    head = (f'<div style="font-size:14px"><b>{esc(rec.name)}</b> '
            f'<code>{esc(rec.id[:8])}</code> · {esc(rec.status)} · experiment '
            f'<code>{esc(rec.experiment)}</code> · started {esc(rec.start_time)}</div>')
    parts = [head]
    if rec.hypothesis:
        parts.append(f"<div><i>hypothesis:</i> {esc(rec.hypothesis)}</div>")
    if rec.conclusion:
        parts.append(f"<div><i>{esc(rec.conclusion.verdict)}:</i> {esc(rec.conclusion.text)}</div>")
    if rec.error:
        parts.append(f"<div><i>error:</i> {esc(rec.error)}</div>")
    if rec.params:
        rows = [f'<tr><td style="{_CELL}"><code>{esc(k)}</code></td><td style="{_CELL}">{esc(v)}</td></tr>'
                for k, v in list(rec.params.items())[:MAX_PARAMS]]
        rows += _more(len(rec.params) - MAX_PARAMS, 2)
        parts.append(_table(["param", "value"], rows))
    if rec.metrics:
        rows = []
        for key, s in list(rec.metrics.items())[:MAX_METRICS]:
            cells = [f"<code>{esc(key)}</code>", esc(s.last), esc(_best(run, key)), esc(goal(run, key)),
                     esc(s.step), svg_sparkline(_series(run, key))]
            rows.append("<tr>" + "".join(f'<td style="{_CELL}">{c}</td>' for c in cells) + "</tr>")
        rows += _more(len(rec.metrics) - MAX_METRICS, 6)
        parts.append(_table(["metric", "last", "best", "goal", "step", "history"], rows))
    if rec.artifacts:
        parts.append("<div><i>artifacts:</i> " + ", ".join(f"<code>{esc(a.path)}</code>"
                                                           for a in rec.artifacts) + "</div>")
    return f'<div class="labbook-run" style="{_FONT}">{"".join(parts)}</div>'


def runs_html(runs: list[Run]) -> str:
    """Runs side by side: params (those that differ marked *) and metrics (best starred)."""
    if not runs:
        return "<div><i>no runs</i></div>"
    header = ["", *[f"{esc(r.name)}<br><code>{esc(r.id[:8])}</code> {esc(r.status)}" for r in runs]]
    rows = []
    keys = list(dict.fromkeys(k for r in runs for k in r.record.params))
    for key in keys[:MAX_PARAMS]:
        values = [r.record.params.get(key, "") for r in runs]
        differs = len({repr(v) for v in values}) > 1
        label = f"<code>{esc(key)}</code>{' *' if differs else ''}"
        rows.append(_row([label, *[esc(v) for v in values]]))
    metrics = list(dict.fromkeys(k for r in runs for k in r.record.metrics))
    for key in metrics[:MAX_METRICS]:
        have = [r for r in runs if key in r.record.metrics]
        best = metric_goal(have[0], key).best(r.record.metrics[key].last for r in have)
        cells = []
        for r in runs:
            s = r.record.metrics.get(key)
            if s is None:
                cells.append("")
                continue
            star = " ★" if best is not None and s.last == best and len(have) > 1 else ""
            cells.append(f"{esc(s.last)}{star}<br>{svg_sparkline(_series(r, key), 90, 18)}")
        rows.append(_row([f"<code>{esc(key)}</code> ({esc(goal(have[0], key))})", *cells]))
    note = "<div style='font-size:12px'>* params that differ · ★ best value by the metric's goal</div>"
    return f'<div class="labbook-compare" style="{_FONT}">{_table(header, rows)}{note}</div>'


def _table(header: list[str], rows: list[str]) -> str:
    head = "".join(f'<th style="{_CELL}">{h}</th>' for h in header)
    return f'<table style="{_STYLE}"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def _row(cells: list[str]) -> str:
    return "<tr>" + "".join(f'<td style="{_CELL}">{c}</td>' for c in cells) + "</tr>"


def _more(hidden: int, columns: int) -> list[str]:
    if hidden <= 0:
        return []
    return [f'<tr><td colspan="{columns}" style="{_CELL}"><i>… {hidden} more</i></td></tr>']


class RunList(list):  # type: ignore[type-arg]
    """Runs that display side by side: HTML in a notebook, ``labbook compare`` text in print."""

    def _repr_html_(self) -> str:
        return runs_html(list(self))

    def __str__(self) -> str:
        from .reading import display

        records = [r.record for r in self]
        goals = {key: metric_goal(r, key) for r in self for key in r.record.metrics}
        return display.render_compare(records, goals)


def resolve(runs: Iterable[Any]) -> RunList:
    """Runs from Run objects, ids, id prefixes, names, or a search_runs DataFrame."""
    from . import tracking
    from .runs.run import Run

    found = RunList()
    for item in runs:
        if isinstance(item, Run):
            found.append(item)
        elif isinstance(item, str):
            found.append(tracking.get_run(item))
        elif hasattr(item, "columns") and "run_id" in item.columns:  # a search_runs frame
            found.extend(tracking.get_run(rid) for rid in item["run_id"])
        elif isinstance(item, Iterable):
            found.extend(resolve(item))
        else:
            from .errors import InvalidValue

            raise InvalidValue(f"{item!r:.60} is not a run; give a Run, a run id or name, "
                               "or a DataFrame from search_runs")
    return found


def compare(*runs: Any) -> RunList:
    """Runs side by side (ids, names, Run objects or a search_runs DataFrame): a table in a
    notebook, the ``labbook compare`` text when printed."""
    return resolve(runs)


def show(*runs: Any, file: TextIO | None = None) -> None:
    """Print a run (every field, metrics with a sparkline) or several side by side."""
    from . import tracking
    from .reading import display

    found = resolve(runs)
    out = file or sys.stdout
    if len(found) == 1:
        from .reading import query

        rec, experiment, histories = query.run_details(tracking.repository(), found[0].id)
        out.write(display.render_run(rec, experiment, histories))
    else:
        out.write(str(found))
