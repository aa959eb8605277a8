"""``MlflowClient``: the explicit-run-id API, over the same branch as the fluent functions.

Logging to a run that is not active in this process resumes it, logs, and puts it back
(ended with its old status, or still RUNNING); each such call is a commit or two.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from .. import lifecycle, notebook, tracking
from ..errors import InvalidValue, RunNotFound
from ..repository import Repository, open_repository
from ..run import Run as LabbookRun
from . import frame, media
from .entities import Experiment, Metric, Run
from .exceptions import RESOURCE_ALREADY_EXISTS, RESOURCE_DOES_NOT_EXIST, MlflowException, Unsupported


def active_record(run_id: str) -> LabbookRun | None:
    """The run with this id if it is live in this process."""
    return next((run for run in tracking._state.stack if run.id == run_id), None)


@contextmanager
def client_run(run_id: str | None, repo: Repository | None = None) -> Iterator[LabbookRun]:
    """The live run to log to: the active one (started if none), or ``run_id`` resumed."""
    if run_id is None:
        run = tracking.active_run()
        if run is None:
            from . import start_run

            run = start_run().labbook_run
        yield run
        return
    repo = repo or tracking.repository()
    live = active_record(run_id) if repo is tracking.repository() else None
    if live is not None:
        yield live
        return
    try:
        before = lifecycle.load(repo, run_id)
    except RunNotFound as exc:
        raise MlflowException(f"Run with id={run_id} not found", RESOURCE_DOES_NOT_EXIST) from exc
    run = lifecycle.resume(repo, before.id)
    try:
        yield run
    finally:
        if before.status == "RUNNING":
            run.detach()
        else:
            run.end(before.status, error=before.record.error)


class MlflowClient:
    """MLflow's client for one repository (default: the one the fluent API uses)."""

    def __init__(self, tracking_uri: str | None = None, registry_uri: str | None = None):
        if registry_uri is not None:
            raise Unsupported("MlflowClient(registry_uri=...)", "labbook has no model registry")
        self._repo: Repository | None = None
        if tracking_uri is not None:
            path = os.fspath(tracking_uri)
            if path.startswith("file:"):
                path = path[len("file:"):].removeprefix("//")
            elif "://" in path or path.startswith("sqlite:"):
                raise Unsupported("MlflowClient(tracking_uri=...)", f"{path!r} is not a git repository")
            self._repo = open_repository(path)

    @property
    def repo(self) -> Repository:
        return self._repo or tracking.repository()

    def _live(self, run_id: str) -> Any:
        return client_run(run_id, self.repo)

    # -- experiments
    def create_experiment(self, name: str, artifact_location: str | None = None,
                          tags: Mapping[str, Any] | None = None) -> str:
        if artifact_location is not None:
            raise Unsupported("create_experiment(artifact_location=...)",
                              "set `git config labbook.artifactStore DIR` instead")
        if not isinstance(name, str) or not name.strip():
            raise MlflowException("Invalid experiment name: an experiment needs a name")
        if self.repo.experiment_named(name) is not None:
            raise MlflowException(f"Experiment '{name}' already exists.", RESOURCE_ALREADY_EXISTS)
        description = (tags or {}).get("mlflow.note.content")
        return self.repo.ensure_experiment(name, description).slug

    def get_experiment(self, experiment_id: str) -> Experiment:
        exp = self.repo.experiment(str(experiment_id))
        if exp is None:
            raise MlflowException(f"No Experiment with id={experiment_id} exists", RESOURCE_DOES_NOT_EXIST)
        return Experiment.of(exp)

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        exp = self.repo.experiment_named(name)
        return None if exp is None or exp.name != name else Experiment.of(exp)

    def search_experiments(self, filter_string: str | None = None, **ignored: Any) -> list[Experiment]:
        if filter_string:
            raise Unsupported("search_experiments(filter_string=...)")
        found = [self.repo.experiment(slug) for slug in frame.query.experiment_names(self.repo)]
        return [Experiment.of(exp) for exp in found if exp is not None]

    # -- runs
    def get_run(self, run_id: str) -> Run:
        live = active_record(run_id) if self._repo is None else None
        if live is not None:
            return Run.of(live.record)
        try:
            return Run.of(lifecycle.load(self.repo, run_id).record)
        except RunNotFound as exc:
            raise MlflowException(f"Run with id={run_id} not found", RESOURCE_DOES_NOT_EXIST) from exc

    def create_run(self, experiment_id: str, start_time: int | None = None,
                   tags: Mapping[str, Any] | None = None, run_name: str | None = None) -> Run:
        """A new RUNNING run (committed, not active here): log to it by id, then set_terminated."""
        exp = self.get_experiment(experiment_id)
        run = lifecycle.start(self.repo, experiment=exp.name, name=run_name,
                              tags={str(k): str(v) for k, v in (tags or {}).items()} or None)
        run.detach()
        return Run.of(run.record)

    def set_terminated(self, run_id: str, status: str = "FINISHED", end_time: int | None = None) -> None:
        live = active_record(run_id) if self._repo is None else None
        if live is None:
            try:
                live = lifecycle.resume(self.repo, run_id)
            except RunNotFound as exc:
                raise MlflowException(f"Run with id={run_id} not found", RESOURCE_DOES_NOT_EXIST) from exc
        live.end(status)

    def delete_run(self, run_id: str) -> None:
        notebook.set_deleted(self.repo, run_id, True)

    def restore_run(self, run_id: str) -> None:
        notebook.set_deleted(self.repo, run_id, False)

    # -- logging
    def log_param(self, run_id: str, key: str, value: Any, synchronous: bool | None = None) -> Any:
        self.log_batch(run_id, params={key: value})
        return value

    def log_metric(self, run_id: str, key: str, value: float, timestamp: int | None = None,
                   step: int | None = None, synchronous: bool | None = None, **ignored: Any) -> None:
        self.log_batch(run_id, metrics={key: value}, step=step, timestamp=timestamp)

    def set_tag(self, run_id: str, key: str, value: Any, synchronous: bool | None = None) -> None:
        self.log_batch(run_id, tags={key: value})

    def log_batch(self, run_id: str, metrics: Iterable[Metric] | Mapping[str, float] = (),
                  params: Iterable[Any] | Mapping[str, Any] = (),
                  tags: Iterable[Any] | Mapping[str, Any] = (),
                  step: int | None = None, timestamp: int | None = None,
                  synchronous: bool | None = None) -> None:
        """Metrics (Metric objects or a mapping), params and tags (objects with key/value, or mappings)."""
        from . import log_params_to

        with self._live(run_id) as run:
            if params:
                log_params_to(run, _pairs(params))
            if tags:
                run.set_tags({k: str(v) for k, v in _pairs(tags).items()})
            if isinstance(metrics, Mapping):
                if metrics:
                    run.log_metrics(dict(metrics), step=0 if step is None else step, timestamp=timestamp)
            else:
                for m in metrics:
                    run.log_metric(m.key, m.value, step=m.step or 0, timestamp=m.timestamp)

    def log_artifact(self, run_id: str, local_path: str, artifact_path: str | None = None) -> None:
        with self._live(run_id) as run:
            media.store_file(run, local_path, artifact_path)

    def log_artifacts(self, run_id: str, local_dir: str, artifact_path: str | None = None) -> None:
        with self._live(run_id) as run:
            run.log_artifacts(local_dir, artifact_path)

    def log_text(self, run_id: str, text: str, artifact_file: str) -> None:
        with self._live(run_id) as run:
            media.log_text(run, text, artifact_file)

    def log_dict(self, run_id: str, dictionary: Any, artifact_file: str) -> None:
        with self._live(run_id) as run:
            media.log_dict(run, dictionary, artifact_file)

    # -- reading
    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        live = active_record(run_id) if self._repo is None else None
        if live is not None:
            return [Metric(key, v, t, s) for s, t, v in live.metric_history(key)]
        try:
            return frame.history(self.repo, run_id, key)
        except RunNotFound as exc:
            raise MlflowException(f"Run with id={run_id} not found", RESOURCE_DOES_NOT_EXIST) from exc

    def search_runs(self, experiment_ids: Iterable[str] | str, filter_string: str = "",
                    run_view_type: int | str = 1, max_results: int = 1000,
                    order_by: Iterable[str] | None = None, page_token: str | None = None) -> list[Run]:
        if page_token:
            raise Unsupported("MlflowClient.search_runs(page_token=...)")
        view = frame.VIEW_TYPES.get(run_view_type)
        if view is None:
            raise InvalidValue(f"run_view_type {run_view_type!r} is not 1, 2 or 3")
        experiments = frame.experiment_slugs(self.repo, experiment_ids, None)
        found = frame.search_frame(self.repo, experiments, filter_string, order_by, max_results, view)
        return frame.frame_to_runs(found)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        raise Unsupported(f"MlflowClient.{name}")


def _pairs(items: Iterable[Any] | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(items, Mapping):
        return dict(items)
    return {item.key: item.value for item in items}
