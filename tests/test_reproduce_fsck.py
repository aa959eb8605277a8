"""`labbook reproduce`, `labbook fsck` and `labbook log` in real repositories."""

from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path

from click.testing import CliRunner

import labbook
from conftest import git, user_state
from labbook import tracking
from labbook.cli import cli
from labbook.format import record

CHILD = textwrap.dedent("""
    import os, random, labbook
    value = float(open("value.txt").read())
    scale = float(os.environ["LABBOOK_PARAM_SCALE"])
    labbook.log_metric("score", value * scale)
    if os.environ.get("NOISY") or os.path.exists("noisy"):
        labbook.log_metric("noise", random.random())
""")


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def worktrees(repo: Path) -> str:
    return git(repo, "worktree", "list", "--porcelain")


def commit_child(repo: Path, noisy: bool = False) -> None:
    sub = repo / "src"
    sub.mkdir()
    (sub / "child.py").write_text(CHILD)
    (sub / "value.txt").write_text("1\n")
    paths = ["src/child.py", "src/value.txt"]
    if noisy:
        (sub / "noisy").write_text("")
        paths.append("src/noisy")
    git(repo, "add", *paths)
    git(repo, "commit", "-q", "-m", "add the child")


def test_reproduce_applies_the_recorded_patch_in_a_temporary_worktree(repo: Path, monkeypatch):
    commit_child(repo)
    (repo / "src" / "value.txt").write_text("2\n")  # uncommitted: recorded as code.diff
    monkeypatch.chdir(repo / "src")
    code, out = invoke("run", "-n", "orig", "-p", "scale=3", "--", sys.executable, "child.py")
    assert code == 0, out
    original = labbook.get_run("orig")
    assert original.metrics == {"score": 6.0} and original.provenance.dirty
    assert original.provenance.cwd == "src"
    (repo / "src" / "value.txt").write_text("7\n")  # the checkout moves on
    before, trees = user_state(repo), worktrees(repo)
    code, out = invoke("reproduce", "orig")
    assert code == 0, out
    assert "score: 6 → 6  (relative difference 0, same)" in out
    assert "0 of 1 metrics moved beyond rtol 1e-06" in out
    again = labbook.get_run("orig-repro")
    assert again.tags["labbook.reproduces"] == original.id
    assert again.params == {"scale": 3} and again.status == "FINISHED"
    assert again.provenance.commit == original.provenance.commit and again.provenance.dirty
    assert again.provenance.cwd == "src"
    assert user_state(repo) == before and worktrees(repo) == trees


def test_reproduce_fails_when_a_metric_moves(repo: Path, monkeypatch):
    commit_child(repo, noisy=True)
    monkeypatch.chdir(repo / "src")
    trees = worktrees(repo)
    assert invoke("run", "-n", "noisy", "-p", "scale=1", "--", sys.executable, "child.py")[0] == 0
    code, out = invoke("reproduce", "noisy", "--rtol", "1e-9")
    assert code == 1, out
    assert "noise:" in out and "MOVED" in out and "score: 1 → 1" in out
    assert worktrees(repo) == trees


def test_fsck_finds_tampered_artifacts_dead_runs_and_broken_records(repo: Path, tmp_path: Path):
    store = tmp_path / "store"
    git(repo, "config", "labbook.artifactStore", str(store))
    git(repo, "config", "labbook.inlineArtifactBytes", "10")
    labbook.set_repository(repo)
    (tmp_path / "big.txt").write_text("x" * 100)
    with labbook.start_run("good"):
        labbook.log_artifact(tmp_path / "big.txt")
    assert invoke("fsck") == (0, "checked 1 runs, 1 artifacts, 1 experiments: no problems\n")
    (stored_file,) = [p for p in store.rglob("*") if p.is_file()]
    stored_file.write_text("y" * 100)
    code, out = invoke("fsck")
    assert code == 1 and "artifact big.txt (store) is MISMATCH" in out
    stored_file.write_text("x" * 100)

    dead = labbook.start_run("dead")
    dead.detach()  # RUNNING on the branch, no process holds it
    code, out = invoke("fsck")
    assert code == 1 and f"run {dead.id[:8]} is RUNNING but its process is gone" in out
    code, out = invoke("fsck", "--recover")
    assert code == 0 and f"recovered run {dead.id[:8]}: KILLED" in out
    assert labbook.get_run(dead.id).status == "KILLED"

    live = labbook.start_run("live")
    assert invoke("fsck")[0] == 0  # its journal is locked by this process
    live.end()

    bad_id = "ab" * 16
    tracking.repository().commit({record.run_path(bad_id): b"id: [unclosed\n"}, "a broken record")
    code, out = invoke("fsck")
    assert code == 1 and f"runs/ab/{bad_id}/run.yaml" in out


def test_log_shows_code_history_with_runs(repo: Path):
    first = git(repo, "rev-parse", "HEAD").strip()
    with labbook.start_run():
        labbook.log_metric("loss", 0.5)
    with labbook.start_run():
        labbook.log_metric("loss", 0.3)
    (repo / "train.py").write_text("print('v2')\n")
    git(repo, "commit", "-q", "-am", "second version")
    with labbook.start_run():
        labbook.log_metric("loss", 0.9)
    frame = tracking.code_log("HEAD", "loss")
    assert list(frame["subject"]) == ["second version", "first"]
    assert list(frame["runs"]) == [1, 2] and list(frame["best loss"]) == [0.9, 0.3]  # loss: lower is better
    assert frame["commit"][1] == first[:12]
    second = git(repo, "rev-parse", "HEAD").strip()
    code, out = invoke("log", "--metric", "loss", "--max", "--format", "csv")
    assert code == 0
    assert out.splitlines()[1:] == [f"{second[:12]},second version,1,0.9", f"{first[:12]},first,2,0.5"]
    code, out = invoke("log", "HEAD~1..HEAD", "--format", "csv")
    assert out.splitlines()[1:] == [f"{second[:12]},second version,1"]
    code, out = invoke("log", "--output=/tmp/x")
    assert code != 0
    code, out = invoke("log", "nosuchrev")
    assert code == 1 and "not a revision range" in out


def test_reproduce_and_fsck_commands_are_thin_adapters():
    from unittest import mock

    from labbook.reading.fsck import FsckReport
    from labbook.runs import reproduce, wrapper
    outcome = wrapper.Outcome("b" * 32, "x-repro", "FINISHED", 0)
    moved = reproduce.Reproduction("a" * 32, outcome, 0.1,
                                   [reproduce.MetricComparison("m", 1.0, 2.0, 0.5, True)])
    with mock.patch.object(tracking, "reproduce", autospec=True, return_value=moved) as call:
        result = CliRunner().invoke(cli, ["reproduce", "x", "--rtol", "0.1"])
    call.assert_called_once_with("x", 0.1)
    assert result.exit_code == 1 and "m: 1 → 2  (relative difference 0.5, MOVED)" in result.output
    with mock.patch.object(tracking, "fsck", autospec=True, return_value=FsckReport(runs=2)) as call:
        result = CliRunner().invoke(cli, ["fsck", "--recover"])
    call.assert_called_once_with(True, False, False)
    assert (result.exit_code, result.output) == (0, "checked 2 runs, 0 artifacts, 0 experiments: "
                                                    "no problems\n")
    with mock.patch.object(tracking, "fsck", autospec=True, return_value=FsckReport(runs=2)) as call:
        CliRunner().invoke(cli, ["fsck", "--deep", "--abort-uploads"])
    call.assert_called_once_with(False, True, True)
    with mock.patch.object(tracking, "list_artifacts", autospec=True, return_value=[]) as call:
        CliRunner().invoke(cli, ["artifacts", "r1", "--deep"])
    call.assert_called_once_with("r1", True)


def set_command(run_id: str, command: list[str]) -> None:
    """Rewrite a run's recorded command on the branch, as a hand edit would."""
    path = record.run_path(run_id)
    repo = tracking.repository()
    rec = record.run_from_yaml(repo.store.snapshot().read(path), path)
    rec.command = command
    repo.commit({path: record.run_to_yaml(rec)}, "edit the command by hand")


def test_reproduce_on_another_machine_finds_python_and_names_untracked_inputs(repo: Path, monkeypatch):
    """The recorded interpreter is gone (another venv): python3 on PATH is used, and said; a file
    the command names that was never committed is pointed out, and the failure says why."""
    commit_child(repo)
    (repo / "src" / "extra.py").write_text("print('untracked')\n")  # never committed
    monkeypatch.chdir(repo / "src")
    assert invoke("run", "-n", "moved", "-p", "scale=2", "--", sys.executable, "child.py", "extra.py")[0] == 0
    original = labbook.get_run("moved")
    gone = "/nonexistent/venv/bin/python3.11"
    venv_bin = str(Path(sys.executable).parent)  # this machine's interpreter, found on PATH
    monkeypatch.setenv("PATH", venv_bin + os.pathsep + os.environ["PATH"])
    set_command(original.id, [gone, "child.py", "extra.py"])  # as if made on another machine
    code, out = invoke("reproduce", "moved")
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0] == (f"note: the recorded interpreter {gone} is missing here; "
                        f"using {venv_bin}/python3.11 from PATH")
    assert lines[1] == ("note: extra.py is not in the run's commit (was it untracked?); commit it so "
                        "the run can be reproduced")
    assert "score: 2 → 2" in out


def test_reproduce_prints_why_the_command_could_not_start(repo: Path, monkeypatch):
    commit_child(repo)
    monkeypatch.chdir(repo / "src")
    assert invoke("run", "-n", "tool", "-p", "scale=1", "--", sys.executable, "child.py")[0] == 0
    set_command(labbook.get_run("tool").id, ["/opt/gone/bin/trainer", "child.py"])
    code, out = invoke("reproduce", "tool")
    assert code == 127
    assert ("FAILED, exit status 127 (could not start '/opt/gone/bin/trainer': no such file)" in out)
