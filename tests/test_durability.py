"""Every write survives the machine: a full disk, a concurrent `git gc --prune=now`,
a background `git gc --auto`, SIGKILL, read-only and foreign-owned repositories."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

import labbook
from conftest import git, python_child
from labbook import tracking
from labbook.cli import cli
from labbook.errors import AccessDenied, StorageError

# -- helpers ------------------------------------------------------------------------------


@pytest.fixture
def small_disk() -> Iterator[Callable[[Path, str], Path]]:
    """Mount a small tmpfs at a folder (root only; the test is skipped elsewhere)."""
    mounted: list[Path] = []

    def mount(folder: Path, size: str) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs",
                               str(folder)], capture_output=True, text=True)
        if proc.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
        mounted.append(folder)
        return folder

    yield mount
    for folder in reversed(mounted):
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def fill(folder: Path) -> Path:
    """Fill the file system holding ``folder`` to the last byte; delete the file to free it."""
    filler = folder / "filler"
    with open(filler, "wb", buffering=0) as handle:
        for size in (1 << 16, 4096, 256, 16, 1):
            try:
                while True:
                    handle.write(b"\0" * size)
            except OSError:
                pass
    return filler


def wait_for_git_in(folder: Path, timeout: float = 120) -> None:
    """Wait until no process works in ``folder`` (a background `git gc --auto` detaches,
    and keeps the working directory of the process that started it)."""
    target = str(folder.resolve())
    deadline = time.monotonic() + timeout
    while True:
        busy = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                cwd = os.readlink(f"/proc/{pid}/cwd")
            except OSError:
                continue
            if int(pid) != os.getpid() and (cwd == target or cwd.startswith(target + "/")):
                busy.append(pid)
        if not busy:
            return
        assert time.monotonic() < deadline, f"processes still running in {target}: {busy}"
        time.sleep(0.05)


def fsck(repo: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "-C", str(repo), "fsck", "--strict", "--no-dangling"],
                          capture_output=True, text=True)


def age_loose_objects(repo: Path, seconds: float) -> None:
    """Date every loose object ``seconds`` back, as if written that long ago."""
    when = time.time() - seconds
    for path in (repo / ".git" / "objects").glob("[0-9a-f][0-9a-f]/*"):
        os.utime(path, (when, when))


def loose_temporary_files(repo: Path) -> list[str]:
    return [p.name for p in (repo / ".git" / "objects").glob("*/*") if not p.name[0].isalnum()
            or p.name.startswith("tmp")]


# -- a full disk ----------------------------------------------------------------------------

LOGGER = """
import json, sys, labbook
run = labbook.start_run(name="full disk")
print(run.id, flush=True)
for line in sys.stdin:
    first, last = map(int, line.split())
    ok, failed = [], []
    for step in range(first, last):
        try:
            labbook.log_metric("loss", step / 8, step=step)
            ok.append(step)
        except Exception as exc:
            failed.append([step, type(exc).__name__, str(exc)])
    print(json.dumps([ok, failed]), flush=True)
"""


def _ask(child: subprocess.Popen[str], first: int, last: int) -> tuple[list[int], list[list]]:
    assert child.stdin is not None and child.stdout is not None
    child.stdin.write(f"{first} {last}\n")
    child.stdin.flush()
    line = child.stdout.readline()
    assert line, child.stderr.read() if child.stderr else ""
    ok, failed = json.loads(line)
    return ok, failed


def test_a_full_journal_disk_refuses_clearly_and_loses_nothing_logged_once_space_is_back(
        repo: Path, small_disk):
    disk = small_disk(repo / ".git" / "labbook" / "journal", "64k")
    child = python_child(LOGGER, repo, stdin=subprocess.PIPE)
    assert child.stdout is not None
    run_id = child.stdout.readline().strip()
    assert run_id, child.stderr.read() if child.stderr else ""
    try:
        before, refused = _ask(child, 0, 50)
        assert before == list(range(50)) and refused == []
        filler = fill(disk)
        during, refused = _ask(child, 50, 400)
        assert refused, "the disk was full, yet every value was accepted"
        for step, kind, message in refused:
            assert kind == "StorageError"
            assert f"metric 'loss' step {step}" in message and "no space left on device" in message
            assert "\n" not in message
        filler.unlink()
        after, refused = _ask(child, 400, 450)
        assert after == list(range(400, 450)) and refused == []
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    labbook.recover()
    history = labbook.get_run(run_id).metric_history("loss")
    logged = before + during + after
    assert [step for step, _, _ in history] == logged
    assert [value for _, _, value in history] == [step / 8 for step in logged]


def test_a_full_disk_under_the_whole_repository_fails_cleanly_and_recovers(
        tmp_path: Path, small_disk, monkeypatch: pytest.MonkeyPatch):
    disk = small_disk(tmp_path / "disk", "2m")
    repo = disk / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / "train.py").write_text("print('training')\n")
    git(repo, "add", "train.py")
    git(repo, "commit", "-q", "-m", "first")
    monkeypatch.chdir(repo)
    labbook.set_repository(repo)
    run = labbook.start_run(name="crowded")
    logged = []
    for step in range(20):
        labbook.log_metric("acc", step / 20, step=step)
        logged.append(step)
    filler = fill(disk)
    with pytest.raises(StorageError, match="no space left on device") as caught:
        for _ in range(200):  # the journal's last page may still hold a note or two
            labbook.note("a note on a full disk " * 20)
    assert "\n" not in str(caught.value)
    refused = 0
    for step in range(20, 300):
        try:
            labbook.log_metric("acc", step / 20, step=step)
            logged.append(step)
        except StorageError as exc:
            assert f"metric 'acc' step {step}" in str(exc)
            refused += 1
    assert refused
    filler.unlink()
    for step in range(300, 320):
        labbook.log_metric("acc", step / 20, step=step)
        logged.append(step)
    run.end()
    assert [s for s, _, _ in labbook.get_run(run.id).metric_history("acc")] == logged
    assert labbook.get_run(run.id).status == "FINISHED"
    assert fsck(repo).returncode == 0, fsck(repo).stderr
    assert loose_temporary_files(repo) == []


# -- git gc while a run is live -------------------------------------------------------------

def test_git_gc_prune_now_during_a_run_keeps_its_artifact(repo: Path, tmp_path: Path):
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(remote, "config", "receive.fsckObjects", "true")
    git(repo, "remote", "add", "origin", str(remote))
    (repo / "weights.txt").write_text("0.25 0.5 0.125\n")
    with labbook.start_run(name="gc meanwhile") as run:
        labbook.log_artifact("weights.txt")
        labbook.log_metric("loss", 0.5)
        age_loose_objects(repo, 3600)  # an hour of training later…
        git(repo, "gc", "--prune=now", "--quiet")  # …a user tidies up while the run trains
        labbook.log_metric("loss", 0.25)
    assert fsck(repo).returncode == 0, fsck(repo).stderr
    assert git(repo, "for-each-ref", "refs/labbook/") == ""  # the run's pending ref is gone
    assert tracking.list_artifacts(run.id)[0].verified == "ok"
    restored = tracking.get_artifacts(run.id, "weights.txt", str(tmp_path / "out"))
    assert restored[0].read_text() == "0.25 0.5 0.125\n"
    tracking.push()
    assert git(remote, "rev-parse", "experiments") == git(repo, "rev-parse", "experiments")


KILLED_WITH_ARTIFACT = """
import labbook, sys
run = labbook.start_run(name="killed with artifact")
open("model.bin", "wb").write(bytes(range(256)) * 40)
labbook.log_artifact("model.bin")
labbook.log_metric("loss", 0.75)
print(run.id, flush=True)
sys.stdin.readline()  # SIGKILL arrives here
"""


def test_a_killed_runs_artifact_survives_git_gc_prune_now_until_it_is_recovered(repo: Path,
                                                                                 tmp_path: Path):
    child = python_child(KILLED_WITH_ARTIFACT, repo, stdin=subprocess.PIPE)
    assert child.stdout is not None
    run_id = child.stdout.readline().strip()
    assert run_id, child.stderr.read() if child.stderr else ""
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    age_loose_objects(repo, 3600)
    git(repo, "gc", "--prune=now", "--quiet")
    [recovered] = labbook.recover()
    assert recovered.id == run_id and recovered.status == "KILLED"
    assert fsck(repo).returncode == 0, fsck(repo).stderr
    restored = tracking.get_artifacts(run_id, "model.bin", str(tmp_path / "out"))
    assert restored[0].read_bytes() == bytes(range(256)) * 40
    assert git(repo, "for-each-ref", "refs/labbook/") == ""


WRITER = """
import sys, labbook
worker = int(sys.argv[1])
for n in range(12):
    with labbook.start_run(name=f"w{worker}-r{n}"):
        for step in range(30):
            labbook.log_metric("loss", worker + step / 100, step=step)
        with open(f"a{worker}.txt", "w") as handle:
            handle.write(f"worker {worker} run {n}\\n")
        labbook.log_artifact(f"a{worker}.txt")
        labbook.note(f"note {n}")
"""


def test_background_gc_and_prune_now_while_logging_leave_no_gc_log_and_a_clean_fsck(repo: Path):
    git(repo, "config", "gc.auto", "1")  # every `git gc --auto` really runs (in the background)
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(w)], cwd=repo,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for w in range(3)]
    gcs = {"auto": 0, "prune": 0}
    while any(w.poll() is None for w in writers):
        kind = "auto" if (gcs["auto"] + gcs["prune"]) % 2 == 0 else "prune"
        args = ["gc", "--auto", "--quiet"] if kind == "auto" else ["gc", "--prune=now", "--quiet"]
        if subprocess.run(["git", *args], cwd=repo, capture_output=True).returncode == 0:
            gcs[kind] += 1
        time.sleep(0.05)
    for writer in writers:
        _, err = writer.communicate(timeout=300)
        assert writer.returncode == 0, err
    wait_for_git_in(repo)  # background gcs (ours and labbook's) are done before we look
    assert gcs["auto"] and gcs["prune"], gcs
    gc_log = repo / ".git" / "gc.log"
    assert not gc_log.exists(), gc_log.read_text()
    assert fsck(repo).returncode == 0, fsck(repo).stderr
    runs = labbook.search_runs()
    assert len(runs) == 36
    for rid in runs["run_id"]:
        run = labbook.get_run(rid)
        assert len(run.metric_history("loss")) == 30 and len(run.notes) == 1
        assert tracking.list_artifacts(rid)[0].verified == "ok"
    assert git(repo, "for-each-ref", "refs/labbook/") == ""


# -- read-only and foreign-owned repositories ------------------------------------------------

NOBODY = 65534


@pytest.fixture
def open_repo() -> Iterator[Path]:
    """A repository under a folder every user may enter (pytest's own tmp is root-only)."""
    base = Path(tempfile.mkdtemp(prefix="labbook-ro-", dir="/tmp"))
    base.chmod(0o755)
    repo = base / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / "train.py").write_text("print('training')\n")
    git(repo, "add", "train.py")
    git(repo, "commit", "-q", "-m", "first")
    yield repo
    subprocess.run(["chown", "-R", f"{os.geteuid()}:{os.getegid()}", str(base)], capture_output=True)
    subprocess.run(["chmod", "-R", "u+w", str(base)], check=True)
    shutil.rmtree(base)


def _as_user(uid: int, work: Callable[[], dict]) -> dict:
    """Run ``work`` in a forked child as ``uid`` (no exec: the interpreter and its modules,
    which may sit under a root-only home, are already loaded) and return what it returned."""
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        os.close(reader)
        code = 0
        try:
            if os.geteuid() != uid:
                os.setgroups([])
                os.setgid(uid)
                os.setuid(uid)
            out = json.dumps(work()).encode()
        except BaseException as exc:  # report anything, so the parent's assertion shows it
            out = json.dumps({"crash": repr(exc)}).encode()
            code = 1
        with os.fdopen(writer, "wb") as pipe:
            pipe.write(out)
        os._exit(code)
    os.close(writer)
    with os.fdopen(reader, "rb") as pipe:
        data = pipe.read()
    os.waitpid(pid, 0)
    return json.loads(data)


def _cli(*args: str) -> dict:
    tracking.reset()
    result = CliRunner().invoke(cli, list(args))
    return {"code": result.exit_code, "output": result.output,
            "exception": None if isinstance(result.exception, SystemExit | None)
            else repr(result.exception)}


def _others_can_read(path: Path) -> bool:
    """Whether a user other than the owner can reach ``path`` (every folder above it o+x)."""
    return all(p.stat().st_mode & 0o001 for p in [path, *path.parents])


@pytest.mark.skipif(not _others_can_read(Path(labbook.__file__).resolve().parent.parent),
                    reason="this checkout sits in a folder other users cannot enter (mktemp -d): "
                           "the other user could not load labbook's templates and lazy modules")
def test_read_commands_work_on_a_read_only_repository_and_writes_say_why_not(
        open_repo: Path, monkeypatch: pytest.MonkeyPatch):
    repo = open_repo
    base = repo.parent
    monkeypatch.chdir(repo)
    labbook.set_repository(repo)
    (repo / "weights.txt").write_text("1 2 3\n")
    with labbook.start_run(name="baseline") as run:
        labbook.log_params({"lr": 0.1})
        labbook.log_metric("loss", 0.5)
        labbook.log_artifact("weights.txt")
        labbook.note("first try")
    for args in (["ls"], ["show", "baseline"], ["site", "build", "-o", str(base / "warm")]):
        assert _cli(*args)["code"] == 0  # the same code paths once, as the owner
    user = os.geteuid() if os.geteuid() != 0 else NOBODY
    config = base / "gitconfig"
    config.write_text("[user]\n\tname = Ro Reader\n\temail = ro@example.com\n")
    config.chmod(0o644)
    out = base / "out"
    out.mkdir()
    if user == NOBODY:
        subprocess.run(["chown", "-R", f"{NOBODY}:{NOBODY}", str(repo), str(out)], check=True)
    subprocess.run(["chmod", "-R", "a-w", str(repo)], check=True)
    tracking.reset()
    before = git(repo, "rev-parse", "experiments") if user != NOBODY else None

    def reader() -> dict:
        os.environ.update({"HOME": str(base), "GIT_CONFIG_GLOBAL": str(config)})
        found = {"ls": _cli("ls"), "show": _cli("show", "baseline"),
                 "site": _cli("site", "build", "-o", str(out / "site")),
                 "note": _cli("note", "baseline", "a second thought")}
        tracking.reset()
        found["rows"] = len(labbook.search_runs())
        try:
            labbook.start_run(name="refused")
            found["start"] = "started"
        except AccessDenied as exc:
            found["start"] = str(exc)
        tracking.reset()
        return found

    found = _as_user(user, reader)
    subprocess.run(["chown", "-R", f"{os.geteuid()}:{os.getegid()}", str(repo)], check=True)
    assert "crash" not in found, found
    assert found["ls"]["code"] == 0 and "baseline" in found["ls"]["output"], found["ls"]
    assert found["show"]["code"] == 0 and "first try" in found["show"]["output"], found["show"]
    assert found["site"]["code"] == 0, found["site"]
    assert (out / "site" / "index.html").exists()
    assert found["rows"] == 1
    note = found["note"]
    assert note["code"] == 1 and note["exception"] is None, note
    assert note["output"].startswith("labbook: error: ") and note["output"].count("\n") == 1
    assert "permission denied" in note["output"] and "write access" in note["output"]
    assert "permission denied" in found["start"]
    assert run.id in git(repo, "ls-tree", "-r", "--name-only", "experiments")
    if before is not None:
        assert git(repo, "rev-parse", "experiments") == before


def test_a_repository_owned_by_another_user_is_refused_with_gits_reason_and_the_fix(
        repo: Path):
    if os.geteuid() != 0:
        pytest.skip("only root can give the repository to another user")
    with labbook.start_run(name="mine"):
        labbook.log_metric("loss", 0.5)
    tracking.reset()
    subprocess.run(["chown", "-R", "12345:12345", str(repo)], check=True)
    proc = subprocess.run([sys.executable, "-m", "labbook", "ls"], cwd=repo, capture_output=True,
                          text=True)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert "dubious ownership" in proc.stderr
    assert f"git config --global --add safe.directory {repo}" in proc.stderr
    labbook.set_repository(repo)
    with pytest.raises(AccessDenied, match="safe.directory"):
        labbook.search_runs()
    git(repo, "config", "--global", "--add", "safe.directory", str(repo))  # the advice works
    tracking.reset()
    labbook.set_repository(repo)
    assert list(labbook.search_runs()["run_name"]) == ["mine"]


# -- SIGKILL in the middle of writes -------------------------------------------------------

BUSY_WRITER = """
import os, sys, labbook
run = labbook.start_run(name="busy")
print(run.id, flush=True)
for step in range(100000):
    labbook.log_metric("loss", step / 3, step=step)
    print(step, flush=True)
    if step % 10 == 0:
        with open("big.bin", "wb") as handle:
            handle.write(os.urandom(300_000))
        labbook.log_artifact("big.bin")
    if step % 25 == 0:
        labbook.note(f"step {step}")
"""


@pytest.mark.parametrize("after", [0.3, 0.7, 1.3])
def test_sigkill_mid_write_leaves_nothing_half_written(repo: Path, after: float):
    child = python_child(BUSY_WRITER, repo)
    assert child.stdout is not None
    run_id = child.stdout.readline().strip()
    assert run_id, child.stderr.read() if child.stderr else ""
    time.sleep(after)
    child.send_signal(signal.SIGKILL)
    acknowledged = [int(line) for line in child.stdout.read().split()]
    child.wait(timeout=30)
    assert acknowledged, "the child logged nothing before it was killed"
    [recovered] = labbook.recover()
    steps = [s for s, _, _ in recovered.metric_history("loss")]
    assert steps[:len(acknowledged)] == acknowledged  # every acknowledged value, in order
    assert len(steps) <= len(acknowledged) + 1  # at most the one being logged when killed
    assert fsck(repo).returncode == 0, fsck(repo).stderr
    for check in tracking.list_artifacts(run_id):
        assert check.verified == "ok", check
    git(repo, "gc", "--prune=now", "--quiet")  # git's own prune takes any temporary file left
    assert loose_temporary_files(repo) == []
    assert not (repo / ".git" / "gc.log").exists()


# -- a partial clone missing blobs -------------------------------------------------------------

def test_a_partial_clone_says_which_object_it_could_not_fetch_and_works_once_it_can(
        repo: Path, tmp_path: Path):
    with labbook.start_run(name="far away"):
        labbook.log_metric("loss", 0.5)
        labbook.note("only in the remote until read")
    git(repo, "config", "uploadpack.allowFilter", "true")
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", "--filter=blob:none", "--no-local", f"file://{repo}", str(clone))
    git(clone, "fetch", "-q", "origin", "experiments:experiments")  # trees only, no blobs
    git(clone, "remote", "set-url", "origin", f"file://{tmp_path}/gone")

    def ls() -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "labbook", "ls"], cwd=clone,
                              capture_output=True, text=True)

    offline = ls()
    assert offline.returncode == 1 and "Traceback" not in offline.stderr, offline.stderr
    assert offline.stderr.count("\n") == 1, offline.stderr
    assert "could not fetch" in offline.stderr and "partial clone" in offline.stderr
    git(clone, "remote", "set-url", "origin", f"file://{repo}")
    online = ls()
    assert online.returncode == 0 and "far away" in online.stdout, online.stderr


def test_an_unreadable_git_folder_is_named_with_the_fix(open_repo: Path):
    repo = open_repo
    user = os.geteuid() if os.geteuid() != 0 else NOBODY
    if user == NOBODY:
        subprocess.run(["chown", "-R", f"{NOBODY}:{NOBODY}", str(repo)], check=True)
    (repo / ".git").chmod(0o000)
    _cli("-C", str(repo), "ls")  # the same code path once, as ourselves
    found = _as_user(user, lambda: {"ls": _cli("-C", str(repo), "ls")})
    (repo / ".git").chmod(0o755)
    output = found["ls"]["output"]
    assert found["ls"]["code"] == 1 and found["ls"]["exception"] is None, found
    assert output.count("\n") == 1 and f"{repo}/.git is not readable by" in output, output
    assert "chmod" in output
