"""``search_runs`` with MLflow's columns and conventions, computed from labbook's run table.

Columns: run_id, experiment_id (the experiment's slug), status, artifact_uri,
start_time, end_time (tz-aware UTC), then ``metrics.*`` (float), ``params.*``
(strings, as MLflow stores them) and ``tags.*`` including the mlflow.* tags MLflow
sets itself (runName, parentRunId, user, source.git.commit), derived from the record.
The filter is labbook's language (a superset of MLflow's); it sees params as logged, so
``params.alpha = '0.1'`` and ``params.alpha = 0.1`` both match.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from ..errors import LabbookError
from ..format.record import DEFAULT_EXPERIMENT
from ..reading import filterlang, query
from ..runs.repository import Repository
from .entities import Metric, Run, RunData, RunInfo, artifact_uri, to_ms
from .exceptions import INVALID_PARAMETER_VALUE, RESOURCE_DOES_NOT_EXIST, MlflowException

SEARCH_MAX_RESULTS = 50_000  # MLflow's SEARCH_MAX_RESULTS_THRESHOLD for one page
BASE_COLUMNS = ["run_id", "experiment_id", "status", "artifact_uri", "start_time", "end_time"]
VIEW_TYPES = {1: "active", 2: "deleted", 3: "all", "ACTIVE_ONLY": "active",
              "DELETED_ONLY": "deleted", "ALL": "all"}
_SYSTEM_TAGS = {"tags.mlflow.runName": "run_name", "tags.mlflow.parentRunId": "parent_run_id",
                "tags.mlflow.user": "user", "tags.mlflow.source.git.commit": "code_commit"}
_PANDAS_3 = int(pd.__version__.split(".")[0]) >= 3


def experiment_slugs(repo: Repository, experiment_ids: Iterable[str] | str | None,
                     experiment_names: Iterable[str] | str | None) -> list[str] | None:
    """The experiment names labbook's query wants, from MLflow's ids (slugs) and names."""
    if experiment_ids is None and experiment_names is None:
        return None
    names = query.experiment_names(repo)
    wanted: list[str] = []
    for given in [experiment_ids] if isinstance(experiment_ids, str) else (experiment_ids or []):
        slug = DEFAULT_EXPERIMENT if str(given) == "0" else str(given)  # MLflow's Default
        if slug == DEFAULT_EXPERIMENT and slug not in names:
            continue  # a fresh store's Default experiment: no runs yet
        if str(slug) not in names:
            raise MlflowException(f"Could not find experiment with ID {slug}", RESOURCE_DOES_NOT_EXIST)
        wanted.append(names[str(slug)])
    known = set(names.values())
    for name in [experiment_names] if isinstance(experiment_names, str) else (experiment_names or []):
        name = DEFAULT_EXPERIMENT if name == "Default" else name
        if name in known:
            wanted.append(name)  # MLflow ignores unknown names
    return wanted


def search_frame(repo: Repository, experiments: list[str] | None, filter_string: str | None,
                 order_by: Iterable[str] | None, max_results: int | None,
                 run_view: str, nan_marks: bool = False) -> pd.DataFrame:
    """Matching runs in MLflow's layout (see the module docstring); with ``nan_marks`` the
    columns that tell a logged NaN from a missing metric are kept (for frame_to_runs)."""
    if experiments is not None and not experiments:
        return empty_frame()
    try:
        tree = filterlang.parse(filter_string) if filter_string and filter_string.strip() else None
        orders = [filterlang.parse_order_by(_order_alias(item)) for item in (order_by or [])]
    except LabbookError as exc:  # MLflow raises its MlflowException (INVALID_PARAMETER_VALUE)
        raise MlflowException(str(exc), INVALID_PARAMETER_VALUE) from exc
    if len({column for column, _ in orders}) < len(orders):
        raise MlflowException(f"`order_by` contains duplicate fields: {list(order_by or [])}")
    table = query.runs_frame(repo, experiments, run_view)
    if table.empty:
        return empty_frame()
    slugs = {name: slug for slug, name in query.experiment_names(repo).items()}
    table["experiment_id"] = table["experiment"].map(lambda name: slugs.get(name, name))
    table["artifact_uri"] = table["run_id"].map(artifact_uri)
    for column, attribute in _SYSTEM_TAGS.items():
        if table[attribute].notna().any():
            table[column] = table[attribute]
    if tree is not None:
        try:
            table = table[query.evaluate(tree, table)]
        except LabbookError as exc:
            raise MlflowException(str(exc), INVALID_PARAMETER_VALUE) from exc
    table = query.sort_runs(table, orders, text_prefixes=("params.", "tags."))
    if max_results is not None:
        table = table.head(int(max_results))
    out = _mlflow_columns(table.reset_index(drop=True))
    if nan_marks and not out.empty:
        for column in table.columns:
            if column.startswith(query.NAN_MARK):
                out[column] = table[column].to_numpy()
    return out


def _order_alias(item: str) -> str:
    """MLflow's ``attribute.`` spelling is accepted as well as ``attributes.``."""
    text = item.strip()
    return "attributes." + text[len("attribute."):] if text.lower().startswith("attribute.") else text


def empty_frame() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series([], dtype=object) for c in BASE_COLUMNS})


def _mlflow_columns(table: pd.DataFrame) -> pd.DataFrame:
    if table.empty:
        return empty_frame()
    out = {c: table[c] if c.endswith("_time") else _text_column(table[c]) for c in BASE_COLUMNS}
    extra = sorted(c for c in table.columns if c.startswith(("metrics.", "params.", "tags.")))
    extra.sort(key=lambda c: ("metrics.", "params.", "tags.").index(c[: c.index(".") + 1]))
    for column in extra:
        values = table[column]
        if column.startswith("metrics."):
            out[column] = values.astype("float64")
        else:
            out[column] = _text_column(values)
    return pd.DataFrame(out)


def _text_column(values: pd.Series) -> pd.Series:
    """Strings with NaN for missing, as MLflow's frame holds them."""
    texts = [np.nan if _missing(v) else str(v) for v in values]
    series = pd.Series(texts, index=values.index, dtype=object)
    return series.astype("str") if _PANDAS_3 else series


def _missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def frame_to_runs(frame: pd.DataFrame) -> list[Run]:
    """``output_format="list"``: one MLflow-shaped Run per row."""
    runs = []
    for row in frame.to_dict(orient="records"):
        def pick(prefix: str, row: dict[str, Any] = row) -> dict[str, Any]:
            return {k[len(prefix):]: v for k, v in row.items() if k.startswith(prefix) and
                    (not _missing(v) or row.get(query.NAN_MARK + k) is True)}  # a logged NaN
        tags = pick("tags.")
        info = RunInfo(row["run_id"], row["experiment_id"], tags.get("mlflow.runName", ""),
                       tags.get("mlflow.user", ""), row["status"], _ms(row["start_time"]),
                       _ms(row["end_time"]), row["artifact_uri"])
        runs.append(Run(info, RunData(pick("metrics."), pick("params."), tags)))
    return runs


def _ms(value: Any) -> int | None:
    if _missing(value):
        return None
    return int(pd.Timestamp(value).value // 1_000_000)


def history(repo: Repository, run_id: str, key: str) -> list[Metric]:
    """Every value of one metric of one run, as MLflow Metric objects."""
    frame = query.get_metric_history(repo, run_id, key)
    return [Metric(key, float(v), int(pd.Timestamp(t).value // 1_000_000), int(s))
            for s, t, v in zip(frame["step"], frame["timestamp"], frame["value"], strict=True)]


__all__ = ["empty_frame", "frame_to_runs", "history", "search_frame", "to_ms"]
