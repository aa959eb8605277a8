"""A fresh clone of a shared repository sees its runs at once, without `labbook pull`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import labbook
from conftest import ROOT, git, user_state
from labbook import tracking


def test_a_fresh_clone_lists_the_teams_runs_and_says_where_they_came_from(tmp_path: Path):
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    first = tmp_path / "first"
    git(tmp_path, "clone", "-q", str(remote), str(first))
    git(first, "commit", "-q", "--allow-empty", "-m", "start")
    git(first, "push", "-q", "origin", "HEAD")
    labbook.set_repository(first)
    with labbook.start_run("shared-run"):
        labbook.log_metric("loss", 0.25)
    tracking.push()
    tracking.reset()

    fresh = tmp_path / "fresh"
    git(tmp_path, "clone", "-q", str(remote), str(fresh))
    assert git(fresh, "branch", "--list", "experiments") == ""  # only origin/experiments exists
    before = user_state(fresh)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "80"}
    ls = subprocess.run([sys.executable, "-m", "labbook", "ls"], cwd=fresh, env=env,
                        capture_output=True, text=True, timeout=60)
    assert ls.returncode == 0, ls.stderr
    assert "shared-run" in ls.stdout
    assert ls.stderr.strip().splitlines() == [
        "labbook: the experiments branch starts from origin/experiments (a fresh clone); "
        "`labbook pull` brings newer runs"]
    assert git(fresh, "rev-parse", "experiments") == git(fresh, "rev-parse", "origin/experiments")
    assert user_state(fresh) == before
    again = subprocess.run([sys.executable, "-m", "labbook", "ls"], cwd=fresh, env=env,
                           capture_output=True, text=True, timeout=60)
    assert again.stderr == "" and "shared-run" in again.stdout
