# MLflow's documented pattern for runs in threads: each ThreadPoolExecutor worker starts its
# own run and logs its own params and metrics (the active run is per thread).
from concurrent.futures import ThreadPoolExecutor

import mlflow

mlflow.set_experiment("threads")


def train(i):
    with mlflow.start_run(run_name=f"worker-{i}"):
        mlflow.log_param("worker", i)
        for step in range(3):
            mlflow.log_metric("loss", 1.0 / (i + step + 1), step=step)
        with mlflow.start_run(run_name=f"worker-{i}-child", nested=True):
            mlflow.log_param("parent_worker", i)
    return i


with ThreadPoolExecutor(max_workers=4) as pool:
    done = list(pool.map(train, range(6)))
EXTRA = {"done": done, "active_after": mlflow.active_run() is None}
