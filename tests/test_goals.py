"""Metric goals: declared once on the experiment, used by every place that says best or better."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from bs4 import BeautifulSoup
from click.testing import CliRunner

import labbook
from conftest import git
from labbook import tracking
from labbook.cli import cli
from labbook.format import goals, record
from labbook.site import build


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


@pytest.mark.parametrize(("key", "goal"), [
    ("val_loss", goals.MINIMIZE), ("test/mse", goals.MINIMIZE), ("trainLoss", goals.MINIMIZE),
    ("eval_accuracy", goals.MAXIMIZE), ("test_acc", goals.MAXIMIZE), ("val_f1", goals.MAXIMIZE),
    ("tokens_per_s", goals.MAXIMIZE), ("samples_per_second", goals.MAXIMIZE), ("reward", goals.MAXIMIZE),
    ("hellaswag", goals.MAXIMIZE), ("r2", goals.MAXIMIZE), ("error_rate", goals.MINIMIZE),
    ("lr", None), ("learning_rate", None), ("epoch", None), ("grad_norm", None), ("loss_scale", None),
    ("heatmap", None), ("mystery", None), ("", None),
])
def test_a_goal_is_guessed_from_whole_words_only(key: str, goal: str | None):
    assert goals.infer_goal(key) == goal


def test_declared_goals_win_and_no_goal_means_no_best():
    specs = {"tokens": record.MetricSpec(goal=goals.MAXIMIZE)}
    declared = goals.goal_of("tokens", specs)
    assert declared.declared and declared.best([3.0, None, float("nan"), 7.0]) == 7.0
    guessed = goals.goal_of("val_loss", specs)
    assert not guessed.declared and guessed.label == "↓ min (inferred)" and guessed.best([2.0, 1.0]) == 1.0
    unknown = goals.goal_of("lr", specs)
    assert not unknown.known and unknown.best([0.1, 0.8]) is None and unknown.improvement(0.1, 0.8) is None


def test_define_metric_is_stored_on_the_experiment_and_read_back(repo: Path):
    labbook.set_experiment("llm")
    labbook.define_metric("hellaswag", "max", key=True)
    labbook.define_metric("val_loss", goal="minimize", summary="min", step_metric="tokens")
    labbook.define_metric("hellaswag", summary="last")  # keeps the goal and the key mark
    text = git(repo, "show", "experiments:experiments/llm.yaml")
    assert "metrics:\n  hellaswag:\n    goal: maximize\n    summary: last\n    key: true\n" in text
    assert "  val_loss:\n    goal: minimize\n    summary: min\n    step_metric: tokens\n" in text
    exp = tracking.repository().experiment("llm")
    assert exp is not None and goals.key_metrics(exp.metrics) == ["hellaswag"]
    log = git(repo, "log", "--format=%s", "experiments").splitlines()
    assert log[:2] == ["experiment llm: metric hellaswag — summary last",
                       "experiment llm: metric val_loss — goal minimize, summary min, step metric tokens"]
    with pytest.raises(labbook.InvalidValue, match="goal 'up' is not one of maximize"):
        labbook.define_metric("x", "up")
    with pytest.raises(labbook.InvalidValue, match="summary 'median' is not one of last, min, max, mean"):
        labbook.define_metric("x", "max", summary="median")


def test_older_and_odd_experiment_files_read_fine():
    old = record.experiment_from_yaml(b"format: 1\nname: e\ndescription: null\ncreated: ''\n", "e")
    assert old.metrics == {}
    assert record.experiment_to_yaml(old) == b"format: 1\nname: e\ndescription: null\ncreated: ''\n"
    odd = record.experiment_from_yaml(
        b"format: 1\nname: e\nmetrics:\n  a: {goal: upward, key: 'yes'}\n  b: 3\n"
        b"  c: {goal: maximize}\n", "e")
    assert odd.metrics == {"a": record.MetricSpec(), "c": record.MetricSpec(goal="maximize")}


def _sweep(repo: Path) -> dict[str, str]:
    labbook.set_experiment("bench")
    ids = {}
    for name, tokens, lr, hellaswag in (("slow", 100.0, 0.8, 0.30), ("fast", 900.0, 0.01, 0.41)):
        with labbook.start_run(name) as run:
            labbook.log_metrics({"tokens_per_s": tokens, "lr": lr, "hellaswag": hellaswag})
        ids[name] = run.id
    return ids


def test_compare_marks_best_by_goal_and_nothing_for_schedules(repo: Path):
    ids = _sweep(repo)
    code, out = invoke("compare", ids["slow"], ids["fast"])
    assert code == 0, out
    rows = {line.split()[0]: line for line in out.splitlines() if line.strip().startswith("metrics.")}
    assert rows["metrics.tokens_per_s"].rstrip().endswith("900 ★")  # higher throughput is better
    assert "★" not in rows["metrics.lr"]  # a schedule has no best
    assert "~" in rows["metrics.tokens_per_s"] and "goal guessed from the name" in out
    assert invoke("experiment", "metric", "bench", "tokens_per_s", "--goal", "max", "--key")[1] == \
        "bench: tokens_per_s — goal maximize, key metric\n"
    out = invoke("compare", ids["slow"], ids["fast"])[1]
    line = next(x for x in out.splitlines() if x.strip().startswith("metrics.tokens_per_s"))
    assert "↑" in line and "~" not in line


def test_experiments_and_log_use_the_goal_unless_told(repo: Path):
    _sweep(repo)
    code, out = invoke("experiments", "--metric", "hellaswag", "--format", "csv")
    assert code == 0 and out.splitlines()[1].endswith(",0.41,↑ max (inferred)")
    assert invoke("experiments", "--metric", "hellaswag", "--min", "--format", "csv")[1].splitlines()[1] \
        .endswith(",0.3,↓ min")
    code, out = invoke("experiments", "--metric", "lr")
    assert code == 1 and "metric 'lr' has no known goal" in out and "--goal max" in out
    labbook.define_metric("lr", "min", experiment="bench")
    out = invoke("experiments", "--metric", "lr", "--format", "csv")[1]
    assert out.splitlines()[1].endswith(",0.01,↓ min")
    code, out = invoke("log", "--metric", "tokens_per_s", "--format", "csv")
    assert code == 0 and out.splitlines()[0] == "commit,subject,runs,best tokens_per_s"
    assert out.splitlines()[1].endswith(",2,900.0")
    assert invoke("experiments", "--metric", "lr", "--max", "--min")[0] == 2


def test_goals_travel_with_push_and_pull_and_merge_field_by_field(tmp_path: Path):
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    a, b = tmp_path / "a", tmp_path / "b"
    for path in (a, b):
        git(tmp_path, "init", "-q", str(path))
        git(path, "commit", "-q", "--allow-empty", "-m", "start")
        git(path, "remote", "add", "origin", str(remote))
    tracking.reset()
    labbook.set_repository(a)
    labbook.set_experiment("shared")
    labbook.define_metric("acc", "max")
    tracking.push()
    tracking.reset()
    labbook.set_repository(b)
    tracking.pull()
    labbook.define_metric("loss", "min", key=True, experiment="shared")
    labbook.define_metric("acc", summary="max", experiment="shared")
    tracking.reset()
    labbook.set_repository(a)
    labbook.define_metric("acc", key=True, experiment="shared")
    tracking.reset()
    labbook.set_repository(b)
    tracking.push()
    tracking.reset()
    labbook.set_repository(a)
    tracking.pull()
    exp = tracking.repository().experiment("shared")
    assert exp is not None
    assert exp.metrics == {"acc": record.MetricSpec(goal="maximize", summary="max", key=True),
                           "loss": record.MetricSpec(goal="minimize", key=True)}


def test_the_journal_colours_only_metrics_with_a_goal(repo: Path, tmp_path: Path):
    _sweep(repo)
    result = build(tracking.repository(), tmp_path / "site")
    soup = BeautifulSoup((result.root / "index.html").read_text(), "html.parser")
    fast = next(e for e in soup.select("article, li, div") if "fast" in e.get_text() and e.select(".delta"))
    deltas = {span.find_parent("li").select_one(".mkey").get_text(): span for span in fast.select(".delta")}
    assert "better" in deltas["tokens_per_s"]["class"]  # 100 → 900 tokens/s is an improvement
    assert "better" in deltas["hellaswag"]["class"]
    assert "lr" not in deltas  # a schedule gets no delta at all
    assert "goal guessed from the name" in deltas["tokens_per_s"]["title"]
    labbook.define_metric("tokens_per_s", "min", experiment="bench")  # say the opposite: it follows
    result = build(tracking.repository(), tmp_path / "site")
    soup = BeautifulSoup((result.root / "index.html").read_text(), "html.parser")
    fast = next(e for e in soup.select("article, li, div") if "fast" in e.get_text() and e.select(".delta"))
    deltas = {span.find_parent("li").select_one(".mkey").get_text(): span for span in fast.select(".delta")}
    assert "worse" in deltas["tokens_per_s"]["class"] and "guessed" not in deltas["tokens_per_s"]["title"]


def _busy_notebook(repo: Path) -> list[str]:
    labbook.set_experiment("a-rather-long-experiment-name")
    ids = []
    for i in range(3):
        with labbook.start_run(f"trial-with-a-fairly-long-descriptive-name-{i}") as run:
            ids.append(run.id)
            labbook.log_params({"lr": 0.1 * (i + 1), "optimizer.name": "adamw", "layers": 4})
            labbook.log_metrics({"val_loss": 1.0 / (i + 1), "tokens_per_s": 1000.0 * (i + 1),
                                 "train_loss": 2.0 / (i + 1), "grad_norm": 0.5, "lr": 0.01,
                                 "hellaswag": 0.3 + i / 100, "mmlu": 0.25 + i / 50})
    labbook.set_experiment("other")
    with labbook.start_run("x"):
        labbook.log_metric("val_loss", 0.7)
    return ids


def test_ls_fits_80_columns_with_ids_names_and_the_key_metric(repo: Path):
    trials = _busy_notebook(repo)
    result = CliRunner().invoke(cli, ["ls"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert all(len(line) <= 80 for line in lines), result.output
    header = lines[0].split()
    assert header[:4] == ["id", "name", "status", "started"]
    assert "verdict" not in header  # no run has one: never a column of empty cells
    ids = [line.split()[0] for line in lines[2:]]
    assert len(ids) == 4 and all(len(i) == 8 for i in ids)
    labbook.define_metric("hellaswag", "max", key=True, experiment="a-rather-long-experiment-name")
    lines = CliRunner().invoke(cli, ["ls", "-e", "a-rather-long-experiment-name"],
                               env={"COLUMNS": "80"}).output.splitlines()
    assert lines[0].split()[4:6] == ["hellaswag", "↑"]  # the declared key metric comes first
    assert "experiment" not in lines[0]  # one experiment shown: its name would repeat on every row
    best_first = CliRunner().invoke(cli, ["ls", "--sort", "metrics.hellaswag"], env={"COLUMNS": "80"})
    assert best_first.output.splitlines()[2].split()[0] == trials[2][:8]  # 0.32 is the best hellaswag
    wide = CliRunner().invoke(cli, ["ls", "--wide"], env={"COLUMNS": "80"}).output.splitlines()
    assert max(len(line) for line in wide) > 80 and "params.optimizer.name" in wide[0]
    as_json = CliRunner().invoke(cli, ["ls", "--format", "json"], env={"COLUMNS": "80"}).output
    assert '"run_id"' in as_json and len(json.loads(as_json)[0]["run_id"]) == 32


def test_types_and_nan_reach_the_user_as_logged(repo: Path):
    """Missing is not NaN, an int param with gaps stays an int, a bool filters as true/false."""
    for i in range(3):
        with labbook.start_run(f"r{i}"):
            labbook.log_params({"flag": i % 2 == 0, "n": i} if i else {"flag": True})
            labbook.log_metric("m", float("nan") if i == 1 else float(i))
            if i == 0:
                labbook.log_metric("only_r0", 1.0)
    df = labbook.search_runs().set_index("run_name")
    assert (str(df["params.n"].dtype), str(df["params.flag"].dtype), str(df["code_dirty"].dtype),
            str(df["metrics.m"].dtype)) == ("Int64", "boolean", "boolean", "Float64")
    assert df.loc["r0", "params.n"] is pd.NA and df.loc["r2", "params.n"] == 2
    assert pd.isna(df.loc["r1", "metrics.m"]) and df.loc["r1", "metrics.m"] is not pd.NA  # a real NaN
    assert df.loc["r1", "metrics.only_r0"] is pd.NA  # never logged
    for expr in ("params.flag = true", "params.flag = 'True'", "params.flag = TRUE"):
        assert sorted(labbook.search_runs(filter_string=expr).run_name) == ["r0", "r2"], expr
    assert list(labbook.search_runs(filter_string="params.flag = false").run_name) == ["r1"]
    assert len(labbook.search_runs(filter_string="code_dirty = false")) == 3
    out = CliRunner().invoke(cli, ["ls", "--columns", "run_name,metrics.m,metrics.only_r0"],
                             env={"COLUMNS": "80"}).output.splitlines()
    cells = {line.split()[0]: line.split()[1:] for line in out[2:]}
    assert cells == {"r2": ["2"], "r1": ["NaN"], "r0": ["0", "1"]}
    as_json = CliRunner().invoke(cli, ["ls", "--format", "json", "--columns", "run_name,metrics.m"]).output
    rows = json.loads(as_json)
    assert {r["run_name"]: r["metrics.m"] for r in rows} == {"r2": 2.0, "r1": "NaN", "r0": 0.0}


def test_a_declared_summary_picks_the_value_compare_ranks(repo: Path):
    labbook.set_experiment("noisy")
    ids = {}
    for name, values in (("steady", [0.5, 0.5, 0.5]), ("spiky", [0.9, 0.1, 0.8])):
        with labbook.start_run(name) as run:
            for step, value in enumerate(values):
                labbook.log_metric("reward", value, step=step)
        ids[name] = run.id

    def starred() -> str:
        out = invoke("compare", ids["steady"], ids["spiky"])[1]
        cells = next(x for x in out.splitlines() if x.strip().startswith("metrics.reward")).split()
        assert cells[2] in ("0.5", "0.6") and cells.count("★") == 1  # steady's value, then spiky's
        return "steady" if cells[3] == "★" else "spiky"

    assert starred() == "spiky"  # last values: 0.5 against 0.8
    labbook.define_metric("reward", "max", summary="mean")
    assert starred() == "spiky"  # means: 0.5 against 0.6
    labbook.define_metric("reward", summary="min")
    assert starred() == "steady"  # worst case: 0.5 against 0.1
