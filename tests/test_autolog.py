"""labbook.autolog(): scikit-learn fits logged as runs, and the original fit put back."""

from __future__ import annotations

from pathlib import Path

import pytest

import labbook

pytest.importorskip("sklearn")
from sklearn.datasets import make_classification, make_regression
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import GridSearchCV
from sklearn.tree import DecisionTreeClassifier

ORIGINAL_RIDGE_FIT = Ridge.fit


@pytest.fixture(autouse=True)
def autologging():
    labbook.autolog()
    yield
    labbook.autolog(disable=True)


def test_regressor_fit_inside_a_run_logs_params_class_and_training_metrics(repo: Path):
    X, y = make_regression(n_samples=60, n_features=4, noise=5.0, random_state=0)
    with labbook.start_run("ridge") as run:
        Ridge(alpha=0.5, solver="auto").fit(X, y)
    logged = labbook.get_run(run.id)
    assert logged.params["alpha"] == 0.5 and logged.params["solver"] == "auto"
    assert logged.params["fit_intercept"] is True and logged.params["random_state"] == "None"
    assert logged.tags["estimator_class"] == "sklearn.linear_model._ridge.Ridge"
    assert logged.tags["estimator_name"] == "Ridge"
    assert set(logged.metrics) == {"training_mean_squared_error", "training_root_mean_squared_error",
                                   "training_mean_absolute_error", "training_r2_score", "training_score"}
    assert 0.9 < logged.metrics["training_r2_score"] == logged.metrics["training_score"] <= 1.0
    assert len(labbook.search_runs()) == 1


def test_classifier_fit_outside_a_run_gets_a_run_of_its_own(repo: Path):
    X, y = make_classification(n_samples=80, n_features=5, random_state=0)
    model = LogisticRegression(C=2.0, class_weight={0: 1.0, 1: 2.0}, max_iter=200).fit(X, y)
    assert labbook.active_run() is None
    frame = labbook.search_runs()
    assert len(frame) == 1
    row = frame.iloc[0]
    assert row["run_name"] == "LogisticRegression" and row["status"] == "FINISHED"
    assert row["params.C"] == 2.0 and row["params.class_weight"] == "{0: 1.0, 1: 2.0}"
    assert row["metrics.training_accuracy_score"] == pytest.approx(model.score(X, y))
    assert 0.5 < row["metrics.training_f1_score"] <= 1.0
    assert {"metrics.training_log_loss", "metrics.training_roc_auc", "metrics.training_precision_score",
            "metrics.training_recall_score", "metrics.training_score"} <= set(frame.columns)


def test_grid_search_is_a_parent_with_a_child_per_candidate(repo: Path):
    X, y = make_classification(n_samples=90, n_features=5, random_state=1)
    search = GridSearchCV(DecisionTreeClassifier(random_state=0),
                          {"max_depth": [1, 3], "min_samples_leaf": [1, 5]}, cv=3)
    search.fit(X, y)
    frame = labbook.search_runs().set_index("run_id")
    assert len(frame) == 5, "the search, its 4 candidates, and no run for the inner fits or refit"
    parent = frame[frame["parent_run_id"].isna()]
    children = frame[frame["parent_run_id"].notna()]
    assert list(parent["run_name"]) == ["GridSearchCV"] and len(children) == 4
    assert set(children["parent_run_id"]) == set(parent.index)
    assert sorted(zip(children["params.max_depth"], children["params.min_samples_leaf"], strict=True)) == [
        (1, 1), (1, 5), (3, 1), (3, 5)]
    for _, child in children.iterrows():
        assert 0 <= child["metrics.mean_test_score"] <= 1 and child["metrics.std_test_score"] >= 0
        assert child["metrics.rank_test_score"] in (1, 2, 3, 4)
        assert child["tags.estimator_class"].endswith(".DecisionTreeClassifier")
    top = parent.iloc[0]
    assert top["params.best_max_depth"] == search.best_params_["max_depth"]
    assert top["metrics.best_cv_score"] == pytest.approx(search.best_score_)
    assert top["tags.estimator_class"].endswith(".GridSearchCV")
    assert top["params.estimator"] == "DecisionTreeClassifier(random_state=0)"  # deep=False
    assert "metrics.training_accuracy_score" in frame.columns
    assert "params.criterion" in frame.columns  # a child has the seed's params and its own
    best = children[children["metrics.rank_test_score"] == 1]
    assert best["metrics.mean_test_score"].iloc[0] == pytest.approx(search.best_score_)


def test_disable_restores_fit_and_later_fits_log_nothing(repo: Path):
    assert Ridge.fit is not ORIGINAL_RIDGE_FIT
    labbook.autolog(disable=True)
    assert Ridge.fit is ORIGINAL_RIDGE_FIT
    X, y = make_regression(n_samples=30, n_features=3, random_state=0)
    Ridge().fit(X, y)
    with labbook.start_run("plain") as run:
        Ridge(alpha=2.0).fit(X, y)
    assert labbook.get_run(run.id).params == {}
    assert len(labbook.search_runs()) == 1


def test_pipeline_params_are_deep_and_the_model_is_an_artifact_that_loads(repo: Path):
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    from labbook.runs import models

    X, y = make_regression(n_samples=50, n_features=3, noise=2.0, random_state=0)
    pipe = Pipeline([("scale", StandardScaler()), ("ridge", Ridge(alpha=3.0))]).fit(X, y)
    run = labbook.get_run(labbook.tracking.last_active_run().id)
    assert run.params["ridge__alpha"] == 3.0 and run.params["scale__with_mean"] is True
    assert run.params["scale"] == "StandardScaler()"
    assert run.tags["estimator_name"] == "Pipeline"
    paths = {a.path for a in run.artifacts}
    assert {"model/model.pkl", "model/MLmodel", "model/requirements.txt", "estimator.html"} <= paths
    [restored] = labbook.tracking.get_artifacts(run.id, "model/model.pkl", dest=str(repo.parent / "out"))
    loaded = models.load_bytes(Path(restored).read_bytes(), "cloudpickle")
    assert (loaded.predict(X) == pipe.predict(X)).all()


def test_a_search_makes_children_for_its_best_candidates_only(repo: Path):
    X, y = make_regression(n_samples=60, n_features=3, random_state=0)
    labbook.autolog(max_tuning_runs=2)
    GridSearchCV(Ridge(), {"alpha": [0.01, 0.1, 1.0, 10.0]}, cv=3).fit(X, y)
    frame = labbook.search_runs()
    children = frame[frame["parent_run_id"].notna()]
    assert sorted(children["metrics.rank_test_score"]) == [1, 2]
    parent = frame[frame["parent_run_id"].isna()].iloc[0]
    paths = {a.path for a in labbook.get_run(parent["run_id"]).artifacts}
    assert {"cv_results.csv", "best_estimator/model.pkl", "model/model.pkl"} <= paths
