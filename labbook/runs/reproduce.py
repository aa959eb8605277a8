"""``labbook reproduce RUN``: re-run a run's command on its code, and compare the metrics.

The run's code commit is checked out into a temporary ``git worktree`` (never
the user's checkout), its recorded uncommitted changes (``code.diff``) are
applied there, and its recorded command runs in the same relative folder with
the same params, as a new run made like ``labbook run`` makes one, tagged
``labbook.reproduces: <id>``. The worktree is always removed afterwards.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InvalidValue
from . import lifecycle, provenance, wrapper
from .repository import Repository, open_repository

REPRODUCES_TAG = "labbook.reproduces"


@dataclass
class MetricComparison:
    """One metric of the original run next to its reproduction."""

    key: str
    original: float
    reproduced: float | None
    relative_difference: float
    moved: bool


@dataclass
class Reproduction:
    """The outcome of a reproduction and the metric comparison."""

    original: str
    outcome: wrapper.Outcome
    rtol: float
    metrics: list[MetricComparison] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what was adapted or looks wrong, said first

    @property
    def exit_status(self) -> int:
        if self.outcome.exit_status != 0:
            return self.outcome.exit_status
        return 1 if any(m.moved for m in self.metrics) else 0

    def lines(self) -> list[str]:
        why = f" ({self.outcome.launch_error})" if self.outcome.launch_error else ""
        out = [f"note: {note}" for note in self.notes]
        out.append(f"reproduced {self.original[:8]} as {self.outcome.run_id[:8]} ({self.outcome.name}): "
                   f"{self.outcome.status}, exit status {self.outcome.exit_status}{why}")
        for m in self.metrics:
            new = "missing" if m.reproduced is None else f"{m.reproduced:.6g}"
            mark = "MOVED" if m.moved else "same"
            out.append(f"  {m.key}: {m.original:.6g} → {new}  (relative difference "
                       f"{m.relative_difference:.3g}, {mark})")
        moved = sum(m.moved for m in self.metrics)
        out.append(f"{moved} of {len(self.metrics)} metrics moved beyond rtol {self.rtol:g}")
        return out


_PYTHON = re.compile(r"python(\d+(\.\d+)*)?")


def runnable_command(command: list[str]) -> tuple[list[str], list[str]]:
    """The command to run here, and notes on what was changed.

    A recorded interpreter that is missing here (another machine, another venv) is
    replaced by the same name on PATH, else ``python3``, else ``python``.
    """
    program = command[0]
    if not os.path.isabs(program) or os.access(program, os.X_OK):
        return command, []
    name = os.path.basename(program)
    if not _PYTHON.fullmatch(name):
        return command, []
    for candidate in dict.fromkeys((name, "python3", "python")):
        found = shutil.which(candidate)
        if found:
            return [found, *command[1:]], [f"the recorded interpreter {program} is missing here; "
                                           f"using {found} from PATH"]
    return command, [f"the recorded interpreter {program} is missing here, and no python is on PATH"]


def missing_inputs(command: list[str], cwd: Path, here: Path) -> list[str]:
    """Notes on files the command names that its commit lacks but the checkout has (untracked)."""
    notes = []
    for arg in command[1:]:
        if arg.startswith("-") or os.path.isabs(arg) or "\0" in arg:
            continue
        try:
            in_commit, in_checkout = (cwd / arg).exists(), (here / arg).is_file()
        except (OSError, ValueError):
            continue
        if not in_commit and in_checkout:
            notes.append(f"{arg} is not in the run's commit (was it untracked?); commit it so the "
                         "run can be reproduced")
    return notes


def relative_difference(a: float, b: float) -> float:
    """|a - b| / max(|a|, |b|); 0 for two equal values (NaNs included), inf for NaN vs number."""
    if math.isnan(a) or math.isnan(b):
        return 0.0 if math.isnan(a) and math.isnan(b) else math.inf
    if a == b:
        return 0.0
    return abs(a - b) / max(abs(a), abs(b))


@contextmanager
def temporary_worktree(repo: Repository, commit: str) -> Iterator[Path]:
    """A detached worktree of ``commit`` in a temporary folder, removed afterwards."""
    parent = Path(tempfile.mkdtemp(prefix="labbook-reproduce-"))
    tree = parent / "labbook-reproduce"
    try:
        repo.git.run(["worktree", "add", "--detach", str(tree), commit])
        yield tree
    finally:
        repo.git.run(["worktree", "remove", "--force", str(tree)], check=False)
        repo.git.run(["worktree", "prune"], check=False)
        shutil.rmtree(parent, ignore_errors=True)


def reproduce(repo: Repository, run: str, rtol: float = 1e-6,
              log_bytes: int = wrapper.DEFAULT_LOG_BYTES) -> Reproduction:
    """Re-run ``run`` on its code in a temporary worktree and compare its metrics."""
    snapshot = repo.store.snapshot()
    original = lifecycle.load(repo, run, snapshot).record
    if not original.code.commit:
        raise InvalidValue(f"run {original.id[:8]} ({original.name}) has no code commit to check out")
    if not original.command:
        raise InvalidValue(f"run {original.id[:8]} ({original.name}) has no recorded command")
    if provenance.REDACTED in original.command:
        raise InvalidValue(f"the command of run {original.id[:8]} had secrets redacted (***); "
                           "it cannot be re-run as recorded")
    diff = snapshot.read(original.code.diff) if original.code.diff else None
    experiment = repo.experiment(original.experiment)
    with temporary_worktree(repo, original.code.commit) as tree:
        inner = open_repository(tree)
        try:
            if diff:
                inner.git.run(["apply", "--binary", "-"], input=diff, in_worktree=True)
            cwd = Path(tree, original.code.cwd or ".").resolve()
            if not cwd.is_relative_to(tree.resolve()) or not cwd.is_dir():
                raise InvalidValue(f"the run's folder {original.code.cwd!r} is not in its commit")
            command, notes = runnable_command(original.command)
            notes += missing_inputs(command, cwd, Path(repo.git.toplevel or ".", original.code.cwd or "."))
            outcome = wrapper.run_command(
                inner, command,
                experiment=experiment.name if experiment else original.experiment,
                name=f"{original.name}-repro", hypothesis=f"reproduces {original.name} "
                f"({original.id[:8]})", params=original.params,
                tags={REPRODUCES_TAG: original.id}, cwd=str(cwd), log_bytes=log_bytes,
                metrics_file=original.tags.get(wrapper.METRICS_FILE_TAG),
                code_cwd=original.code.cwd,
                fixed={"name": True, "experiment": True, "hypothesis": True, "tags": [REPRODUCES_TAG]})
        finally:
            inner.close()
    again = lifecycle.load(repo, outcome.run_id).record
    result = Reproduction(original.id, outcome, rtol, notes=notes)
    for key, summary in original.metrics.items():
        new = again.metrics.get(key)
        rel = math.inf if new is None else relative_difference(summary.last, new.last)
        result.metrics.append(MetricComparison(key, summary.last, None if new is None else new.last,
                                               rel, rel > rtol))
    return result
