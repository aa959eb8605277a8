"""Shared fixtures: real git repositories in tmp_path, with the user's git config isolated."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import labbook
from labbook import tracking
from labbook.runs.repository import open_repository

ROOT = Path(__file__).resolve().parent.parent

# A test suite started as a background job (`cmd &` in a script) inherits SIGINT ignored, and so
# would every process a test starts: the tests that send SIGINT (Ctrl-C) to `labbook site serve`,
# `labbook run` or `labbook sync --watch` would wait for nothing. A Python handler here is reset
# to the default in every child at exec, so the children get Ctrl-C as a user's terminal gives it.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def git(repo: Path, *args: str, check: bool = True, env: dict[str, str] | None = None) -> str:
    """Run the real git binary in ``repo`` and return its stdout."""
    proc = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                          env=env, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {proc.stderr}")
    return proc.stdout


def user_state(repo: Path) -> dict[str, object]:
    """Everything of the user's that labbook must never change."""
    git_dir = Path(git(repo, "rev-parse", "--absolute-git-dir").strip())
    index = git_dir / "index"
    return {
        "status": git(repo, "status", "--porcelain", "--untracked-files=all"),
        "index": index.read_bytes() if index.exists() else None,
        "head": (git_dir / "HEAD").read_text(),
        "head_commit": git(repo, "rev-parse", "-q", "--verify", "HEAD", check=False),
        "stash": git(repo, "stash", "list"),
        "worktree_files": sorted(p.relative_to(repo).as_posix() for p in repo.rglob("*")
                                 if ".git" not in p.relative_to(repo).parts),
    }


def run_ids(repo: Path, branch: str = "experiments") -> list[str]:
    """Ids of the runs on the branch, read with plain git."""
    names = git(repo, "ls-tree", "-r", "--name-only", branch).splitlines()
    return sorted(n.split("/")[2] for n in names if n.endswith("/run.yaml"))


def wait_for_gc(repo: Path) -> None:
    """Wait for the background `git gc --auto` the end of a run may have started: call it
    before asserting on the repository itself (git fsck, count-objects, files under .git)."""
    opened = open_repository(repo)
    try:
        assert opened.wait_for_gc(timeout=120), f"a background git gc in {repo} still runs"
    finally:
        opened.close()


def python_child(code: str, cwd: Path, **kwargs: object) -> subprocess.Popen[str]:
    """Start a Python child process running ``code`` in ``cwd`` with this environment."""
    return subprocess.Popen([sys.executable, "-c", code], cwd=cwd, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def isolated_git(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """Each test sees a global git config of its own and a clean tracking state."""
    home = tmp_path_factory.mktemp("home")
    config = home / ".gitconfig"
    config.write_text("[user]\n\tname = Ada Tester\n\temail = ada@example.com\n"
                      "[init]\n\tdefaultBranch = main\n")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(config))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for name in list(os.environ):
        if name.startswith("GIT_") and name not in ("GIT_CONFIG_GLOBAL", "GIT_CONFIG_NOSYSTEM"):
            monkeypatch.delenv(name)
    monkeypatch.delenv("LABBOOK_REPO", raising=False)
    tracking.reset()
    yield
    for run in tracking._state.live_runs():
        run.end()
    tracking.reset()


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A git repository with one commit, as the current directory and labbook's repository."""
    path = tmp_path / "repo"
    path.mkdir()
    git(path, "init", "-q")
    (path / "train.py").write_text("print('training')\n")
    git(path, "add", "train.py")
    git(path, "commit", "-q", "-m", "first")
    monkeypatch.chdir(path)
    labbook.set_repository(path)
    return path
