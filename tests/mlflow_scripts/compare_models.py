import mlflow
from sklearn.datasets import load_diabetes
from sklearn.ensemble import RandomForestRegressor
from sklearn.linear_model import Lasso, LinearRegression, Ridge
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score
from sklearn.model_selection import train_test_split

X, y = load_diabetes(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0)
models = {"linear": LinearRegression(), "ridge": Ridge(alpha=0.5), "lasso": Lasso(alpha=0.1),
          "forest": RandomForestRegressor(n_estimators=20, max_depth=4, random_state=0)}
mlflow.set_experiment("diabetes-models")
for name, model in models.items():
    with mlflow.start_run(run_name=name, tags={"family": type(model).__name__}):
        mlflow.log_params(model.get_params())
        model.fit(X_train, y_train)
        pred = model.predict(X_test)
        mlflow.log_metrics({"mse": mean_squared_error(y_test, pred), "r2": r2_score(y_test, pred),
                            "mae": mean_absolute_error(y_test, pred)})
        mlflow.set_tag("stage", "baseline")
        mlflow.log_dict({"model": name, "n_train": len(y_train)}, "info/summary.json")
best = mlflow.search_runs(order_by=["metrics.mse ASC"], max_results=1)
ranked = mlflow.search_runs(filter_string="metrics.r2 > 0.3 and tags.stage = 'baseline'",
                            order_by=["metrics.r2 DESC"])
EXTRA = {"best": best["tags.mlflow.runName"].tolist(), "ranked": ranked["tags.mlflow.runName"].tolist()}
