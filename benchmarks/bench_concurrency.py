"""Many processes logging into one store at once: labbook against MLflow's two local stores.

    .venv/bin/python benchmarks/bench_concurrency.py          # 8 processes × 2 runs, 5 repetitions (~15 min)
    .venv/bin/python benchmarks/bench_concurrency.py --quick  # 8 processes × 1 run, 2 repetitions (~5 min)

Each repetition, for each tool in turn (labbook, MLflow sqlite, MLflow file store),
starts --procs worker processes on one fresh store. Each worker imports its tracker
and opens the store, says it is ready and waits on its stdin; when all are ready the
parent writes "go" to every stdin at once. Each worker then logs --runs runs of the
standard workload (benchmarks/workload.py: 20 params, 10 metrics × 100 steps one
log_metric call at a time, a 10 KB artifact). An error in any call is recorded (a
sqlite "database is locked", say) and the worker goes on.

* runs per second: runs found in the store afterwards / wall time from "go" to the
  last worker's end (imports and store setup are before "go", so not counted);
* runs lost: runs the workers started that are not in the store; values, params and
  artifacts lost: what a stored run lacks (every run is checked, up to --check-runs);
* for labbook, `git fsck --full` and `labbook fsck` on the repository afterwards.

labbook: a fresh git repository with its own git config each repetition (as in
bench_logging.py). MLflow: its default sqlite store (`sqlite:///…/mlflow.db`,
artifacts in a folder) and its file store (MLFLOW_ALLOW_FILE_STORE=true, the
tracking URI a folder), in benchmarks/.venv-mlflow (made if missing). The store
and its experiment are created before the workers start. Results: a markdown
table on stdout, benchmarks/results/concurrency.md and .json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import select
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import workload
from bench_logging import (
    DEFAULT_VENV,
    cleanup,
    ensure_mlflow,
    fresh_repo,
    load_average,
    machine_info,
    machine_line,
)
from bench_storage import wait_for_gc

HERE = Path(__file__).resolve().parent
TOOLS = ("labbook", "mlflow-sqlite", "mlflow-file")
LABEL = {"labbook": "labbook", "mlflow-sqlite": "MLflow sqlite", "mlflow-file": "MLflow file store"}
FULL = {"reps": 5, "runs": 2}
QUICK = {"reps": 2, "runs": 1}


# -- command line ------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="2 repetitions of 1 run per process")
    p.add_argument("--procs", type=int, default=8, help="processes logging at once (8)")
    p.add_argument("--runs", type=int, help="runs each process logs (full: 2)")
    p.add_argument("--reps", type=int, help="repetitions of each tool, alternating (full: 5)")
    p.add_argument("--tools", default=",".join(TOOLS), help=f"a subset of {','.join(TOOLS)}")
    p.add_argument("--no-mlflow", action="store_true", help="labbook only")
    p.add_argument("--check-runs", type=int, default=400,
                   help="stored runs whose histories, params and artifact are checked (400)")
    p.add_argument("--timeout", type=float, default=3600,
                   help="seconds a repetition may take before its workers are killed")
    p.add_argument("--mlflow-venv", type=Path, default=DEFAULT_VENV)
    p.add_argument("--mlflow-spec", default="mlflow")
    p.add_argument("--tmpdir", type=Path, default=Path(tempfile.gettempdir()))
    p.add_argument("--output", default="concurrency", help="results/<name>.md and .json")
    p.add_argument("--keep", action="store_true", help="keep the stores")
    # internal: workers
    p.add_argument("--worker", choices=TOOLS, help=argparse.SUPPRESS)
    p.add_argument("--phase", choices=["setup", "log", "check"], help=argparse.SUPPRESS)
    p.add_argument("--dir", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--index", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    for key, value in (QUICK if args.quick else FULL).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.tools = ["labbook"] if args.no_mlflow else [t for t in args.tools.split(",") if t]
    unknown = set(args.tools) - set(TOOLS)
    if unknown or not args.tools:
        p.error(f"--tools: choose from {', '.join(TOOLS)}")
    if min(args.procs, args.runs, args.reps) < 1:
        p.error("--procs, --runs and --reps need at least one")
    return args


def say(text: str) -> None:
    print(text, flush=True)


def plural(n: int, word: str, suffix: str = "s") -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}{suffix}"


def run_name(index: int, i: int) -> str:
    return f"w{index}-run{i}"


# -- workers: one tracker each; stdlib + workload at module level ------------------------------
def mlflow_uri(tool: str, folder: Path) -> str:
    if tool == "mlflow-sqlite":
        return f"sqlite:///{folder / 'store' / 'mlflow.db'}"
    return (folder / "store" / "mlruns").as_uri()


class Errors:
    """Errors a worker hit, by call and message; calls that raise return None."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def guard(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except Exception as exc:  # the point is to record it and go on
                first = (str(exc).strip().splitlines() or [""])[0][:160]
                self.counts[f"{name}: {type(exc).__name__}: {first}"] += 1
                return None
        return call


def labbook_api(folder: Path) -> tuple[dict[str, Callable[..., Any]], str]:
    import labbook

    labbook.set_repository(folder / "repo")
    labbook.set_experiment(workload.EXPERIMENT)
    return {"start": lambda name: labbook.start_run(name=name), "end": labbook.end_run,
            "log_params": labbook.log_params, "log_metric": labbook.log_metric,
            "log_artifact": labbook.log_artifact}, labbook.__version__


def mlflow_api(tool: str, folder: Path) -> tuple[dict[str, Callable[..., Any]], str]:
    import mlflow

    mlflow.set_tracking_uri(mlflow_uri(tool, folder))
    mlflow.set_experiment(workload.EXPERIMENT)

    def start(name: str) -> None:
        if mlflow.active_run() is not None:  # an end_run that failed left its run active
            mlflow.end_run()
        mlflow.start_run(run_name=name)

    return {"start": start, "end": mlflow.end_run, "log_params": mlflow.log_params,
            "log_metric": mlflow.log_metric, "log_artifact": mlflow.log_artifact}, mlflow.__version__


def setup_phase(tool: str, folder: Path) -> dict[str, Any]:
    """Create the store and its experiment, as a team's store exists before its jobs start."""
    if tool == "labbook":
        _, version = labbook_api(folder)
        return {"version": version}
    import mlflow

    (folder / "store").mkdir(exist_ok=True)
    mlflow.set_tracking_uri(mlflow_uri(tool, folder))
    location = (folder / "store" / "mlartifacts").as_uri() if tool == "mlflow-sqlite" else None
    mlflow.create_experiment(workload.EXPERIMENT, artifact_location=location)
    return {"version": mlflow.__version__}


def log_phase(tool: str, folder: Path, index: int, runs: int, ready: Callable[[], None]
              ) -> dict[str, Any]:
    """Open the store, wait for "go" on stdin, log ``runs`` runs; errors are counted."""
    api, version = labbook_api(folder) if tool == "labbook" else mlflow_api(tool, folder)
    artifact = workload.write_artifact(folder / "outputs" / f"w{index}")
    errors = Errors()
    calls = {name: errors.guard(name, fn) for name, fn in api.items()}
    ready()
    sys.stdin.readline()
    began = time.time()
    failed_runs = 0
    for i in range(runs):
        before = sum(errors.counts.values())
        workload.timed_run(calls["start"], calls["end"], calls["log_params"], calls["log_metric"],
                           calls["log_artifact"], artifact, run_name(index, i))
        failed_runs += sum(errors.counts.values()) > before
    ended = time.time()
    return {"index": index, "version": version, "began": began, "ended": ended, "runs": runs,
            "failed_runs": failed_runs, "failed_calls": sum(errors.counts.values()),
            "errors": dict(errors.counts.most_common(20))}


def expected_history() -> dict[tuple[str, int], float]:
    values = workload.metric_values()
    return {(key, step): values[step * workload.N_METRICS + j]
            for step in range(workload.N_STEPS) for j, key in enumerate(workload.METRIC_KEYS)}


def tally(found: dict[str, dict[str, Any]], procs: int, runs: int, check_runs: int,
          details: Callable[[str], tuple[dict[tuple[str, int], float], int, int]]) -> dict[str, Any]:
    """Compare what the store holds (name → {id, status}) with what the workers logged.

    ``details(run_id)`` returns the run's (key, step) → value history, its param count and
    its artifact count."""
    wanted = [run_name(k, i) for k in range(procs) for i in range(runs)]
    missing = [name for name in wanted if name not in found]
    stored = [name for name in wanted if name in found]
    step = max(1, -(-len(stored) // check_runs)) if check_runs > 0 else 0
    checked = stored[::step] if step else []
    expected = expected_history()
    lost = wrong = params_lost = artifacts_lost = 0
    for name in checked:
        history, n_params, n_artifacts = details(found[name]["id"])
        lost += sum(1 for point in expected if point not in history)
        wrong += sum(1 for point, value in expected.items()
                     if point in history and history[point] != value)
        params_lost += max(0, workload.N_PARAMS - n_params)
        artifacts_lost += n_artifacts < 1
    statuses = Counter(found[name]["status"] for name in stored)
    return {"runs_expected": len(wanted), "runs_found": len(stored), "runs_lost": len(missing),
            "missing": missing[:20], "extra_runs": len(set(found) - set(wanted)),
            "statuses": dict(statuses), "runs_checked": len(checked),
            "values_checked": len(checked) * len(expected), "values_lost": lost,
            "values_wrong": wrong, "params_lost": params_lost, "artifacts_lost": artifacts_lost}


def check_labbook(folder: Path, procs: int, runs: int, check_runs: int) -> dict[str, Any]:
    import labbook

    labbook.set_repository(folder / "repo")
    frame = labbook.search_runs(run_view="all")
    found = {row.run_name: {"id": row.run_id, "status": row.status}
             for row in frame[["run_id", "run_name", "status"]].itertuples()}
    histories: dict[str, dict[tuple[str, int], float]] = {}
    if len(frame):
        long = labbook.load_history(list(frame["run_id"]))
        for rid, key, step, value in long[["run_id", "key", "step", "value"]].itertuples(index=False):
            histories.setdefault(rid, {})[(key, int(step))] = float(value)
    param_columns = [c for c in frame.columns if c.startswith("params.")]
    n_params = dict(zip(frame["run_id"], frame[param_columns].notna().sum(axis=1), strict=True))

    def details(rid: str) -> tuple[dict[tuple[str, int], float], int, int]:
        artifacts = [a for a in labbook.get_run(rid).artifacts
                     if a.path.endswith(workload.ARTIFACT_NAME)]
        return histories.get(rid, {}), int(n_params[rid]), len(artifacts)

    result = tally(found, procs, runs, check_runs, details)
    report = labbook.tracking.fsck()
    journal = folder / "repo" / ".git" / "labbook" / "journal"
    leftover = sorted(p.name for p in journal.glob("*")) if journal.exists() else []
    return {**result, "labbook_fsck_ok": report.ok, "labbook_fsck": report.lines()[-5:],
            "journal_left": leftover[:10]}


def check_mlflow(tool: str, folder: Path, procs: int, runs: int, check_runs: int) -> dict[str, Any]:
    from mlflow.entities import ViewType
    from mlflow.tracking import MlflowClient

    client = MlflowClient(mlflow_uri(tool, folder))
    exp = client.get_experiment_by_name(workload.EXPERIMENT)
    stored: list[Any] = []
    token = None
    while exp is not None:
        page = client.search_runs([exp.experiment_id], run_view_type=ViewType.ALL,
                                  max_results=1000, page_token=token)
        stored.extend(page)
        token = page.token
        if not token:
            break
    found = {r.info.run_name: {"id": r.info.run_id, "status": r.info.status} for r in stored}
    by_id = {r.info.run_id: r for r in stored}

    def details(rid: str) -> tuple[dict[tuple[str, int], float], int, int]:
        history = {(m.key, m.step): m.value for key in workload.METRIC_KEYS
                   for m in client.get_metric_history(rid, key)}
        return history, len(by_id[rid].data.params), len(client.list_artifacts(rid))

    return tally(found, procs, runs, check_runs, details)


def worker_main(args: argparse.Namespace) -> None:
    out = sys.stdout

    def ready() -> None:
        out.write("ready\n")
        out.flush()

    with contextlib.redirect_stdout(sys.stderr):
        folder = args.dir.resolve()
        if args.phase == "setup":
            result = setup_phase(args.worker, folder)
        elif args.phase == "log":
            result = log_phase(args.worker, folder, args.index, args.runs, ready)
        elif args.worker == "labbook":
            result = check_labbook(folder, args.procs, args.runs, args.check_runs)
        else:
            result = check_mlflow(args.worker, folder, args.procs, args.runs, args.check_runs)
    out.write(json.dumps(result) + "\n")
    out.flush()


# -- the parent --------------------------------------------------------------------------------
def worker_argv(args: argparse.Namespace, python: str, tool: str, phase: str, folder: Path,
                index: int = 0) -> list[str]:
    return [python, str(Path(__file__).resolve()), "--worker", tool, "--phase", phase,
            "--dir", str(folder), "--index", str(index), "--runs", str(args.runs),
            "--procs", str(args.procs), "--check-runs", str(args.check_runs)]


def run_once(argv: list[str], cwd: Path, env: dict[str, str], timeout: float
             ) -> tuple[dict[str, Any] | None, str]:
    """Run a setup or check worker: (its JSON, "") or (None, what went wrong)."""
    try:
        proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True,
                              errors="replace", timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, f"timed out after {timeout:.0f} s"
    result = last_json(proc.stdout)
    if proc.returncode != 0 or result is None:
        tail = " | ".join(proc.stderr.strip().splitlines()[-3:])
        return None, f"exit {proc.returncode}: {tail}"
    return result, ""


def last_json(out: str) -> dict[str, Any] | None:
    """A worker's result: the last line of its stdout, JSON."""
    lines = [line for line in out.splitlines() if line.strip()]
    try:
        return json.loads(lines[-1]) if lines else None
    except ValueError:
        return None


def start_workers(args: argparse.Namespace, python: str, tool: str, folder: Path, cwd: Path,
                  env: dict[str, str]) -> list[subprocess.Popen[str]]:
    procs = []
    for k in range(args.procs):
        log = open(folder / f"worker-{k}.log", "w")  # noqa: SIM115 - closed in collect()
        procs.append(subprocess.Popen(worker_argv(args, python, tool, "log", folder, k), cwd=cwd,
                                      env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=log, text=True, errors="replace"))
        log.close()
    return procs


def barrier(procs: list[subprocess.Popen[str]], wait_s: float = 600) -> tuple[float, list[str]]:
    """Wait until every worker says ready, then release them all; return the start time."""
    problems = []
    deadline = time.monotonic() + wait_s
    for k, proc in enumerate(procs):
        assert proc.stdout is not None
        # nothing is read from the pipe before this line, so select() sees all there is
        waiting, _, _ = select.select([proc.stdout], [], [], max(0.0, deadline - time.monotonic()))
        line = proc.stdout.readline() if waiting else ""
        if line.strip() != "ready":
            problems.append(f"worker {k} did not get ready (exit {proc.poll()})")
    began = time.time()
    for proc in procs:
        with contextlib.suppress(BrokenPipeError, OSError):
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.close()
        proc.stdin = None  # closed: communicate() must not flush it
    return began, problems


def collect(procs: list[subprocess.Popen[str]], folder: Path, deadline: float
            ) -> tuple[list[dict[str, Any]], list[str], float]:
    """Each worker's JSON, the problems of those that failed, the time the last one ended."""
    results, problems, last = [], [], 0.0
    for k, proc in enumerate(procs):
        try:
            out, _ = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
            problems.append(f"worker {k} killed: the repetition passed --timeout")
        last = max(last, time.time())
        result = last_json(out)
        if proc.returncode == 0 and result is not None:
            results.append(result)
            continue
        tail = (folder / f"worker-{k}.log").read_text(errors="replace").strip().splitlines()[-3:]
        problems.append(f"worker {k} exit {proc.returncode}: {' | '.join(tail)}")
    return results, problems, last


def git_fsck(repo: Path, env: dict[str, str]) -> dict[str, Any]:
    proc = subprocess.run(["git", "-C", str(repo), "fsck", "--full"], env=env, capture_output=True,
                          text=True, errors="replace")
    lines = (proc.stdout + proc.stderr).splitlines()
    bad = [line for line in lines if not line.startswith(("dangling ", "Checking ", "notice:"))]
    return {"ok": proc.returncode == 0 and not bad, "exit": proc.returncode, "problems": bad[:10],
            "dangling": sum(line.startswith("dangling ") for line in lines)}


def one_rep(args: argparse.Namespace, tool: str, python: str, label: str) -> dict[str, Any]:
    """One repetition of one tool on a fresh store: set up, release the workers, check."""
    base, repo, env = fresh_repo(args.tmpdir, f"conc-{tool}")
    if tool == "mlflow-file":
        env["MLFLOW_ALLOW_FILE_STORE"] = "true"
    rep: dict[str, Any] = {"tool": tool, "problems": []}
    try:
        setup, problem = run_once(worker_argv(args, python, tool, "setup", base), repo, env, 600)
        if setup is None:
            rep["problems"].append(f"setup failed: {problem}")
        else:
            rep["version"] = setup["version"]
            log_and_check(args, tool, python, base, repo, env, rep)
    finally:
        cleanup(base, args.keep)
    say(summary_line(label, rep))
    return rep


def log_and_check(args: argparse.Namespace, tool: str, python: str, base: Path, repo: Path,
                  env: dict[str, str], rep: dict[str, Any]) -> None:
    deadline = time.monotonic() + args.timeout
    procs = start_workers(args, python, tool, base, repo, env)
    began, problems = barrier(procs)
    workers, failed, last_exit = collect(procs, base, deadline)
    rep["problems"] += problems + failed
    ends = [w["ended"] for w in workers] + ([last_exit] if failed else [])
    rep["wall_s"] = max(ends) - began
    rep["start_skew_s"] = max((w["began"] for w in workers), default=began) - began
    rep["workers"] = workers
    rep["errors"] = sum((Counter(w["errors"]) for w in workers), Counter())
    rep["failed_calls"] = sum(w["failed_calls"] for w in workers)
    if tool == "labbook" and not wait_for_gc(repo):  # git fsck beside a repack would mislead
        rep["problems"].append("a git gc --auto was still running after 10 minutes")
    check, problem = run_once(worker_argv(args, python, tool, "check", base), repo, env, 1800)
    if check is None:
        rep["problems"].append(f"check failed: {problem}")
    else:
        rep["check"] = check
        rep["runs_per_s"] = check["runs_found"] / rep["wall_s"]
    if tool == "labbook":
        rep["git_fsck"] = git_fsck(repo, env)


def summary_line(label: str, rep: dict[str, Any]) -> str:
    if "check" not in rep:
        return f"{label}: FAILED — {'; '.join(rep['problems'])}"
    c = rep["check"]
    text = (f"{label}: {c['runs_found']}/{c['runs_expected']} runs in {rep['wall_s']:.2f} s = "
            f"{rep['runs_per_s']:.2f} runs/s; lost {c['runs_lost']} runs, {c['values_lost']} values"
            f" (+{c['values_wrong']} wrong); {rep['failed_calls']} failed calls")
    if "git_fsck" in rep:
        text += f"; git fsck {'ok' if rep['git_fsck']['ok'] else 'PROBLEMS'}"
        text += f", labbook fsck {'ok' if c['labbook_fsck_ok'] else 'PROBLEMS'}"
    if rep["problems"]:
        text += f"; problems: {'; '.join(rep['problems'])}"
    return text


# -- the table ---------------------------------------------------------------------------------
def med_range(values: list[float], fmt: str = "{:.2f}") -> str:
    if not values:
        return "—"
    if len(values) == 1:
        return fmt.format(values[0])
    return (f"{fmt.format(statistics.median(values))} "
            f"({fmt.format(min(values))}–{fmt.format(max(values))})")


def totals(reps: list[dict[str, Any]]) -> dict[str, Any]:
    """A tool's figures over its repetitions (only those that were checked count)."""
    checked = [r for r in reps if "check" in r]

    def add(key: str) -> int:
        return sum(r["check"][key] for r in checked)

    statuses: Counter[str] = sum((Counter(r["check"]["statuses"]) for r in checked), Counter())
    return {
        "rates": [r["runs_per_s"] for r in checked], "walls": [r["wall_s"] for r in checked],
        "skews": [r["start_skew_s"] for r in checked],
        "expected": add("runs_expected"), "lost": add("runs_lost"), "found": add("runs_found"),
        "values": add("values_checked"), "values_lost": add("values_lost"),
        "values_wrong": add("values_wrong"), "params_lost": add("params_lost"),
        "artifacts_lost": add("artifacts_lost"), "extra": add("extra_runs"),
        "unfinished": sum(n for s, n in statuses.items() if s != "FINISHED"),
        "failed_calls": sum(r.get("failed_calls", 0) for r in reps),
        "failed_reps": len(reps) - len(checked), "problems": [p for r in reps for p in r["problems"]],
        "errors": sum((r.get("errors", Counter()) for r in reps), Counter()),
        "git_fsck_bad": sum(not r["git_fsck"]["ok"] for r in reps if "git_fsck" in r),
        "labbook_fsck_bad": sum(not r["check"].get("labbook_fsck_ok", True) for r in checked),
        "version": next((r["version"] for r in reps if "version" in r), "?"),
    }


def render(args: argparse.Namespace, all_reps: dict[str, list[dict[str, Any]]],
           info: dict[str, str], loads: tuple[str, str], took_s: float) -> str:
    tools = list(all_reps)
    t = {tool: totals(reps) for tool, reps in all_reps.items()}
    per = f"{plural(args.procs, 'process', 'es')} × {plural(args.runs, 'run')}"
    lines = [
        f"# Concurrency: {args.procs} processes logging into one store at once",
        "",
        f"{time.strftime('%Y-%m-%d %H:%M %Z')} · `{' '.join(sys.argv[1:]) or '(defaults)'}` · "
        f"{took_s / 60:.1f} min",
        "",
        f"Each repetition: {per} of the standard workload ({workload.N_PARAMS} params, "
        f"{workload.N_METRICS} metrics × {workload.N_STEPS} steps one log_metric call at a time, a "
        f"{workload.ARTIFACT_BYTES // 1024} KB artifact), all released together once every process "
        f"has imported its tracker and opened the store. {plural(args.reps, 'repetition')} per tool, "
        "alternating, each on a fresh store. Runs per second = runs found in the store / wall "
        "time from the release to the last process's end; median of the repetitions (range).",
        "",
        "| figure | " + " | ".join(f"{LABEL[x]} {t[x]['version']}" for x in tools) + " | target |",
        "|---|" + "---:|" * len(tools) + "---|",
    ]

    def line(figure: str, cell: Callable[[dict[str, Any]], str], target: str = "") -> None:
        lines.append(f"| {figure} | " + " | ".join(cell(t[x]) for x in tools) + f" | {target} |")

    line("runs per second", lambda x: med_range(x["rates"]))
    line("wall time, s", lambda x: med_range(x["walls"]))
    line("runs lost (all repetitions)", lambda x: f"{x['lost']} of {x['expected']}",
         "0 (labbook)")
    line("metric values lost / wrong (runs checked)",
         lambda x: f"{x['values_lost']:,} / {x['values_wrong']:,} of {x['values']:,}", "0 (labbook)")
    line("params lost / artifacts lost", lambda x: f"{x['params_lost']} / {x['artifacts_lost']}")
    line("runs not FINISHED / unexpected runs", lambda x: f"{x['unfinished']} / {x['extra']}")
    line("calls that raised (all repetitions)", lambda x: f"{x['failed_calls']:,}")
    line("repetitions that failed to run or check", lambda x: str(x["failed_reps"]))
    line("slowest worker's start after the release, ms",
         lambda x: med_range([s * 1000 for s in x["skews"]], "{:.1f}"))
    if "labbook" in t:
        lb = t["labbook"]
        fsck = (f"git fsck: {clean(lb['git_fsck_bad'])}; "
                f"labbook fsck: {clean(lb['labbook_fsck_bad'])}")
        lines += ["", f"labbook repositories after each repetition — {fsck} "
                      f"({len(all_reps['labbook'])} repetitions)."]
        for other in ("mlflow-sqlite", "mlflow-file"):
            if other in t and t[other]["rates"] and lb["rates"]:
                r = statistics.median(lb["rates"]) / statistics.median(t[other]["rates"])
                lines.append(f"labbook / {LABEL[other]} runs per second: {r:.2f}×.")
    lines += errors_section(t) + per_rep_table(all_reps)
    lines += ["", "| machine | |", "|---|---|", f"| nproc | {info['nproc']} |",
              f"| CPU | {info['cpu']} |", f"| platform | {info['platform']} |",
              f"| python | {info['python']} |", f"| git | {info['git']} |",
              f"| load average before / after | {loads[0]} / {loads[1]} |", ""]
    return "\n".join(lines)


def clean(bad: int) -> str:
    return "clean" if not bad else f"**{bad} repositories with problems**"


def errors_section(t: dict[str, dict[str, Any]]) -> list[str]:
    out = ["", "Errors the workers hit (call: error, count over all repetitions):", ""]
    for tool, x in t.items():
        if not x["errors"] and not x["problems"]:
            out.append(f"- {LABEL[tool]}: none")
            continue
        for message, n in x["errors"].most_common(8):
            out.append(f"- {LABEL[tool]}: {n:,}× `{message}`")
        for problem in x["problems"][:8]:
            out.append(f"- {LABEL[tool]}: {problem}")
    return out


def per_rep_table(all_reps: dict[str, list[dict[str, Any]]]) -> list[str]:
    out = ["", "| repetition | tool | wall s | runs/s | runs found | lost | values lost | "
               "calls raised |", "|---:|---|---:|---:|---:|---:|---:|---:|"]
    count = max(len(r) for r in all_reps.values())
    for i in range(count):
        for tool, reps in all_reps.items():
            if i >= len(reps):
                continue
            r = reps[i]
            if "check" not in r:
                out.append(f"| {i + 1} | {LABEL[tool]} | — | — | — | — | — | failed |")
                continue
            c = r["check"]
            out.append(f"| {i + 1} | {LABEL[tool]} | {r['wall_s']:.2f} | {r['runs_per_s']:.2f} | "
                       f"{c['runs_found']}/{c['runs_expected']} | {c['runs_lost']} | "
                       f"{c['values_lost'] + c['values_wrong']:,} | {r['failed_calls']:,} |")
    return out


def rows(args: argparse.Namespace, all_reps: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    from resultfile import row

    out = []
    t = {tool: totals(reps) for tool, reps in all_reps.items()}
    tag = f"concurrency, {args.procs} processes"
    for tool, x in t.items():
        rate = statistics.median(x["rates"]) if x["rates"] else float("nan")
        out.append(row(f"{tag}: {LABEL[tool]} runs per second", rate, "runs/s"))
        if tool == "labbook":
            ok = not x["failed_reps"]
            out += [
                row(f"{tag}: labbook runs lost", x["lost"], "runs", "0", ok and x["lost"] == 0),
                row(f"{tag}: labbook metric values lost or wrong", x["values_lost"] + x["values_wrong"],
                    "values", "0", ok and x["values_lost"] + x["values_wrong"] == 0),
                row(f"{tag}: labbook repositories failing git fsck", x["git_fsck_bad"], "repos", "0",
                    ok and x["git_fsck_bad"] == 0),
                row(f"{tag}: labbook repositories failing labbook fsck", x["labbook_fsck_bad"],
                    "repos", "0", ok and x["labbook_fsck_bad"] == 0),
            ]
        else:
            out += [row(f"{tag}: {LABEL[tool]} runs lost", x["lost"], "runs"),
                    row(f"{tag}: {LABEL[tool]} metric values lost or wrong",
                        x["values_lost"] + x["values_wrong"], "values")]
        out.append(row(f"{tag}: {LABEL[tool]} calls that raised", x["failed_calls"], "calls"))
    return out


def main() -> int:
    args = parse_args()
    if args.worker:
        worker_main(args)
        return 0
    began = time.perf_counter()
    info = machine_info()
    load_before = load_average()
    say(f"{machine_line(info, load_before)}; {plural(args.procs, 'process', 'es')} × "
        f"{plural(args.runs, 'run')}, {plural(args.reps, 'repetition')}")
    pythons = {"labbook": sys.executable}
    if any(tool != "labbook" for tool in args.tools):
        mlflow_python = str(ensure_mlflow(args.mlflow_venv, args.mlflow_spec))
        pythons.update({"mlflow-sqlite": mlflow_python, "mlflow-file": mlflow_python})
    all_reps: dict[str, list[dict[str, Any]]] = {tool: [] for tool in args.tools}
    for rep in range(1, args.reps + 1):
        for tool in args.tools:
            all_reps[tool].append(one_rep(args, tool, pythons[tool],
                                          f"rep {rep}/{args.reps} {LABEL[tool]}"))
    table = render(args, all_reps, info, (load_before, load_average()), time.perf_counter() - began)
    say("")
    say(table)
    from resultfile import write

    path = write(args.output, table, rows(args, all_reps), info)
    say(f"written to {path.with_suffix('.md')} and {path}")
    return 1 if any("check" not in r for reps in all_reps.values() for r in reps) else 0


if __name__ == "__main__":
    sys.exit(main())
