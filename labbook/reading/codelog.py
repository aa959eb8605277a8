"""``labbook log``: the code's history with the runs made at each commit, side by side."""

from __future__ import annotations

import pandas as pd

from ..errors import InvalidValue
from ..runs.repository import Repository
from . import query


def code_log(repo: Repository, rev_range: str = "HEAD", metric: str | None = None,
             mode: str | None = None, limit: int | None = 50) -> pd.DataFrame:
    """One row per code commit of ``rev_range`` (newest first): commit, subject, the number of
    runs made at it and, with ``metric``, their best value by the metric's goal (``mode``
    "max"/"min" overrides it)."""
    if mode not in (None, "min", "max"):
        raise InvalidValue(f"mode {mode!r} is not min or max")
    if not rev_range or rev_range.startswith("-"):
        raise InvalidValue(f"{rev_range!r} is not a revision range")
    count = [] if limit is None else [f"--max-count={int(limit)}"]
    proc = repo.git.run(["log", *count, "--format=%H%x09%s", "--end-of-options", rev_range, "--"],
                        check=False)
    if proc.returncode != 0:
        detail = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise InvalidValue(f"{rev_range!r} is not a revision range of this repository"
                           + (f": {detail[-1]}" if detail else ""))
    commits = [line.split("\t", 1) for line in proc.stdout.decode("utf-8", "replace").splitlines()]
    runs = query.runs_frame(repo)
    column = f"metrics.{metric}" if metric else None
    counts = runs.groupby("code_commit").size() if len(runs) else pd.Series(dtype=int)
    best = None
    heading = ""
    if column is not None and metric is not None:
        goal = query.metric_goal(repo, metric, None, mode)
        values = runs[["code_commit", column]].dropna() if column in runs else runs.iloc[0:0]
        if len(values) and not goal.known:
            raise query.no_goal_error(metric)
        grouped = values.groupby("code_commit")[column] if len(values) else None
        best = None if grouped is None else (grouped.max() if goal.sort_descending else grouped.min())
        heading = f"best {metric}"
    rows = []
    for sha, subject in ((c[0], c[1] if len(c) > 1 else "") for c in commits):
        row = {"commit": sha[:12], "subject": subject, "runs": int(counts.get(sha, 0))}
        if column is not None:
            row[heading] = None if best is None else best.get(sha)
        rows.append(row)
    columns = ["commit", "subject", "runs"] + ([heading] if column else [])
    return pd.DataFrame(rows, columns=columns)
