"""The fluent API: ``labbook.start_run``, ``labbook.log_metric`` and friends.

Each function is a one-liner over a :class:`Run` taken from the active-run
stack. The stack is per thread, as in MLflow: a thread starts with no active run,
so workers of a thread pool each start (and log into) runs of their own; to log
into one run from many threads, pass its id (``start_run(run_id=…)`` or the MLflow
client). The repository and the current experiment are process-wide. A process
that exits with runs open (in any thread) ends them FINISHED; an uncaught
exception ends them FAILED, Ctrl-C ends them KILLED.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from .errors import InvalidValue, NoActiveRun
from .format import validation
from .format.record import (
    DEFAULT_EXPERIMENT,
    METRIC_SUMMARIES,
    Artifact,
    ExperimentRecord,
    MetricSpec,
)
from .format.validation import escape_controls
from .runs import lifecycle, sysmetrics
from .runs.repository import Repository, open_repository
from .runs.run import Run, error_summary
from .sharing import sync as sharing

if TYPE_CHECKING:  # pandas is imported only by the read functions: logging stays light
    import pandas as pd

    from .importers import mlflow as mlflow_importer
    from .reading import fsck as checks
    from .runs import artifact_files, wrapper
    from .runs import reproduce as reproducing


class _State:
    """The tracking state: repository and current experiment (process-wide), and each
    thread's stack of active runs and last started run."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.repo: Repository | None = None
        self.repo_path: str | None = None
        self.experiment: str | None = None
        self.local = threading.local()
        self.stacks: list[list[Run]] = []  # every thread's stack that holds a run
        self.recovered: list[Run] = []  # folded when the repository was opened

    def repository(self) -> Repository:
        with self.lock:
            if self.repo is None:
                self.repo = open_repository(self.repo_path)
                started = self.repo.start_from_remote()
                if started is not None:
                    _log.warning("labbook: the experiments branch starts from %s (a fresh clone); "
                                 "`labbook pull` brings newer runs", started)
                self.recovered = lifecycle.recover(self.repo)
                for run in self.recovered:
                    _log.warning("labbook: run %s (%s) had no live process; committed it as %s "
                                 "from its journal", run.id[:8], escape_controls(run.name), run.status)
            return self.repo

    @property
    def stack(self) -> list[Run]:
        """This thread's active runs, outermost first (empty in a new thread)."""
        stack = getattr(self.local, "stack", None)
        if stack is None:
            stack = self.local.stack = []
        return stack

    @property
    def last(self) -> Run | None:
        """The run this thread started or resumed last (live or ended)."""
        return getattr(self.local, "last", None)

    def push(self, run: Run) -> None:
        with self.lock:
            run.on_end = self.pop
            run.on_detach = self.pop
            run.on_release = self.release
            stack = self.stack
            if not any(s is stack for s in self.stacks):
                self.stacks.append(stack)
            stack.append(run)
            self.local.last = run
            self._install_exit_hooks()

    def pop(self, run: Run) -> None:
        """Take ``run`` off every thread's stack (it ended, maybe in another thread)."""
        with self.lock:
            for stack in self.stacks:
                while run in stack:
                    stack.remove(run)
            self.stacks = [s for s in self.stacks if s or s is self.stack]

    def release(self, run: Run) -> bool:
        """Take ``run`` off this thread's stack only; True if no other thread holds it."""
        with self.lock:
            stack = self.stack
            if run in stack:
                stack.remove(run)
            return self.holder(run.id) is None

    def current(self) -> Run | None:
        stack = self.stack
        return stack[-1] if stack else None

    def holder(self, run_id: str) -> Run | None:
        """The live Run with this id if some thread of this process has it active."""
        with self.lock:
            return next((r for s in self.stacks for r in s if r.id == run_id), None)

    def live_runs(self) -> list[Run]:
        """Every run active in some thread, each once, in the order they were pushed."""
        with self.lock:
            seen: dict[int, Run] = {}
            for stack in self.stacks:
                for run in stack:
                    seen.setdefault(id(run), run)
            return list(seen.values())

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
                _end_open_runs("FAILED", error_summary(exc), exc)
            previous(kind, exc, tb)

        sys.excepthook = hook


_log = logging.getLogger("labbook")
_state = _State()
_hooks_installed = False


def _end_open_runs(status: str, error: str | None, exc: BaseException | None = None) -> None:
    for run in reversed(_state.live_runs()):
        _state.pop(run)
        try:
            if exc is not None:
                run.keep_traceback(exc)
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


def _attach(**script: Any) -> Run | None:
    """Under `labbook run` ($LABBOOK_RUN_ID set), resume its run in attached mode: when this
    process exits the run is detached (committed, still RUNNING), never ended.

    What the script said — ``script`` (start_run's name, experiment, hypothesis, tags,
    description) and the experiment of ``set_experiment`` — is applied to the run first,
    except where the command line set it ($LABBOOK_RUN_FIXED): then a line says so on stderr.
    """
    rid = os.environ.get("LABBOOK_RUN_ID")
    if not rid:
        return None
    with _state.lock:
        if _state.current() is not None:
            return _state.current()
        run = _state.holder(rid)  # another thread of this process attached it already
        if run is None:
            said = {key: value for key, value in script.items() if value}
            if "experiment" not in said and _state.experiment:
                said["experiment"] = _state.experiment
            if said:
                from .runs import edits

                for line in edits.adopt_script_settings(_state.repository(), rid,
                                                           _fixed_by_command_line(), **said):
                    print(line, file=sys.stderr)
            run = lifecycle.resume(_state.repository(), rid)
            run.attached = True
        _state.push(run)
        return run


def _fixed_by_command_line() -> dict[str, Any]:
    try:
        fixed = json.loads(os.environ.get("LABBOOK_RUN_FIXED") or "{}")
    except ValueError:
        return {}
    return fixed if isinstance(fixed, dict) else {}


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


def define_metric(name: str, goal: str | None = None, *, summary: str | None = None,
                  step_metric: str | None = None, key: bool = False,
                  experiment: str | None = None) -> MetricSpec:
    """Declare what metric ``name`` means in an experiment, once, for every run of it.

    ``goal`` is ``"minimize"`` or ``"maximize"`` (``"min"``/``"max"`` too) and decides
    what "best" and "better" mean everywhere labbook shows the metric; ``summary``
    (last, min, max or mean) is the value that stands for a run; ``step_metric`` names
    another metric as its x axis; ``key=True`` makes it a key metric, shown first. The experiment is
    ``experiment``, else the active run's, else the current one (``set_experiment``).
    Fields not given keep what was declared before.
    """
    from .format import goals

    checked = validation.check_key(name, "metric key")
    spec = MetricSpec(goal=goals.parse_goal(goal) if goal is not None else None,
                      summary=_summary_word(summary),
                      step_metric=validation.check_key(step_metric, "step metric")
                      if step_metric is not None else None,
                      key=bool(key))
    repo = _state.repository()
    where = experiment or _active_experiment_name(repo) or _state.experiment or DEFAULT_EXPERIMENT
    return repo.define_metric(where, checked, spec).metrics[checked]


def _summary_word(summary: str | None) -> str | None:
    if summary is None:
        return None
    if summary not in METRIC_SUMMARIES:
        raise InvalidValue(f"summary {summary!r} is not one of {', '.join(METRIC_SUMMARIES)}")
    return summary


def _active_experiment_name(repo: Repository) -> str | None:
    run = _state.current()
    if run is None:
        return None
    exp = repo.experiment(run.record.experiment)
    return exp.name if exp is not None else None


def start_run(name: str | None = None, *, experiment: str | None = None,
              hypothesis: str | None = None, tags: Mapping[str, Any] | None = None,
              parent: str | Run | None = None, nested: bool = False,
              run_id: str | None = None, description: str | None = None,
              log_system_metrics: bool | None = None) -> Run:
    """Start a run (or resume ``run_id``); use it as a context manager or end it with end_run.
    ``description`` (markdown, as MLflow's) becomes the run's first note.

    ``log_system_metrics`` samples CPU, memory, disk, network (and GPUs) into the run's
    history as ``system/*`` metrics (default: the labbook.systemMetrics setting; see
    labbook.runs.sysmetrics).

    Under `labbook run` ($LABBOOK_RUN_ID set, as MLflow's MLFLOW_RUN_ID), with no run active
    and no ``run_id``/``parent``, this attaches to that run instead of starting one, and
    applies ``name``, ``experiment``, ``hypothesis``, ``tags`` and ``description`` to it
    (the command line's flags win where both are given).
    """
    repo = _state.repository()
    sampling = sysmetrics.plan(repo.config, log_system_metrics)
    with _state.lock:
        current = _state.current()
        if run_id is not None:
            rid = lifecycle.resolve(repo.store.snapshot(), run_id)
            if any(r.id == rid for r in _state.stack):
                raise InvalidValue(f"run {rid[:8]} is already active in this thread")
            run = _state.holder(rid) or lifecycle.resume(repo, rid)  # shared with another thread
        elif current is None and parent is None and os.environ.get("LABBOOK_RUN_ID"):
            attached = _attach(name=name, experiment=experiment, hypothesis=hypothesis,
                               tags=dict(tags) if tags else None, description=description)
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
            if description:
                run.note(description)
        _state.push(run)
        sysmetrics.start(run, sampling)
        return run


def _parent_id(repo: Repository, parent: str | Run | None, current: Run | None) -> str | None:
    if isinstance(parent, Run):
        return parent.id
    if isinstance(parent, str):
        return lifecycle.resolve(repo.store.snapshot(), parent)
    return current.id if current is not None else None


def end_run(status: str = "FINISHED") -> None:
    """End this thread's active run (no-op when none is active, as in MLflow). A run that
    other threads also resumed by id is only let go here; the last thread to let go ends it."""
    run = _state.current()
    if run is not None and _state.release(run):
        run.end(status)


def active_run() -> Run | None:
    """This thread's innermost active run, or None (a new thread has none, as in MLflow)."""
    return _state.current()


def last_active_run() -> Run | None:
    """The run this thread started or resumed last: the active one, or the last one ended."""
    return _state.current() or _state.last


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
    from .reading import query

    return query.search_runs(_state.repository(), experiments, filter_string, order_by,
                             max_results, run_view, commit)


def get_metric_history(run: str, key: str) -> pd.DataFrame:
    """One metric's history of one run: step, timestamp, value."""
    from .reading import query

    return query.get_metric_history(_state.repository(), str(run), key)


def load_history(runs: Iterable[str] | str, keys: Iterable[str] | None = None) -> pd.DataFrame:
    """Histories of many runs in long format: run_id, key, step, timestamp, value."""
    if isinstance(runs, str):
        runs = [runs]
    if isinstance(keys, str):
        keys = [keys]
    from .reading import query

    return query.load_history(_state.repository(), runs, keys)


def list_experiments(metric: str | None = None, mode: str | None = None) -> pd.DataFrame:
    """One row per experiment: name, description, run count, last activity, and the best value
    of ``metric`` by its goal in that experiment (``mode`` "max" or "min" overrides the goal)."""
    from .reading import query

    return query.experiments_frame(_state.repository(), metric, mode)


def run_command(command: list[str], *, experiment: str | None = None, name: str | None = None,
                hypothesis: str | None = None, params: Mapping[str, Any] | Iterable[str] | None = None,
                tags: Mapping[str, str] | Iterable[str] | None = None, metrics_file: str | None = None,
                log_bytes: int | None = None) -> wrapper.Outcome:
    """Run ``command`` as a new run (``labbook run``): output, metrics and exit status recorded.
    ``params`` and ``tags`` may be ``key=value`` strings (param values parsed: 3, 0.5, true)."""
    from .runs import wrapper

    if params is not None and not isinstance(params, Mapping):
        params = wrapper.parse_pairs(list(params), "param", typed=True)
    if tags is not None and not isinstance(tags, Mapping):
        tags = wrapper.parse_pairs(list(tags), "tag", typed=False)
    fixed = {"name": name is not None, "experiment": experiment is not None,
             "hypothesis": hypothesis is not None, "tags": sorted(tags or {})}
    return wrapper.run_command(
        _state.repository(), list(command), experiment=experiment or _state.experiment
        or DEFAULT_EXPERIMENT, name=name, hypothesis=hypothesis, params=params, tags=tags,
        metrics_file=metrics_file, log_bytes=wrapper.DEFAULT_LOG_BYTES if log_bytes is None else log_bytes,
        fixed=fixed)


def list_artifacts(run: str, deep: bool = False) -> list[artifact_files.ArtifactCheck]:
    """The artifacts of a run, each checked: ok, MISMATCH or missing (object-store artifacts by
    their size and sha256 metadata, "size ok" without it; ``deep`` downloads and re-hashes)."""
    from .runs import artifact_files

    return artifact_files.list_artifacts(_state.repository(), run, deep)


def get_artifacts(run: str, path: str, dest: str | None = None, force: bool = False) -> list[Path]:
    """Restore an artifact (or a folder of them) of a run, checked against its sha256."""
    from .runs import artifact_files

    return artifact_files.get_artifacts(_state.repository(), run, path, dest, force)


def reproduce(run: str, rtol: float = 1e-6) -> reproducing.Reproduction:
    """Re-run a run's command on its code in a temporary worktree and compare its metrics."""
    from .runs import reproduce as reproducing

    return reproducing.reproduce(_state.repository(), run, rtol)


def fsck(recover: bool = False, deep: bool = False, abort_uploads: bool = False) -> checks.FsckReport:
    """Check every record, artifact and live run of the notebook (``deep``: download and
    re-hash object-store artifacts; ``abort_uploads``: abort this clone's unfinished uploads)."""
    from .reading import fsck as checks

    return checks.fsck(_state.repository(), recover, deep, abort_uploads)


def code_log(rev_range: str = "HEAD", metric: str | None = None, mode: str | None = None,
             limit: int | None = 50) -> pd.DataFrame:
    """Code commits (newest first) with the number of runs made at each and their best metric
    by its goal (``mode`` "max" or "min" overrides it)."""
    from .reading import codelog

    return codelog.code_log(_state.repository(), rev_range, metric, mode, limit)


def import_mlflow(source: str, progress: Callable[[int, int], None] | None = None
                  ) -> mlflow_importer.ImportSummary:
    """Import every experiment and run of an MLflow store (an mlruns folder or a database URI);
    runs keep their ids, so importing again brings only runs not on the branch yet."""
    from .importers import mlflow as mlflow_importer

    return mlflow_importer.import_mlflow(_state.repository(), source, progress)
