"""Active runs are per thread (MLflow's semantics): workers of a pool never log into, or
nest under, another thread's run; threads logging into one run by id lose nothing."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import labbook
import labbook.mlflow as mlflow
from labbook import tracking


def test_mlflow_thread_pool_pattern_each_worker_its_own_run(repo: Path) -> None:
    """MLflow's documented pattern: each worker starts a run and logs its own values."""
    mlflow.set_experiment("pool")

    def train(i: int) -> str:
        with mlflow.start_run(run_name=f"worker-{i}") as run:
            mlflow.log_param("i", i)
            for step in range(3):
                mlflow.log_metric("loss", i * 10 + step, step=step)
            assert mlflow.active_run().info.run_id == run.info.run_id
        assert mlflow.last_active_run().info.run_id == run.info.run_id
        return run.info.run_id

    with ThreadPoolExecutor(max_workers=4) as pool:
        ids = list(pool.map(train, range(8)))

    assert mlflow.active_run() is None and mlflow.last_active_run() is None  # the main thread's
    df = mlflow.search_runs()
    assert len(df) == 8
    for i, rid in enumerate(ids):
        run = mlflow.get_run(rid)
        assert run.info.run_name == f"worker-{i}"
        assert run.data.params == {"i": str(i)}
        assert run.data.metrics == {"loss": i * 10 + 2}
        assert run.info.status == "FINISHED"
        assert "mlflow.parentRunId" not in run.data.tags  # never a child of another worker's run


def test_a_new_thread_starts_with_no_active_run(repo: Path) -> None:
    with labbook.start_run("main") as main:
        seen: list[object] = []
        worker = threading.Thread(target=lambda: seen.append(labbook.active_run()))
        worker.start()
        worker.join()
        assert seen == [None]
        assert labbook.active_run() is main


def test_children_in_worker_threads_never_attach_to_another_threads_run(repo: Path) -> None:
    """A nested start_run in a worker nests under that worker's run only."""
    barrier = threading.Barrier(3)

    def worker(i: int) -> tuple[str, list[str]]:
        with mlflow.start_run(run_name=f"parent-{i}") as parent:
            barrier.wait()  # all three parents are active at once
            children = []
            for j in range(2):
                with mlflow.start_run(run_name=f"child-{i}-{j}", nested=True) as child:
                    mlflow.log_param("j", j)
                    children.append(child.info.run_id)
            return parent.info.run_id, children

    # a run in the main thread that the workers must not see
    with labbook.start_run("main-thread-run"), ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(worker, range(3)))
    for parent_id, children in results:
        assert mlflow.get_run(parent_id).data.tags.get("mlflow.parentRunId") is None
        for child_id in children:
            assert mlflow.get_run(child_id).data.tags["mlflow.parentRunId"] == parent_id


def test_threads_logging_into_one_run_by_id_lose_nothing(repo: Path) -> None:
    client = mlflow.MlflowClient()
    run_id = client.create_run("default", run_name="shared").info.run_id

    def log(i: int) -> None:
        client.log_metric(run_id, "m", float(i), step=i)
        mlflow.log_metric("fluent", float(i), step=i, run_id=run_id)
        client.log_param(run_id, f"p{i}", i)

    with ThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(log, range(30)))
    client.set_terminated(run_id)

    assert sorted(m.step for m in client.get_metric_history(run_id, "m")) == list(range(30))
    assert sorted(m.step for m in client.get_metric_history(run_id, "fluent")) == list(range(30))
    run = client.get_run(run_id)
    assert run.data.params == {f"p{i}": str(i) for i in range(30)}
    assert run.info.status == "FINISHED"


def test_threads_resuming_one_active_run_share_it(repo: Path) -> None:
    """start_run(run_id=) in workers while the main thread has the run active: every value
    lands, and only the main thread's end ends it."""
    with mlflow.start_run(run_name="parent") as parent:
        rid = parent.info.run_id

        def work(i: int) -> None:
            with mlflow.start_run(run_id=rid):
                mlflow.log_metric(f"w{i}", i)

        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(work, range(8)))
        assert mlflow.get_run(rid).info.status == "RUNNING"
        mlflow.log_metric("after", 1.0)
    run = mlflow.get_run(rid)
    assert run.info.status == "FINISHED"
    assert set(run.data.metrics) == {f"w{i}" for i in range(8)} | {"after"}
    assert tracking._state.live_runs() == []


def test_runs_left_open_in_worker_threads_are_ended_at_exit(repo: Path) -> None:
    def leave_open() -> None:
        labbook.start_run("left-open")

    worker = threading.Thread(target=leave_open)
    worker.start()
    worker.join()
    (run,) = tracking._state.live_runs()
    tracking._end_open_runs("FINISHED", None)
    assert labbook.get_run(run.id).status == "FINISHED"


def test_a_worker_leaving_a_shared_run_does_not_end_it(repo: Path) -> None:
    """labbook's own fluent API: `with start_run(run_id=)` in a worker lets go of the run;
    the main thread keeps logging and its exit ends it."""
    with labbook.start_run("shared") as run:
        def work() -> None:
            with labbook.start_run(run_id=run.id):
                labbook.log_metric("from_worker", 1.0)
            assert labbook.active_run() is None

        worker = threading.Thread(target=work)
        worker.start()
        worker.join()
        assert run.active
        labbook.log_metric("from_main", 2.0)
    assert labbook.get_run(run.id).metrics == {"from_worker": 1.0, "from_main": 2.0}
    assert labbook.get_run(run.id).status == "FINISHED"
