import mlflow
import numpy as np
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge
from sklearn.model_selection import cross_val_score

X, y = load_diabetes(return_X_y=True)
exp = mlflow.set_experiment("ridge-sweep")
with mlflow.start_run(run_name="sweep") as parent:
    mlflow.log_param("grid", "0.01,0.1,1,10")
    scores = {}
    for alpha in [0.01, 0.1, 1.0, 10.0]:
        with mlflow.start_run(run_name=f"alpha={alpha}", nested=True):
            mlflow.log_param("alpha", alpha)
            folds = cross_val_score(Ridge(alpha=alpha), X, y, cv=3, scoring="r2")
            for step, score in enumerate(folds):
                mlflow.log_metric("fold_r2", float(score), step=step)
            scores[alpha] = float(np.mean(folds))
            mlflow.log_metric("mean_r2", scores[alpha])
    best = max(scores, key=scores.get)
    mlflow.log_params({"best_alpha": best})
    mlflow.log_metric("best_r2", scores[best])
children = mlflow.search_runs(experiment_ids=[exp.experiment_id],
                              filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'",
                              order_by=["metrics.mean_r2 DESC"])
EXTRA = {"children": children["tags.mlflow.runName"].tolist(),
         "by_name": mlflow.search_runs(experiment_names=["ridge-sweep"],
                                       filter_string="attributes.run_name = 'sweep'")["run_id"].tolist()
         == [parent.info.run_id]}
