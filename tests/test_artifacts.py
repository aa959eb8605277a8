"""Artifacts: pointers, branch blobs vs the artifact store, and safe names."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest
import yaml

import labbook
from conftest import git


def _record(repo: Path, run_id: str) -> dict:
    return yaml.safe_load(git(repo, "show", f"experiments:runs/{run_id[:2]}/{run_id}/run.yaml"))


def test_small_files_go_on_the_branch_large_ones_to_the_store(repo: Path):
    git(repo, "config", "labbook.inlineArtifactBytes", "1k")
    labbook.set_repository(repo)
    small, large = repo / "small.txt", repo / "large.bin"
    small.write_bytes(b"s" * 1024)
    large.write_bytes(b"L" * 5000)
    with labbook.start_run() as run:
        labbook.log_artifact(small)
        labbook.log_artifact(large, artifact_path="models")
    pointers = {a["path"]: a for a in _record(repo, run.id)["artifacts"]}
    assert pointers["small.txt"] == {"path": "small.txt", "size": 1024, "location": "branch",
                                     "sha256": hashlib.sha256(b"s" * 1024).hexdigest()}
    digest = hashlib.sha256(b"L" * 5000).hexdigest()
    assert pointers["models/large.bin"]["location"] == "store"
    stored = repo / ".git" / "labbook" / "artifacts" / digest[:2] / digest
    assert stored.read_bytes() == b"L" * 5000
    names = git(repo, "ls-tree", "-r", "--name-only", "experiments").splitlines()
    assert f"runs/{run.id[:2]}/{run.id}/artifacts/small.txt" in names
    assert not any(n.endswith("large.bin") for n in names)


def test_artifact_store_can_be_any_folder(repo: Path, tmp_path: Path):
    shared = tmp_path / "shared-store"
    git(repo, "config", "labbook.artifactStore", str(shared))
    git(repo, "config", "labbook.inlineArtifactBytes", "0")
    labbook.set_repository(repo)
    (repo / "w.bin").write_bytes(b"weights")
    with labbook.start_run():
        labbook.log_artifact("w.bin")
    digest = hashlib.sha256(b"weights").hexdigest()
    assert (shared / digest[:2] / digest).read_bytes() == b"weights"


def test_log_artifacts_keeps_relative_paths(repo: Path):
    out = repo / "out"
    (out / "plots").mkdir(parents=True)
    (out / "plots" / "a.png").write_bytes(b"a")
    (out / "metrics.json").write_text("{}")
    with labbook.start_run() as run:
        labbook.log_artifacts(out, artifact_path="eval")
    paths = sorted(a["path"] for a in _record(repo, run.id)["artifacts"])
    assert paths == ["eval/metrics.json", "eval/plots/a.png"]


@pytest.mark.parametrize("bad", ["../escape.txt", "a/../../b", "/etc/passwd", ".git/config",
                                 "x/.GIT/hooks", "git~1", ".git\u200c", "C:\\x"])
def test_unsafe_artifact_paths_are_refused(repo: Path, bad: str):
    (repo / "f.txt").write_text("x")
    with labbook.start_run(), pytest.raises(labbook.InvalidValue):
        labbook.log_artifact("f.txt", artifact_path=bad)


def test_a_link_leaving_the_folder_is_refused(repo: Path, tmp_path: Path):
    secret = tmp_path / "secret.txt"
    secret.write_text("do not publish")
    out = repo / "out"
    out.mkdir()
    (out / "ok.txt").write_text("fine")
    (out / "leak.txt").symlink_to(secret)
    with labbook.start_run() as run, pytest.raises(labbook.ArtifactError, match="link leaving"):
        labbook.log_artifacts(out)
    assert run.record.artifacts == []


def test_branch_passes_a_remote_that_checks_every_object(repo: Path, tmp_path: Path):
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(remote, "config", "receive.fsckObjects", "true")
    (repo / "model.bin").write_bytes(b"m")
    with labbook.start_run(name="shared"):
        labbook.log_artifact("model.bin", artifact_path="ckpt/v1")
        labbook.note("multi\nline\nnote")
    proc = subprocess.run(["git", "-C", str(repo), "push", "-q", str(remote), "experiments"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
