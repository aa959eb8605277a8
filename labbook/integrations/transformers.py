"""Hugging Face Transformers: ``Trainer(..., callbacks=[LabbookCallback()])``.

When training begins: the ``TrainingArguments`` as params (``learning_rate``,
``per_device_train_batch_size``…) and the model's config under ``model_config.``. Every
``on_log``: the numeric logs (``loss``, ``learning_rate``, ``grad_norm``, ``eval_loss``,
``eval_*`` metrics…) at ``state.global_step``. Each checkpoint saved: the tag
``checkpoint.last_path``; at the end the tags ``checkpoint.best_path`` (the best
checkpoint, when ``metric_for_best_model`` is set) and the metric ``best_metric``. The run
(named after ``args.run_name``, else the model's class) ends when training ends. Only the
world's process zero logs. transformers is imported when the class is first used.

``report_to="labbook"``: transformers has no public way to add a reporting integration, so
``register()`` adds ``"labbook"`` to its ``INTEGRATION_TO_CALLBACK`` table (exported by
``transformers.integrations``); call it once before making ``TrainingArguments``.
"""

from __future__ import annotations

import os
from typing import Any

from ._common import Session


def _build() -> type:
    from transformers import TrainerCallback

    class LabbookCallback(TrainerCallback):
        """A Transformers ``TrainerCallback`` writing to a labbook run."""

        def __init__(self, *, experiment: str | None = None, name: str | None = None,
                     hypothesis: str | None = None, tags: dict[str, Any] | None = None,
                     log_model_config: bool = True, log_system_metrics: bool | None = None) -> None:
            self.session = Session("transformers", experiment=experiment, name=name,
                                   hypothesis=hypothesis, tags=tags, log_system_metrics=log_system_metrics)
            self.log_model_config = log_model_config
            self.zero = True

        def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None,
                           **kwargs: Any) -> None:
            self.zero = bool(getattr(state, "is_world_process_zero", True))
            if not self.zero:
                return
            default = _run_name(args, model)
            if self.session.open(default) is None:
                return
            self.session.safe("read the TrainingArguments",
                              lambda run: self.session.log_params(_arguments(args)))
            config = getattr(model, "config", None)
            if self.log_model_config and config is not None and hasattr(config, "to_dict"):
                self.session.safe("read the model's config", lambda run: self.session.log_params(
                    config.to_dict(), prefix="model_config."))

        def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None,
                   **kwargs: Any) -> None:
            if self.zero and state.is_world_process_zero and logs:
                self.session.log_metrics(logs, step=state.global_step)

        def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if not (self.zero and state.is_world_process_zero):
                return
            path = os.path.join(args.output_dir, f"checkpoint-{state.global_step}")
            self.session.safe("tag the checkpoint", lambda run: run.set_tag("checkpoint.last_path", path))

        def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if not (self.zero and state.is_world_process_zero):
                return
            if state.best_model_checkpoint:
                best = state.best_model_checkpoint
                self.session.safe("tag the best checkpoint",
                                  lambda run: run.set_tag("checkpoint.best_path", best))
            if state.best_metric is not None:
                self.session.log_metrics({"best_metric": state.best_metric}, step=state.global_step)
            self.session.end()

    LabbookCallback.__qualname__ = "LabbookCallback"  # picklable (spawned workers): found through __getattr__
    return LabbookCallback


def _run_name(args: Any, model: Any) -> str:
    name = getattr(args, "run_name", None)
    output = os.path.basename(os.path.normpath(getattr(args, "output_dir", "") or ""))
    if name and name != output:  # transformers defaults run_name to output_dir
        return str(name)
    return type(model).__name__ if model is not None else "transformers"


def _arguments(args: Any) -> dict[str, Any]:
    """TrainingArguments as params, without secrets (``hub_token``) or local folders."""
    values = args.to_dict() if hasattr(args, "to_dict") else dict(vars(args))
    return {k: v for k, v in values.items()
            if not k.endswith("_token") and k not in ("logging_dir", "output_dir")}


def register() -> None:
    """Let ``TrainingArguments(report_to="labbook")`` use :class:`LabbookCallback`."""
    from transformers import integrations

    integrations.INTEGRATION_TO_CALLBACK["labbook"] = __getattr__("LabbookCallback")
    utils = getattr(integrations, "integration_utils", None)
    if utils is not None and hasattr(utils, "INTEGRATION_TO_CALLBACK"):
        utils.INTEGRATION_TO_CALLBACK["labbook"] = __getattr__("LabbookCallback")


def __getattr__(name: str) -> Any:
    if name == "LabbookCallback":
        cls = globals().get("_class") or _build()
        globals()["_class"] = cls
        globals()[name] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
