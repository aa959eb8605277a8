"""Optuna: a study is a parent run, each trial a child with params, value, state and pruning."""

from __future__ import annotations

from pathlib import Path

import pytest

import labbook
from labbook import tracking
from labbook.format import record

optuna = pytest.importorskip("optuna")


def objective(trial: optuna.Trial) -> float:
    x = trial.suggest_float("x", -4.0, 4.0)
    kind = trial.suggest_categorical("kind", ["a", "b"])
    if kind == "b" and x > 3.5:
        raise RuntimeError("diverged")
    loss = (x - 1.0) ** 2
    for step in range(3):
        trial.report(loss + (2 - step), step)
        if trial.should_prune():
            raise optuna.TrialPruned()
    return loss


def test_a_study_is_a_parent_run_and_each_trial_a_child(repo: Path) -> None:
    from labbook.integrations.optuna import LabbookCallback

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name="quadratic", direction="minimize",
                                sampler=optuna.samplers.TPESampler(seed=3),
                                pruner=optuna.pruners.ThresholdPruner(upper=6.0))
    study.optimize(objective, n_trials=12, catch=(RuntimeError,),
                   callbacks=[LabbookCallback(metric="val_loss", experiment="tuning")])
    assert labbook.active_run() is None

    parent = labbook.get_run("quadratic")
    assert parent.status == "FINISHED"
    assert parent.params["optuna.direction"] == "minimize"
    exp = tracking.repository().experiment(parent.record.experiment)
    assert exp is not None and exp.metrics["val_loss"] == record.MetricSpec(goal="minimize", key=True)
    assert parent.metrics["best_val_loss"] == pytest.approx(study.best_value)
    assert [step for step, _, _ in parent.metric_history("best_val_loss")] == list(range(12))

    assert len(labbook.search_runs("tuning")) == 13
    states = {}
    for trial in study.trials:
        child = labbook.get_run(f"trial-{trial.number}")
        assert child.parent == parent.id
        assert child.params["x"] == pytest.approx(trial.params["x"])
        assert child.params["kind"] == trial.params["kind"]
        assert child.tags["optuna.state"] == trial.state.name
        states[trial.state.name] = child
        if trial.state.name == "COMPLETE":
            assert child.status == "FINISHED"
            assert child.metrics["val_loss"] == pytest.approx(trial.value)
            history = child.metric_history("val_loss")
            assert [s for s, _, _ in history] == [0, 1, 2, 3]
        elif trial.state.name == "PRUNED":
            assert child.status == "FINISHED" and child.tags["optuna.pruned"] == "True"
            assert len(child.metric_history("val_loss")) == len(trial.intermediate_values)
        else:
            assert child.status == "FAILED" and "failed" in (child.record.error or "")
    assert {"COMPLETE", "PRUNED", "FAIL"} <= set(states)


def test_inside_a_run_that_run_is_the_parent(repo: Path) -> None:
    from labbook.integrations.optuna import LabbookCallback

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize")
    with labbook.start_run(name="sweep") as sweep:
        study.optimize(lambda t: -t.suggest_float("x", 0, 1), n_trials=3,
                       callbacks=[LabbookCallback(metric="score")])
        assert sweep.active
    back = labbook.get_run("sweep")
    assert back.params["optuna.direction"] == "maximize"
    exp = tracking.repository().experiment(back.record.experiment)
    assert exp is not None and exp.metrics["score"].goal == "maximize"
    assert labbook.get_run("trial-2").parent == sweep.id


def test_off_rank_zero_nothing_is_logged(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from labbook.integrations.optuna import LabbookCallback

    monkeypatch.setenv("LOCAL_RANK", "1")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    optuna.create_study().optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2,
                                   callbacks=[LabbookCallback()])
    assert labbook.search_runs().empty
