"""The MLflow side of bench_query.py: fill a sqlite store, time search_runs, check the fill.

Run with the python of benchmarks/.venv-mlflow (MLflow is not a labbook dependency)::

    .venv-mlflow/bin/python mlflow_query.py fill-sql DB N    # the benchmark's fill (seconds)
    .venv-mlflow/bin/python mlflow_query.py fill-api DB N    # through MLflow's API (~40 ms a run)
    .venv-mlflow/bin/python mlflow_query.py query DB         # two search_runs in this process
    .venv-mlflow/bin/python mlflow_query.py check API_DB SQL_DB

``fill-sql`` creates the store and the experiment through MLflow (so the schema
and its migrations are MLflow's own), then inserts the rows MLflow's sqlite
store writes for ``create_run`` + ``log_batch`` + ``set_terminated`` — runs,
tags (``mlflow.runName``), params, metrics and latest_metrics — with sqlite3
``executemany`` in one transaction. ``check`` compares a store filled each way:
the benchmark query and an unfiltered search_runs must give the same DataFrame
(run ids aside), and every row of those five tables must be the same once run
ids are replaced by run names. The result is the last line on stdout, as JSON;
progress and MLflow's own output go to stderr.
"""

from __future__ import annotations

import contextlib
import json
import math
import resource
import sqlite3
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from bench_query import EXPERIMENT, FILTER, ORDER_BY, rss_mib, run_times, run_values

CHUNK = 5_000  # runs per executemany batch (all in one transaction)
TABLES = ("runs", "tags", "params", "metrics", "latest_metrics")


def tracking_uri(db: Path) -> str:
    return f"sqlite:///{db.resolve()}"


def run_rows(count: int, experiment_id: int, location: str) -> Iterator[dict[str, list[tuple]]]:
    """The rows of runs 0 … count-1, CHUNK runs at a time, table by table."""
    for first in range(0, count, CHUNK):
        rows: dict[str, list[tuple]] = {table: [] for table in TABLES}
        for i in range(first, min(first + CHUNK, count)):
            rid, params, metrics = run_values(i)
            start_ms, end_ms = run_times(i)
            name = f"run-{i}"
            rows["runs"].append((rid, name, "UNKNOWN", "", "", "unknown", "FINISHED", start_ms, end_ms,
                                 None, "", "active", f"{location}/{rid}/artifacts", experiment_id))
            rows["tags"].append(("mlflow.runName", name, rid))
            rows["params"] += [(key, str(value), rid) for key, value in params.items()]
            for key, value in metrics.items():
                nan = math.isnan(value)
                stored = 0.0 if nan else value  # MLflow stores NaN as 0 with is_nan set
                rows["metrics"].append((key, stored, start_ms, rid, 0, nan))
                rows["latest_metrics"].append((key, stored, start_ms, 0, nan, rid))
        yield rows


INSERT = {
    "runs": "INSERT INTO runs (run_uuid, name, source_type, source_name, entry_point_name, user_id, "
            "status, start_time, end_time, deleted_time, source_version, lifecycle_stage, artifact_uri, "
            "experiment_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    "tags": "INSERT INTO tags (key, value, run_uuid) VALUES (?, ?, ?)",
    "params": "INSERT INTO params (key, value, run_uuid) VALUES (?, ?, ?)",
    "metrics": "INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan) "
               "VALUES (?, ?, ?, ?, ?, ?)",
    "latest_metrics": "INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid) "
                      "VALUES (?, ?, ?, ?, ?, ?)",
}


def fill_sql(db: Path, count: int) -> dict:
    """Store and experiment through MLflow, then every run with direct SQL in one transaction."""
    import mlflow

    began = time.perf_counter()
    client = mlflow.MlflowClient(tracking_uri=tracking_uri(db))
    experiment_id = client.create_experiment(EXPERIMENT)
    location = client.get_experiment(experiment_id).artifact_location
    connection = sqlite3.connect(db, isolation_level="DEFERRED")
    done = 0
    try:
        with connection:  # one transaction: committed at the end, rolled back on an error
            for rows in run_rows(count, int(experiment_id), location):
                for table in TABLES:
                    connection.executemany(INSERT[table], rows[table])
                done += len(rows["runs"])
                print(f"  MLflow sql fill: {done:,} / {count:,} runs ({time.perf_counter() - began:.0f} s)",
                      file=sys.stderr, flush=True)
    finally:
        connection.close()
    return {"seconds": time.perf_counter() - began, "runs": count}


def fill_api(db: Path, count: int) -> dict:
    """The same runs through MlflowClient (create_run, log_batch, set_terminated): slow."""
    import mlflow
    from mlflow.entities import Metric, Param

    began = time.perf_counter()
    client = mlflow.MlflowClient(tracking_uri=tracking_uri(db))
    experiment_id = client.create_experiment(EXPERIMENT)
    for i in range(count):
        _, params, metrics = run_values(i)
        start_ms, end_ms = run_times(i)
        run = client.create_run(experiment_id, start_time=start_ms, run_name=f"run-{i}")
        client.log_batch(run.info.run_id, metrics=[Metric(k, v, start_ms, 0) for k, v in metrics.items()],
                         params=[Param(k, str(v)) for k, v in params.items()])
        client.set_terminated(run.info.run_id, end_time=end_ms)
        if (i + 1) % 200 == 0:
            print(f"  MLflow API fill: {i + 1:,} / {count:,} runs ({time.perf_counter() - began:.0f} s)",
                  file=sys.stderr, flush=True)
    return {"seconds": time.perf_counter() - began, "runs": count}


def query(db: Path) -> dict:
    """Two search_runs in this fresh process: the first call, then the second."""
    import mlflow

    mlflow.set_tracking_uri(tracking_uri(db))
    experiment_id = mlflow.MlflowClient().get_experiment_by_name(EXPERIMENT).experiment_id
    before = rss_mib()
    times = []
    for _ in range(2):
        start = time.perf_counter()
        frame = mlflow.search_runs([experiment_id], filter_string=FILTER, order_by=ORDER_BY,
                                   max_results=1_000_000)
        times.append(time.perf_counter() - start)
    return {"first": times[0], "second": times[1], "rows": len(frame),
            "names": frame["tags.mlflow.runName"].tolist(), "rss_before_mib": before,
            "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "version": mlflow.__version__}


def searches(db: Path) -> dict[str, object]:
    """The benchmark query and every run, as DataFrames with run ids replaced by run names."""
    import mlflow

    mlflow.set_tracking_uri(tracking_uri(db))
    experiment_id = mlflow.MlflowClient().get_experiment_by_name(EXPERIMENT).experiment_id
    frames = {
        "benchmark filter": mlflow.search_runs([experiment_id], filter_string=FILTER, order_by=ORDER_BY,
                                               max_results=1_000_000),
        "every run": mlflow.search_runs([experiment_id], order_by=["attributes.start_time ASC"],
                                        max_results=1_000_000),
    }
    for label, frame in frames.items():
        if not frame.empty:  # an empty frame has no tags column
            frame["artifact_uri"] = [uri.replace(rid, name) for uri, rid, name in
                                     zip(frame["artifact_uri"], frame["run_id"], frame["tags.mlflow.runName"],
                                         strict=True)]
        frames[label] = frame.drop(columns=["run_id"]).sort_index(axis=1)
    return frames


def table_rows(db: Path) -> dict[str, list[tuple]]:
    """Every row of the five tables, run ids replaced by run names, sorted."""
    connection = sqlite3.connect(db)
    try:
        names = dict(connection.execute("SELECT run_uuid, name FROM runs"))
        found = {}
        for table in TABLES:
            cursor = connection.execute(f"SELECT * FROM {table}")  # a fixed table name
            columns = [c[0] for c in cursor.description]
            rows = []
            for row in cursor:
                values = dict(zip(columns, row, strict=True))
                rid = values["run_uuid"]
                values["run_uuid"] = names[rid]
                if table == "runs":
                    values["artifact_uri"] = values["artifact_uri"].replace(rid, names[rid])
                rows.append(tuple(sorted(values.items())))
            found[table] = sorted(rows, key=repr)
        return found
    finally:
        connection.close()


def check(api_db: Path, sql_db: Path) -> dict:
    """Are a store filled through the API and one filled with SQL the same to MLflow?"""
    problems = []
    api, sql = searches(api_db), searches(sql_db)
    for label in api:
        left, right = api[label], sql[label]
        if list(left.columns) != list(right.columns):
            problems.append(f"{label}: columns differ: {set(left.columns) ^ set(right.columns)}")
        elif not left.equals(right):
            problems.append(f"{label}: {len(left)} and {len(right)} rows, values differ")
    api_rows, sql_rows = table_rows(api_db), table_rows(sql_db)
    for table in TABLES:
        if api_rows[table] != sql_rows[table]:
            extra = set(api_rows[table]) ^ set(sql_rows[table])
            problems.append(f"table {table}: {len(extra)} rows differ, e.g. {sorted(extra, key=repr)[:2]}")
    return {"ok": not problems, "problems": problems,
            "rows": {label: len(frame) for label, frame in api.items()},
            "columns": len(api["every run"].columns),
            "table_rows": {table: len(rows) for table, rows in api_rows.items()}}


def main() -> None:
    mode, *rest = sys.argv[1:]
    out = sys.stdout
    with contextlib.redirect_stdout(sys.stderr):
        if mode == "fill-sql":
            result = fill_sql(Path(rest[0]), int(rest[1]))
        elif mode == "fill-api":
            result = fill_api(Path(rest[0]), int(rest[1]))
        elif mode == "query":
            result = query(Path(rest[0]))
        elif mode == "check":
            result = check(Path(rest[0]), Path(rest[1]))
        else:
            raise SystemExit(f"unknown mode {mode!r}")
    out.write(json.dumps(result) + "\n")
    out.flush()


if __name__ == "__main__":
    main()
