"""How fast does labbook log, and how does it compare with MLflow? (see benchmarks/README.md)

    .venv/bin/python benchmarks/bench_logging.py            # the full benchmark (`make bench`)
    .venv/bin/python benchmarks/bench_logging.py --quick    # a smoke test with small numbers

Workload (benchmarks/workload.py): runs with 20 params, 10 metrics × 100 steps
logged one ``log_metric(key, value, step=)`` call at a time, and one 10 KB
artifact. The script measures

(a) µs per log_metric call and (b) ms per whole run (start_run … end, every
    commit included), in repetitions that alternate labbook and MLflow (sqlite
    store, in its own venv at benchmarks/.venv-mlflow, made here if missing),
    each repetition in a fresh process and a fresh git repository;
(c) ms per run when the branch already holds ~100 runs and ~10,000 runs, in one
    repository filled quickly with copies of a real run (``--runs-at``).

It prints a markdown table of medians and writes it to benchmarks/results/logging.md.
The labbook side uses only the standard library and labbook.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import dataclasses
import io
import json
import os
import platform
import pstats
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import workload

HERE = Path(__file__).resolve().parent
DEFAULT_VENV = HERE / ".venv-mlflow"
DEFAULT_OUTPUT = HERE / "results" / "logging.md"

TARGET_CALL_US = 20.0
TARGET_RUN_MS = 50.0
TARGET_SCALE = 1.5

FULL = {"reps": 5, "runs": 20, "mlflow_runs": 3, "warmup": 1, "runs_at": "100,10000",
        "scale_timed": 30, "batch": 500}
QUICK = {"reps": 2, "runs": 3, "mlflow_runs": 1, "warmup": 1, "runs_at": "20,200",
         "scale_timed": 5, "batch": 100}


# -- command line ---------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small numbers: a smoke test")
    p.add_argument("--reps", type=int, help="repetitions of each tool, alternating (full: 5)")
    p.add_argument("--runs", type=int, help="timed labbook runs per repetition (full: 20)")
    p.add_argument("--mlflow-runs", type=int, help="timed MLflow runs per repetition (full: 3)")
    p.add_argument("--warmup", type=int, help="untimed runs at the start of each repetition")
    p.add_argument("--runs-at", help="branch sizes for the scale test, e.g. 100,10000")
    p.add_argument("--scale-timed", type=int, help="real runs timed at each size (full: 30)")
    p.add_argument("--batch", type=int, help="filler runs per commit when filling the branch")
    p.add_argument("--no-mlflow", action="store_true", help="skip MLflow (no venv is made)")
    p.add_argument("--no-scale", action="store_true", help="skip the scale test")
    p.add_argument("--mlflow-venv", type=Path, default=DEFAULT_VENV,
                   help=f"the venv MLflow runs in (default: {DEFAULT_VENV})")
    p.add_argument("--mlflow-spec", default="mlflow", help="what pip installs there")
    p.add_argument("--tmpdir", type=Path, default=Path(tempfile.gettempdir()),
                   help="where the fresh repositories are made")
    p.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="the markdown file")
    p.add_argument("--keep", action="store_true", help="keep the temporary repositories")
    p.add_argument("--profile", action="store_true",
                   help="instead: profile one labbook repetition with cProfile and print it")
    # internal: the parent runs itself as a worker in a fresh process
    p.add_argument("--worker", choices=["labbook", "scale"], help=argparse.SUPPRESS)
    p.add_argument("--repo", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--profile-out", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    preset = QUICK if args.quick else FULL
    for key, value in preset.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    try:
        args.sizes = sorted({int(s.replace("_", "")) for s in args.runs_at.split(",") if s})
    except ValueError:
        p.error(f"--runs-at {args.runs_at!r}: give whole numbers separated by commas")
    if args.reps < 1 or args.runs < 1 or args.mlflow_runs < 1 or not args.sizes:
        p.error("--reps, --runs, --mlflow-runs and --runs-at need at least one")
    return args


def say(text: str) -> None:
    print(text, flush=True)


def note(text: str) -> None:
    """A worker's progress line (stderr; the parent echoes lines that start with two spaces)."""
    print(f"  {text}", file=sys.stderr, flush=True)


# -- workers (run in a fresh process, print one JSON line) -----------------------------
def labbook_worker(repo: Path, runs: int, warmup: int, profile_out: Path | None) -> dict:
    import labbook

    labbook.set_repository(repo)
    labbook.set_experiment(workload.EXPERIMENT)
    artifact = workload.write_artifact(repo / "outputs")
    profiler = cProfile.Profile() if profile_out else None

    def start(name: str) -> None:
        labbook.start_run(name=name)

    run_ns: list[int] = []
    call_ns: list[int] = []
    for i in range(warmup + runs):
        timed = i >= warmup
        if profiler is not None and timed:
            profiler.enable()
        total, calls = workload.timed_run(start, labbook.end_run, labbook.log_params,
                                          labbook.log_metric, labbook.log_artifact, artifact,
                                          f"run-{i}")
        if profiler is not None and timed:
            profiler.disable()
        if timed:
            run_ns.append(total)
            call_ns.extend(calls)
    if profiler is not None and profile_out is not None:
        profile_out.write_text(profile_report(profiler, runs))
    return {"tool": "labbook", "version": labbook.__version__,
            "python": platform.python_version(), **workload.summarize(run_ns, call_ns)}


def profile_report(profiler: cProfile.Profile, runs: int) -> str:
    out = io.StringIO()
    out.write(f"cProfile of {runs} labbook runs (times are totals over those runs)\n")
    stats = pstats.Stats(profiler, stream=out)
    stats.strip_dirs().sort_stats("cumulative").print_stats(45)
    stats.sort_stats("tottime").print_stats(25)
    return out.getvalue()


def scale_worker(repo: Path, sizes: list[int], timed: int, batch: int) -> dict:
    """Time real runs when the branch holds each of ``sizes`` runs, filling it in between."""
    import labbook
    from labbook import record
    from labbook.repository import open_repository
    from labbook.store import Blob

    labbook.set_repository(repo)
    labbook.set_experiment(workload.EXPERIMENT)
    artifact = workload.write_artifact(repo / "outputs")
    started: list[Any] = []

    def start(name: str) -> None:
        started.append(labbook.start_run(name=name))

    def one_run(name: str) -> tuple[int, list[int]]:
        return workload.timed_run(start, labbook.end_run, labbook.log_params,
                                  labbook.log_metric, labbook.log_artifact, artifact, name)

    # A real run (also the warm-up) is the template every filler run copies.
    one_run("template")
    template = labbook.get_run(started[-1].id)
    filler = open_repository(repo)
    filler.git.fsync = False  # filler runs only set the stage; timed runs keep the defaults
    snapshot = filler.store.snapshot()
    blobs = {}
    for pointer in template.record.artifacts:
        entry = snapshot.entry(record.artifact_branch_path(template.id, pointer.path))
        assert entry is not None, pointer.path
        blobs[pointer.path] = Blob(entry.oid)
    rng = random.Random(1234)

    def fill(count: int, first: int) -> None:
        done = 0
        began = time.perf_counter()
        while done < count:
            n = min(batch, count - done)
            changes: dict[str, bytes | Blob] = {}
            for k in range(n):
                index = first + done + k
                rid = f"{rng.getrandbits(128):032x}"
                shift = index * 60_000  # a minute apart, so every metrics.tsv differs
                rec = dataclasses.replace(template.record, id=rid, name=f"filler-{index}")
                rows = [(key, step, ts + shift, value) for key, step, ts, value in template.history]
                changes[record.run_path(rid)] = record.run_to_yaml(rec)
                changes[record.history_path(rid)] = record.history_to_tsv(rows)
                for path, blob in blobs.items():
                    changes[record.artifact_branch_path(rid, path)] = blob
            filler.store.commit(changes, f"bench: {n} filler runs")
            done += n
            note(f"filled {done:,}/{count:,} runs ({time.perf_counter() - began:.0f} s)")

    results = []
    for size in sizes:
        have = count_runs(filler.store)
        fill_s = 0.0
        if size > have:
            note(f"filling the branch from {have:,} to {size:,} runs, {batch} per commit")
            began = time.perf_counter()
            fill(size - have, have)
            fill_s = time.perf_counter() - began
            have = count_runs(filler.store)
        run_ns: list[int] = []
        call_ns: list[int] = []
        for i in range(timed):
            total, calls = one_run(f"at-{size}-{i}")
            run_ns.append(total)
            call_ns.extend(calls)
        summary = workload.summarize(run_ns, call_ns)
        note(f"{timed} runs at {have:,} runs on the branch: {summary['run_ms_median']:.1f} ms/run,"
             f" {summary['call_us_median']:.1f} µs/log_metric (medians)")
        results.append({"size": have, "fill_s": fill_s, **summary, **object_counts(filler.git)})
    return {"tool": "labbook", "sizes": results}


def count_runs(store: Any) -> int:
    snapshot = store.snapshot()
    return sum(len(snapshot.list(f"runs/{fan.name}")) for fan in snapshot.list("runs"))


def object_counts(git: Any) -> dict[str, float]:
    count = size = 0
    for root, _dirs, files in os.walk(git.objects_dir):
        count += len(files)
        size += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    return {"objects": count, "objects_mb": size / 1e6}


def worker_main(args: argparse.Namespace) -> None:
    out = sys.stdout
    with contextlib.redirect_stdout(sys.stderr):
        if args.worker == "labbook":
            result = labbook_worker(args.repo, args.runs, args.warmup, args.profile_out)
        else:
            result = scale_worker(args.repo, args.sizes, args.scale_timed, args.batch)
    out.write(json.dumps(result) + "\n")
    out.flush()


# -- the parent: fresh repositories, workers, the table ------------------------------
def clean_env(gitconfig: Path) -> dict[str, str]:
    """The environment of a worker: only the benchmark's git config, no stray redirections."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GIT_", "MLFLOW_", "LABBOOK_"))}
    env.update(GIT_CONFIG_GLOBAL=str(gitconfig), GIT_CONFIG_NOSYSTEM="1",
               MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true")
    return env


def fresh_repo(tmpdir: Path, label: str) -> tuple[Path, Path, dict[str, str]]:
    """A temporary folder holding a git config and a new repository with one commit."""
    tmpdir.mkdir(parents=True, exist_ok=True)
    base = Path(tempfile.mkdtemp(prefix=f"labbook-bench-{label}-", dir=tmpdir))
    gitconfig = base / "gitconfig"
    gitconfig.write_text("[user]\n\tname = bench\n\temail = bench@localhost\n"
                         "[init]\n\tdefaultBranch = main\n")
    env = clean_env(gitconfig)
    repo = base / "repo"
    subprocess.run(["git", "init", "-q", str(repo)], env=env, check=True)
    (repo / "train.py").write_text("print('training')\n")
    (repo / ".gitignore").write_text("outputs/\nmlflow.db\nmlartifacts/\n")
    subprocess.run(["git", "-C", str(repo), "add", "."], env=env, check=True)
    subprocess.run(["git", "-C", str(repo), "commit", "-q", "-m", "initial"], env=env, check=True)
    return base, repo, env


def run_worker(argv: list[str], cwd: Path, env: dict[str, str], label: str) -> dict:
    """Run a worker; echo its progress lines, keep the rest for an error report."""
    with tempfile.TemporaryFile("w+") as result:
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=result, stderr=subprocess.PIPE,
                                text=True, errors="replace")
        other: list[str] = []
        assert proc.stderr is not None
        for line in proc.stderr:
            if line.startswith("  "):
                print(line, end="", flush=True)
            else:
                other.append(line)
        code = proc.wait()
        result.seek(0)
        lines = [line for line in result.read().splitlines() if line.strip()]
    if code != 0 or not lines:
        sys.stderr.write("".join(other[-40:]))
        raise SystemExit(f"{label} worker failed (exit {code}): {' '.join(map(str, argv))}")
    return json.loads(lines[-1])


def ensure_mlflow(venv: Path, spec: str) -> Path:
    """The python of a venv with MLflow, made with python3 -m venv + pip install if missing."""
    python = venv / "bin" / "python"
    stamp = venv / ".bench-installed"
    if python.exists() and stamp.exists() and stamp.read_text().strip() == spec:
        say(f"MLflow: using the venv {venv}")
        return python
    if not python.exists():
        base = shutil.which("python3") or sys.executable
        say(f"MLflow: creating a venv at {venv} ({base} -m venv)")
        subprocess.run([base, "-m", "venv", str(venv)], check=True)
    say(f"MLflow: pip install {spec} into {venv} (the first time takes a few minutes)")
    subprocess.run([str(python), "-m", "pip", "install", "--disable-pip-version-check",
                    "--progress-bar", "off", spec], check=True)
    stamp.write_text(spec + "\n")
    return python


def one_labbook_rep(args: argparse.Namespace, label: str,
                    profile_out: Path | None = None) -> dict:
    base, repo, env = fresh_repo(args.tmpdir, "lb")
    try:
        argv = [sys.executable, str(Path(__file__).resolve()), "--worker", "labbook",
                "--repo", str(repo), "--runs", str(args.runs), "--warmup", str(args.warmup)]
        if profile_out is not None:
            argv += ["--profile-out", str(profile_out)]
        result = run_worker(argv, repo, env, label)
    finally:
        cleanup(base, args.keep)
    say(f"{label}: {result['call_us_median']:.1f} µs/log_metric, "
        f"{result['run_ms_median']:.1f} ms/run (medians of {result['runs']} runs)")
    return result


def one_mlflow_rep(args: argparse.Namespace, python: Path, label: str) -> dict:
    base, repo, env = fresh_repo(args.tmpdir, "mlflow")
    try:
        argv = [str(python), str(HERE / "mlflow_worker.py"), "--dir", str(repo),
                "--runs", str(args.mlflow_runs), "--warmup", str(args.warmup)]
        result = run_worker(argv, repo, env, label)
    finally:
        cleanup(base, args.keep)
    say(f"{label}: {result['call_us_median']:.1f} µs/log_metric, "
        f"{result['run_ms_median']:.1f} ms/run (medians of {result['runs']} runs; "
        f"import {result['import_s']:.1f} s, store setup {result['setup_s']:.1f} s)")
    return result


def scale_test(args: argparse.Namespace) -> dict:
    base, repo, env = fresh_repo(args.tmpdir, "scale")
    say(f"scale: one repository, {args.scale_timed} real runs timed at "
        + ", ".join(f"{s:,}" for s in args.sizes) + " runs on the branch")
    try:
        argv = [sys.executable, str(Path(__file__).resolve()), "--worker", "scale",
                "--repo", str(repo), "--runs-at", ",".join(map(str, args.sizes)),
                "--scale-timed", str(args.scale_timed), "--batch", str(args.batch)]
        return run_worker(argv, repo, env, "scale")
    finally:
        cleanup(base, args.keep)


def cleanup(base: Path, keep: bool) -> None:
    if keep:
        say(f"  kept {base}")
    else:
        shutil.rmtree(base, ignore_errors=True)


def machine_info() -> dict[str, str]:
    cpu = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    try:
        nproc = str(len(os.sched_getaffinity(0)))
    except AttributeError:
        nproc = str(os.cpu_count())
    git = subprocess.run(["git", "--version"], capture_output=True, text=True).stdout.strip()
    return {"nproc": nproc, "cpu": cpu, "python": sys.version.split()[0],
            "git": git.removeprefix("git version "), "platform": platform.platform()}


def load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


# -- the table ---------------------------------------------------------------------------
def num(x: float) -> str:
    if x >= 100:
        return f"{x:,.0f}"
    if x >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def spread(values: list[float]) -> str:
    """The median of repetition medians, with their range."""
    if len(values) == 1:
        return num(values[0])
    return f"{num(statistics.median(values))} ({num(min(values))}–{num(max(values))})"


def ratio(a: float, b: float) -> str:
    if not b:
        return "—"
    r = a / b
    return f"{r:.3g} (MLflow {1 / r:,.0f}× slower)" if r < 1 else f"{r:.3g}"


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def verdict(ok: bool) -> str:
    return "yes" if ok else "**no**"


def render(args: argparse.Namespace, info: dict[str, str], lb: list[dict], ml: list[dict],
           scale: dict | None, load_before: str, load_after: str, took_s: float) -> str:
    def med(reps: list[dict], key: str) -> float:
        return statistics.median(r[key] for r in reps)

    lines = [
        "# labbook logging benchmark",
        "",
        f"{time.strftime('%Y-%m-%d %H:%M %Z')} · `{' '.join(sys.argv[1:]) or '(defaults)'}` · "
        f"{took_s / 60:.1f} min",
        "",
        f"Workload per run: {workload.N_PARAMS} params (one log_params call), "
        f"{workload.N_METRICS} metrics × {workload.N_STEPS} steps logged one "
        f"`log_metric(key, value, step=)` call at a time, one "
        f"{workload.ARTIFACT_BYTES // 1024} KB artifact.",
        f"{plural(args.reps, 'repetition')} per tool"
        + (", alternating labbook and MLflow" if ml else "")
        + "; each repetition is a fresh process and a fresh git repository, "
        f"{plural(args.warmup, 'untimed warm-up run')}, then "
        f"{plural(args.runs, 'timed labbook run')}"
        + (f" or {plural(args.mlflow_runs, 'timed MLflow run')}" if ml else "") + ". "
        "Figures are the median of the repetitions' medians (range of those medians).",
        "",
    ]
    call_lb, run_lb = med(lb, "call_us_median"), med(lb, "run_ms_median")
    mean_lb, p99_lb = med(lb, "call_us_mean"), med(lb, "call_us_p99")
    if ml:
        mlv = ml[0]["version"]
        call_ml, run_ml = med(ml, "call_us_median"), med(ml, "run_ms_median")
        mean_ml, p99_ml = med(ml, "call_us_mean"), med(ml, "call_us_p99")
        lines += [
            f"| figure | labbook | MLflow {mlv} (sqlite) | labbook / MLflow | target | "
            "labbook meets it |",
            "|---|---:|---:|---|---|---|",
            f"| µs per log_metric call, median | {spread([r['call_us_median'] for r in lb])} | "
            f"{spread([r['call_us_median'] for r in ml])} | {ratio(call_lb, call_ml)} | "
            f"≤ {TARGET_CALL_US:g} µs | {verdict(call_lb <= TARGET_CALL_US)} |",
            f"| µs per log_metric call, mean | {spread([r['call_us_mean'] for r in lb])} | "
            f"{spread([r['call_us_mean'] for r in ml])} | {ratio(mean_lb, mean_ml)} | | |",
            f"| µs per log_metric call, 99th percentile | "
            f"{spread([r['call_us_p99'] for r in lb])} | {spread([r['call_us_p99'] for r in ml])}"
            f" | {ratio(p99_lb, p99_ml)} | | |",
            f"| ms per run (start_run … end, all commits), median | "
            f"{spread([r['run_ms_median'] for r in lb])} | "
            f"{spread([r['run_ms_median'] for r in ml])} | {ratio(run_lb, run_ml)} | "
            f"≤ {TARGET_RUN_MS:g} ms | {verdict(run_lb <= TARGET_RUN_MS)} |",
        ]
    else:
        lines += [
            "| figure | labbook | target | labbook meets it |",
            "|---|---:|---|---|",
            f"| µs per log_metric call, median | {spread([r['call_us_median'] for r in lb])} | "
            f"≤ {TARGET_CALL_US:g} µs | {verdict(call_lb <= TARGET_CALL_US)} |",
            f"| µs per log_metric call, mean | {spread([r['call_us_mean'] for r in lb])} | | |",
            f"| µs per log_metric call, 99th percentile | "
            f"{spread([r['call_us_p99'] for r in lb])} | | |",
            f"| ms per run (start_run … end, all commits), median | "
            f"{spread([r['run_ms_median'] for r in lb])} | ≤ {TARGET_RUN_MS:g} ms | "
            f"{verdict(run_lb <= TARGET_RUN_MS)} |",
        ]
    if scale is not None:
        sizes = scale["sizes"]
        first = sizes[0]["run_ms_median"]
        lines += [
            "",
            f"Scale, labbook only: one repository; before each size the branch is filled with "
            f"copies of a real run ({args.batch} per commit, without fsync), then "
            f"{args.scale_timed} real runs are timed with the full API and default settings.",
            "",
            "| runs on the branch | ms per run, median | µs per log_metric, median | "
            "vs the first size | git objects (MB) | fill time |",
            "|---:|---:|---:|---:|---:|---:|",
        ]
        for s in sizes:
            lines.append(f"| {s['size']:,} | {num(s['run_ms_median'])} | "
                         f"{num(s['call_us_median'])} | {s['run_ms_median'] / first:.2f}× | "
                         f"{s['objects']:,} ({s['objects_mb']:.0f}) | {s['fill_s']:.0f} s |")
        growth = sizes[-1]["run_ms_median"] / first
        lines += ["", f"Per-run cost at {sizes[-1]['size']:,} vs {sizes[0]['size']:,} runs: "
                      f"{growth:.2f}× (target ≤ {TARGET_SCALE:g}×: "
                      f"{verdict(growth <= TARGET_SCALE)})."]
    mlflow_info = (f"{ml[0]['version']} on Python {ml[0]['python']}, sqlite store" if ml
                   else "not run")
    lines += [
        "",
        "| machine | |",
        "|---|---|",
        f"| nproc | {info['nproc']} |",
        f"| CPU | {info['cpu']} |",
        f"| platform | {info['platform']} |",
        f"| python (labbook) | {info['python']} |",
        f"| git | {info['git']} |",
        f"| labbook | {lb[0]['version']} |",
        f"| mlflow | {mlflow_info} |",
        f"| load average before / after | {load_before} / {load_after} |",
        "",
    ]
    return "\n".join(lines)


def profile_main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp, "profile.txt")
        say(f"profiling one labbook repetition ({args.runs} timed runs) with cProfile")
        one_labbook_rep(args, "labbook (profiled)", profile_out=out)
        say(out.read_text())


def main() -> None:
    args = parse_args()
    if args.worker:
        worker_main(args)
        return
    if args.profile:
        profile_main(args)
        return
    began = time.perf_counter()
    info = machine_info()
    load_before = load_average()
    say(f"machine: {info['nproc']} cores ({info['cpu']}), Python {info['python']}, "
        f"git {info['git']}, load {load_before}")
    python = None if args.no_mlflow else ensure_mlflow(args.mlflow_venv, args.mlflow_spec)
    lb: list[dict] = []
    ml: list[dict] = []
    for rep in range(1, args.reps + 1):
        lb.append(one_labbook_rep(args, f"rep {rep}/{args.reps} labbook"))
        if python is not None:
            ml.append(one_mlflow_rep(args, python, f"rep {rep}/{args.reps} MLflow"))
    scale = None if args.no_scale else scale_test(args)
    table = render(args, info, lb, ml, scale, load_before, load_average(),
                   time.perf_counter() - began)
    say("")
    say(table)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(table)
    say(f"written to {args.output}")


if __name__ == "__main__":
    main()
