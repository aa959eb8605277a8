"""XGBoost: ``xgboost.train(params, dtrain, evals=..., callbacks=[LabbookCallback()])``.

Logs the booster's training params (objective, eta, max_depth… as XGBoost resolved them),
each evaluation result at each iteration as ``<data>-<metric>`` (``eval-rmse`` at step
0, 1, …), and at the end ``best_iteration`` and ``best_score`` when early stopping set them.
Outside a run it starts one (named ``xgboost``) and ends it when training ends; inside
``with labbook.start_run():`` it logs to that run. xgboost is imported when the class is
first used (``pip install xgboost`` or ``xgboost-cpu``).
"""

from __future__ import annotations

import json
from typing import Any

from ._common import Session

# the sections of Booster.save_config() that hold what a user set or XGBoost chose
_CONFIG_SECTIONS = (("learner", "learner_train_param"), ("learner", "generic_param"),
                    ("learner", "objective", "reg_loss_param"),
                    ("learner", "gradient_booster", "tree_train_param"),
                    ("learner", "gradient_booster", "gbtree_model_param"))


def booster_params(booster: Any) -> dict[str, Any]:
    """The training params of a Booster, read from its saved config, numbers as numbers."""
    config = json.loads(booster.save_config())
    params: dict[str, Any] = {}
    for path in _CONFIG_SECTIONS:
        section: Any = config
        for key in path:
            section = section.get(key, {}) if isinstance(section, dict) else {}
        params.update({k: _number(v) for k, v in section.items() if not isinstance(v, dict | list)})
    metrics = config.get("learner", {}).get("metrics", [])
    if metrics:
        params["eval_metric"] = [m.get("name") for m in metrics]
    return params


def _number(text: Any) -> Any:
    if not isinstance(text, str):
        return text
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text


def _build() -> type:
    import xgboost

    class LabbookCallback(xgboost.callback.TrainingCallback):
        """An XGBoost training callback logging params, per-iteration evaluation and the best
        iteration to labbook (see the module docstring)."""

        def __init__(self, *, experiment: str | None = None, name: str | None = None,
                     hypothesis: str | None = None, tags: dict[str, Any] | None = None,
                     log_system_metrics: bool | None = None) -> None:
            super().__init__()
            self.session = Session("xgboost", experiment=experiment, name=name,
                                   hypothesis=hypothesis, tags=tags, log_system_metrics=log_system_metrics)

        def before_training(self, model: Any) -> Any:
            if self.session.open("xgboost") is not None and isinstance(model, xgboost.Booster):
                self.session.safe("read the booster's params",
                                  lambda run: self.session.log_params(booster_params(model)))
            return model

        def after_iteration(self, model: Any, epoch: int, evals_log: dict[str, Any]) -> bool:
            latest = {}
            for data, metrics in evals_log.items():
                for metric, values in metrics.items():
                    if values:
                        value = values[-1]
                        latest[f"{data}-{metric}"] = value[0] if isinstance(value, tuple) else value
            self.session.log_metrics(latest, step=epoch)
            return False

        def after_training(self, model: Any) -> Any:
            best = {}
            for attribute in ("best_iteration", "best_score"):
                try:
                    best[attribute] = getattr(model, attribute)
                except (AttributeError, ValueError, TypeError):
                    continue
            if best:
                self.session.log_metrics(best, step=None)
            self.session.end()
            return model

    LabbookCallback.__qualname__ = "LabbookCallback"  # picklable (spawned workers): found through __getattr__
    return LabbookCallback


def __getattr__(name: str) -> Any:
    if name == "LabbookCallback":
        cls = _build()
        globals()[name] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
