# Follows MLflow's examples/sklearn_autolog/linear_regression.py: autolog, one fit outside any
# run, the run found with last_active_run, its logged data read back with the client.
import mlflow
import numpy as np
from mlflow.tracking import MlflowClient
from sklearn.linear_model import LinearRegression


def artifact_files(run_id, path=None):
    for item in MlflowClient().list_artifacts(run_id, path):
        if item.is_dir:
            yield from artifact_files(run_id, item.path)
        else:
            yield item.path


mlflow.sklearn.autolog()
X = np.array([[1, 1], [1, 2], [2, 2], [2, 3]])
y = np.dot(X, np.array([1, 2])) + 3
LinearRegression().fit(X, y)
run_id = mlflow.last_active_run().info.run_id
data = MlflowClient().get_run(run_id).data
files = set(artifact_files(run_id))
EXTRA = {"params": sorted(data.params), "metrics": sorted(data.metrics),
         "tags": sorted(k for k in data.tags if not k.startswith("mlflow.")),
         "has_model": {"model/MLmodel", "estimator.html"} <= files or "estimator.html" in files}
