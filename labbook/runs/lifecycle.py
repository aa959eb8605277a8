"""Bringing runs to life and back: start, resume, load, find, and recover dead ones."""

from __future__ import annotations

import logging
import os
import re
import socket
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ..errors import AmbiguousRun, FormatError, InvalidValue, RunNotFound
from ..format import record, validation
from ..format.record import Environment, RunRecord
from ..storage.journal import Journal, Orphan, orphans
from ..storage.store import Blob, Snapshot
from . import provenance
from .repository import Repository
from .run import Run, new_run_id

MIN_PREFIX = 4
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_MS = 253402300800000  # year 10000: later "times" in a journal are not times
_log = logging.getLogger("labbook")


def start(repo: Repository, *, experiment: str, name: str | None = None,
          hypothesis: str | None = None, tags: dict[str, str] | None = None,
          parent: str | None = None, run_id: str | None = None,
          command: list[str] | None = None, start_time: str | None = None) -> Run:
    """Start a new live run in ``experiment`` (created if missing) and commit its start;
    ``command`` replaces this process's command line (redacted here); ``start_time`` (ISO
    UTC, default now) is for runs whose start a caller gives, as MLflow's create_run."""
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
        start_time=start_time or record.utc_now(), parent=parent, user=repo.identity[0],
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
    try:
        journal.append({"e": "start", "r": record.run_to_plain(run.record), "base": base,
                        "files": {path: blob.oid for path, blob in files.items()},
                        "pid": os.getpid(), "w": time.time_ns() // 1_000_000})
    except BaseException:
        journal.close(remove=True)
        raise
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
        matches = [e.name for e in snapshot.list(f"runs/{key[:2]}")
                   if e.name.startswith(key) and record.is_run_id(e.name)]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise AmbiguousRun(f"{id_or_name!r} matches {len(matches)} runs: "
                               + ", ".join(m[:12] for m in sorted(matches)[:10]))
    records = all_records(snapshot)
    named = [rec for rec in records if rec.name == id_or_name]
    selector = _SELECTOR.fullmatch(id_or_name) if not named else None
    if selector:
        named = [rec for rec in records if rec.name == selector["name"]]
    named.sort(key=lambda rec: (rec.start_time, rec.id), reverse=True)  # newest first
    if selector and named:
        back = 0 if selector["latest"] else int(selector["back"])
        if back >= len(named):
            raise RunNotFound(f"{id_or_name!r}: only {len(named)} runs are named {selector['name']!r} "
                              f"({selector['name']}~{len(named) - 1} is the oldest)")
        return named[back].id
    if len(named) == 1:
        return named[0].id
    if len(named) > 1:
        raise AmbiguousRun(_ambiguous(snapshot, id_or_name, named))
    hint = "" if len(key) >= MIN_PREFIX else f" (an id prefix needs at least {MIN_PREFIX} characters)"
    raise RunNotFound(f"no run has the id, id prefix or name {id_or_name!r}{hint}")


_SELECTOR = re.compile(r"(?P<name>.+?)(?:@(?P<latest>latest)|~(?P<back>\d{1,6}))")


def _ambiguous(snapshot: Snapshot, name: str, runs: list[RunRecord]) -> str:
    """Which runs share ``name`` (newest first) and how to pick one."""
    experiments: dict[str, str] = {}
    lines = [f"{len(runs)} runs are named {name!r}, newest first:"]
    for back, rec in enumerate(runs[:10]):
        if rec.experiment not in experiments:
            data = snapshot.read(record.experiment_path(rec.experiment))
            try:
                experiments[rec.experiment] = record.experiment_from_yaml(data, rec.experiment).name \
                    if data is not None else rec.experiment
            except FormatError:
                experiments[rec.experiment] = rec.experiment
        when = rec.start_time[:16].replace("T", " ")
        lines.append(f"  {name}~{back:<3} {rec.id[:8]}  {experiments[rec.experiment]}  {when}  {rec.status}")
    if len(runs) > 10:
        lines.append(f"  … and {len(runs) - 10} older")
    lines.append(f"pick one by its id (4 or more characters), {name}@latest for the newest, "
                 f"or {name}~1 for the one before")
    return "\n".join(lines)


def all_records(snapshot: Snapshot) -> list[RunRecord]:
    """Every run record on the branch that reads (a plain scan; queries use the cached reader).

    Folders that are not run folders are passed over, and a record that does not pass the
    format's rules is skipped with a warning naming it, the commit and the reason."""
    found = []
    for fan in snapshot.list("runs"):
        if record.run_folder_problem(fan.name) is not None:
            continue
        for entry in snapshot.list(f"runs/{fan.name}"):
            if record.run_folder_problem(fan.name, entry.name) is not None:
                continue
            path = record.run_path(entry.name)
            file = snapshot.entry(path)
            if file is None or record.file_mode_problem(file.mode) is not None:
                continue
            data = snapshot.read(path)
            if data is None:
                continue
            try:
                found.append(record.run_from_yaml(data, path))
            except FormatError as exc:
                _log.warning("labbook: skipping %s (commit %s): %s", path, (snapshot.commit or "")[:12],
                             exc.reason)
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
        repo.store.release(orphan.run_id)  # its artifacts are on the branch now
        if run is not None:
            recovered.append(run)
    return recovered


def _fold(repo: Repository, orphan: Orphan) -> Run | None:
    replay = orphan.replay()
    events = replay.events
    if not events or events[0].get("e") != "start":
        if replay.dropped is not None:
            _log.warning("labbook: run %s: its journal %s held no intact entry; left out %s",
                         orphan.run_id[:8], orphan.path, replay.dropped.describe())
        return None  # died before its first record: nothing was logged
    start_event = events[0]
    rec = record.run_from_plain(start_event["r"], f"journal {orphan.path}")
    if replay.dropped is not None:
        _log.warning("labbook: run %s (%s): its journal ends in %s, left out; the %d entries "
                     "before it are recovered", rec.id[:8], rec.name, replay.dropped.describe(),
                     len(events))
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
        run.record.status = "KILLED"
        run.record.end_time = _last_alive(run.record.start_time, events, orphan.path)
        run.record.error = (f"the process (pid {start_event.get('pid')}) ended without ending "
                            "the run; recovered from its journal")
    run._commit(f"recover {run.name}: {run.record.status}, {len(run.history)} metric values "
                "from its journal")
    return run


def _last_alive(start_time: str, events: list[dict], path: Path) -> str:
    """When a dead run's process was last alive: the time its last journal entry was written
    (milliseconds), never before the run's start."""
    last = next((ms for ms in map(_written_ms, reversed(events)) if ms is not None), None)
    if last is None:  # a journal of an older labbook, with no metric values
        last = path.stat().st_mtime_ns // 1_000_000
    started = _ms(start_time)
    if started is not None:
        last = max(last, started)
    return record.format_time(datetime.fromtimestamp(last // 1000, UTC)
                              + timedelta(milliseconds=last % 1000))


def _written_ms(event: dict) -> int | None:
    """When a journal entry was written (ms since the epoch), if it says."""
    written = event.get("w")
    if written is None and event.get("e") in ("m", "ms"):
        written = event.get("t")  # a value logged now: its timestamp is when it was written
    ok = isinstance(written, int) and not isinstance(written, bool) and 0 <= written < _MAX_MS
    return written if ok else None


def _ms(text: str) -> int | None:
    """An ISO 8601 time of a record, in ms since the epoch (None if it does not parse)."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // timedelta(milliseconds=1)
