"""The journal site at scale: cold and incremental `labbook site build` at 1,000 and 10,000 runs.

    python benchmarks/bench_site.py                   # 1,000 and 10,000 runs
    python benchmarks/bench_site.py --quick           # 100 and 1,000 runs
    python benchmarks/bench_site.py --sizes 1000,50000

The runs (5 experiments, 20 params, 10 metrics, a 3-metric × 20-step history, a
hypothesis and a note each, one run in ten nested under a parent) are committed
through labbook's own store. Then, each in a fresh process:

* cold: no record cache under .git/labbook/cache and no site folder;
* incremental: one more run committed, the same site folder rebuilt;
* no change: the site rebuilt again with nothing new.

Each size is built in its own fresh repository. Page weights are measured on the
largest size's built folder. MLflow has no static-site equivalent (its UI is a
server over its tracking store), so there is nothing to compare against. Results
print as markdown and go to benchmarks/results/site.md and site.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_logging import clean_env, machine_info  # noqa: E402
from resultfile import row, write  # noqa: E402

TIMED = """
import json, sys, time
import labbook
from labbook.site import build
labbook.set_repository(sys.argv[1])
repo = labbook.tracking.repository()
start = time.perf_counter()
result = build(repo, sys.argv[2])
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "written": len(result.report.written),
                  "unchanged": result.report.unchanged, "runs": result.runs}))
"""


VERDICTS = ["supported", "refuted", "inconclusive"]


def make_run(i: int, parent: str | None):
    from labbook.format import record
    from labbook.format.record import Conclusion, MetricSummary, Note, RunRecord

    rng = random.Random(i)
    rid = uuid.UUID(int=rng.getrandbits(128)).hex
    day, second = divmod(i, 100)
    start = f"2026-{1 + day // 28 % 12:02d}-{1 + day % 28:02d}T10:{second // 60:02d}:{second % 60:02d}.000Z"
    params = {f"param_{k:02d}": (f"choice-{rng.randint(0, 9)}" if k % 2 == 0 else round(rng.random(), 6))
              for k in range(20)}
    metrics = {f"metric_{k}": MetricSummary.first(round(rng.random(), 6), 19, 1) for k in range(10)}
    history = [(f"metric_{k}", s, 1000 + s, round(1 / (1 + s) + rng.random() / 10, 6))
               for s in range(20) for k in range(3)]
    rec = RunRecord(id=rid, name=f"run-{i}", experiment=f"exp-{i % 5}", status="FINISHED",
                    start_time=start, end_time=start, parent=parent, user="bench", params=params,
                    metrics=metrics, hypothesis=f"param_{i % 20:02d} matters for run {i}",
                    notes=[Note(start, "bench", f"Run {i}: *note* with `code`, [a link](https://example.com).")],
                    conclusion=Conclusion(rng.choice(VERDICTS), "so it goes", start))
    return rid, {record.run_path(rid): record.run_to_yaml(rec),
                 record.history_path(rid): record.history_to_tsv(history)}


def populate(repo: Path, count: int, first: int = 0) -> None:
    import labbook
    from labbook.tracking import repository

    labbook.set_repository(repo)
    store = repository()
    for e in range(5):
        store.ensure_experiment(f"exp-{e}", f"Does setting {e} help?")
    batch: dict[str, bytes] = {}
    parent = None
    for i in range(first, first + count):
        rid, files = make_run(i, parent if i % 10 == 9 else None)
        parent = rid if i % 10 == 0 else parent
        batch.update(files)
        if len(batch) >= 4000:
            store.store.commit(batch, "bulk")
            batch = {}
    if batch:
        store.store.commit(batch, "bulk")


def timed_build(repo: Path, site: Path, env: dict[str, str]) -> dict:
    out = subprocess.run([sys.executable, "-c", TIMED, str(repo), str(site)], env=env,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def weights(site: Path) -> dict[str, int]:
    files = [p for p in site.rglob("*") if p.is_file()]
    run_page = next(site.glob("run-*.html"))
    exp = next(site.glob("exp-*.html"))
    return {"files": len(files), "total": sum(p.stat().st_size for p in files),
            "index.html": (site / "index.html").stat().st_size, "a run page": run_page.stat().st_size,
            "an experiment page": exp.stat().st_size,
            "its table data": (site / "data" / f"{exp.stem}.js").stat().st_size,
            "search index": (site / "data" / "search.js").stat().st_size,
            "static css+js": sum(p.stat().st_size for p in (site / "static").iterdir())}


TARGET_COLD_S = 60.0
TARGET_INCREMENTAL_S = 5.0
TARGET_AT = 10_000


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="sizes 100 and 1,000: a smoke test")
    parser.add_argument("--sizes", help="runs on the branch, comma separated (default 1000,10000)")
    parser.add_argument("--runs", type=int, help="one size only (the same as --sizes N)")
    args = parser.parse_args(argv)
    text = args.sizes or (str(args.runs) if args.runs else "100,1000" if args.quick else "1000,10000")
    try:
        args.sizes = sorted({int(x.replace("_", "")) for x in text.split(",") if x})
    except ValueError:
        parser.error(f"--sizes {text!r}: give whole numbers separated by commas")
    if not args.sizes or min(args.sizes) < 1:
        parser.error("--sizes needs at least one run")
    return args


def measure(runs: int) -> tuple[dict, dict, dict, dict[str, int]]:
    """Cold, incremental and no-change builds over ``runs`` runs in a fresh repository."""
    work = Path(tempfile.mkdtemp(prefix="labbook-bench-site-"))
    saved = dict(os.environ)
    try:
        repo, site = work / "repo", work / "site"
        repo.mkdir()
        config = work / "gitconfig"
        config.write_text("[user]\n\tname = bench\n\temail = bench@example.invalid\n[gc]\n\tauto = 0\n")
        env = clean_env(config)
        os.environ.update({k: v for k, v in env.items() if k.startswith("GIT_")})
        subprocess.run(["git", "init", "-q", str(repo)], env=env, check=True)
        print(f"{runs:,} runs: filling the branch", file=sys.stderr, flush=True)
        populate(repo, runs)
        shutil.rmtree(repo / ".git" / "labbook" / "cache", ignore_errors=True)
        cold = timed_build(repo, site, env)
        populate(repo, 1, first=runs)
        incremental = timed_build(repo, site, env)
        nothing = timed_build(repo, site, env)
        print(f"{runs:,} runs: cold {cold['seconds']:.2f} s, incremental {incremental['seconds']:.2f} s,"
              f" no change {nothing['seconds']:.2f} s", file=sys.stderr, flush=True)
        return cold, incremental, nothing, weights(site)
    finally:
        os.environ.clear()
        os.environ.update(saved)
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    args = parse_args()
    results = {runs: measure(runs) for runs in args.sizes}
    report(results)


def report(results: dict[int, tuple[dict, dict, dict, dict[str, int]]]) -> None:
    sizes = ", ".join(f"{n:,}" for n in results)
    lines = [f"# labbook site build at {sizes} runs", "",
             "| runs | build | seconds | files written | unchanged | target | met |",
             "|---:|---|---:|---:|---:|---|---|"]
    rows = []
    for runs, (cold, incremental, nothing, _) in results.items():
        for name, r, target in (("cold (no cache, no site)", cold, TARGET_COLD_S),
                                ("incremental (+1 run)", incremental, TARGET_INCREMENTAL_S),
                                ("no change", nothing, None)):
            target = target if runs >= TARGET_AT else None  # the targets are set at 10,000 runs
            met = None if target is None else r["seconds"] <= target
            goal = "" if target is None else f"≤ {target:g} s"
            verdict = "" if met is None else "yes" if met else "**no**"
            lines.append(f"| {runs:,} | {name} | {r['seconds']:.2f} | {r['written']:,} | "
                         f"{r['unchanged']:,} | {goal} | {verdict} |")
            rows.append(row(f"site, {runs:,} runs: {name}", r["seconds"], "s", goal or None, met))
    largest = max(results)
    sizes_of = results[largest][3]
    lines += ["", f"| page weight at {largest:,} runs | bytes |", "|---|---:|"]
    lines += [f"| {k} | {v:,} |" for k, v in sizes_of.items()]
    rows += [row(f"site, {largest:,} runs: {k}", v, "files" if k == "files" else "bytes")
             for k, v in sizes_of.items()]
    lines += ["", "MLflow has no static-site equivalent (its UI is a server over the tracking store), "
              "so there is no MLflow column.", ""]
    text = "\n".join(lines)
    print(text)
    write("site", text, rows, machine_info())


if __name__ == "__main__":
    main()
