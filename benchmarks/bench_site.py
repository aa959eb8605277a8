"""The journal site at scale: cold and incremental `labbook site build` on 10,000 runs.

    python benchmarks/bench_site.py               # 10,000 runs
    python benchmarks/bench_site.py --runs 1000

The runs (5 experiments, 20 params, 10 metrics, a 3-metric × 20-step history, a
hypothesis and a note each, one run in ten nested under a parent) are committed
through labbook's own store. Then, each in a fresh process:

* cold: no record cache under .git/labbook/cache and no site folder;
* incremental: one more run committed, the same site folder rebuilt;
* no change: the site rebuilt again with nothing new.

Page weights are measured on the built folder. MLflow has no static-site
equivalent (its UI is a server over its tracking store), so there is nothing to
compare against. Results print as markdown and go to benchmarks/results/site.md.
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
from bench_logging import clean_env  # noqa: E402

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
    from labbook import record
    from labbook.record import Conclusion, MetricSummary, Note, RunRecord

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10_000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="labbook-bench-site-"))
    try:
        repo, site = work / "repo", work / "site"
        repo.mkdir()
        config = work / "gitconfig"
        config.write_text("[user]\n\tname = bench\n\temail = bench@example.invalid\n")
        env = clean_env(config)
        os.environ.update({k: v for k, v in env.items() if k.startswith("GIT_")})
        subprocess.run(["git", "init", "-q", str(repo)], env=env, check=True)
        populate(repo, args.runs)
        shutil.rmtree(repo / ".git" / "labbook" / "cache", ignore_errors=True)
        cold = timed_build(repo, site, env)
        populate(repo, 1, first=args.runs)
        incremental = timed_build(repo, site, env)
        nothing = timed_build(repo, site, env)
        report(args.runs, cold, incremental, nothing, weights(site))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def report(runs: int, cold: dict, incremental: dict, nothing: dict, sizes: dict[str, int]) -> None:
    lines = [f"# labbook site build, {runs:,} runs", "",
             "| build | seconds | files written | unchanged |", "|---|---:|---:|---:|"]
    for name, r in (("cold (no cache, no site)", cold), ("incremental (+1 run)", incremental),
                    ("no change", nothing)):
        lines.append(f"| {name} | {r['seconds']:.2f} | {r['written']:,} | {r['unchanged']:,} |")
    lines += ["", "| page weight | bytes |", "|---|---:|"]
    lines += [f"| {k} | {v:,} |" for k, v in sizes.items()]
    lines += ["", "MLflow has no static-site equivalent (its UI is a server over the tracking store), "
              "so there is no MLflow column.", ""]
    text = "\n".join(lines)
    print(text)
    (HERE / "results" / "site.md").write_text(text)


if __name__ == "__main__":
    main()
