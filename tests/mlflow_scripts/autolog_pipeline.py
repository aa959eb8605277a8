# Follows MLflow's examples/sklearn_autolog/pipeline.py: a scaler and a regression in a
# Pipeline under autolog; the steps' params are logged with their step prefix.
import mlflow
import numpy as np
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

mlflow.sklearn.autolog()
X = np.array([[1, 1], [1, 2], [2, 2], [2, 3]])
y = np.dot(X, np.array([1, 2])) + 3
pipe = Pipeline([("scaler", StandardScaler()), ("lr", LinearRegression())])
with mlflow.start_run(run_name="pipeline"):
    pipe.fit(X, y)
run = mlflow.last_active_run()
EXTRA = {"step_params": sorted(k for k in run.data.params if "__" in k),
         "estimator_name": run.data.tags["estimator_name"]}
