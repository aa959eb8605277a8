"""XGBoost and LightGBM callbacks: real training on tiny data, read back from the branch."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

import labbook

np = pytest.importorskip("numpy")


def tiny_regression(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(120, 4))
    y = X @ np.array([1.0, -2.0, 0.5, 0.0]) + rng.normal(scale=0.1, size=120)
    return X[:90], y[:90], X[90:], y[90:]


def test_xgboost_logs_params_each_iteration_and_the_best(repo: Path) -> None:
    xgb = pytest.importorskip("xgboost")
    from labbook.integrations.xgboost import LabbookCallback

    X, y, Xv, yv = tiny_regression()
    dtrain, dvalid = xgb.DMatrix(X, label=y), xgb.DMatrix(Xv, label=yv)
    booster = xgb.train({"objective": "reg:squarederror", "eta": 0.3, "max_depth": 3,
                         "eval_metric": "rmse", "nthread": 1}, dtrain, num_boost_round=12,
                        evals=[(dtrain, "train"), (dvalid, "eval")], early_stopping_rounds=50,
                        verbose_eval=False,
                        callbacks=[LabbookCallback(experiment="boost", hypothesis="depth 3 is enough")])
    assert labbook.active_run() is None, "the callback ends the run it started"
    df = labbook.search_runs("boost")
    assert len(df) == 1
    run = labbook.get_run(df.run_id[0])
    assert run.status == "FINISHED"
    assert run.hypothesis == "depth 3 is enough"
    assert run.params["eta"] == pytest.approx(0.3)
    assert run.params["max_depth"] == 3
    assert run.params["objective"] == "reg:squarederror"
    assert run.params["eval_metric"] == ["rmse"]
    history = run.metric_history("eval-rmse")
    assert [step for step, _, _ in history] == list(range(12))
    values = [v for _, _, v in history]
    assert values[-1] < values[0]
    assert [v for _, _, v in run.metric_history("train-rmse")][-1] < values[-1] * 2
    assert run.metrics["best_iteration"] == booster.best_iteration
    assert run.metrics["best_score"] == pytest.approx(float(booster.best_score))
    assert run.tags["labbook.integration"] == "xgboost"


def test_xgboost_logs_into_the_active_run_and_leaves_it_open(repo: Path) -> None:
    xgb = pytest.importorskip("xgboost")
    from labbook.integrations.xgboost import LabbookCallback

    X, y, _, _ = tiny_regression()
    dtrain = xgb.DMatrix(X, label=y)
    with labbook.start_run(name="mine") as run:
        xgb.train({"nthread": 1}, dtrain, num_boost_round=3, evals=[(dtrain, "train")],
                  verbose_eval=False, callbacks=[LabbookCallback()])
        assert run.active
        labbook.log_metric("after", 1.0)
    back = labbook.get_run("mine")
    assert len(back.metric_history("train-rmse")) == 3 and back.metrics["after"] == 1.0


def test_xgboost_on_another_rank_logs_nothing(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    xgb = pytest.importorskip("xgboost")
    from labbook.integrations.xgboost import LabbookCallback

    monkeypatch.setenv("RANK", "1")
    X, y, _, _ = tiny_regression()
    dtrain = xgb.DMatrix(X, label=y)
    xgb.train({"nthread": 1}, dtrain, num_boost_round=3, evals=[(dtrain, "train")],
              verbose_eval=False, callbacks=[LabbookCallback()])
    assert labbook.search_runs().empty


def test_xgboost_trains_on_when_the_notebook_cannot_be_written(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    xgb = pytest.importorskip("xgboost")
    from labbook.integrations.xgboost import LabbookCallback

    not_a_repo = tmp_path / "plain"
    not_a_repo.mkdir()
    monkeypatch.chdir(not_a_repo)
    labbook.set_repository(not_a_repo)
    X, y, _, _ = tiny_regression()
    dtrain = xgb.DMatrix(X, label=y)
    with caplog.at_level(logging.WARNING, logger="labbook"):
        booster = xgb.train({"nthread": 1}, dtrain, num_boost_round=4, evals=[(dtrain, "train")],
                            verbose_eval=False, callbacks=[LabbookCallback()])
    assert booster.num_boosted_rounds() == 4
    assert "labbook.integrations.xgboost: could not start a run" in caplog.text
    assert "training goes on" in caplog.text


def test_lightgbm_logs_params_and_each_iteration(repo: Path) -> None:
    lgb = pytest.importorskip("lightgbm")
    from labbook.integrations.lightgbm import log_evaluation

    X, y, Xv, yv = tiny_regression()
    dtrain = lgb.Dataset(X, label=y)
    dvalid = lgb.Dataset(Xv, label=yv, reference=dtrain)
    params = {"objective": "regression", "learning_rate": 0.2, "num_leaves": 7, "verbose": -1,
              "num_threads": 1, "min_data_in_leaf": 5}
    lgb.train(params, dtrain, num_boost_round=10, valid_sets=[dtrain, dvalid],
              valid_names=["train", "valid"], callbacks=[log_evaluation(name="gbm")])
    assert labbook.active_run() is None
    run = labbook.get_run("gbm")
    assert run.status == "FINISHED"
    assert run.params["learning_rate"] == 0.2 and run.params["num_leaves"] == 7
    history = run.metric_history("valid-l2")
    assert [step for step, _, _ in history] == list(range(10))
    assert history[-1][2] < history[0][2]
    assert len(run.metric_history("train-l2")) == 10
    assert run.metrics["iterations"] == 10


def test_lightgbm_early_stopping_then_finish_records_the_best_iteration(repo: Path) -> None:
    lgb = pytest.importorskip("lightgbm")
    from labbook.integrations.lightgbm import log_evaluation

    X, y, Xv, yv = tiny_regression()
    rng = np.random.default_rng(1)
    dtrain = lgb.Dataset(X, label=rng.normal(size=len(y)))  # noise: validation stops improving
    dvalid = lgb.Dataset(Xv, label=yv, reference=dtrain)
    callback = log_evaluation(name="stopped")
    booster = lgb.train({"objective": "regression", "verbose": -1, "num_threads": 1,
                         "min_data_in_leaf": 5}, dtrain, num_boost_round=200, valid_sets=[dvalid],
                        callbacks=[callback, lgb.early_stopping(3, verbose=False)])
    assert booster.best_iteration < 200
    callback.finish(booster)
    run = labbook.get_run("stopped")
    assert run.status == "FINISHED"
    assert run.metrics["best_iteration"] == booster.best_iteration
    # every iteration up to the one early stopping ended on (best + 3 rounds of patience)
    assert len(run.metric_history("valid_0-l2")) == booster.best_iteration + 3
