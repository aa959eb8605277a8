"""How fast does labbook log, and how does it compare with MLflow? (see benchmarks/README.md)

    .venv/bin/python benchmarks/bench_logging.py            # the full benchmark, ~25 minutes
    .venv/bin/python benchmarks/bench_logging.py --quick    # a smoke test with small numbers

Workload (benchmarks/workload.py): runs with 20 params, 10 metrics × 10, 100 or
1,000 steps, and one 10 KB artifact; the metrics are logged per call (one
``log_metric(key, value, step=)`` a value) or in each tool's batch form (labbook:
``log_metrics(dict, step=)`` a step; MLflow: ``MlflowClient.log_batch`` of up to
1,000 values). The script measures

(a) ms per whole run (start_run … end, every commit included), µs per log_metric
    call and µs per metric value, for labbook and for MLflow with its default
    sqlite store and with its legacy file store, in repetitions that alternate
    labbook, MLflow sqlite, MLflow file store (each in a fresh process and a
    fresh folder; MLflow runs in its own venv at benchmarks/.venv-mlflow, made
    here if missing). labbook times ``--runs`` runs per configuration and
    repetition; MLflow as many as fit ``--mlflow-budget`` seconds (at least one);
(b) ms per run when the branch already holds 100, 10,000 and 100,000 runs, in
    one repository filled quickly with copies of a real run (``--runs-at``).

It prints markdown tables of medians and writes them to benchmarks/results/logging.md,
with every figure in benchmarks/results/logging.json. The labbook side uses only
the standard library and labbook.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import json
import math
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
TARGET_RUN_MS = 50.0     # the standard run: 100 steps, per call
TARGET_SCALE = 1.5
TARGET_RATIO = {(1000, "call"): 0.01, (1000, "batch"): 0.1}  # labbook / MLflow sqlite, per run

TOOLS = ("labbook", "sqlite", "file")
TOOL_NAMES = {"labbook": "labbook", "sqlite": "MLflow sqlite", "file": "MLflow file store"}

FULL = {"reps": 5, "runs": 200, "mlflow_budget": 6.0, "warmup": 1, "steps": "10,100,1000",
        "runs_at": "100,10000,100000", "scale_timed": 30, "batch": 1000}
QUICK = {"reps": 2, "runs": 3, "mlflow_budget": 1.0, "warmup": 1, "steps": "10,100",
         "runs_at": "20,200", "scale_timed": 5, "batch": 100}
PROFILE_RUNS = 20


# -- command line ---------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small numbers: a smoke test (~1 minute)")
    p.add_argument("--reps", type=int, help="repetitions of each tool, alternating (full: 5)")
    p.add_argument("--runs", type=int,
                   help="timed labbook runs per configuration and repetition (full: 200)")
    p.add_argument("--mlflow-runs", type=int,
                   help="the most timed MLflow runs per configuration and repetition "
                        "(default: as --runs)")
    p.add_argument("--mlflow-budget", type=float,
                   help="seconds of MLflow runs per configuration and repetition; at least one "
                        "run is timed (full: 6)")
    p.add_argument("--warmup", type=int,
                   help="untimed runs per style at the start of each repetition (10 steps)")
    p.add_argument("--steps", help="steps per run, e.g. 10,100,1000 (full)")
    p.add_argument("--styles", default="call,batch", help="call, batch or call,batch")
    p.add_argument("--stores", default="sqlite,file", help="MLflow stores: sqlite, file or both")
    p.add_argument("--runs-at", help="branch sizes for the scale test, e.g. 100,10000,100000")
    p.add_argument("--scale-timed", type=int, help="real runs timed at each size (full: 30)")
    p.add_argument("--batch", type=int, help="filler runs per commit when filling the branch")
    p.add_argument("--no-mlflow", action="store_true", help="skip MLflow (no venv is made)")
    p.add_argument("--no-scale", action="store_true", help="skip the scale test")
    p.add_argument("--mlflow-venv", type=Path, default=DEFAULT_VENV,
                   help=f"the venv MLflow runs in (default: {DEFAULT_VENV})")
    p.add_argument("--mlflow-spec", default="mlflow", help="what pip installs there")
    p.add_argument("--tmpdir", type=Path, default=Path(tempfile.gettempdir()),
                   help="where the fresh repositories are made")
    p.add_argument("--output", type=Path, default=DEFAULT_OUTPUT,
                   help="the markdown file; the JSON goes beside it (.json)")
    p.add_argument("--keep", action="store_true", help="keep the temporary repositories")
    p.add_argument("--profile", action="store_true",
                   help=f"instead: profile one labbook repetition with cProfile and print it "
                        f"({PROFILE_RUNS} runs per configuration unless --runs)")
    # internal: the parent runs itself as a worker in a fresh process
    p.add_argument("--worker", choices=["labbook", "scale"], help=argparse.SUPPRESS)
    p.add_argument("--repo", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--profile-out", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.profile and args.runs is None:
        args.runs = PROFILE_RUNS
    for key, value in (QUICK if args.quick else FULL).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.mlflow_runs is None:
        args.mlflow_runs = args.runs
    args.sizes = numbers(p, "--runs-at", args.runs_at)
    args.step_counts = numbers(p, "--steps", args.steps)
    args.style_list = [s for s in workload.STYLES if s in args.styles.split(",")]
    args.store_list = [] if args.no_mlflow else [s for s in ("sqlite", "file")
                                                   if s in args.stores.split(",")]
    if args.reps < 1 or args.runs < 1 or args.mlflow_runs < 1 or not args.sizes:
        p.error("--reps, --runs, --mlflow-runs and --runs-at need at least one")
    if not args.step_counts or not args.style_list:
        p.error("--steps and --styles need at least one (styles: call, batch)")
    return args


def numbers(p: argparse.ArgumentParser, flag: str, text: str) -> list[int]:
    try:
        return sorted({int(s.replace("_", "")) for s in text.split(",") if s})
    except ValueError:
        p.error(f"{flag} {text!r}: give whole numbers separated by commas")


def say(text: str) -> None:
    print(text, flush=True)


def note(text: str) -> None:
    """A worker's progress line (stderr; the parent echoes lines that start with two spaces)."""
    print(f"  {text}", file=sys.stderr, flush=True)


# -- workers (run in a fresh process, print one JSON line) -----------------------------
def labbook_tracker() -> workload.Tracker:
    """The workload's calls through labbook's fluent API; a batch is log_metrics of one step."""
    import labbook

    def start(name: str) -> None:
        labbook.start_run(name=name)

    def log_step(values: dict[str, float], step: int) -> None:
        labbook.log_metrics(values, step=step)

    return workload.Tracker(start=start, end=labbook.end_run, log_params=labbook.log_params,
                            log_metric=labbook.log_metric, log_step=log_step, flush=lambda: None,
                            log_artifact=labbook.log_artifact,
                            set_experiment=labbook.set_experiment)


def labbook_worker(args: argparse.Namespace) -> dict:
    import labbook

    labbook.set_repository(args.repo)
    tracker = labbook_tracker()
    artifact = workload.write_artifact(args.repo / "outputs")
    workload.warm_up(tracker, artifact, args.warmup, min(args.step_counts), args.style_list)
    profiler = cProfile.Profile() if args.profile_out else None
    configs = []
    for steps in args.step_counts:
        for style in args.style_list:
            if profiler is not None:
                profiler.enable()
            configs.append(workload.measure_config(tracker, artifact, steps, style, args.runs,
                                                   progress=lambda text: note(f"  {text}")))
            if profiler is not None:
                profiler.disable()
    if profiler is not None:
        args.profile_out.write_text(profile_report(profiler, args.runs))
    return {"tool": "labbook", "version": labbook.__version__,
            "python": platform.python_version(), "configs": configs}


def profile_report(profiler: cProfile.Profile, runs: int) -> str:
    out = io.StringIO()
    out.write(f"cProfile of {runs} labbook runs per configuration (times are totals over those "
              "runs, the benchmark's own bookkeeping included)\n")
    stats = pstats.Stats(profiler, stream=out)
    stats.strip_dirs().sort_stats("cumulative").print_stats(45)
    stats.sort_stats("tottime").print_stats(25)
    return out.getvalue()


def scale_worker(repo: Path, sizes: list[int], timed: int, batch: int) -> dict:
    """Time real runs when the branch holds each of ``sizes`` runs, filling it in between."""
    import labbook
    from labbook.runs.repository import open_repository

    labbook.set_repository(repo)
    labbook.set_experiment(workload.EXPERIMENT)
    tracker = labbook_tracker()
    artifact = workload.write_artifact(repo / "outputs")
    started: list[Any] = []
    tracker.start = lambda name: started.append(labbook.start_run(name=name))

    # A real run (also the warm-up) is the template every filler run copies.
    workload.one_run(tracker, artifact, "template", workload.N_STEPS, "call")
    filler = open_repository(repo)
    filler.git.fsync = False  # filler runs only set the stage; timed runs keep the defaults
    copies = Copier(filler.store, started[-1].id)
    results = []
    for size in sizes:
        have = count_runs(filler.store)
        fill_s = 0.0
        if size > have:
            note(f"filling the branch from {have:,} to {size:,} runs, {batch:,} per commit")
            began = time.perf_counter()
            fill(filler.store, copies, size - have, have, batch)
            fill_s = time.perf_counter() - began
            have = count_runs(filler.store)
        run_ns: list[int] = []
        call_ns: list[int] = []
        for i in range(timed):
            total, calls, _ = workload.one_run(tracker, artifact, f"at-{size}-{i}",
                                               workload.N_STEPS, "call")
            run_ns.append(total)
            call_ns.extend(calls)
        summary = workload.summarize(run_ns, call_ns)
        note(f"{timed} runs at {have:,} runs on the branch: {summary['run_ms_median']:.1f} ms/run,"
             f" {summary['call_us_median']:.1f} µs/log_metric (medians)")
        results.append({"size": have, "fill_s": fill_s, **summary, **object_counts(filler.git)})
    return {"tool": "labbook", "sizes": results}


class Copier:
    """The branch files of a new run copied from a real one: same tree shape, distinct blobs.

    run.yaml is the template's with the id and name replaced; metrics.tsv is the
    template's with the timestamp of its first value moved (so no two are the
    same blob); the artifact is the template's blob, shared.
    """

    def __init__(self, store: Any, template_id: str):
        from labbook.format import record

        self.record = record
        snapshot = store.snapshot()
        folder = record.run_dir(template_id)
        files = {}
        for entry in snapshot.list(folder):
            if not entry.is_tree:
                files[entry.name] = entry.oid
        texts = store.blobs([files["run.yaml"], files["metrics.tsv"]])
        self.yaml = texts[files["run.yaml"]]
        assert self.yaml.count(b"\nname: template\n") == 1, "the template run.yaml changed shape"
        header, first, self.tsv_rest = texts[files["metrics.tsv"]].split(b"\n", 2)
        self.tsv_header = header + b"\n"
        self.first_row = first.split(b"\t")
        self.template_id = template_id.encode()
        self.shared = {}
        from labbook.storage.store import Blob

        for entry in snapshot.list(f"{folder}/artifacts"):
            assert not entry.is_tree, entry.name
            self.shared[f"artifacts/{entry.name}"] = Blob(entry.oid)

    def changes(self, index: int, rid: str) -> dict[str, Any]:
        folder = self.record.run_dir(rid)
        run_yaml = (self.yaml.replace(self.template_id, rid.encode())
                    .replace(b"\nname: template\n", f"\nname: filler-{index}\n".encode()))
        key, step, ts, value = self.first_row
        first = b"\t".join([key, step, str(int(ts) + 60_000 * (index + 1)).encode(), value])
        out: dict[str, Any] = {f"{folder}/run.yaml": run_yaml,
                               f"{folder}/metrics.tsv": self.tsv_header + first + b"\n" + self.tsv_rest}
        out.update({f"{folder}/{path}": blob for path, blob in self.shared.items()})
        return out


def fill(store: Any, copies: Copier, count: int, first: int, batch: int) -> None:
    """Commit ``count`` copies of the template run, ``batch`` per commit."""
    rng = random.Random(1234 + first)
    done = 0
    began = time.perf_counter()
    last_note = began
    while done < count:
        n = min(batch, count - done)
        changes: dict[str, Any] = {}
        for k in range(n):
            changes.update(copies.changes(first + done + k, f"{rng.getrandbits(128):032x}"))
        store.commit(changes, f"bench: {n} filler runs")
        done += n
        now = time.perf_counter()
        if now - last_note >= 10 or done == count:
            last_note = now
            note(f"filled {done:,}/{count:,} runs ({now - began:.0f} s)")


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
            result = labbook_worker(args)
        else:
            result = scale_worker(args.repo, args.sizes, args.scale_timed, args.batch)
    out.write(json.dumps(result) + "\n")
    out.flush()


# -- the parent: fresh repositories, workers, the table ------------------------------
def clean_env(gitconfig: Path) -> dict[str, str]:
    """The environment of a worker: only the benchmark's git config, no stray redirections."""
    # PYTHONDONTWRITEBYTECODE goes too: with it an editable labbook is compiled from source
    # in every process (~0.1 s), while MLflow, installed by pip, has its bytecode compiled.
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GIT_", "MLFLOW_", "LABBOOK_")) and k != "PYTHONDONTWRITEBYTECODE"}
    env.update(GIT_CONFIG_GLOBAL=str(gitconfig), GIT_CONFIG_NOSYSTEM="1",
               MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true")
    return env


def fresh_repo(tmpdir: Path, label: str) -> tuple[Path, Path, dict[str, str]]:
    """A temporary folder holding a git config and a new repository with one commit."""
    tmpdir.mkdir(parents=True, exist_ok=True)
    base = Path(tempfile.mkdtemp(prefix=f"labbook-bench-{label}-", dir=tmpdir))
    gitconfig = base / "gitconfig"
    # gc.auto = 0: no background `git gc --auto` (git's, or the one labbook runs at the end of
    # a run) competes for the 2 cores while runs are timed; bench_storage measures gc itself.
    gitconfig.write_text("[user]\n\tname = bench\n\temail = bench@localhost\n"
                         "[init]\n\tdefaultBranch = main\n[gc]\n\tauto = 0\n")
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
    say(f"{label}: {plural(args.runs, 'timed run')} per configuration")
    try:
        argv = [sys.executable, str(Path(__file__).resolve()), "--worker", "labbook",
                "--repo", str(repo), "--runs", str(args.runs), "--warmup", str(args.warmup),
                "--steps", args.steps, "--styles", args.styles]
        if profile_out is not None:
            argv += ["--profile-out", str(profile_out)]
        return run_worker(argv, repo, env, label)
    finally:
        cleanup(base, args.keep)


def one_mlflow_rep(args: argparse.Namespace, python: Path, store: str, label: str) -> dict:
    base, repo, env = fresh_repo(args.tmpdir, f"mlflow-{store}")
    say(f"{label}: up to {plural(args.mlflow_runs, 'timed run')} or {args.mlflow_budget:g} s "
        "per configuration")
    try:
        argv = [str(python), str(HERE / "mlflow_worker.py"), "--dir", str(repo),
                "--store", store, "--steps", args.steps, "--styles", args.styles,
                "--runs", str(args.mlflow_runs), "--budget", str(args.mlflow_budget),
                "--warmup", str(args.warmup)]
        result = run_worker(argv, repo, env, label)
    finally:
        cleanup(base, args.keep)
    say(f"  (import mlflow {result['import_s']:.1f} s, store setup {result['setup_s']:.1f} s)")
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
        if not args.keep:
            say("scale: removing the filled repository (one loose object file per git object)")
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


def machine_line(info: dict[str, str], load: str) -> str:
    """The machine as each benchmark announces it before it starts."""
    return (f"machine: {info.get('nproc')} cores ({info.get('cpu')}), Python {info.get('python')}, "
            f"git {info.get('git')}, load {load}")


# -- the figures -------------------------------------------------------------------------
class Figures:
    """The per-repetition results of every tool, looked up by configuration."""

    def __init__(self, results: dict[str, list[dict]]):
        self.results = results
        self.cells: dict[tuple[str, int, str], list[dict]] = {}
        for tool, reps in results.items():
            for rep in reps:
                for cfg in rep["configs"]:
                    self.cells.setdefault((tool, cfg["steps"], cfg["style"]), []).append(cfg)

    def tools(self) -> list[str]:
        return [t for t in TOOLS if self.results.get(t)]

    def values(self, tool: str, steps: int, style: str, key: str) -> list[float]:
        """One value per repetition (its median), or none."""
        return [c[key] for c in self.cells.get((tool, steps, style), []) if key in c]

    def median(self, tool: str, steps: int, style: str, key: str) -> float:
        found = self.values(tool, steps, style, key)
        return statistics.median(found) if found else math.nan

    def runs(self, tool: str, steps: int, style: str) -> int:
        return sum(c["runs"] for c in self.cells.get((tool, steps, style), []))

    def version(self, tool: str) -> str:
        reps = self.results.get(tool)
        return reps[0]["version"] if reps else ""


def num(x: float) -> str:
    if math.isnan(x):
        return "—"
    if x >= 100:
        return f"{x:,.0f}"
    if x >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def spread(values: list[float]) -> str:
    """The median of repetition medians, with their range."""
    if not values:
        return "—"
    if len(values) == 1:
        return num(values[0])
    return f"{num(statistics.median(values))} ({num(min(values))}–{num(max(values))})"


def ratio(a: float, b: float, slower: bool = True) -> str:
    if not b or math.isnan(a) or math.isnan(b):
        return "—"
    r = a / b
    if r >= 1 / 1.5 or not slower:
        return f"{r:.3g}"
    times = 1 / r
    return f"{r:.3g} (MLflow {times:,.0f}× slower)" if times >= 10 else f"{r:.3g} ({times:.1f}×)"


def plural(n: int, word: str) -> str:
    return f"{n:,} {word}" if n == 1 else f"{n:,} {word}s"


def verdict(ok: bool) -> str:
    return "yes" if ok else "**no**"


def met(value: float, limit: float) -> bool | None:
    return None if math.isnan(value) else value <= limit


# -- the markdown --------------------------------------------------------------------------
def render(args: argparse.Namespace, info: dict[str, str], figs: Figures, scale: dict | None,
           load_before: str, load_after: str, took_s: float) -> str:
    tools = figs.tools()
    mlflow = [t for t in tools if t != "labbook"]
    styles = " and ".join(f"{workload.STYLE_NAMES[s]}" for s in args.style_list)
    lines = [
        "# labbook logging benchmark",
        "",
        f"{time.strftime('%Y-%m-%d %H:%M %Z')} · `{' '.join(sys.argv[1:]) or '(defaults)'}` · "
        f"{took_s / 60:.1f} min",
        "",
        f"Workload per run: {workload.N_PARAMS} params (one log_params call), "
        f"{workload.N_METRICS} metrics × {'/'.join(map(str, args.step_counts))} steps logged "
        f"{styles} (per call: one `log_metric(key, value, step=)` per value; batch: labbook "
        "`log_metrics(dict, step=)` per step, MLflow `MlflowClient.log_batch` of up to 1,000 "
        f"values), one {workload.ARTIFACT_BYTES // 1024} KB artifact.",
        f"{plural(args.reps, 'repetition')} per tool, alternating "
        + ", ".join(TOOL_NAMES[t] for t in tools)
        + "; each repetition is a fresh process and a fresh folder with one experiment per "
        f"configuration and {plural(args.warmup, 'untimed warm-up run')} per style first. "
        f"labbook times {plural(args.runs, 'run')} per configuration and repetition"
        + (f"; MLflow as many as fit {args.mlflow_budget:g} s (at least one, at most "
           f"{args.mlflow_runs:,})" if mlflow else "")
        + ". Figures are the median of the repetitions' medians (range of those medians); "
        "the runs column counts every timed run.",
        "",
    ]
    lines += run_table(args, figs, tools)
    lines += value_table(args, figs, tools)
    if "call" in args.style_list:
        lines += call_table(args, figs, tools)
    if scale is not None:
        lines += scale_table(args, scale)
    lines += machine_table(info, figs, load_before, load_after)
    return "\n".join(lines)


def run_table(args: argparse.Namespace, figs: Figures, tools: list[str]) -> list[str]:
    head = ["steps", "style"] + [TOOL_NAMES[t] for t in tools]
    if "sqlite" in tools:
        head += ["labbook / MLflow sqlite", "target", "met"]
    if "file" in tools:
        head += ["labbook / MLflow file store"]
    head += ["runs timed (" + " / ".join(TOOL_NAMES[t] for t in tools) + ")"]
    lines = ["ms per whole run (start_run … end, every commit included):", "",
             "| " + " | ".join(head) + " |", "|---|---|" + "".join(
                 "---|" if h in ("target", "met") else "---:|" for h in head[2:])]
    for steps in args.step_counts:
        for style in args.style_list:
            lb = figs.median("labbook", steps, style, "run_ms_median")
            cells = [f"{steps:,}", workload.STYLE_NAMES[style]]
            cells += [spread(figs.values(t, steps, style, "run_ms_median")) for t in tools]
            if "sqlite" in tools:
                sq = figs.median("sqlite", steps, style, "run_ms_median")
                limit = TARGET_RATIO.get((steps, style))
                cells += [ratio(lb, sq), f"≤ {limit:g}" if limit else "",
                          verdict(lb / sq <= limit) if limit and sq else ""]
            if "file" in tools:
                cells.append(ratio(lb, figs.median("file", steps, style, "run_ms_median")))
            cells.append(" / ".join(f"{figs.runs(t, steps, style):,}" for t in tools))
            lines.append("| " + " | ".join(cells) + " |")
    lb100 = figs.median("labbook", workload.N_STEPS, "call", "run_ms_median")
    if not math.isnan(lb100):
        lines += ["", f"labbook's standard run ({workload.N_STEPS} steps, per call): "
                      f"{num(lb100)} ms (target ≤ {TARGET_RUN_MS:g} ms: "
                      f"{verdict(lb100 <= TARGET_RUN_MS)})."]
    lines.append("")
    return lines


def value_table(args: argparse.Namespace, figs: Figures, tools: list[str]) -> list[str]:
    head = ["steps", "style"] + [TOOL_NAMES[t] for t in tools]
    if "sqlite" in tools:
        head.append("labbook / MLflow sqlite")
    lines = ["µs per metric value (time inside the metric-logging calls ÷ values logged; "
             "batch style: log_metrics or log_batch, buffering included):", "",
             "| " + " | ".join(head) + " |", "|---|---|" + "---:|" * (len(head) - 2)]
    for steps in args.step_counts:
        for style in args.style_list:
            cells = [f"{steps:,}", workload.STYLE_NAMES[style]]
            cells += [spread(figs.values(t, steps, style, "value_us_median")) for t in tools]
            if "sqlite" in tools:
                cells.append(ratio(figs.median("labbook", steps, style, "value_us_median"),
                                   figs.median("sqlite", steps, style, "value_us_median")))
            lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    return lines


def call_table(args: argparse.Namespace, figs: Figures, tools: list[str]) -> list[str]:
    head = ["steps", "µs per log_metric call"] + [TOOL_NAMES[t] for t in tools]
    head += ["target (labbook)", "met"]
    lines = ["Per call style, each log_metric call timed on its own:", "",
             "| " + " | ".join(head) + " |", "|---|---|" + "---:|" * len(tools) + "---|---|"]
    for steps in args.step_counts:
        for key, label in (("call_us_median", "median"), ("call_us_mean", "mean"),
                           ("call_us_p99", "99th percentile")):
            cells = [f"{steps:,}", label]
            cells += [spread(figs.values(t, steps, "call", key)) for t in tools]
            lb = figs.median("labbook", steps, "call", key)
            target = key == "call_us_median" and not math.isnan(lb)
            cells += [f"≤ {TARGET_CALL_US:g} µs" if target else "",
                      verdict(lb <= TARGET_CALL_US) if target else ""]
            lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    return lines


def scale_table(args: argparse.Namespace, scale: dict) -> list[str]:
    sizes = scale["sizes"]
    first = sizes[0]["run_ms_median"]
    lines = [
        f"Scale, labbook only: one repository; before each size the branch is filled with "
        f"copies of a real run ({args.batch:,} per commit, without fsync), then "
        f"{args.scale_timed} real runs ({workload.N_STEPS} steps, per call) are timed with the "
        "full API and default settings.",
        "",
        "| runs on the branch | ms per run, median | µs per log_metric, median | "
        "vs the first size | git objects (MB) | fill time |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for s in sizes:
        lines.append(f"| {s['size']:,} | {num(s['run_ms_median'])} | "
                     f"{num(s['call_us_median'])} | {s['run_ms_median'] / first:.2f}× | "
                     f"{s['objects']:,} ({s['objects_mb']:,.0f}) | {s['fill_s']:.0f} s |")
    growth = sizes[-1]["run_ms_median"] / first
    lines += ["", f"Per-run cost at {sizes[-1]['size']:,} vs {sizes[0]['size']:,} runs: "
                  f"{growth:.2f}× (target ≤ {TARGET_SCALE:g}×: {verdict(growth <= TARGET_SCALE)}).", ""]
    return lines


def machine_table(info: dict[str, str], figs: Figures, load_before: str, load_after: str
                  ) -> list[str]:
    stores = [TOOL_NAMES[t].removeprefix("MLflow ") for t in figs.tools() if t != "labbook"]
    version = figs.version("sqlite") or figs.version("file")
    mlflow_reps = figs.results.get("sqlite") or figs.results.get("file")
    mlflow_info = (f"{version} on Python {mlflow_reps[0]['python']}; " + " and ".join(stores)
                   if mlflow_reps else "not run")
    return [
        "| machine | |",
        "|---|---|",
        f"| nproc | {info['nproc']} |",
        f"| CPU | {info['cpu']} |",
        f"| platform | {info['platform']} |",
        f"| python (labbook) | {info['python']} |",
        f"| git | {info['git']} |",
        f"| labbook | {figs.version('labbook')} |",
        f"| mlflow | {mlflow_info} |",
        f"| load average before / after | {load_before} / {load_after} |",
        "",
    ]


# -- the JSON ------------------------------------------------------------------------------
def row(figure: str, value: float, unit: str, target: str | None = None,
        ok: bool | None = None, **extra: Any) -> dict[str, Any]:
    """One figure of results/logging.json (NaN, not measured, is written as null)."""
    number = float(value)
    return {"figure": figure, "value": None if math.isnan(number) else number, "unit": unit,
            "target": target, "met": ok, **extra}


def rows(args: argparse.Namespace, figs: Figures, scale: dict | None) -> list[dict[str, Any]]:
    out = []
    for steps in args.step_counts:
        for style in args.style_list:
            where = f"{steps:,} steps, {workload.STYLE_NAMES[style]}"
            for tool in figs.tools():
                ms = figs.median(tool, steps, style, "run_ms_median")
                standard = tool == "labbook" and (steps, style) == (workload.N_STEPS, "call")
                out.append(row(f"ms per run, {where}, {TOOL_NAMES[tool]}", ms, "ms",
                               f"≤ {TARGET_RUN_MS:g} ms" if standard else None,
                               met(ms, TARGET_RUN_MS) if standard else None,
                               runs=figs.runs(tool, steps, style)))
                out.append(row(f"µs per metric value, {where}, {TOOL_NAMES[tool]}",
                               figs.median(tool, steps, style, "value_us_median"), "µs"))
                if style == "call":
                    us = figs.median(tool, steps, style, "call_us_median")
                    mine = tool == "labbook"
                    out.append(row(f"µs per log_metric call (median), {steps:,} steps, "
                                   f"{TOOL_NAMES[tool]}", us, "µs",
                                   f"≤ {TARGET_CALL_US:g} µs" if mine else None,
                                   met(us, TARGET_CALL_US) if mine else None))
            lb = figs.median("labbook", steps, style, "run_ms_median")
            for store in ("sqlite", "file"):
                if store not in figs.tools():
                    continue
                r = lb / figs.median(store, steps, style, "run_ms_median")
                limit = TARGET_RATIO.get((steps, style)) if store == "sqlite" else None
                out.append(row(f"labbook / {TOOL_NAMES[store]}, ms per run, {where}", r, "ratio",
                               f"≤ {limit:g}" if limit else None, met(r, limit) if limit else None))
    if scale is not None:
        sizes = scale["sizes"]
        for s in sizes:
            out.append(row(f"ms per run at {s['size']:,} runs on the branch", s["run_ms_median"],
                           "ms", runs=s["runs"]))
            out.append(row(f"fill time to {s['size']:,} runs", s["fill_s"], "s"))
        growth = sizes[-1]["run_ms_median"] / sizes[0]["run_ms_median"]
        out.append(row(f"per-run cost at {sizes[-1]['size']:,} vs {sizes[0]['size']:,} runs",
                       growth, "×", f"≤ {TARGET_SCALE:g}×", growth <= TARGET_SCALE))
    return out


def write_results(output: Path, markdown: str, info: dict[str, str],
                  table_rows: list[dict[str, Any]]) -> Path:
    """Write the markdown and, beside it, the JSON run_all.py reads; return the JSON's path."""
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(markdown if markdown.endswith("\n") else markdown + "\n")
    path = output.with_suffix(".json")
    path.write_text(json.dumps({"machine": info, "rows": table_rows}, indent=1,
                               ensure_ascii=False) + "\n")
    return path


# -- main ----------------------------------------------------------------------------------
def profile_main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp, "profile.txt")
        say(f"profiling one labbook repetition ({args.runs} timed runs per configuration) "
            "with cProfile")
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
    say(machine_line(info, load_before))
    python = ensure_mlflow(args.mlflow_venv, args.mlflow_spec) if args.store_list else None
    results: dict[str, list[dict]] = {tool: [] for tool in TOOLS}
    for rep in range(1, args.reps + 1):
        results["labbook"].append(one_labbook_rep(args, f"rep {rep}/{args.reps} labbook"))
        for store in args.store_list:
            assert python is not None
            results[store].append(one_mlflow_rep(args, python, store,
                                                 f"rep {rep}/{args.reps} {TOOL_NAMES[store]}"))
    scale = None if args.no_scale else scale_test(args)
    figs = Figures(results)
    table = render(args, info, figs, scale, load_before, load_average(),
                   time.perf_counter() - began)
    say("")
    say(table)
    path = write_results(args.output, table, info, rows(args, figs, scale))
    say(f"written to {args.output} and {path}")


if __name__ == "__main__":
    main()
