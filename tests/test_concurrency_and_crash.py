"""Many writers at once, and processes killed mid-run: nothing logged is lost."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from click.testing import CliRunner

import labbook
from conftest import git, python_child, run_ids, wait_for_gc
from labbook.cli import cli

WRITER = """
import sys, labbook
worker = int(sys.argv[1])
for n in range(25):
    with labbook.start_run(name=f"w{worker}-r{n}") as run:
        labbook.log_params({"worker": worker, "n": n})
        for step in range(5):
            labbook.log_metric("loss", worker + n / 100, step=step)
"""


def test_eight_processes_logging_at_once_lose_nothing(repo: Path):
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(w)], cwd=repo,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for w in range(8)]
    for proc in procs:
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
    ids = run_ids(repo)
    assert len(ids) == 200
    names = set()
    for rid in ids:
        run = labbook.get_run(rid)
        names.add(run.name)
        assert run.status == "FINISHED"
        assert [s for s, _, _ in run.metric_history("loss")] == [0, 1, 2, 3, 4]
        assert run.params == {"worker": int(run.name[1]), "n": int(run.name.split("-r")[1])}
    assert len(names) == 200
    wait_for_gc(repo)  # 200 runs' objects: the end of a run may have started git gc --auto
    fsck = subprocess.run(["git", "-C", str(repo), "fsck", "--strict", "--no-dangling"],
                          capture_output=True, text=True)
    assert fsck.returncode == 0 and "error" not in fsck.stderr, fsck.stderr


KILLED_CHILD = """
import labbook, sys
run = labbook.start_run(name="doomed", hypothesis="survives SIGKILL")
labbook.log_params({"lr": 0.01})
for step in range(100000):
    labbook.log_metric("loss", 1.0 / (step + 1), step=step)
    if step == 500:
        labbook.note("halfway there")
    if step == 1234:
        print(run.id, flush=True)
        sys.stdin.readline()  # the test kills us while we wait here
"""


def _kill_mid_run(repo: Path) -> str:
    child = python_child(KILLED_CHILD, repo, stdin=subprocess.PIPE)
    assert child.stdout is not None
    run_id = child.stdout.readline().strip()
    assert run_id, child.stderr.read() if child.stderr else ""
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    return run_id


def test_sigkilled_run_is_recovered_by_the_next_labbook_call(repo: Path):
    run_id = _kill_mid_run(repo)
    on_branch = labbook.get_run(run_id)  # the first call of this process recovers it
    assert on_branch.status == "KILLED"
    assert len(on_branch.metric_history("loss")) == 1235
    assert on_branch.metrics["loss"] == 1.0 / 1235
    assert on_branch.params == {"lr": 0.01}
    assert [n.text for n in on_branch.notes] == ["halfway there"]
    assert "recovered from its journal" in (on_branch.record.error or "")
    assert list((repo / ".git" / "labbook" / "journal").glob("*.log")) == []


def test_labbook_recover_command(repo: Path):
    run_id = _kill_mid_run(repo)
    result = CliRunner().invoke(cli, ["-C", str(repo), "recover"])
    assert result.exit_code == 0, result.output
    assert f"recovered {run_id[:8]} doomed: KILLED, 1235 metric values" in result.output
    again = CliRunner().invoke(cli, ["-C", str(repo), "recover"])
    assert "no runs to recover" in again.output
    subjects = git(repo, "log", "--format=%s", "experiments").splitlines()
    assert subjects[0].startswith("recover doomed: KILLED")


def test_a_live_run_in_another_process_is_not_recovered(repo: Path):
    child = python_child(
        "import labbook, sys\n"
        "run = labbook.start_run(name='alive')\n"
        "labbook.log_metric('loss', 1.0)\n"
        "print(run.id, flush=True)\n"
        "sys.stdin.readline()\n", repo, stdin=subprocess.PIPE)
    assert child.stdout is not None and child.stdin is not None
    run_id = child.stdout.readline().strip()
    assert labbook.recover() == []
    assert labbook.get_run(run_id).status == "RUNNING"
    child.stdin.write("\n")
    child.stdin.flush()
    child.wait(timeout=30)
    assert labbook.get_run(run_id).status == "FINISHED"


def test_torn_last_journal_line_is_ignored(repo: Path):
    run_id = _kill_mid_run(repo)
    journal = repo / ".git" / "labbook" / "journal" / f"{run_id}.log"
    with open(journal, "ab") as handle:
        handle.write(b'57 0badc0de {"e":"m","k":"loss","v":9.0,"s')  # a write cut short
    recovered = labbook.recover()
    assert [r.id for r in recovered] == [run_id]
    assert labbook.get_run(run_id).metrics["loss"] == 1.0 / 1235


def test_checkpoints_commit_a_live_run(repo: Path):
    git(repo, "config", "labbook.checkpointSeconds", "0")
    labbook.set_repository(repo)
    with labbook.start_run(name="checkpointed") as run:
        labbook.log_metric("loss", 1.0)
        time.sleep(1.1)  # the journal is synced (and checkpointed) at most once a second
        labbook.log_metric("loss", 0.5)
        on_branch = labbook.get_run(run.id)
        assert on_branch.status == "RUNNING" and on_branch.metrics["loss"] == 0.5
    subjects = git(repo, "log", "--format=%s", "experiments").splitlines()
    assert any(s.startswith("checkpoint checkpointed") for s in subjects)
