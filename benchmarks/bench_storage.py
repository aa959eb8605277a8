"""Bytes on disk per run: labbook's git objects against MLflow's sqlite and file stores.

    .venv/bin/python benchmarks/bench_storage.py            # 1,000 runs per store
    .venv/bin/python benchmarks/bench_storage.py --quick    # 100 runs

Each store gets --runs runs of the standard workload (benchmarks/workload.py: 20
params, 10 metrics × 100 steps, a 10 KB artifact), logged by one process. The
workload's values and artifact are the same in every run, and git would store
them once (a blob, or deltas in a pack), so each run here draws its own: metric
values within 1% of the workload's and 10 KB of its own random bytes
(--identical logs the workload verbatim). Then:

* labbook: `.git/objects` of a fresh repository (one code commit) before and after
  the runs (loose objects, packed by labbook's own `git gc --auto` once there are
  more than gc.auto of them, as git commit does); then after `git gc --prune=now`
  (with the benchmark's own git config), against a fresh repository gc'd alike.
  labbook's own files under `.git/labbook` (journals, cache, large-artifact store)
  and the whole `.git` are shown on their own lines;
* MLflow sqlite (its default): `mlflow.db` and the artifact folder;
* MLflow file store (MLFLOW_ALLOW_FILE_STORE=true): the whole store folder.

MLflow's empty store (its experiment created, no run) is subtracted as labbook's
empty repository is. Sizes are apparent (the bytes of the files) and on disk
(allocated blocks: many small files cost a block each). labbook logs with the
workload's one log_metric call per value; MLflow logs the same values with one
log_batch per run (the rows stored are the same; per call, 1,000 runs take MLflow
over an hour) unless --mlflow-per-call. Results: a markdown table on stdout,
benchmarks/results/storage.md and .json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import subprocess
import sys
import tempfile
import time
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

TOOLS = ("labbook", "mlflow-sqlite", "mlflow-file")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="100 runs per store")
    p.add_argument("--runs", type=int, help="runs per store (full: 1,000)")
    p.add_argument("--tools", default=",".join(TOOLS), help=f"a subset of {','.join(TOOLS)}")
    p.add_argument("--no-mlflow", action="store_true", help="labbook only")
    p.add_argument("--mlflow-per-call", action="store_true",
                   help="MLflow logs one log_metric call per value, as labbook does (slow)")
    p.add_argument("--identical", action="store_true",
                   help="every run logs the workload's very values and artifact (git stores them once)")
    p.add_argument("--mlflow-venv", type=Path, default=DEFAULT_VENV)
    p.add_argument("--mlflow-spec", default="mlflow")
    p.add_argument("--tmpdir", type=Path, default=Path(tempfile.gettempdir()))
    p.add_argument("--output", default="storage", help="results/<name>.md and .json")
    p.add_argument("--keep", action="store_true", help="keep the stores")
    p.add_argument("--worker", choices=TOOLS, help=argparse.SUPPRESS)
    p.add_argument("--phase", choices=["setup", "log"], help=argparse.SUPPRESS)
    p.add_argument("--dir", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.runs is None:
        args.runs = 100 if args.quick else 1000
    args.tools = ["labbook"] if args.no_mlflow else [t for t in args.tools.split(",") if t]
    if set(args.tools) - set(TOOLS) or not args.tools:
        p.error(f"--tools: choose from {', '.join(TOOLS)}")
    if args.runs < 1:
        p.error("--runs needs at least one")
    return args


def say(text: str) -> None:
    print(text, flush=True)


def progress(i: int, runs: int, began: float) -> None:
    if (i + 1) % max(1, runs // 5) == 0 or i + 1 == runs:
        print(f"  {i + 1:,}/{runs:,} runs logged ({time.perf_counter() - began:.0f} s)",
              file=sys.stderr, flush=True)


# -- workers -----------------------------------------------------------------------------------
def mlflow_uri(tool: str, store: Path) -> str:
    return f"sqlite:///{store / 'mlflow.db'}" if tool == "mlflow-sqlite" else (store / "mlruns").as_uri()


def run_content(i: int, identical: bool, folder: Path) -> tuple[list[float], Path]:
    """Run ``i``'s metric values and artifact: the workload's own with ``identical``, else
    values within 1% of them and artifact bytes of the same size, both drawn per run, so
    that git cannot store one run as a copy of another."""
    values = workload.metric_values()
    artifact = workload.write_artifact(folder)
    if not identical:
        rng = random.Random(i)
        values = [round(v * (1 + 0.01 * rng.random()), 9) for v in values]
        artifact.write_bytes(rng.randbytes(workload.ARTIFACT_BYTES))
    return values, artifact


def log_run(api: dict[str, Any], name: str, values: list[float], artifact: Path) -> None:
    """One run of the workload, one log_metric call per value."""
    api["start"](name)
    api["log_params"](workload.params())
    for step in range(workload.N_STEPS):
        for j, key in enumerate(workload.METRIC_KEYS):
            api["log_metric"](key, values[step * workload.N_METRICS + j], step=step)
    api["log_artifact"](str(artifact))
    api["end"]()


def labbook_log(repo: Path, runs: int, identical: bool) -> dict[str, Any]:
    import labbook

    labbook.set_repository(repo)
    labbook.set_experiment(workload.EXPERIMENT)
    api = {"start": lambda name: labbook.start_run(name=name), "end": labbook.end_run,
           "log_params": labbook.log_params, "log_metric": labbook.log_metric,
           "log_artifact": labbook.log_artifact}
    began = time.perf_counter()
    for i in range(runs):
        log_run(api, f"run-{i}", *run_content(i, identical, repo / "outputs"))
        progress(i, runs, began)
    return {"version": labbook.__version__, "seconds": time.perf_counter() - began}


def mlflow_setup(tool: str, store: Path) -> dict[str, Any]:
    import mlflow

    store.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(mlflow_uri(tool, store))
    location = (store / "mlartifacts").as_uri() if tool == "mlflow-sqlite" else None
    mlflow.create_experiment(workload.EXPERIMENT, artifact_location=location)
    return {"version": mlflow.__version__}


def mlflow_log(tool: str, store: Path, runs: int, per_call: bool, identical: bool,
               folder: Path) -> dict[str, Any]:
    import mlflow
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    mlflow.set_tracking_uri(mlflow_uri(tool, store))
    mlflow.set_experiment(workload.EXPERIMENT)
    client = MlflowClient()
    api = {"start": lambda name: mlflow.start_run(run_name=name), "end": mlflow.end_run,
           "log_params": mlflow.log_params, "log_metric": mlflow.log_metric,
           "log_artifact": mlflow.log_artifact}
    began = time.perf_counter()
    for i in range(runs):
        values, artifact = run_content(i, identical, folder / "outputs")
        if per_call:
            log_run(api, f"run-{i}", values, artifact)
        else:
            with mlflow.start_run(run_name=f"run-{i}") as run:
                mlflow.log_params(workload.params())
                now = int(time.time() * 1000)
                metrics = [Metric(key, values[step * workload.N_METRICS + j], now, step)
                           for step in range(workload.N_STEPS)
                           for j, key in enumerate(workload.METRIC_KEYS)]
                for at in range(0, len(metrics), 1000):  # log_batch takes 1,000 at most
                    client.log_batch(run.info.run_id, metrics=metrics[at:at + 1000])
                mlflow.log_artifact(str(artifact))
        progress(i, runs, began)
    return {"version": mlflow.__version__, "seconds": time.perf_counter() - began}


def worker_main(args: argparse.Namespace) -> None:
    out = sys.stdout
    folder = args.dir.resolve()
    with contextlib.redirect_stdout(sys.stderr):
        if args.worker == "labbook":
            result = labbook_log(folder / "repo", args.runs, args.identical)
        elif args.phase == "setup":
            result = mlflow_setup(args.worker, folder / "store")
        else:
            result = mlflow_log(args.worker, folder / "store", args.runs, args.mlflow_per_call,
                                args.identical, folder)
    out.write(json.dumps(result) + "\n")


# -- sizes -------------------------------------------------------------------------------------
def size(path: Path) -> dict[str, int]:
    """Apparent bytes, allocated bytes and file count of a file or a folder."""
    paths = [path] if path.is_file() else [Path(r, f) for r, _, fs in os.walk(path) for f in fs]
    apparent = disk = files = 0
    for p in paths:
        with contextlib.suppress(FileNotFoundError):
            st = p.lstat()
            apparent += st.st_size
            disk += st.st_blocks * 512
            files += 1
    return {"apparent": apparent, "disk": disk, "files": files}


def minus(a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
    return {k: a[k] - b[k] for k in a}


def plus(a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
    return {k: a[k] + b[k] for k in a}


def run_worker(argv: list[str], cwd: Path, env: dict[str, str]) -> dict[str, Any]:
    proc = subprocess.run(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, text=True)
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"worker failed (exit {proc.returncode}): {' '.join(argv)}")
    return json.loads(lines[-1])


def flags(args: argparse.Namespace) -> list[str]:
    return ((["--mlflow-per-call"] if args.mlflow_per_call else [])
            + (["--identical"] if args.identical else []))


def wait_for_gc(repo: Path, limit_s: float = 600) -> bool:
    """Wait while a `git gc` runs in ``repo`` (labbook starts `git gc --auto` at the end of a
    run once loose objects pass gc.auto, detached as git commit does); False if it did not end.
    labbook's own lock covers the gap before git's detached child writes gc.pid."""
    from labbook.runs.repository import open_repository  # only here: the parent stays light

    pid_file = repo / ".git" / "gc.pid"
    deadline = time.monotonic() + limit_s
    opened = open_repository(repo)
    try:
        if not opened.wait_for_gc(limit_s):
            return False
    finally:
        opened.close()
    while pid_file.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    return not pid_file.exists()


def git_gc(repo: Path, env: dict[str, str]) -> None:
    subprocess.run(["git", "-C", str(repo), "gc", "--quiet", "--prune=now"], env=env, check=True)


def measure_labbook(args: argparse.Namespace) -> dict[str, Any]:
    empty_base, empty, empty_env = fresh_repo(args.tmpdir, "storage-empty")
    base, repo, env = fresh_repo(args.tmpdir, "storage-lb")
    try:
        git = repo / ".git"
        before = {"objects": size(git / "objects"), "git": size(git)}
        git_gc(empty, empty_env)
        empty_gc = {"objects": size(empty / ".git" / "objects"), "git": size(empty / ".git")}
        say(f"labbook: logging {args.runs:,} runs into {repo}")
        result = run_worker([sys.executable, str(Path(__file__).resolve()), "--worker", "labbook",
                             "--phase", "log", "--dir", str(base), "--runs", str(args.runs),
                             *flags(args)], repo, env)
        labbook_dir = git / "labbook"
        wait_for_gc(repo)
        packs = len(list((git / "objects" / "pack").glob("*.pack")))
        as_left = minus(size(git / "objects"), before["objects"])
        own = size(labbook_dir) if labbook_dir.exists() else {"apparent": 0, "disk": 0, "files": 0}
        git_gc(repo, env)
        left = (f"as the runs left it ({packs} pack{'s' * (packs != 1)} from labbook's `git gc --auto`,"
                " the rest loose)"
                if packs else "as the runs left it (loose objects)")
        lines = [("labbook", f"`.git/objects` {left}", as_left),
                 ("labbook", "`.git/labbook` (labbook's own files)", own),
                 ("labbook", "`.git/objects` after `git gc --prune=now`",
                  minus(size(git / "objects"), empty_gc["objects"])),
                 ("labbook", "whole `.git` after `git gc --prune=now`", minus(size(git), empty_gc["git"]))]
        return {"version": result["version"], "seconds": result["seconds"], "lines": lines,
                "headline": lines[2][2], "headline_name": "after git gc"}
    finally:
        cleanup(base, args.keep)
        cleanup(empty_base, args.keep)


def measure_mlflow(args: argparse.Namespace, tool: str, python: Path) -> dict[str, Any]:
    base, repo, env = fresh_repo(args.tmpdir, f"storage-{tool}")
    if tool == "mlflow-file":
        env["MLFLOW_ALLOW_FILE_STORE"] = "true"
    argv = [str(python), str(Path(__file__).resolve()), "--worker", tool, "--dir", str(base),
            "--runs", str(args.runs), *flags(args)]
    store = base / "store"
    try:
        run_worker([*argv, "--phase", "setup"], repo, env)
        parts = ({"`mlflow.db`": store / "mlflow.db", "artifact folder": store / "mlartifacts"}
                 if tool == "mlflow-sqlite" else {"whole store folder": store / "mlruns"})
        empty = {name: size(path) for name, path in parts.items()}
        say(f"{tool}: logging {args.runs:,} runs into {store}")
        result = run_worker([*argv, "--phase", "log"], repo, env)
        lines = [(tool, name, minus(size(path), empty[name])) for name, path in parts.items()]
        total = lines[0][2]
        for line in lines[1:]:
            total = plus(total, line[2])
        if len(lines) > 1:
            lines.append((tool, "total", total))
        return {"version": result["version"], "seconds": result["seconds"], "lines": lines,
                "headline": total, "headline_name": "total"}
    finally:
        cleanup(base, args.keep)


# -- the table ---------------------------------------------------------------------------------
LABEL = {"labbook": "labbook", "mlflow-sqlite": "MLflow sqlite", "mlflow-file": "MLflow file store"}


def render(args: argparse.Namespace, measured: dict[str, dict[str, Any]], info: dict[str, str],
           loads: tuple[str, str], took_s: float) -> str:
    n = args.runs
    style = "one log_metric call per value" if args.mlflow_per_call else "one log_batch per run"
    lines = [
        f"# Storage: bytes per run, {n:,} runs per store", "",
        f"{time.strftime('%Y-%m-%d %H:%M %Z')} · `{' '.join(sys.argv[1:]) or '(defaults)'}` · "
        f"{took_s / 60:.1f} min", "",
        f"Each store holds {n:,} runs of the standard workload ({workload.N_PARAMS} params, "
        f"{workload.N_METRICS} metrics × {workload.N_STEPS} steps, a "
        f"{workload.ARTIFACT_BYTES // 1024} KB artifact), minus the same store empty. "
        f"Apparent = the files' bytes; on disk = allocated blocks. MLflow logged with {style}. "
        + ("Every run logged the workload's very values and artifact (git stores them once)."
           if args.identical else "Each run drew its own metric values (within 1% of the "
           "workload's) and its own 10 KB of random artifact bytes."), "",
        "| store | what | files added | apparent bytes | on disk | bytes/run apparent | bytes/run on disk |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for tool, m in measured.items():
        for _, what, s in m["lines"]:
            lines.append(f"| {LABEL[tool]} {m['version']} | {what} | {s['files']:,} | "
                         f"{s['apparent']:,} | {s['disk']:,} | {s['apparent'] / n:,.0f} | "
                         f"{s['disk'] / n:,.0f} |")
    if "labbook" in measured:
        lb = measured["labbook"]["headline"]["apparent"]
        for tool in ("mlflow-sqlite", "mlflow-file"):
            if tool in measured and lb:
                other = measured[tool]["headline"]["apparent"]
                lines.append(f"\nlabbook after `git gc` takes {lb / other:.2f}× the bytes of "
                             f"{LABEL[tool]} ({lb / n:,.0f} vs {other / n:,.0f} bytes/run, apparent).")
    lines += ["", "Time to log the runs (not a benchmark of speed here): " + ", ".join(
        f"{LABEL[t]} {m['seconds']:.0f} s" for t, m in measured.items()) + ".", "",
        "| machine | |", "|---|---|", f"| nproc | {info['nproc']} |", f"| CPU | {info['cpu']} |",
        f"| python | {info['python']} |", f"| git | {info['git']} |",
        f"| load average before / after | {loads[0]} / {loads[1]} |", ""]
    return "\n".join(lines)


def rows(args: argparse.Namespace, measured: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    from resultfile import row

    out = []
    for tool, m in measured.items():
        for _, what, s in m["lines"]:
            figure = f"storage: {LABEL[tool]} {what.replace('`', '')}, bytes per run"
            out.append(row(figure + " (apparent)", s["apparent"] / args.runs, "bytes/run"))
            out.append(row(figure + " (on disk)", s["disk"] / args.runs, "bytes/run"))
    return out


def main() -> int:
    args = parse_args()
    if args.worker:
        worker_main(args)
        return 0
    began = time.perf_counter()
    info = machine_info()
    load_before = load_average()
    say(f"{machine_line(info, load_before)}; {args.runs:,} runs per store")
    measured: dict[str, dict[str, Any]] = {}
    python = None
    if any(tool != "labbook" for tool in args.tools):
        python = ensure_mlflow(args.mlflow_venv, args.mlflow_spec)
    for tool in args.tools:
        if tool == "labbook":
            measured[tool] = measure_labbook(args)
        else:
            assert python is not None
            measured[tool] = measure_mlflow(args, tool, python)
        head = measured[tool]["headline"]
        say(f"{LABEL[tool]}: {head['apparent'] / args.runs:,.0f} bytes/run apparent, "
            f"{head['disk'] / args.runs:,.0f} on disk ({measured[tool]['headline_name']})")
    table = render(args, measured, info, (load_before, load_average()), time.perf_counter() - began)
    say("")
    say(table)
    from resultfile import write

    path = write(args.output, table, rows(args, measured), info)
    say(f"written to {path.with_suffix('.md')} and {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
