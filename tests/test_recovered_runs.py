"""Runs whose process was SIGKILLed, folded from their journals: when they ended, and what
a torn journal lost."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import labbook
from conftest import python_child

CHILD = """
import labbook, sys, time
run = labbook.start_run(name="doomed")
for step in range(int(sys.argv[1])):
    labbook.log_metric("loss", 1.0 / (step + 1))
print(run.id, flush=True)
sys.stdin.readline()  # the test kills us while we wait here
"""


def _ms(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000 + 0.5)


def _kill(repo: Path, steps: int, pause: float = 0.0) -> tuple[str, int]:
    """Start a run in a child that logs ``steps`` values, SIGKILL it after ``pause`` seconds;
    the run id and the time of the kill (ms)."""
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(steps)], cwd=repo, text=True,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert child.stdout is not None
    run_id = child.stdout.readline().strip()
    assert run_id, child.stderr.read() if child.stderr else ""
    time.sleep(pause)
    killed = time.time_ns() // 1_000_000
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    return run_id, killed


def _journal(repo: Path, run_id: str) -> Path:
    return repo / ".git" / "labbook" / "journal" / f"{run_id}.log"


def test_a_killed_run_ends_when_its_last_entry_was_written_to_the_millisecond(repo: Path):
    run_id, killed = _kill(repo, 300, pause=1.2)
    (recovered,) = labbook.recover()
    run = labbook.get_run(run_id)
    assert run.status == "KILLED" and recovered.id == run_id
    last_value_at = run.metric_history("loss")[-1][1]  # logged now: its timestamp is its write time
    assert _ms(run.record.end_time) == last_value_at  # not the kill, nor the recovery, nor a whole second
    assert run.record.end_time.endswith("Z") and len(run.record.end_time.split(".")[1]) == 4
    assert run.record.start_time <= run.record.end_time and last_value_at < killed - 1000


def test_a_run_killed_right_after_its_start_never_ends_before_it(repo: Path):
    run_id, killed = _kill(repo, 0)
    journal = _journal(repo, run_id)
    an_hour_ago = time.time() - 3600
    os.utime(journal, (an_hour_ago, an_hour_ago))  # a journal copied back from a backup
    labbook.recover()
    run = labbook.get_run(run_id)
    assert run.status == "KILLED"
    assert run.record.start_time <= run.record.end_time
    assert _ms(run.record.end_time) <= killed
    assert _ms(run.record.end_time) - _ms(run.record.start_time) < 5000


def test_values_logged_with_their_own_timestamps_do_not_set_the_end(repo: Path):
    child = python_child(
        "import labbook, sys\n"
        "run = labbook.start_run(name='imported')\n"
        "labbook.log_metric('loss', 0.5, step=0, timestamp=86_400_000)\n"  # 1970-01-02
        "labbook.log_metrics({'acc': 0.9}, step=1, timestamp=4_102_444_800_000)\n"  # 2100
        "print(run.id, flush=True)\n"
        "sys.stdin.readline()\n", repo, stdin=subprocess.PIPE)
    assert child.stdout is not None
    run_id = child.stdout.readline().strip()
    killed = time.time_ns() // 1_000_000
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    labbook.recover()
    run = labbook.get_run(run_id)
    assert run.metric_history("acc") == [(1, 4_102_444_800_000, 0.9)]
    assert run.record.start_time <= run.record.end_time
    assert _ms(run.record.end_time) <= killed


def test_a_torn_last_entry_is_reported_with_what_was_lost(repo: Path):
    run_id, _ = _kill(repo, 50)
    journal = _journal(repo, run_id)
    intact = journal.stat().st_size
    torn = b'57 0badc0de {"e":"m","k":"loss","v":9.0,"s'  # a write cut short by the kill
    with open(journal, "ab") as handle:
        handle.write(torn)
    proc = subprocess.run([sys.executable, "-m", "labbook", "recover"], cwd=repo, text=True,
                          capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert f"recovered {run_id[:8]} doomed: KILLED, 50 metric values" in proc.stdout
    warning = (f"labbook: run {run_id[:8]} (doomed): its journal ends in a torn last entry "
               f"(a metric value of 'loss', cut short): {len(torn)} bytes at byte {intact}, left out; "
               "the 51 entries before it are recovered")
    assert warning in proc.stderr, proc.stderr
    assert labbook.get_run(run_id).metrics["loss"] == 1.0 / 50


def test_a_corrupt_entry_and_everything_after_it_are_reported(repo: Path, caplog):
    run_id, _ = _kill(repo, 10)
    journal = _journal(repo, run_id)
    lines = journal.read_bytes().splitlines(keepends=True)
    lines[6] = lines[6].replace(b'"v":', b'"v":-', 1)  # a flipped byte: the checksum fails
    journal.write_bytes(b"".join(lines))
    with caplog.at_level("WARNING", logger="labbook"):
        labbook.recover()
    lost = sum(len(line) for line in lines[6:])
    assert (f"its journal ends in 5 entries, from a corrupt one (a metric value of 'loss') to the "
            f"end: {lost} bytes at byte {sum(len(line) for line in lines[:6])}") in caplog.text
    run = labbook.get_run(run_id)
    assert len(run.metric_history("loss")) == 5 and run.status == "KILLED"
