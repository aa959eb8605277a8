"""Markdown for pull requests and release notes: ``--format markdown`` of compare, show and log.

GitHub-flavoured tables: the best value of each metric marked ★ by its goal
(docs/query.md), and each run's change against a baseline run with ✅ when it is
better and ❌ when it is worse. A goal guessed from the metric's name is marked
``~``; a metric with no known goal gets no mark. No function here reads the
repository, and every name, param and note written by a user goes through :func:`md`, so a
comment shows it as text (no link, image, HTML or @mention).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from ..format.goals import MAXIMIZE, MINIMIZE, NO_GOAL, Goal
from ..format.record import RunRecord
from .display import cell, metric_text, run_value

LEGEND = ("★ best by the metric's goal (↑ higher, ↓ lower is better) · Δ against the baseline: "
          "✅ better, ❌ worse")
INFERRED = "~ goal guessed from the metric's name"


_SPECIAL = re.compile(r"([\\`*\[\]<>|~@!])")


def md(value: Any) -> str:
    """User text as inline markdown that stays text: line breaks folded, and the characters
    that would make a link, an image, HTML, emphasis, a table cell or an @mention escaped."""
    text = value if isinstance(value, str) else cell(value)
    return _SPECIAL.sub(r"\\\1", " ".join(text.split()))


def goal_mark(goal: Goal) -> str:
    """`` ↑``/`` ↓`` (``~`` when guessed from the name) after a metric's name; '' with no goal."""
    arrow = {MAXIMIZE: " ↑", MINIMIZE: " ↓"}.get(goal.goal or "", "")
    return arrow + ("~" if arrow and not goal.declared else "")


def delta(value: float | None, base: float | None, goal: Goal) -> str:
    """``+0.012 (+1.3%) ✅``: the change from ``base`` to ``value``; '' when either is missing."""
    if value is None or base is None or math.isnan(value) or math.isnan(base):
        return ""
    if value == base:
        return "±0"
    if not (math.isfinite(value) and math.isfinite(base)):
        return ""
    change = value - base
    text = f"{change:+.4g}"
    if base != 0:
        text += f" ({change / abs(base):+.1%})"
    verdict = goal.improvement(base, value)
    return text + {True: " ✅", False: " ❌", None: ""}[verdict]


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], align: Sequence[str]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def baseline_first(records: list[RunRecord], baseline: RunRecord | None) -> list[RunRecord]:
    """The runs with the baseline (default: the first) leading and no run twice."""
    lead = baseline or (records[0] if records else None)
    seen: set[str] = set()
    out = []
    for rec in ([lead] if lead else []) + records:
        if rec.id not in seen:
            seen.add(rec.id)
            out.append(rec)
    return out


def compare_markdown(records: list[RunRecord], goals: Mapping[str, Goal]) -> str:
    """Runs side by side; the first is the baseline every other run's Δ is against."""
    base = records[0]
    header = [""] + [f"**{md(r.name)}** `{r.id[:8]}`" + (" (baseline)" if i == 0 else "")
                     for i, r in enumerate(records)]
    rows = [["status"] + [r.status for r in records],
            ["verdict"] + [r.conclusion.verdict if r.conclusion else "" for r in records]]
    inferred = False
    for key in sorted({k for r in records for k in r.metrics}):
        goal = goals.get(key, NO_GOAL)
        inferred |= goal.known and not goal.declared
        values = [run_value(r.metrics[key], goal) if key in r.metrics else None for r in records]
        best = goal.best(values) if sum(v is not None for v in values) > 1 else None
        row = [f"{md(key)}{goal_mark(goal)}"]
        for i, value in enumerate(values):
            text = "—" if value is None else metric_text(value) + (" ★" if value == best else "")
            change = delta(value, values[0], goal) if i and value is not None else ""
            row.append(text + (f" {change}" if change else ""))
        rows.append(row)
    same = []
    for key in sorted({k for r in records for k in r.params}):
        values = [r.params.get(key) for r in records]
        if len(records) > 1 and all(key in r.params and r.params[key] == values[0] for r in records):
            same.append(f"{md(key)}={md(values[0])}")
        else:
            rows.append([f"param {md(key)}"] + [md(v) if key in r.params else "—"
                                                for v, r in zip(values, records, strict=True)])
    out = [f"### {len(records)} runs against {md(base.name)} (`{base.id[:8]}`)", ""]
    out += _table(header, rows, ["---"] + ["---:"] * len(records))
    out += ["", LEGEND + (f" · {INFERRED}" if inferred else "")]
    if same:
        out += ["", "The same in every run: " + ", ".join(same)]
    return "\n".join(out) + "\n"


def run_markdown(rec: RunRecord, experiment: str, goals: Mapping[str, Goal],
                 bests: Mapping[str, tuple[float, int]], baseline: RunRecord | None = None) -> str:
    """One run for a pull request: its fields, then each metric with the best of its experiment
    (``bests``: key → best last value and number of runs) and its Δ against ``baseline``."""
    out = [f"### {md(rec.name)} (`{rec.id[:8]}`)", ""]
    fields = [("experiment", experiment), ("status", rec.status), ("started", rec.start_time),
              ("code", f"`{rec.code.commit[:12]}`" if rec.code.commit else ""),
              ("verdict", rec.conclusion.verdict if rec.conclusion else "")]
    out += [f"- **{name}**: {md(value)}" for name, value in fields if value]
    if rec.hypothesis:
        out += [f"- **hypothesis**: {md(rec.hypothesis)}"]
    if rec.conclusion and rec.conclusion.text.strip():
        out += [f"- **conclusion**: {md(rec.conclusion.text)}"]
    inferred = False
    if rec.metrics:
        header = ["metric", "value", "best in experiment"]
        if baseline is not None:
            header.append(f"Δ vs {md(baseline.name)} `{baseline.id[:8]}`")
        rows = []
        for key, summary in rec.metrics.items():
            goal = goals.get(key, NO_GOAL)
            inferred |= goal.known and not goal.declared
            value = run_value(summary, goal)
            best, count = bests.get(key, (None, 0))
            mark = " ★" if best is not None and not goal.better(best, value) else ""
            row = [f"{md(key)}{goal_mark(goal)}", metric_text(value) + mark,
                   "" if best is None else f"{metric_text(best)} of {count} runs"]
            if baseline is not None:
                other = baseline.metrics.get(key)
                row.append(delta(value, None if other is None else run_value(other, goal), goal))
            rows.append(row)
        out += ["", *_table(header, rows, ["---"] + ["---:"] * (len(header) - 1))]
        out += ["", LEGEND + (f" · {INFERRED}" if inferred else "")]
    if rec.params:
        out += ["", "<details><summary>params</summary>", ""]
        out += _table(["param", "value"], [[md(k), md(v)] for k, v in rec.params.items()], ["---", "---"])
        out += ["", "</details>"]
    return "\n".join(out) + "\n"


def log_markdown(frame: pd.DataFrame, goal: Goal | None) -> str:
    """``labbook log`` as a release note: commits newest first with their runs; with a metric,
    its best value at each commit, the overall best ★ and the Δ against the oldest commit."""
    columns = list(frame.columns)
    metric = columns[3] if len(columns) > 3 else None
    values = [None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)
              for v in (frame[metric] if metric else [])]
    known = [v for v in values if v is not None]
    best = goal.best(known) if goal is not None and metric else None
    base = known[-1] if known else None  # the oldest commit with a value
    header = ["commit", "subject", "runs"]
    if metric:
        header += [f"{md(metric)}{goal_mark(goal or NO_GOAL)}", "Δ vs oldest"]
    rows = []
    for i, (commit, subject, runs) in enumerate(zip(frame["commit"], frame["subject"], frame["runs"],
                                                    strict=True)):
        row = [f"`{commit}`", md(subject), str(runs)]
        if metric:
            value = values[i]
            row.append("" if value is None else metric_text(value) + (" ★" if value == best else ""))
            row.append(delta(value, base, goal or NO_GOAL))
        rows.append(row)
    out = _table(header, rows, ["---", "---", "---:"] + ["---:"] * (2 if metric else 0))
    if metric:
        out += ["", LEGEND.replace("the baseline", "the oldest commit")]
    return "\n".join(out) + "\n"
