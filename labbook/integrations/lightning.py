"""PyTorch Lightning: ``lightning.Trainer(logger=LabbookLogger(experiment="cifar"))``.

The logger's run takes the hyperparams (``save_hyperparameters()`` and anything passed to
``log_hyperparams``), every ``self.log`` value at the trainer's global step, and after each
checkpoint the tags ``checkpoint.best_path``, ``checkpoint.last_path`` and
``checkpoint.best_score``; with ``log_checkpoints=True`` the best checkpoint is also stored
as the artifact ``checkpoints/<file>`` when training ends. ``finalize`` ends the run
FINISHED after ``fit`` (a later ``validate``/``test`` resumes it) or FAILED when training
raised. Only global rank zero logs (Lightning's rank, or RANK/LOCAL_RANK). lightning is
imported when the class is first used (``pip install 'labbook[lightning]'``).
"""

from __future__ import annotations

from argparse import Namespace
from pathlib import Path
from typing import Any

from .. import tracking
from ._common import Session, is_rank_zero

_STATUS = {"success": "FINISHED", "finished": "FINISHED", "failed": "FAILED"}


class _LightningSession(Session):
    @property
    def enabled(self) -> bool:
        from lightning.pytorch.utilities import rank_zero_only

        return is_rank_zero() and getattr(rank_zero_only, "rank", 0) == 0


def _build() -> type:
    from lightning.pytorch.loggers.logger import Logger, rank_zero_experiment

    class LabbookLogger(Logger):
        """A Lightning ``Logger`` writing to a labbook run (see the module docstring)."""

        def __init__(self, *, experiment: str | None = None, name: str | None = None,
                     hypothesis: str | None = None, tags: dict[str, Any] | None = None,
                     log_checkpoints: bool = False, log_system_metrics: bool | None = None) -> None:
            super().__init__()
            self.session = _LightningSession(
                "lightning", experiment=experiment, name=name, hypothesis=hypothesis, tags=tags,
                log_system_metrics=log_system_metrics)
            self._experiment_name = experiment
            self.log_checkpoints = log_checkpoints
            self._checkpoint: Any = None

        @property
        def name(self) -> str:
            return self._experiment_name or tracking._state.experiment or "default"

        @property
        def version(self) -> str:
            """The run's id (checkpoints go under <save_dir>/<name>/<run id>/checkpoints)."""
            run = self.session.open("lightning")
            return run.id if run is not None else ""

        @property
        @rank_zero_experiment
        def experiment(self) -> Any:
            """The labbook Run (a dummy off rank zero)."""
            return self.session.open("lightning")

        def log_hyperparams(self, params: dict[str, Any] | Namespace, *args: Any, **kwargs: Any) -> None:
            if self.session.open("lightning") is None:
                return
            values = vars(params) if isinstance(params, Namespace) else dict(params or {})
            self.session.log_params(values)

        def log_metrics(self, metrics: dict[str, Any], step: int | None = None) -> None:
            if self.session.open("lightning") is not None:
                self.session.log_metrics(metrics, step=step)

        def after_save_checkpoint(self, checkpoint_callback: Any) -> None:
            self._checkpoint = checkpoint_callback
            found = {"checkpoint.best_path": getattr(checkpoint_callback, "best_model_path", ""),
                     "checkpoint.last_path": getattr(checkpoint_callback, "last_model_path", "")}
            score = getattr(checkpoint_callback, "best_model_score", None)
            if score is not None:
                found["checkpoint.best_score"] = f"{float(score):.6g}"
            found = {k: v for k, v in found.items() if v}
            if found:
                self.session.safe("tag the checkpoints", lambda run: run.set_tags(found))

        def finalize(self, status: str) -> None:
            ending = _STATUS.get(status, "FINISHED")
            best = getattr(self._checkpoint, "best_model_path", "") if self._checkpoint else ""
            if self.log_checkpoints and best and Path(best).is_file() and ending == "FINISHED":
                self.session.safe("store the best checkpoint",
                                  lambda run: run.log_artifact(best, "checkpoints"))
            self.session.end(ending, error=None if ending == "FINISHED" else "Lightning: training failed")

    LabbookLogger.__qualname__ = "LabbookLogger"  # picklable (spawned workers): found through __getattr__
    return LabbookLogger


def __getattr__(name: str) -> Any:
    if name == "LabbookLogger":
        cls = _build()
        globals()[name] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
