"""Every benchmark in one command, then one summary: benchmarks/results/summary.md.

    .venv/bin/python benchmarks/run_all.py                     # everything, full size (`make bench`)
    .venv/bin/python benchmarks/run_all.py --quick             # smoke test (`make bench-quick`)
    .venv/bin/python benchmarks/run_all.py --only logging,query
    .venv/bin/python benchmarks/run_all.py --skip concurrency --quick

Runs, in this order, each in its own process with --quick passed through:
logging, query, concurrency, site, storage, sync, mlflow_compat
(benchmarks/bench_<name>.py). Each writes results/<name>.md and results/<name>.json;
their output is echoed and kept in results/<name>.log. MLflow, which several compare
against, is installed first into benchmarks/.venv-mlflow if it is not there.

The summary holds the machine (CPU, cores, Python, git, MLflow and labbook versions,
load average), the exact command, the start time and duration, a headline section
with every figure that has a target and whether it was met, then each benchmark's
own table. A benchmark that fails (non-zero exit, or no fresh results/<name>.json)
is recorded in the summary and the others still run; the exit status is then 1.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_logging import DEFAULT_VENV, ensure_mlflow, load_average, machine_info, machine_line  # noqa: E402

RESULTS = HERE / "results"
BENCHMARKS = ["logging", "query", "concurrency", "site", "storage", "sync", "mlflow_compat"]


@dataclass
class Outcome:
    """What one benchmark did."""

    name: str
    argv: list[str]
    seconds: float = 0.0
    exit: int | None = None
    problem: str = ""
    markdown: str = ""
    rows: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problem


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="pass --quick to every benchmark")
    p.add_argument("--only", help=f"run only these, comma separated: {','.join(BENCHMARKS)}")
    p.add_argument("--skip", help="run all but these, comma separated")
    p.add_argument("--list", action="store_true", help="print the benchmarks and exit")
    p.add_argument("--summary", type=Path, default=RESULTS / "summary.md",
                   help="where the summary goes (default: benchmarks/results/summary.md)")
    args = p.parse_args(argv)

    def names(text: str | None, default: list[str]) -> list[str]:
        if text is None:
            return default
        out = [n.strip().removeprefix("bench_").removesuffix(".py").replace("-", "_")
               for n in text.split(",") if n.strip()]
        unknown = [n for n in out if n not in BENCHMARKS]
        if unknown:
            p.error(f"unknown benchmark {', '.join(unknown)}: choose from {', '.join(BENCHMARKS)}")
        return out

    only = set(names(args.only, BENCHMARKS))
    skip = set(names(args.skip, []))
    args.selected = [n for n in BENCHMARKS if n in only and n not in skip]
    if not args.selected:
        p.error("nothing left to run")
    return args


def run_one(name: str, quick: bool) -> Outcome:
    """Run bench_<name>.py, echoing its output into results/<name>.log; read its results."""
    argv = [sys.executable, str(HERE / f"bench_{name}.py"), *(["--quick"] if quick else [])]
    outcome = Outcome(name, argv)
    print(f"\n=== {name}: {shlex.join(argv)}", flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    log_path = RESULTS / f"{name}.log"
    began_wall = time.time()
    began = time.perf_counter()
    with open(log_path, "w") as log:
        try:
            proc = subprocess.Popen(argv, cwd=HERE.parent, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True, errors="replace",
                                    env={**os.environ, "PYTHONUNBUFFERED": "1"})
        except OSError as exc:
            outcome.problem = f"could not start: {exc}"
            return outcome
        assert proc.stdout is not None
        for line in proc.stdout:
            sys.stdout.write(line)
            sys.stdout.flush()
            log.write(line)
        outcome.exit = proc.wait()
    outcome.seconds = time.perf_counter() - began
    read_results(outcome, began_wall)
    if outcome.exit != 0:
        outcome.problem = f"exit status {outcome.exit}" + (f"; {outcome.problem}" if outcome.problem else "")
    state = "ok" if outcome.ok else f"FAILED ({outcome.problem})"
    print(f"=== {name}: {state} in {outcome.seconds / 60:.1f} min", flush=True)
    return outcome


def read_results(outcome: Outcome, since: float) -> None:
    """The benchmark's fresh results/<name>.json and .md (stale files from an earlier run do not count)."""
    path = RESULTS / f"{outcome.name}.json"
    md = RESULTS / f"{outcome.name}.md"
    if md.exists() and md.stat().st_mtime >= since - 1:
        outcome.markdown = md.read_text()
    if not path.exists() or path.stat().st_mtime < since - 1:
        outcome.problem = f"it wrote no fresh results/{outcome.name}.json"
        return
    try:
        data = json.loads(path.read_text())
        outcome.rows = [r for r in data["rows"] if isinstance(r, dict) and "figure" in r]
    except (ValueError, KeyError, TypeError) as exc:
        outcome.problem = f"results/{outcome.name}.json does not read: {exc}"


# -- the summary -------------------------------------------------------------------------------
def versions(mlflow_python: Path | None) -> dict[str, str]:
    out = {"labbook": "?", "mlflow": "not installed"}
    with contextlib.suppress(importlib.metadata.PackageNotFoundError):
        out["labbook"] = importlib.metadata.version("labbook")
    if mlflow_python is not None:
        proc = subprocess.run([str(mlflow_python), "-c", "import importlib.metadata as m; "
                               "print(m.version('mlflow'))"], capture_output=True, text=True)
        out["mlflow"] = proc.stdout.strip() or "?"
    return out


def number(value: Any) -> str:
    if not isinstance(value, int | float):
        return "—"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 10 or value == int(value):
        return f"{value:.1f}".removesuffix(".0")
    return f"{value:.3g}"


def met_text(met: Any) -> str:
    return "yes" if met is True else "**no**" if met is False else "—"


def demote(markdown: str) -> str:
    """A benchmark's own markdown, its headings moved under the summary's."""
    return "\n".join("###" + line if line.startswith("#") else line for line in markdown.splitlines())


def summary(args: argparse.Namespace, outcomes: list[Outcome], info: dict[str, str],
            tools: dict[str, str], started: str, took_s: float, loads: tuple[str, str]) -> str:
    failed = [o for o in outcomes if not o.ok]
    lines = [
        "# labbook benchmarks — summary", "",
        f"- command: `{shlex.join([sys.executable, *sys.argv])}`",
        f"- started {started}, took {took_s / 60:.1f} min" + (" (--quick: smoke-test sizes, not "
                                                             "the figures to quote)" if args.quick else ""),
        "- benchmarks: " + ", ".join(f"{o.name} ({'ok' if o.ok else 'FAILED'}, {o.seconds / 60:.1f} min)"
                                      for o in outcomes), "",
        "| machine | |", "|---|---|",
        f"| CPU | {info.get('cpu', '?')} |", f"| cores (nproc) | {info.get('nproc', '?')} |",
        f"| platform | {info.get('platform', '?')} |", f"| Python | {info.get('python', '?')} |",
        f"| git | {info.get('git', '?')} |", f"| labbook | {tools['labbook']} |",
        f"| MLflow | {tools['mlflow']} (benchmarks/.venv-mlflow) |",
        f"| load average before / after | {loads[0]} / {loads[1]} |", "",
        "## Headline: every figure with a target", "",
    ]
    headline = [(o.name, r) for o in outcomes for r in o.rows if r.get("target")]
    if headline:
        lines += ["| benchmark | figure | value | target | met |", "|---|---|---:|---|---|"]
        lines += [f"| {name} | {r['figure']} | {number(r.get('value'))} {r.get('unit', '')} | "
                  f"{r['target']} | {met_text(r.get('met'))} |" for name, r in headline]
        missed = sum(r.get("met") is False for _, r in headline)
        lines += ["", f"{len(headline) - missed} of {len(headline)} targets met."]
    else:
        lines.append("No figure with a target was produced.")
    if failed:
        lines += ["", "## Failed", ""]
        for o in failed:
            lines += [f"### {o.name}: {o.problem}", "", f"`{shlex.join(o.argv)}` — last lines of "
                      f"results/{o.name}.log:", "", "```", *log_tail(o.name), "```", ""]
    for o in outcomes:
        lines += ["", f"## {o.name}" + ("" if o.ok else " (failed)"), "",
                  f"`{shlex.join(o.argv)}` · {o.seconds / 60:.1f} min", ""]
        lines.append(demote(o.markdown) if o.markdown else "(no table written)")
    return "\n".join(lines) + "\n"


def log_tail(name: str, count: int = 15) -> list[str]:
    path = RESULTS / f"{name}.log"
    return path.read_text(errors="replace").splitlines()[-count:] if path.exists() else []


def main() -> int:
    args = parse_args()
    if args.list:
        print("\n".join(BENCHMARKS))
        return 0
    began = time.perf_counter()
    started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    info = machine_info()
    load_before = load_average()
    print(f"{machine_line(info, load_before)}; running {', '.join(args.selected)}"
          + (" with --quick" if args.quick else ""), flush=True)
    mlflow_python: Path | None = None
    try:
        mlflow_python = ensure_mlflow(DEFAULT_VENV, "mlflow")
    except (OSError, subprocess.CalledProcessError) as exc:
        print(f"MLflow could not be installed ({exc}); the comparisons will fail", flush=True)
    tools = versions(mlflow_python)
    outcomes = [run_one(name, args.quick) for name in args.selected]
    text = summary(args, outcomes, info, tools, started, time.perf_counter() - began,
                   (load_before, load_average()))
    args.summary.parent.mkdir(parents=True, exist_ok=True)
    args.summary.write_text(text)
    failed = [o.name for o in outcomes if not o.ok]
    print(f"\nsummary: {args.summary}" + (f"; FAILED: {', '.join(failed)}" if failed else "; all ran"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
