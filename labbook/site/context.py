"""View models of the journal site: pure functions from plain run records to dicts.

Nothing here reads files or git; ``build`` hands in the records (plain dicts as
``Catalog.records`` gives them), the experiments and, for the runs it needs, the
metric histories. Every URL made here is relative to the site root, where every
page lives (pages are flat: ``run-<id>.html``, ``exp-<slug>.html``), and built
only from checked ids, so templates can put them in attributes as they are.
"""

from __future__ import annotations

import hashlib
import math
import re
import shlex
from collections.abc import Iterable
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from ..format import goals as goal_rules
from ..format.record import metric_specs_from_plain

PAGE_SIZE = 50
MAX_POINTS = 1000
_SAFE_ID = re.compile(r"^[A-Za-z0-9_-]{1,80}$")
_SAFE_PART = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._ +-]{0,120}$")
_SHA = re.compile(r"^[0-9a-f]{7,64}$")
IMAGE_TYPES = {"png", "jpg", "jpeg", "gif", "webp"}
TEXT_TYPES = {"txt", "csv", "tsv", "json", "log", "md", "yaml", "yml", "py", "toml", "ini", "diff"}
WEB_HOSTS = ("github", "gitlab", "codeberg", "bitbucket", "gitea", "sr.ht")


class GoalBook:
    """Each experiment's metric goals: declared in ``experiments/<slug>.yaml``, else inferred
    from the name (see labbook.format.goals); the site's one answer to "which way is better"."""

    def __init__(self, experiments: dict[str, dict[str, Any]] | None = None) -> None:
        self._specs = {slug: metric_specs_from_plain((data or {}).get("metrics"))
                       for slug, data in (experiments or {}).items()}
        self._cache: dict[tuple[str, str], goal_rules.Goal] = {}

    def goal(self, slug: str, key: str) -> goal_rules.Goal:
        """The goal of metric ``key`` in experiment ``slug``."""
        found = self._cache.get((slug, key))
        if found is None:
            found = self._cache[(slug, key)] = goal_rules.goal_of(key, self._specs.get(slug))
        return found

    def word(self, slug: str, key: str) -> str:
        """'max', 'min', or '' when the metric has no known goal (no best, no better or worse)."""
        goal = self.goal(slug, key)
        return "" if goal.goal is None else ("max" if goal.goal == goal_rules.MAXIMIZE else "min")

    def fingerprint(self, slug: str) -> str:
        """What a cached page must be rebuilt for when it changes: the declared specs."""
        return repr(sorted((k, v.to_plain()) for k, v in self._specs.get(slug, {}).items()))


INFERRED_ONLY = GoalBook()


# -- ids and URLs -------------------------------------------------------------
def page_id(run_id: str) -> str:
    """The run id if it is safe in a file name, else a hash of it."""
    if _SAFE_ID.match(run_id):
        return run_id
    return "h" + hashlib.sha256(run_id.encode()).hexdigest()[:32]


def run_page(run_id: str) -> str:
    return f"run-{page_id(run_id)}.html"


def run_script(run_id: str) -> str:
    return f"data/run-{page_id(run_id)}.js"


def experiment_page(slug: str) -> str:
    return f"exp-{page_id(slug)}.html"


def experiment_data(slug: str) -> str:
    return f"data/exp-{page_id(slug)}.js"


def journal_page(number: int) -> str:
    return "index.html" if number == 0 else f"journal-{number}.html"


def artifact_target(run_id: str, path: str, kind: str) -> str:
    """Where an artifact is copied in the site: a checked path, else one named by a hash."""
    parts = path.split("/")
    if all(_SAFE_PART.match(p) and ".." not in p for p in parts) and len(parts) <= 8:
        safe = "/".join(parts)
    else:
        safe = hashlib.sha256(path.encode()).hexdigest()[:24]
    if kind not in ("image", "text"):
        safe += ".txt"  # never served as HTML/SVG/script from the site's origin
    return f"artifacts/{page_id(run_id)}/{safe}"


def artifact_kind(path: str, size: int) -> str:
    """How the site shows an artifact: image, svg (only through <img>), text or download."""
    ext = path.rsplit(".", 1)[-1].lower() if "." in path.rsplit("/", 1)[-1] else ""
    if ext in IMAGE_TYPES:
        return "image"
    if ext == "svg" and size <= 512 * 1024:
        return "svg"
    if ext in TEXT_TYPES:
        return "text"
    return "download"


def commit_url(remote: str | None, commit: str | None) -> str | None:
    """A web link to the commit when the remote is a GitHub/GitLab-like https URL."""
    if not remote or not commit or not _SHA.match(commit):
        return None
    if remote.startswith("git@") and ":" in remote:
        host, _, rest = remote[4:].partition(":")
        remote = f"https://{host}/{rest}"
    parts = urlsplit(remote)
    host = parts.hostname or ""
    path = parts.path.removesuffix(".git").strip("/")
    if parts.scheme != "https" or not any(w in host for w in WEB_HOSTS) or path.count("/") < 1:
        return None
    if not re.match(r"^[A-Za-z0-9._~/-]+$", path) or not re.match(r"^[A-Za-z0-9.-]+$", host):
        return None
    return f"https://{host}/{path}/commit/{commit}"


def clean_remote(remote: str | None) -> str | None:
    """The remote URL without user:password@ (never publish credentials)."""
    if not remote:
        return remote
    return re.sub(r"^([a-z+]+://)[^/@]*@", r"\1", remote)


# -- values -------------------------------------------------------------------
def fmt_value(value: Any) -> str:
    """A param, tag or metric value as text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return fmt_num(value)
    if value is None:
        return "null"
    return str(value)


def fmt_num(value: float | None) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return "NaN" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if value != 0 and (abs(value) >= 1e6 or abs(value) < 1e-3):
        return f"{value:.4g}"
    return f"{value:.6g}" if abs(value) >= 100 else f"{value:.4g}"


def finite(value: Any) -> float | None:
    """A JSON-safe number (NaN and infinities become None)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def table_number(value: Any) -> float | str | None:
    """A metric for the experiment table: a number, "NaN", "inf" or "-inf" (visible, never
    blank like a metric the run did not log), or None when missing."""
    if isinstance(value, float) and not math.isfinite(value):
        return fmt_num(value)
    return finite(value)


def json_value(value: Any) -> Any:
    """A param/tag value as JSON can carry it (numbers stay numbers)."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return finite(value) if isinstance(value, float) else value
    return fmt_value(value)


def day_of(moment: str | None) -> str:
    return (moment or "")[:10] or "undated"


def clock_of(moment: str | None) -> str:
    return (moment or "")[11:16]


def duration(start: str | None, end: str | None) -> str:
    try:
        seconds = (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return ""
    if seconds < 60:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.1f} min" if seconds < 3600 else f"{seconds / 3600:.1f} h"


# -- the notebook as a whole ----------------------------------------------------
def live(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Runs that are not deleted, oldest first (ties broken by id, so the order is stable)."""
    return sorted((r for r in records if not r.get("deleted")),
                  key=lambda r: (r.get("start_time") or "", r["id"]))


def experiment_names(experiments: dict[str, dict[str, Any]], runs: list[dict[str, Any]]) -> dict[str, str]:
    names = {slug: e.get("name") or slug for slug, e in experiments.items()}
    for run in runs:
        names.setdefault(run["experiment"], run["experiment"])
    return names


def previous_runs(runs: list[dict[str, Any]]) -> dict[str, dict[str, Any] | None]:
    """Each run's predecessor: its parent if it has one, else the experiment's previous run."""
    by_id = {r["id"]: r for r in runs}
    last: dict[str, dict[str, Any]] = {}
    found: dict[str, dict[str, Any] | None] = {}
    for run in runs:
        parent = by_id.get(run.get("parent") or "")
        found[run["id"]] = parent or last.get(run["experiment"])
        if not run.get("parent"):
            last[run["experiment"]] = run
    return found


def best_before(runs: list[dict[str, Any]], book: GoalBook = INFERRED_ONLY
                ) -> dict[str, dict[str, float]]:
    """Per run, the experiment's best value of each metric with a goal among the runs before it."""
    best: dict[str, dict[str, float]] = {}
    out = {}
    for run in runs:
        current = best.setdefault(run["experiment"], {})
        out[run["id"]] = dict(current)
        for key, summary in (run.get("metrics") or {}).items():
            value = finite(summary.get("last"))
            if value is None:
                continue
            goal = book.word(run["experiment"], key)
            if not goal:
                continue
            old = current.get(key)
            better = max if goal == "max" else min
            current[key] = value if old is None else better(old, value)
    return out


def changed_params(run: dict[str, Any], before: dict[str, Any] | None) -> list[dict[str, str]]:
    if before is None:
        return []
    mine, theirs = run.get("params") or {}, before.get("params") or {}
    out = []
    for key in sorted(set(mine) | set(theirs)):
        if key not in mine or key not in theirs or mine[key] != theirs[key]:
            out.append({"key": key, "old": fmt_value(theirs[key]) if key in theirs else "(unset)",
                        "new": fmt_value(mine[key]) if key in mine else "(unset)"})
    return out


def metric_deltas(run: dict[str, Any], best: dict[str, float],
                  book: GoalBook = INFERRED_ONLY) -> list[dict[str, Any]]:
    """Each metric's value, and its change against the best before it where it has a goal."""
    out = []
    for key, summary in (run.get("metrics") or {}).items():
        value = finite(summary.get("last"))
        ref = best.get(key)
        goal = book.word(run["experiment"], key)
        item = {"key": key, "value": fmt_num(summary.get("last")), "delta": "", "trend": "", "goal": goal,
                "inferred": bool(goal) and not book.goal(run["experiment"], key).declared}
        if value is not None and ref is not None:
            delta = value - ref
            improved = delta > 0 if goal == "max" else delta < 0
            pct = f" ({delta / abs(ref):+.1%})" if ref else ""
            item["delta"] = f"{delta:+.4g}{pct}"
            item["trend"] = "better" if improved else ("same" if delta == 0 else "worse")
        out.append(item)
    return out


def code_view(run: dict[str, Any]) -> dict[str, Any]:
    code = run.get("code") or {}
    commit = code.get("commit")
    return {"commit": commit, "short": (commit or "")[:10], "url": commit_url(code.get("remote"), commit),
            "branch": code.get("branch"), "remote": clean_remote(code.get("remote")),
            "dirty": bool(code.get("dirty")), "cwd": code.get("cwd")}


def journal_entry(run: dict[str, Any], before: dict[str, Any] | None, best: dict[str, float],
                  names: dict[str, str], book: GoalBook = INFERRED_ONLY) -> dict[str, Any]:
    """One notebook entry: who, when, why, what changed, what came out, what it means."""
    conclusion = run.get("conclusion") or {}
    return {
        "id": run["id"], "page": run_page(run["id"]), "name": run["name"],
        "experiment": names.get(run["experiment"], run["experiment"]),
        "experiment_page": experiment_page(run["experiment"]),
        "user": run.get("user") or "", "day": day_of(run.get("start_time")),
        "clock": clock_of(run.get("start_time")), "status": run.get("status", ""),
        "hypothesis": run.get("hypothesis") or "",
        "changed": changed_params(run, before),
        "changed_from": None if before is None else
        ("parent" if before["id"] == run.get("parent") else "previous run"),
        "before_name": before["name"] if before else "",
        "before_page": run_page(before["id"]) if before else "",
        "metrics": metric_deltas(run, best, book),
        "verdict": conclusion.get("verdict") or "", "conclusion": conclusion.get("text") or "",
        "notes": [n.get("text") or "" for n in run.get("notes") or []],
        "code": code_view(run),
    }


def journal_pages(entries: list[dict[str, Any]], size: int = PAGE_SIZE) -> list[dict[str, Any]]:
    """The home page (newest ``size`` entries) and archive pages of fixed chunks, oldest chunk 1.

    Archive chunks are counted from the oldest run, so a new run changes only the home
    page and the newest chunk; older pages keep their bytes and are not rewritten.
    """
    chunks = [entries[i:i + size] for i in range(0, len(entries), size)]
    count = len(chunks)
    pages = [{"number": 0, "path": journal_page(0), "entries": entries[::-1][:size]}]
    pages += [{"number": n, "path": journal_page(n), "entries": chunk[::-1]}
              for n, chunk in enumerate(chunks, start=1)]
    links = [{"number": n, "path": journal_page(n),
              "label": f"{chunks[n - 1][0]['day']} … {chunks[n - 1][-1]['day']}"}
             for n in range(count, 0, -1)]
    for page in pages:
        page["days"] = _by_day(page["entries"])
        page["archive"] = links if page["number"] == 0 else []  # only home changes as chunks grow
        number = page["number"]
        older = count - 1 if number == 0 and len(entries) > size else number - 1
        page["older"] = journal_page(older) if older >= 1 else None
        page["newer"] = None if number == 0 else journal_page(number + 1 if number < count else 0)
    return pages


def _by_day(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    days: list[dict[str, Any]] = []
    for entry in entries:
        if not days or days[-1]["day"] != entry["day"]:
            days.append({"day": entry["day"], "entries": []})
        days[-1]["entries"].append(entry)
    return days


def journal(runs: list[dict[str, Any]], names: dict[str, str],
            book: GoalBook = INFERRED_ONLY) -> list[dict[str, Any]]:
    """Every journal page of the notebook (runs oldest first, as ``live`` gives them)."""
    before, best = previous_runs(runs), best_before(runs, book)
    entries = [journal_entry(r, before[r["id"]], best[r["id"]], names, book) for r in runs]
    return journal_pages(entries)


# -- runs -------------------------------------------------------------------------
def run_view(run: dict[str, Any], names: dict[str, str], related: dict[str, Any],
             history: list[tuple[str, int, int, float]], extras: dict[str, Any],
             book: GoalBook = INFERRED_ONLY) -> dict[str, Any]:
    """Every field of one run, for its page.

    ``related`` holds the parent record (or None) and the children records; ``extras``
    what the builder read from the branch: ``diff`` text, ``packages`` and the
    ``artifacts`` list (each with its site ``href`` or None, and a ``preview``).
    """
    conclusion = run.get("conclusion") or {}
    env = run.get("environment") or {}
    parent = related.get("parent")
    return {
        "id": run["id"], "page": run_page(run["id"]), "name": run["name"], "status": run.get("status"),
        "experiment": names.get(run["experiment"], run["experiment"]),
        "experiment_page": experiment_page(run["experiment"]),
        "start": run.get("start_time") or "", "end": run.get("end_time") or "",
        "duration": duration(run.get("start_time"), run.get("end_time")),
        "user": run.get("user") or "", "host": run.get("host") or "",
        "hypothesis": run.get("hypothesis") or "",
        "params": [(k, fmt_value(v)) for k, v in sorted((run.get("params") or {}).items())],
        "tags": [(k, fmt_value(v)) for k, v in sorted((run.get("tags") or {}).items())],
        "metrics": [{"key": k, "last": fmt_num(s.get("last")), "min": fmt_num(s.get("min")),
                     "max": fmt_num(s.get("max")), "step": s.get("step"), "count": s.get("count"),
                     "goal": book.word(run["experiment"], k)}
                    for k, s in sorted((run.get("metrics") or {}).items())],
        "history": history_series(history),
        "notes": [{"time": n.get("time") or "", "author": n.get("author") or "", "text": n.get("text") or ""}
                  for n in run.get("notes") or []],
        "verdict": conclusion.get("verdict") or "", "conclusion": conclusion.get("text") or "",
        "error": run.get("error") or "",
        "command": shlex.join(str(c) for c in run.get("command") or []),
        "code": code_view(run), "diff": diff_lines(extras.get("diff")),
        "environment": {"python": env.get("python"), "platform": env.get("platform"),
                        "packages": extras.get("packages") or []},
        "artifacts": extras.get("artifacts") or [],
        "conflicts": [{"field": c.get("field"), "value": fmt_value(c.get("value"))}
                      for c in run.get("conflicts") or []],
        "parent": {"name": parent["name"], "page": run_page(parent["id"])} if parent else None,
        "children": [{"name": c["name"], "page": run_page(c["id"]), "status": c.get("status"),
                      "verdict": (c.get("conclusion") or {}).get("verdict") or ""}
                     for c in related.get("children") or []],
    }


def diff_lines(text: str | None) -> list[tuple[str, str]]:
    """A unified diff as (css class, line) pairs."""
    if not text:
        return []
    out = []
    for line in text.splitlines()[:5000]:
        if line.startswith(("+++", "---", "diff ", "index ")):
            kind = "meta"
        elif line.startswith("@@"):
            kind = "hunk"
        else:
            kind = {"+": "add", "-": "del"}.get(line[:1], "ctx")
        out.append((kind, line))
    return out


def history_series(rows: list[tuple[str, int, int, float]]) -> dict[str, list[list[float]]]:
    """metric → [[step, value], …] (non-finite values dropped, long series thinned)."""
    series: dict[str, list[list[float]]] = {}
    for key, step, _ts, value in rows:
        if math.isfinite(value):
            series.setdefault(key, []).append([step, value])
    for key, points in series.items():
        points.sort(key=lambda p: p[0])
        if len(points) > MAX_POINTS:
            stride = math.ceil(len(points) / MAX_POINTS)
            series[key] = points[::stride] + ([points[-1]] if (len(points) - 1) % stride else [])
    return series


def run_data(run: dict[str, Any], names: dict[str, str],
             history: list[tuple[str, int, int, float]], book: GoalBook = INFERRED_ONLY) -> dict[str, Any]:
    """What the compare page and the charts need of one run (a generated .js file)."""
    return {
        "id": run["id"], "name": run["name"], "page": run_page(run["id"]),
        "experiment": names.get(run["experiment"], run["experiment"]),
        "params": {k: json_value(v) for k, v in (run.get("params") or {}).items()},
        "metrics": {k: {"last": finite(s.get("last")), "min": finite(s.get("min")),
                        "max": finite(s.get("max")), "goal": book.word(run["experiment"], k)}
                    for k, s in (run.get("metrics") or {}).items()},
        "history": history_series(history),
    }


# -- experiments ----------------------------------------------------------------------
BASE_COLUMNS = ["run_name", "status", "user", "start_time", "verdict"]


def experiment_table(runs: list[dict[str, Any]], book: GoalBook = INFERRED_ONLY) -> dict[str, Any]:
    """An experiment's runs as columns + rows (for the table script), parents before children."""
    params = sorted({k for r in runs for k in r.get("params") or {}})
    metrics = sorted({k for r in runs for k in r.get("metrics") or {}})
    tags = sorted({k for r in runs for k in r.get("tags") or {}})
    columns = BASE_COLUMNS + [f"params.{k}" for k in params] + [f"metrics.{k}" for k in metrics] \
        + [f"tags.{k}" for k in tags]
    ids = {r["id"] for r in runs}
    rows = []
    for run in runs:
        base = [run["name"], run.get("status"), run.get("user"), run.get("start_time"),
                (run.get("conclusion") or {}).get("verdict")]
        p, m, t = run.get("params") or {}, run.get("metrics") or {}, run.get("tags") or {}
        values = base + [json_value(p.get(k)) for k in params] \
            + [table_number((m.get(k) or {}).get("last")) for k in metrics] \
            + [json_value(t.get(k)) for k in tags]
        parent = run.get("parent") if run.get("parent") in ids else None
        rows.append({"id": run["id"], "page": run_page(run["id"]), "data": run_script(run["id"]),
                     "parent": parent, "values": values})
    slug = runs[0].get("experiment", "") if runs else ""
    goals = {f"metrics.{k}": book.word(slug, k) for k in metrics}
    return {"columns": columns, "goals": {c: g for c, g in goals.items() if g}, "rows": rows,
            "default_metric": _default_metric(runs, metrics),
            "history_metric": _default_metric(runs, metrics, over_steps=True)}


def _default_metric(runs: list[dict[str, Any]], metrics: list[str], over_steps: bool = False) -> str | None:
    """The metric most runs have (a loss-like name wins a tie); with ``over_steps``, the
    one most runs logged more than once (what a history chart shows), if any run did."""
    if not metrics:
        return None
    least = 2 if over_steps else 1
    count = {k: sum(1 for r in runs if ((r.get("metrics") or {}).get(k) or {}).get("count", 1) >= least)
             for k in metrics}
    if not any(count.values()):
        return _default_metric(runs, metrics)
    usual = ("loss", "val_loss", "mse", "rmse", "accuracy", "r2")
    return "metrics." + max(metrics, key=lambda k: (count[k], k.lower() in usual))


def experiment_view(slug: str, experiment: dict[str, Any], runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The page of one experiment; the rows themselves go to its data script."""
    verdicts: dict[str, int] = {}
    for run in runs:
        verdict = (run.get("conclusion") or {}).get("verdict")
        if verdict:
            verdicts[verdict] = verdicts.get(verdict, 0) + 1
    return {"slug": slug, "name": experiment.get("name") or slug, "page": experiment_page(slug),
            "data": experiment_data(slug), "question": experiment.get("description") or "",
            "created": experiment.get("created") or "", "count": len(runs),
            "last": max((r.get("start_time") or "" for r in runs), default=""),
            "verdicts": sorted(verdicts.items())}


def runs_by_experiment(runs: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        found.setdefault(run["experiment"], []).append(run)
    return found


# -- search ---------------------------------------------------------------------------
def handles(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """What the compare page needs to turn names and short ids into runs: every id, and
    name → ids, newest first (``data/handles.js``, loaded only when a link uses them)."""
    newest = sorted(runs, key=lambda r: (r.get("start_time") or "", r["id"]), reverse=True)
    names: dict[str, list[str]] = {}
    for run in newest:
        names.setdefault(str(run["name"]), []).append(run["id"])
    return {"ids": [r["id"] for r in newest], "names": names}


def search_index(runs: list[dict[str, Any]], names: dict[str, str]) -> list[list[str]]:
    """[page, name, experiment, text to match] per run, newest first."""
    out = []
    for run in reversed(runs):
        parts = [run["name"], run.get("hypothesis") or ""]
        parts += [f"{k}={fmt_value(v)}" for k, v in (run.get("params") or {}).items()]
        parts += [f"{k}={fmt_value(v)}" for k, v in (run.get("tags") or {}).items()]
        parts += [(n.get("text") or "")[:400] for n in run.get("notes") or []]
        parts.append(((run.get("conclusion") or {}).get("text") or "")[:400])
        out.append([run_page(run["id"]), run["name"], names.get(run["experiment"], run["experiment"]),
                    " \n".join(p for p in parts if p)])
    return out
