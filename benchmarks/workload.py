"""The benchmark workload, shared by the labbook and MLflow workers (standard library only).

One run: 20 params logged in one call, 10 metrics × ``steps`` steps (10, 100 or
1,000; 100 is the standard run of the other benchmarks), and one 10 KB artifact.
Every value is fixed, so both trackers and every repetition do exactly the same work.

Two styles of logging the metrics:

* ``call`` — one ``log_metric(key, value, step=step)`` call per value, each timed;
* ``batch`` — the values of each step are handed over together, as a dict, to the
  tracker's ``log_step``; each tracker logs them in its own batch form (labbook:
  ``log_metrics(dict, step=)``; MLflow: buffered and sent with ``log_batch``).
"""

from __future__ import annotations

import os
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

EXPERIMENT = "bench"
N_PARAMS = 20
N_METRICS = 10
N_STEPS = 100
STEP_COUNTS = (10, 100, 1000)
STYLES = ("call", "batch")
STYLE_NAMES = {"call": "per call", "batch": "batch"}
ARTIFACT_BYTES = 10 * 1024
ARTIFACT_NAME = "model.bin"

METRIC_KEYS = [f"metric_{j}" for j in range(N_METRICS)]


def params() -> dict[str, Any]:
    """20 params: ints, floats, strings and bools in turn."""
    out: dict[str, Any] = {}
    for i in range(N_PARAMS):
        key = f"param_{i:02d}"
        kind = i % 4
        if kind == 0:
            out[key] = 7 * i + 3
        elif kind == 1:
            out[key] = round(0.001 * (i + 1), 6)
        elif kind == 2:
            out[key] = f"choice-{i}"
        else:
            out[key] = i % 8 == 3
    return out


def metric_values(steps: int = N_STEPS) -> list[float]:
    """The value of every log_metric call, in call order (step-major, then key)."""
    values = []
    for step in range(steps):
        for j in range(N_METRICS):
            noise = ((step * 7919 + j * 104729) % 1000) / 1_000_000
            values.append(round(1.0 / (1 + step) + 0.01 * j + noise, 9))
    return values


def write_artifact(folder: str | os.PathLike[str]) -> Path:
    """Write the 10 KB artifact (fixed pseudo-random bytes) and return its path."""
    path = Path(folder, ARTIFACT_NAME)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(random.Random(20240501).randbytes(ARTIFACT_BYTES))
    return path


def experiment_name(steps: int, style: str) -> str:
    """The experiment that holds the runs of one configuration."""
    return f"{EXPERIMENT}-{steps}-{style}"


def timed_run(start: Callable[[str], Any], end: Callable[[], Any],
              log_params: Callable[[dict[str, Any]], Any], log_metric: Callable[..., Any],
              log_artifact: Callable[[str], Any], artifact: Path, name: str,
              steps: int = N_STEPS) -> tuple[int, list[int]]:
    """Do one run of the workload, per call; return (ns for the whole run, ns of each log_metric call)."""
    clock = time.perf_counter_ns
    the_params = params()
    values = metric_values(steps)
    keys = METRIC_KEYS
    calls = [0] * len(values)
    artifact_path = str(artifact)
    i = 0
    begin = clock()
    start(name)
    log_params(the_params)
    for step in range(steps):
        for key in keys:
            t0 = clock()
            log_metric(key, values[i], step=step)
            calls[i] = clock() - t0
            i += 1
    log_artifact(artifact_path)
    end()
    return clock() - begin, calls


@dataclass
class Tracker:
    """The calls a run makes, bound to one tracker (and one store)."""

    start: Callable[[str], Any]            # start a run with this name, in the current experiment
    end: Callable[[], Any]
    log_params: Callable[[dict[str, Any]], Any]
    log_metric: Callable[..., Any]         # (key, value, step=)
    log_step: Callable[[dict[str, float], int], Any]  # every metric of one step, batch style
    flush: Callable[[], Any]               # batch style: send what log_step still holds
    log_artifact: Callable[[str], Any]
    set_experiment: Callable[[str], Any]


def timed_batch_run(tracker: Tracker, artifact: Path, name: str, steps: int) -> tuple[int, int]:
    """Do one run, batch style; return (ns for the whole run, ns in log_step and flush)."""
    clock = time.perf_counter_ns
    the_params = params()
    values = metric_values(steps)
    rows = [dict(zip(METRIC_KEYS, values[s * N_METRICS:(s + 1) * N_METRICS], strict=True))
            for s in range(steps)]
    artifact_path = str(artifact)
    begin = clock()
    tracker.start(name)
    tracker.log_params(the_params)
    logging_began = clock()
    log_step = tracker.log_step
    for step in range(steps):
        log_step(rows[step], step)
    tracker.flush()
    logging_ns = clock() - logging_began
    tracker.log_artifact(artifact_path)
    tracker.end()
    return clock() - begin, logging_ns


def one_run(tracker: Tracker, artifact: Path, name: str, steps: int, style: str
            ) -> tuple[int, list[int], int]:
    """One run in either style: (ns for the run, ns of each log_metric call, ns logging metrics)."""
    if style == "call":
        total, calls = timed_run(tracker.start, tracker.end, tracker.log_params, tracker.log_metric,
                                 tracker.log_artifact, artifact, name, steps)
        return total, calls, sum(calls)
    total, logging_ns = timed_batch_run(tracker, artifact, name, steps)
    return total, [], logging_ns


def warm_up(tracker: Tracker, artifact: Path, runs: int, steps: int, styles: list[str]) -> None:
    """Untimed runs in every style, in their own experiment."""
    tracker.set_experiment(f"{EXPERIMENT}-warmup")
    for i in range(runs):
        for style in styles:
            one_run(tracker, artifact, f"warmup-{style}-{i}", steps, style)


def measure_config(tracker: Tracker, artifact: Path, steps: int, style: str, runs: int,
                   budget_s: float | None = None,
                   progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Time up to ``runs`` runs of one configuration in its own experiment.

    With ``budget_s``, stop once another run (of the median length so far) would
    end past that many seconds; the first run is always done.
    """
    tracker.set_experiment(experiment_name(steps, style))
    run_ns: list[int] = []
    call_ns: list[int] = []
    logging_ns: list[int] = []
    began = time.perf_counter_ns()
    for i in range(runs):
        total, calls, logged = one_run(tracker, artifact, f"{style}-{steps}-{i}", steps, style)
        run_ns.append(total)
        call_ns.extend(calls)
        logging_ns.append(logged)
        if budget_s is not None:
            spent = time.perf_counter_ns() - began
            if spent + statistics.median(run_ns) > budget_s * 1e9:
                break
    result = {"steps": steps, "style": style,
              **summarize(run_ns, call_ns, logging_ns, steps * N_METRICS)}
    if progress is not None:
        per_call = (f", {result['call_us_median']:.1f} µs/log_metric" if call_ns else "")
        took = (time.perf_counter_ns() - began) / 1e9
        progress(f"{steps} steps, {STYLE_NAMES[style]}: {result['run_ms_median']:.1f} ms/run"
                 f"{per_call} (medians of {len(run_ns)} runs, {took:.0f} s)")
    return result


def summarize(run_ns: list[int], call_ns: list[int], logging_ns: list[int] | None = None,
              values_per_run: int | None = None) -> dict[str, Any]:
    """Medians (and a little more) of one repetition, in ms per run and µs per call.

    ``call_us_*`` come from the per-call timings (absent when there are none);
    ``value_us_median`` is the median over runs of the time spent logging metrics
    divided by the values logged.
    """
    out: dict[str, Any] = {
        "runs": len(run_ns),
        "calls": len(call_ns),
        "run_ms": [ns / 1e6 for ns in run_ns],
        "run_ms_median": statistics.median(run_ns) / 1e6,
    }
    if call_ns:
        ordered = sorted(call_ns)
        out.update(call_us_median=statistics.median(ordered) / 1e3,
                   call_us_mean=statistics.fmean(ordered) / 1e3,
                   call_us_p99=ordered[int(0.99 * (len(ordered) - 1))] / 1e3)
    if logging_ns and values_per_run:
        out["value_us_median"] = statistics.median(logging_ns) / values_per_run / 1e3
    return out
