"""Bringing runs to life and back: start, resume, load, find, and recover dead ones."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

from . import provenance, record, validation
from .errors import AmbiguousRun, InvalidValue, RunNotFound
from .journal import Journal, Orphan, orphans
from .record import Environment, RunRecord
from .repository import Repository
from .run import Run, new_run_id
from .store import Blob, Snapshot

MIN_PREFIX = 4


def start(repo: Repository, *, experiment: str, name: str | None = None,
          hypothesis: str | None = None, tags: dict[str, str] | None = None,
          parent: str | None = None, run_id: str | None = None,
          command: list[str] | None = None) -> Run:
    """Start a new live run in ``experiment`` (created if missing) and commit its start;
    ``command`` replaces this process's command line (redacted here)."""
    if name:  # None or "" take the default name
        validation.check_name(name, "run name")
    if hypothesis is not None:
        validation.check_text(hypothesis, "hypothesis", validation.MAX_TEXT_BYTES)
    tags = validation.checked_tags(tags) if tags else None  # refused before the run exists
    exp = repo.ensure_experiment(experiment)
    rid = run_id or new_run_id()
    code, diff = provenance.code_provenance(repo.git, repo.config)
    python, platform_name = provenance.python_and_platform()
    env_path, env_bytes = record.environment_yaml(provenance.installed_packages())
    files: dict[str, Blob] = {env_path: repo.store.write_blob(env_bytes)}
    if diff:
        code.diff = record.diff_path(rid)
        files[code.diff] = repo.store.write_blob(diff)
    rec = RunRecord(
        id=rid, name=name or f"run-{rid[:8]}", experiment=exp.slug, status="RUNNING",
        start_time=record.utc_now(), parent=parent, user=repo.identity[0],
        host=socket.gethostname(), code=code,
        command=provenance.command_line() if command is None else provenance.redact_command(command),
        environment=Environment(python=python, platform=platform_name, packages=env_path),
        hypothesis=hypothesis)
    if not isinstance(rec.name, str) or not rec.name.strip():
        raise InvalidValue(f"run name {name!r} is empty")
    run = Run(repo, rec)
    _go_live(run, base=None, files=files)
    if tags:
        run.set_tags(tags)
    what = f": {hypothesis.strip().splitlines()[0]}" if hypothesis and hypothesis.strip() else ""
    _commit_or_forget(run, f"start {rec.name} in {exp.name}{what}")
    return run


def _commit_or_forget(run: Run, message: str) -> None:
    """Commit a run's first record; if that fails, drop its journal (nothing was logged yet)."""
    try:
        run._commit(message)
    except BaseException:
        journal, run._journal = run._journal, None
        if journal is not None:
            journal.close(remove=True)
        raise


def resume(repo: Repository, run_id: str) -> Run:
    """Continue an existing run here: it is RUNNING again until it ends."""
    snapshot = repo.store.snapshot()
    run = load(repo, run_id, snapshot)
    run._committed = record.run_to_yaml(run.record)
    run.record.status, run.record.end_time = "RUNNING", None
    _go_live(run, base=snapshot.commit, files={})
    _commit_or_forget(run, f"resume {run.name}")
    return run


def _go_live(run: Run, base: str | None, files: dict[str, Blob]) -> None:
    try:
        journal = Journal(run.repo.journal_dir / f"{run.id}.log")
    except BlockingIOError as exc:
        raise InvalidValue(f"run {run.id[:8]} ({run.name}) is live in another process; "
                           "it can be resumed once that process ends it") from exc
    journal.append({"e": "start", "r": record.run_to_plain(run.record), "base": base,
                    "files": {path: blob.oid for path, blob in files.items()},
                    "pid": os.getpid()})
    run._extra_files.update(files)
    run._journal = journal
    run._history_dirty = base is None


def load(repo: Repository, id_or_name: str, snapshot: Snapshot | None = None) -> Run:
    """A read-only Run from the branch, by full id, unique id prefix or exact name."""
    snapshot = snapshot or repo.store.snapshot()
    rid = resolve(snapshot, id_or_name)
    data = snapshot.read(record.run_path(rid))
    if data is None:
        raise RunNotFound(f"no run {id_or_name!r} on the branch")
    rec = record.run_from_yaml(data, record.run_path(rid))
    history_data = snapshot.read(record.history_path(rid))
    history = record.history_from_tsv(history_data, record.history_path(rid)) if history_data else []
    run = Run(repo, rec, history)
    for pointer in rec.artifacts:
        if pointer.location == "branch":
            path = record.artifact_branch_path(rid, pointer.path)
            entry = snapshot.entry(path)
            if entry is not None:
                run._extra_files[path] = Blob(entry.oid)
    return run


def resolve(snapshot: Snapshot, id_or_name: str) -> str:
    """The full id of the run a user means: an id, a unique prefix (≥ 4), or an exact name."""
    if not isinstance(id_or_name, str) or not id_or_name:
        raise RunNotFound(f"{id_or_name!r} is not a run id or name")
    key = id_or_name.lower()
    if len(key) >= MIN_PREFIX and all(c in "0123456789abcdef" for c in key):
        matches = [e.name for e in snapshot.list(f"runs/{key[:2]}") if e.name.startswith(key)]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise AmbiguousRun(f"{id_or_name!r} matches {len(matches)} runs: "
                               + ", ".join(m[:12] for m in sorted(matches)[:10]))
    named = [rec.id for rec in all_records(snapshot) if rec.name == id_or_name]
    if len(named) == 1:
        return named[0]
    if len(named) > 1:
        raise AmbiguousRun(f"{len(named)} runs are named {id_or_name!r}: "
                           + ", ".join(n[:12] for n in sorted(named)[:10]) + "; use an id")
    hint = "" if len(key) >= MIN_PREFIX else f" (an id prefix needs at least {MIN_PREFIX} characters)"
    raise RunNotFound(f"no run has the id, id prefix or name {id_or_name!r}{hint}")


def all_records(snapshot: Snapshot) -> list[RunRecord]:
    """Every run record on the branch (a plain scan; queries use the cached reader)."""
    found = []
    for fan in snapshot.list("runs"):
        for entry in snapshot.list(f"runs/{fan.name}"):
            data = snapshot.read(f"runs/{fan.name}/{entry.name}/run.yaml")
            if data is not None:
                found.append(record.run_from_yaml(data, record.run_path(entry.name)))
    return found


def recover(repo: Repository) -> list[Run]:
    """Fold the journal of every run whose process died into a committed record."""
    recovered = []
    for orphan in orphans(repo.journal_dir):
        try:
            run = _fold(repo, orphan)
        except BaseException:
            orphan.release(remove=False)
            raise
        orphan.release(remove=True)
        if run is not None:
            recovered.append(run)
    return recovered


def _fold(repo: Repository, orphan: Orphan) -> Run | None:
    events = orphan.events()
    if not events or events[0].get("e") != "start":
        return None  # died before its first record: nothing was logged
    start_event = events[0]
    rec = record.run_from_plain(start_event["r"], f"journal {orphan.path}")
    history: list[tuple[str, int, int, float]] = []
    if start_event.get("base"):
        base = repo.store.snapshot(start_event["base"])
        data = base.read(record.history_path(rec.id))
        history = record.history_from_tsv(data, record.history_path(rec.id)) if data else []
    run = Run(repo, rec, history)
    run._base = record.run_from_plain(start_event["r"], f"journal {orphan.path}")
    run._extra_files.update({p: Blob(o) for p, o in start_event.get("files", {}).items()})
    for event in events[1:]:
        run._apply(event)
    run._history_dirty = True
    if run.record.status == "RUNNING":
        died = time.gmtime(Path(orphan.path).stat().st_mtime)
        run.record.status = "KILLED"
        run.record.end_time = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", died)
        run.record.error = (f"the process (pid {start_event.get('pid')}) ended without ending "
                            "the run; recovered from its journal")
    run._commit(f"recover {run.name}: {run.record.status}, {len(run.history)} metric values "
                "from its journal")
    return run
