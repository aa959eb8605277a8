"""search_runs over many runs: labbook cold and warm against MLflow's sqlite store.

    .venv/bin/python benchmarks/bench_query.py              # 10,000 runs, 5 repetitions
    .venv/bin/python benchmarks/bench_query.py --runs 1000 --reps 3 --no-mlflow

Both stores hold the same runs (20 params, 10 metrics each). The query is a
two-clause filter with an order_by. Repetitions alternate labbook and MLflow,
each in a fresh process:

* labbook cold: no cache under .git/labbook/cache (a fresh clone);
* labbook warm: the cache is there and one more run was added since;
* MLflow: the first search_runs in a fresh process, then a second one in it.

Both sides have imported pandas before the clock starts (``import mlflow`` does;
labbook loads it on the first read, so the worker imports ``labbook.query`` first).

``labbook ls`` is timed as a whole command (process start included) on the
warm cache. Results print as markdown and go to benchmarks/results/query.md.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_logging import clean_env, ensure_mlflow  # noqa: E402

FILTER = "metrics.metric_1 < 0.5 and params.param_00 = 'choice-3'"
ORDER_BY = ["metrics.metric_2 DESC"]


def run_values(i: int) -> tuple[str, dict, dict]:
    """The id, params and metric values of run number ``i`` (the same for both tools)."""
    rng = random.Random(i)
    rid = uuid.UUID(int=rng.getrandbits(128)).hex
    params = {f"param_{k:02d}": (f"choice-{rng.randint(0, 9)}" if k % 2 == 0 else round(rng.random(), 6))
              for k in range(20)}
    metrics = {f"metric_{k}": round(rng.random(), 6) for k in range(10)}
    return rid, params, metrics


def populate_labbook(repo: Path, count: int) -> None:
    """Commit ``count`` finished runs, 2,000 per commit, through labbook's own store."""
    import labbook
    from labbook import record
    from labbook.record import MetricSummary, RunRecord
    from labbook.tracking import repository

    labbook.set_repository(repo)
    repo_obj = repository()
    repo_obj.ensure_experiment("bench")
    batch = {}
    for i in range(count):
        rid, params, metrics = run_values(i)
        rec = RunRecord(id=rid, name=f"run-{i}", experiment="bench", status="FINISHED",
                        start_time=f"2026-01-01T00:{i // 60 % 60:02d}:{i % 60:02d}.000Z",
                        end_time="2026-01-01T01:00:00.000Z", params=params,
                        metrics={k: MetricSummary.first(v, 0, 1) for k, v in metrics.items()})
        batch[record.run_path(rid)] = record.run_to_yaml(rec)
        if len(batch) >= 2000:
            repo_obj.store.commit(batch, "bulk")
            batch = {}
    if batch:
        repo_obj.store.commit(batch, "bulk")


def labbook_query(repo: Path, cold: bool) -> dict:
    """Time one search_runs in this (fresh) process."""
    import labbook
    if cold:
        shutil.rmtree(repo / ".git" / "labbook" / "cache", ignore_errors=True)
    labbook.set_repository(repo)
    from labbook.tracking import repository
    repository()  # open the repository (and recover nothing) before the clock starts
    import labbook.query  # pandas loads here, as import mlflow loads it before its clock
    if not cold:
        with labbook.start_run(name="one-more"):
            labbook.log_metric("metric_1", 0.1)
    start = time.perf_counter()
    frame = labbook.search_runs(filter_string=FILTER, order_by=ORDER_BY)
    return {"seconds": time.perf_counter() - start, "rows": len(frame)}


MLFLOW_WORKER = r'''
import json, sys, time, random, uuid
import mlflow
from mlflow.entities import Metric, Param
sys.path.insert(0, sys.argv[3])
from bench_query import run_values, FILTER, ORDER_BY
mode, db = sys.argv[1], sys.argv[2]
mlflow.set_tracking_uri(f"sqlite:///{db}")
client = mlflow.MlflowClient()
if mode == "populate":
    exp = client.create_experiment("bench")
    for i in range(int(sys.argv[4])):
        _, params, metrics = run_values(i)
        run = client.create_run(exp, run_name=f"run-{i}")
        client.log_batch(run.info.run_id, metrics=[Metric(k, v, 0, 0) for k, v in metrics.items()],
                         params=[Param(k, str(v)) for k, v in params.items()])
        client.set_terminated(run.info.run_id)
    print(json.dumps({"ok": True}))
else:
    exp = client.get_experiment_by_name("bench").experiment_id
    mlfilter = FILTER
    times = []
    for _ in range(2):
        start = time.perf_counter()
        df = mlflow.search_runs([exp], filter_string=mlfilter, order_by=ORDER_BY, max_results=100000)
        times.append(time.perf_counter() - start)
    print(json.dumps({"first": times[0], "second": times[1], "rows": len(df)}))
'''


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--no-mlflow", action="store_true")
    parser.add_argument("--workdir", type=Path,
                        help="keep both filled stores here and reuse them next time (filling MLflow is slow)")
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
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
    filled = base / f"filled-{args.runs}"
    gitconfig = base / "gitconfig"
    gitconfig.write_text("[user]\n\tname = bench\n\temail = bench@localhost\n")
    env = clean_env(gitconfig)
    repo = base / "repo"
    reuse = filled.exists()
    if not reuse:
        shutil.rmtree(repo, ignore_errors=True)
        (base / "mlflow.db").unlink(missing_ok=True)
        subprocess.run(["git", "init", "-q", str(repo)], check=True, env=env)
    me = [sys.executable, str(Path(__file__).resolve()), "--worker", str(repo)]

    def worker(*extra: str) -> dict:
        out = subprocess.run([*me, *extra], capture_output=True, text=True, env=env, cwd=repo)
        if out.returncode:
            raise SystemExit(out.stderr)
        return json.loads(out.stdout.strip().splitlines()[-1])

    if not reuse:
        print(f"filling a labbook branch with {args.runs:,} runs …", flush=True)
        started = time.perf_counter()
        worker("populate", str(args.runs))
        print(f"  {time.perf_counter() - started:.0f} s", flush=True)
    mlflow_python = None
    if not args.no_mlflow:
        mlflow_python = ensure_mlflow(HERE / ".venv-mlflow", "mlflow")
        script = base / "mlflow_query_worker.py"
        script.write_text(MLFLOW_WORKER)
        db = base / "mlflow.db"
        if not db.exists():
            print(f"filling MLflow's sqlite store with {args.runs:,} runs (slow) …", flush=True)
            started = time.perf_counter()
            subprocess.run([str(mlflow_python), str(script), "populate", str(db), str(HERE),
                            str(args.runs)], check=True, capture_output=True, env=env)
            print(f"  {time.perf_counter() - started:.0f} s", flush=True)
    results: dict[str, list[float]] = {"cold": [], "warm": [], "ls": [], "mlflow first": [],
                                       "mlflow second": []}
    rows = {}
    for rep in range(args.reps):
        cold = worker("cold")
        warm = worker("warm")
        results["cold"].append(cold["seconds"])
        results["warm"].append(warm["seconds"])
        rows["labbook"] = warm["rows"]
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "labbook", "ls", "--limit", "50"], cwd=repo, env=env,
                       check=True, capture_output=True)
        results["ls"].append(time.perf_counter() - started)
        if mlflow_python:
            out = subprocess.run([str(mlflow_python), str(base / "mlflow_query_worker.py"), "query",
                                  str(base / "mlflow.db"), str(HERE)], capture_output=True, text=True,
                                 env=env, check=True)
            got = json.loads(out.stdout.strip().splitlines()[-1])
            results["mlflow first"].append(got["first"])
            results["mlflow second"].append(got["second"])
            rows["mlflow"] = got["rows"]
        print(f"  repetition {rep + 1}: cold {cold['seconds']:.2f} s, warm {warm['seconds']:.3f} s"
              + (f", MLflow {results['mlflow first'][-1]:.2f} s" if mlflow_python else ""), flush=True)
    med = {k: statistics.median(v) for k, v in results.items() if v}
    lines = [f"# search_runs over {args.runs:,} runs (median of {args.reps})", "",
             f"Filter `{FILTER}`, order_by `{ORDER_BY[0]}`; matching rows: {rows}.", "",
             "| figure | seconds | target |", "|---|---:|---|",
             f"| labbook cold (no cache) | {med['cold']:.3f} | ≤ 3 s |",
             f"| labbook warm (cache, one new run) | {med['warm']:.3f} | ≤ 0.3 s |",
             f"| `labbook ls` warm, whole command | {med['ls']:.3f} | ≤ 1 s |"]
    if mlflow_python:
        lines += [f"| MLflow sqlite, first call in a process | {med['mlflow first']:.3f} | |",
                  f"| MLflow sqlite, second call | {med['mlflow second']:.3f} | |",
                  f"| ratio cold / MLflow first | {med['cold'] / med['mlflow first']:.3f} | < 1 |",
                  f"| ratio warm / MLflow second | {med['warm'] / med['mlflow second']:.3f} | < 1 |"]
    text = "\n".join(lines) + "\n"
    print("\n" + text)
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "query.md").write_text(text)
    if args.workdir:
        filled.touch()
    else:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
