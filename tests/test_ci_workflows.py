"""The documented CI workflows (docs/ci/): valid against their schemas, and their commands build
the journal from a clone of a real bare remote as the runner's checkout leaves it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import labbook
from conftest import git

DOCS = Path(__file__).parent.parent / "docs" / "ci"
GITHUB, GITLAB = DOCS / "github-actions.yml", DOCS / "gitlab-ci.yml"
WORKFLOW_PATH = ".github/workflows/labbook-journal.yml"


def _labbook(cwd: Path, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "labbook", *args], cwd=cwd, capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _shell(lines: list[str], cwd: Path) -> None:
    """Run a job's shell lines as a runner does (bash -e), with this labbook first on PATH."""
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    done = subprocess.run(["bash", "-e", "-c", "\n".join(lines)], cwd=cwd, env=env, capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0, done.stderr


@pytest.fixture
def team(repo: Path, tmp_path: Path) -> tuple[Path, list[str]]:
    """A bare remote whose experiments branch has two runs and the workflow file committed on it."""
    remote = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(repo, "remote", "add", "origin", str(remote))
    ids = []
    with labbook.start_run("baseline") as run:
        labbook.log_metric("val_loss", 0.5)
    ids.append(run.id)
    _labbook(repo, "push")
    setup = tmp_path / "setup"  # the documented one-time setup: the workflow goes on the branch
    git(tmp_path, "clone", "-q", "--branch", "experiments", str(remote), str(setup))
    (setup / WORKFLOW_PATH).parent.mkdir(parents=True)
    shutil.copy(GITHUB, setup / WORKFLOW_PATH)
    shutil.copy(GITLAB, setup / ".gitlab-ci.yml")
    git(setup, "add", ".github", ".gitlab-ci.yml")
    git(setup, "commit", "-qm", "CI: build the labbook journal")
    git(setup, "push", "-q", "origin", "experiments")
    with labbook.start_run("lower-lr") as run:  # a teammate's run, pushed after the setup
        labbook.log_metric("val_loss", 0.4)
    ids.append(run.id)
    _labbook(repo, "sync")
    return remote, ids


def _built(site: Path, ids: list[str]) -> None:
    from labbook.site.context import run_page

    assert (site / "index.html").is_file()
    assert all((site / run_page(rid)).is_file() for rid in ids)
    assert not list(site.glob(".labbook-*"))  # only pages and assets are published


@pytest.mark.parametrize(("schema", "path"), [("vendor.github-workflows", GITHUB),
                                              ("vendor.gitlab-ci", GITLAB)])
def test_the_workflows_match_their_schemas(schema: str, path: Path):
    checker = shutil.which("check-jsonschema", path=str(Path(sys.executable).parent)) \
        or shutil.which("check-jsonschema")
    if checker is None:
        pytest.skip("check-jsonschema is not installed (pip install check-jsonschema)")
    done = subprocess.run([checker, "--builtin-schema", schema, str(path)], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_labbook_keeps_the_workflow_on_the_branch_through_pull_and_push(team, tmp_path: Path):
    remote, _ = team
    files = git(tmp_path, "--git-dir", str(remote), "ls-tree", "-r", "--name-only", "experiments")
    assert WORKFLOW_PATH in files.split() and ".gitlab-ci.yml" in files.split()


def test_the_github_job_builds_the_journal_in_a_checkout_of_the_pushed_branch(team, tmp_path: Path):
    remote, ids = team
    workflow = yaml.safe_load(GITHUB.read_text())
    assert workflow[True]["push"]["branches"] == ["experiments"]  # YAML 1.1 reads `on:` as True
    steps = workflow["jobs"]["build"]["steps"]
    assert steps[0]["with"] == {"ref": "experiments", "fetch-depth": 0}
    assert steps[-1]["uses"].startswith("actions/upload-pages-artifact")
    assert steps[-1]["with"]["path"] == "_site"
    runner = tmp_path / "runner"  # what actions/checkout leaves: the branch checked out, full history
    git(tmp_path, "clone", "-q", "--branch", "experiments", str(remote), str(runner))
    commands = [s["run"] for s in steps if "run" in s and "pip install" not in s["run"]]
    _shell(commands, runner)
    _built(runner / "_site", ids)


def test_the_gitlab_job_builds_the_journal_from_a_detached_head(team, tmp_path: Path):
    remote, ids = team
    job = yaml.safe_load(GITLAB.read_text())["pages"]
    assert job["rules"] == [{"if": '$CI_COMMIT_BRANCH == "experiments"'}]
    assert job["artifacts"]["paths"] == ["public"]
    runner = tmp_path / "runner"  # what GitLab's runner leaves: a detached HEAD at the pushed commit
    git(tmp_path, "clone", "-q", "--no-checkout", str(remote), str(runner))
    git(runner, "checkout", "-q", "--detach", "origin/experiments")
    git(runner, "branch", "-q", "-D", "main", check=False)
    _shell(job["script"], runner)
    _built(runner / "public", ids)
