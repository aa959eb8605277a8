"""`labbook init` and automatic init, in the kinds of repositories users have."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml
from click.testing import CliRunner

import labbook
from conftest import git, run_ids, user_state
from labbook.cli import cli


def labbook_cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The real `labbook` command, run as a user would."""
    return subprocess.run([sys.executable, "-m", "labbook", *args], cwd=cwd,
                          capture_output=True, text=True)


def test_init_creates_an_orphan_branch_with_the_format_header(repo: Path):
    before = user_state(repo)
    proc = labbook_cli(repo, "init")
    assert proc.returncode == 0, proc.stderr
    assert "created" in proc.stdout
    assert git(repo, "rev-list", "--count", "experiments").strip() == "1"
    assert git(repo, "rev-list", "--max-parents=0", "experiments").strip() == \
        git(repo, "rev-parse", "experiments").strip()
    header = yaml.safe_load(git(repo, "show", "experiments:labbook.yaml"))
    assert header["format"] == 1 and header["created_by"].startswith("labbook ")
    assert user_state(repo) == before
    again = labbook_cli(repo, "init")
    assert again.returncode == 0 and "exists" in again.stdout


def test_init_in_a_repository_with_no_commits_and_a_dirty_tree(tmp_path: Path):
    path = tmp_path / "fresh"
    path.mkdir()
    git(path, "init", "-q")
    (path / "notes.txt").write_text("draft\n")
    git(path, "add", "notes.txt")
    (path / "notes.txt").write_text("draft, edited\n")
    before = user_state(path)
    assert labbook_cli(path, "init").returncode == 0
    labbook.set_repository(path)
    with labbook.start_run(name="first"):
        labbook.log_metric("loss", 1.0)
    assert user_state(path) == before
    assert len(run_ids(path)) == 1


def test_first_run_initialises_the_branch_automatically(repo: Path):
    with labbook.start_run():
        pass
    subjects = git(repo, "log", "--format=%s", "--reverse", "experiments").splitlines()
    assert subjects[0] == "labbook: start the notebook"


def test_init_from_a_subdirectory_and_a_linked_worktree(repo: Path, tmp_path: Path):
    sub = repo / "src" / "pkg"
    sub.mkdir(parents=True)
    assert labbook_cli(sub, "init").returncode == 0
    worktree = tmp_path / "wt"
    git(repo, "worktree", "add", "-q", str(worktree), "-b", "feature")
    before = user_state(worktree)
    labbook.set_repository(worktree)
    with labbook.start_run(name="from-worktree") as run:
        labbook.log_metric("loss", 0.3)
    assert user_state(worktree) == before
    assert run_ids(repo) == [run.id]  # the main checkout sees the same branch
    assert labbook.get_run(run.id).record.code.branch == "feature"


def test_outside_a_repository_fails_with_one_clear_line(tmp_path: Path):
    proc = labbook_cli(tmp_path, "init")
    assert proc.returncode == 1
    assert proc.stderr.strip().count("\n") == 0
    assert proc.stderr.startswith("labbook: error: not a git repository")
    assert "Traceback" not in proc.stderr


def test_branch_name_comes_from_git_config(repo: Path):
    git(repo, "config", "labbook.branch", "notebook")
    labbook.set_repository(repo)
    with labbook.start_run() as run:
        pass
    assert run_ids(repo, "notebook") == [run.id]
    assert git(repo, "branch", "--list", "experiments").strip() == ""


def test_bad_setting_is_named_in_the_error(repo: Path):
    git(repo, "config", "labbook.inlineArtifactBytes", "lots")
    result = CliRunner().invoke(cli, ["-C", str(repo), "init"])
    assert result.exit_code == 1
    assert "labbook.inlineartifactbytes = 'lots' is not a whole number" in result.output


def test_cli_help_lists_commands():
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    assert "init" in result.output and "recover" in result.output
