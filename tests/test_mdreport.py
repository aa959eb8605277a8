"""`--format markdown` of compare, show and log: tables for a pull-request comment or a release note."""

from __future__ import annotations

from pathlib import Path
from unittest import mock

import pytest
from click.testing import CliRunner
from markdown_it import MarkdownIt

import labbook
from conftest import git
from labbook.cli import cli
from labbook.reading import mdreport, query

COMMONMARK = MarkdownIt("commonmark", {"html": True}).enable("table")  # as GitHub reads a comment


def markdown(text: str, extensions: object = None) -> str:
    return COMMONMARK.render(text)


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def _table(out: str) -> dict[str, list[str]]:
    """The markdown table's rows by their first cell, each a list of the other cells."""
    rows = [line.strip("|").split(" | ") for line in out.splitlines() if line.startswith("| ")]
    return {row[0].strip(): [c.strip() for c in row[1:]] for row in rows}


@pytest.fixture
def sweep(repo: Path) -> dict[str, str]:
    labbook.set_experiment("tune")
    labbook.define_metric("val_loss", "min", experiment="tune")
    ids = {}
    for name, lr, loss, acc in (("base", 0.1, 0.50, 0.80), ("lower-lr", 0.01, 0.40, 0.85),
                                ("tiny-lr", 0.001, 0.45, 0.78)):
        with labbook.start_run(name) as run:
            labbook.log_params({"lr": lr, "epochs": 3})
            labbook.log_metrics({"val_loss": loss, "accuracy": acc, "lr_now": lr})
        ids[name] = run.id
    return ids


def test_compare_markdown_marks_best_and_deltas_against_the_first_run(sweep: dict[str, str]):
    code, out = invoke("compare", sweep["base"], sweep["lower-lr"], sweep["tiny-lr"], "--format", "markdown")
    assert code == 0, out
    assert out.startswith(f"### 3 runs against base (`{sweep['base'][:8]}`)")
    rows = _table(out)
    assert rows[""][0] == f"**base** `{sweep['base'][:8]}` (baseline)"
    assert rows["val_loss ↓"] == ["0.5", "0.4 ★ -0.1 (-20.0%) ✅", "0.45 -0.05 (-10.0%) ✅"]
    assert rows["accuracy ↑~"] == ["0.8", "0.85 ★ +0.05 (+6.2%) ✅", "0.78 -0.02 (-2.5%) ❌"]
    assert "★" not in " ".join(rows["lr_now"]) and "✅" not in " ".join(rows["lr_now"])  # no goal, no mark
    assert rows["param lr"] == ["0.1", "0.01", "0.001"]
    assert "The same in every run: epochs=3" in out and "~ goal guessed" in out
    html = markdown(out, extensions=["tables"])  # it is a real table once rendered
    assert html.count("<tr>") == 1 + len([r for r in rows if r]) and "<th>" in html


def test_compare_baseline_option_leads_and_is_not_repeated(sweep: dict[str, str]):
    code, out = invoke("compare", sweep["tiny-lr"], sweep["lower-lr"], "--baseline", "lower-lr",
                       "--format", "markdown")
    assert code == 0, out
    rows = _table(out)
    assert rows[""][0].startswith("**lower-lr**") and len(rows[""]) == 2
    assert rows["val_loss ↓"] == ["0.4 ★", "0.45 +0.05 (+12.5%) ❌"]
    code, out = invoke("compare", sweep["tiny-lr"], "--baseline", "base")  # the terminal table too
    assert code == 0 and out.index("base") < out.index("tiny-lr")
    assert invoke("compare", sweep["base"], "--baseline", "nope", "--format", "markdown")[0] == 1


def test_show_markdown_gives_the_experiments_best_and_a_baseline_delta(sweep: dict[str, str]):
    code, out = invoke("show", "lower-lr", "--format", "markdown", "--baseline", "base")
    assert code == 0, out
    assert out.startswith(f"### lower-lr (`{sweep['lower-lr'][:8]}`)") and "- **experiment**: tune" in out
    rows = _table(out)
    assert rows["metric"][-1] == f"Δ vs base `{sweep['base'][:8]}`"
    assert rows["val_loss ↓"] == ["0.4 ★", "0.4 of 3 runs", "-0.1 (-20.0%) ✅"]
    assert rows["accuracy ↑~"] == ["0.85 ★", "0.85 of 3 runs", "+0.05 (+6.2%) ✅"]
    assert rows["lr_now"] == ["0.01", "", "-0.09 (-90.0%)"]
    code, out = invoke("show", "tiny-lr", "--format", "markdown")
    rows = _table(out)
    assert rows["val_loss ↓"] == ["0.45", "0.4 of 3 runs"] and "Δ vs" not in out


def test_log_markdown_is_a_release_note_of_what_was_tried(repo: Path, sweep: dict[str, str]):
    (repo / "f.txt").write_text("x")
    git(repo, "add", "f.txt")
    git(repo, "commit", "-qm", "try | a pipe in the subject")
    with labbook.start_run("after") as _:
        labbook.log_metric("val_loss", 0.3)
    code, out = invoke("log", "--metric", "val_loss", "--format", "markdown")
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0] == "| commit | subject | runs | best val_loss ↓ | Δ vs oldest |"
    newest, oldest = lines[2].split(" | "), lines[3].split(" | ")
    assert newest[1] == r"try \| a pipe in the subject" and newest[3:] == ["0.3 ★", "-0.1 (-25.0%) ✅ |"]
    assert oldest[2:] == ["3", "0.4", "±0 |"]
    assert "Δ against the oldest commit" in out
    assert invoke("log", "--format", "markdown")[1].splitlines()[0] == "| commit | subject | runs |"


def test_compare_markdown_is_a_thin_adapter(sweep: dict[str, str]):
    with mock.patch.object(mdreport, "compare_markdown", autospec=True, return_value="T\n") as call:
        result = CliRunner().invoke(cli, ["compare", "base", "lower-lr", "--format", "markdown"])
    assert result.output == "T\n"
    records, goals = call.call_args.args
    assert [r.name for r in records] == ["base", "lower-lr"] and goals["val_loss"].declared
    with mock.patch.object(query, "run_report", autospec=True, wraps=query.run_report) as call:
        CliRunner().invoke(cli, ["show", "base", "--format", "markdown", "--baseline", "tiny-lr"])
    assert call.call_args.args[1:] == ("base", "tiny-lr")


def test_cells_escape_pipes_and_fold_lines():
    assert mdreport.md("a|b\nc") == r"a\|b c"
    assert mdreport.md("val_loss") == "val_loss"
    assert mdreport.delta(1.0, 1.0, labbook.format.goals.NO_GOAL) == "±0"
    assert mdreport.delta(float("nan"), 1.0, labbook.format.goals.NO_GOAL) == ""


def test_user_text_stays_text_in_a_comment(repo: Path):
    hostile = "<img src=x onerror=alert(1)> @team **bold** [click](http://evil.example) a|b `x`"
    with labbook.start_run(hostile) as first:
        labbook.log_param("note", hostile)
        labbook.log_metric("val_loss", 0.5)
    with labbook.start_run("plain") as second:
        labbook.log_param("note", "ok")
        labbook.log_metric("val_loss", 0.4)
    for args in (["compare", first.id, second.id], ["show", first.id]):
        code, out = invoke(*args, "--format", "markdown")
        assert code == 0, out
        html = markdown(out, extensions=["tables"])
        assert "<img" not in html and "<a " not in html and "<strong>bold" not in html
        assert "onerror=alert(1)" in html and "evil.example" in html  # shown, as text
        assert "\\@team" in out  # no @mention in a GitHub comment
