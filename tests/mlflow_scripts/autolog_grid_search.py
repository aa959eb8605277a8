# Follows MLflow's examples/sklearn_autolog/grid_search_cv.py: a GridSearchCV of an SVC under
# autolog, then its child runs found by their parent's id.
import mlflow
from sklearn import datasets, svm
from sklearn.model_selection import GridSearchCV

mlflow.sklearn.autolog()
iris = datasets.load_iris()
grid = {"kernel": ("linear", "rbf"), "C": [1, 10]}
search = GridSearchCV(svm.SVC(), grid)
with mlflow.start_run(run_name="grid-search") as run:
    search.fit(iris.data, iris.target)
children = mlflow.search_runs(filter_string=f"tags.mlflow.parentRunId = '{run.info.run_id}'")
parent = mlflow.get_run(run.info.run_id)
EXTRA = {"children": len(children),
         "child_columns": sorted(c for c in children.columns if c.startswith(("params.C", "params.kernel",
                                                                               "metrics.mean_test"))),
         "best": {k: v for k, v in parent.data.params.items() if k.startswith("best_")},
         "best_cv_score": round(parent.data.metrics["best_cv_score"], 9)}
