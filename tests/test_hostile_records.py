"""The branch is input: records and trees written by hand or by a hostile teammate.

Each case plants something on the experiments branch with git plumbing
(``hash-object -w``, ``mktree``, ``commit-tree``, ``update-ref``), never through
labbook, then checks that every other run still reads in ``search_runs``, ``ls``,
``show``, ``site build`` and ``fsck``, and that the bad one is reported (a warning
naming the file, the commit and the reason, or a problem in fsck).
"""

from __future__ import annotations

import logging
import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

import labbook
from conftest import git
from labbook import tracking
from labbook.cli import cli
from labbook.errors import InvalidValue, LabbookError
from labbook.format import record

BAD_ID = "ab" + "c" * 30  # a well-formed id for the planted run's folder


# -- planting with plumbing ----------------------------------------------------------------
def _mktree(repo: Path, entries: list[tuple[str, str, str, str]]) -> str:
    text = "".join(f"{mode} {kind} {oid}\t{name}\n" for mode, kind, oid, name in entries)
    proc = subprocess.run(["git", "-C", str(repo), "mktree"], input=text.encode("utf-8", "surrogateescape"),
                          capture_output=True, check=True)
    return proc.stdout.decode().strip()


def _entries(repo: Path, tree: str | None) -> list[tuple[str, str, str, str]]:
    if tree is None:
        return []
    out = subprocess.run(["git", "-C", str(repo), "ls-tree", "-z", tree], capture_output=True,
                         check=True).stdout.decode("utf-8", "surrogateescape")
    found = []
    for item in filter(None, out.split("\0")):
        meta, name = item.split("\t", 1)
        mode, kind, oid = meta.split()
        found.append((mode, kind, oid, name))
    return found


def _put(repo: Path, tree: str | None, parts: list[str], blob: str, mode: str = "100644") -> str:
    entries = [e for e in _entries(repo, tree) if e[3] != parts[0]]
    old = {e[3]: e for e in _entries(repo, tree)}.get(parts[0])
    if len(parts) == 1:
        entries.append((mode, "commit" if mode == "160000" else "blob", blob, parts[0]))
    else:
        child = old[2] if old is not None and old[1] == "tree" else None
        entries.append(("040000", "tree", _put(repo, child, parts[1:], blob, mode), parts[0]))
    return _mktree(repo, entries)


def plant(repo: Path, files: dict[str, bytes | tuple[str, str]], message: str = "hand edit",
          branch: str = "experiments") -> str:
    """Commit ``files`` (paths may hold any name, '..' and '.git' included; a value (mode, oid)
    is an entry of that mode: a submodule, a symlink) on top of the branch with plumbing only;
    returns the new commit."""
    tip = git(repo, "rev-parse", branch).strip()
    tree = git(repo, "rev-parse", f"{tip}^{{tree}}").strip()
    for path, data in files.items():
        if isinstance(data, tuple):
            tree = _put(repo, tree, path.split("/"), data[1], data[0])
            continue
        blob = subprocess.run(["git", "-C", str(repo), "hash-object", "-w", "--stdin"], input=data,
                              capture_output=True, check=True).stdout.decode().strip()
        tree = _put(repo, tree, path.split("/"), blob)
    commit = git(repo, "commit-tree", tree, "-p", tip, "-m", message).strip()
    git(repo, "update-ref", f"refs/heads/{branch}", commit, tip)
    return commit


# -- the notebook every case starts from ---------------------------------------------------
def _good_runs() -> list[str]:
    ids = []
    for alpha in (0.1, 0.2):
        with labbook.start_run(name=f"good-{alpha}", experiment="study") as run:
            run.log_param("alpha", alpha)
            run.log_metric("loss", 1 - alpha, step=0)
            ids.append(run.id)
    return ids


def _record_text(repo: Path, run_id: str) -> str:
    return git(repo, "show", f"experiments:{record.run_path(run_id)}")


def _yaml_with(repo: Path, good: str, *, run_id: str = BAD_ID, drop: tuple[str, ...] = (),
               lines: str = "") -> bytes:
    """A good record rewritten as the planted run: its id, without the top-level keys
    ``drop``, with ``lines`` added at the end (a hand edit)."""
    text = _record_text(repo, good).replace(f"id: {good}", f"id: {run_id}")
    text = re.sub(r"(?m)^name: .*$", "name: planted", text)
    kept, skipping = [], False
    for line in text.splitlines(keepends=True):
        top = re.match(r"([a-z_]+):", line)
        if top:
            skipping = top[1] in drop
        if not skipping:
            kept.append(line)
    return ("".join(kept) + lines).encode()


@dataclass(frozen=True)
class Case:
    """One hostile edit: what it plants, and the reason a reader must give (None: it reads)."""

    id: str
    files: Callable[[Path, str], dict[str, bytes]]
    reason: str | None  # a regex the skip warning and fsck must contain
    folder: str = record.run_path(BAD_ID)  # the file the warning names


def _run(lines: str = "", drop: tuple[str, ...] = (), run_id: str = BAD_ID):
    def make(repo: Path, good: str) -> dict[str, bytes]:
        return {record.run_path(BAD_ID): _yaml_with(repo, good, run_id=run_id, drop=drop, lines=lines)}
    return make


def _raw(data: bytes, path: str = record.run_path(BAD_ID)):
    return lambda repo, good: {path: data}


def _tree(path: str):
    return lambda repo, good: {path: _yaml_with(repo, good, run_id=BAD_ID)}


SKIPPED = [
    Case("params-list", _run("params:\n- 1\n- 2\n", drop=("params",)), r"params"),
    Case("metrics-string", _run("metrics: oops\n", drop=("metrics",)), r"metrics"),
    Case("metric-summary-incomplete", _run("metrics:\n  loss:\n    last: 1.0\n", drop=("metrics",)),
         r"metrics\.loss"),
    Case("tags-bool-yes", _run("tags:\n  reviewed: yes\n", drop=("tags",)), r"tags\.reviewed.*quote"),
    Case("tags-int", _run("tags:\n  stage: 3\n", drop=("tags",)), r"tags\.stage"),
    Case("duplicate-key", _run("name: twice\n"), r"duplicate key"),
    Case("alias", _run("hypothesis: &h once\nerror: *h\n", drop=("hypothesis", "error")), r"alias"),
    Case("big-int-step", _run(f"metrics:\n  loss: {{last: 1.0, min: 1.0, max: 1.0, step: {2**70}, "
                              "timestamp: 1, count: 1}\n", drop=("metrics",)), r"metrics\.loss\.step.*64"),
    Case("metric-last-text", _run("metrics:\n  loss: {last: low, min: 1.0, max: 1.0, step: 0, "
                                  "timestamp: 1, count: 1}\n", drop=("metrics",)), r"metrics\.loss\.last"),
    Case("id-path-traversal", _run(run_id="../../../victim"), r"id"),
    Case("id-other-folder", _run(run_id="ab" + "d" * 30), r"folder"),
    Case("id-not-hex", _run(run_id="AB" + "C" * 30), r"id"),
    Case("experiment-traversal", _run("experiment: ../labbook\n", drop=("experiment",)), r"experiment"),
    Case("parent-traversal", _run("parent: ../../x\n", drop=("parent",)), r"parent"),
    Case("artifact-traversal", _run("artifacts:\n- {path: ../../../evil.sh, size: 1, sha256: "
                                    + "0" * 64 + ", location: branch}\n", drop=("artifacts",)),
         r"artifacts"),
    Case("artifact-dotgit", _run("artifacts:\n- {path: .git/hooks/post-checkout, size: 1, sha256: "
                                 + "0" * 64 + ", location: branch}\n", drop=("artifacts",)),
         r"artifacts"),
    Case("artifact-location", _run("artifacts:\n- {path: a.txt, size: 1, sha256: " + "0" * 64
                                   + ", location: http://evil.example/}\n", drop=("artifacts",)),
         r"artifacts"),
    Case("start-time-garbage", _run("start_time: yesterday\n", drop=("start_time",)), r"start_time"),
    Case("format-bool", _run("format: true\n", drop=("format",)), r"format"),
    Case("notes-not-list", _run("notes: hello\n", drop=("notes",)), r"notes"),
    Case("command-mapping", _run("command: {a: 1}\n", drop=("command",)), r"command"),
    Case("status-lower", _run("status: finished\n", drop=("status",)), r"status"),
    Case("binary-tag", _run("extra_field: !!binary aGVsbG8=\n"), r"extra_field|binary|tag"),
    Case("set-tag", _run("extra_field: !!set {a, b}\n"), r"extra_field|set|tag"),
    Case("explicit-timestamp", _run("when: !!timestamp 2024-01-01\n"), r"when|timestamp|tag"),
    Case("params-key-not-text", _run("params:\n  1: one\n", drop=("params",)), r"params"),
    Case("not-utf8", _raw(b"format: 1\nid: \xff\xfe\n"), r"UTF-8|utf-8|unreadable|decode"),
    Case("list-document", _raw(b"- 1\n- 2\n"), r"mapping"),
    Case("empty-document", _raw(b""), r"mapping"),
]

# Trees whose names must never be listed as runs.
REFUSED_TREES = [
    Case("dotdot-run", _tree("runs/ab/../run.yaml"), r"not a run id", "runs/ab/.."),
    Case("dot-run", _tree("runs/ab/./run.yaml"), r"not a run id", "runs/ab/."),
    Case("dotgit-run", _tree("runs/ab/.git/run.yaml"), r"not a run id", "runs/ab/.git"),
    Case("dotgit-upper-fanout", _tree(f"runs/.GIT/{BAD_ID}/run.yaml"), r"fan-out", "runs/.GIT"),
    Case("git-short-name", _tree("runs/ab/git~1/run.yaml"), r"not a run id", "runs/ab/git~1"),
    Case("dotgit-zwj", _tree("runs/ab/.git\u200d/run.yaml"), r"not a run id", "runs/ab/.git"),
    Case("gitmodules", _tree("runs/ab/.gitmodules/run.yaml"), r"not a run id", "runs/ab/.gitmodules"),
    Case("wrong-fanout", _tree(f"runs/cd/{BAD_ID}/run.yaml"), r"fan-out|folder", f"runs/cd/{BAD_ID}"),
    Case("run-yaml-submodule", lambda repo, good: {record.run_path(BAD_ID): ("160000", "1" * 40)},
         r"not a regular file", record.run_path(BAD_ID)),
    Case("run-yaml-symlink", lambda repo, good: {record.run_path(BAD_ID): (
        "120000", git(repo, "rev-parse", f"experiments:{record.run_path(good)}").strip())},
         r"not a regular file", record.run_path(BAD_ID)),
]

READ = [  # hand edits that read, with the value a reader sees
    ("unquoted-date", "day: 2024-01-01", "params.day", "2024-01-01"),
    ("unquoted-timestamp", "at: 2024-01-01 10:00:00", "params.at", "2024-01-01 10:00:00"),
    ("yes-is-bool", "flag: yes", "params.flag", True),
    ("off-is-bool", "switch: off", "params.switch", False),
    ("big-int-param", f"seed: {2**70}", "params.seed", 2**70),
    ("octal-like", "mode: 0755", "params.mode", 493),  # YAML 1.1: an octal int
    ("sexagesimal", "clock: 1:20", "params.clock", 80),  # YAML 1.1: base 60
]


@pytest.fixture
def notebook(repo: Path) -> list[str]:
    return _good_runs()


def _cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def _fresh_caches(repo: Path) -> None:
    """Forget what earlier commands cached, so each command reads the branch itself."""
    for path in (repo / ".git" / "labbook" / "cache").glob("*"):
        path.unlink()
    tracking.reset()
    labbook.set_repository(repo)


def _assert_others_read(repo: Path, good: list[str], reason: str, path: str, commit: str,
                        caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    pattern = re.compile(reason)
    with caplog.at_level(logging.WARNING, logger="labbook"):
        frame = labbook.search_runs()
    assert sorted(frame["run_id"]) == sorted(good)
    said = "\n".join(r.getMessage() for r in caplog.records)
    assert path in said and commit[:12] in said and pattern.search(said), said

    _fresh_caches(repo)
    status, out, err = _cli("ls")
    assert status == 0 and all(g[:8] in out for g in good), err
    assert path in err and pattern.search(err), err

    _fresh_caches(repo)
    status, out, err = _cli("show", "good-0.1")  # by name: every record is scanned
    assert status == 0 and good[0] in out, err

    _fresh_caches(repo)
    status, out, err = _cli("site", "build", "-o", str(tmp_path / "site"))
    assert status == 0, err
    assert (tmp_path / "site" / "index.html").exists()
    pages = {p.name for p in (tmp_path / "site").glob("run-*.html")}
    assert pages == {f"run-{g}.html" for g in good}, pages

    _fresh_caches(repo)
    report = tracking.fsck()
    problems = "\n".join(report.problems)
    assert path in problems and pattern.search(problems), problems
    assert report.runs >= len(good)


@pytest.mark.parametrize("case", SKIPPED + REFUSED_TREES, ids=lambda c: c.id)
def test_a_bad_record_is_skipped_and_every_other_run_reads(
        repo: Path, notebook: list[str], case: Case, caplog: pytest.LogCaptureFixture,
        tmp_path: Path) -> None:
    commit = plant(repo, case.files(repo, notebook[0]))
    _fresh_caches(repo)
    _assert_others_read(repo, notebook, case.reason, case.folder, commit, caplog, tmp_path)


@pytest.mark.parametrize(("name", "line", "column", "value"), READ, ids=[r[0] for r in READ])
def test_hand_edits_that_read(repo: Path, notebook: list[str], name: str, line: str, column: str,
                              value: object, tmp_path: Path) -> None:
    text = _record_text(repo, notebook[0]).replace("params:\n", f"params:\n  {line}\n")
    plant(repo, {record.run_path(notebook[0]): text.encode()})
    _fresh_caches(repo)
    frame = labbook.search_runs()
    assert sorted(frame["run_id"]) == sorted(notebook)
    got = frame.set_index("run_id").loc[notebook[0], column]
    # one run has it: the column is pandas' nullable Int64/boolean, its cell numpy's scalar
    assert got == value and type(got.item() if hasattr(got, "item") else got) is type(value)
    assert labbook.get_run(notebook[0]).params[column.split(".", 1)[1]] == value
    status, out, err = _cli("ls")
    assert status == 0 and notebook[0][:8] in out, err
    status, _, err = _cli("site", "build", "-o", str(tmp_path / "site"))
    assert status == 0, err
    assert tracking.fsck().ok


def test_an_oversized_record_is_skipped(repo: Path, notebook: list[str],
                                        caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    big = _yaml_with(repo, notebook[0], lines="error: |\n" + "  x\n" * (17 * 1024 * 1024 // 1))
    assert len(big) > 64 * 1024 * 1024
    commit = plant(repo, {record.run_path(BAD_ID): big})
    _fresh_caches(repo)
    _assert_others_read(repo, notebook, r"bytes is more than", record.run_path(BAD_ID), commit,
                        caplog, tmp_path)


# -- ids from records never become paths -----------------------------------------------------
def test_resuming_a_run_whose_id_is_a_path_touches_no_file(repo: Path, notebook: list[str]) -> None:
    victim = repo / "victim.log"  # <repo>/.git/labbook/journal/../../../victim.log
    victim.write_text("precious\n")
    plant(repo, {record.run_path(BAD_ID): _yaml_with(repo, notebook[0], run_id="../../../victim")})
    _fresh_caches(repo)
    with pytest.raises(LabbookError, match=r"id"):
        labbook.start_run(run_id=BAD_ID[:8])
    assert victim.read_text() == "precious\n"
    with pytest.raises(LabbookError):
        labbook.get_run(BAD_ID)
    status, _, err = _cli("note", BAD_ID[:8], "hi")
    assert status == 1 and "Traceback" not in err
    assert victim.read_text() == "precious\n"


# -- names git treats as special are never written ------------------------------------------------
@pytest.mark.parametrize("name", [".git", ".GIT", "git~1", ".git\u200d", ".gitmodules", ".GITMODULES",
                                  ".gitattributes", ".gitignore", "..", ".", "gitmod~1"])
def test_the_store_refuses_to_write_a_git_special_name(repo: Path, notebook: list[str], name: str) -> None:
    tip = git(repo, "rev-parse", "experiments").strip()
    store = tracking.repository().store
    with pytest.raises(InvalidValue, match="not allowed|reserved"):
        store.commit({f"runs/ab/{BAD_ID}/artifacts/{name}/x.txt": b"x"}, "bad")
    with pytest.raises(InvalidValue, match="not allowed|reserved"):
        store.commit({f"runs/ab/{BAD_ID}/artifacts/{name}": b"x"}, "bad")
    assert git(repo, "rev-parse", "experiments").strip() == tip


# -- a teammate's hostile branch, through a bare remote -------------------------------------------
def test_pull_brings_the_good_runs_and_leaves_a_hostile_teammates_out(
        repo: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(repo, "remote", "add", "origin", str(remote))
    mine = _good_runs()
    tracking.push()
    mate = tmp_path / "mate"
    git(tmp_path, "clone", "-q", str(remote), str(mate))
    git(mate, "fetch", "-q", "origin", "experiments:experiments")
    labbook.set_repository(mate)
    theirs = _good_runs()
    tracking.push()
    plant(mate, {record.run_path(BAD_ID): _yaml_with(mate, theirs[0], run_id="../../../victim"),
                 f"runs/cd/{'cd' + '1' * 30}/run.yaml": _yaml_with(mate, theirs[0], drop=("params",),
                                                                   lines="params: [1]\n"),
                 f"runs/ee/{'ee' + '2' * 30}/run.yaml": _yaml_with(mate, theirs[0], run_id="ee" + "2" * 30),
                 f"runs/ee/{'ee' + '2' * 30}/artifacts/.gitmodules": b"[submodule]\n",
                 "runs/ab/../run.yaml": _yaml_with(mate, theirs[0]),
                 record.run_path(mine[0]): _yaml_with(mate, mine[0], run_id=mine[0], drop=("tags",),
                                                      lines="tags: {reviewed: yes}\n")})
    git(mate, "push", "-q", "origin", "experiments")
    labbook.set_repository(repo)
    with labbook.start_run(name="while-away", experiment="study") as run:  # the histories diverge
        mine.append(run.id)
    status, _, err = _cli("note", mine[0], "checked here")  # the run both sides changed
    assert status == 0, err
    result = tracking.pull()
    assert result.pulled == "merged"
    _fresh_caches(repo)
    with caplog.at_level(logging.WARNING, logger="labbook"):
        frame = labbook.search_runs()
    assert sorted(frame["run_id"]) == sorted(mine + theirs + ["ee" + "2" * 30])
    names = git(repo, "ls-tree", "-r", "--name-only", "experiments").splitlines()
    assert not [n for n in names if ".gitmodules" in n or "/../" in n], names  # never written by us
    said = "\n".join(r.getMessage() for r in caplog.records)
    assert record.run_path(BAD_ID) in said and "params" in said, said
    assert record.run_path(mine[0]) in said and "tags.reviewed" in said, said
    assert labbook.get_run(mine[0]).notes[-1].text == "checked here"  # the local version kept
    assert not tracking.fsck().ok


# -- experiment names --------------------------------------------------------------------------
def test_a_name_equal_to_another_experiments_slug_gets_its_own_experiment(repo: Path) -> None:
    first = labbook.set_experiment("My Study")
    assert first.slug != "My Study"
    second = labbook.set_experiment(first.slug)  # a name that is the first one's slug
    assert second.name == first.slug and second.slug != first.slug
    with labbook.start_run(experiment="My Study") as a:
        pass
    with labbook.start_run(experiment=first.slug) as b:
        pass
    frame = labbook.search_runs(experiments=[first.slug])
    assert list(frame["run_id"]) == [b.id]
    frame = labbook.search_runs(experiments=["My Study"])
    assert list(frame["run_id"]) == [a.id]
    names = set(labbook.list_experiments()["experiment"])
    assert {"My Study", first.slug} <= names


def test_an_experiment_file_that_does_not_parse_is_reported(repo: Path, notebook: list[str],
                                                            tmp_path: Path) -> None:
    plant(repo, {"experiments/broken.yaml": b"name: [1, 2]\n", "experiments/...yaml": b"name: dots\n"})
    _fresh_caches(repo)
    assert sorted(labbook.search_runs()["run_id"]) == sorted(notebook)
    status, _, err = _cli("site", "build", "-o", str(tmp_path / "site"))
    assert status == 0, err
    problems = "\n".join(tracking.fsck().problems)
    assert "experiments/broken.yaml" in problems and "experiments/...yaml" in problems, problems


@pytest.mark.parametrize("history", [b"\xff\xfe", b"key\tstep\ttimestamp\tvalue\nloss\tone\t1\t0.5\n",
                                     b"not a header\n"])
def test_a_history_that_does_not_read_leaves_its_run_and_every_other_readable(
        repo: Path, notebook: list[str], history: bytes, caplog: pytest.LogCaptureFixture,
        tmp_path: Path) -> None:
    plant(repo, {record.history_path(notebook[0]): history})
    _fresh_caches(repo)
    assert sorted(labbook.search_runs()["run_id"]) == sorted(notebook)
    status, _, err = _cli("site", "build", "-o", str(tmp_path / "site"))
    assert status == 0 and record.history_path(notebook[0]) in err, err
    assert {p.name for p in (tmp_path / "site").glob("run-*.html")} == {f"run-{g}.html" for g in notebook}
    status, out, err = _cli("show", notebook[1])
    assert status == 0 and notebook[1] in out, err
    status, _, err = _cli("show", notebook[0])  # its history is part of what show prints
    assert status == 1 and record.history_path(notebook[0]) in err and "Traceback" not in err, err
    problems = "\n".join(tracking.fsck().problems)
    assert record.history_path(notebook[0]) in problems, problems


def test_warnings_come_back_on_every_read_and_many_fanouts_are_checked_too(
        repo: Path, notebook: list[str]) -> None:
    """The cached rows still warn; more than 16 new fan-out folders are listed in one walk by git,
    which refuses the same names."""
    copies = {}
    for number in range(20):
        rid = f"{number:02x}" + "e" * 30
        copies[record.run_path(rid)] = _yaml_with(repo, notebook[0], run_id=rid)
    copies["runs/0a/.git/run.yaml"] = _yaml_with(repo, notebook[0])
    copies[record.run_path("0b" + "f" * 30)] = _yaml_with(repo, notebook[0], run_id="0b" + "f" * 30,
                                                          drop=("tags",), lines="tags: {a: 1}\n")
    plant(repo, copies)
    _fresh_caches(repo)
    for _ in range(2):  # the second ls reads the cached rows
        status, out, err = _cli("ls", "--format", "csv")
        assert status == 0 and len(out.strip().splitlines()) == 1 + 2 + 20, err
        assert "runs/0a/.git" in err and "runs/0b/0bff" in err and "tags.a" in err, err


def test_a_param_beyond_64_bits_in_every_run_keeps_its_exact_value(repo: Path, notebook: list[str]) -> None:
    """One int64 column would overflow: the column keeps Python ints."""
    edits = {}
    for number, rid in enumerate(notebook):
        text = _record_text(repo, rid).replace("params:\n", f"params:\n  seed: {2**70 + number}\n")
        edits[record.run_path(rid)] = text.encode()
    plant(repo, edits)
    _fresh_caches(repo)
    frame = labbook.search_runs(filter_string=f"params.seed > {2**64}")
    assert sorted(frame["params.seed"]) == [2**70, 2**70 + 1]
    status, out, err = _cli("ls", "--format", "csv", "--columns", "run_id,params.seed")
    assert status == 0 and str(2**70) in out, err


def test_the_store_writes_names_that_only_start_like_gits(repo: Path, notebook: list[str]) -> None:
    """.github (a CI workflow on the branch), .gitlab-ci.yml and .gita are ordinary names."""
    store = tracking.repository().store
    for name in (".github/workflows/journal.yml", ".gitlab-ci.yml", f"runs/ab/{BAD_ID}/artifacts/.gita"):
        store.commit({name: b"x"}, f"add {name}")
    names = git(repo, "ls-tree", "-r", "--name-only", "experiments").splitlines()
    assert ".github/workflows/journal.yml" in names and ".gitlab-ci.yml" in names
