"""The cold read path: one listing walk by git, records parsed by forked children."""

from __future__ import annotations

import hashlib
import itertools
import logging
import os
import random
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

import labbook
from conftest import git, python_child, run_ids
from labbook import tracking
from labbook.format import record
from labbook.format.record import MetricSummary, RunRecord
from labbook.reading import catalog, forked

RUNS = 300  # enough to fill far more fan-out folders than catalog._WALK_FROM


@pytest.fixture
def many_runs(repo: Path) -> dict[str, RunRecord]:
    """RUNS finished runs committed in one go, each with its own param and metric values."""
    from labbook.tracking import repository
    store = repository()
    store.ensure_experiment("bulk")
    runs = {}
    for i in range(RUNS):
        rid = uuid.UUID(int=random.Random(i).getrandbits(128)).hex
        rec = RunRecord(id=rid, name=f"run-{i}", experiment="bulk", status="FINISHED",
                        start_time=f"2026-01-01T00:{i // 60 % 60:02d}:{i % 60:02d}.000Z",
                        end_time="2026-01-01T01:00:00.000Z", params={"i": i, "kind": f"k{i % 3}"},
                        metrics={"loss": MetricSummary.first(1.0 / (i + 1), 0, 1)})
        runs[rid] = rec
    store.store.commit({record.run_path(rid): record.run_to_yaml(rec) for rid, rec in runs.items()}, "bulk")
    return runs


def cold_search(repo: Path, **kwargs: object):
    """search_runs as a new process with no cache would run it."""
    shutil.rmtree(repo / ".git" / "labbook" / "cache", ignore_errors=True)
    labbook.tracking.reset()
    labbook.set_repository(repo)
    return labbook.search_runs(**kwargs)


def test_cold_read_in_parallel_gives_every_run_as_logged(many_runs, repo: Path, monkeypatch):
    monkeypatch.setattr(forked, "cores", lambda: 2)
    monkeypatch.setattr(catalog, "_PART", 50)
    children = []
    real_fork = os.fork
    monkeypatch.setattr(os, "fork", lambda: children.append(1) or real_fork())
    df = cold_search(repo, order_by=["params.i ASC"])
    assert children, "the records were not parsed in a child process"
    assert list(df["run_name"]) == [f"run-{i}" for i in range(RUNS)]
    assert list(df["params.i"]) == list(range(RUNS))
    assert df["metrics.loss"].tolist() == [1.0 / (i + 1) for i in range(RUNS)]
    assert sorted(df["run_id"]) == run_ids(repo)


def test_parallel_and_serial_reads_agree(many_runs, repo: Path, monkeypatch):
    serial = cold_search(repo, filter_string="params.kind = 'k1'", order_by=["metrics.loss DESC"])
    monkeypatch.setattr(forked, "cores", lambda: 4)
    monkeypatch.setattr(catalog, "_PART", 20)
    parallel = cold_search(repo, filter_string="params.kind = 'k1'", order_by=["metrics.loss DESC"])
    assert len(serial) == RUNS // 3
    assert serial.equals(parallel)


def test_a_corrupt_record_in_a_childs_part_is_skipped_with_one_warning(many_runs, repo: Path,
                                                                       monkeypatch, caplog):
    from labbook.tracking import repository
    bad_id = sorted(many_runs)[-1]  # the last fan-out folder: a child's part, not this process's
    repository().store.commit({record.run_path(bad_id): b"id: [unclosed\n"}, "corrupt")
    monkeypatch.setattr(forked, "cores", lambda: 2)
    monkeypatch.setattr(catalog, "_PART", 50)
    with caplog.at_level(logging.WARNING, logger="labbook"):
        df = cold_search(repo)
    assert len(df) == RUNS - 1 and bad_id not in set(df["run_id"])
    assert len([r for r in caplog.records if bad_id in r.message]) == 1


def test_listing_by_walk_matches_listing_tree_by_tree(many_runs, repo: Path):
    from labbook.tracking import repository
    repo_obj = repository()
    with labbook.start_run(name="with history", experiment="bulk"):
        labbook.log_metric("loss", 0.5, step=0)
        labbook.log_metric("loss", 0.25, step=1)
    snapshot = repo_obj.store.snapshot()
    fanouts = [e for e in snapshot.list("runs") if e.is_tree]
    assert len(fanouts) > catalog._WALK_FROM
    reader = catalog.Catalog(repo_obj)
    walked = reader._walk(snapshot, fanouts)
    assert walked == reader._read_fanouts(fanouts)
    histories = [tsv for listing in walked.values() for _, _, tsv in listing if tsv]
    assert len(histories) == 1


def test_a_child_that_fails_has_its_part_done_here(monkeypatch):
    monkeypatch.setattr(forked, "cores", lambda: 3)
    parent = os.getpid()

    def square_or_die(part):
        if os.getpid() != parent and part[0] >= 20:
            os._exit(3)  # the last child dies without a word
        return [x * x for x in part]

    results = forked.map_parts(square_or_die, list(range(30)), min_part=10)
    assert [x for part in results for x in part] == [x * x for x in range(30)]


def test_small_inputs_are_not_forked(monkeypatch):
    monkeypatch.setattr(forked, "cores", lambda: 4)
    monkeypatch.setattr(os, "fork", lambda: pytest.fail("forked for 10 items"))
    assert forked.map_parts(lambda part: [sum(part)], list(range(10)), min_part=10) == [[45]]


def test_a_forked_child_reads_objects_through_its_own_cat_file(repo: Path, monkeypatch):
    from labbook.tracking import repository
    monkeypatch.setattr(forked, "cores", lambda: 2)
    with labbook.start_run(name="before fork") as run:
        labbook.log_param("a", 1)
    store = repository().store
    path = record.run_path(run.id)
    expected = store.snapshot().read(path)  # the parent's cat-file process is running now
    results = forked.map_parts(lambda part: [store.snapshot().read(path) for _ in part], [0, 1],
                               min_part=1)
    assert results == [[expected], [expected]]
    assert store.snapshot().read(path) == expected  # and the parent's still answers right
    assert git(repo, "status", "--porcelain") == ""


def test_the_end_of_a_run_has_git_pack_loose_objects_by_gc_auto(repo: Path):
    git(repo, "config", "gc.auto", "300")  # git's rule: more than 2 loose objects in objects/17
    git(repo, "config", "gc.autoDetach", "false")  # pack in the foreground, so the test can look
    for content in _contents_hashing_to_17(3):  # loose objects as earlier runs would leave them
        subprocess.run(["git", "-C", str(repo), "hash-object", "-w", "--stdin"], input=content, check=True,
                       capture_output=True)
    before = git(repo, "status", "--porcelain")
    for i in range(12):
        with labbook.start_run(name=f"r{i}"):
            labbook.log_metric("loss", 1.0 / (i + 1))
    counts = dict(line.split(": ") for line in git(repo, "count-objects", "-v").splitlines())
    assert int(counts["in-pack"]) > 0 and int(counts["count"]) < 100
    assert git(repo, "status", "--porcelain") == before
    assert len(labbook.search_runs()) == 12


def test_the_background_gc_a_run_started_can_be_waited_for(repo: Path):
    git(repo, "config", "gc.auto", "300")  # gc.autoDetach stays true: git packs in the background
    for content in _contents_hashing_to_17(3):
        subprocess.run(["git", "-C", str(repo), "hash-object", "-w", "--stdin"], input=content, check=True,
                       capture_output=True)
    with labbook.start_run(name="r0"):
        labbook.log_metric("loss", 1.0)
    assert tracking.repository().wait_for_gc(timeout=120)
    assert not (repo / ".git" / "gc.pid").exists()  # git's own lock: its gc is over
    counts = dict(line.split(": ") for line in git(repo, "count-objects", "-v").splitlines())
    assert int(counts["in-pack"]) > 0 and int(counts["count"]) < 10
    fsck = subprocess.run(["git", "-C", str(repo), "fsck", "--strict", "--no-dangling"],
                          capture_output=True, text=True)
    assert fsck.returncode == 0 and "error" not in fsck.stderr, fsck.stderr


def test_waiting_for_gc_waits_for_the_process_holding_its_lock(repo: Path):
    lock = repo / ".git" / "labbook" / "gc.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    holder = python_child(  # as a detached git gc holds it: an inherited descriptor
        f"import fcntl, os, sys\nfd = os.open({str(lock)!r}, os.O_RDWR | os.O_CREAT)\n"
        "fcntl.flock(fd, fcntl.LOCK_EX)\nprint('held', flush=True)\nsys.stdin.readline()\n",
        repo, stdin=subprocess.PIPE)
    assert holder.stdout is not None and holder.stdin is not None
    assert holder.stdout.readline() == "held\n"
    repository = tracking.repository()
    assert repository.wait_for_gc(timeout=0.3) is False
    holder.stdin.write("\n")
    holder.stdin.flush()
    assert repository.wait_for_gc(timeout=30) is True
    holder.wait(timeout=30)


def _contents_hashing_to_17(count: int) -> list[bytes]:
    found = []
    for n in itertools.count():
        content = f"filler {n}\n".encode()
        if hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest().startswith("17"):
            found.append(content)
            if len(found) == count:
                return found
    raise AssertionError("unreachable")


def test_gc_auto_zero_keeps_every_object_loose(repo: Path):
    git(repo, "config", "gc.auto", "0")
    for content in _contents_hashing_to_17(3):
        subprocess.run(["git", "-C", str(repo), "hash-object", "-w", "--stdin"], input=content, check=True,
                       capture_output=True)
    for i in range(12):
        with labbook.start_run(name=f"r{i}"):
            labbook.log_metric("loss", 1.0)
    counts = dict(line.split(": ") for line in git(repo, "count-objects", "-v").splitlines())
    assert int(counts["in-pack"]) == 0
