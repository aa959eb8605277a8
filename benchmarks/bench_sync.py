"""How fast are `labbook pull` and its merge as the branch grows?

    .venv/bin/python benchmarks/bench_sync.py            # sizes 1,000 and 10,000, 3 repetitions
    .venv/bin/python benchmarks/bench_sync.py --quick    # sizes 100 and 1,000, a smoke test

For each size N (runs already on the branch) it measures, as medians of --reps:

(a) pull, fast-forward: the remote gained 1,000 runs (--new); a clone holding the N
    runs pulls them: fetch over file://, merge base, one diff-tree, the CAS move;
(b) pull, merge: the remote and the clone each added 500 runs (--both) since they
    last agreed; the clone pulls: fetch, then the merge commit built from trees;
(c) the merge alone (b without the fetch): merge base, two diff-trees, the tree
    built in-process, the CAS move.

Every repetition works in a fresh copy of the clone, so each fetch transfers the
new runs. Filler runs are distinct records (own id, name, params and a 10 × 20
metric history) committed 500 per BranchStore.commit; the remote is repacked
after each fill, as a hosting service keeps its objects. Output: a markdown
table on stdout and in benchmarks/results/sync.md, its figures in sync.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_OUTPUT = HERE / "results" / "sync.md"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="sizes 100 and 1,000: a smoke test")
    p.add_argument("--sizes", help="runs on the branch before the pull (default 1000,10000)")
    p.add_argument("--new", type=int, default=1000, help="runs the remote gains for (a)")
    p.add_argument("--both", type=int, default=500, help="runs each side adds for (b) and (c)")
    p.add_argument("--reps", type=int, default=3, help="repetitions (the median is reported)")
    p.add_argument("--tmpdir", type=Path, default=Path(tempfile.gettempdir()))
    p.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    p.add_argument("--keep", action="store_true", help="keep the repositories")
    args = p.parse_args(argv)
    text = args.sizes or ("100,1000" if args.quick else "1000,10000")
    args.sizes = sorted({int(s.replace("_", "")) for s in text.split(",") if s})
    if args.quick:
        args.new, args.both = min(args.new, 100), min(args.both, 50)
    return args


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(cwd), *args], check=True, capture_output=True,
                          text=True).stdout


# -- filling a branch fast -------------------------------------------------------------------
class Filler:
    """Writes distinct filler runs into a repository's branch, many per commit."""

    def __init__(self, path: Path, seed: int):
        from labbook.runs.repository import open_repository

        self.repo = open_repository(path)
        self.repo.git.fsync = False  # filler only sets the stage
        self.rng = random.Random(seed)
        self.count = 0

    def add(self, n: int, batch: int = 500) -> None:
        from labbook.format import record

        done = 0
        while done < n:
            changes: dict[str, bytes] = {}
            for _ in range(min(batch, n - done)):
                rec, rows = self._run()
                changes[record.run_path(rec.id)] = record.run_to_yaml(rec)
                changes[record.history_path(rec.id)] = record.history_to_tsv(rows)
            self.repo.commit(changes, f"bench: {len(changes) // 2} filler runs")
            done += len(changes) // 2

    def _run(self):  # type: ignore[no-untyped-def]
        from labbook.format.record import MetricSummary, RunRecord

        self.count += 1
        rid = f"{self.rng.getrandbits(128):032x}"
        start = 1_790_000_000_000 + self.count * 60_000
        rows = [(f"m{k}", step, start + step * 100 + k, self.rng.random())
                for step in range(20) for k in range(10)]
        metrics: dict[str, MetricSummary] = {}
        for key, step, ts, value in rows:
            if key in metrics:
                metrics[key].add(value, step, ts)
            else:
                metrics[key] = MetricSummary.first(value, step, ts)
        rec = RunRecord(id=rid, name=f"filler-{self.count}", experiment="bench",
                        status="FINISHED", start_time="2026-10-01T00:00:00.000Z",
                        end_time="2026-10-01T00:01:00.000Z", user="bench", host="bench",
                        command=["python", "train.py", f"--seed={self.count}"],
                        hypothesis="filler", params={f"p{k}": self.rng.random() for k in range(20)},
                        tags={"kind": "filler"}, metrics=metrics)
        return rec, rows

    def close(self) -> None:
        self.repo.close()


# -- one size ---------------------------------------------------------------------------------
def prepare(root: Path, size: int, new: int, both: int) -> dict[str, Path]:
    """remote.git with `size` runs, a clone holding them, then the remote and a second
    clone each moving on: returns the repositories each measurement starts from."""
    from labbook.runs.repository import open_repository
    from labbook.sharing import sync

    remote = root / "remote.git"
    git(root, "init", "-q", "--bare", str(remote))
    filler = Filler(remote, seed=size)
    say(f"  filling remote.git with {size:,} runs")
    began = time.perf_counter()
    filler.add(size)
    git(remote, "repack", "-adq")
    say(f"  filled in {time.perf_counter() - began:.1f} s; cloning")
    base = root / "clone"
    git(root, "init", "-q", str(base))
    git(base, "remote", "add", "origin", str(remote))
    repo = open_repository(base)
    sync.pull(repo)
    repo.close()
    merging = root / "clone-merging"
    shutil.copytree(base, merging, symlinks=True)
    mine = Filler(merging, seed=size + 1)
    mine.add(both)
    mine.close()
    ahead = root / "remote-ahead.git"  # (a): a remote that gained `new` runs …
    shutil.copytree(remote, ahead, symlinks=True)
    extra = Filler(ahead, seed=size + 2)
    extra.add(new)
    extra.close()
    git(ahead, "repack", "-dq")
    filler.add(both)  # (b): … and one that gained `both` runs while the clone did too
    filler.close()
    git(remote, "repack", "-dq")
    return {"remote": remote, "ahead": ahead, "clone": base, "merging": merging}


def time_pull(start: Path, work: Path, remote: Path, merge_only: bool) -> tuple[float, str]:
    from labbook.runs.repository import open_repository
    from labbook.sharing import sync

    if work.exists():
        shutil.rmtree(work)
    shutil.copytree(start, work, symlinks=True)
    git(work, "remote", "set-url", "origin", str(remote))
    repo = open_repository(work)
    target = sync._target(repo, None)
    result = sync.SyncResult("origin", repo.settings.branch)
    try:
        if merge_only:
            theirs = sync._fetch(repo, target)
            assert theirs is not None
            began = time.perf_counter()
            sync._integrate(repo, target, theirs, result)
        else:
            began = time.perf_counter()
            sync.pull(repo, result=result)
        elapsed = time.perf_counter() - began
    finally:
        repo.close()
    return elapsed, result.lines()[0]


def measure(args: argparse.Namespace, size: int) -> dict[str, float]:
    root = Path(tempfile.mkdtemp(prefix=f"labbook-bench-sync-{size}-", dir=args.tmpdir))
    try:
        repos = prepare(root, size, args.new, args.both)
        out = {}
        cases = {"ff": (repos["clone"], repos["ahead"], False),
                 "merge_pull": (repos["merging"], repos["remote"], False),
                 "merge_only": (repos["merging"], repos["remote"], True)}
        for name, (start, remote, merge_only) in cases.items():
            times = []
            for rep in range(args.reps):
                elapsed, line = time_pull(start, root / "work", remote, merge_only)
                times.append(elapsed)
                say(f"  {name} #{rep + 1}: {elapsed:.3f} s — {line}")
            out[name] = statistics.median(times)
        return out
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


def table(args: argparse.Namespace, results: dict[int, dict[str, float]]) -> str:
    lines = [f"# labbook pull and merge ({platform.platform()}, {os.cpu_count()} CPUs, "
             f"{git(Path.cwd(), 'version').strip()})", "",
             f"Medians of {args.reps} repetitions, seconds.", "",
             f"| runs on the branch | (a) pull {args.new:,} new runs (fast-forward) "
             f"| (b) pull, both sides added {args.both:,} (fetch + merge) | (c) the merge alone |",
             "|---:|---:|---:|---:|"]
    for size, row in results.items():
        lines.append(f"| {size:,} | {row['ff']:.3f} | {row['merge_pull']:.3f} "
                     f"| {row['merge_only']:.3f} |")
    if len(results) > 1:
        small, large = min(results), max(results)
        growth = {k: results[large][k] / results[small][k] for k in ("ff", "merge_pull", "merge_only")}
        lines += ["", f"From {small:,} to {large:,} runs ({large / small:.0f}×) the times grow "
                      f"{growth['ff']:.2f}× (a), {growth['merge_pull']:.2f}× (b), "
                      f"{growth['merge_only']:.2f}× (c)."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    config = Path(tempfile.mkdtemp(prefix="labbook-bench-home-")) / ".gitconfig"
    config.write_text("[user]\n\tname = Bench\n\temail = bench@example.com\n"
                      "[init]\n\tdefaultBranch = main\n[gc]\n\tauto = 0\n")
    os.environ["GIT_CONFIG_GLOBAL"] = str(config)
    os.environ["GIT_CONFIG_NOSYSTEM"] = "1"
    results = {}
    for size in args.sizes:
        say(f"size {size:,}")
        results[size] = measure(args, size)
    text = table(args, results)
    print(text)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    write_json(args, results)
    shutil.rmtree(config.parent, ignore_errors=True)


def write_json(args: argparse.Namespace, results: dict[int, dict[str, float]]) -> None:
    """The figures as rows, beside the markdown (results/sync.json by default)."""
    sys.path.insert(0, str(HERE))
    from bench_logging import machine_info
    from resultfile import row

    names = {"ff": f"pull {args.new:,} new runs (fast-forward)",
             "merge_pull": f"pull when both sides added {args.both:,} (fetch + merge)",
             "merge_only": f"the merge alone, both sides added {args.both:,}"}
    rows = [row(f"sync, {size:,} runs on the branch: {names[key]}", seconds, "s")
            for size, row_ in results.items() for key, seconds in row_.items()]
    path = args.output.with_suffix(".json")
    path.write_text(json.dumps({"machine": machine_info(), "rows": rows}, indent=1,
                               ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
