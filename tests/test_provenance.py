"""Provenance: code state, command and environment recorded, secrets left out."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import labbook
from conftest import git
from labbook.runs.provenance import redact_command, strip_credentials


@pytest.mark.parametrize("url, expected", [
    ("https://user:ghp_secret@github.com/org/repo.git", "https://github.com/org/repo.git"),
    ("https://token@gitlab.com/org/repo", "https://gitlab.com/org/repo"),
    ("ssh://git@host:2222/org/repo", "ssh://git@host:2222/org/repo"),
    ("ssh://me:pw@host/org/repo", "ssh://host/org/repo"),
    ("git@github.com:org/repo.git", "git@github.com:org/repo.git"),
])
def test_credentials_are_stripped_from_urls(url: str, expected: str):
    assert strip_credentials(url) == expected


def test_secret_arguments_are_redacted():
    argv = ["train.py", "--api-key", "sk-123", "--password=hunter2", "--lr", "0.1",
            "--hf_token=abc", "--data", "https://u:p@example.com/d.csv"]
    assert redact_command(argv) == ["train.py", "--api-key", "***", "--password=***", "--lr",
                                    "0.1", "--hf_token=***", "--data",
                                    "https://example.com/d.csv"]


def test_run_records_code_command_and_a_shared_environment(repo: Path):
    git(repo, "remote", "add", "origin", "https://bob:tok3n@github.com/lab/repo.git")
    (repo / "train.py").write_text("print('edited, not committed')\n")
    script = ("import labbook\n"
              "for n in range(2):\n"
              "    with labbook.start_run(name=f'r{n}'):\n"
              "        labbook.log_metric('loss', 1.0)\n")
    (repo / "sub").mkdir()
    subprocess.run([sys.executable, "-c", script, "--token", "s3cr3t"], cwd=repo / "sub",
                   check=True)
    runs = [yaml.safe_load(git(repo, "show", f"experiments:{p}"))
            for p in git(repo, "ls-tree", "-r", "--name-only", "experiments").splitlines()
            if p.endswith("run.yaml")]
    assert len(runs) == 2
    first = runs[0]
    assert first["code"]["commit"] == git(repo, "rev-parse", "HEAD").strip()
    assert first["code"]["branch"] == "main"
    assert first["code"]["remote"] == "https://github.com/lab/repo.git"
    assert first["code"]["dirty"] is True and first["code"]["cwd"] == "sub"
    diff = git(repo, "show", f"experiments:{first['code']['diff']}")
    assert "+print('edited, not committed')" in diff
    assert first["command"][-2:] == ["--token", "***"]
    assert "s3cr3t" not in git(repo, "log", "-p", "experiments")
    env_files = git(repo, "ls-tree", "--name-only", "experiments", "environments/").split()
    assert len(env_files) == 1
    assert runs[0]["environment"]["packages"] == runs[1]["environment"]["packages"] == env_files[0]
    packages = yaml.safe_load(git(repo, "show", f"experiments:{env_files[0]}"))["packages"]
    assert "pyyaml" in packages
    assert first["user"] == "Ada Tester" and first["environment"]["python"].count(".") == 2


def test_clean_tree_has_no_diff(repo: Path):
    with labbook.start_run() as run:
        pass
    assert run.record.code.dirty is False and run.record.code.diff is None
