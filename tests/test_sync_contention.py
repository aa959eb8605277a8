"""Sharing under contention, and remotes that try to be more than a remote.

Eight clones push after every run against one real bare remote; `labbook push`
keeps trying for its time budget (labbook.pushTimeout) rather than a fixed
number of attempts. git never runs the `ext::` transport or reads a remote name
as an option, whatever the user's git config says.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import labbook
from conftest import git, run_ids
from labbook import tracking
from labbook.cli import cli
from labbook.errors import SyncError


@pytest.fixture
def bare(tmp_path: Path) -> Path:
    """A bare remote that checks every object it receives and never packs in the background."""
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(remote, "config", "receive.fsckObjects", "true")
    git(remote, "config", "gc.auto", "0")  # gc is not the subject: nothing races the fsck below
    return remote


def clone(bare: Path, path: Path) -> Path:
    git(path.parent, "clone", "-q", f"file://{bare}", str(path))
    git(path, "config", "gc.auto", "0")
    return path


PUSH_AFTER_EVERY_RUN = """
import sys, labbook
from labbook import tracking
labbook.set_repository(sys.argv[1])
worker = int(sys.argv[2])
for n in range(10):
    with labbook.start_run(name=f"w{worker}-r{n}"):
        labbook.log_metric("loss", n, step=0)
    result = tracking.push()
    print(result.attempts, f"{result.seconds:.2f}", flush=True)
"""


def test_eight_clones_pushing_after_every_run_all_get_through(tmp_path: Path, bare: Path):
    """Issue 13: four clones pushing after every run gave up after 8 attempts (about 9 s).

    Here all eight clones and the remote share one machine's cores, so each push's window
    (fetch, merge, push) is many times a real team's: on 2 busy cores the unluckiest push
    took 23-49 s of the default 60 s budget. The budget is doubled so that the test checks
    the policy (retry by time, growing random pauses), not how busy the machine is."""
    clones = [clone(bare, tmp_path / f"c{w}") for w in range(8)]
    for path in clones:
        git(path, "config", "labbook.pushTimeoutSeconds", "120")
    started = time.monotonic()
    procs = [subprocess.Popen([sys.executable, "-c", PUSH_AFTER_EVERY_RUN, str(c), str(w)],
                              text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path)
             for w, c in enumerate(clones)]
    outputs = [proc.communicate(timeout=300) for proc in procs]
    took = time.monotonic() - started
    failed = [err.strip().splitlines()[-1:] for proc, (_, err) in zip(procs, outputs, strict=True)
              if proc.returncode != 0]
    assert failed == [], failed
    assert len(run_ids(bare)) == 80
    reports = [line.split() for out, _ in outputs for line in out.splitlines()]
    assert len(reports) == 80
    attempts = sorted(int(a) for a, _ in reports)
    print(f"8 clones x 10 runs, push after each: {took:.1f} s; attempts per push: "
          f"median {attempts[40]}, max {attempts[-1]}; longest push "
          f"{max(float(s) for _, s in reports):.1f} s")
    fsck = subprocess.run(["git", "-C", str(bare), "fsck", "--strict", "--no-dangling"],
                          capture_output=True, text=True)
    assert fsck.returncode == 0 and "error" not in fsck.stderr, fsck.stderr
    for path in clones:
        assert set(run_ids(path)) <= set(run_ids(bare))


def test_a_push_others_keep_beating_gives_up_at_the_time_budget_and_says_so(tmp_path: Path,
                                                                             bare: Path):
    a, b = clone(bare, tmp_path / "a"), clone(bare, tmp_path / "b")
    git(a, "config", "labbook.pushTimeoutSeconds", "2")
    tracking.reset()
    labbook.set_repository(b)
    with labbook.start_run(name="b1"):
        pass
    tracking.push()
    hook = bare / "hooks" / "update"  # a teammate's push lands just before each of a's
    hook.write_text('#!/bin/sh\nc=$(git commit-tree "$2^{tree}" -p "$2" -m "a teammate\'s push")\n'
                    'git update-ref "$1" "$c" "$2"\n')
    hook.chmod(0o755)
    tracking.reset()
    labbook.set_repository(a)
    with labbook.start_run(name="a1"):
        pass
    started = time.monotonic()
    with pytest.raises(SyncError) as raised:
        tracking.push()
    took = time.monotonic() - started
    message = str(raised.value)
    assert 2 <= took < 6, took
    assert "gave up pushing experiments to origin after " in message
    attempts = int(message.split(" after ")[1].split()[0])
    assert attempts >= 3  # growing pauses: 0.1, 0.2, 0.4 s bounds... within 2 s
    assert "labbook.pushTimeoutSeconds is 2" in message and "your runs are safe" in message
    assert len(run_ids(a)) == 2  # merged with b's run, nothing lost locally
    hook.unlink()  # the teammate's last push is there: merge it, then get through
    assert tracking.push().lines()[-1].startswith("pushed experiments to origin after 2 attempts in ")
    assert git(bare, "rev-parse", "experiments") == git(a, "rev-parse", "experiments")


# -- remotes are remotes, never commands or options -------------------------------------------
def test_an_ext_remote_never_runs_its_command_whatever_the_user_config_says(
        tmp_path: Path, bare: Path, monkeypatch: pytest.MonkeyPatch):
    a = clone(bare, tmp_path / "a")
    tracking.reset()
    labbook.set_repository(a)
    with labbook.start_run(name="r1"):
        pass
    marker = tmp_path / "pwned"
    evil = f"ext::sh -c touch% {marker}"
    git(a, "config", "--global", "protocol.ext.allow", "always")
    git(a, "config", "protocol.allow", "always")
    git(a, "remote", "add", "team", evil)
    monkeypatch.setenv("GIT_ALLOW_PROTOCOL", "ext:file")
    control = tmp_path / "control"  # plain git with this config does run it
    git(a, "ls-remote", f"ext::sh -c touch% {control}", check=False)
    assert control.exists()
    for command, remote in [("push", evil), ("pull", evil), ("push", "team"), ("sync", "team")]:
        result = CliRunner().invoke(cli, ["-C", str(a), command, remote])
        assert result.exit_code == 1, result.output
        assert result.output.startswith("labbook: error: could not "), result.output
        assert not marker.exists(), (command, remote)
    assert "transport 'ext' not allowed" in result.output


def test_a_remote_starting_with_a_dash_is_a_remote_not_an_option(tmp_path: Path, bare: Path,
                                                                  monkeypatch: pytest.MonkeyPatch):
    a = clone(bare, tmp_path / "a")
    tracking.reset()
    labbook.set_repository(a)
    with labbook.start_run(name="r1"):
        pass
    git(a, "remote", "add", "--", "-team", f"file://{bare}")  # git allows this name
    result = CliRunner().invoke(cli, ["-C", str(a), "push", "--", "-team"])
    assert result.exit_code == 0, result.output
    assert result.output == "pushed experiments to -team (a new branch there)\n"
    assert run_ids(bare) == run_ids(a)
    pull = CliRunner().invoke(cli, ["-C", str(a), "pull", "--", "-team"])
    assert pull.output == "pulled from -team: already up to date\n"
    assert git(a, "rev-parse", "refs/remotes/-team/experiments") == git(a, "rev-parse", "experiments")
    monkeypatch.chdir(tmp_path)
    marker = tmp_path / "pwned"
    for option in (f"--receive-pack=touch {marker}", f"--upload-pack=touch {marker}", "--mirror"):
        for command in ("push", "pull", "sync"):
            result = CliRunner().invoke(cli, ["-C", str(a), command, "--", option])
            assert result.exit_code == 1
            assert result.output.startswith("labbook: error: could not "), result.output
            assert not marker.exists()
    assert git(bare, "for-each-ref", "--format=%(refname)") == "refs/heads/experiments\n"
