"""labbook never touches the user's work tree, index, HEAD, stash or hooks."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import labbook
from conftest import git, run_ids, user_state, wait_for_gc


def _failing_hooks(repo: Path, marker: Path) -> None:
    hooks = repo / ".git" / "hooks"
    for name in ("pre-commit", "post-commit", "reference-transaction", "commit-msg",
                 "post-rewrite", "pre-push"):
        hook = hooks / name
        hook.write_text(f"#!/bin/sh\necho {name} >> '{marker}'\nexit 1\n")
        hook.chmod(hook.stat().st_mode | stat.S_IEXEC)


def _full_run(name: str) -> labbook.Run:
    with labbook.start_run(name=name, hypothesis="h") as run:
        labbook.log_params({"a": 1})
        labbook.log_metric("loss", 0.5)
        labbook.note("a note")
        run.conclude("inconclusive", "too early")
    return run


def test_state_is_identical_with_staged_unstaged_untracked_and_stash(repo: Path):
    (repo / "train.py").write_text("print('changed')\n")
    git(repo, "stash", "-q")
    (repo / "train.py").write_text("print('staged')\n")
    git(repo, "add", "train.py")
    (repo / "train.py").write_text("print('unstaged on top')\n")
    (repo / "untracked.txt").write_text("x\n")
    before = user_state(repo)
    run = _full_run("careful")
    assert user_state(repo) == before
    assert labbook.get_run(run.id).record.code.dirty is True


def test_user_hooks_never_run_for_labbooks_writes(repo: Path, tmp_path: Path):
    marker = tmp_path / "hooks-ran.txt"
    _failing_hooks(repo, marker)
    run = _full_run("hooked")
    assert not marker.exists(), marker.read_text()
    assert run_ids(repo) == [run.id]


def test_git_variables_inherited_from_a_hook_do_not_redirect_writes(repo: Path, tmp_path: Path):
    decoy = tmp_path / "decoy"
    git(tmp_path, "init", "-q", str(decoy))
    before = user_state(repo)
    env = dict(os.environ, GIT_DIR=str(decoy / ".git"), GIT_INDEX_FILE=str(tmp_path / "idx"),
               GIT_WORK_TREE=str(decoy))
    code = ("import labbook\n"
            "with labbook.start_run(name='from-hook'):\n"
            "    labbook.log_metric('loss', 1.0)\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=repo, env=env, capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr
    assert len(run_ids(repo)) == 1
    assert git(decoy, "branch", "--list", "experiments").strip() == ""
    assert not (tmp_path / "idx").exists()
    assert user_state(repo) == before


def test_refuses_when_the_branch_is_checked_out_in_a_worktree(repo: Path, tmp_path: Path):
    labbook.init()
    git(repo, "worktree", "add", "-q", str(tmp_path / "nb"), "experiments")
    tip = git(repo, "rev-parse", "experiments")
    with pytest.raises(labbook.BranchConflict, match="checked out in"):
        labbook.start_run()
    assert git(repo, "rev-parse", "experiments") == tip
    assert git(tmp_path / "nb", "status", "--porcelain") == ""


def test_stale_lock_gets_a_bounded_retry_then_names_the_lock(repo: Path):
    git(repo, "config", "labbook.lockTimeoutSeconds", "1")
    labbook.set_repository(repo)
    labbook.init()
    lock = repo / ".git" / "refs" / "heads" / "experiments.lock"
    lock.write_text("")
    with pytest.raises(labbook.BranchConflict) as caught:
        labbook.start_run()
    assert str(lock) in str(caught.value) and "stale" in str(caught.value)
    lock.unlink()
    with labbook.start_run() as run:
        pass
    assert run.id in run_ids(repo)


def test_sha256_repository(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = tmp_path / "sha256"
    git(tmp_path, "init", "-q", "--object-format=sha256", str(path))
    (path / "a.txt").write_text("a\n")
    git(path, "add", "a.txt")
    git(path, "commit", "-q", "-m", "one")
    monkeypatch.chdir(path)
    labbook.set_repository(path)
    (path / "model.bin").write_bytes(b"weights")
    with labbook.start_run(name="sha256-run") as run:
        labbook.log_metric("loss", 0.2)
        labbook.log_artifact("model.bin")
    assert len(git(path, "rev-parse", "experiments").strip()) == 64
    assert run_ids(path) == [run.id]
    wait_for_gc(path)
    fsck = subprocess.run(["git", "-C", str(path), "fsck", "--strict"], capture_output=True,
                          text=True)
    assert fsck.returncode == 0, fsck.stderr
