"""Beyond one machine: many clones pushing to one remote, a million runs, artifacts as pointers.

    .venv/bin/python benchmarks/bench_scale.py           # 16 clones × 3 min; 100,000 and 1,000,000 runs
    .venv/bin/python benchmarks/bench_scale.py --quick   # 2 clones × 2 runs; 1,000 runs (a smoke test)
    .venv/bin/python benchmarks/bench_scale.py --only push --clones 8 --minutes 1
    .venv/bin/python benchmarks/bench_scale.py --only million --sizes 100000 --workdir /tmp/bs

Three parts (docs/PERFORMANCE.md, "Beyond one machine"):

push
    A bare remote served by ``git daemon`` on 127.0.0.1 (git://, ``--enable=receive-pack``,
    a free port, started here and stopped at the end, its whole process group). N clones,
    each its own process, log a small run and ``labbook.push()`` after every run, for a few
    minutes (or a fixed number of runs). Pushes per minute the remote held, push attempts
    (a refused push fetches, merges and retries), failures, and runs lost: every run id a
    clone committed is looked for on the remote's branch at the end.
million
    A branch of N runs built with ``git fast-import``: copies of a real run (made with
    the public API, so the record is exactly what labbook writes: run.yaml and a small
    metrics.tsv) with their own id, name, times, params and metric values, 50,000 runs a
    commit. Checked readable (a cold ``search_runs`` returns every run, ``labbook ls`` and
    ``labbook show`` work on a sample, ``labbook fsck`` in full up to 10,000 runs), then,
    each in a fresh process: the cold query, the commit cost of one more run through
    start_run/log_metric/end_run, and the warm query (cache there, a run added since).
    Sizes grow by appending to the same branch.
artifacts
    Bytes a run's record takes on the branch with 0, 1, 10 and 100 artifacts in an object
    store (a ``file://`` fsspec URL here; the pointer is the same for s3:// or gs://).

Results print as markdown and go to benchmarks/results/scale.md and scale.json.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import random
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_logging import clean_env, load_average, machine_info, machine_line  # noqa: E402

EXPERIMENT = "scale"
FILTER = "metrics.loss < 0.05 and params.optimizer = 'adam'"
PER_COMMIT = 50_000  # fast-import: runs a commit
FULL = {"clones": 16, "minutes": 3.0, "sizes": "100000,1000000", "artifacts": "0,1,10,100"}
QUICK = {"clones": 2, "runs_per_clone": 2, "sizes": "1000", "artifacts": "0,1,10"}
FSCK_UP_TO = 10_000  # labbook fsck reads every record one by one: in full only up to here
QUERY_TIMEOUT = 900  # seconds a query worker may take before the size counts as too big


# -- shared helpers ----------------------------------------------------------------------
def setup_env(base: Path) -> dict[str, str]:
    """A git config of the benchmark's own (identity, no background gc) and a clean environment."""
    gitconfig = base / "gitconfig"
    gitconfig.write_text("[user]\n\tname = bench\n\temail = bench@localhost\n"
                         "[init]\n\tdefaultBranch = main\n[gc]\n\tauto = 0\n")
    return clean_env(gitconfig)


def git(cwd: Path, *args: str, env: dict[str, str], **kw) -> str:
    done = subprocess.run(["git", "-C", str(cwd), *args], env=env, capture_output=True, text=True, **kw)
    if done.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} in {cwd} failed: {done.stderr.strip()}")
    return done.stdout


def new_repo(path: Path, env: dict[str, str]) -> Path:
    subprocess.run(["git", "init", "-q", str(path)], env=env, check=True)
    (path / "train.py").write_text("print('training')\n")
    git(path, "add", "train.py", env=env)
    git(path, "commit", "-q", "-m", "initial", env=env)
    return path


def worker(mode: str, *args: str, cwd: Path, env: dict[str, str], timeout: float | None = None) -> dict:
    """Run this script as a worker in a fresh process; its last stdout line is JSON."""
    done = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--worker", mode, *args],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"worker {mode} failed ({done.returncode}): {done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def labbook_cli(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "labbook", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=1800)


def peak_mib() -> dict[str, float]:
    return {"peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "peak_child_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}


def log_small_run(labbook, name: str, seed: int) -> str:
    """The standard small run of this benchmark: 4 params, 3 metrics × 10 steps."""
    rng = random.Random(seed)
    with labbook.start_run(name=name) as run:
        labbook.log_params({"optimizer": rng.choice(["adam", "sgd"]), "lr": round(rng.uniform(1e-4, 1e-2), 6),
                            "batch_size": rng.choice([32, 64, 128]), "seed": seed})
        for step in range(10):
            labbook.log_metrics({"loss": rng.random() / (step + 1), "accuracy": rng.random(),
                                 "lr_now": 0.01 * 0.9 ** step}, step=step)
    return run.id


# -- push: N clones, one remote behind git daemon ----------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def git_daemon(base: Path, env: dict[str, str]) -> Iterator[tuple[str, int]]:
    """``git daemon`` serving ``base`` on a free 127.0.0.1 port, pushes allowed; yields
    (url prefix, pid). Its process group (the daemon and any connection it forked) is
    stopped when the block ends, however it ends."""
    for _ in range(5):
        port = free_port()
        proc = subprocess.Popen(["git", "daemon", "--reuseaddr", "--export-all", "--enable=receive-pack",
                                 "--informative-errors", f"--base-path={base}", "--listen=127.0.0.1",
                                 f"--port={port}", str(base)], env=env, start_new_session=True,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 20
        while proc.poll() is None and time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            time.sleep(0.1)
        else:
            stop_group(proc)
            continue  # the port was taken between free_port() and the daemon's bind: another
        try:
            yield f"git://127.0.0.1:{port}", proc.pid
        finally:
            stop_group(proc)
        return
    raise RuntimeError("git daemon did not start")


def stop_group(proc: subprocess.Popen) -> None:
    """SIGTERM to the process group ``proc`` leads, SIGKILL after 10 s; reaps ``proc``."""
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(wait)
            break
        except subprocess.TimeoutExpired:
            continue
    if proc.stderr:
        proc.stderr.close()


def push_worker(args: argparse.Namespace) -> dict:
    """One clone: log a run, push, again, until the deadline (or ``--runs`` runs); then push
    until what it committed is on the remote."""
    import labbook

    labbook.set_repository(".")
    labbook.set_experiment(EXPERIMENT)
    time.sleep(max(0.0, args.start_at - time.time()))  # every clone starts together
    ids, pushes = [], []
    seed = args.seed * 1_000_000
    while (len(ids) < args.runs) if args.runs else (time.time() < args.deadline):
        ids.append(log_small_run(labbook, f"{args.name}-{len(ids)}", seed + len(ids)))
        pushes.append(timed_push(labbook))
    final = []
    while not final or not final[-1]["ok"]:  # a last push, so a failed one above loses nothing
        final.append(timed_push(labbook))
        if len(final) > 20:
            break
    return {"ids": ids, "pushes": pushes, "final": final}


def timed_push(labbook) -> dict:
    started = time.time()
    try:
        result = labbook.tracking.push()
    except Exception as exc:  # a failed push is a figure of this benchmark, not its end
        return {"ok": False, "attempts": 0, "seconds": time.time() - started, "at": started,
                "error": f"{type(exc).__name__}: {exc}"[:300]}
    return {"ok": True, "attempts": result.attempts, "seconds": time.time() - started, "at": started,
            "pushed": result.pushed}


def bench_push(base: Path, env: dict[str, str], clones: int, minutes: float, runs: int) -> dict:
    """The simulation; returns its figures (and the daemon's pid, to check it is gone)."""
    served = base / "served"
    served.mkdir()
    subprocess.run(["git", "init", "-q", "--bare", str(served / "team.git")], env=env, check=True)
    git(served / "team.git", "config", "receive.fsckObjects", "true", env=env)
    with git_daemon(served, env) as (url, daemon_pid):
        seed = new_repo(base / "seed", env)
        git(seed, "remote", "add", "origin", f"{url}/team.git", env=env)
        git(seed, "push", "-q", "origin", "main", env=env)
        done = labbook_cli(seed, env, "init")
        if done.returncode != 0:
            raise RuntimeError(done.stderr)
        done = labbook_cli(seed, env, "push")
        if done.returncode != 0:
            raise RuntimeError(done.stderr)
        for k in range(clones):
            subprocess.run(["git", "clone", "-q", f"{url}/team.git", str(base / f"clone{k:02d}")], env=env,
                           check=True)
        start_at = time.time() + 5 + clones * 0.5  # time for every clone to import labbook
        deadline = start_at + minutes * 60
        procs = []
        with contextlib.ExitStack() as outputs:
            for k in range(clones):
                out = base / f"clone{k:02d}.json"
                argv = [sys.executable, str(Path(__file__).resolve()), "--worker", "push", "--name",
                        f"c{k:02d}", "--seed", str(k + 1), "--start-at", str(start_at), "--deadline",
                        str(deadline), "--runs", str(runs)]
                sink = outputs.enter_context(open(out, "w"))
                procs.append((subprocess.Popen(argv, cwd=base / f"clone{k:02d}", env=env, text=True,
                                               stdout=sink, stderr=subprocess.PIPE), out))
            results = []
            for proc, out in procs:
                _, err = proc.communicate(timeout=minutes * 60 + 900)
                if proc.returncode != 0:
                    raise RuntimeError(f"clone worker failed: {err[-3000:]}")
                results.append(json.loads(out.read_text().strip().splitlines()[-1]))
        ended = time.time()
        names = git(served / "team.git", "ls-tree", "-r", "--name-only", "experiments", "--", "runs",
                    env=env).splitlines()
    on_remote = {n.split("/")[2] for n in names if n.endswith("/run.yaml")}
    committed = [rid for r in results for rid in r["ids"]]
    pushes = [p for r in results for p in r["pushes"]]
    finals = [p for r in results for p in r["final"]]
    ok = [p for p in pushes if p["ok"]]
    window = max(ended, max((p["at"] + p["seconds"] for p in pushes), default=start_at)) - start_at
    timed = [p for p in pushes if p["at"] + p["seconds"] <= deadline] if not runs else ok
    minutes_run = (deadline - start_at) / 60 if not runs else window / 60
    return {
        "clones": clones, "minutes": round(minutes_run, 2), "runs_committed": len(committed),
        "runs_on_remote": len(on_remote & set(committed)), "runs_lost": len(set(committed) - on_remote),
        "pushes": len(pushes), "pushes_ok": len(ok),
        "pushes_per_minute": len([p for p in timed if p["ok"]]) / minutes_run if minutes_run else 0.0,
        "runs_per_minute": len(committed) / minutes_run if minutes_run else 0.0,
        "attempts": sum(p["attempts"] for p in ok),
        "retried_pushes": sum(1 for p in ok if p["attempts"] > 1),
        "max_attempts": max((p["attempts"] for p in ok), default=0),
        "failed_pushes": len(pushes) - len(ok),
        "failures": sorted({p["error"] for p in pushes if not p["ok"]})[:5],
        "final_pushes_failed": sum(1 for p in finals if not p["ok"]),
        "push_seconds_median": statistics.median([p["seconds"] for p in ok]) if ok else float("nan"),
        "push_seconds_p90": quantile([p["seconds"] for p in ok], 0.9),
        "push_seconds_max": max((p["seconds"] for p in ok), default=float("nan")),
        "daemon_pid": daemon_pid,
    }


def quantile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# -- million: a synthetic branch through git fast-import ---------------------------------------
def template_worker(args: argparse.Namespace) -> dict:
    """One real run through the public API: the record every synthetic run copies."""
    import labbook

    labbook.set_repository(".")
    labbook.set_experiment(EXPERIMENT)
    labbook.define_metric("loss", goal="minimize")
    with labbook.start_run(name="template", hypothesis="a lower learning rate converges more smoothly",
                           tags={"team": "vision", "stage": "sweep"}) as run:
        labbook.log_params({"optimizer": "adam", "lr": 0.001, "batch_size": 64, "epochs": 10,
                            "model": "resnet18", "dropout": 0.1, "weight_decay": 0.0001, "seed": 7})
        for step in range(10):
            labbook.log_metrics({"loss": 1 / (step + 1), "accuracy": step / 10, "lr_now": 0.001}, step=step)
    return {"id": run.id}


METRIC_KEYS = ("loss", "accuracy", "lr_now")
CHECKED = 2_000  # synthetic records also serialised by labbook's record module and compared


def _sentinels(template, record, MetricSummary):
    """The template with a recognisable value in every slot a synthetic run changes."""
    metrics = {key: MetricSummary(1001.25 + 10 * k, 1002.25 + 10 * k, 1003.25 + 10 * k, 9, 999_100 + k, 10)
               for k, key in enumerate(METRIC_KEYS)}
    params = dict(template.params, optimizer="zzzoptimizer", lr=0.123456789, batch_size=999_001, seed=999_002)
    return dataclasses.replace(template, id="a1" * 16, name="zzzname", params=params, metrics=metrics,
                               start_time="1999-01-01T00:00:00.000Z", end_time="1999-01-01T00:00:12.000Z")


def _shape(template, record, MetricSummary) -> str:
    """The template's run.yaml as a format string with a field where each changing value goes:
    labbook's own serialiser writes it once, with sentinel values that are then cut out."""
    text = record.run_to_yaml(_sentinels(template, record, MetricSummary)).decode().replace(
        "{", "{{").replace("}", "}}")
    slots = {"a1" * 16: "id", "zzzname": "name", "'1999-01-01T00:00:00.000Z'": "'{start}'",
             "'1999-01-01T00:00:12.000Z'": "'{end}'", "zzzoptimizer": "optimizer", "0.123456789": "lr",
             "999001": "batch_size", "999002": "seed"}
    for k, key in enumerate(METRIC_KEYS):
        slots.update({str(1001.25 + 10 * k): f"{key}_last", str(1002.25 + 10 * k): f"{key}_min",
                      str(1003.25 + 10 * k): f"{key}_max", str(999_100 + k): f"{key}_timestamp"})
    for sentinel, field in slots.items():
        token = field if field.startswith("'") else "{" + field + "}"
        if text.count(f": {sentinel}\n") != 1:
            raise RuntimeError(f"the record template has {sentinel!r} other than once")
        text = text.replace(f": {sentinel}\n", f": {token}\n")
    return text


def yaml_float(value: float) -> str:
    """A finite float as labbook's YAML dumper writes it (PyYAML's representation)."""
    text = repr(value).lower()
    return text.replace("e", ".0e", 1) if "." not in text and "e" in text else text


def synthetic_records(repo_path: Path, template_id: str, first: int,
                      count: int) -> Iterator[tuple[str, bytes, bytes]]:
    """(id, run.yaml, metrics.tsv) of synthetic runs ``first`` … ``first + count - 1``: the
    template's record with its own id, name, times, params and metric values. The first
    CHECKED are also serialised by labbook's record module: any byte of difference stops
    the benchmark; the rest are filled into the same shape (20× faster than dumping each)."""
    from labbook.format import record
    from labbook.format.record import MetricSummary
    from labbook.runs.repository import open_repository

    repo = open_repository(repo_path)
    try:
        template = record.run_from_yaml(repo.store.snapshot().read(record.run_path(template_id)), "template")
    finally:
        repo.close()
    shape = _shape(template, record, MetricSummary)
    began = datetime(2026, 1, 1, tzinfo=UTC)
    for n, i in enumerate(range(first, first + count)):
        rng = random.Random(i)
        rid = uuid.UUID(int=rng.getrandbits(128), version=4).hex
        start = began + timedelta(seconds=i * 30)
        start_ms = int(start.timestamp() * 1000)
        decay = rng.uniform(0.5, 0.95)
        series = {key: [] for key in METRIC_KEYS}
        for step in range(10):
            series["loss"].append(round(rng.random() * decay ** step, 6))
            series["accuracy"].append(round(1 - rng.random() * decay ** step, 6))
            series["lr_now"].append(round(0.001 * decay ** step, 6))
        optimizer, lr = rng.choice(["adam", "sgd", "adamw"]), round(10 ** rng.uniform(-4, -2), 6)
        batch_size = rng.choice([32, 64, 128, 256])
        fields = {"id": rid, "name": f"sweep-{i}", "start": record.format_time(start),
                  "end": record.format_time(start + timedelta(seconds=12)), "optimizer": optimizer,
                  "lr": yaml_float(lr), "batch_size": batch_size, "seed": i}
        for key, values in series.items():
            fields.update({f"{key}_last": yaml_float(values[-1]), f"{key}_min": yaml_float(min(values)),
                           f"{key}_max": yaml_float(max(values)), f"{key}_timestamp": start_ms + 9000})
        run_yaml = shape.format(**fields).encode()
        history = (record.HISTORY_HEADER + "".join(
            f"{key}\t{step}\t{start_ms + step * 1000}\t{series[key][step]!r}\n"
            for step in range(10) for key in METRIC_KEYS)).encode()
        if n < CHECKED:
            rows, metrics = [], {}
            for step in range(10):
                for key in METRIC_KEYS:
                    value, stamp = series[key][step], start_ms + step * 1000
                    rows.append((key, step, stamp, value))
                    if key in metrics:
                        metrics[key].add(value, step, stamp)
                    else:
                        metrics[key] = MetricSummary.first(value, step, stamp)
            params = dict(template.params, optimizer=optimizer, lr=lr, batch_size=batch_size, seed=i)
            rec = dataclasses.replace(template, id=rid, name=f"sweep-{i}", params=params, metrics=metrics,
                                      start_time=fields["start"], end_time=fields["end"])
            if record.run_to_yaml(rec) != run_yaml or record.history_to_tsv(rows) != history:
                raise RuntimeError(f"synthetic run {i}: the filled shape differs from labbook's own "
                                   f"serialisation:\n{run_yaml.decode()}\n---\n{record.run_to_yaml(rec).decode()}")
        yield rid, run_yaml, history


def fast_import(repo: Path, env: dict[str, str], template_id: str, first: int, count: int) -> float:
    """Append ``count`` synthetic runs to the branch with one ``git fast-import``; seconds."""
    tip = git(repo, "rev-parse", "refs/heads/experiments", env=env).strip()
    started = time.perf_counter()
    proc = subprocess.Popen(["git", "-C", str(repo), "fast-import", "--quiet", "--done"], env=env,
                            stdin=subprocess.PIPE)
    assert proc.stdin is not None
    out = proc.stdin
    stamp = int(time.time())
    done = 0
    for done, (rid, run_yaml, history) in enumerate(synthetic_records(repo, template_id, first, count)):
        if done % PER_COMMIT == 0:
            message = f"fast-import: runs {first + done:,} and on".encode()
            out.write(b"commit refs/heads/experiments\n")
            out.write(f"committer bench <bench@localhost> {stamp} +0000\n".encode())
            out.write(b"data %d\n%s\n" % (len(message), message))
            if done == 0:
                out.write(f"from {tip}\n".encode())
        folder = f"runs/{rid[:2]}/{rid}".encode()
        for name, data in ((b"run.yaml", run_yaml), (b"metrics.tsv", history)):
            out.write(b"M 100644 inline %s/%s\ndata %d\n" % (folder, name, len(data)))
            out.write(data)
            out.write(b"\n")
        if (done + 1) % 100_000 == 0:
            print(f"  fast-import: {first + done + 1:,} runs ({time.perf_counter() - started:.0f} s)",
                  file=sys.stderr, flush=True)
    out.write(b"done\n")
    out.close()
    if proc.wait() != 0:
        raise RuntimeError("git fast-import failed")
    return time.perf_counter() - started


def query_worker(args: argparse.Namespace) -> dict:
    """One search_runs in this fresh process (cold: its cache removed first)."""
    import labbook

    if args.cold:
        shutil.rmtree(Path(".git") / "labbook" / "cache", ignore_errors=True)
    labbook.set_repository(".")
    from labbook.tracking import repository

    repository()
    import labbook.reading.query  # pandas loads before the clock starts
    started = time.perf_counter()
    everything = labbook.search_runs(experiments=[EXPERIMENT]) if args.count else None
    counted = time.perf_counter() - started
    started = time.perf_counter()
    frame = labbook.search_runs(experiments=[EXPERIMENT], filter_string=FILTER,
                                order_by=["metrics.loss ASC"])
    seconds = time.perf_counter() - started
    return {"seconds": seconds if not args.count else counted, "filtered_seconds": seconds,
            "rows": len(frame), "all_rows": None if everything is None else len(everything),
            "sample": [] if everything is None else random.Random(1).sample(
                list(everything["run_id"]), min(5, len(everything))), **peak_mib()}


def commit_worker(args: argparse.Namespace) -> dict:
    """The commit cost of one more run, timed through the public API (start, log, end): the
    first run in this process, then a few more."""
    import labbook

    labbook.set_repository(".")
    labbook.set_experiment(EXPERIMENT)
    from labbook.tracking import repository

    repository()
    times = []
    for k in range(args.runs or 5):
        started = time.perf_counter()
        run = labbook.start_run(name=f"one-more-{k}")
        labbook.log_metric("loss", 0.01, step=0)
        labbook.end_run()
        times.append(time.perf_counter() - started)
        assert run.id
    return {"run_seconds": times, **peak_mib()}


def verify_sample(repo: Path, env: dict[str, str], sample: list[str], size: int) -> dict:
    """labbook ls, show on the sample, and fsck in full on small branches."""
    checks = {}
    done = labbook_cli(repo, env, "ls", "--limit", "5", "--format", "json")
    checks["ls"] = done.returncode == 0 and len(json.loads(done.stdout or "[]")) == 5
    shown = [labbook_cli(repo, env, "show", rid) for rid in sample]
    checks["show"] = all(s.returncode == 0 and rid[:8] in s.stdout
                         for s, rid in zip(shown, sample, strict=True))
    if size <= FSCK_UP_TO:
        done = labbook_cli(repo, env, "fsck")
        checks["fsck"] = done.returncode == 0
        checks["fsck_output"] = done.stdout.strip().splitlines()[-1:] or done.stderr.strip()[-300:]
    return checks


def bench_million(base: Path, env: dict[str, str], sizes: list[int], reps: int) -> list[dict]:
    repo = base / "million"
    if not (repo / ".git").exists():
        new_repo(repo, env)
    state = repo / ".git" / "bench-scale.json"
    known = json.loads(state.read_text()) if state.exists() else {}
    if "template" not in known:
        known = {"template": worker("template", cwd=repo, env=env)["id"], "synthetic": 0}
        state.write_text(json.dumps(known))
    out = []
    for size in sizes:
        if known["synthetic"] < size:
            print(f"building the branch up to {size:,} runs", file=sys.stderr, flush=True)
            seconds = fast_import(repo, env, known["template"], known["synthetic"], size - known["synthetic"])
            known["synthetic"] = size
            state.write_text(json.dumps(known))
            build = {"fast_import_seconds": seconds}
        else:
            build = {}
        pack = sum(p.stat().st_size for p in (repo / ".git" / "objects" / "pack").glob("*.pack"))
        result = {"size": size, **build, "pack_bytes": pack}
        try:
            cold = worker("query", "--cold", "--count", cwd=repo, env=env, timeout=QUERY_TIMEOUT)
        except subprocess.TimeoutExpired:
            result["too_big"] = f"the cold query took more than {QUERY_TIMEOUT} s"
            out.append(result)
            break
        result["cold"] = cold
        result["readable"] = verify_sample(repo, env, cold["sample"], size)
        commits = worker("commit", "--runs", "5", cwd=repo, env=env, timeout=QUERY_TIMEOUT)
        result["commit"] = commits
        warm = [worker("query", cwd=repo, env=env, timeout=QUERY_TIMEOUT) for _ in range(reps)]
        result["warm"] = warm
        out.append(result)
        print(render_million([result]), file=sys.stderr, flush=True)
    return out


# -- artifacts: pointers on the branch --------------------------------------------------------
def artifacts_worker(args: argparse.Namespace) -> dict:
    """Runs with 0…N artifacts in a file:// object store; the bytes of each run's record."""
    import labbook
    from labbook.format import record
    from labbook.tracking import repository

    labbook.set_repository(".")
    labbook.set_experiment(EXPERIMENT)
    files = Path(args.files)
    out = {}
    for count in args.counts:
        with labbook.start_run(name=f"with-{count}") as run:
            labbook.log_params({"lr": 0.001, "optimizer": "adam"})
            labbook.log_metric("loss", 0.1)
            for k in range(count):
                labbook.log_artifact(str(files / f"shard-{k:03d}.bin"), f"checkpoints/epoch-{k:03d}")
        repo = repository()
        snapshot = repo.store.snapshot()
        data = snapshot.read(record.run_path(run.id))
        folder = [e.name for e in snapshot.list(record.run_dir(run.id))]
        loc = {a.location for a in record.run_from_yaml(data, "run.yaml").artifacts}
        out[str(count)] = {"run_yaml": len(data), "run_yaml_zlib": len(zlib.compress(data, 6)),
                           "folder": folder, "locations": sorted(loc)}
    return out


def bench_artifacts(base: Path, env: dict[str, str], counts: list[int]) -> dict:
    repo = new_repo(base / "artifacts", env)
    store = base / "object-store"
    store.mkdir()
    git(repo, "config", "labbook.artifactStore", store.as_uri(), env=env)
    git(repo, "config", "labbook.inlineArtifactBytes", "0", env=env)
    files = base / "files"
    files.mkdir()
    for k in range(max(counts)):
        (files / f"shard-{k:03d}.bin").write_bytes(os.urandom(4096))
    return worker("artifacts", "--files", str(files), "--counts", *map(str, counts), cwd=repo, env=env)


# -- output -------------------------------------------------------------------------------------
def render_push(p: dict) -> str:
    return "\n".join([
        f"### {p['clones']} clones pushing to one `git daemon` remote, {p['minutes']:.1f} min", "",
        "| figure | value |", "|---|---:|",
        f"| runs committed (all clones) | {p['runs_committed']:,} |",
        f"| runs on the remote at the end | {p['runs_on_remote']:,} |",
        f"| runs lost | {p['runs_lost']} |",
        f"| pushes that succeeded, per minute (the remote held) | {p['pushes_per_minute']:.1f} |",
        f"| runs per minute, all clones | {p['runs_per_minute']:.1f} |",
        f"| pushes (after every run) / succeeded | {p['pushes']:,} / {p['pushes_ok']:,} |",
        f"| pushes that needed more than one attempt | {p['retried_pushes']:,} "
        f"({p['retried_pushes'] / max(1, p['pushes_ok']):.0%}) |",
        f"| attempts per push, mean / max | {p['attempts'] / max(1, p['pushes_ok']):.2f} / "
        f"{p['max_attempts']} |",
        f"| seconds per push (fetch, merge, retry included), median / p90 / max | "
        f"{p['push_seconds_median']:.2f} / {p['push_seconds_p90']:.2f} / {p['push_seconds_max']:.2f} |",
        f"| pushes that failed (gave up) | {p['failed_pushes']} |", ""]
        + ([f"Failures: {'; '.join(p['failures'])}", ""] if p["failures"] else []))


def render_million(results: list[dict]) -> str:
    lines = ["| runs on the branch | pack | fast-import | cold `search_runs` (all runs) | filter, cold | "
             "one more run (start, log_metric, end): first / median of 5 | warm filtered query | "
             "peak RSS warm (+ child) | readable |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in results:
        if "cold" not in r:
            lines.append(f"| {r['size']:,} | {r['pack_bytes'] / 2**30:.2f} GiB | | {r.get('too_big', '')} "
                         "| | | | | |")
            continue
        warm = statistics.median(w["seconds"] for w in r["warm"])
        peak = max(r["warm"], key=lambda w: w["peak_mib"])
        times = r["commit"]["run_seconds"]
        build = f"{r['fast_import_seconds']:.0f} s" if "fast_import_seconds" in r else "(kept)"
        ok = "yes" if all(v for k, v in r["readable"].items() if k != "fsck_output") and \
            r["cold"]["all_rows"] >= r["size"] else f"NO {r['readable']}"
        lines.append(
            f"| {r['size']:,} | {r['pack_bytes'] / 2**30:.2f} GiB | {build} | {r['cold']['seconds']:.1f} s "
            f"({r['cold']['all_rows']:,} rows, peak {r['cold']['peak_mib']:.0f} MiB + "
            f"{r['cold']['peak_child_mib']:.0f}) | {r['cold']['filtered_seconds']:.2f} s | "
            f"{times[0] * 1000:.0f} / {statistics.median(times) * 1000:.0f} ms | {warm:.2f} s "
            f"({r['warm'][0]['rows']:,} rows) | {peak['peak_mib']:.0f} + {peak['peak_child_mib']:.0f} MiB "
            f"| {ok} |")
    return "\n".join(lines) + "\n"


def render_artifacts(found: dict) -> str:
    base = found["0"]
    lines = ["| artifacts in the object store | run.yaml bytes | zlib | bytes per pointer (raw / zlib) |",
             "|---:|---:|---:|---:|"]
    for count, r in found.items():
        n = int(count)
        raw, packed = r["run_yaml"] - base["run_yaml"], r["run_yaml_zlib"] - base["run_yaml_zlib"]
        per = f"{raw / n:.0f} / {packed / n:.0f}" if n else ""
        lines.append(f"| {n} | {r['run_yaml']:,} | {r['run_yaml_zlib']:,} | {per} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    args = parse_args()
    if args.worker:
        handler = {"push": push_worker, "template": template_worker, "query": query_worker,
                   "commit": commit_worker, "artifacts": artifacts_worker}[args.worker]
        print(json.dumps(handler(args)))
        return
    info = machine_info()
    print(machine_line(info, load_average()), file=sys.stderr, flush=True)
    base = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="bench-scale-"))
    base.mkdir(parents=True, exist_ok=True)
    env = setup_env(base)
    results, text, rows = {}, ["## Beyond one machine — bench_scale.py", ""], []
    from resultfile import row, write

    try:
        if "push" in args.only:
            push_dir = base / f"push-{int(time.time())}"
            push_dir.mkdir()
            p = bench_push(push_dir, env, args.clones, args.minutes, args.runs_per_clone)
            results["push"] = p
            text.append(render_push(p))
            label = f"{p['clones']} clones"
            rows += [row(f"{label}: runs lost", p["runs_lost"], "runs", "0", p["runs_lost"] == 0),
                     row(f"{label}: pushes per minute", p["pushes_per_minute"], "1/min"),
                     row(f"{label}: attempts per push", p["attempts"] / max(1, p["pushes_ok"]), "")]
            print(text[-1], file=sys.stderr, flush=True)
        if "million" in args.only:
            sizes = [int(s) for s in args.sizes.split(",")]
            m = bench_million(base, env, sizes, args.reps)
            results["million"] = m
            text.append(render_million(m))
            for r in m:
                if "warm" in r:
                    one_more = statistics.median(r["commit"]["run_seconds"]) * 1000
                    rows += [row(f"{r['size']:,} runs: one more run", one_more, "ms"),
                             row(f"{r['size']:,} runs: warm filtered query",
                                 statistics.median(w["seconds"] for w in r["warm"]), "s")]
        if "artifacts" in args.only:
            counts = [int(c) for c in args.artifacts.split(",")]
            a = bench_artifacts(base / f"art-{int(time.time())}", env, counts)
            results["artifacts"] = a
            text.append(render_artifacts(a))
    finally:
        if not args.keep and not args.workdir:
            shutil.rmtree(base, ignore_errors=True)
    markdown = "\n".join(text)
    print(markdown)
    folder = Path(args.results) if args.results else HERE / "results"
    write(args.results_name, markdown, rows, info, folder=folder)
    (folder / f"{args.results_name}-raw.json").write_text(json.dumps(results, indent=1, default=str) + "\n")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test")
    parser.add_argument("--only", default="push,million,artifacts", help="parts to run, comma-separated")
    parser.add_argument("--clones", type=int)
    parser.add_argument("--minutes", type=float, help="how long the clones log and push")
    parser.add_argument("--runs-per-clone", type=int, help="instead of --minutes: runs each clone logs")
    parser.add_argument("--sizes", help="runs on the synthetic branch, comma-separated, growing")
    parser.add_argument("--reps", type=int, default=3, help="warm queries per size")
    parser.add_argument("--artifacts", help="artifact counts per run, comma-separated, starting with 0")
    parser.add_argument("--workdir", help="keep the repositories here (the branch is extended next time)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--results", help="folder for scale.md/scale.json (default benchmarks/results)")
    parser.add_argument("--results-name", default="scale")
    # worker arguments
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--name", help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--start-at", type=float, default=0.0, help=argparse.SUPPRESS)
    parser.add_argument("--deadline", type=float, default=0.0, help=argparse.SUPPRESS)
    parser.add_argument("--runs", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--cold", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--count", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--files", help=argparse.SUPPRESS)
    parser.add_argument("--counts", type=int, nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    preset = QUICK if args.quick else FULL
    args.only = set(args.only.split(","))
    args.clones = args.clones or preset["clones"]
    if args.runs_per_clone is None:
        args.runs_per_clone = preset.get("runs_per_clone", 0)
    args.minutes = args.minutes if args.minutes is not None else preset.get("minutes", 0.0)
    args.sizes = args.sizes or preset["sizes"]
    args.artifacts = args.artifacts or preset["artifacts"]
    return args


if __name__ == "__main__":
    main()
