"""``MlflowClient``: the explicit-run-id API, over the same branch as the fluent functions.

Logging to a run that is not active in this process resumes it, logs, and puts it back
(ended with its old status, or still RUNNING); each such call is a commit or two.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from .. import tracking
from ..errors import RunNotFound
from ..format import record
from ..runs import edits, lifecycle
from ..runs.repository import Repository, open_repository
from ..runs.run import Run as LabbookRun
from . import experiments, frame, media
from .entities import Experiment, FileInfo, Metric, PagedList, Run, ms_to_iso, page_offset
from .entities import page_token as _page_token
from .exceptions import RESOURCE_DOES_NOT_EXIST, MlflowException, Unsupported


def active_record(run_id: str) -> LabbookRun | None:
    """The run with this id if it is live in this process (active in some thread)."""
    return tracking._state.holder(run_id)


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
    run = _borrow(repo, run_id)
    try:
        yield run
    finally:
        _give_back(repo, run_id)


# Runs resumed for a client call, shared by the threads logging to them at the same time:
# (repository, run id) -> [run, callers, status, error and end time before].
_borrowed: dict[tuple[int, str], list[Any]] = {}
_borrow_lock = threading.Lock()


def _borrow(repo: Repository, run_id: str) -> LabbookRun:
    with _borrow_lock:
        entry = _borrowed.get((id(repo), run_id))
        if entry is None:
            try:
                before = lifecycle.load(repo, run_id)
            except RunNotFound as exc:
                raise MlflowException(f"Run with id={run_id} not found",
                                      RESOURCE_DOES_NOT_EXIST) from exc
            entry = [lifecycle.resume(repo, before.id), 0, before.status, before.record.error,
                     before.record.end_time]
            _borrowed[(id(repo), run_id)] = entry
        entry[1] += 1
        return entry[0]


def _give_back(repo: Repository, run_id: str) -> None:
    """The last caller puts the run back as it was: ended with its old status and end time
    (as MLflow, logging to an ended run does not move its end), or RUNNING."""
    with _borrow_lock:
        entry = _borrowed[(id(repo), run_id)]
        entry[1] -= 1
        if entry[1]:
            return
        del _borrowed[(id(repo), run_id)]
        run, _, status, error, end_time = entry
        if status == "RUNNING":
            run.detach()
        else:
            run.end(status, error=error, end_time=end_time)


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
        """Create an experiment with its tags; its id (slug). An existing name is an error."""
        return experiments.create(self.repo, name, artifact_location, tags)

    def get_experiment(self, experiment_id: str) -> Experiment:
        return experiments.get(self.repo, experiment_id)

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        return experiments.by_name(self.repo, name)

    def set_experiment_tag(self, experiment_id: str, key: str, value: Any) -> None:
        experiments.set_tags(self.repo, experiment_id, {key: value})

    def search_experiments(self, view_type: int = 1, max_results: int | None = 1000,
                           filter_string: str | None = None, order_by: Iterable[str] | None = None,
                           page_token: str | None = None) -> PagedList:
        """Experiments matching MLflow's experiment filter (name, tags.*, creation_time…)."""
        return experiments.search(self.repo, view_type, max_results, filter_string, order_by,
                                  page_token)

    # -- runs
    def get_run(self, run_id: str) -> Run:
        return Run.of(self.get_run_record(run_id))

    def create_run(self, experiment_id: str, start_time: int | None = None,
                   tags: Mapping[str, Any] | None = None, run_name: str | None = None) -> Run:
        """A new RUNNING run (committed, not active here): log to it by id, then set_terminated."""
        exp = self.get_experiment(experiment_id)
        run = lifecycle.start(self.repo, experiment=experiments.labbook_name(exp.name), name=run_name,
                              tags={str(k): str(v) for k, v in (tags or {}).items()} or None,
                              start_time=None if start_time is None else ms_to_iso(start_time))
        run.detach()
        return Run.of(run.record)

    def set_terminated(self, run_id: str, status: str = "FINISHED", end_time: int | None = None) -> None:
        """End a run with ``status`` at ``end_time`` (ms since the epoch; default now)."""
        when = None if end_time is None else ms_to_iso(end_time)
        if status not in record.TERMINAL_STATUSES:
            raise MlflowException(f"Invalid run status {status!r}: set_terminated takes one of "
                                  f"{', '.join(record.TERMINAL_STATUSES)}")
        live = active_record(run_id) if self._repo is None else None
        if live is None:
            try:
                live = lifecycle.resume(self.repo, run_id)
            except RunNotFound as exc:
                raise MlflowException(f"Run with id={run_id} not found", RESOURCE_DOES_NOT_EXIST) from exc
        live.end(status, end_time=when)

    def update_run(self, run_id: str, status: str | None = None, name: str | None = None) -> None:
        """Rename a run and/or set its status (a terminal one ends it, RUNNING reopens it)."""
        self.get_run(run_id)  # an unknown run is MLflow's RESOURCE_DOES_NOT_EXIST
        if name is not None:
            edits.rename(self.repo, run_id, name)
        if status is None:
            return
        if status == "RUNNING":
            live = active_record(run_id) if self._repo is None else None
            if live is None:
                lifecycle.resume(self.repo, run_id).detach()
            return
        self.set_terminated(run_id, status)

    def list_artifacts(self, run_id: str, path: str | None = None) -> list[FileInfo]:
        """The files and folders directly under ``path`` (default: the run's artifact root)."""
        prefix = (path or "").strip("/")
        children: dict[str, FileInfo] = {}
        for artifact in self.get_run_record(run_id).artifacts:
            if prefix and not artifact.path.startswith(prefix + "/"):
                continue
            rest = artifact.path[len(prefix) + 1:] if prefix else artifact.path
            head, _, tail = rest.partition("/")
            full = f"{prefix}/{head}" if prefix else head
            children[full] = FileInfo(full, True, None) if tail else FileInfo(full, False, artifact.size)
        return [children[k] for k in sorted(children)]

    def get_run_record(self, run_id: str) -> record.RunRecord:
        """The labbook record of a run (live here, else from the branch)."""
        live = active_record(run_id) if self._repo is None else None
        if live is not None:
            return live.record
        try:
            return lifecycle.load(self.repo, run_id).record
        except RunNotFound as exc:
            raise MlflowException(f"Run with id={run_id} not found", RESOURCE_DOES_NOT_EXIST) from exc

    def delete_run(self, run_id: str) -> None:
        edits.set_deleted(self.repo, run_id, True)

    def restore_run(self, run_id: str) -> None:
        edits.set_deleted(self.repo, run_id, False)

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
                    order_by: Iterable[str] | None = None, page_token: str | None = None) -> PagedList:
        """A page of runs (MLflow's PagedList: ``.token`` names the next page, None at the end)."""
        view = frame.VIEW_TYPES.get(run_view_type)
        if view is None:
            raise MlflowException(f"run_view_type {run_view_type!r} is not 1, 2 or 3 (ViewType)")
        limit = experiments.check_max_results(max_results, frame.SEARCH_MAX_RESULTS)
        start = page_offset(page_token)
        slugs = frame.experiment_slugs(self.repo, experiment_ids, None)
        found = frame.search_frame(self.repo, slugs, filter_string, order_by, start + limit + 1, view,
                                  nan_marks=True)
        runs = frame.frame_to_runs(found.iloc[start:start + limit])
        more = len(found) > start + limit
        return PagedList(runs, _page_token(start + limit) if more else None)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        raise Unsupported(f"MlflowClient.{name}")


def _pairs(items: Iterable[Any] | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(items, Mapping):
        return dict(items)
    return {item.key: item.value for item in items}
