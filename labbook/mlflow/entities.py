"""MLflow-shaped views of labbook runs: Experiment, RunInfo, RunData, Run, Metric, ActiveRun.

Experiment ids are the experiment's slug (its file name on the branch,
``experiments/<slug>.yaml``), not MLflow's integers; the default experiment is
``default``. Params read back as strings, as MLflow stores them.
"""

from __future__ import annotations

import base64
import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..format import record
from ..format.record import ExperimentRecord, RunRecord


def to_ms(iso: str | None) -> int | None:
    """Milliseconds since the epoch of a record time ('2026-11-23T15:27:54.067Z')."""
    if iso is None:
        return None
    return round(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)


def ms_to_iso(ms: Any) -> str:
    """A record time from MLflow's milliseconds since the epoch (an int or a whole float)."""
    if isinstance(ms, bool) or not isinstance(ms, int | float) or not math.isfinite(ms) or ms < 0:
        from .exceptions import MlflowException

        raise MlflowException(f"time {ms!r} is not milliseconds since the epoch (a non-negative int)")
    return record.format_time(datetime.fromtimestamp(int(ms) / 1000, UTC))


def param_text(value: Any) -> str:
    """A param as MLflow stores it: ``str(value)``."""
    return str(value)


def artifact_uri(run_id: str) -> str:
    """Where a run's artifacts are: a ``git show`` spec on the experiments branch."""
    return f"experiments:{record.run_dir(run_id)}/artifacts"


def system_tags(rec: RunRecord) -> dict[str, str]:
    """The mlflow.* tags MLflow sets itself, derived from the record (never stored twice)."""
    tags = {"mlflow.runName": rec.name}
    if rec.parent:
        tags["mlflow.parentRunId"] = rec.parent
    if rec.user:
        tags["mlflow.user"] = rec.user
    if rec.code is not None and rec.code.commit:
        tags["mlflow.source.git.commit"] = rec.code.commit
    return tags


@dataclass
class Experiment:
    experiment_id: str
    name: str
    artifact_location: str = ""
    lifecycle_stage: str = "active"
    tags: dict[str, str] = field(default_factory=dict)
    creation_time: int | None = None
    last_update_time: int | None = None

    @classmethod
    def of(cls, exp: ExperimentRecord) -> Experiment:
        """labbook's ``default`` experiment is MLflow's ``Default``."""
        tags = dict(exp.tags)
        if exp.description:
            tags["mlflow.note.content"] = exp.description
        created = to_ms(exp.created) if exp.created else None
        name = "Default" if exp.slug == exp.name == record.DEFAULT_EXPERIMENT else exp.name
        return cls(exp.slug, name, f"experiments:experiments/{exp.slug}.yaml", "active", tags,
                   created, created)


class ViewType:
    """Which runs a search sees: ``mlflow.entities.ViewType``."""

    ACTIVE_ONLY = 1
    DELETED_ONLY = 2
    ALL = 3


@dataclass
class FileInfo:
    """An artifact (or a folder of them) as ``MlflowClient.list_artifacts`` lists it."""

    path: str
    is_dir: bool
    file_size: int | None


class PagedList(list):  # type: ignore[type-arg]
    """A page of results with ``token``, the ``page_token`` of the next page (None at the end)."""

    def __init__(self, items: Any, token: str | None):
        super().__init__(items)
        self.token = token


def page_token(offset: int) -> str:
    """An opaque page token, as MLflow's: base64 of ``{"offset": n}``."""
    return base64.b64encode(json.dumps({"offset": offset}).encode()).decode()


def page_offset(token: str | None) -> int:
    """The offset a page token names (0 for None); a token we did not make is an error."""
    if not token:
        return 0
    try:
        offset = json.loads(base64.b64decode(token, validate=True))["offset"]
        if isinstance(offset, int) and offset >= 0:
            return offset
    except (ValueError, TypeError, KeyError):
        pass
    from .exceptions import MlflowException

    raise MlflowException(f"Invalid page token {token!r}: pass the token of a previous page")


@dataclass
class RunInfo:
    run_id: str
    experiment_id: str
    run_name: str
    user_id: str
    status: str
    start_time: int | None
    end_time: int | None
    artifact_uri: str
    lifecycle_stage: str = "active"

    @property
    def run_uuid(self) -> str:
        return self.run_id


@dataclass
class RunData:
    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class Run:
    info: RunInfo
    data: RunData

    @classmethod
    def of(cls, rec: RunRecord) -> Run:
        info = RunInfo(rec.id, rec.experiment, rec.name, rec.user or "", rec.status,
                       to_ms(rec.start_time), to_ms(rec.end_time), artifact_uri(rec.id),
                       "deleted" if getattr(rec, "deleted", False) else "active")
        data = RunData({k: s.last for k, s in rec.metrics.items()},
                       {k: param_text(v) for k, v in rec.params.items()},
                       {**rec.tags, **system_tags(rec)})
        return cls(info, data)


@dataclass
class Metric:
    key: str
    value: float
    timestamp: int
    step: int


def metric_history(history: list[tuple[int, int, float]], key: str) -> list[Metric]:
    return [Metric(key, v, t, s) for s, t, v in history]


def is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


class ActiveRun:
    """The object ``start_run`` returns: ``.info`` and ``.data`` read the live run; a context
    manager that ends it FINISHED (FAILED on an exception, KILLED on Ctrl-C)."""

    def __init__(self, run: Any, on_exit: Any = None):
        self._run = run
        self._on_exit = on_exit

    @property
    def info(self) -> RunInfo:
        return Run.of(self._run.record).info

    @property
    def data(self) -> RunData:
        return Run.of(self._run.record).data

    @property
    def labbook_run(self) -> Any:
        """The labbook :class:`~labbook.Run` underneath (notes, conclusions, hypotheses)."""
        return self._run

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        self._run.__exit__(exc_type, exc, tb)  # ends it unless another thread has it active
        return False

    def __repr__(self) -> str:
        return f"<ActiveRun: {self._run!r}>"
