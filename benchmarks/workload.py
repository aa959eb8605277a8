"""The benchmark workload, shared by the labbook and MLflow workers (standard library only).

One run: 20 params logged in one call, 10 metrics × 100 steps logged one value
per call (``log_metric(key, value, step=step)``), and one 10 KB artifact. Every
value is fixed, so both trackers and every repetition do exactly the same work.
"""

from __future__ import annotations

import os
import random
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

EXPERIMENT = "bench"
N_PARAMS = 20
N_METRICS = 10
N_STEPS = 100
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


def metric_values() -> list[float]:
    """The value of every log_metric call, in call order (step-major, then key)."""
    values = []
    for step in range(N_STEPS):
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


def timed_run(start: Callable[[str], Any], end: Callable[[], Any],
              log_params: Callable[[dict[str, Any]], Any], log_metric: Callable[..., Any],
              log_artifact: Callable[[str], Any], artifact: Path, name: str,
              ) -> tuple[int, list[int]]:
    """Do one run of the workload; return (ns for the whole run, ns of each log_metric call)."""
    clock = time.perf_counter_ns
    the_params = params()
    values = metric_values()
    keys = METRIC_KEYS
    calls = [0] * len(values)
    artifact_path = str(artifact)
    i = 0
    begin = clock()
    start(name)
    log_params(the_params)
    for step in range(N_STEPS):
        for key in keys:
            t0 = clock()
            log_metric(key, values[i], step=step)
            calls[i] = clock() - t0
            i += 1
    log_artifact(artifact_path)
    end()
    return clock() - begin, calls


def summarize(run_ns: list[int], call_ns: list[int]) -> dict[str, Any]:
    """Medians (and a little more) of one repetition, in ms per run and µs per call."""
    ordered = sorted(call_ns)
    return {
        "runs": len(run_ns),
        "calls": len(call_ns),
        "run_ms": [ns / 1e6 for ns in run_ns],
        "run_ms_median": statistics.median(run_ns) / 1e6,
        "call_us_median": statistics.median(ordered) / 1e3,
        "call_us_mean": statistics.fmean(ordered) / 1e3,
        "call_us_p99": ordered[int(0.99 * (len(ordered) - 1))] / 1e3,
    }
