"""LightGBM: ``lightgbm.train(params, dtrain, valid_sets=[...], callbacks=[log_evaluation()])``.

Logs the training params at the first iteration, each evaluation result at each iteration
as ``<data>-<metric>`` (``valid_0-l2`` at step 0, 1, …; with ``lightgbm.cv``, the mean,
and ``<data>-<metric>-stdv``), and ends the run it started after the last iteration with
the booster's ``best_iteration``. LightGBM tells a callback nothing when early stopping
ends training, so then call ``callback.finish(booster)`` (or the run ends, FINISHED, when
the process exits). Inside ``with labbook.start_run():`` it logs to that run. Nothing here
imports lightgbm: it calls the callback with its ``CallbackEnv``.
"""

from __future__ import annotations

from typing import Any

from ._common import Session


class LabbookCallback:
    """A LightGBM callback (a callable with ``order``), made by :func:`log_evaluation`."""

    order = 25  # after record_evaluation (20), before early_stopping (30): the last
    before_iteration = False  # iteration is logged before early stopping raises

    def __init__(self, session: Session, period: int = 1) -> None:
        self.session = session
        self.period = max(1, int(period))
        self.started = False

    def __call__(self, env: Any) -> None:
        if not self.started:
            self.started = True
            if self.session.open("lightgbm") is not None:
                self.session.log_params(env.params)
        last = env.iteration + 1 >= env.end_iteration
        if (env.iteration - env.begin_iteration) % self.period == 0 or last:
            self.session.log_metrics(evaluation_metrics(env.evaluation_result_list), step=env.iteration)
        if last:
            self.finish(env.model, iterations=env.iteration + 1)

    def finish(self, booster: Any = None, iterations: int | None = None) -> None:
        """Log the booster's best iteration (if it has one) and end the run this callback
        started; call it after ``lightgbm.train`` when early stopping may have ended it."""
        best = getattr(booster, "best_iteration", 0) if booster is not None else 0
        if isinstance(best, int) and best > 0:
            self.session.log_metrics({"best_iteration": best}, step=None)
        elif iterations is not None:
            self.session.log_metrics({"iterations": iterations}, step=None)
        self.session.end()
        self.started = False


def evaluation_metrics(results: Any) -> dict[str, float]:
    """``(data, metric, value, higher_is_better[, stdv])`` tuples as metric values."""
    values: dict[str, float] = {}
    for item in results or []:
        data, metric, value = item[0], item[1], item[2]
        if data == "cv_agg":  # lightgbm.cv names its aggregate "cv_agg" and the set "valid l2"
            data, _, metric = metric.partition(" ")
        values[f"{data}-{metric}"] = value
        if len(item) > 4:
            values[f"{data}-{metric}-stdv"] = item[4]
    return values


def log_evaluation(*, period: int = 1, experiment: str | None = None, name: str | None = None,
                   hypothesis: str | None = None, tags: dict[str, Any] | None = None,
                   log_system_metrics: bool | None = None) -> LabbookCallback:
    """A callback logging LightGBM's params and evaluation results every ``period`` iterations
    to labbook (see the module docstring)."""
    return LabbookCallback(Session("lightgbm", experiment=experiment, name=name, hypothesis=hypothesis,
                                   tags=tags, log_system_metrics=log_system_metrics), period)
