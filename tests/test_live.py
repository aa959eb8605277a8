"""`labbook watch`: a running run's values read from its journal, live, until it ends."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from click.testing import CliRunner

from conftest import git
from labbook import tracking
from labbook.cli import cli
from labbook.reading import live

TRAINER = """
import os, sys, time, labbook
go = sys.argv[1]
with labbook.start_run("live-one") as run:
    print(run.id, flush=True)
    for step in range(5):
        labbook.log_metric("val_loss", 1.0 / (step + 1), step=step)
    while not os.path.exists(go):
        time.sleep(0.05)
    for step in range(5, 8):
        labbook.log_metric("val_loss", 1.0 / (step + 1), step=step)
"""


def _trainer(repo: Path, go: Path) -> tuple[subprocess.Popen[str], str]:
    child = subprocess.Popen([sys.executable, "-c", TRAINER, str(go)], cwd=repo, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert child.stdout is not None
    return child, child.stdout.readline().strip()


def _wait_for(predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_watch_reads_values_the_branch_has_not_seen_and_ends_with_the_run(repo: Path, tmp_path: Path):
    go = tmp_path / "go"
    child, run_id = _trainer(repo, go)
    repository = tracking.repository()
    _wait_for(lambda: len(live.read_live(repository, run_id).history.get("val_loss", [])) == 5)
    view = live.read_live(repository, run_id)
    assert view.record.status == "RUNNING" and view.live and view.running and view.updated is not None
    assert view.record.metrics["val_loss"].last == 0.2
    on_branch = git(repo, "show", f"experiments:runs/{run_id[:2]}/{run_id}/run.yaml")
    assert "val_loss" not in on_branch  # only the journal has them (checkpoints are a minute apart)

    watcher = subprocess.Popen([sys.executable, "-m", "labbook", "watch", run_id[:8], "--interval", "0.2"],
                               cwd=repo, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(1.0)
    assert watcher.poll() is None  # still watching while the run trains
    go.write_text("")
    out, err = watcher.communicate(timeout=60)
    assert child.wait(30) == 0
    assert watcher.returncode == 0, err
    assert "live-one" in out and "FINISHED" in out
    row = next(line for line in out.splitlines() if line.strip().startswith("val_loss"))
    assert row.split()[1:4] == ["0.125", "7", "8"]  # last value, step, values: all 8, from the branch


def test_watch_of_a_killed_process_stops_and_says_so(repo: Path, tmp_path: Path):
    child, run_id = _trainer(repo, tmp_path / "never")
    repository = tracking.repository()
    _wait_for(lambda: len(live.read_live(repository, run_id).history.get("val_loss", [])) == 5)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    result = CliRunner().invoke(cli, ["watch", run_id, "--interval", "0.1"])
    assert result.exit_code == 1
    assert "RUNNING" in result.output and "its process is gone" in result.output
    assert "0.2" in result.output  # the values it logged before it died, from its journal


def test_render_shows_values_steps_sparkline_and_freshness(repo: Path):
    import labbook

    with labbook.start_run("done") as run:
        for step, value in enumerate([3.0, 2.0, 1.0]):
            labbook.log_metric("loss", value, step=step)
    view = live.read_live(tracking.repository(), run.id)
    assert not view.running and view.updated is None
    from rich.console import Console

    console = Console(width=100, record=True, force_terminal=False)
    console.print(live.render_live(view))
    text = console.export_text()
    assert "as of its last checkpoint" in text and "█▄▁" in text


CHECKPOINTING = """
import os, sys, time, labbook
go = sys.argv[1]
with labbook.start_run("remote-one") as run:
    print(run.id, flush=True)
    labbook.log_metric("val_loss", 0.9, step=0)
    time.sleep(1.2)
    labbook.log_metric("val_loss", 0.7, step=1)  # past labbook.checkpointSeconds: committed
    while not os.path.exists(go):
        time.sleep(0.05)
"""


def test_sync_watch_pushes_checkpoints_of_a_training_run_to_the_team(repo: Path, tmp_path: Path):
    remote = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(repo, "remote", "add", "origin", str(remote))
    git(repo, "config", "labbook.checkpointSeconds", "1")
    go = tmp_path / "go"
    child = subprocess.Popen([sys.executable, "-c", CHECKPOINTING, str(go)], cwd=repo, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert child.stdout is not None
    run_id = child.stdout.readline().strip()
    syncer = subprocess.Popen([sys.executable, "-m", "labbook", "sync", "--watch", "1"], cwd=repo, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    teammate = tmp_path / "teammate"
    git(tmp_path, "clone", "-q", str(remote), str(teammate))

    def seen() -> str:
        subprocess.run([sys.executable, "-m", "labbook", "pull"], cwd=teammate, capture_output=True)
        return subprocess.run([sys.executable, "-m", "labbook", "show", run_id], cwd=teammate,
                              capture_output=True, text=True).stdout

    _wait_for(lambda: "0.7" in seen(), timeout=60)  # the checkpoint, while the run still trains
    assert "RUNNING" in seen()
    go.write_text("")
    assert child.wait(30) == 0
    _wait_for(lambda: "FINISHED" in seen(), timeout=60)
    syncer.send_signal(signal.SIGINT)
    out, err = syncer.communicate(timeout=30)
    assert syncer.returncode == 0, err
    assert "pushed experiments to origin" in out and "Traceback" not in err


def test_sync_every_reports_changes_and_survives_a_failed_round():
    from labbook.errors import SyncError

    answers = iter([["pushed"], ["up to date"], SyncError("origin is unreachable"), ["up to date"],
                    ["up to date"]])

    class Result:
        def __init__(self, lines):
            self._lines = lines

        def lines(self):
            return self._lines

    def sync():
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return Result(answer)

    said: list[str] = []
    failed = live.sync_every(sync, 0, said.append, rounds=5, sleep=lambda s: None)
    assert failed == 1
    assert [line.split(" ", 1)[1] for line in said] == [
        "pushed", "up to date", "labbook: error: origin is unreachable", "up to date"]
