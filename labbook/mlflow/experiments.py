"""MLflow's experiment calls over labbook's experiments: the ``Default`` experiment, tags,
and ``search_experiments`` with a filter, an order and pages.

labbook's default experiment (slug and name ``default``) is MLflow's ``Default``: it is
listed by a fresh store, found by ``get_experiment_by_name("Default")`` and by MLflow's id
``"0"``, and ``set_experiment("Default")`` logs into it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from ..errors import LabbookError
from ..format.record import DEFAULT_EXPERIMENT, ExperimentRecord
from ..reading import filterlang, query
from ..runs import edits
from ..runs.repository import Repository
from .entities import Experiment, PagedList, ViewType, page_offset, page_token
from .exceptions import (
    RESOURCE_ALREADY_EXISTS,
    RESOURCE_DOES_NOT_EXIST,
    MlflowException,
    Unsupported,
)

MLFLOW_DEFAULT_NAME = "Default"
MLFLOW_DEFAULT_ID = "0"
SEARCH_MAX_RESULTS = 50_000  # MLflow's SEARCH_MAX_RESULTS_THRESHOLD
_ORDER_COLUMNS = {"name": "run_name", "experiment_id": "run_id", "creation_time": "start_time",
                  "last_update_time": "end_time"}


def labbook_name(name: str) -> str:
    """The labbook experiment an MLflow name means (``Default`` is labbook's ``default``)."""
    return DEFAULT_EXPERIMENT if name == MLFLOW_DEFAULT_NAME else name


def slug_of(experiment_id: Any) -> str:
    """The labbook slug an MLflow experiment id means (``"0"`` is the default experiment)."""
    text = str(experiment_id)
    return DEFAULT_EXPERIMENT if text == MLFLOW_DEFAULT_ID else text


def _default_record() -> ExperimentRecord:
    return ExperimentRecord(slug=DEFAULT_EXPERIMENT, name=DEFAULT_EXPERIMENT)


def get(repo: Repository, experiment_id: Any) -> Experiment:
    slug = slug_of(experiment_id)
    exp = repo.experiment(slug)
    if exp is None and slug == DEFAULT_EXPERIMENT:
        exp = _default_record()  # a fresh store has it, as MLflow's does
    if exp is None:
        raise MlflowException(f"No Experiment with id={experiment_id} exists", RESOURCE_DOES_NOT_EXIST)
    return Experiment.of(exp)


def by_name(repo: Repository, name: str) -> Experiment | None:
    wanted = labbook_name(name)
    exp = repo.experiment_named(wanted)
    if exp is None and wanted == DEFAULT_EXPERIMENT:
        exp = _default_record()
    return None if exp is None or exp.name != wanted else Experiment.of(exp)


def create(repo: Repository, name: str, artifact_location: str | None,
           tags: Mapping[str, Any] | None) -> str:
    """A new experiment with its tags; its id (slug). An existing name is an error."""
    if artifact_location is not None:
        raise Unsupported("create_experiment(artifact_location=...)",
                          "artifacts live with their run; set `git config labbook.artifactStore "
                          "DIR` for the large ones")
    if not isinstance(name, str) or not name.strip():
        raise MlflowException("Invalid experiment name: an experiment needs a name")
    wanted = labbook_name(name)
    if repo.experiment_named(wanted) is not None:
        raise MlflowException(f"Experiment '{name}' already exists.", RESOURCE_ALREADY_EXISTS)
    texts = {str(k): str(v) for k, v in (tags or {}).items()}
    exp = repo.ensure_experiment(wanted, texts.pop("mlflow.note.content", None))
    if texts:
        set_tags(repo, exp.slug, texts)
    return exp.slug


def set_tags(repo: Repository, experiment_id: Any, tags: Mapping[str, Any]) -> None:
    """Set experiment tags; ``mlflow.note.content`` is the experiment's description."""
    slug = slug_of(experiment_id)
    exp = repo.experiment(slug)
    if exp is None and slug == DEFAULT_EXPERIMENT:
        exp = repo.ensure_experiment(DEFAULT_EXPERIMENT)
    if exp is None:
        raise MlflowException(f"No Experiment with id={experiment_id} exists", RESOURCE_DOES_NOT_EXIST)
    texts = {str(k): str(v) for k, v in tags.items()}
    note = texts.pop("mlflow.note.content", None)
    if note is not None:
        repo.ensure_experiment(exp.name, note)
    if texts:
        edits.tag_experiment(repo, slug, texts)


def search(repo: Repository, view_type: Any = ViewType.ACTIVE_ONLY, max_results: int | None = 1000,
           filter_string: str | None = None, order_by: Iterable[str] | None = None,
           page_token_text: str | None = None) -> PagedList:
    """MLflow's search_experiments: filter on name, tags.*, creation_time, last_update_time."""
    if view_type not in (ViewType.ACTIVE_ONLY, ViewType.ALL, "ACTIVE_ONLY", "ALL"):
        return PagedList([], None)  # labbook does not delete experiments
    limit = check_max_results(max_results, SEARCH_MAX_RESULTS)
    found = [e for e in (repo.experiment(s) for s in query.experiment_names(repo)) if e is not None]
    if not any(e.slug == DEFAULT_EXPERIMENT for e in found):
        found.append(_default_record())
    exps = [Experiment.of(e) for e in found]
    table = _table(exps)
    try:
        if filter_string and filter_string.strip():
            table = table[query.evaluate(filterlang.parse(_as_run_columns(filter_string)), table)]
        orders = [_order(item) for item in (order_by or [])] or \
            [(filterlang.Column("attributes", "start_time"), False)]
        orders.append((filterlang.Column("attributes", "run_id"), True))
    except LabbookError as exc:
        raise MlflowException(f"Invalid filter or order_by for search_experiments: {exc}") from exc
    table = query.sort_runs(table, orders)
    start = page_offset(page_token_text)
    picked = [exps[i] for i in table["index"].tolist()[start:start + limit]]
    more = start + limit < len(table)
    return PagedList(picked, page_token(start + limit) if more else None)


def check_max_results(max_results: Any, most: int) -> int:
    """MLflow refuses a max_results above its threshold; so does labbook.mlflow."""
    if max_results is None:
        return most
    if isinstance(max_results, bool) or not isinstance(max_results, int) or max_results <= 0:
        raise MlflowException(f"Invalid value {max_results!r} for parameter 'max_results' supplied: "
                              "it must be a positive integer")
    if max_results > most:
        raise MlflowException(f"Invalid value {max_results} for parameter 'max_results' supplied. "
                              f"It must be at most {most}")
    return max_results


def _table(exps: list[Experiment]) -> pd.DataFrame:
    rows = []
    for i, exp in enumerate(exps):
        row: dict[str, Any] = {"index": i, "run_id": exp.experiment_id, "run_name": exp.name,
                               "start_time": exp.creation_time, "end_time": exp.last_update_time}
        row.update({f"tags.{k}": v for k, v in exp.tags.items()})
        rows.append(row)
    table = pd.DataFrame(rows)
    for column in ("start_time", "end_time"):
        table[column] = pd.to_datetime(table[column], unit="ms", utc=True)
    return table


def _as_run_columns(text: str) -> str:
    """Experiment attributes spelled as the run columns the evaluator knows."""
    for mine, theirs in (("creation_time", "start_time"), ("last_update_time", "end_time"),
                         ("experiment_id", "run_id")):
        text = re.sub(rf"\b(?:attributes?\.)?{mine}\b", theirs, text)
    return text


def _order(item: str) -> tuple[filterlang.Column, bool]:
    column, ascending = filterlang.parse_order_by(_as_run_columns(item))
    if column.kind == "attributes" and column.key not in _ORDER_COLUMNS.values():
        raise MlflowException(f"Invalid order_by {item!r} for search_experiments: use one of "
                              f"{', '.join(_ORDER_COLUMNS)}")
    return column, ascending
