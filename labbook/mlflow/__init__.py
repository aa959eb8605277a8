"""``import labbook.mlflow as mlflow``: MLflow's fluent tracking API over the experiments branch.

    import labbook.mlflow as mlflow          # the only line that changes
    mlflow.set_experiment("/mlflow_sdk_test")
    with mlflow.start_run(run_name="ridge") as run:
        mlflow.log_param("alpha", 0.1)
        mlflow.log_metric("mse", 3000.0)
    mlflow.search_runs(order_by=["start_time DESC"])

Experiment ids are experiment slugs (``experiments/<slug>.yaml``); the default
experiment is ``default``. Anything MLflow has that this module does not (models,
the registry, tracing, autolog of other libraries, tracking servers) raises
:class:`Unsupported` naming the function: never a silent no-op. See docs/mlflow.md.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from .. import tracking
from ..errors import InvalidValue, LabbookError, NoActiveRun, ParamConflict, RunNotFound
from ..record import DEFAULT_EXPERIMENT
from . import entities, exceptions, frame, media
from .client import MlflowClient, active_record, client_run
from .entities import ActiveRun, Experiment, Metric, Run, RunData, RunInfo
from .exceptions import (
    INVALID_PARAMETER_VALUE,
    RESOURCE_ALREADY_EXISTS,
    RESOURCE_DOES_NOT_EXIST,
    MlflowException,
    Unsupported,
)

F = TypeVar("F", bound=Callable[..., Any])
_last_run_id: str | None = None


def mlflow_errors(func: F) -> F:
    """Re-raise labbook's errors as the MlflowException MLflow would raise there."""
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except MlflowException:
            raise
        except RunNotFound as exc:
            raise MlflowException(str(exc), RESOURCE_DOES_NOT_EXIST) from exc
        except (InvalidValue, NoActiveRun) as exc:
            raise MlflowException(str(exc), INVALID_PARAMETER_VALUE) from exc
    return wrapper  # type: ignore[return-value]


# -- where runs go ----------------------------------------------------------------
@mlflow_errors
def set_tracking_uri(uri: str | os.PathLike[str]) -> None:
    """A local path or ``file:`` URI names the git repository to log to; servers are unsupported."""
    text = os.fspath(uri)
    if text.startswith("file:"):
        text = text[len("file:"):].removeprefix("//")
    elif "://" in text or text.startswith(("databricks", "sqlite:", "http:", "https:")):
        raise Unsupported("set_tracking_uri", f"{text!r} is not a local git repository; "
                          "labbook logs to the experiments branch of a git repository")
    tracking.set_repository(text or None)


def get_tracking_uri() -> str:
    """``file:`` + the repository's work tree."""
    git = tracking.repository().git
    return "file:" + str(git.toplevel or git.git_dir)


# -- experiments -------------------------------------------------------------------
@mlflow_errors
def set_experiment(experiment_name: str | None = None, experiment_id: str | None = None) -> Experiment:
    """Make an experiment current (created when new, by name); returns it."""
    if experiment_id is not None:
        exp = tracking.repository().experiment(str(experiment_id))
        if exp is None:
            raise MlflowException(f"No Experiment with id={experiment_id} exists", RESOURCE_DOES_NOT_EXIST)
        experiment_name = exp.name
    if experiment_name is None:
        raise MlflowException("Must specify exactly one of: `experiment_id` or `experiment_name`.")
    return Experiment.of(tracking.set_experiment(experiment_name))


def create_experiment(name: str, artifact_location: str | None = None,
                      tags: Mapping[str, Any] | None = None) -> str:
    """Create an experiment; its id (slug). An existing name is an error, as in MLflow."""
    return MlflowClient().create_experiment(name, artifact_location, tags)


def get_experiment(experiment_id: str) -> Experiment:
    return MlflowClient().get_experiment(experiment_id)


def get_experiment_by_name(name: str) -> Experiment | None:
    return MlflowClient().get_experiment_by_name(name)


def search_experiments(filter_string: str | None = None, **kwargs: Any) -> list[Experiment]:
    return MlflowClient().search_experiments(filter_string, **kwargs)


# -- runs --------------------------------------------------------------------------
@mlflow_errors
def start_run(run_id: str | None = None, experiment_id: str | None = None, run_name: str | None = None,
              nested: bool = False, parent_run_id: str | None = None,
              tags: Mapping[str, Any] | None = None, description: str | None = None,
              log_system_metrics: bool | None = None) -> ActiveRun:
    """Start a run, or resume ``run_id``; use it in ``with`` or end it with end_run."""
    global _last_run_id
    if run_id is not None:
        run = tracking.start_run(run_id=run_id, log_system_metrics=log_system_metrics)
    else:
        experiment = None
        if experiment_id is not None:
            exp = tracking.repository().experiment(str(experiment_id))
            if exp is None:
                raise MlflowException(f"No Experiment with id={experiment_id} exists",
                                      RESOURCE_DOES_NOT_EXIST)
            experiment = exp.name
        current = tracking.active_run()
        if current is not None and not nested and parent_run_id is None:
            raise MlflowException(f"Run with UUID {current.id} is already active. To start a nested "
                                  "run, call start_run with nested=True")
        extra = dict(tags or {})
        extra.setdefault("mlflow.source.name", media.source_name())
        extra.setdefault("mlflow.source.type", "LOCAL")
        if description is not None:
            extra["mlflow.note.content"] = description
        run = tracking.start_run(run_name, experiment=experiment, tags=_tag_texts(extra),
                                 parent=parent_run_id, nested=nested,
                                 log_system_metrics=log_system_metrics)
        if run.record.code.branch and "mlflow.source.git.branch" not in extra:
            run.set_tag("mlflow.source.git.branch", run.record.code.branch)
    _last_run_id = run.id
    return ActiveRun(run)


def _tag_texts(tags: Mapping[str, Any]) -> dict[str, str]:
    return {str(k): str(v) for k, v in tags.items()}


def end_run(status: str = "FINISHED") -> None:
    """End the active run (nothing to do when none is active)."""
    tracking.end_run(status)


def active_run() -> ActiveRun | None:
    run = tracking.active_run()
    return None if run is None else ActiveRun(run)


@mlflow_errors
def last_active_run() -> Run | None:
    """The active run, else the last run this process started (as it is now on the branch)."""
    run = tracking.active_run()
    if run is not None:
        return Run.of(run.record)
    return None if _last_run_id is None else get_run(_last_run_id)


@mlflow_errors
def get_run(run_id: str) -> Run:
    return MlflowClient().get_run(run_id)


@mlflow_errors
def delete_run(run_id: str) -> None:
    MlflowClient().delete_run(run_id)


def _current() -> Any:
    """The active run; like MLflow, a log call with none active starts one."""
    run = tracking.active_run()
    return run if run is not None else start_run().labbook_run



# -- logging -------------------------------------------------------------------------
@mlflow_errors
def log_param(key: str, value: Any, synchronous: bool | None = None) -> Any:
    """Log a param; re-logging it with another value raises MlflowException, as in MLflow."""
    log_params({key: value})
    return value


@mlflow_errors
def log_params(params: Mapping[str, Any], synchronous: bool | None = None,
               run_id: str | None = None) -> None:
    if run_id is not None:
        MlflowClient().log_batch(run_id, params=params)
        return
    log_params_to(_current(), params)


def log_params_to(run: Any, params: Mapping[str, Any]) -> None:
    """Params as MLflow compares them (as strings): the same text again is fine."""
    fresh = {}
    for key, value in params.items():
        if key in run.record.params:
            old = run.record.params[key]
            if entities.param_text(old) != entities.param_text(value):
                raise MlflowException(
                    f"Changing param values is not allowed. Param with key='{key}' was already "
                    f"logged with value='{old}' for run ID='{run.id}'. Attempted logging new value "
                    f"'{value}'.", INVALID_PARAMETER_VALUE)
            continue
        fresh[key] = "None" if value is None else value  # MLflow keeps str(None)
    if fresh:
        try:
            run.log_params(fresh)
        except ParamConflict as exc:
            raise MlflowException(str(exc), INVALID_PARAMETER_VALUE) from exc


@mlflow_errors
def log_metric(key: str, value: float, step: int | None = None, synchronous: bool | None = None,
               timestamp: int | None = None, run_id: str | None = None, **ignored: Any) -> None:
    """Log a metric value; ``step`` defaults to 0 as in MLflow, ``timestamp`` is in ms."""
    log_metrics({key: value}, step=step, timestamp=timestamp, run_id=run_id)


@mlflow_errors
def log_metrics(metrics: Mapping[str, float], step: int | None = None,
                synchronous: bool | None = None, run_id: str | None = None,
                timestamp: int | None = None, **ignored: Any) -> None:
    if run_id is not None:
        MlflowClient().log_batch(run_id, metrics=metrics, step=step, timestamp=timestamp)
        return
    _current().log_metrics(dict(metrics), step=0 if step is None else step, timestamp=timestamp)


@mlflow_errors
def set_tag(key: str, value: Any, synchronous: bool | None = None) -> None:
    set_tags({key: value})


@mlflow_errors
def set_tags(tags: Mapping[str, Any], synchronous: bool | None = None) -> None:
    if "mlflow.runName" in tags or "mlflow.parentRunId" in tags:
        raise Unsupported("set_tag('mlflow.runName'/'mlflow.parentRunId')",
                          "use `labbook rename`; a run's parent is set when it starts")
    _current().set_tags(_tag_texts(tags))


@mlflow_errors
def log_artifact(local_path: str | os.PathLike[str], artifact_path: str | None = None,
                 run_id: str | None = None) -> None:
    """Store a file as ``artifact_path/<its name>`` (``artifact_path`` is a folder, as in MLflow)."""
    with client_run(run_id) as run:
        media.store_file(run, local_path, artifact_path)


@mlflow_errors
def log_artifacts(local_dir: str | os.PathLike[str], artifact_path: str | None = None,
                  run_id: str | None = None) -> None:
    with client_run(run_id) as run:
        run.log_artifacts(local_dir, artifact_path)


@mlflow_errors
def log_text(text: str, artifact_file: str, run_id: str | None = None) -> None:
    with client_run(run_id) as run:
        media.log_text(run, text, artifact_file)


@mlflow_errors
def log_dict(dictionary: Any, artifact_file: str, run_id: str | None = None) -> None:
    """JSON, or YAML when ``artifact_file`` ends in .yaml/.yml."""
    with client_run(run_id) as run:
        media.log_dict(run, dictionary, artifact_file)


@mlflow_errors
def log_figure(figure: Any, artifact_file: str, *, save_kwargs: dict[str, Any] | None = None,
               run_id: str | None = None) -> None:
    """A matplotlib or plotly figure, saved in the format its extension names."""
    with client_run(run_id) as run:
        media.log_figure(run, figure, artifact_file, save_kwargs or {})


@mlflow_errors
def log_image(image: Any, artifact_file: str | None = None, key: str | None = None,
              step: int | None = None, timestamp: int | None = None,
              synchronous: bool | None = None, run_id: str | None = None) -> None:
    """A numpy array (H×W, H×W×1/3/4; floats in [0, 1]) or PIL image, stored as PNG."""
    if artifact_file is None:
        if key is None:
            raise MlflowException("log_image needs artifact_file (or key and step)")
        artifact_file = f"images/{key}/step_{step or 0}.png"
    with client_run(run_id) as run:
        media.log_image(run, image, artifact_file)


# -- reading -------------------------------------------------------------------------
@mlflow_errors
def search_runs(experiment_ids: Iterable[str] | str | None = None, filter_string: str = "",
                run_view_type: int | str = 1, max_results: int = 100_000,
                order_by: Iterable[str] | None = None, output_format: str = "pandas",
                search_all_experiments: bool = False,
                experiment_names: Iterable[str] | None = None) -> Any:
    """Runs as MLflow's DataFrame (or a list of Run with output_format="list").

    With no experiment given, the current experiment's runs (all runs with
    ``search_all_experiments=True`` or when no experiment was set).
    """
    repo = tracking.repository()
    experiments = frame.experiment_slugs(repo, experiment_ids, experiment_names)
    if experiments is None and not search_all_experiments and tracking._state.experiment:
        experiments = [tracking._state.experiment]
    view = frame.VIEW_TYPES.get(run_view_type)
    if view is None:
        raise MlflowException(f"run_view_type {run_view_type!r} is not 1, 2 or 3 (ViewType)")
    found = frame.search_frame(repo, experiments, filter_string, order_by, max_results, view)
    if output_format == "list":
        return frame.frame_to_runs(found)
    if output_format != "pandas":
        raise MlflowException(f"Unsupported output format: {output_format!r}; use 'pandas' or 'list'")
    return found


class ViewType:
    ACTIVE_ONLY = 1
    DELETED_ONLY = 2
    ALL = 3


# -- what is not here -------------------------------------------------------------------
def __getattr__(name: str) -> Any:
    if name.startswith("_"):
        raise AttributeError(name)
    raise Unsupported(name)


__all__ = [
    "DEFAULT_EXPERIMENT",
    "RESOURCE_ALREADY_EXISTS",
    "ActiveRun",
    "Experiment",
    "LabbookError",
    "Metric",
    "MlflowClient",
    "MlflowException",
    "Run",
    "RunData",
    "RunInfo",
    "Unsupported",
    "ViewType",
    "active_record",
    "active_run",
    "create_experiment",
    "delete_run",
    "end_run",
    "exceptions",
    "get_experiment",
    "get_experiment_by_name",
    "get_run",
    "get_tracking_uri",
    "last_active_run",
    "log_artifact",
    "log_artifacts",
    "log_dict",
    "log_figure",
    "log_image",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "log_text",
    "search_experiments",
    "search_runs",
    "set_experiment",
    "set_tag",
    "set_tags",
    "set_tracking_uri",
    "start_run",
]
