"""Keras 3: ``model.fit(x, y, callbacks=[LabbookCallback()])``, on any backend.

At the start of training: ``fit``'s params (epochs, steps) and the optimizer's config as
params (``optimizer.learning_rate``…), the model's config as the artifact
``model/config.json``. At each epoch's end: the epoch's logs (``loss``, ``val_loss``,
``accuracy``…) at step = epoch. Every ``batch_every`` training batches (default 1): the
batch's logs as ``batch/<name>`` at a step counting batches across epochs. Outside a run it
starts one (named after the model) and ends it when training ends; inside ``with
labbook.start_run():`` it logs to that run. keras is imported when the class is first used.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from ._common import Session


def _build() -> type:
    import keras

    class LabbookCallback(keras.callbacks.Callback):
        """A Keras callback logging params, epoch and batch metrics and the model's config."""

        def __init__(self, *, experiment: str | None = None, name: str | None = None,
                     hypothesis: str | None = None, tags: dict[str, Any] | None = None,
                     batch_every: int = 1, log_model_config: bool = True,
                     log_system_metrics: bool | None = None) -> None:
            super().__init__()
            self.session = Session("keras", experiment=experiment, name=name, hypothesis=hypothesis,
                                   tags=tags, log_system_metrics=log_system_metrics)
            self.batch_every = max(0, int(batch_every))
            self.log_model_config = log_model_config
            self.batches = 0

        def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
            model = self.model
            if self.session.open(getattr(model, "name", None) or "keras") is None:
                return
            fit = {k: v for k, v in (self.params or {}).items() if k != "verbose"}
            self.session.log_params(fit, prefix="fit.")
            optimizer = getattr(model, "optimizer", None)
            if optimizer is not None:
                self.session.safe("read the optimizer's config", lambda run: self.session.log_params(
                    optimizer.get_config(), prefix="optimizer."))
            if self.log_model_config:
                self.session.safe("store the model's config", lambda run: _log_config(run, model))

        def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
            if self.batch_every and self.batches % self.batch_every == 0 and logs:
                self.session.log_metrics({f"batch/{k}": v for k, v in logs.items()}, step=self.batches)
            self.batches += 1

        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            self.session.log_metrics(logs or {}, step=epoch)

        def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
            self.session.end()

    LabbookCallback.__qualname__ = "LabbookCallback"  # picklable (spawned workers): found through __getattr__
    return LabbookCallback


def _log_config(run: Any, model: Any) -> None:
    config = {"class_name": type(model).__name__, "config": model.get_config()}
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "config.json"
        path.write_text(json.dumps(config, indent=2, default=str))
        run.log_artifact(path, "model")


def __getattr__(name: str) -> Any:
    if name == "LabbookCallback":
        cls = _build()
        globals()[name] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
