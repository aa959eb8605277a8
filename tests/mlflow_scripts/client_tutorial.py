# Follows MLflow's tracking API tutorials with the client: an experiment with tags, found by a
# filter; runs created with explicit times, logged by id, terminated; searched page by page.
import mlflow
from mlflow.entities import ViewType
from mlflow.tracking import MlflowClient

client = MlflowClient()
exp_id = client.create_experiment("apples", tags={"project": "grocery", "team": "stores-ml"})
found = mlflow.search_experiments(filter_string="tags.project = 'grocery'")
t0 = 1_700_000_000_000
for i in range(5):
    run = client.create_run(exp_id, start_time=t0 + i * 1000, run_name=f"apples-{i}",
                            tags={"batch": str(i % 2)})
    client.log_param(run.info.run_id, "lr", 0.1 * (i + 1))
    client.log_metric(run.info.run_id, "rmse", 10.0 - i, timestamp=t0 + i * 1000 + 5, step=0)
    client.update_run(run.info.run_id, name=f"apples-{i}-renamed")
    client.set_terminated(run.info.run_id, "FINISHED", end_time=t0 + i * 1000 + 500)
pages, token = [], None
while True:
    page = client.search_runs([exp_id], "tags.batch = '0'", ViewType.ACTIVE_ONLY, max_results=2,
                              order_by=["metrics.rmse ASC"], page_token=token)
    pages.append([r.info.run_name for r in page])
    token = page.token
    if not token:
        break
times = sorted((r.info.start_time - t0, r.info.end_time - t0) for r in client.search_runs([exp_id]))
EXTRA = {"found": [e.name for e in found], "tags": client.get_experiment(exp_id).tags,
         "pages": pages, "times": times,
         "default": mlflow.get_experiment_by_name("Default") is not None}
