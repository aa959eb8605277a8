"""Reading runs back: search_runs, the filter language, histories, and the read cache."""

from __future__ import annotations

import logging
import math
import subprocess
from pathlib import Path

import pandas as pd
import pytest

import labbook
from conftest import git
from labbook.reading import filterlang

RUNS = [  # name, solver, alpha, mse, r2, stage
    ("ridge-a0.1", "cholesky", 0.1, 2900.0, 0.45, "baseline"),
    ("ridge-a0.9", "cholesky", 0.9, 3100.0, 0.40, "sweep"),
    ("ridge-a3", "svd", 3, 3500.0, 0.31, "sweep"),
    ("lasso", "saga", 0.5, 2950.0, None, None),
]


@pytest.fixture
def study(repo: Path) -> dict[str, str]:
    labbook.set_experiment("diabetes", description="Can a linear model beat the mean?")
    ids = {}
    for name, solver, alpha, mse, r2, stage in RUNS:
        with labbook.start_run(name=name, hypothesis=f"{name} helps") as run:
            labbook.log_params({"solver": solver, "alpha": alpha})
            for step in range(3):
                labbook.log_metric("loss", mse / (step + 1), step=step)
            labbook.log_metric("mse", mse)
            if r2 is not None:
                labbook.log_metric("r2", r2)
            if stage:
                labbook.set_tag("stage", stage)
            labbook.log_metric("val loss", mse / 1000)
        ids[name] = run.id
    labbook.set_experiment("other")
    with labbook.start_run(name="elsewhere") as run:
        labbook.log_metric("mse", 1.0)
    ids["elsewhere"] = run.id
    return ids


def names(frame: pd.DataFrame) -> list[str]:
    return list(frame["run_name"])


def test_issue_example(study):
    df = labbook.search_runs(experiments=["diabetes"],
                             filter_string="metrics.mse < 3000 and params.solver = 'cholesky'",
                             order_by=["metrics.mse ASC"])
    assert names(df) == ["ridge-a0.1"]
    assert df.loc[0, "params.alpha"] == 0.1 and df.loc[0, "experiment"] == "diabetes"
    assert str(df["start_time"].dt.tz) == "UTC" and df.loc[0, "duration"] >= 0


def test_columns_and_types(study):
    df = labbook.search_runs(experiments="diabetes")
    assert list(df.columns[:13]) == ["run_id", "run_name", "experiment", "status", "start_time",
                                     "end_time", "duration", "user", "parent_run_id",
                                     "code_commit", "code_dirty", "hypothesis", "verdict"]
    assert {"params.alpha", "metrics.mse", "metrics.val loss", "tags.stage"} <= set(df.columns)
    assert df["metrics.mse"].dtype == "Float64"  # <NA> where a run did not log it, NaN if it logged NaN
    alpha = dict(zip(df["run_name"], df["params.alpha"], strict=True))
    assert type(alpha["ridge-a3"]) is int and type(alpha["ridge-a0.9"]) is float
    assert names(df) == ["lasso", "ridge-a3", "ridge-a0.9", "ridge-a0.1"]  # newest first


@pytest.mark.parametrize("expr, expected", [
    ("metrics.r2 > 0.35", ["ridge-a0.1", "ridge-a0.9"]),
    ("metrics.r2 IS NULL", ["lasso"]),
    ("metrics.r2 IS NOT NULL AND metrics.r2 <= 0.40", ["ridge-a0.9", "ridge-a3"]),
    ("params.alpha = 3", ["ridge-a3"]),
    ("params.alpha = '0.9'", ["ridge-a0.9"]),
    ("params.solver IN ('svd', 'saga')", ["lasso", "ridge-a3"]),
    ("params.solver NOT IN ('svd', 'saga')", ["ridge-a0.1", "ridge-a0.9"]),
    ("attributes.run_name LIKE 'ridge-a_'", ["ridge-a3"]),
    ("run_name ILIKE 'RIDGE-%'", ["ridge-a0.1", "ridge-a0.9", "ridge-a3"]),
    ("tags.stage = 'sweep' OR metrics.mse < 2920", ["ridge-a0.1", "ridge-a0.9", "ridge-a3"]),
    ("NOT (tags.stage = 'sweep')", ["lasso", "ridge-a0.1"]),
    ("tags.stage != 'sweep'", ["ridge-a0.1"]),
    ("metrics.`val loss` >= 3.1", ["ridge-a0.9", "ridge-a3"]),
    ("metrics.nothing > 1", []),
    ("status = 'FINISHED' and start_time > '2000-01-01'", ["lasso", "ridge-a0.1", "ridge-a0.9",
                                                          "ridge-a3"]),
    ("attributes.start_time < 946684800000", []),
])
def test_filters(study, expr, expected):
    df = labbook.search_runs(experiments=["diabetes"], filter_string=expr)
    assert sorted(names(df)) == expected


@pytest.mark.parametrize("expr, column, expected", [
    ("metrics.mse <", 14, "expected a number, a quoted string, true or false"),
    ("metrics.mse ~ 3", 13, "unexpected character '~'"),
    ("bogus = 1", 1, "unknown attribute 'bogus'"),
    ("(metrics.mse < 1", 17, "expected ')'"),
    ("metrics.mse < 1 metrics.r2 > 0", 17, "expected AND, OR or the end"),
])
def test_syntax_errors_point_at_the_column(study, expr, column, expected):
    with pytest.raises(labbook.FilterSyntaxError) as caught:
        labbook.search_runs(filter_string=expr)
    assert caught.value.column == column
    message = str(caught.value)
    assert expected in message
    caret_line = message.splitlines()[-1]
    assert caret_line.index("^") - 2 == column - 1


def test_filter_is_never_evaluated_as_python(study, tmp_path: Path):
    marker = tmp_path / "pwned"
    evil = f"__import__('os').system('touch {marker}') = 1"
    with pytest.raises(labbook.FilterSyntaxError):
        labbook.search_runs(filter_string=evil)
    assert not marker.exists()


def test_order_by_missing_last_both_ways(study):
    asc = labbook.search_runs(experiments=["diabetes"], order_by=["metrics.r2 ASC"])
    desc = labbook.search_runs(experiments=["diabetes"], order_by=["metrics.r2 DESC"])
    assert names(asc) == ["ridge-a3", "ridge-a0.9", "ridge-a0.1", "lasso"]
    assert names(desc) == ["ridge-a0.1", "ridge-a0.9", "ridge-a3", "lasso"]
    two = labbook.search_runs(experiments=["diabetes"], order_by=["params.solver", "metrics.mse DESC"])
    assert names(two) == ["ridge-a0.9", "ridge-a0.1", "lasso", "ridge-a3"]


def test_max_results_and_empty_result(study):
    assert len(labbook.search_runs(max_results=2)) == 2
    empty = labbook.search_runs(filter_string="metrics.mse > 1e9")
    assert empty.empty and list(empty.columns[:4]) == ["run_id", "run_name", "experiment", "status"]


def test_empty_branch_gives_base_columns(repo: Path):
    df = labbook.search_runs()
    assert df.empty and "verdict" in df.columns


def test_unknown_experiment_is_named(study):
    with pytest.raises(labbook.InvalidValue, match="no experiment named 'diabets'"):
        labbook.search_runs(experiments=["diabets"])


def test_runs_at_a_code_revision(study, repo: Path):
    (repo / "train.py").write_text("print('v2')\n")
    git(repo, "commit", "-q", "-am", "v2")
    with labbook.start_run(name="on-v2"):
        pass
    assert names(labbook.search_runs(commit="HEAD")) == ["on-v2"]
    assert len(labbook.search_runs(commit="HEAD~1")) == 5


def test_metric_history_and_long_histories(study):
    hist = labbook.get_metric_history(study["ridge-a0.9"], "loss")
    assert list(hist.columns) == ["step", "timestamp", "value"]
    assert list(hist["step"]) == [0, 1, 2] and hist["value"].iloc[-1] == pytest.approx(3100 / 3)
    df = labbook.search_runs(experiments=["diabetes"])
    curves = labbook.load_history(df.run_id, keys=["loss"])
    assert set(curves.columns) == {"run_id", "key", "step", "timestamp", "value"}
    assert len(curves) == 12 and set(curves["key"]) == {"loss"}
    with pytest.raises(labbook.InvalidValue, match="no metric 'acc'"):
        labbook.get_metric_history("lasso", "acc")


def test_a_corrupt_record_is_skipped_with_one_warning(study, repo: Path, caplog):
    from labbook.tracking import repository
    bad_id = "ff" + "0" * 30
    repository().store.commit({f"runs/ff/{bad_id}/run.yaml": b"id: [unclosed\n"}, "corrupt")
    with caplog.at_level(logging.WARNING, logger="labbook"):
        df = labbook.search_runs()
    assert len(df) == 5
    assert [r.message for r in caplog.records if bad_id in r.message] != []


def test_cache_parses_only_new_records(study, monkeypatch):
    from labbook.format import record
    from labbook.reading import rows
    labbook.search_runs()  # warm
    parsed = []
    original = rows.row_of_yaml
    monkeypatch.setattr(rows, "row_of_yaml",
                        lambda data, path: parsed.append(path) or original(data, path))
    labbook.tracking.reset()  # a new process: only the on-disk cache is left
    labbook.set_repository(Path.cwd())
    assert len(labbook.search_runs()) == 5 and parsed == []
    with labbook.start_run(name="one-more") as run:
        pass
    assert len(labbook.search_runs()) == 6
    assert parsed == [record.run_path(run.id)]


def test_pulled_runs_are_picked_up(study, repo: Path, tmp_path: Path):
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(repo), str(clone)], check=True)
    git(clone, "fetch", "-q", "origin", "experiments:experiments")
    labbook.set_repository(clone)
    assert len(labbook.search_runs()) == 5
    labbook.set_repository(repo)
    with labbook.start_run(name="new-upstream"):
        pass
    git(clone, "fetch", "-q", "origin", "+experiments:experiments")
    labbook.set_repository(clone)
    assert "new-upstream" in names(labbook.search_runs())


def test_order_by_parser():
    column, ascending = filterlang.parse_order_by("metrics.`val loss` DESC")
    assert column.name == "metrics.val loss" and ascending is False


def test_list_experiments(study):
    df = labbook.list_experiments(metric="mse")
    assert list(df["experiment"]) == ["diabetes", "other"]
    assert list(df["runs"]) == [4, 1]
    assert df.loc[0, "best mse"] == 2900.0
    assert df.loc[0, "description"] == "Can a linear model beat the mean?"
    assert not math.isnan(df.loc[1, "best mse"])
