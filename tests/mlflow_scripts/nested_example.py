import mlflow

mlflow.set_experiment("/mlflow_sdk_test")
with mlflow.start_run(run_name="Ridge Regression Nested") as parent:  # noqa: SIM117 (as in the issue)
    with mlflow.start_run(run_name="Child Run: alpha 0.1", nested=True):
        mlflow.log_param("alpha", 0.1)
        mlflow.log_metric("mse", 3000.0)
with mlflow.start_run(run_id=parent.info.run_id):
    mlflow.log_metric("r2", 0.44)
df = mlflow.search_runs(order_by=["start_time DESC"])
SELECTED = df[["run_id", "experiment_id", "status", "start_time", "metrics.mse",
               "tags.mlflow.runName", "tags.mlflow.parentRunId"]]
EXTRA = {"selected_columns": list(SELECTED.columns), "rows": len(SELECTED),
         "last_active": mlflow.last_active_run().info.run_name}
