"""Notebook edits of runs and experiments already on the branch.

Each edit is one commit whose subject reads like a line of the notebook
(``note on ridge-a3: Loss plateaus…``), so ``git log experiments`` is the
notebook's history and ``git blame`` works on a record. An edit is applied to
the tip it commits on (read, change, write, compare-and-swap), so it never
undoes a concurrent one; a live run merges such edits into its next commit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..errors import InvalidValue
from ..format import record, validation
from ..format.record import Conclusion, ExperimentRecord, Note, RunRecord
from ..storage.store import Snapshot
from . import lifecycle
from .repository import Repository


def _edit_run(repo: Repository, run: str, change: Callable[[RunRecord], str]) -> RunRecord:
    """Apply ``change`` (which returns the commit subject) to a run's record in one commit."""
    run_id = lifecycle.resolve(repo.store.snapshot(), run)
    path = record.run_path(run_id)
    result: list[RunRecord] = []
    subject: list[str] = []

    def edit(snapshot: Snapshot) -> dict[str, bytes]:
        data = snapshot.read(path)
        if data is None:
            raise InvalidValue(f"run {run_id[:8]} disappeared from the branch")
        rec = record.run_from_yaml(data, path)
        subject[:] = [change(rec)]
        result[:] = [rec]
        out = record.run_to_yaml(rec)
        validation.check_record_size(len(out), f"{run_id[:8]} ({rec.name})")
        return {path: out}

    repo.commit(edit, lambda: subject[0])
    return result[0]


def note(repo: Repository, run: str, text: str) -> RunRecord:
    """Append a timestamped, authored markdown note to a run."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidValue("a note needs some text")
    validation.note_text(text)

    def change(rec: RunRecord) -> str:
        rec.notes.append(Note(time=record.utc_now(), author=repo.identity[0], text=text))
        return f"note on {rec.name}: {_first_line(text)}"

    return _edit_run(repo, run, change)


def conclude(repo: Repository, run: str, verdict: str, text: str) -> RunRecord:
    """Record the verdict on a run's hypothesis: supported, refuted or inconclusive."""
    verdict = validation.verdict_value(verdict)
    validation.note_text(text, "conclusion")

    def change(rec: RunRecord) -> str:
        rec.conclusion = Conclusion(verdict=verdict, text=text, time=record.utc_now())
        tail = f" — {_first_line(text)}" if text.strip() else ""
        return f"conclude {rec.name}: {verdict}{tail}"

    return _edit_run(repo, run, change)


def tag(repo: Repository, run: str, tags: Mapping[str, str]) -> RunRecord:
    """Set tags on a run."""
    checked = {validation.check_key(k, "tag"): validation.tag_value(k, v) for k, v in tags.items()}
    if not checked:
        raise InvalidValue("give at least one tag as KEY=VALUE")

    def change(rec: RunRecord) -> str:
        rec.tags.update(checked)
        return f"tag {rec.name}: " + ", ".join(f"{k}={v}" for k, v in checked.items())

    return _edit_run(repo, run, change)


def untag(repo: Repository, run: str, keys: list[str]) -> RunRecord:
    """Remove tags from a run (a key it does not have is an error naming its tags)."""
    def change(rec: RunRecord) -> str:
        missing = [k for k in keys if k not in rec.tags]
        if missing:
            have = ", ".join(sorted(rec.tags)) or "none"
            raise InvalidValue(f"run {rec.name} has no tag {missing[0]!r} (tags: {have})")
        for key in keys:
            del rec.tags[key]
        return f"untag {rec.name}: {', '.join(keys)}"

    return _edit_run(repo, run, change)


def rename(repo: Repository, run: str, new_name: str) -> RunRecord:
    """Give a run a new name (its id never changes)."""
    validation.check_name(new_name, "run name")

    def change(rec: RunRecord) -> str:
        old, rec.name = rec.name, new_name
        return f"rename {old} → {new_name}"

    return _edit_run(repo, run, change)


def adopt_script_settings(repo: Repository, run_id: str, fixed: Mapping[str, Any], *,
                          name: str | None = None, experiment: str | None = None,
                          hypothesis: str | None = None, tags: Mapping[str, Any] | None = None,
                          description: str | None = None) -> list[str]:
    """Apply to a ``labbook run`` run what its script said (``set_experiment``, ``start_run(name=,
    hypothesis=, tags=, description=)``) in one commit. ``fixed`` names what the command line
    set (``name``, ``experiment``, ``hypothesis``: true; ``tags``: its keys): the command line
    wins there. Returns one line per value the command line kept, for the script's stderr."""
    said: list[str] = []
    kept_tags = set(fixed.get("tags") or [])
    wanted_tags = {validation.check_key(k, "tag"): str(v) for k, v in (tags or {}).items()}
    slug = repo.ensure_experiment(experiment).slug if experiment and not fixed.get("experiment") else None
    if name is not None and (not isinstance(name, str) or not name.strip()):
        raise InvalidValue(f"run name {name!r} is empty")

    def change(rec: RunRecord) -> str:
        changed = []
        for field, value, flag in (("name", name, "--name"), ("hypothesis", hypothesis, "--hypothesis")):
            if value is None or getattr(rec, field) == value:
                continue
            if fixed.get(field):
                said.append(f"labbook: the command line's {flag} {getattr(rec, field)!r} wins over "
                            f"the script's {value!r}")
            else:
                setattr(rec, field, value)
                changed.append(field)
        if experiment and fixed.get("experiment") and slug is None:
            said.append(f"labbook: the command line's --experiment wins over the script's {experiment!r}")
        elif slug is not None and rec.experiment != slug:
            rec.experiment = slug
            changed.append("experiment")
        for key, value in wanted_tags.items():
            if key in kept_tags and rec.tags.get(key) != value:
                said.append(f"labbook: the command line's tag {key}={rec.tags.get(key)} wins over the "
                            f"script's {key}={value}")
            elif rec.tags.get(key) != value:
                rec.tags[key] = value
                changed.append(f"tag {key}")
        if description and not any(n.text == description for n in rec.notes):
            rec.notes.append(Note(time=record.utc_now(), author=repo.identity[0], text=description))
            changed.append("description")
        return f"run {rec.name}: as its script says ({', '.join(changed) or 'nothing new'})"

    _edit_run(repo, run_id, change)
    return said


def set_deleted(repo: Repository, run: str, deleted: bool) -> RunRecord:
    """Soft-delete (or restore) a run: hidden from listings by default, kept in history."""
    def change(rec: RunRecord) -> str:
        rec.deleted = deleted
        return f"{'delete' if deleted else 'restore'} {rec.name}"

    return _edit_run(repo, run, change)


def describe(repo: Repository, experiment: str, description: str) -> ExperimentRecord:
    """Set an existing experiment's question."""
    _existing_slug(repo, experiment)
    return repo.ensure_experiment(_existing_name(repo, experiment), description)


def create_experiment(repo: Repository, name: str, description: str | None) -> ExperimentRecord:
    """Create an experiment (an error if one of that name exists)."""
    validation.check_name(name, "experiment name")
    if repo.experiment_named(name) is not None:
        raise InvalidValue(f"experiment {name!r} exists already")
    return repo.ensure_experiment(name, description)


def rename_experiment(repo: Repository, experiment: str, new_name: str) -> ExperimentRecord:
    """Rename an experiment; its runs follow (they point at its file, which keeps its slug)."""
    validation.check_name(new_name, "experiment name")
    slug = _existing_slug(repo, experiment)
    taken = _slug_for_name(repo, new_name)
    if taken is not None and taken != slug:
        raise InvalidValue(f"experiment {new_name!r} exists already")

    def change(exp: ExperimentRecord) -> None:
        exp.name = new_name

    old = _existing_name(repo, experiment)
    return _edit_experiment(repo, experiment, slug, change, f"experiment {old}: rename → {new_name}")


def tag_experiment(repo: Repository, experiment: str, tags: Mapping[str, str]) -> ExperimentRecord:
    """Set tags (string → string, MLflow's experiment tags) on an existing experiment."""
    for key, value in tags.items():
        validation.check_key(key, "tag")
        if not isinstance(value, str):
            raise InvalidValue(f"experiment tag {key!r} has the value {value!r:.60}; allowed: a string")
    slug = _existing_slug(repo, experiment)

    def change(exp: ExperimentRecord) -> None:
        exp.tags.update(tags)

    return _edit_experiment(repo, experiment, slug, change,
                            f"experiment {_existing_name(repo, experiment)}: tag "
                            f"{', '.join(f'{k}={v}' for k, v in tags.items())}"[:200])


def _edit_experiment(repo: Repository, experiment: str, slug: str,
                     change: Callable[[ExperimentRecord], None], message: str) -> ExperimentRecord:
    """Apply ``change`` to the experiment file ``slug`` in one commit (read, change, write on
    the tip it commits on); this process then forgets what it cached of it."""
    path = record.experiment_path(slug)
    result: list[ExperimentRecord] = []

    def edit(snapshot: Snapshot) -> dict[str, bytes]:
        data = snapshot.read(path)
        if data is None:
            raise InvalidValue(f"experiment {experiment!r} disappeared from the branch")
        exp = record.experiment_from_yaml(data, slug)
        change(exp)
        result[:] = [exp]
        return {path: record.experiment_to_yaml(exp)}

    repo.commit(edit, message)
    repo.forget_experiment(slug)
    return result[0]


def _slug_for_name(repo: Repository, name: str) -> str | None:
    snapshot = repo.store.snapshot()
    for entry in snapshot.list("experiments"):
        slug = entry.name.removesuffix(".yaml")
        exp = repo.experiment(slug)
        if exp is not None and exp.name == name:
            return slug
    return None


def _existing_slug(repo: Repository, experiment: str) -> str:
    slug = _slug_for_name(repo, experiment)
    if slug is None and repo.experiment(experiment) is not None:
        slug = experiment  # given by its slug
    if slug is None:
        raise InvalidValue(f"no experiment named {experiment!r}")
    return slug


def _existing_name(repo: Repository, experiment: str) -> str:
    exp = repo.experiment(_existing_slug(repo, experiment))
    assert exp is not None
    return exp.name


def _first_line(text: str, limit: int = 72) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"
