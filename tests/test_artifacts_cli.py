"""`labbook artifacts` and `labbook get`: verified listing and safe, byte-identical restores."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest
from click.testing import CliRunner

import labbook
from conftest import git, user_state
from labbook import tracking
from labbook.cli import cli
from labbook.storage.objectstore import ObjectStore


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


@pytest.fixture
def stored(repo: Path, tmp_path: Path) -> tuple[str, Path, dict[str, bytes]]:
    """A run with two small (branch) artifacts and one large one in an external store folder."""
    store = tmp_path / "store"
    git(repo, "config", "labbook.artifactStore", str(store))
    git(repo, "config", "labbook.inlineArtifactBytes", "100")
    labbook.set_repository(repo)
    files = {"plots/a.txt": b"alpha\n", "plots/sub/b.txt": b"beta\n",
             "model.bin": os.urandom(5000)}
    source = tmp_path / "src"
    for rel, data in files.items():
        (source / rel).parent.mkdir(parents=True, exist_ok=True)
        (source / rel).write_bytes(data)
    with labbook.start_run("arts") as run:
        labbook.log_artifacts(source)
    return run.id, store, files


def test_artifacts_lists_and_verifies(stored, repo: Path):
    rid, store, _ = stored
    code, out = invoke("artifacts", rid[:8])
    assert code == 0
    rows = sorted(line.split("\t") for line in out.splitlines())
    assert rows == [["model.bin", "5000", "store", "ok"], ["plots/a.txt", "6", "branch", "ok"],
                    ["plots/sub/b.txt", "5", "branch", "ok"]]
    (stored_file,) = [p for p in store.rglob("*") if p.is_file()]
    stored_file.write_bytes(b"tampered")
    code, out = invoke("artifacts", rid[:8])
    assert "model.bin\t5000\tstore\tMISMATCH" in out
    stored_file.unlink()
    assert "model.bin\t5000\tstore\tmissing" in invoke("artifacts", rid[:8])[1]


def test_get_restores_byte_identical_and_never_overwrites(stored, repo: Path, tmp_path: Path):
    rid, _, files = stored
    before = user_state(repo)
    out = tmp_path / "out"
    out.mkdir()
    assert invoke("get", rid, "model.bin", "-o", str(out)) == (0, f"{out / 'model.bin'}\n")
    assert (out / "model.bin").read_bytes() == files["model.bin"]
    code, text = invoke("get", rid, "model.bin", "-o", str(out))
    assert code == 1 and "exists; use --force" in text
    assert invoke("get", rid, "model.bin", "-o", str(out / "model.bin"), "--force")[0] == 0
    assert invoke("get", rid, "plots/a.txt", "-o", str(out / "renamed.txt"))[0] == 0
    assert (out / "renamed.txt").read_bytes() == b"alpha\n"
    # a folder prefix keeps the paths below it
    code, text = invoke("get", rid, "plots", "-o", str(out / "p"))
    assert code == 0, text
    assert (out / "p" / "a.txt").read_bytes() == b"alpha\n"
    assert (out / "p" / "sub" / "b.txt").read_bytes() == b"beta\n"
    assert not [p for p in out.rglob("*labbook-tmp*")]
    assert user_state(repo) == before


def test_get_defaults_to_the_current_folder(stored, repo: Path, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch):
    rid, _, _ = stored
    monkeypatch.chdir(tmp_path)
    assert invoke("get", rid, "plots/a.txt") == (0, "a.txt\n")
    assert (tmp_path / "a.txt").read_bytes() == b"alpha\n"


def test_get_refuses_links_and_corrupt_bytes(stored, repo: Path, tmp_path: Path):
    rid, store, _ = stored
    outside = tmp_path / "outside"
    outside.mkdir()
    (tmp_path / "link").symlink_to(outside)
    code, text = invoke("get", rid, "plots/a.txt", "-o", str(tmp_path / "link" / "a.txt"))
    assert code == 1 and "link" in text
    (tmp_path / "dest").mkdir()
    (tmp_path / "dest" / "sub").symlink_to(outside)
    code, text = invoke("get", rid, "plots", "-o", str(tmp_path / "dest"))
    assert code == 1 and "link" in text
    (tmp_path / "file-link").symlink_to(outside / "target")
    code, text = invoke("get", rid, "plots/a.txt", "-o", str(tmp_path / "file-link"))
    assert code == 1 and "link" in text
    assert not list(outside.rglob("*"))
    (stored_file,) = [p for p in store.rglob("*") if p.is_file()]
    stored_file.write_bytes(b"x" * 5000)
    code, text = invoke("get", rid, "model.bin", "-o", str(tmp_path / "m.bin"))
    assert code == 1 and "do not match" in text and not (tmp_path / "m.bin").exists()
    code, text = invoke("get", rid, "nope")
    assert code == 1 and "has no artifact 'nope'" in text


def test_get_command_is_a_thin_adapter():
    with mock.patch.object(tracking, "get_artifacts", autospec=True,
                           return_value=[Path("x/a")]) as call:
        result = CliRunner().invoke(cli, ["get", "r1", "plots", "-o", "x", "--force"])
    call.assert_called_once_with("r1", "plots", "x", True)
    assert result.output == "x/a\n"


def test_an_fsspec_store_holds_large_artifacts(repo: Path, tmp_path: Path):
    fsspec = pytest.importorskip("fsspec")
    git(repo, "config", "labbook.artifactStore", "memory://labbook-test/store")
    git(repo, "config", "labbook.inlineArtifactBytes", "10")
    labbook.set_repository(repo)
    assert isinstance(labbook.tracking.repository().artifact_store, ObjectStore)
    data = os.urandom(3000)
    (tmp_path / "big.bin").write_bytes(data)
    with labbook.start_run("remote") as run:
        pointer = labbook.log_artifact(tmp_path / "big.bin")
    assert pointer.location == "store"
    memory = fsspec.filesystem("memory")
    assert memory.cat(f"/labbook-test/store/{pointer.sha256[:2]}/{pointer.sha256}") == data
    # no sha256 in a memory:// object's metadata: its size is checked, --deep re-hashes it
    assert invoke("artifacts", run.id)[1] == "big.bin\t3000\tstore\tsize ok\n"
    assert invoke("artifacts", "--deep", run.id)[1] == "big.bin\t3000\tstore\tok\n"
    assert invoke("get", run.id, "big.bin", "-o", str(tmp_path / "back.bin"))[0] == 0
    assert (tmp_path / "back.bin").read_bytes() == data
    memory.pipe(f"/labbook-test/store/{pointer.sha256[:2]}/{pointer.sha256}", b"bad")
    assert invoke("artifacts", run.id)[1] == "big.bin\t3000\tstore\tMISMATCH\n"


def test_a_url_store_without_fsspec_names_the_extra(tmp_path: Path):
    code = ("import sys; sys.modules['fsspec'] = None\n"
            "from labbook.storage.artifacts import open_store\n"
            "try:\n    open_store('s3://bucket/x')\n"
            "except Exception as exc:\n    print(exc)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=Path(__file__).parent.parent).stdout
    assert "pip install 'labbook[fsspec]'" in out


def test_restored_files_get_the_users_normal_mode(stored, repo: Path, tmp_path: Path):
    """A restored file is readable as any file the user creates (umask 022 → 0644), not mkstemp's 0600."""
    rid, _, _ = stored
    out = tmp_path / "modes"
    out.mkdir()
    old = os.umask(0o022)
    try:
        assert invoke("get", rid, "model.bin", "-o", str(out))[0] == 0
        assert invoke("get", rid, "plots/a.txt", "-o", str(out))[0] == 0
        os.umask(0o077)
        assert invoke("get", rid, "plots/sub/b.txt", "-o", str(out))[0] == 0
    finally:
        os.umask(old)
    assert (out / "model.bin").stat().st_mode & 0o777 == 0o644
    assert (out / "a.txt").stat().st_mode & 0o777 == 0o644
    assert (out / "b.txt").stat().st_mode & 0o777 == 0o600  # the user's own stricter umask wins
