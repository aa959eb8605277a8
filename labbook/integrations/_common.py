"""What every integration shares: rank zero, the run it logs to, and logging that warns.

A :class:`Session` is the run a callback or logger writes to: the run already active in
the process when training starts (left open for its owner to end), or one the session
starts and ends itself. Every write goes through :meth:`Session.safe`, so an error from
the notebook (a locked branch, a refused value) becomes a warning and training goes on.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from typing import Any

from .. import tracking
from ..autolog import loggable_params
from ..errors import LabbookError
from ..format import validation
from ..runs.run import Run

_log = logging.getLogger("labbook")
MAX_WARNINGS = 5
RANK_VARIABLES = ("RANK", "LOCAL_RANK", "SLURM_PROCID")


def is_rank_zero() -> bool:
    """Whether this process is the first of a distributed job (or the only process):
    the first of RANK, LOCAL_RANK and SLURM_PROCID that is set is 0, or none is set."""
    for name in RANK_VARIABLES:
        text = os.environ.get(name, "").strip()
        if text:
            try:
                return int(text) == 0
            except ValueError:
                return True  # not a rank we can read: behave as a single process
    return True


class Session:
    """The run one integration logs to; every method is a no-op off rank zero."""

    def __init__(self, integration: str, *, experiment: str | None = None, name: str | None = None,
                 hypothesis: str | None = None, tags: Mapping[str, Any] | None = None,
                 parent: str | Run | None = None, log_system_metrics: bool | None = None) -> None:
        self.integration = integration
        self.start_args: dict[str, Any] = {
            "experiment": experiment, "name": name, "hypothesis": hypothesis,
            "tags": {"labbook.integration": integration, **(tags or {})}, "parent": parent,
            "log_system_metrics": log_system_metrics}
        self.run: Run | None = None
        self.own = False  # started here, so ended here
        self.warnings = 0

    @property
    def enabled(self) -> bool:
        return is_rank_zero()

    def __getstate__(self) -> dict[str, Any]:
        """A copy sent to another process (a spawned worker) starts with no run: the run and
        its journal belong to this process."""
        return {**self.__dict__, "run": None, "own": False}

    def open(self, default_name: str | None = None) -> Run | None:
        """The run to log to: the one open already, the active run, a resumed one (our run
        ended and training logs again) or a new one. None off rank zero or on failure."""
        if not self.enabled:
            return None
        if self.run is not None and self.run.active:
            return self.run
        try:
            if self.run is not None and self.own:
                self.run = tracking.start_run(run_id=self.run.id)
            elif self.run is None and tracking.active_run() is not None and not self.start_args["parent"]:
                self.run = tracking.active_run()
            else:
                args = dict(self.start_args)
                args["name"] = args["name"] or default_name
                self.run, self.own = tracking.start_run(**args), True
        except Exception as exc:
            self.warn("start a run", exc)
            return None
        return self.run

    def safe(self, what: str, call: Callable[[Run], Any]) -> Any:
        """Run ``call(run)`` on the open run; an error is a warning, never raised."""
        run = self.run
        if run is None or not run.active or not self.enabled:
            return None
        try:
            return call(run)
        except Exception as exc:
            self.warn(what, exc)
            return None

    def log_params(self, params: Mapping[str, Any], prefix: str = "") -> None:
        """Params as labbook takes them (nested dicts flattened; other values as their repr)."""
        clean = loggable_params(flat_params(params, prefix))
        self.safe("log params", lambda run: run.log_params(clean))

    def log_metrics(self, metrics: Mapping[str, Any], step: int | None) -> None:
        """The numeric values of ``metrics`` (others are left out) at ``step``."""
        clean = numeric(metrics)
        if clean:
            self.safe("log metrics", lambda run: run.log_metrics(clean, step=step))

    def end(self, status: str = "FINISHED", error: str | None = None) -> None:
        """End the run if this session started it; a run it found open is left to its owner."""
        if self.own and self.run is not None and self.run.active:
            self.safe("end the run", lambda run: run.end(status, error=error))

    def warn(self, what: str, exc: BaseException) -> None:
        """One warning per failure (then silence after a few): training goes on."""
        self.warnings += 1
        if self.warnings <= MAX_WARNINGS:
            tail = "; further failures are not reported" if self.warnings == MAX_WARNINGS else ""
            _log.warning("labbook.integrations.%s: could not %s: %s; training goes on%s",
                         self.integration, what, exc, tail)


def flat_params(params: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings flattened with dots, keys made strings."""
    flat: dict[str, Any] = {}
    for key, value in params.items():
        full = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flat_params(value, f"{full}."))
        else:
            flat[full] = value
    return flat


def numeric(metrics: Mapping[str, Any]) -> dict[str, float]:
    """The values labbook takes as metrics (numbers, numpy and torch scalars); text,
    arrays and None are left out."""
    out: dict[str, float] = {}
    for key, value in metrics.items():
        if isinstance(value, bool) or value is None or isinstance(value, str):
            continue
        try:
            out[str(key)] = validation.metric_value(str(key), value)
        except (LabbookError, TypeError, ValueError):
            continue
    return out
