"""What sampling the machine costs a training loop (system metrics, issue 18).

    .venv/bin/python benchmarks/bench_sysmetrics.py           # 5 repetitions, about 1 minute
    .venv/bin/python benchmarks/bench_sysmetrics.py --quick   # 2 repetitions

Each repetition runs the same loop twice, in fresh processes and fresh repositories,
alternating: a run logging ``--calls`` values with ``log_metric`` (one key, steps 0…)
with ``log_system_metrics=False``, then the same with ``log_system_metrics=True`` and
a sampling interval of ``--interval`` seconds (default 0.25 s: forty times the
default's rate, so the sampler's share shows). It reports the median µs per
``log_metric`` call and ms per whole run of each, their ratio, and how many samples
the sampler took, to benchmarks/results/sysmetrics.md. Only labbook and the standard
library (plus psutil, the `labbook[system]` extra) are used.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_OUTPUT = HERE / "results" / "sysmetrics.md"

WORKER = r"""
import json, os, sys, time
import labbook
calls, sample = int(sys.argv[1]), sys.argv[2] == "on"
labbook.set_repository(os.getcwd())
start = time.perf_counter()
with labbook.start_run(name="loop", log_system_metrics=sample) as run:
    loop = time.perf_counter()
    for step in range(calls):
        labbook.log_metric("loss", 1.0 / (step + 1), step=step)
    loop = time.perf_counter() - loop
total = time.perf_counter() - start
history = [k for k in labbook.get_run(run.id).metrics if k.startswith("system/")]
points = len(labbook.get_metric_history(run.id, history[0])) if history else 0
print(json.dumps({"call_us": loop / calls * 1e6, "run_ms": total * 1e3, "samples": points}))
"""


def one(calls: int, sample: bool, interval: float) -> dict[str, float]:
    """One run in a fresh process and a fresh repository."""
    with tempfile.TemporaryDirectory(prefix="bench-sysmetrics-") as folder:
        subprocess.run(["git", "init", "-q", folder], check=True)
        subprocess.run(["git", "-C", folder, "config", "gc.auto", "0"], check=True)
        env = {**os.environ, "LABBOOK_SYSTEM_METRICS_INTERVAL": str(interval),
               "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.com",
               "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.com"}
        out = subprocess.run([sys.executable, "-c", WORKER, str(calls), "on" if sample else "off"],
                             cwd=folder, env=env, capture_output=True, text=True, check=True)
        return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--calls", type=int, default=200000)
    parser.add_argument("--interval", type=float, default=0.25)
    parser.add_argument("--quick", action="store_true", help="2 repetitions of 50,000 calls")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args()
    reps, calls = (2, 50000) if args.quick else (args.reps, args.calls)
    results: dict[str, list[dict[str, float]]] = {"off": [], "on": []}
    for rep in range(reps):
        for mode in ("off", "on"):  # alternating, each in a fresh process
            results[mode].append(one(calls, mode == "on", args.interval))
            print(f"rep {rep + 1}/{reps} {mode}: {results[mode][-1]}", file=sys.stderr)
    med = {mode: {k: statistics.median(r[k] for r in rows) for k in ("call_us", "run_ms", "samples")}
           for mode, rows in results.items()}
    spread = {mode: (min(r["call_us"] for r in rows), max(r["call_us"] for r in rows))
              for mode, rows in results.items()}
    lines = [
        "# System metrics: what sampling costs a logging loop",
        "",
        f"{reps} repetitions, alternating, fresh process and repository each; {calls:,} `log_metric` "
        f"calls a run; sampling every {args.interval:g} s; load {os.getloadavg()[0]:.2f} at the end.",
        "",
        "| run | µs per log_metric (median, range) | ms per run | samples of each system/* metric |",
        "|---|---:|---:|---:|",
    ]
    for mode, label in (("off", "log_system_metrics=False"), ("on", "log_system_metrics=True")):
        low, high = spread[mode]
        lines.append(f"| {label} | {med[mode]['call_us']:.2f} ({low:.2f}–{high:.2f}) | "
                     f"{med[mode]['run_ms']:.0f} | {med[mode]['samples']:.0f} |")
    ratio = med["on"]["call_us"] / med["off"]["call_us"]
    lines += ["", f"Ratio on/off per call: **{ratio:.3f}**; per run: "
              f"{med['on']['run_ms'] / med['off']['run_ms']:.3f}.", ""]
    text = "\n".join(lines)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
