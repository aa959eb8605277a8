"""search_runs over 1,000 / 10,000 / 100,000 runs: labbook cold and warm against MLflow's sqlite store.

    .venv/bin/python benchmarks/bench_query.py                  # 1,000, 10,000, 100,000 runs, 5 repetitions
    .venv/bin/python benchmarks/bench_query.py --quick          # 200 and 1,000 runs, 2 repetitions
    .venv/bin/python benchmarks/bench_query.py --sizes 10000 --reps 3 --workdir /tmp/bq
    .venv/bin/python benchmarks/bench_query.py --check-fill     # is the fast MLflow fill faithful?

Both stores hold the same runs (20 params, 10 metrics each, the same names, values
and start/end times). The query is a two-clause filter with an order_by. For each
size both stores are filled once (``--workdir`` keeps them for the next time), then
each repetition runs, each in a fresh process, in this order:

* labbook cold: no cache under .git/labbook/cache (a fresh clone);
* labbook warm: the cache is there and one more run was added since;
* ``labbook ls --limit 50`` as a whole command (process start included), warm;
* MLflow: the first search_runs in a fresh process, then a second one in it.

Both sides have imported pandas before the clock starts (``import mlflow`` does;
labbook loads it on the first read, so the worker imports ``labbook.reading.query`` first).
Each worker reports its peak RSS (``ru_maxrss``, the whole process) and its RSS just
before the search.

After the fill, the labbook repository is packed once with ``git gc``, as a fresh
clone of a teammate's notebook is (a clone arrives as one pack); ``--loose`` keeps the
fill as loose objects instead, the slow case of a repository nothing has packed. The
benchmark's git config sets ``gc.auto = 0`` so that no background ``git gc --auto``
(git's or labbook's end-of-run one) repacks in the middle of the measurements.

The labbook branch is filled through labbook's own ``BranchStore.commit`` (2,000
run records a commit; a few minutes at 100,000 runs). The MLflow store is created
with its experiment through MLflow, so its schema and migrations are MLflow's, and
the runs are then inserted with direct SQL (sqlite3 ``executemany``, one
transaction; see mlflow_query.py): through MLflow's API a run costs about 40 ms,
over an hour at 100,000 runs. ``--check-fill`` fills 1,000 runs both ways and
checks MLflow sees the same thing: identical search_runs DataFrames for the
benchmark query and for every run (run ids aside), and identical rows in runs,
tags, params, metrics and latest_metrics once run ids are replaced by names.

Results print as markdown and go to benchmarks/results/query.md and query.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_logging import clean_env, ensure_mlflow, load_average, machine_info  # noqa: E402

EXPERIMENT = "bench"
FILTER = "metrics.metric_1 < 0.5 and params.param_00 = 'choice-3'"
ORDER_BY = ["metrics.metric_2 DESC"]
START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z; run i starts i seconds later, ends a minute after
FILL_VERSION = "query-2"  # written in the fill stamps: change it when the runs change
FULL = {"sizes": "1000,10000,100000", "reps": 5}
QUICK = {"sizes": "200,1000", "reps": 2}
BATCH = 2_000  # labbook run records per commit when filling


# -- the runs (the same on both sides; mlflow_query.py imports these) --------------------
def run_values(i: int) -> tuple[str, dict, dict]:
    """The id, params and metric values of run number ``i`` (the same for both tools)."""
    rng = random.Random(i)
    rid = uuid.UUID(int=rng.getrandbits(128)).hex
    params = {f"param_{k:02d}": (f"choice-{rng.randint(0, 9)}" if k % 2 == 0 else round(rng.random(), 6))
              for k in range(20)}
    metrics = {f"metric_{k}": round(rng.random(), 6) for k in range(10)}
    return rid, params, metrics


def run_times(i: int) -> tuple[int, int]:
    """Start and end of run ``i`` in milliseconds since the epoch."""
    start = START_MS + i * 1000
    return start, start + 60_000


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms // 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{ms % 1000:03d}Z"


def rss_mib() -> float:
    """This process's resident set size now, in MiB (Linux; NaN elsewhere)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


# -- labbook workers (fresh processes) -----------------------------------------------------
def populate_labbook(repo: Path, count: int) -> None:
    """Commit ``count`` finished runs, BATCH per commit, through labbook's own store."""
    import labbook
    from labbook.format import record
    from labbook.format.record import MetricSummary, RunRecord
    from labbook.tracking import repository

    labbook.set_repository(repo)
    repo_obj = repository()
    repo_obj.ensure_experiment(EXPERIMENT)
    began = time.perf_counter()
    batch = {}
    for i in range(count):
        rid, params, metrics = run_values(i)
        start_ms, end_ms = run_times(i)
        rec = RunRecord(id=rid, name=f"run-{i}", experiment=EXPERIMENT, status="FINISHED",
                        start_time=iso(start_ms), end_time=iso(end_ms), params=params,
                        metrics={k: MetricSummary.first(v, 0, start_ms) for k, v in metrics.items()})
        batch[record.run_path(rid)] = record.run_to_yaml(rec)
        if len(batch) >= BATCH or i == count - 1:
            repo_obj.store.commit(batch, "bulk")
            batch = {}
            if (i + 1) % 10_000 == 0 or i == count - 1:
                print(f"  labbook fill: {i + 1:,} / {count:,} runs ({time.perf_counter() - began:.0f} s)",
                      file=sys.stderr, flush=True)


def labbook_query(repo: Path, cold: bool) -> dict:
    """Time one search_runs in this (fresh) process; note its memory."""
    import labbook
    if cold:
        shutil.rmtree(repo / ".git" / "labbook" / "cache", ignore_errors=True)
    labbook.set_repository(repo)
    from labbook.tracking import repository
    repository()  # open the repository (and recover nothing) before the clock starts
    import labbook.reading.query  # pandas loads here, as import mlflow loads it before its clock
    if not cold:
        with labbook.start_run(name="one-more"):
            labbook.log_metric("metric_1", 0.1)
    before = rss_mib()
    start = time.perf_counter()
    frame = labbook.search_runs(filter_string=FILTER, order_by=ORDER_BY)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "rows": len(frame), "names": frame["run_name"].tolist(),
            "rss_before_mib": before,
            "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            # the largest child: a forked parser of the cold read (or a git process)
            "peak_child_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}


# -- the parent ------------------------------------------------------------------------------
class Bench:
    """Fills the stores of one size and runs its repetitions."""

    def __init__(self, base: Path, size: int, env: dict[str, str], mlflow_python: Path | None,
                 pack: bool = True):
        self.size, self.env, self.mlflow_python, self.pack = size, env, mlflow_python, pack
        self.folder = base / f"runs-{size}"
        self.repo, self.db = self.folder / "repo", self.folder / "mlflow.db"
        self.fill_seconds: dict[str, float] = {}

    def labbook_worker(self, *extra: str, show_progress: bool = False) -> dict:
        argv = [sys.executable, str(Path(__file__).resolve()), "--worker", str(self.repo), *extra]
        out = subprocess.run(argv, stdout=subprocess.PIPE, stderr=None if show_progress else subprocess.PIPE,
                             text=True, env=self.env, cwd=self.repo)
        if out.returncode:
            raise SystemExit(f"labbook worker {extra} failed:\n{out.stderr}")
        return json.loads(out.stdout.strip().splitlines()[-1])

    def mlflow_worker(self, *extra: str, show_progress: bool = False) -> dict:
        return mlflow_worker(self.mlflow_python, self.folder, self.env, *extra, show_progress=show_progress)

    def fill(self) -> None:
        """Fill what is not filled yet (a stamp says which fill made a store)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        stamp = self.folder / "labbook.filled"
        if not stamp_ok(stamp):
            shutil.rmtree(self.repo, ignore_errors=True)
            subprocess.run(["git", "init", "-q", str(self.repo)], check=True, env=self.env)
            print(f"filling a labbook branch with {self.size:,} runs …", flush=True)
            started = time.perf_counter()
            self.labbook_worker("populate", str(self.size), show_progress=True)
            self.fill_seconds["labbook"] = time.perf_counter() - started
            stamp.write_text(FILL_VERSION + "\n")
            (self.folder / "labbook.packed").unlink(missing_ok=True)
        packed = self.folder / "labbook.packed"
        if self.pack and not packed.exists():
            print(f"packing the {self.size:,}-run repository (git gc), as a fresh clone is …", flush=True)
            subprocess.run(["git", "-C", str(self.repo), "gc", "--quiet"], check=True, env=self.env)
            packed.touch()
        stamp = self.folder / "mlflow.filled"
        if self.mlflow_python and not stamp_ok(stamp):
            self.db.unlink(missing_ok=True)
            shutil.rmtree(self.folder / "mlruns", ignore_errors=True)
            print(f"filling MLflow's sqlite store with {self.size:,} runs (direct SQL) …", flush=True)
            self.fill_seconds["mlflow"] = self.mlflow_worker("fill-sql", str(self.db), str(self.size),
                                                             show_progress=True)["seconds"]
            stamp.write_text(FILL_VERSION + "\n")

    def time_ls(self) -> tuple[float, float]:
        """Seconds and peak MiB of ``labbook ls --limit 50``, the whole process."""
        with tempfile.TemporaryFile("w+") as err:
            started = time.perf_counter()
            proc = subprocess.Popen([sys.executable, "-m", "labbook", "ls", "--limit", "50"], cwd=self.repo,
                                    env=self.env, stdout=subprocess.DEVNULL, stderr=err, text=True)
            _, status, usage = os.wait4(proc.pid, 0)
            seconds = time.perf_counter() - started
            proc.returncode = os.waitstatus_to_exitcode(status)
            if proc.returncode:
                err.seek(0)
                raise SystemExit(f"labbook ls failed:\n{err.read()}")
        return seconds, usage.ru_maxrss / 1024

    def repetition(self) -> dict:
        """labbook cold, labbook warm, labbook ls, MLflow: each a fresh process."""
        cold, warm = self.labbook_worker("cold"), self.labbook_worker("warm")
        got = {"cold": cold["seconds"], "warm": warm["seconds"],
               "peak_cold": cold["peak_mib"], "before_cold": cold["rss_before_mib"],
               "peak_cold_child": cold["peak_child_mib"],
               "peak_warm": warm["peak_mib"], "before_warm": warm["rss_before_mib"],
               "rows_labbook": warm["rows"], "names_labbook": warm["names"]}
        got["ls"], got["ls_peak"] = self.time_ls()
        if self.mlflow_python:
            ml = self.mlflow_worker("query", str(self.db))
            got.update({"mlflow_first": ml["first"], "mlflow_second": ml["second"],
                        "peak_mlflow": ml["peak_mib"], "before_mlflow": ml["rss_before_mib"],
                        "rows_mlflow": ml["rows"], "names_mlflow": ml["names"],
                        "mlflow_version": ml["version"]})
        return got


def stamp_ok(stamp: Path) -> bool:
    return stamp.exists() and stamp.read_text().strip() == FILL_VERSION


def mlflow_worker(python: Path | None, cwd: Path, env: dict[str, str], *extra: str,
                  show_progress: bool = False) -> dict:
    """Run mlflow_query.py in the MLflow venv; its result is the last stdout line."""
    out = subprocess.run([str(python), str(HERE / "mlflow_query.py"), *extra], cwd=cwd, env=env,
                         stdout=subprocess.PIPE, stderr=None if show_progress else subprocess.PIPE, text=True)
    if out.returncode:
        raise SystemExit(f"MLflow worker {extra} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure(bench: Bench, reps: int) -> dict:
    """Fill, then ``reps`` repetitions; medians and ranges of every figure."""
    bench.fill()
    runs: list[dict] = []
    for rep in range(reps):
        got = bench.repetition()
        runs.append(got)
        print(f"  {bench.size:,} runs, repetition {rep + 1}: cold {got['cold']:.2f} s, "
              f"warm {got['warm']:.3f} s, ls {got['ls']:.2f} s, "
              f"peak {got['peak_cold']:.0f}/{got['peak_warm']:.0f} MiB"
              + (f", MLflow {got['mlflow_first']:.2f}/{got['mlflow_second']:.2f} s, "
                 f"peak {got['peak_mlflow']:.0f} MiB" if bench.mlflow_python else ""), flush=True)
    numbers = [key for key, value in runs[0].items() if isinstance(value, float)]
    result = {key: statistics.median(run[key] for run in runs) for key in numbers}
    result["range"] = {key: (min(run[key] for run in runs), max(run[key] for run in runs)) for key in numbers}
    if bench.mlflow_python:
        result["cold_ratio"] = result["cold"] / result["mlflow_first"]
        result["warm_ratio"] = result["warm"] / result["mlflow_second"]
        last = runs[-1]
        result["same_rows"] = set(last["names_labbook"]) == set(last["names_mlflow"])
        result["rows"] = f"{last['rows_labbook']:,} / {last['rows_mlflow']:,}"
        result["mlflow_version"] = last["mlflow_version"]
    else:
        result["rows"] = f"{runs[-1]['rows_labbook']:,}"
    result["fill"] = bench.fill_seconds
    return result


# -- the report ------------------------------------------------------------------------------
FIGURES = [  # key, what it is, unit
    ("cold", "search_runs labbook cold (no cache)", "s"),
    ("warm", "search_runs labbook warm (cache, one new run)", "s"),
    ("mlflow_first", "search_runs MLflow sqlite, first call in a process", "s"),
    ("mlflow_second", "search_runs MLflow sqlite, second call", "s"),
    ("cold_ratio", "labbook cold / MLflow first call", "ratio"),
    ("warm_ratio", "labbook warm / MLflow second call", "ratio"),
    ("peak_cold", "peak RSS of the labbook cold process", "MiB"),
    ("before_cold", "RSS of the labbook cold process before search_runs", "MiB"),
    ("peak_cold_child", "peak RSS of the largest child of the labbook cold process (a forked parser)",
     "MiB"),
    ("peak_warm", "peak RSS of the labbook warm process", "MiB"),
    ("before_warm", "RSS of the labbook warm process before search_runs", "MiB"),
    ("peak_mlflow", "peak RSS of the MLflow process (two searches)", "MiB"),
    ("before_mlflow", "RSS of the MLflow process before search_runs", "MiB"),
    ("ls", "`labbook ls --limit 50` warm, whole command", "s"),
    ("ls_peak", "peak RSS of `labbook ls --limit 50`", "MiB"),
]
LABEL = {key: (label, unit) for key, label, unit in FIGURES}
FILLED_BY = {"labbook": "labbook (BranchStore.commit)", "mlflow": "MLflow (direct SQL)"}
TARGETS = {  # size → key → (target as written, upper limit)
    10_000: {"cold": ("≤ 3 s", 3.0), "warm": ("≤ 0.3 s", 0.3),
             "cold_ratio": ("≤ 1 (faster than MLflow)", 1.0), "warm_ratio": ("≤ 0.2", 0.2),
             "ls": ("≤ 1 s", 1.0)},
    100_000: {"peak_cold": ("≤ 1,024 MiB", 1024.0), "peak_warm": ("≤ 1,024 MiB", 1024.0),
              "ls": ("≤ 2 s", 2.0)},
}


def json_rows(results: dict[int, dict]) -> list[dict]:
    """Every figure of every size: {"figure", "value", "unit", "target", "met"}."""
    rows = []
    for size, result in results.items():
        for key, label, unit in FIGURES:
            if key not in result:
                continue
            target, limit = TARGETS.get(size, {}).get(key, (None, None))
            value = float(result[key])
            rows.append({"figure": f"{label}, {size:,} runs", "value": value, "unit": unit, "target": target,
                         "met": None if limit is None else value <= limit})
        for tool, seconds in result["fill"].items():
            rows.append({"figure": f"fill {FILLED_BY[tool]} with {size:,} runs", "value": seconds,
                         "unit": "s", "target": None, "met": None})
    return rows


def render(results: dict[int, dict], reps: int, machine: dict[str, str]) -> str:
    with_mlflow = any("mlflow_first" in r for r in results.values())

    def cell(result: dict, key: str, fmt: str) -> str:
        return format(result[key], fmt) if key in result else "–"

    lines = [f"# search_runs over {', '.join(f'{n:,}' for n in results)} runs (medians of {reps})", "",
             f"Filter `{FILTER}`, order_by `{ORDER_BY[0]}`; 20 params and 10 metrics a run. Seconds; peak "
             "RSS of the whole process in MiB. MLflow: its default sqlite store, filled with direct SQL "
             "(see bench_query.py).", "",
             "| runs | labbook cold | labbook warm | MLflow first | MLflow second | cold / MLflow first "
             "| warm / MLflow second | peak MiB: cold / warm / MLflow | `labbook ls` | rows labbook / MLflow "
             "| same runs |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for size, r in results.items():
        peaks = " / ".join(cell(r, key, ".0f") for key in ("peak_cold", "peak_warm", "peak_mlflow"))
        if "peak_cold_child" in r:
            peaks += f" (cold's largest child {r['peak_cold_child']:.0f})"
        same = ("yes" if r["same_rows"] else "**no**") if "same_rows" in r else "–"
        lines.append(f"| {size:,} | {r['cold']:.3f} | {r['warm']:.3f} | {cell(r, 'mlflow_first', '.3f')} "
                     f"| {cell(r, 'mlflow_second', '.3f')} | {cell(r, 'cold_ratio', '.2f')} "
                     f"| {cell(r, 'warm_ratio', '.2f')} | {peaks} | {r['ls']:.2f} | {r['rows']} | {same} |")
    lines += ["", "| target | value | met |", "|---|---:|---|"]
    for size, targets in TARGETS.items():
        if size not in results:
            lines.append(f"| the targets at {size:,} runs | not measured | |")
            continue
        for key, (target, limit) in targets.items():
            label, unit = LABEL[key]
            if key not in results[size]:
                lines.append(f"| {label}, {size:,} runs {target} | not measured | |")
                continue
            value = results[size][key]
            lines.append(f"| {label}, {size:,} runs {target} | {value:.3g} {unit} "
                         f"| {'yes' if value <= limit else '**no**'} |")
    lines += ["", "Range over the repetitions (min–max):", "", "| runs | " + " | ".join(
        LABEL[k][0] for k in ("cold", "warm", "mlflow_first", "ls") if with_mlflow or k != "mlflow_first")
        + " |", "|---:|" + "---:|" * (4 if with_mlflow else 3)]
    for size, r in results.items():
        spans = [r["range"][k] for k in ("cold", "warm", "mlflow_first", "ls") if k in r["range"]]
        lines.append(f"| {size:,} | " + " | ".join(f"{lo:.3f}–{hi:.3f}" for lo, hi in spans) + " |")
    fills = [f"{FILLED_BY[tool]} {size:,} runs {s:.0f} s"
             for size, r in results.items() for tool, s in r["fill"].items()]
    lines += ["", "Filled now: " + (", ".join(fills) if fills else "nothing (stores reused)") + ".",
              "", "Machine: " + ", ".join(f"{k} {v}" for k, v in machine.items()) + "."]
    return "\n".join(lines) + "\n"


def write_results(text: str, rows: list[dict], machine: dict[str, str]) -> None:
    """benchmarks/results/query.md and query.json ({"machine": …, "rows": […]})."""
    folder = HERE / "results"
    folder.mkdir(exist_ok=True)
    (folder / "query.md").write_text(text)
    (folder / "query.json").write_text(json.dumps({"machine": machine, "rows": rows}, indent=1) + "\n")


# -- main ------------------------------------------------------------------------------------
def check_fill(base: Path, env: dict[str, str], python: Path, count: int) -> bool:
    """Fill ``count`` runs through MLflow's API and with SQL; does MLflow see the same?"""
    folder = base / f"check-fill-{count}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    print(f"check-fill: {count:,} runs through MLflow's API (about 40 ms a run) …", flush=True)
    api = mlflow_worker(python, folder, env, "fill-api", str(folder / "api.db"), str(count),
                        show_progress=True)
    sql = mlflow_worker(python, folder, env, "fill-sql", str(folder / "sql.db"), str(count))
    print(f"  API fill {api['seconds']:.1f} s, SQL fill {sql['seconds']:.2f} s", flush=True)
    got = mlflow_worker(python, folder, env, "check", str(folder / "api.db"), str(folder / "sql.db"))
    print(f"  search_runs rows compared: {got['rows']}, {got['columns']} columns; "
          f"table rows compared: {got['table_rows']}")
    print("check-fill: identical" if got["ok"]
          else "check-fill: DIFFERENT\n  " + "\n  ".join(got["problems"]))
    return got["ok"]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help=f"smoke test: sizes {QUICK['sizes']}, "
                        f"{QUICK['reps']} repetitions")
    parser.add_argument("--sizes", help=f"run counts, comma-separated (default {FULL['sizes']})")
    parser.add_argument("--runs", type=int, help="one size only (the same as --sizes N)")
    parser.add_argument("--reps", type=int, help=f"repetitions (default {FULL['reps']})")
    parser.add_argument("--no-mlflow", action="store_true")
    parser.add_argument("--loose", action="store_true",
                        help="do not pack the filled labbook repository (the slow cold case)")
    parser.add_argument("--workdir", type=Path,
                        help="keep the filled stores here and reuse them next time")
    parser.add_argument("--check-fill", type=int, nargs="?", const=1000, metavar="N",
                        help="instead: fill N runs (default 1,000) through MLflow's API and with SQL "
                             "and check MLflow sees the same runs")
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    preset = QUICK if args.quick else FULL
    args.reps = args.reps or preset["reps"]
    sizes = str(args.runs) if args.runs else args.sizes or preset["sizes"]
    args.sizes = [int(s.replace("_", "")) for s in sizes.split(",") if s.strip()]
    return args


def main() -> None:
    args = parse_args()
    if args.worker:
        repo, mode = Path(args.worker[0]), args.worker[1]
        if mode == "populate":
            populate_labbook(repo, int(args.worker[2]))
            print(json.dumps({"ok": True}))
        else:
            print(json.dumps(labbook_query(repo, cold=mode == "cold")))
        return
    base = args.workdir or Path(tempfile.mkdtemp(prefix="labbook-bench-query-"))
    base.mkdir(parents=True, exist_ok=True)
    gitconfig = base / "gitconfig"
    # gc.auto = 0: no `git gc --auto` (labbook's or git's) repacks the branch in the background
    # between or during the timed workers, so every repetition reads the same objects.
    gitconfig.write_text("[user]\n\tname = bench\n\temail = bench@localhost\n[gc]\n\tauto = 0\n")
    env = clean_env(gitconfig)
    try:
        python = None if args.no_mlflow and args.check_fill is None else ensure_mlflow(HERE / ".venv-mlflow",
                                                                                        "mlflow")
        if args.check_fill is not None:
            raise SystemExit(0 if check_fill(base, env, python, args.check_fill) else 1)
        results = {size: measure(Bench(base, size, env, python, pack=not args.loose), args.reps)
                   for size in args.sizes}
    finally:
        if not args.workdir:
            shutil.rmtree(base, ignore_errors=True)
    machine = {**machine_info(), "load average": load_average()}
    versions = {r["mlflow_version"] for r in results.values() if "mlflow_version" in r}
    if versions:
        machine["mlflow"] = ", ".join(sorted(versions))
    text = render(results, args.reps, machine)
    print("\n" + text)
    write_results(text, json_rows(results), machine)


if __name__ == "__main__":
    main()
