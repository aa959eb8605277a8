"""Optuna: ``study.optimize(objective, callbacks=[LabbookCallback(metric="val_loss")])``.

The study is a parent run (named after the study) whose params are the study's name and
direction(s), declared as the metrics' goals on the experiment (``define_metric``); each finished trial
is a child run with the trial's params, its intermediate values as the metric's history
(the steps it reported with ``trial.report``), its value as the metric's last value, and
the tags ``optuna.state`` (COMPLETE, PRUNED, FAIL) and ``optuna.pruned``. A failed trial's
run ends FAILED. After each trial the parent gets ``best_<metric>`` at the trial's number
and is committed FINISHED (it is resumed for the next trial), so the branch is complete
whenever optimisation stops. Inside ``with labbook.start_run():`` that run is the parent.
Nothing here imports optuna: Optuna calls the callback with the study and the trial.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .. import tracking
from ..autolog import loggable_params
from ._common import Session, is_rank_zero

_STATUS = {"COMPLETE": "FINISHED", "PRUNED": "FINISHED", "FAIL": "FAILED"}


class LabbookCallback:
    """An Optuna study callback logging the study as a parent run and each trial as a child."""

    def __init__(self, metric: str | Sequence[str] = "value", *, experiment: str | None = None,
                 name: str | None = None, hypothesis: str | None = None,
                 tags: dict[str, Any] | None = None) -> None:
        self.metrics = [metric] if isinstance(metric, str) else list(metric)
        self.experiment = experiment
        self.session = Session("optuna", experiment=experiment, name=name, hypothesis=hypothesis,
                               tags=tags)
        self.described = False

    def __call__(self, study: Any, trial: Any) -> None:
        if not is_rank_zero():
            return
        parent = self.session.open(getattr(study, "study_name", None) or "optuna-study")
        if parent is None:
            return
        if not self.described:
            self.described = True
            self._describe(study)
        self.session.safe(f"log trial {trial.number}", lambda run: self._log_trial(run, trial))
        self._log_best(study, trial.number)
        self.session.end()

    def _describe(self, study: Any) -> None:
        directions = [d.name.lower() for d in study.directions]
        params: dict[str, Any] = {"study_name": study.study_name}
        params["direction"] = directions[0] if len(directions) == 1 else directions
        self.session.log_params(params, prefix="optuna.")
        self.session.safe("declare the metric goals", lambda run: self._declare(run, directions))

    def _declare(self, run: Any, directions: list[str]) -> None:
        """The study's direction is its metrics' goal, declared on the experiment (the first
        metric is the key metric), so every view of the trials ranks them the study's way."""
        exp = run.repo.experiment(run.record.experiment)
        for n, (metric, direction) in enumerate(zip(self.metrics, directions, strict=False)):
            tracking.define_metric(metric, direction, key=n == 0,
                                   experiment=exp.name if exp is not None else None)

    def _log_trial(self, parent: Any, trial: Any) -> None:
        state = trial.state.name
        child = tracking.start_run(name=f"trial-{trial.number}", parent=parent,
                                   experiment=self.experiment)
        status, error = _STATUS.get(state, "KILLED"), None
        try:
            child.set_tags({"optuna.state": state, "optuna.trial": trial.number,
                            "optuna.pruned": state == "PRUNED"})
            child.log_params(loggable_params(trial.params))
            last = -1
            for step, value in sorted(trial.intermediate_values.items()):
                child.log_metric(self.metrics[0], value, step=step)
                last = step
            values = trial.values if state == "COMPLETE" and trial.values else []  # a pruned
            for metric, value in zip(self.metrics, values, strict=False):  # trial's is its last report
                child.log_metric(metric, value, step=last + 1)
            if status == "FAILED":
                error = str(trial.system_attrs.get("fail_reason")  # Optuna < 4 kept the reason
                            or f"Optuna trial {trial.number} failed (its error is in Optuna's log)")[:1000]
        finally:
            child.end(status, error=error)

    def _log_best(self, study: Any, number: int) -> None:
        if len(study.directions) != 1:
            return
        try:
            best = study.best_value
        except ValueError:  # no trial completed yet
            return
        self.session.log_metrics({f"best_{self.metrics[0]}": best}, step=number)
