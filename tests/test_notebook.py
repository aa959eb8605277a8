"""Notebook edits: one commit each, worded like a notebook line, never lost to a live run."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

import labbook
from conftest import git, python_child, user_state
from labbook.cli import cli


def invoke(*args: str, input: str | None = None) -> str:
    result = CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture
def finished(repo: Path) -> str:
    labbook.set_experiment("diabetes")
    with labbook.start_run(name="ridge-a3", hypothesis="alpha=3 underfits") as run:
        labbook.log_metric("r2", 0.39)
    return run.id


def test_each_edit_is_one_commit_with_a_notebook_line(finished, repo: Path):
    before = user_state(repo)
    invoke("note", "ridge-a3", "Loss plateaus at epoch 40; try a lower learning rate")
    invoke("note", "ridge-a3", "-", input="Second thought\nwith two lines\n")
    invoke("conclude", "ridge-a3", "--verdict", "supported", "r2 fell from 0.45 to 0.39")
    invoke("tag", "ridge-a3", "stage=baseline", "owner=ada")
    invoke("untag", "ridge-a3", "owner")
    invoke("rename", "ridge-a3", "ridge-alpha-3")
    invoke("describe", "diabetes", "Can a linear model beat the mean?")
    subjects = git(repo, "log", "--format=%s", "experiments").splitlines()[:7]
    assert subjects == [
        "experiment diabetes: describe — Can a linear model beat the mean?",
        "rename ridge-a3 → ridge-alpha-3",
        "untag ridge-a3: owner",
        "tag ridge-a3: stage=baseline, owner=ada",
        "conclude ridge-a3: supported — r2 fell from 0.45 to 0.39",
        "note on ridge-a3: Second thought",
        "note on ridge-a3: Loss plateaus at epoch 40; try a lower learning rate",
    ]
    run = labbook.get_run(finished)
    assert run.name == "ridge-alpha-3" and run.tags == {"stage": "baseline"}
    assert [n.text for n in run.notes] == ["Loss plateaus at epoch 40; try a lower learning rate",
                                           "Second thought\nwith two lines"]
    assert run.conclusion.verdict == "supported" and run.notes[0].author == "Ada Tester"
    assert user_state(repo) == before
    blame = git(repo, "blame", "experiments", "--", f"runs/{finished[:2]}/{finished}/run.yaml")
    assert "Ada Tester" in blame


def test_note_with_editor(finished, monkeypatch):
    monkeypatch.setenv("EDITOR", "sh -c 'printf \"Written in the editor\\n# dropped\\n\" > \"$0\"'")
    invoke("note", "ridge-a3", "--edit")
    assert labbook.get_run(finished).notes[-1].text == "Written in the editor"


def test_delete_hides_and_restore_brings_back(finished):
    invoke("delete", "ridge-a3")
    assert labbook.search_runs().empty
    assert list(labbook.search_runs(run_view="deleted")["run_name"]) == ["ridge-a3"]
    assert "ridge-a3" in invoke("ls", "--all", "--format", "csv", "--columns", "run_name")
    invoke("restore", finished[:8])
    assert list(labbook.search_runs()["run_name"]) == ["ridge-a3"]


def test_experiment_create_and_rename_keep_runs(finished):
    invoke("experiment", "create", "trees", "-d", "Do trees help?")
    invoke("experiment", "rename", "diabetes", "diabetes-linear")
    df = labbook.search_runs(experiments=["diabetes-linear"])
    assert list(df["run_name"]) == ["ridge-a3"]
    listed = invoke("experiments", "--format", "csv")
    assert "diabetes-linear," in listed and "trees,Do trees help?,0," in listed


def test_bad_edits_are_clear_errors(finished):
    for args, message in [
        (["conclude", "ridge-a3", "--verdict", "maybe", "x"], "Invalid value for '--verdict'"),
        (["untag", "ridge-a3", "nope"], "has no tag 'nope'"),
        (["tag", "ridge-a3", "novalue"], "'novalue' is not KEY=VALUE"),
        (["note", "nosuchrun", "text"], "no run has the id, id prefix or name 'nosuchrun'"),
        (["experiment", "create", "diabetes"], "experiment 'diabetes' exists already"),
    ]:
        result = CliRunner().invoke(cli, args)
        assert result.exit_code in (1, 2) and message in result.output, (args, result.output)


def test_edits_made_while_a_run_is_live_survive_its_later_commits(repo: Path):
    child = python_child(
        "import labbook, sys\n"
        "run = labbook.start_run(name='live')\n"
        "labbook.log_metric('loss', 1.0)\n"
        "print(run.id, flush=True)\n"
        "sys.stdin.readline()\n"
        "labbook.log_metric('loss', 0.5)\n"
        "labbook.note('from the run itself')\n"
        "run.end()\n", repo, stdin=subprocess.PIPE)
    assert child.stdout is not None and child.stdin is not None
    run_id = child.stdout.readline().strip()
    invoke("note", run_id, "written from another terminal")
    invoke("tag", run_id, "stage=baseline")
    invoke("rename", run_id, "live-renamed")
    child.stdin.write("\n")
    child.stdin.flush()
    assert child.wait(timeout=60) == 0, child.stderr.read() if child.stderr else ""
    run = labbook.get_run(run_id)
    assert run.status == "FINISHED" and run.metrics == {"loss": 0.5}
    assert [n.text for n in run.notes] == ["written from another terminal", "from the run itself"]
    assert run.tags == {"stage": "baseline"} and run.name == "live-renamed"
    assert run.record.conflicts == []
