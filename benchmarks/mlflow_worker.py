"""Time the benchmark workload with one MLflow store; print one JSON line on stdout.

Run by bench_logging.py with the python of benchmarks/.venv-mlflow (MLflow is
not a labbook dependency)::

    .venv-mlflow/bin/python mlflow_worker.py --dir DIR --store sqlite --steps 10,100,1000 \\
        --styles call,batch --runs 200 --budget 8 --warmup 1

DIR is a fresh folder. ``--store sqlite`` (MLflow's default) keeps runs in
DIR/mlflow.db; ``--store file`` in the legacy file store DIR/mlruns (MLflow ≥ 3.13
opens it only with MLFLOW_ALLOW_FILE_STORE=true, which this worker sets). Artifacts
go to DIR/mlartifacts with either store. Each configuration (steps × style) logs
into its own experiment: up to ``--runs`` timed runs, stopping early once the
next run would end past ``--budget`` seconds (at least one run is always timed).

Batch style: the values of each step are turned into ``Metric`` objects and
buffered; ``MlflowClient.log_batch`` sends them 1,000 at a time (MLflow's cap per
batch), and the rest before the artifact is logged. Params go in one
``log_params`` call in both styles (itself one ``log_batch``).

Progress and MLflow's own output go to stderr; the result is the last stdout line.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import workload

BATCH_LIMIT = 1000  # MLflow refuses a log_batch of more than 1,000 metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", required=True, help="a fresh folder for the store")
    parser.add_argument("--store", choices=["sqlite", "file"], default="sqlite")
    parser.add_argument("--steps", default=str(workload.N_STEPS), help="e.g. 10,100,1000")
    parser.add_argument("--styles", default="call", help="call, batch or call,batch")
    parser.add_argument("--runs", type=int, default=5, help="the most timed runs per configuration")
    parser.add_argument("--budget", type=float, help="seconds per configuration (at least one run)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs per style first")
    args = parser.parse_args()
    steps = [int(s) for s in args.steps.split(",") if s]
    styles = [s for s in args.styles.split(",") if s]
    out = sys.stdout
    with contextlib.redirect_stdout(sys.stderr):
        result = measure(Path(args.dir).resolve(), args.store, steps, styles, args.runs,
                         args.budget, args.warmup)
    out.write(json.dumps(result) + "\n")
    out.flush()


def progress(text: str) -> None:
    print(f"    {text}", file=sys.stderr, flush=True)


def measure(folder: Path, store: str, steps: list[int], styles: list[str], runs: int,
            budget: float | None, warmup: int) -> dict[str, Any]:
    began = time.perf_counter()
    if store == "file":
        os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
    import mlflow

    import_s = time.perf_counter() - began
    if store == "sqlite":
        mlflow.set_tracking_uri(f"sqlite:///{folder / 'mlflow.db'}")
    else:
        mlflow.set_tracking_uri((folder / "mlruns").as_uri())
    tracker = make_tracker(mlflow, (folder / "mlartifacts").as_uri())
    tracker.set_experiment(f"{workload.EXPERIMENT}-setup")  # the store is created here
    setup_s = time.perf_counter() - began - import_s
    artifact = workload.write_artifact(folder / "outputs")
    workload.warm_up(tracker, artifact, warmup, min(steps), styles)
    configs = [workload.measure_config(tracker, artifact, n, style, runs, budget, progress)
               for n in steps for style in styles]
    return {
        "tool": "mlflow",
        "store": store,
        "version": mlflow.__version__,
        "python": platform.python_version(),
        "import_s": import_s,
        "setup_s": setup_s,
        "configs": configs,
    }


def make_tracker(mlflow: Any, artifact_root: str) -> workload.Tracker:
    """The workload's calls through MLflow's fluent API, batches through MlflowClient.log_batch."""
    from mlflow.entities import Metric

    client = mlflow.MlflowClient()
    pending: list[Any] = []
    current: list[str] = []

    def set_experiment(name: str) -> None:
        if mlflow.get_experiment_by_name(name) is None:
            mlflow.create_experiment(name, artifact_location=f"{artifact_root}/{name}")
        mlflow.set_experiment(name)

    def start(name: str) -> None:
        current[:] = [mlflow.start_run(run_name=name).info.run_id]

    def log_step(values: dict[str, float], step: int) -> None:
        ts = int(time.time() * 1000)
        pending.extend(Metric(key, value, ts, step) for key, value in values.items())
        if len(pending) >= BATCH_LIMIT:
            client.log_batch(current[0], metrics=pending[:BATCH_LIMIT])
            del pending[:BATCH_LIMIT]

    def flush() -> None:
        while pending:
            client.log_batch(current[0], metrics=pending[:BATCH_LIMIT])
            del pending[:BATCH_LIMIT]

    return workload.Tracker(start=start, end=mlflow.end_run, log_params=mlflow.log_params,
                            log_metric=mlflow.log_metric, log_step=log_step, flush=flush,
                            log_artifact=mlflow.log_artifact, set_experiment=set_experiment)


if __name__ == "__main__":
    main()
