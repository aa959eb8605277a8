"""The read commands end to end in a real repository, and as thin adapters."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pandas as pd
import pytest
from click.testing import CliRunner

import labbook
from conftest import git
from labbook import cli as cli_module
from labbook.cli import cli


@pytest.fixture
def notebook(repo: Path) -> dict[str, str]:
    labbook.set_experiment("diabetes", description="Can a linear model beat the mean?")
    ids = {}
    for name, alpha, r2 in (("ridge-a0.1", 0.1, 0.45), ("ridge-a3", 3, 0.31)):
        with labbook.start_run(name=name, hypothesis="alpha matters") as run:
            labbook.log_params({"alpha": alpha, "solver": "cholesky"})
            for step in range(10):
                labbook.log_metric("loss", 1 / (step + 1) + alpha, step=step)
            labbook.log_metric("r2", r2)
            labbook.note("Loss plateaus at epoch 4")
            run.conclude("supported" if r2 > 0.4 else "refuted", f"r2 = {r2}")
        ids[name] = run.id
        (repo / "train.py").write_text(f"ALPHA = {alpha}\n")
        git(repo, "commit", "-q", "-am", f"alpha {alpha}")
    return ids


def invoke(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_ls_filters_sorts_and_picks_columns(notebook):
    out = invoke("ls", "-e", "diabetes", "--filter", "metrics.r2 > 0.2", "--sort", "-metrics.r2",
                 "--columns", "run_name,params.alpha,metrics.r2", "--format", "csv")
    assert out.splitlines() == ["run_name,params.alpha,metrics.r2", "ridge-a0.1,0.1,0.45",
                                "ridge-a3,3,0.31"]


def test_ls_json_is_stable_for_scripts(notebook):
    rows = json.loads(invoke("ls", "--format", "json", "--columns", "run_id,start_time,metrics.*"))
    assert [set(r) for r in rows] == [{"run_id", "start_time", "metrics.loss", "metrics.r2"}] * 2
    assert rows[0]["start_time"].endswith("Z") and len(rows[0]["run_id"]) == 32


def test_ls_table_and_markdown(notebook):
    table = invoke("ls")
    assert "ridge-a0.1" in table and "r2 ↑" in table and notebook["ridge-a3"][:8] in table
    markdown = invoke("ls", "--format", "markdown", "--columns", "run_name,verdict")
    assert markdown.splitlines()[:2] == ["| run_name | verdict |", "|---|---|"]


def test_ls_glob_columns_and_limit(notebook):
    out = invoke("ls", "--columns", "params.*", "--format", "csv", "--limit", "1")
    assert out.splitlines()[0] == "params.alpha,params.solver" and len(out.splitlines()) == 2


def test_show_prints_every_section_with_a_sparkline(notebook):
    out = invoke("show", notebook["ridge-a3"][:6])
    for expected in ("ridge-a3", "experiment diabetes", "hypothesis", "alpha matters",
                     "alpha = 3", "Loss plateaus at epoch 4", "conclusion: REFUTED", "█"):
        assert expected in out


def test_compare_marks_differences_and_best(notebook):
    out = invoke("compare", "ridge-a0.1", "ridge-a3")
    assert "params.alpha" in out and "params.solver" not in out  # only params that differ are rows
    assert "the same in every run: solver=cholesky" in out
    r2_line = next(line for line in out.splitlines() if "metrics.r2" in line)
    assert "0.45 ★" in r2_line and "0.31 ★" not in r2_line


def test_diff_shows_params_metrics_and_code(notebook):
    out = invoke("diff", "ridge-a0.1", "ridge-a3")
    assert "params.alpha: 0.1 → 3" in out
    assert "metrics.r2: 0.45 → 0.31" in out
    assert "+ALPHA = 0.1" in out  # the second run ran on the commit that set ALPHA = 0.1


def test_diff_includes_uncommitted_patches(notebook, repo: Path):
    (repo / "train.py").write_text("ALPHA = 99  # not committed\n")
    with labbook.start_run(name="dirty"):
        pass
    out = invoke("diff", "ridge-a3", "dirty")
    assert "uncommitted changes of dirty" in out and "+ALPHA = 99" in out


def test_export_csv_json_parquet(notebook, tmp_path: Path):
    for fmt in ("csv", "json", "parquet"):
        target = tmp_path / f"runs.{fmt}"
        invoke("export", "-e", "diabetes", "--format", fmt, "-o", str(target))
        frame = {"csv": pd.read_csv, "json": pd.read_json, "parquet": pd.read_parquet}[fmt](target)
        assert sorted(frame["run_name"]) == ["ridge-a0.1", "ridge-a3"]


def test_experiments_lists_best_metric(notebook):
    out = invoke("experiments", "--metric", "r2", "--max", "--format", "csv")
    assert out.splitlines()[1].startswith("diabetes,Can a linear model beat the mean?,2,")
    assert out.splitlines()[1].endswith(",0.45,↑ max")


def test_errors_are_one_line_with_exit_1_and_usage_is_exit_2(notebook, repo: Path):
    def run(*args):
        return subprocess.run([sys.executable, "-m", "labbook", *args], cwd=repo,
                              capture_output=True, text=True)
    bad = run("ls", "--filter", "metrics.r2 >")
    assert bad.returncode == 1 and bad.stdout == ""
    assert bad.stderr.startswith("labbook: error: filter syntax error at column 13")
    assert "Traceback" not in bad.stderr
    missing = run("show", "zzzz")
    assert missing.returncode == 1 and "no run has the id, id prefix or name 'zzzz'" in missing.stderr
    usage = run("ls", "--format", "xml")
    assert usage.returncode == 2


def test_ambiguous_prefix_lists_candidates(repo: Path):
    from labbook.runs import lifecycle
    from labbook.tracking import repository
    for rid in ("abcd1111" + "0" * 24, "abcd2222" + "0" * 24):
        lifecycle.start(repository(), experiment="default", run_id=rid).end()
    result = CliRunner().invoke(cli, ["show", "abcd"])
    assert result.exit_code == 1
    assert "'abcd' matches 2 runs: abcd11110000, abcd22220000" in result.output
    assert "abcd1111" in CliRunner().invoke(cli, ["show", "abcd1"]).output


def test_ls_is_a_thin_adapter():
    empty = pd.DataFrame({"run_id": [], "run_name": []})
    with mock.patch.object(cli_module.tracking, "search_runs", autospec=True,
                           return_value=empty) as search:
        CliRunner().invoke(cli, ["ls", "-e", "d", "--filter", "metrics.a > 1", "--sort", "-metrics.a",
                                 "--sort", "params.b", "--limit", "5", "--all",
                                 "--columns", "run_id"], catch_exceptions=False)
    search.assert_called_once_with(("d",), "metrics.a > 1", ["metrics.a DESC", "params.b ASC"], 5,
                                   "all", None)
