"""`labbook run -- CMD`: real child processes, real signals, real git."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

import labbook
from conftest import git, user_state
from labbook.cli import cli
from labbook.runs import wrapper

ROOT = Path(__file__).resolve().parent.parent


def write_child(repo: Path, body: str, name: str = "child.py") -> Path:
    path = repo / name
    path.write_text("import os, sys, time\nimport labbook\n" + textwrap.dedent(body))
    return path


def labbook_run(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m labbook run ARGS` as a real process in ``repo``."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "labbook", "run", *args], cwd=repo, env=env,
                          capture_output=True, text=True, timeout=60)


def only_run(repo: Path) -> labbook.Run:
    runs = labbook.search_runs(run_view="all")
    assert len(runs) == 1
    return labbook.get_run(runs.run_id[0])


def test_param_values_parse_as_a_user_expects():
    assert wrapper.parse_pairs(["a=3", "b=0.5", "c=true", "d=False", "e=x=y", "f=1e-3", "g="],
                              "param", typed=True) == {
        "a": 3, "b": 0.5, "c": True, "d": False, "e": "x=y", "f": 0.001, "g": ""}
    assert wrapper.env_name("model.lr-x") == "LABBOOK_PARAM_MODEL_LR_X"
    with pytest.raises(labbook.InvalidValue):
        wrapper.parse_pairs(["novalue"], "param", typed=True)


def test_capped_log_keeps_head_and_tail():
    log = wrapper.CappedLog(10)
    for chunk in (b"abcdefgh", b"ijklmnop", b"qrstuvwxyz"):
        log.add(chunk)
    assert log.getvalue() == b"abcde\n[\xe2\x80\xa6 16 bytes skipped \xe2\x80\xa6]\nvwxyz"
    small = wrapper.CappedLog(100)
    small.add(b"hello")
    assert small.getvalue() == b"hello"


def test_a_child_logs_metrics_without_start_run(repo: Path):
    before = user_state(repo)
    write_child(repo, """
        print("params", os.environ["LABBOOK_PARAMS"], os.environ["LABBOOK_PARAM_LR"], flush=True)
        for step, loss in enumerate([0.9, 0.5, 0.25]):
            labbook.log_metric("loss", loss, step=step)
        print("to stderr", file=sys.stderr, flush=True)
    """)
    (repo / "metrics.json").write_text(json.dumps({"acc": 0.75, "f1": 1}))
    proc = labbook_run(repo, "-e", "demo", "-n", "first", "--hypothesis", "it learns", "-p", "lr=0.5",
                       "-p", "epochs=3", "-p", "fast=true", "-t", "stage=dev", "--metrics-file",
                       "metrics.json", "--", sys.executable, "child.py", "--api-key=hunter2")
    assert proc.returncode == 0, proc.stderr
    assert 'params {"lr": 0.5, "epochs": 3, "fast": true} 0.5' in proc.stdout  # teed live
    assert "to stderr" in proc.stderr
    run = only_run(repo)
    assert (run.name, run.status, run.hypothesis) == ("first", "FINISHED", "it learns")
    assert run.record.exit_code == 0 and run.record.error is None
    assert run.params == {"lr": 0.5, "epochs": 3, "fast": True}
    assert run.tags["stage"] == "dev"
    assert run.metrics == {"loss": 0.25, "acc": 0.75, "f1": 1.0}
    assert [v for _, _, v in run.metric_history("loss")] == [0.9, 0.5, 0.25]
    assert run.record.command == [sys.executable, "child.py", "--api-key=***"]
    (log,) = run.artifacts
    assert log.path == "output.log"
    data = git(repo, "show", f"experiments:runs/{run.id[:2]}/{run.id}/artifacts/output.log")
    assert "params" in data and "to stderr" in data
    assert not list((repo / ".git" / "labbook" / "journal").glob("*"))
    (repo / "child.py").unlink()
    (repo / "metrics.json").unlink()
    assert user_state(repo) == before


def test_a_failing_child_fails_the_run_with_its_exit_status(repo: Path):
    write_child(repo, """
        labbook.log_metric("loss", 1.0)
        sys.exit(3)
    """)
    proc = labbook_run(repo, "--metrics-file", "nowhere.json", "--", sys.executable, "child.py")
    assert proc.returncode == 3
    run = only_run(repo)
    assert run.status == "FAILED" and run.record.exit_code == 3
    assert run.record.error == "command exited with status 3"
    assert run.metrics == {"loss": 1.0}
    assert [n.text for n in run.notes] == ["metrics file nowhere.json missing"]


def test_an_exception_in_the_child_detaches_and_the_parent_decides(repo: Path):
    write_child(repo, """
        with labbook.start_run():
            labbook.log_metric("loss", 2.0)
            raise ValueError("boom")
    """)
    proc = labbook_run(repo, "--", sys.executable, "child.py")
    assert proc.returncode == 1 and "ValueError: boom" in proc.stderr
    run = only_run(repo)
    assert (run.status, run.record.exit_code, run.metrics) == ("FAILED", 1, {"loss": 2.0})


def test_a_child_killed_by_sigkill_keeps_what_it_logged(repo: Path):
    write_child(repo, """
        labbook.log_metric("loss", 0.5)
        labbook.log_metric("loss", 0.4)
        os.kill(os.getpid(), 9)
    """)
    proc = labbook_run(repo, "--", sys.executable, "child.py")
    assert proc.returncode == 128 + 9
    run = only_run(repo)
    assert run.status == "KILLED" and run.record.error == "killed by SIGKILL"
    assert run.record.exit_code == 137
    assert [v for _, _, v in run.metric_history("loss")] == [0.5, 0.4]
    assert not list((repo / ".git" / "labbook" / "journal").glob("*.log"))


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_to_labbook_run_is_forwarded_to_the_command(repo: Path, signum: int):
    write_child(repo, """
        labbook.log_metric("loss", 0.7)
        print("ready", flush=True)
        time.sleep(30)
    """)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "labbook", "run", "--", sys.executable, "child.py"],
                            cwd=repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline() == "ready\n"
    proc.send_signal(signum)  # to labbook run only: the child is in its own group
    assert proc.wait(timeout=20) == 128 + signum
    run = only_run(repo)
    assert run.status == "KILLED" and run.record.error == f"killed by {signal.Signals(signum).name}"
    assert run.metrics == {"loss": 0.7}


def test_output_log_is_capped(repo: Path):
    write_child(repo, """
        sys.stdout.write("A" * 5000 + "B" * 5000)
    """)
    result = CliRunner().invoke(cli, ["run", "--log-bytes", "1000", "--", sys.executable, "child.py"])
    assert result.exit_code == 0, result.output
    run = only_run(repo)
    data = git(repo, "show", f"experiments:runs/{run.id[:2]}/{run.id}/artifacts/output.log")
    assert data.startswith("A" * 500) and data.endswith("B" * 500)
    assert "[… 9000 bytes skipped …]" in data


def test_a_missing_command_fails_the_run_and_says_why(repo: Path):
    proc = labbook_run(repo, "--", "nosuchcommand-xyz", "--flag")
    assert proc.returncode == 127
    assert proc.stderr.strip().endswith(
        "FAILED, exit status 127: could not start 'nosuchcommand-xyz': no such command on PATH")
    run = only_run(repo)
    assert run.status == "FAILED"
    assert run.record.error == "could not start 'nosuchcommand-xyz': no such command on PATH"
    (repo / "script.sh").write_text("#!/bin/sh\necho hi\n")
    proc = labbook_run(repo, "--", "./script.sh")
    assert proc.returncode == 127
    assert "could not start './script.sh': permission denied (is it executable? chmod +x)" in proc.stderr


def test_an_exception_keeps_its_full_traceback(repo: Path):
    """The record keeps the last line; the artifact traceback.txt keeps every frame."""
    labbook.set_repository(repo)

    def inner():
        raise ValueError("deep down")

    with pytest.raises(ValueError), labbook.start_run(name="crashes") as run:
        labbook.log_metric("loss", 1.0)
        inner()
    got = labbook.get_run(run.id)
    assert got.status == "FAILED" and got.record.error == "ValueError: deep down"
    assert [a.path for a in got.record.artifacts] == ["traceback.txt"]
    out = CliRunner().invoke(cli, ["get", run.id, "traceback.txt", "-o", str(repo / ".." / "tb.txt")])
    assert out.exit_code == 0, out.output
    text = (repo / ".." / "tb.txt").read_text()
    assert text.startswith("Traceback (most recent call last):")
    assert "in inner" in text and 'raise ValueError("deep down")' in text
    assert text.rstrip().endswith("ValueError: deep down")


def test_an_uncaught_exception_in_a_script_keeps_its_traceback(repo: Path):
    write_child(repo, """
        labbook.start_run(name="uncaught")
        def step():
            raise KeyError("missing column")
        step()
    """)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "child.py"], cwd=repo, env=env, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 1 and "KeyError" in proc.stderr
    run = only_run(repo)
    assert run.status == "FAILED" and run.record.error == "KeyError: 'missing column'"
    assert [a.path for a in run.record.artifacts] == ["traceback.txt"]


def test_run_command_is_a_thin_adapter(repo: Path, monkeypatch: pytest.MonkeyPatch):
    from unittest import mock

    from labbook import cli as cli_module
    outcome = wrapper.Outcome("a" * 32, "n", "FINISHED", 0)
    with mock.patch.object(cli_module.tracking, "run_command", autospec=True,
                           return_value=outcome) as call:
        result = CliRunner().invoke(cli, ["run", "-e", "x", "-p", "a=1", "--", "echo", "-v", "hi"])
    assert result.exit_code == 0
    call.assert_called_once_with(["echo", "-v", "hi"], experiment="x", name=None, hypothesis=None,
                                 params=("a=1",), tags=(), metrics_file=None, log_bytes=1 << 20)


def test_start_run_attaches_only_under_labbook_run(repo: Path, monkeypatch: pytest.MonkeyPatch):
    parent = labbook.start_run("parent")
    parent.detach()
    assert labbook.active_run() is None
    monkeypatch.setenv("LABBOOK_RUN_ID", parent.id)
    with labbook.start_run() as run:
        assert run.id == parent.id and run.attached
        labbook.log_metric("x", 1.0)
    assert labbook.get_run(parent.id).status == "RUNNING"  # detached, not ended
    assert labbook.active_run() is None
    labbook.log_metric("x", 2.0)  # attaches again
    labbook.tracking._end_open_runs("FINISHED", None)  # what atexit does
    again = labbook.get_run(parent.id)
    assert again.status == "RUNNING" and again.metrics == {"x": 2.0}


def run_on_a_terminal(repo: Path, *args: str) -> tuple[subprocess.Popen[bytes], int]:
    """`python -m labbook run ARGS` on a new terminal it owns (a pty): its master end."""
    import fcntl
    import termios

    master, slave = os.openpty()

    def own_the_terminal() -> None:  # in the child, a session leader: make the pty its terminal
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "labbook", "run", *args], cwd=repo, env=env,
                            stdin=slave, stdout=slave, stderr=slave, start_new_session=True,
                            preexec_fn=own_the_terminal)
    os.close(slave)
    return proc, master


def read_until(master: int, text: bytes, seconds: float = 30) -> bytes:
    """What the terminal shows until ``text`` appears (or the time is up)."""
    import select
    import time

    seen = b""
    deadline = time.monotonic() + seconds
    while text not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            break
        try:
            chunk = os.read(master, 4096)
        except OSError:  # the terminal closed: everyone on it exited
            break
        if not chunk:
            break
        seen += chunk
    return seen


def test_a_command_on_a_terminal_can_read_it(repo: Path):
    """input() and breakpoint() in the command read the terminal instead of stopping on SIGTTIN."""
    write_child(repo, """
        answer = input("say something: ")
        labbook.log_metric("length", len(answer))
        print("got", answer, flush=True)
    """)
    proc, master = run_on_a_terminal(repo, "--", sys.executable, "child.py")
    try:
        assert b"say something: " in read_until(master, b"say something: ")
        os.write(master, b"hello\n")
        assert b"got hello" in read_until(master, b"got hello")
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
        os.close(master)
    run = only_run(repo)
    assert run.status == "FINISHED" and run.metrics == {"length": 5}


def test_ctrl_c_on_the_terminal_reaches_the_command_once(repo: Path):
    write_child(repo, """
        import signal
        interrupts = []
        signal.signal(signal.SIGINT, lambda *_: interrupts.append(1))
        print("ready", flush=True)
        deadline = time.time() + 20
        while not interrupts and time.time() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # a second SIGINT, if any, arrives now
        labbook.log_metric("interrupts", len(interrupts))
    """)
    proc, master = run_on_a_terminal(repo, "--", sys.executable, "child.py")
    try:
        assert b"ready" in read_until(master, b"ready")
        os.write(master, b"\x03")  # Ctrl-C: SIGINT to the terminal's foreground group
        assert proc.wait(timeout=30) == 0  # the command handled it and exited 0
    finally:
        proc.kill()
        os.close(master)
    run = only_run(repo)
    assert run.metrics == {"interrupts": 1}
    assert run.status == "KILLED" and run.record.error == "killed by SIGINT"


def test_what_the_script_says_is_applied_to_the_run_and_flags_win(repo: Path):
    write_child(repo, """
        labbook.set_experiment("cifar")
        with labbook.start_run(name="adamw-bs256", hypothesis="AdamW beats SGD at bs 256",
                               tags={"team": "vision", "stage": "sweep"}, description="First try."):
            labbook.log_metric("loss", 0.5)
    """)
    proc = labbook_run(repo, "--", sys.executable, "child.py")
    assert proc.returncode == 0, proc.stderr
    run = only_run(repo)
    assert (run.name, run.record.hypothesis) == ("adamw-bs256", "AdamW beats SGD at bs 256")
    assert labbook.search_runs(run_view="all").experiment.tolist() == ["cifar"]
    assert run.tags["team"] == "vision" and [n.text for n in run.notes] == ["First try."]
    assert run.metrics == {"loss": 0.5} and run.status == "FINISHED"
    assert "wins over" not in proc.stderr


def test_command_line_flags_win_over_the_script_and_say_so(repo: Path):
    write_child(repo, """
        labbook.set_experiment("from-script")
        labbook.start_run(name="script-name", hypothesis="script idea", tags={"stage": "script"})
        labbook.log_metric("loss", 0.1)
    """)
    proc = labbook_run(repo, "-n", "cli-name", "-e", "from-cli", "-t", "stage=cli", "--",
                       sys.executable, "child.py")
    assert proc.returncode == 0, proc.stderr
    run = only_run(repo)
    assert (run.name, run.record.hypothesis, run.tags["stage"]) == ("cli-name", "script idea", "cli")
    assert labbook.search_runs(run_view="all").experiment.tolist() == ["from-cli"]
    for line in ("labbook: the command line's --name 'cli-name' wins over the script's 'script-name'",
                 "labbook: the command line's --experiment wins over the script's 'from-script'",
                 "labbook: the command line's tag stage=cli wins over the script's stage=script"):
        assert line in proc.stderr.splitlines()
