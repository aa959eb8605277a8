"""Run: one run's state, its log_* methods, and its commits to the branch.

A live run journals every call before applying it, and commits its record at
start, at each checkpoint, on a note or conclusion, and at the end. Replaying
a journal goes through the same ``_apply`` as live logging, so a recovered run
holds exactly what was logged.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import math
import os
import sys
import tempfile
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..errors import AccessDenied, ArtifactError, InvalidValue, ParamConflict, StorageError
from ..format import merge, record, validation
from ..format.record import Artifact, Conclusion, MetricSummary, Note, RunRecord
from ..storage.artifacts import files_under, followed_links_stay_inside, regular_file, sha256_file
from ..storage.journal import Journal
from ..storage.store import Blob, Snapshot
from .repository import Repository

SYNC_SECONDS = 1.0
KEEP_EVERY = 16  # a folder of artifacts is kept reachable every this many blobs
_log = logging.getLogger("labbook")


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class Run:
    """A run: live (started or resumed in this process) or a read-only view of one."""

    def __init__(self, repo: Repository, rec: RunRecord,
                 history: list[tuple[str, int, int, float]] | None = None):
        self.repo = repo
        self.record = rec
        self.history: list[tuple[str, int, int, float]] = history or []
        self._journal: Journal | None = None
        self._lock = threading.RLock()
        self._extra_files: dict[str, bytes | Blob] = {}
        self._history_dirty = False
        self._next_sync = 0.0
        self._next_checkpoint = math.inf
        self._committed: bytes | None = None  # run.yaml as this process last committed it
        self._base: RunRecord | None = None  # the record this process started from, when folding
        self._size_guess = 0  # bytes run.yaml may have reached since the last commit (an upper bound)
        self.on_end: Callable[[Run], None] | None = None
        self.on_detach: Callable[[Run], None] | None = None
        self.attached = False  # a child of `labbook run`: exiting detaches, never ends
        # Lets go of the run in this thread on `with` exit; False while another thread has it
        # active (it resumed the run by id), so only the last thread's exit ends it.
        self.on_release: Callable[[Run], bool] | None = None
        self._unkept = 0  # artifact blobs written and not yet kept reachable
        self._keeping = False  # refs/labbook/pending/<id> holds this run's blobs
        self.before_end: list[Callable[[Run], None]] = []  # run (once) before ending or detaching

    # -- what a user reads ------------------------------------------------------
    @property
    def id(self) -> str:
        return self.record.id

    @property
    def name(self) -> str:
        return self.record.name

    @property
    def experiment(self) -> str:
        """The experiment's id (its file name slug); the name is in experiments/<slug>.yaml."""
        return self.record.experiment

    @property
    def status(self) -> str:
        return self.record.status

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.record.params)

    @property
    def metrics(self) -> dict[str, float]:
        """The last value of each metric."""
        return {k: s.last for k, s in self.record.metrics.items()}

    @property
    def tags(self) -> dict[str, str]:
        return dict(self.record.tags)

    @property
    def notes(self) -> list[Note]:
        return list(self.record.notes)

    @property
    def hypothesis(self) -> str | None:
        return self.record.hypothesis

    @property
    def conclusion(self) -> Conclusion | None:
        return self.record.conclusion

    @property
    def parent(self) -> str | None:
        """The id of the parent run, or None."""
        return self.record.parent

    @property
    def artifacts(self) -> list[Artifact]:
        return list(self.record.artifacts)

    @property
    def provenance(self) -> record.Code:
        return self.record.code

    @property
    def active(self) -> bool:
        return self._journal is not None

    def metric_history(self, key: str) -> list[tuple[int, int, float]]:
        """(step, timestamp ms, value) of every value logged for ``key``."""
        return [(s, t, v) for k, s, t, v in self.history if k == key]

    def __repr__(self) -> str:
        return f"<Run {self.id[:8]} {self.name!r} {self.status}>"

    def _repr_html_(self) -> str:
        """The run in a Jupyter notebook: params, metrics with goals and history charts."""
        from ..jupyter import run_html

        return run_html(self)

    # -- context manager --------------------------------------------------------
    def __enter__(self) -> Run:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: object) -> None:
        if not self.active or (self.on_release is not None and not self.on_release(self)):
            return
        failed = exc_type is not None and not issubclass(exc_type, KeyboardInterrupt)
        if failed:
            self.keep_traceback(exc)
        if self.attached:
            self.detach()
        elif exc_type is None:
            self.end()
        elif not failed:
            self.end("KILLED", error="KeyboardInterrupt")
        else:
            self.end("FAILED", error=error_summary(exc))

    # -- logging ----------------------------------------------------------------
    def log_param(self, key: str, value: Any) -> None:
        """Record a param; logging it again with another value raises ParamConflict."""
        self.log_params({key: value})

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Record several params; nested dicts are flattened with dots."""
        self._require_active()
        checked = validation.checked_params(params)
        for key, value in checked.items():
            if key in self.record.params and not _same(self.record.params[key], value):
                raise ParamConflict(
                    f"param {key!r} was logged as {self.record.params[key]!r:.200}; it cannot "
                    f"change to {value!r:.200} (params are write-once: log a new run, or use a tag)")
        self._log({"e": "p", "d": checked})

    def log_metric(self, key: str, value: Any, step: int | None = None,
                   timestamp: int | None = None) -> None:
        """Record one metric value; ``step`` defaults to the key's last step + 1 (0 at first)."""
        with self._lock:
            if self._journal is None:
                self._require_active()
            validation.check_key(key, "metric")
            value = validation.metric_value(key, value)
            if key not in self.record.metrics:
                self._make_room(_metric_cost(key))
            if step is None:
                summary = self.record.metrics.get(key)
                step = summary.step + 1 if summary is not None else 0
            else:
                step = validation.step_value(step)
            ts = _now_ms() if timestamp is None else validation.timestamp_ms(timestamp)
            event = {"e": "m", "k": key, "v": value, "s": step, "t": ts}
            if timestamp is not None:
                event["w"] = _now_ms()  # "t" is the caller's: keep when it was written
            self._journal.append(event)
            self._add_metric(key, value, step, ts)
            self._tick()

    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None,
                    timestamp: int | None = None) -> None:
        """Record several metric values at one step (default: each key's next step)."""
        ts = _now_ms() if timestamp is None else validation.timestamp_ms(timestamp)
        fixed = None if step is None else validation.step_value(step)
        with self._lock:  # default steps are read and used under the lock log_metric holds
            self._require_active()
            rows = []
            for key, value in metrics.items():
                validation.check_key(key, "metric")
                value = validation.metric_value(key, value)
                summary = self.record.metrics.get(key)
                if summary is None:
                    self._make_room(_metric_cost(key))
                key_step = fixed if fixed is not None else (summary.step + 1 if summary else 0)
                rows.append([key, value, key_step])
            event = {"e": "ms", "d": rows, "t": ts}
            if timestamp is not None:
                event["w"] = _now_ms()  # "t" is the caller's: keep when it was written
            self._log(event)

    def set_tag(self, key: str, value: Any) -> None:
        """Set a tag (tags can change; values are stored as strings)."""
        self.set_tags({key: value})

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        """Set several tags."""
        self._require_active()
        self._log({"e": "t", "d": validation.checked_tags(tags)})

    def note(self, text: str) -> None:
        """Append a timestamped markdown note, committed at once."""
        self._require_active()
        if not isinstance(text, str) or not text.strip():
            raise InvalidValue(f"a note needs some text, got {text!r:.60}")
        validation.note_text(text)
        entry = Note(time=record.utc_now(), author=self.repo.identity[0], text=text)
        self._log({"e": "n", "n": record.to_plain(entry)})
        self._commit(f"note on {self.name}: {_first_line(text)}")

    def conclude(self, verdict: str, text: str = "") -> None:
        """Record the verdict on the hypothesis (supported/refuted/inconclusive), committed at once."""
        self._require_active()
        verdict = validation.verdict_value(verdict)
        validation.note_text(text, "conclusion")
        entry = Conclusion(verdict=verdict, text=text, time=record.utc_now())
        self._log({"e": "c", "c": record.to_plain(entry)})
        tail = f" — {_first_line(text)}" if text.strip() else ""
        self._commit(f"conclude {self.name}: {verdict}{tail}")

    def log_artifact(self, local_path: str | os.PathLike[str],
                     artifact_path: str | None = None) -> Artifact:
        """Store a file: small files on the branch, larger ones in the artifact store.

        A relative path keeps its folders (``plots/residuals.png``); an absolute
        path, or one with ``..``, keeps its base name; with ``artifact_path`` the
        name is ``artifact_path/<base name>``, as in MLflow.
        """
        self._require_active()
        source = regular_file(local_path)
        if artifact_path is not None:
            name = f"{validation.artifact_path(artifact_path)}/{source.name}"
        else:
            name = _default_artifact_name(Path(local_path))
        return self.store_as(source, name)

    def store_as(self, source: Path, name: str) -> Artifact:
        """Store the file ``source`` as artifact ``name``, after the checks every artifact
        passes: the path rule, no case collision, no link leading out of the repository.
        What it writes stays reachable until the run commits (refs/labbook/pending)."""
        self._require_active()
        followed_links_stay_inside(source, self.repo.git.toplevel)
        name = validation.artifact_path(name)
        self._check_collisions([name])
        try:
            return self._store_artifact(source, name)
        finally:
            self._keep_pending()

    def log_artifacts(self, local_dir: str | os.PathLike[str],
                      artifact_path: str | None = None) -> list[Artifact]:
        """Store every file under a folder, keeping their relative paths."""
        self._require_active()
        prefix = validation.artifact_path(artifact_path) + "/" if artifact_path else ""
        followed_links_stay_inside(Path(local_dir), self.repo.git.toplevel)
        found = [(path, validation.artifact_path(prefix + rel)) for path, rel in files_under(local_dir)]
        self._check_collisions([name for _, name in found])  # all refused before any is stored
        try:
            return [self._store_artifact(path, name) for path, name in found]
        finally:
            self._keep_pending()

    def _check_collisions(self, names: list[str]) -> None:
        fresh = set(names)
        validation.check_collisions([a.path for a in self.record.artifacts if a.path not in fresh],
                                    names)

    def _store_artifact(self, source: Path, name: str) -> Artifact:
        size = source.stat().st_size
        if size <= self.repo.settings.inline_artifact_bytes:
            data = source.read_bytes()
            digest = hashlib.sha256(data).hexdigest()
            blob = self.repo.store.write_blob(data).oid
            pointer = Artifact(path=name, size=len(data), sha256=digest, location="branch")
        else:
            digest, size = sha256_file(source)
            try:
                self.repo.artifact_store.put(source, digest)
            except OSError as exc:
                raise ArtifactError(f"could not copy {source} into the artifact store "
                                    f"{self.repo.artifact_store.root}: {exc}") from exc
            blob = None
            pointer = Artifact(path=name, size=size, sha256=digest, location="store")
        self._log({"e": "a", "a": record.to_plain(pointer), "b": blob})
        if blob is not None:
            self._unkept += 1
            if self._unkept >= KEEP_EVERY:
                self._keep_pending()  # a big folder: keep what is written so far
        return pointer

    def keep_traceback(self, exc: BaseException | None) -> None:
        """Store the full traceback of ``exc`` as the artifact ``traceback.txt`` (capped at
        TRACEBACK_BYTES, head and tail); a failure to store it never hides ``exc``."""
        if exc is None or not self.active:
            return
        text = "".join(traceback.format_exception(exc)).encode("utf-8", "backslashreplace")
        if len(text) > TRACEBACK_BYTES:
            half = TRACEBACK_BYTES // 2
            text = text[:half] + b"\n[... traceback cut ...]\n" + text[-half:]
        try:
            with tempfile.TemporaryDirectory(prefix="labbook-traceback-") as folder:
                path = Path(folder, TRACEBACK_ARTIFACT)
                path.write_bytes(text)
                self.log_artifact(path)
        except Exception as problem:  # the run's own error matters more than its traceback
            print(f"labbook: could not keep the traceback of run {self.id[:8]}: {problem}",
                  file=sys.stderr)
    def _keep_pending(self) -> None:
        """Keep this run's uncommitted blobs (artifacts) reachable from a private ref until
        the run's last commit, so a `git gc --prune=now` meanwhile cannot drop them."""
        if not self._unkept:
            return
        blobs = [b for b in self._extra_files.values() if isinstance(b, Blob)]
        self.repo.store.keep(self.id, blobs)
        self._unkept = 0
        self._keeping = True

    def _release_pending(self) -> None:
        """Drop the private ref once the branch references every blob it kept."""
        if self._keeping:
            self.repo.store.release(self.id)
            self._keeping = False

    # -- ending -------------------------------------------------------------------
    def end(self, status: str = "FINISHED", error: str | None = None, *,
            end_time: str | None = None) -> None:
        """End the run with a terminal status and commit it; ``end_time`` (ISO UTC, default
        now) is for runs that ended elsewhere, such as imported ones."""
        if not self.active:
            return
        self._run_before_end()
        if status not in record.TERMINAL_STATUSES:
            raise InvalidValue(f"status {status!r} cannot end a run; use one of "
                               f"{', '.join(record.TERMINAL_STATUSES)}")
        self._log({"e": "end", "status": status, "time": end_time or record.utc_now(), "error": error})
        self._commit(f"end {self.name}: {status}{_metric_line(self.record)}")
        journal, self._journal = self._journal, None
        assert journal is not None
        journal.close(remove=True)
        self._release_pending()
        self.repo.keep_packed()
        if self.on_end is not None:
            self.on_end(self)

    def detach(self) -> None:
        """Commit the current state and let go of the run without ending it: it stays
        RUNNING and can be resumed (the parent `labbook run` ends it)."""
        if not self.active:
            return
        self._run_before_end()
        self._commit(f"detach {self.name}: {len(self.history)} metric values")
        journal, self._journal = self._journal, None
        assert journal is not None
        journal.close(remove=True)
        self._release_pending()
        if self.on_detach is not None:
            self.on_detach(self)

    def checkpoint(self) -> None:
        """Commit the run's current state now (also done every labbook.checkpointSeconds)."""
        self._require_active()
        self._commit(f"checkpoint {self.name}: {len(self.history)} metric values")

    def _run_before_end(self) -> None:
        hooks, self.before_end = self.before_end, []
        for hook in hooks:
            hook(self)

    # -- journal, state and commits -------------------------------------------
    def _require_active(self) -> None:
        if self._journal is None:
            raise InvalidValue(f"run {self.id[:8]} ({self.name}) is not active here; "
                               f"resume it with labbook.start_run(run_id={self.id!r})")

    def _log(self, event: dict[str, Any]) -> None:
        """Journal an event, then apply it. Every entry carries when it was written, in ms:
        "w", or for metric values logged now, their "t" (a dead run ends at its last entry)."""
        if "t" not in event:
            event["w"] = _now_ms()
        with self._lock:
            assert self._journal is not None
            if event["e"] not in ("ms", "end"):  # new metric keys made room as they were checked
                self._make_room(3 * len(json.dumps(event, default=str)) + 512, event)
            self._journal.append(event)
            self._apply(event)
            self._tick()

    def _make_room(self, cost: int, event: dict[str, Any] | None = None) -> None:
        """Refuse a change that would take run.yaml over validation.MAX_RECORD_BYTES.

        A cheap upper bound is kept between commits; only near the cap is the record
        serialised with the change applied (then put back), to measure it exactly.
        """
        if self._size_guess + cost <= validation.MAX_RECORD_BYTES:
            self._size_guess += cost
            return
        kept, files, dirty = self.record, self._extra_files, self._history_dirty
        self.record, self._extra_files = copy.deepcopy(kept), dict(files)  # a scratch copy
        try:
            if event is not None:
                self._apply(event)
            size = len(record.run_to_yaml(self.record)) + (0 if event is not None else cost)
        finally:
            self.record, self._extra_files, self._history_dirty = kept, files, dirty
        validation.check_record_size(size, f"{self.id[:8]} ({self.name})")
        self._size_guess = size

    def _tick(self) -> None:
        """Flush the journal about once a second and checkpoint when due. The call that got
        here is already journaled, so a disk that refuses the flush or the checkpoint is
        reported as a warning and retried at the next tick, never raised from a log call."""
        now = time.monotonic()
        if now >= self._next_sync:
            self._next_sync = now + SYNC_SECONDS
            assert self._journal is not None
            try:
                self._journal.sync()
                if now >= self._next_checkpoint:
                    self.checkpoint()
            except (StorageError, AccessDenied) as exc:
                _log.warning("labbook: run %s: %s (the journal holds every value logged; "
                             "retrying)", self.id[:8], exc)

    def _apply(self, event: dict[str, Any]) -> None:
        kind = event["e"]
        rec = self.record
        if kind == "m":
            self._add_metric(event["k"], event["v"], event["s"], event["t"])
        elif kind == "ms":
            for key, value, step in event["d"]:
                self._add_metric(key, value, step, event["t"])
        elif kind == "p":
            rec.params.update(event["d"])
        elif kind == "t":
            rec.tags.update(event["d"])
        elif kind == "n":
            rec.notes.append(Note(**event["n"]))
        elif kind == "c":
            rec.conclusion = Conclusion(**event["c"])
        elif kind == "a":
            pointer = Artifact(**event["a"])
            rec.artifacts = [a for a in rec.artifacts if a.path != pointer.path] + [pointer]
            target = record.artifact_branch_path(rec.id, pointer.path)
            if event.get("b"):
                self._extra_files[target] = Blob(event["b"])
            else:
                self._extra_files.pop(target, None)
        elif kind == "end":
            rec.status, rec.end_time, rec.error = event["status"], event["time"], event["error"]

    def _add_metric(self, key: str, value: float, step: int, ts: int) -> None:
        self.history.append((key, step, ts, value))
        summary = self.record.metrics.get(key)
        if summary is None:
            self.record.metrics[key] = MetricSummary.first(value, step, ts)
        else:
            summary.add(value, step, ts)
        self._history_dirty = True

    def _changes(self) -> dict[str, bytes | Blob | None]:
        rid = self.id
        changes: dict[str, bytes | Blob | None] = dict(self._extra_files)
        data = record.run_to_yaml(self.record)
        validation.check_record_size(len(data), f"{rid[:8]} ({self.name})")
        self._size_guess = len(data)
        changes[record.run_path(rid)] = data
        if self._history_dirty:
            changes[record.history_path(rid)] = record.history_to_tsv(self.history)
        return changes

    def _commit(self, message: str) -> None:
        if self._journal is not None:
            self._journal.sync()
        history_was_dirty = self._history_dirty
        changes = self._changes()
        path = record.run_path(self.id)

        def edit(snapshot: Snapshot) -> dict[str, bytes | Blob | None]:
            on_branch = snapshot.read(path)
            if on_branch is None or on_branch == self._committed or on_branch == changes[path]:
                return changes
            self._take_external_edits(record.run_from_yaml(on_branch, path))
            return {**changes, path: record.run_to_yaml(self.record)}

        try:
            self.repo.commit(edit, message)
        except (StorageError, AccessDenied) as exc:
            if self._journal is None or self._committed is None:
                raise
            raise type(exc)(f"run {self.id[:8]} ({self.name}) was not committed: {exc}. Everything "
                            "logged is kept in its journal and committed at the next checkpoint, "
                            "at its end or by `labbook recover`") from exc
        self._committed = record.run_to_yaml(self.record)
        self._base = None
        if history_was_dirty:
            self._history_dirty = False
        self._next_checkpoint = time.monotonic() + self.repo.settings.checkpoint_seconds

    def _take_external_edits(self, theirs: RunRecord) -> None:
        """Fold in what another process committed to this record since our last commit
        (a `labbook note`, `tag` or `rename` while the run is live). Our metrics and status
        stand: only this process logs them."""
        base = self._base if self._base is not None else (
            record.run_from_yaml(self._committed, record.run_path(self.id)) if self._committed else None)
        ours = self.record
        merged = merge.merge_records(base, ours, theirs)
        merged.metrics, merged.status = ours.metrics, ours.status
        merged.end_time, merged.error = ours.end_time, ours.error
        self.record = merged


def _metric_cost(key: str) -> int:
    """An upper bound of the bytes a new metric's summary adds to run.yaml."""
    return 4 * len(key.encode("utf-8", "replace")) + 400


def _same(old: Any, new: Any) -> bool:
    if isinstance(old, float) and isinstance(new, float) and math.isnan(old) and math.isnan(new):
        return True
    return type(old) is type(new) and old == new


def _first_line(text: str, limit: int = 72) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _metric_line(rec: RunRecord, most: int = 4) -> str:
    shown = [f"{k}={s.last:.6g}" for k, s in list(rec.metrics.items())[:most]]
    return f" ({', '.join(shown)})" if shown else ""


def _default_artifact_name(path: Path) -> str:
    """A relative path keeps its folders (plots/a.png); an absolute one keeps its base name."""
    if path.is_absolute():
        return path.name
    parts = path.as_posix().split("/")
    return path.name if ".." in parts else path.as_posix()


TRACEBACK_ARTIFACT = "traceback.txt"
TRACEBACK_BYTES = 256 * 1024


def error_summary(exc: BaseException | None) -> str:
    """One line naming an exception and its message (kept short for the record)."""
    if exc is None:
        return "unknown error"
    text = validation.storable_text(f"{type(exc).__name__}: {exc}".strip().rstrip(":"))
    return text if len(text) <= 1000 else text[:999] + "…"


def new_run_id() -> str:
    """A new run id: 32 hex digits, like MLflow's."""
    return uuid.uuid4().hex
