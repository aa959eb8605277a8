"""mlflow.autolog() / mlflow.sklearn.autolog() through the drop-in: MLflow's names, the
run found by last_active_run, the model stored and loaded back."""

from __future__ import annotations

from pathlib import Path

import pytest

import labbook
import labbook.mlflow as mlflow

pytest.importorskip("sklearn")
from sklearn.datasets import load_diabetes, load_iris
from sklearn.linear_model import LinearRegression, LogisticRegression


@pytest.fixture(autouse=True)
def autologging():
    yield
    labbook.autolog(disable=True)


def test_sklearn_autolog_through_the_drop_in(repo: Path) -> None:
    mlflow.sklearn.autolog()
    X, y = load_diabetes(return_X_y=True)
    model = LinearRegression().fit(X, y)
    run = mlflow.last_active_run()
    assert run is not None and run.info.status == "FINISHED"
    assert run.data.tags["estimator_name"] == "LinearRegression"
    assert run.data.tags["estimator_class"] == "sklearn.linear_model._base.LinearRegression"
    assert run.data.tags["mlflow.autologging"] == "sklearn"  # a run autolog started
    assert set(run.data.metrics) == {"training_mean_squared_error", "training_mean_absolute_error",
                                     "training_r2_score", "training_root_mean_squared_error",
                                     "training_score"}
    assert run.data.params["fit_intercept"] == "True" and run.data.params["n_jobs"] == "None"
    files = [f.path for f in mlflow.MlflowClient().list_artifacts(run.info.run_id, "model")]
    assert {"model/MLmodel", "model/model.pkl"} <= set(files)
    loaded = mlflow.sklearn.load_model(f"runs:/{run.info.run_id}/model")
    assert (loaded.predict(X) == model.predict(X)).all()


def test_mlflow_autolog_covers_sklearn_and_logs_into_the_active_run(repo: Path) -> None:
    mlflow.autolog()
    X, y = load_iris(return_X_y=True)
    with mlflow.start_run(run_name="iris") as active:
        LogisticRegression(max_iter=300).fit(X, y)
    run = mlflow.get_run(active.info.run_id)
    assert {"training_accuracy_score", "training_f1_score", "training_log_loss",
            "training_roc_auc", "training_score"} <= set(run.data.metrics)
    assert mlflow.last_active_run().info.run_id == active.info.run_id


def test_log_model_and_unsupported_options(repo: Path) -> None:
    X, y = load_diabetes(return_X_y=True)
    model = LinearRegression().fit(X, y)
    signature = mlflow.models.infer_signature(X, model.predict(X))
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(model, name="linear", signature=signature)
    assert mlflow.sklearn.load_model(info.model_uri).coef_.tolist() == model.coef_.tolist()
    with pytest.raises(mlflow.Unsupported, match="registered_model_name"):
        mlflow.sklearn.autolog(registered_model_name="prod")
    with pytest.raises(mlflow.MlflowException, match="serialization format"):
        mlflow.sklearn.autolog(serialization_format="joblib")
