"""``labbook fsck``: check the notebook end to end.

* every ``run.yaml`` and ``metrics.tsv`` on the branch parses, and every experiment file;
* every artifact pointer resolves and its bytes match their sha256 (an object store's
  objects by their size and sha256 metadata, re-hashed only with ``deep``);
* no run of this host is RUNNING without a live process (``--recover`` ends such
  runs KILLED, folding their journals first);
* every experiment a run names exists.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field

from ..errors import FormatError, LabbookError
from ..format import record
from ..runs import artifact_files, lifecycle
from ..runs.repository import Repository
from ..storage import journal
from ..storage.store import Snapshot


@dataclass
class FsckReport:
    """What ``fsck`` looked at and what it found."""

    runs: int = 0
    artifacts: int = 0
    experiments: int = 0
    problems: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)  # RUNNING runs whose process is gone
    recovered: list[str] = field(default_factory=list)
    elsewhere: int = 0  # RUNNING runs of other hosts (not judged here)
    size_only: int = 0  # object-store artifacts whose object names no sha256: size checked only
    uploads: list[str] = field(default_factory=list)  # this clone's unfinished S3 uploads
    aborted_uploads: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems and not self.stale

    def lines(self) -> list[str]:
        out = list(self.problems)
        out += [f"run {rid[:8]} is RUNNING but its process is gone: `labbook fsck --recover` "
                "ends it KILLED" for rid in self.stale]
        out += [f"recovered run {rid[:8]}: KILLED" for rid in self.recovered]
        if self.size_only:
            out.append(f"{self.size_only} artifacts in the object store carry no sha256 in their "
                       "metadata: their size was checked; `labbook fsck --deep` re-hashes them")
        if self.uploads:
            out.append(f"{len(self.uploads)} unfinished uploads of this clone (resumed when the file "
                       "is logged again; `labbook fsck --abort-uploads` aborts them):")
            out += [f"  {line}" for line in self.uploads]
        if self.aborted_uploads:
            out.append(f"aborted {self.aborted_uploads} unfinished uploads")
        if self.elsewhere:
            out.append(f"{self.elsewhere} RUNNING runs of other hosts were not checked for a process")
        problems = len(self.problems) + len(self.stale)
        out.append(f"checked {self.runs} runs, {self.artifacts} artifacts, {self.experiments} "
                   f"experiments: " + ("no problems" if not problems else f"{problems} problems"))
        return out


def fsck(repo: Repository, recover: bool = False, deep: bool = False,
         abort_uploads: bool = False) -> FsckReport:
    """Check every file of the branch and every artifact; with ``recover``, end dead runs.
    ``deep`` downloads and re-hashes object-store artifacts; ``abort_uploads`` aborts this
    clone's unfinished uploads to the object store."""
    report = FsckReport()
    store = repo.artifact_store
    if store.remote:
        if abort_uploads:
            report.aborted_uploads = store.abort_uploads()
        report.uploads = store.unfinished_uploads()
    snapshot = repo.store.snapshot()
    experiments = _check_experiments(snapshot, report)
    host = socket.gethostname()
    for fan in snapshot.list("runs"):
        if _refused(f"runs/{fan.name}", record.run_folder_problem(fan.name), report):
            continue
        for entry in snapshot.list(f"runs/{fan.name}"):
            if _refused(f"runs/{fan.name}/{entry.name}", record.run_folder_problem(fan.name, entry.name),
                        report):
                continue
            rec = _check_run(repo, snapshot, entry.name, experiments, report, deep)
            if rec is None or rec.status != "RUNNING":
                continue
            if rec.host != host:
                report.elsewhere += 1
            elif not journal.is_live(repo.journal_dir, rec.id):
                report.stale.append(rec.id)
    if recover and report.stale:
        _recover(repo, report)
    return report


def _refused(path: str, problem: str | None, report: FsckReport) -> bool:
    """Report a folder under runs/ that is not a run folder (readers never list it)."""
    if problem is not None:
        report.problems.append(f"{path!r}: {problem}; no labbook command reads it")
    return problem is not None


def _check_experiments(snapshot: Snapshot, report: FsckReport) -> set[str]:
    found = set()
    for entry in snapshot.list("experiments"):
        if not entry.name.endswith(".yaml"):
            continue
        slug = entry.name[: -len(".yaml")]
        found.add(slug)
        report.experiments += 1
        try:
            record.experiment_from_yaml(snapshot.read(record.experiment_path(slug)) or b"", slug)
        except FormatError as exc:
            report.problems.append(f"unreadable: {exc}")
    return found


def _check_run(repo: Repository, snapshot: Snapshot, run_id: str, experiments: set[str],
               report: FsckReport, deep: bool = False) -> record.RunRecord | None:
    path = record.run_path(run_id)
    found = snapshot.entry(path)
    problem = record.file_mode_problem(found.mode) if found is not None else None
    if problem is not None:
        report.problems.append(f"{path}: {problem}; no labbook command reads it")
        return None
    data = snapshot.read(path)
    if data is None:
        report.problems.append(f"{record.run_dir(run_id)} has no run.yaml")
        return None
    report.runs += 1
    try:
        rec = record.run_from_yaml(data, path)
        history = snapshot.read(record.history_path(run_id))
        if history is not None:
            record.history_from_tsv(history, record.history_path(run_id))
    except (FormatError, UnicodeDecodeError) as exc:
        report.problems.append(f"unreadable: {exc}")
        return None
    if rec.id != run_id:
        report.problems.append(f"{path}: its id is {rec.id!r}, not the folder's {run_id!r}")
    if rec.experiment not in experiments:
        report.problems.append(f"run {run_id[:8]} ({rec.name}): its experiment {rec.experiment!r} "
                               f"has no {record.experiment_path(rec.experiment)}")
    for pointer in rec.artifacts:
        report.artifacts += 1
        verdict = artifact_files.check(repo, snapshot, run_id, pointer, deep)
        report.size_only += verdict == "size ok"
        if verdict not in ("ok", "size ok"):
            report.problems.append(f"run {run_id[:8]} ({rec.name}): artifact {pointer.path} "
                                   f"({pointer.location}) is {verdict}")
    return rec


def _recover(repo: Repository, report: FsckReport) -> None:
    folded = {run.id for run in lifecycle.recover(repo)}
    for rid in list(report.stale):
        if rid not in folded:
            try:
                run = lifecycle.resume(repo, rid)
                run.end("KILLED", error="its process was gone (ended by labbook fsck --recover)")
            except LabbookError as exc:
                report.problems.append(f"run {rid[:8]} could not be recovered: {exc}")
                continue
        (repo.journal_dir / f"{rid}.hold").unlink(missing_ok=True)  # left by a killed `labbook run`
        report.stale.remove(rid)
        report.recovered.append(rid)
