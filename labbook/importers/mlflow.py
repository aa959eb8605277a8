"""``labbook import mlflow``: every experiment and run of an MLflow store, onto the branch.

The store is read with MLflow's own ``MlflowClient`` (so any store MLflow opens works: an
``mlruns`` folder, a database URI, a tracking server). Runs keep their MLflow ids, which
makes importing idempotent: a run whose id is already on the branch is skipped, so a
second import of the same store adds nothing and a later one brings only the new runs.
Parents are imported before their children.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..errors import InvalidValue, LabbookError
from ..format import record
from ..format.record import Code, Environment
from ..runs import edits, lifecycle
from ..runs.repository import Repository

# MLflow's system tags that become part of the record instead of tags
RUN_NAME, PARENT, NOTE, USER = "mlflow.runName", "mlflow.parentRunId", "mlflow.note.content", "mlflow.user"
GIT_COMMIT = "mlflow.source.git.commit"
# the mlflow.* tags kept as tags (labbook.mlflow stores and reads these the same way)
KEPT_SYSTEM_TAGS = ("mlflow.source.name", "mlflow.source.type", "mlflow.source.git.branch",
                    "mlflow.note.content")
IMPORTED_STATUSES = {"FINISHED": "FINISHED", "FAILED": "FAILED", "KILLED": "KILLED"}
Progress = Callable[[int, int], None]


@dataclass
class ImportSummary:
    """What an import did, for the CLI to print."""

    source: str
    experiments: int = 0
    imported: int = 0
    skipped: dict[str, int] = field(default_factory=dict)  # reason → number of runs
    metric_points: int = 0
    artifacts: int = 0
    warnings: list[str] = field(default_factory=list)

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1

    def lines(self) -> list[str]:
        plural = "s" * (self.imported != 1)
        out = [f"imported {self.imported} run{plural} from {self.source} "
               f"({self.experiments} experiment{'s' * (self.experiments != 1)}, "
               f"{self.metric_points} metric points, {self.artifacts} artifacts)"]
        for reason, count in sorted(self.skipped.items()):
            out.append(f"skipped {count} run{'s' * (count != 1)}: {reason}")
        out += [f"warning: {w}" for w in self.warnings]
        return out


def tracking_uri(source: str) -> str:
    """The MLflow tracking URI of SOURCE: a URI as given, a folder as a file store, a file as
    a sqlite database."""
    if "://" in source or source.startswith("sqlite:"):
        if source.startswith("sqlite:///") and not Path(source[len("sqlite:///"):]).is_file():
            raise InvalidValue(f"no MLflow database at {source[len('sqlite:///'):]}")
        return source
    path = Path(source)
    if path.is_dir():
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow ≥ 3.13 asks for it
        return path.resolve().as_uri()
    if path.is_file():
        return f"sqlite:///{path.resolve()}"
    raise InvalidValue(f"{source!r} is neither an MLflow folder (mlruns), a database file nor a "
                       "URI such as sqlite:///mlflow.db")


def open_client(source: str) -> Any:
    """MLflow's client on SOURCE (MLflow is imported only here)."""
    uri = tracking_uri(source)
    try:
        from mlflow import MlflowClient
    except ImportError as exc:
        raise LabbookError("importing from MLflow needs MLflow itself: "
                           "pip install 'labbook[mlflow]'") from exc
    return MlflowClient(tracking_uri=uri)


def _pages(fetch: Callable[[str | None], Any]) -> list[Any]:
    found, token = [], None
    while True:
        page = fetch(token)
        found += list(page)
        token = getattr(page, "token", None)
        if not token:
            return found


def iso_ms(ms: int | None) -> str | None:
    """MLflow's milliseconds since the epoch as the format's UTC ISO time."""
    return None if ms is None else record.format_time(datetime.fromtimestamp(ms / 1000, UTC))


def parents_first(runs: list[Any]) -> list[Any]:
    """The runs ordered by start time, each parent before its children."""
    by_id = {r.info.run_id: r for r in runs}
    ordered: list[Any] = []
    placed: set[str] = set()

    def place(run: Any, seen: tuple[str, ...] = ()) -> None:
        rid = run.info.run_id
        if rid in placed:
            return
        parent = run.data.tags.get(PARENT)
        if parent in by_id and parent not in seen:
            place(by_id[parent], (*seen, rid))
        placed.add(rid)
        ordered.append(run)

    for run in sorted(runs, key=lambda r: (r.info.start_time or 0, r.info.run_id)):
        place(run)
    return ordered


def import_mlflow(repo: Repository, source: str, progress: Progress | None = None) -> ImportSummary:
    """Import every experiment and run of the MLflow store at SOURCE into ``repo``'s branch."""
    from mlflow.entities import ViewType

    from ..reading.query import catalog_for

    client = open_client(source)
    summary = ImportSummary(source=source)
    experiments = _pages(lambda token: client.search_experiments(
        view_type=ViewType.ALL, max_results=1000, page_token=token))
    names: dict[str, str] = {}
    runs: list[Any] = []
    for exp in experiments:
        found = _pages(lambda token, e=exp: client.search_runs(
            experiment_ids=[e.experiment_id], run_view_type=ViewType.ALL, max_results=1000,
            page_token=token))
        if not found and (exp.lifecycle_stage == "deleted" or exp.experiment_id == "0"):
            continue  # an empty Default experiment (MLflow makes one) or a deleted one
        names[exp.experiment_id] = exp.name
        imported = repo.ensure_experiment(exp.name, exp.tags.get(NOTE) or None)
        extra_tags = {k: str(v) for k, v in exp.tags.items() if k != NOTE}
        if extra_tags and any(imported.tags.get(k) != v for k, v in extra_tags.items()):
            edits.tag_experiment(repo, imported.slug, extra_tags)
        summary.experiments += 1
        runs += found
    on_branch = {e.run_id for e in catalog_for(repo).entries(repo.store.snapshot())}
    known = on_branch | {r.info.run_id for r in runs}
    ordered = parents_first(runs)
    for done, run in enumerate(ordered, 1):
        if run.info.run_id in on_branch:
            summary.skip("already on the branch")
        else:
            _import_run(repo, client, run, names[run.info.experiment_id], known, summary)
        if progress is not None:
            progress(done, len(ordered))
    return summary


def _import_run(repo: Repository, client: Any, run: Any, experiment: str, known: set[str],
                summary: ImportSummary) -> None:
    info, data = run.info, run.data
    rid = info.run_id
    tags = {k: v for k, v in data.tags.items()
            if not k.startswith("mlflow.") or k in KEPT_SYSTEM_TAGS}  # the note stays a tag too
    parent = data.tags.get(PARENT)
    if parent is not None and parent not in known:
        summary.warnings.append(f"run {rid[:8]}: its parent {parent[:8]} is not in the store; "
                                "imported without a parent")
        parent = None
    name = info.run_name or data.tags.get(RUN_NAME) or None
    live = lifecycle.start(repo, experiment=experiment, name=name, tags=tags or None,
                           parent=parent, run_id=rid, command=[])
    try:
        live.log_params(data.params)
        for key in sorted(data.metrics):
            for point in client.get_metric_history(rid, key):
                live.log_metric(key, point.value, step=point.step, timestamp=point.timestamp)
                summary.metric_points += 1
        if data.tags.get(NOTE, "").strip():
            live.note(data.tags[NOTE])
        if client.list_artifacts(rid):
            with tempfile.TemporaryDirectory(prefix="labbook-import-") as tmp:
                local = client.download_artifacts(rid, "", tmp)
                summary.artifacts += len(live.log_artifacts(local))
        rec = live.record
        rec.start_time = iso_ms(info.start_time) or rec.start_time
        rec.user = data.tags.get(USER) or None  # MLflow shows no user when it had none
        rec.host, rec.environment = None, Environment()  # MLflow does not know them
        rec.code = Code(commit=data.tags.get(GIT_COMMIT), branch=data.tags.get("mlflow.source.git.branch"))
        rec.deleted = info.lifecycle_stage == "deleted"
        status = IMPORTED_STATUSES.get(info.status, "KILLED")
        error = None if info.status in IMPORTED_STATUSES else f"{info.status} in MLflow when imported"
        live.end(status, error=error, end_time=iso_ms(info.end_time or info.start_time))
    except BaseException:
        live.end("FAILED", error="the import of this run stopped part way")
        raise
    summary.imported += 1
