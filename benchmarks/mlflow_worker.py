"""Time the benchmark workload with MLflow's sqlite store; print one JSON line on stdout.

Run by bench_logging.py with the python of benchmarks/.venv-mlflow (MLflow is
not a labbook dependency)::

    .venv-mlflow/bin/python mlflow_worker.py --dir DIR --runs 5 --warmup 1

DIR is a fresh folder: the store is DIR/mlflow.db, artifacts go to DIR/mlartifacts.
Progress and MLflow's own output go to stderr; the result is the last stdout line.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import sys
import time
from pathlib import Path

import workload


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", required=True, help="a fresh folder for the store")
    parser.add_argument("--runs", type=int, default=5, help="timed runs")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs first")
    args = parser.parse_args()
    out = sys.stdout
    with contextlib.redirect_stdout(sys.stderr):
        result = measure(Path(args.dir).resolve(), args.runs, args.warmup)
    out.write(json.dumps(result) + "\n")
    out.flush()


def measure(folder: Path, runs: int, warmup: int) -> dict[str, object]:
    began = time.perf_counter()
    import mlflow

    import_s = time.perf_counter() - began
    mlflow.set_tracking_uri(f"sqlite:///{folder / 'mlflow.db'}")
    mlflow.create_experiment(workload.EXPERIMENT,
                             artifact_location=(folder / "mlartifacts").as_uri())
    mlflow.set_experiment(workload.EXPERIMENT)
    setup_s = time.perf_counter() - began - import_s
    artifact = workload.write_artifact(folder / "outputs")

    def start(name: str) -> None:
        mlflow.start_run(run_name=name)

    run_ns: list[int] = []
    call_ns: list[int] = []
    for i in range(warmup + runs):
        total, calls = workload.timed_run(start, mlflow.end_run, mlflow.log_params,
                                          mlflow.log_metric, mlflow.log_artifact, artifact,
                                          f"run-{i}")
        if i >= warmup:
            run_ns.append(total)
            call_ns.extend(calls)
        print(f"  mlflow run {i + 1}/{warmup + runs}: {total / 1e6:.0f} ms"
              + (" (warm-up)" if i < warmup else ""), file=sys.stderr, flush=True)
    return {
        "tool": "mlflow",
        "version": mlflow.__version__,
        "python": platform.python_version(),
        "import_s": import_s,
        "setup_s": setup_s,
        **workload.summarize(run_ns, call_ns),
    }


if __name__ == "__main__":
    main()
