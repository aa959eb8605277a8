"""The fluent API: ``labbook.start_run``, ``labbook.log_metric`` and friends.

Each function is a one-liner over a :class:`Run` taken from the active-run
stack. The stack is process-wide (threads of a training loop see the run their
main thread started, as in MLflow). A process that exits with runs open ends
them FINISHED; an uncaught exception ends them FAILED, Ctrl-C ends them KILLED.
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from . import lifecycle
from . import sync as sharing
from .errors import InvalidValue, NoActiveRun
from .record import DEFAULT_EXPERIMENT, Artifact, ExperimentRecord
from .repository import Repository, open_repository
from .run import Run, error_summary
from .validation import escape_controls

if TYPE_CHECKING:  # pandas is imported only by the read functions: logging stays light
    import pandas as pd

    from . import fsck as checks
    from . import reproduce as reproducing
    from . import restore, runner
    from .importers import mlflow as mlflow_importer


class _State:
    """The process-wide tracking state: repository, current experiment, active runs."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.repo: Repository | None = None
        self.repo_path: str | None = None
        self.experiment: str | None = None
        self.stack: list[Run] = []
        self.recovered: list[Run] = []  # folded when the repository was opened

    def repository(self) -> Repository:
        with self.lock:
            if self.repo is None:
                self.repo = open_repository(self.repo_path)
                self.recovered = lifecycle.recover(self.repo)
                for run in self.recovered:
                    _log.warning("labbook: run %s (%s) had no live process; committed it as %s "
                                 "from its journal", run.id[:8], escape_controls(run.name), run.status)
            return self.repo

    def push(self, run: Run) -> None:
        with self.lock:
            run.on_end = self.pop
            run.on_detach = self.pop
            self.stack.append(run)
            self._install_exit_hooks()

    def pop(self, run: Run) -> None:
        with self.lock:
            if run in self.stack:
                self.stack.remove(run)

    def current(self) -> Run | None:
        return self.stack[-1] if self.stack else None

    def reset(self) -> None:
        """Forget everything (ends nothing); used between tests."""
        with self.lock:
            if self.repo is not None:
                self.repo.close()
            self.__init__()  # type: ignore[misc]

    def _install_exit_hooks(self) -> None:
        global _hooks_installed
        if _hooks_installed:
            return
        _hooks_installed = True
        atexit.register(_end_open_runs, "FINISHED", None)
        previous = sys.excepthook

        def hook(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
            if issubclass(kind, KeyboardInterrupt):
                _end_open_runs("KILLED", "KeyboardInterrupt")
            else:
                _end_open_runs("FAILED", error_summary(exc))
            previous(kind, exc, tb)

        sys.excepthook = hook


_log = logging.getLogger("labbook")
_state = _State()
_hooks_installed = False


def _end_open_runs(status: str, error: str | None) -> None:
    for run in reversed(list(_state.stack)):
        _state.pop(run)
        try:
            if run.attached:
                run.detach()  # a child of `labbook run`: the parent decides the status
            else:
                run.end(status, error=error)
        except Exception as exc:
            print(f"labbook: could not end run {run.id[:8]}: {escape_controls(str(exc))}; "
                  "`labbook recover` will commit it from its journal", file=sys.stderr)


def _active() -> Run:
    run = _state.current() or _attach()
    if run is None:
        raise NoActiveRun("no active run: call labbook.start_run() first")
    return run


def _attach() -> Run | None:
    """Under `labbook run` ($LABBOOK_RUN_ID set), resume its run in attached mode: when this
    process exits the run is detached (committed, still RUNNING), never ended."""
    rid = os.environ.get("LABBOOK_RUN_ID")
    if not rid:
        return None
    with _state.lock:
        if _state.current() is not None:
            return _state.current()
        run = lifecycle.resume(_state.repository(), rid)
        run.attached = True
        _state.push(run)
        return run


def repository() -> Repository:
    """The repository this process logs to (opened, and dead runs recovered, on first use)."""
    return _state.repository()


def set_repository(path: str | os.PathLike[str] | None) -> None:
    """Use the git repository at ``path`` (default: $LABBOOK_REPO or the current directory)."""
    with _state.lock:
        if _state.repo is not None:
            _state.repo.close()
        _state.repo = None
        _state.repo_path = os.fspath(path) if path is not None else None


def set_experiment(name: str, description: str | None = None) -> ExperimentRecord:
    """Make ``name`` the experiment of the next runs (created on the branch if new)."""
    exp = _state.repository().ensure_experiment(name, description)
    _state.experiment = name
    return exp


def start_run(name: str | None = None, *, experiment: str | None = None,
              hypothesis: str | None = None, tags: Mapping[str, Any] | None = None,
              parent: str | Run | None = None, nested: bool = False,
              run_id: str | None = None) -> Run:
    """Start a run (or resume ``run_id``); use it as a context manager or end it with end_run.

    Under `labbook run` ($LABBOOK_RUN_ID set, as MLflow's MLFLOW_RUN_ID), with no run active
    and no ``run_id``/``parent``, this attaches to that run instead of starting one.
    """
    repo = _state.repository()
    with _state.lock:
        current = _state.current()
        if run_id is not None:
            rid = lifecycle.resolve(repo.store.snapshot(), run_id)
            if any(r.id == rid for r in _state.stack):
                raise InvalidValue(f"run {rid[:8]} is already active in this process")
            run = lifecycle.resume(repo, rid)
        elif current is None and parent is None and os.environ.get("LABBOOK_RUN_ID"):
            attached = _attach()
            assert attached is not None
            return attached
        else:
            if current is not None and not nested and parent is None:
                raise InvalidValue(f"run {current.id[:8]} ({current.name}) is already active: "
                                   "end it first, or pass nested=True to start a child run")
            parent_id = _parent_id(repo, parent, current if nested else None)
            run = lifecycle.start(
                repo, experiment=experiment or _state.experiment or DEFAULT_EXPERIMENT,
                name=name, hypothesis=hypothesis, tags=dict(tags) if tags else None,
                parent=parent_id)
        _state.push(run)
        return run


def _parent_id(repo: Repository, parent: str | Run | None, current: Run | None) -> str | None:
    if isinstance(parent, Run):
        return parent.id
    if isinstance(parent, str):
        return lifecycle.resolve(repo.store.snapshot(), parent)
    return current.id if current is not None else None


def end_run(status: str = "FINISHED") -> None:
    """End the active run (no-op when none is active, as in MLflow)."""
    run = _state.current()
    if run is not None:
        run.end(status)


def active_run() -> Run | None:
    """The innermost active run, or None."""
    return _state.current()


def get_run(id_or_name: str) -> Run:
    """A run from the branch by id, unique id prefix (≥ 4 characters) or exact name."""
    return lifecycle.load(_state.repository(), id_or_name)


def recover() -> list[Run]:
    """Commit every run whose process died from its journal (status KILLED)."""
    repo = _state.repository()
    already, _state.recovered = _state.recovered, []
    return already + lifecycle.recover(repo)


def init(path: str | os.PathLike[str] | None = None) -> bool:
    """Create the experiments branch; True if it was created, False if it existed.

    Also makes plain ``git fetch`` bring the branch from the remote (labbook.remote).
    """
    repo = open_repository(path) if path is not None else _state.repository()
    created = repo.init()
    sharing.configure_fetch(repo)
    return created


def push(remote: str | None = None) -> sharing.SyncResult:
    """Push the experiments branch to a git remote (default: labbook.remote, else origin);
    when a teammate pushed first, fetch, merge their runs and try again."""
    return sharing.push(_state.repository(), remote)


def pull(remote: str | None = None) -> sharing.SyncResult:
    """Fetch the remote's experiments branch and merge teammates' runs into the local one."""
    return sharing.pull(_state.repository(), remote)


def sync(remote: str | None = None) -> sharing.SyncResult:
    """Pull, then push."""
    return sharing.sync(_state.repository(), remote)


def log_param(key: str, value: Any) -> None:
    """Log one param of the active run."""
    _active().log_param(key, value)


def log_params(params: Mapping[str, Any]) -> None:
    """Log params of the active run; nested dicts are flattened with dots."""
    _active().log_params(params)


def log_metric(key: str, value: Any, step: int | None = None, timestamp: int | None = None) -> None:
    """Log one metric value of the active run."""
    _active().log_metric(key, value, step=step, timestamp=timestamp)


def log_metrics(metrics: Mapping[str, Any], step: int | None = None,
                timestamp: int | None = None) -> None:
    """Log several metric values of the active run."""
    _active().log_metrics(metrics, step=step, timestamp=timestamp)


def set_tag(key: str, value: Any) -> None:
    """Set a tag on the active run."""
    _active().set_tag(key, value)


def set_tags(tags: Mapping[str, Any]) -> None:
    """Set tags on the active run."""
    _active().set_tags(tags)


def note(text: str) -> None:
    """Append a timestamped markdown note to the active run."""
    _active().note(text)


def conclude(verdict: str, text: str = "") -> None:
    """Conclude the active run: supported, refuted or inconclusive, with a sentence why."""
    _active().conclude(verdict, text)


def log_artifact(local_path: str | os.PathLike[str], artifact_path: str | None = None) -> Artifact:
    """Store a file with the active run."""
    return _active().log_artifact(local_path, artifact_path)


def log_artifacts(local_dir: str | os.PathLike[str],
                  artifact_path: str | None = None) -> list[Artifact]:
    """Store every file under a folder with the active run."""
    return _active().log_artifacts(local_dir, artifact_path)


def reset() -> None:
    """Forget the repository, experiment and active runs of this process (for tests)."""
    _state.reset()


def search_runs(experiments: Iterable[str] | str | None = None, filter_string: str | None = None,
                order_by: Iterable[str] | None = None, max_results: int | None = None,
                run_view: str = "active", commit: str | None = None) -> pd.DataFrame:
    """Runs as a DataFrame, one row per run; see docs/query.md for the filter language."""
    if isinstance(experiments, str):
        experiments = [experiments]
    from . import query

    return query.search_runs(_state.repository(), experiments, filter_string, order_by,
                             max_results, run_view, commit)


def get_metric_history(run: str, key: str) -> pd.DataFrame:
    """One metric's history of one run: step, timestamp, value."""
    from . import query

    return query.get_metric_history(_state.repository(), str(run), key)


def load_history(runs: Iterable[str] | str, keys: Iterable[str] | None = None) -> pd.DataFrame:
    """Histories of many runs in long format: run_id, key, step, timestamp, value."""
    if isinstance(runs, str):
        runs = [runs]
    if isinstance(keys, str):
        keys = [keys]
    from . import query

    return query.load_history(_state.repository(), runs, keys)


def list_experiments(metric: str | None = None, mode: str = "min") -> pd.DataFrame:
    """One row per experiment: name, description, run count, last activity, best metric."""
    from . import query

    return query.experiments_frame(_state.repository(), metric, mode)


def run_command(command: list[str], *, experiment: str | None = None, name: str | None = None,
                hypothesis: str | None = None, params: Mapping[str, Any] | Iterable[str] | None = None,
                tags: Mapping[str, str] | Iterable[str] | None = None, metrics_file: str | None = None,
                log_bytes: int | None = None) -> runner.Outcome:
    """Run ``command`` as a new run (``labbook run``): output, metrics and exit status recorded.
    ``params`` and ``tags`` may be ``key=value`` strings (param values parsed: 3, 0.5, true)."""
    from . import runner

    if params is not None and not isinstance(params, Mapping):
        params = runner.parse_pairs(list(params), "param", typed=True)
    if tags is not None and not isinstance(tags, Mapping):
        tags = runner.parse_pairs(list(tags), "tag", typed=False)
    return runner.run_command(
        _state.repository(), list(command), experiment=experiment or _state.experiment
        or DEFAULT_EXPERIMENT, name=name, hypothesis=hypothesis, params=params, tags=tags,
        metrics_file=metrics_file, log_bytes=runner.DEFAULT_LOG_BYTES if log_bytes is None else log_bytes)


def list_artifacts(run: str) -> list[restore.ArtifactCheck]:
    """The artifacts of a run, each with its bytes re-hashed: ok, MISMATCH or missing."""
    from . import restore

    return restore.list_artifacts(_state.repository(), run)


def get_artifacts(run: str, path: str, dest: str | None = None, force: bool = False) -> list[Path]:
    """Restore an artifact (or a folder of them) of a run, checked against its sha256."""
    from . import restore

    return restore.get_artifacts(_state.repository(), run, path, dest, force)


def reproduce(run: str, rtol: float = 1e-6) -> reproducing.Reproduction:
    """Re-run a run's command on its code in a temporary worktree and compare its metrics."""
    from . import reproduce as reproducing

    return reproducing.reproduce(_state.repository(), run, rtol)


def fsck(recover: bool = False) -> checks.FsckReport:
    """Check every record, artifact and live run of the notebook."""
    from . import fsck as checks

    return checks.fsck(_state.repository(), recover)


def code_log(rev_range: str = "HEAD", metric: str | None = None, mode: str = "min",
             limit: int | None = 50) -> pd.DataFrame:
    """Code commits (newest first) with the number of runs made at each and their best metric."""
    from . import codelog

    return codelog.code_log(_state.repository(), rev_range, metric, mode, limit)


def import_mlflow(source: str, progress: Callable[[int, int], None] | None = None
                  ) -> mlflow_importer.ImportSummary:
    """Import every experiment and run of an MLflow store (an mlruns folder or a database URI);
    runs keep their ids, so importing again brings only runs not on the branch yet."""
    from .importers import mlflow as mlflow_importer

    return mlflow_importer.import_mlflow(_state.repository(), source, progress)
