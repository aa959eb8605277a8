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

from .. import tracking as fluent
from ..errors import InvalidValue, LabbookError, NoActiveRun, ParamConflict, RunNotFound
from ..format.record import DEFAULT_EXPERIMENT
from . import entities, exceptions, experiments, frame, media
from .client import MlflowClient, active_record, client_run
from .entities import ActiveRun, Experiment, FileInfo, Metric, Run, RunData, RunInfo, ViewType
from .exceptions import (
    INVALID_PARAMETER_VALUE,
    RESOURCE_ALREADY_EXISTS,
    RESOURCE_DOES_NOT_EXIST,
    MlflowException,
    Unsupported,
)

F = TypeVar("F", bound=Callable[..., Any])


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
    fluent.set_repository(text or None)


def get_tracking_uri() -> str:
    """``file:`` + the repository's work tree."""
    git = fluent.repository().git
    return "file:" + str(git.toplevel or git.git_dir)


# -- experiments -------------------------------------------------------------------
@mlflow_errors
def set_experiment(experiment_name: str | None = None, experiment_id: str | None = None) -> Experiment:
    """Make an experiment current (created when new, by name); returns it."""
    if experiment_id is not None:
        experiment_name = experiments.get(fluent.repository(), experiment_id).name
    if experiment_name is None:
        raise MlflowException("Must specify exactly one of: `experiment_id` or `experiment_name`.")
    return Experiment.of(fluent.set_experiment(experiments.labbook_name(experiment_name)))


def create_experiment(name: str, artifact_location: str | None = None,
                      tags: Mapping[str, Any] | None = None) -> str:
    """Create an experiment; its id (slug). An existing name is an error, as in MLflow."""
    return MlflowClient().create_experiment(name, artifact_location, tags)


def get_experiment(experiment_id: str) -> Experiment:
    return MlflowClient().get_experiment(experiment_id)


def get_experiment_by_name(name: str) -> Experiment | None:
    return MlflowClient().get_experiment_by_name(name)


def search_experiments(view_type: int = ViewType.ACTIVE_ONLY, max_results: int | None = None,
                       filter_string: str | None = None,
                       order_by: Iterable[str] | None = None) -> list[Experiment]:
    """Every matching experiment (all pages), as MLflow's fluent search_experiments."""
    found = experiments.search(fluent.repository(), view_type, max_results or
                               experiments.SEARCH_MAX_RESULTS, filter_string, order_by)
    return list(found)


@mlflow_errors
def set_experiment_tag(key: str, value: Any) -> None:
    """Tag the current experiment (MLflow's default experiment when none was set)."""
    experiments.set_tags(fluent.repository(), _current_experiment_slug(), {key: value})


@mlflow_errors
def set_experiment_tags(tags: Mapping[str, Any]) -> None:
    experiments.set_tags(fluent.repository(), _current_experiment_slug(), tags)


def _current_experiment_slug() -> str:
    name = fluent._state.experiment or DEFAULT_EXPERIMENT
    exp = experiments.by_name(fluent.repository(), name)
    return exp.experiment_id if exp is not None else DEFAULT_EXPERIMENT


# -- runs --------------------------------------------------------------------------
@mlflow_errors
def start_run(run_id: str | None = None, experiment_id: str | None = None, run_name: str | None = None,
              nested: bool = False, parent_run_id: str | None = None,
              tags: Mapping[str, Any] | None = None, description: str | None = None,
              log_system_metrics: bool | None = None) -> ActiveRun:
    """Start a run, or resume ``run_id``; use it in ``with`` or end it with end_run.

    The active run is per thread, as in MLflow: a new thread has none. A run another thread
    has active can be resumed here by id; the last thread to end it ends it.
    """
    if run_id is not None:
        run = fluent.start_run(run_id=run_id, log_system_metrics=log_system_metrics)
    else:
        experiment = None
        if experiment_id is not None:
            experiment = experiments.labbook_name(experiments.get(fluent.repository(),
                                                                  experiment_id).name)
        current = fluent.active_run()
        if current is not None and not nested and parent_run_id is None:
            raise MlflowException(f"Run with UUID {current.id} is already active. To start a nested "
                                  "run, call start_run with nested=True")
        extra = dict(tags or {})
        extra.setdefault("mlflow.source.name", media.source_name())
        extra.setdefault("mlflow.source.type", "LOCAL")
        if description is not None:
            extra["mlflow.note.content"] = description
        run = fluent.start_run(run_name, experiment=experiment, tags=_tag_texts(extra),
                               parent=parent_run_id, nested=nested,
                               log_system_metrics=log_system_metrics)
        if run.record.code.branch and "mlflow.source.git.branch" not in extra:
            run.set_tag("mlflow.source.git.branch", run.record.code.branch)
    return ActiveRun(run)


def _tag_texts(tags: Mapping[str, Any]) -> dict[str, str]:
    return {str(k): str(v) for k, v in tags.items()}


def end_run(status: str = "FINISHED") -> None:
    """End the active run (nothing to do when none is active)."""
    fluent.end_run(status)


def active_run() -> ActiveRun | None:
    run = fluent.active_run()
    return None if run is None else ActiveRun(run)


@mlflow_errors
def last_active_run() -> Run | None:
    """This thread's active run, else the last run it started (as it is now on the branch)."""
    run = fluent.last_active_run()
    if run is None:
        return None
    return Run.of(run.record) if run.active else get_run(run.id)


@mlflow_errors
def get_run(run_id: str) -> Run:
    return MlflowClient().get_run(run_id)


@mlflow_errors
def delete_run(run_id: str) -> None:
    MlflowClient().delete_run(run_id)


def _current() -> Any:
    """The active run; like MLflow, a log call with none active starts one."""
    run = fluent.active_run()
    return run if run is not None else start_run().labbook_run



@mlflow_errors
def get_artifact_uri(artifact_path: str | None = None) -> str:
    """Where the active run's artifacts are (a run is started if none is active, as in MLflow)."""
    uri = entities.artifact_uri(_current().id)
    return uri if not artifact_path else f"{uri}/{artifact_path.strip('/')}"


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
        fresh[key] = str(value) if value is None or entities.is_nan(value) else value  # as MLflow
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
    repo = fluent.repository()
    wanted = frame.experiment_slugs(repo, experiment_ids, experiment_names)
    if wanted is None and not search_all_experiments and fluent._state.experiment:
        wanted = [fluent._state.experiment]
    view = frame.VIEW_TYPES.get(run_view_type)
    if view is None:
        raise MlflowException(f"run_view_type {run_view_type!r} is not 1, 2 or 3 (ViewType)")
    found = frame.search_frame(repo, wanted, filter_string, order_by, max_results, view,
                               nan_marks=output_format == "list")
    if output_format == "list":
        return frame.frame_to_runs(found)
    if output_format != "pandas":
        raise MlflowException(f"Unsupported output format: {output_format!r}; use 'pandas' or 'list'")
    return found


# -- autologging --------------------------------------------------------------------
def autolog(log_input_examples: bool = False, log_model_signatures: bool = True,
            log_models: bool = True, log_datasets: bool = True, disable: bool = False,
            exclusive: bool = False, disable_for_unsupported_versions: bool = False,
            silent: bool = False, **flavour_options: Any) -> None:
    """Autolog every library labbook can: scikit-learn (see ``mlflow.sklearn.autolog``)."""
    from . import sklearn as sklearn_flavour

    try:
        import sklearn  # noqa: F401
    except ImportError:
        return  # as MLflow: autolog() covers the libraries that are installed
    sklearn_flavour.autolog(log_input_examples=log_input_examples, log_models=log_models,
                            disable=disable, exclusive=exclusive, silent=silent,
                            **{k: v for k, v in flavour_options.items()
                               if k in ("max_tuning_runs", "serialization_format", "pos_label",
                                        "extra_tags", "registered_model_name")})


# -- what is not here -------------------------------------------------------------------
def __getattr__(name: str) -> Any:
    if name.startswith("_"):
        raise AttributeError(name)
    raise Unsupported(name)


from . import models, sklearn, tracking  # noqa: E402  (mlflow.tracking.MlflowClient, mlflow.sklearn…)

__all__ = [
    "DEFAULT_EXPERIMENT",
    "RESOURCE_ALREADY_EXISTS",
    "ActiveRun",
    "Experiment",
    "FileInfo",
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
    "autolog",
    "create_experiment",
    "delete_run",
    "end_run",
    "exceptions",
    "get_artifact_uri",
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
    "models",
    "search_experiments",
    "search_runs",
    "set_experiment",
    "set_experiment_tag",
    "set_experiment_tags",
    "set_tag",
    "set_tags",
    "set_tracking_uri",
    "sklearn",
    "start_run",
    "tracking",
]
