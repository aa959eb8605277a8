import mlflow

mlflow.set_experiment("resume")
with mlflow.start_run(run_name="long-training") as run:
    mlflow.log_param("lr", 0.001)
    for step in range(3):
        mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
run_id = run.info.run_id
with mlflow.start_run(run_id=run_id):
    for step in range(3, 6):
        mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
    mlflow.log_param("lr", 0.001)  # the same value again is fine
    mlflow.set_tag("resumed", "yes")
client = mlflow.MlflowClient()
client.log_metric(run_id, "val_loss", 0.7, step=5)
client.set_tag(run_id, "checked", "true")
try:
    client.log_param(run_id, "lr", 0.01)
    conflict = "no error"
except mlflow.exceptions.MlflowException:
    conflict = "MlflowException"
try:
    client.get_run("0123456789abcdef0123456789abcdef")
    missing = "no error"
except mlflow.exceptions.MlflowException:
    missing = "MlflowException"
fetched = client.get_run(run_id)
EXTRA = {"history": [(m.step, m.value) for m in sorted(client.get_metric_history(run_id, "loss"),
                                                        key=lambda m: m.step)],
         "conflict": conflict, "missing": missing, "status": fetched.info.status,
         "params": fetched.data.params, "metrics": fetched.data.metrics,
         "listed": [r.info.run_name for r in mlflow.search_runs(output_format="list")]}
