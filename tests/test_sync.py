"""Sharing through git: push, pull and sync against real bare remotes (file:// and git://)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from unittest import mock

import pytest
import yaml
from click.testing import CliRunner

import labbook
from conftest import git, run_ids, user_state
from labbook import cli as cli_module
from labbook import tracking
from labbook.cli import cli
from labbook.errors import SyncError


# -- remotes and clones ------------------------------------------------------------------
@pytest.fixture
def bare(tmp_path: Path) -> Path:
    """A bare remote that checks every object it receives, holding a `main` with two commits.
    It never packs in the background after a push (gc.auto 0): fsck below must not race it."""
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(remote, "config", "receive.fsckObjects", "true")
    git(remote, "config", "gc.auto", "0")
    seed = tmp_path / "seed"
    git(tmp_path, "init", "-q", str(seed))
    for n in range(2):
        (seed / "train.py").write_text(f"print({n})\n")
        git(seed, "add", "train.py")
        git(seed, "commit", "-q", "-m", f"code {n}")
    git(seed, "push", "-q", str(remote), "main")
    return remote


@pytest.fixture
def daemon(tmp_path: Path, bare: Path):
    """`git daemon` serving tmp_path on 127.0.0.1 (pushes allowed); yields the URL of `bare`."""
    if subprocess.run(["git", "daemon", "--help"], capture_output=True).returncode != 0:
        pytest.skip("git daemon is not installed")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen(["git", "daemon", "--reuseaddr", "--listen=127.0.0.1", f"--port={port}",
                             "--export-all", "--enable=receive-pack", f"--base-path={tmp_path}",
                             str(tmp_path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    pytest.skip("git daemon did not start")
                time.sleep(0.05)
        yield f"git://127.0.0.1:{port}/{bare.name}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def clone(url: str, path: Path, *options: str) -> Path:
    git(path.parent, "clone", "-q", *options, url, str(path))
    return path


def use(path: Path) -> None:
    """Make ``path`` the repository labbook works in (as a fresh process would)."""
    tracking.reset()
    labbook.set_repository(path)


def log_runs(path: Path, *names: str) -> list[str]:
    use(path)
    ids = []
    for name in names:
        with labbook.start_run(name=name, hypothesis=f"{name} helps") as run:
            labbook.log_params({"name": name})
            labbook.log_metric("loss", 0.5, step=0)
        ids.append(run.id)
    return ids


def tip(path: Path) -> str:
    return git(path, "rev-parse", "-q", "--verify", "refs/heads/experiments", check=False).strip()


def assert_fsck_clean(path: Path) -> None:
    proc = subprocess.run(["git", "-C", str(path), "fsck", "--strict", "--no-dangling"],
                          capture_output=True, text=True)
    assert proc.returncode == 0 and "error" not in proc.stderr, proc.stderr


# -- two teammates ------------------------------------------------------------------------
@pytest.mark.parametrize("transport", ["file", "git"])
def test_two_clones_push_and_pull_both_ways(tmp_path: Path, bare: Path, transport: str,
                                            request: pytest.FixtureRequest):
    url = request.getfixturevalue("daemon") if transport == "git" else f"file://{bare}"
    a, b = clone(url, tmp_path / "a"), clone(url, tmp_path / "b")
    git(a, "config", "user.name", "Ada")
    git(b, "config", "user.name", "Bob")
    before = {a: user_state(a), b: user_state(b)}
    ids = log_runs(a, "a1", "a2")
    assert tracking.push().lines() == ["pushed experiments to origin (a new branch there)"]
    ids += log_runs(b, "b1", "b2")  # b started its own branch: b was cloned before a pushed
    lines = tracking.push().lines()
    assert lines[0] == "pulled from origin: merged, 2 new runs, 1 reconciled (unrelated histories)"
    assert lines[-1].startswith("pushed experiments to origin after 2 attempts in ")  # a pushed first
    assert lines[-1].endswith(" s (others pushed first)")
    use(a)
    assert tracking.pull().lines() == ["pulled from origin: fast-forward, 2 new runs"]
    assert tracking.sync().lines() == ["pulled from origin: already up to date", "origin is up to date"]
    assert run_ids(a) == run_ids(b) == run_ids(bare) == sorted(ids)
    assert git(a, "rev-list", "--parents", "-1", "experiments").count(" ") == 2  # a merge commit
    assert before == {a: user_state(a), b: user_state(b)}
    assert_fsck_clean(bare)


def test_a_clone_made_after_the_first_push_starts_from_the_remote_branch(tmp_path: Path, bare: Path):
    a = clone(f"file://{bare}", tmp_path / "a")
    log_runs(a, "a1")
    tracking.push()
    b = clone(f"file://{bare}", tmp_path / "b")
    log_runs(b, "b1")
    assert tracking.push().lines() == ["pushed experiments to origin"]  # a fast-forward
    assert git(b, "rev-list", "--merges", "--count", "experiments").strip() == "0"


PUSHER = """
import sys, labbook
from labbook import tracking
labbook.set_repository(sys.argv[1])
worker = int(sys.argv[2])
for n in range(25):
    with labbook.start_run(name=f"w{worker}-r{n}"):
        labbook.log_metric("loss", n, step=0)
    if n in (12, 24):  # all four push at about the same moments: most pushes are rejected first
        tracking.push()
"""


def test_four_clones_pushing_25_runs_each_at_once_lose_nothing(tmp_path: Path, bare: Path,
                                                               daemon: str):
    clones = [clone(daemon, tmp_path / f"c{w}") for w in range(4)]
    log_runs(clones[0], "first")
    tracking.push()
    tracking.reset()
    procs = [subprocess.Popen([sys.executable, "-c", PUSHER, str(c), str(w)], text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for w, c in enumerate(clones)]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    assert len(run_ids(bare)) == 101
    assert_fsck_clean(bare)
    for path in clones:
        git(path, "status", "--porcelain")
        assert set(run_ids(path)) <= set(run_ids(bare))


# -- the same run changed on both sides -------------------------------------------------------
@pytest.fixture
def shared_run(tmp_path: Path, bare: Path) -> tuple[Path, Path, str]:
    """Two clones that both have run `shared` (FINISHED, loss at steps 0-2) on one history."""
    a = clone(f"file://{bare}", tmp_path / "a")
    use(a)
    with labbook.start_run(name="shared", hypothesis="more data helps") as run:
        for step in range(3):
            labbook.log_metric("loss", 1.0 - step / 10, step=step, timestamp=1000 + step)
    tracking.push()
    b = clone(f"file://{bare}", tmp_path / "b")
    use(b)
    tracking.pull()
    return a, b, run.id


def test_a_note_and_a_conclusion_made_apart_both_survive(shared_run):
    a, b, rid = shared_run
    use(a)
    with labbook.start_run(run_id=rid):
        labbook.note("the curve flattens at step 2")
    use(b)
    with labbook.start_run(run_id=rid):
        labbook.conclude("supported", "loss fell 20%")
    before = user_state(b)
    tracking.push()
    use(a)
    lines = tracking.push().lines()
    assert lines[0].startswith("pulled from origin: merged, 0 new runs, 1 reconciled")
    run = labbook.get_run(rid)
    assert [n.text for n in run.notes] == ["the curve flattens at step 2"]
    assert run.conclusion.verdict == "supported" and run.status == "FINISHED"
    assert run.record.conflicts == []
    assert user_state(b) == before
    use(b)
    tracking.pull()
    assert labbook.get_run(rid).notes == run.notes
    message = git(b, "log", "-1", "--format=%B", "experiments")
    assert message.startswith("merge origin/experiments: 0 new runs, 1 reconciled")
    assert "run shared (" in message


def test_metric_history_extended_on_both_sides_is_united(shared_run):
    a, b, rid = shared_run
    use(a)
    with labbook.start_run(run_id=rid):
        labbook.log_metric("loss", 0.6, step=3, timestamp=2000)
        labbook.log_metric("acc", 0.9, step=0, timestamp=2001)
    use(b)
    with labbook.start_run(run_id=rid):
        labbook.log_metric("loss", 0.65, step=3, timestamp=2100)
        labbook.log_metric("loss", 0.4, step=4, timestamp=2200)
    tracking.push()
    use(a)
    tracking.sync()
    run = labbook.get_run(rid)
    assert run.metric_history("loss") == [(0, 1000, 1.0), (1, 1001, 0.9), (2, 1002, 0.8),
                                          (3, 2000, 0.6), (3, 2100, 0.65), (4, 2200, 0.4)]
    loss = run.record.metrics["loss"]
    assert (loss.last, loss.step, loss.min, loss.max, loss.count) == (0.4, 4, 0.4, 1.0, 6)
    assert run.metrics == {"loss": 0.4, "acc": 0.9}
    use(b)
    tracking.pull()
    assert labbook.get_run(rid).metric_history("loss") == run.metric_history("loss")


def test_a_param_conflict_keeps_both_values_visible(shared_run):
    a, b, rid = shared_run
    use(a)
    with labbook.start_run(run_id=rid):
        labbook.log_param("seed", 1)
        labbook.set_tag("stage", "mine")
    use(b)
    with labbook.start_run(run_id=rid):
        labbook.log_param("seed", 2)
        labbook.set_tag("stage", "theirs")
    tracking.push()
    theirs_tip = tip(b)
    use(a)
    tracking.push()
    run = labbook.get_run(rid)
    assert run.params["seed"] == 1 and run.tags["stage"] == "mine"
    assert [(c.field, c.value, c.commit) for c in run.record.conflicts] == [
        ("params.seed", 2, theirs_tip), ("tags.stage", "theirs", theirs_tip)]
    shown = CliRunner().invoke(cli, ["show", rid[:8]]).output
    assert "params.seed = 2" in shown
    raw = yaml.safe_load(git(a, "show", f"experiments:runs/{rid[:2]}/{rid}/run.yaml"))
    assert raw["conflicts"][0] == {"field": "params.seed", "value": 2, "commit": theirs_tip}
    use(b)
    tracking.pull()  # a fast-forward: b now sees a's merge, conflicts included
    assert labbook.get_run(rid).record.conflicts == run.record.conflicts


def test_an_edit_is_never_applied_to_a_look_alike_run(shared_run):
    """RELIABILITY rule 6: git's rename detection would move a's note onto the copy."""
    a, b, rid = shared_run
    use(b)
    copy_id = "f" * 32
    store = tracking.repository().store
    old_dir, new_dir = f"runs/{rid[:2]}/{rid}", f"runs/ff/{copy_id}"
    files = {name: git(b, "show", f"experiments:{old_dir}/{name}") for name in ("run.yaml",
                                                                                 "metrics.tsv")}
    files["run.yaml"] = files["run.yaml"].replace(rid, copy_id)
    store.commit({**{f"{old_dir}/{n}": None for n in files},
                  **{f"{new_dir}/{n}": data.encode() for n, data in files.items()}},
                 "replace shared by a copy")
    tracking.push()
    use(a)
    with labbook.start_run(run_id=rid):
        labbook.note("only for the original")
    tracking.pull()
    assert [n.text for n in labbook.get_run(rid).notes] == ["only for the original"]
    assert labbook.get_run(copy_id).notes == []


# -- remotes that say no, or have nothing yet ------------------------------------------------
def test_a_remote_without_the_branch_yet(tmp_path: Path, bare: Path):
    a = clone(f"file://{bare}", tmp_path / "a")
    use(a)
    assert tracking.pull().lines() == ["pulled from origin: origin has no experiments branch yet"]
    assert tracking.push().lines() == ["nothing to push: there is no experiments branch here yet"]
    log_runs(a, "first")
    result = CliRunner().invoke(cli, ["sync"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == ["pulled from origin: origin has no experiments branch yet",
                                          "pushed experiments to origin (a new branch there)"]
    assert git(bare, "rev-parse", "experiments").strip() == tip(a)


def test_a_remote_that_refuses_the_push(tmp_path: Path, bare: Path):
    hook = bare / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'experiments are frozen this week' >&2\nexit 1\n")
    hook.chmod(0o755)
    a = clone(f"file://{bare}", tmp_path / "a")
    log_runs(a, "r1")
    before, state = tip(a), user_state(a)
    result = CliRunner().invoke(cli, ["push"])
    assert result.exit_code == 1
    assert result.output.count("\n") == 1
    assert result.output.startswith("labbook: error: origin refused the push of experiments: "
                                    "pre-receive hook declined")
    assert "experiments are frozen this week" in result.output
    assert tip(a) == before and user_state(a) == state
    assert git(bare, "branch", "--list", "experiments") == ""


def test_a_failed_pull_leaves_the_local_branch_as_it_was(shared_run):
    a, b, rid = shared_run
    use(a)
    with labbook.start_run(run_id=rid):
        labbook.note("mine")
    use(b)
    with labbook.start_run(run_id=rid):
        labbook.note("theirs")
    path = f"runs/{rid[:2]}/{rid}/run.yaml"
    newer = git(b, "show", f"experiments:{path}").replace("format: 1", "format: 2", 1)
    tracking.repository().store.commit({path: newer.encode()}, "a newer labbook wrote this")
    tracking.push()
    use(a)
    before = tip(a)
    with pytest.raises(labbook.FormatError, match="newer than this labbook reads"):
        tracking.pull()
    assert tip(a) == before
    with pytest.raises(SyncError, match="could not fetch experiments from nowhere"):
        tracking.pull("nowhere")
    assert tip(a) == before


# -- histories that do not line up ------------------------------------------------------------
def test_unrelated_histories_are_merged_against_an_empty_base(tmp_path: Path, bare: Path):
    a, b = clone(f"file://{bare}", tmp_path / "a"), clone(f"file://{bare}", tmp_path / "b")
    git(a, "config", "user.name", "Ada")
    git(b, "config", "user.name", "Bob")  # so the two root commits differ
    use(a)
    labbook.set_experiment("study", description="Does A work?")
    ids = log_runs(a, "a1")
    tracking.push()
    use(b)
    labbook.set_experiment("study", description="Does B work?")
    ids += log_runs(b, "b1")
    assert git(b, "merge-base", "experiments", "origin/main", check=False) == ""
    lines = tracking.sync().lines()
    assert lines[0] == "pulled from origin: merged, 1 new run, 2 reconciled (unrelated histories)"
    assert run_ids(b) == sorted(ids)
    message = git(b, "log", "-1", "--format=%B", "experiments")
    assert "share no commit" in message
    assert "experiment study: kept the local description; the other was: 'Does A work?'" in message
    exp = yaml.safe_load(git(b, "show", "experiments:experiments/study.yaml"))
    assert exp["description"] == "Does B work?"
    use(a)
    tracking.pull()
    assert run_ids(a) == sorted(ids)


def test_a_shallow_clone_can_pull_and_push(tmp_path: Path, bare: Path):
    a = clone(f"file://{bare}", tmp_path / "a")
    ids = log_runs(a, "a1", "a2")
    tracking.push()
    s = clone(f"file://{bare}", tmp_path / "shallow", "--depth", "1")
    assert git(s, "rev-parse", "--is-shallow-repository").strip() == "true"
    before = user_state(s)
    use(s)
    assert tracking.pull().lines() == ["pulled from origin: created the local experiments branch, "
                                       "2 new runs"]
    ids += log_runs(s, "s1")
    ids += log_runs(a, "a3")
    tracking.push()
    use(s)
    assert tracking.sync().lines()[-1] == "pushed experiments to origin"
    assert run_ids(bare) == sorted(ids)
    assert git(s, "rev-parse", "--is-shallow-repository").strip() == "true"  # main stays shallow
    assert git(s, "rev-list", "--count", "main").strip() == "1"
    assert user_state(s) == before


def test_a_shallow_experiments_history_is_deepened_before_merging(tmp_path: Path, bare: Path):
    a = clone(f"file://{bare}", tmp_path / "a")
    ids = log_runs(a, "a1", "a2")
    tracking.push()
    s = clone(f"file://{bare}", tmp_path / "shallow", "--depth", "1", "--no-single-branch")
    assert git(s, "rev-list", "--count", "origin/experiments").strip() == "1"
    ids += log_runs(s, "s1")  # starts from the shallow origin/experiments
    ids += log_runs(a, "a3")
    tracking.push()
    use(s)
    lines = tracking.push().lines()
    assert lines[0] == "pulled from origin: merged, 1 new run, 0 reconciled"  # a real merge base
    assert run_ids(bare) == sorted(ids)
    assert_fsck_clean(bare)


# -- set-up and large artifacts -----------------------------------------------------------------
def test_init_adds_the_fetch_refspec_so_plain_git_fetch_brings_the_branch(tmp_path: Path, bare: Path):
    a = clone(f"file://{bare}", tmp_path / "a")
    log_runs(a, "a1")
    tracking.push()
    s = clone(f"file://{bare}", tmp_path / "single", "--single-branch")
    assert CliRunner().invoke(cli, ["-C", str(s), "init"]).exit_code == 0
    specs = git(s, "config", "--get-all", "remote.origin.fetch").split()
    assert specs == ["+refs/heads/main:refs/remotes/origin/main",
                     "+refs/heads/experiments:refs/remotes/origin/experiments"]
    assert CliRunner().invoke(cli, ["-C", str(s), "init"]).exit_code == 0
    assert git(s, "config", "--get-all", "remote.origin.fetch").split() == specs
    git(s, "fetch", "-q")
    assert git(s, "rev-parse", "origin/experiments").strip() == tip(a)


def test_large_artifacts_travel_through_the_remote_artifact_store(tmp_path: Path, bare: Path):
    shared = tmp_path / "share"
    shared.mkdir()
    a, b = clone(f"file://{bare}", tmp_path / "a"), clone(f"file://{bare}", tmp_path / "b")
    for path in (a, b):
        git(path, "config", "labbook.remoteArtifactStore", str(shared))
        git(path, "config", "labbook.inlineArtifactBytes", "16")
    use(a)
    (tmp_path / "model.bin").write_bytes(b"weights " * 100)
    (tmp_path / "tiny.txt").write_bytes(b"small")
    with labbook.start_run(name="big"):
        big = labbook.log_artifact(tmp_path / "model.bin")
        labbook.log_artifact(tmp_path / "tiny.txt")
    assert big.location == "store"
    assert tracking.push().lines() == ["copied 1 artifacts to the remote artifact store",
                                       "pushed experiments to origin (a new branch there)"]
    assert (shared / big.sha256[:2] / big.sha256).read_bytes() == b"weights " * 100
    assert tracking.push().lines() == ["origin is up to date"]  # only missing objects move
    use(b)
    assert tracking.pull().lines()[1] == "copied 1 artifacts from the remote artifact store"
    store = Path(git(b, "rev-parse", "--path-format=absolute", "--git-common-dir").strip())
    assert (store / "labbook" / "artifacts" / big.sha256[:2] / big.sha256).is_file()
    assert tracking.pull().lines() == ["pulled from origin: already up to date"]
    shutil.rmtree(shared)
    with pytest.raises(SyncError, match="is not a folder"):
        tracking.pull()


# -- the commands are thin ---------------------------------------------------------------------
@pytest.mark.parametrize("name", ["push", "pull", "sync"])
def test_sync_commands_are_thin_adapters(name: str):
    result_obj = mock.Mock(lines=mock.Mock(return_value=["done"]))
    with mock.patch.object(cli_module.tracking, name, autospec=True, return_value=result_obj) as fn:
        result = CliRunner().invoke(cli, [name, "upstream"])
    fn.assert_called_once_with("upstream")
    assert result.output == "done\n"
