"""A repository as labbook uses it: settings from git config, the branch, the stores.

Settings are ordinary git config keys, so they follow git's system, global and
local scopes (``git config labbook.branch notebook``):

=============================  ==========================================  ================
key                            meaning                                     default
=============================  ==========================================  ================
labbook.branch                 the branch runs are committed to            experiments
labbook.inlineArtifactBytes    largest artifact kept on the branch         1m (1 MiB)
labbook.artifactStore          folder (or fsspec URL) for larger artifacts <git dir>/labbook/artifacts
labbook.checkpointSeconds      commit a live run at most this often        60
labbook.lockTimeoutSeconds     wait this long for a locked branch          10
labbook.fsync                  fsync objects, refs and journals            true
labbook.remote                 the remote push, pull and sync use          origin
labbook.pushTimeoutSeconds     keep retrying a push others beat this long  60
labbook.remoteArtifactStore    shared folder large artifacts are copied    (none)
                               to on push and from on pull
=============================  ==========================================  ================
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from .. import __version__
from ..errors import FormatError, InvalidValue, LabbookError
from ..format import validation
from ..format.record import (
    HEADER_PATH,
    ExperimentRecord,
    MetricSpec,
    experiment_from_yaml,
    experiment_path,
    experiment_slug,
    experiment_to_yaml,
    header_yaml,
    legacy_experiment_slug,
    slug_problem,
    utc_now,
)
from ..storage.artifacts import open_store
from ..storage.gitcmd import Git, discover
from ..storage.journal import journal_dir
from ..storage.store import BranchStore, Edit, Snapshot, identity_from

_SUFFIXES = {"k": 1024, "m": 1024**2, "g": 1024**3}


@dataclass(frozen=True)
class Settings:
    """labbook's settings, read from git config."""

    branch: str = "experiments"
    inline_artifact_bytes: int = 1024 * 1024
    artifact_store: str | None = None
    checkpoint_seconds: float = 60.0
    lock_timeout_seconds: float = 10.0
    fsync: bool = True
    remote: str = "origin"
    push_timeout: float = 60.0
    remote_artifact_store: str | None = None
    gc_auto: int = 6700  # git's own gc.auto: loose objects before packing; 0 never packs

    @classmethod
    def from_config(cls, config: Mapping[str, str]) -> Settings:
        """Read the labbook.* keys (lower-cased by git) and check each value."""
        defaults = cls()
        return cls(
            branch=config.get("labbook.branch", defaults.branch).strip() or defaults.branch,
            inline_artifact_bytes=_size(config, "labbook.inlineartifactbytes",
                                        defaults.inline_artifact_bytes),
            artifact_store=config.get("labbook.artifactstore") or None,
            checkpoint_seconds=float(_size(config, "labbook.checkpointseconds",
                                           int(defaults.checkpoint_seconds))),
            lock_timeout_seconds=float(_size(config, "labbook.locktimeoutseconds",
                                             int(defaults.lock_timeout_seconds))),
            fsync=_bool(config, "labbook.fsync", defaults.fsync),
            remote=config.get("labbook.remote", defaults.remote).strip() or defaults.remote,
            push_timeout=float(_size(config, "labbook.pushtimeoutseconds",
                                     int(defaults.push_timeout))),
            remote_artifact_store=config.get("labbook.remoteartifactstore") or None,
            gc_auto=_size(config, "gc.auto", defaults.gc_auto),
        )


def _size(config: Mapping[str, str], key: str, default: int) -> int:
    text = config.get(key)
    if text is None:
        return default
    value = text.strip().lower()
    scale = _SUFFIXES.get(value[-1:], 1)
    number = value[:-1] if scale != 1 else value
    if not number.isdigit():
        raise InvalidValue(f"git config {key} = {text!r} is not a whole number "
                           "(a k, m or g suffix is allowed)")
    return int(number) * scale


def _bool(config: Mapping[str, str], key: str, default: bool) -> bool:
    text = config.get(key)
    if text is None:
        return default
    value = text.strip().lower()
    if value in ("true", "yes", "on", "1", ""):
        return True
    if value in ("false", "no", "off", "0"):
        return False
    raise InvalidValue(f"git config {key} = {text!r} is not true or false")


class Repository:
    """The git repository, its labbook settings, branch store, journals and artifact store."""

    def __init__(self, git: Git):
        self.git = git
        self.config = git.config()
        self.settings = Settings.from_config(self.config)
        git.fsync = self.settings.fsync
        self.identity = identity_from(self.config)
        self.store = BranchStore(git, self.settings.branch, self.identity,
                                 lock_timeout=self.settings.lock_timeout_seconds)
        self.journal_dir = journal_dir(git.common_dir)
        store_root = self.settings.artifact_store or os.path.join(git.common_dir, "labbook",
                                                                  "artifacts")
        self.artifact_store = open_store(store_root, Path(git.common_dir, "labbook", "uploads"))
        self._known_experiments: dict[str, ExperimentRecord] = {}

    def init(self) -> bool:
        """Create the branch with its labbook.yaml if missing; True if it was created.

        In a clone whose remote (labbook.remote) already has the branch, the local branch
        starts at the remote-tracking one, as ``git checkout`` does, so that teammates
        share one history instead of each starting their own.
        """
        if self.start_from_remote() is not None:
            return True
        header = header_yaml(f"labbook {__version__}")

        def add_header(snapshot):
            return {} if snapshot.read(HEADER_PATH) is not None else {HEADER_PATH: header}

        return self.store.commit(add_header, "labbook: start the notebook") is not None

    def start_from_remote(self) -> str | None:
        """With no local branch but a remote-tracking one (a fresh clone), start the local
        branch there, as ``git switch`` does; the remote-tracking ref's name when it did.
        A repository that cannot be written (read-only) is left as it is."""
        tracking = f"refs/remotes/{self.settings.remote}/{self.settings.branch}"
        if not (tracking.isprintable() and " " not in tracking) or self.store.tip() is not None:
            return None
        found = self.git.read_object(tracking)
        if found is None or found[1] != "commit":
            return None
        try:
            moved = self.store.move(found[0], None, f"labbook: start from {tracking}")
        except (OSError, LabbookError):
            return None
        return tracking[len("refs/remotes/"):] if moved else None

    def commit(self, edit: Edit, message: str | Callable[[], str]) -> str | None:
        """Commit to the branch, creating it first if this is the repository's first run."""
        if self.store.tip() is None:
            self.init()
        return self.store.commit(edit, message)

    def experiment(self, slug: str) -> ExperimentRecord | None:
        """The experiment stored under ``slug``, or None."""
        data = self.store.snapshot().read(experiment_path(slug))
        return None if data is None else experiment_from_yaml(data, slug)

    def experiment_named(self, name: str) -> ExperimentRecord | None:
        """The experiment called ``name``, or None (looked up by its slug, not by a scan)."""
        snapshot = self.store.snapshot()
        for slug in _candidate_slugs(name):
            data = snapshot.read(experiment_path(slug))
            if data is not None:
                try:
                    found = experiment_from_yaml(data, slug)
                except FormatError:
                    continue
                if found.name == name:
                    return found
        return _renamed_to(snapshot, name)

    def ensure_experiment(self, name: str, description: str | None = None) -> ExperimentRecord:
        """Create the experiment if missing; update its description when one is given.

        Its file is ``experiments/<experiment_slug(name)>.yaml``; when another experiment
        holds that file (a renamed one, or a name hashing alike), a second slug with a longer
        hash is used, and if that too is taken the name is refused: two experiments never
        share a file."""
        validation.check_name(name, "experiment name")
        if description is not None:
            validation.check_text(description, "description", validation.MAX_TEXT_BYTES)
        existing = self.experiment_named(name)
        slug = existing.slug if existing is not None else experiment_slug(name)
        if slug in self._known_experiments and description is None:
            return self._known_experiments[slug]
        result: list[ExperimentRecord] = []
        chosen = [slug]

        def edit(snapshot: Snapshot) -> dict[str, bytes]:
            current = None
            for candidate in [chosen[0], _second_slug(name)]:
                data = snapshot.read(experiment_path(candidate))
                current = experiment_from_yaml(data, candidate) if data is not None else None
                chosen[0] = candidate
                if current is None or current.name == name:
                    break
            else:
                raise InvalidValue(f"experiment name {name!r} would share the file "
                                   f"{experiment_path(chosen[0])} with the experiment {current.name!r}; "
                                   "choose another name")
            if current is None:
                current = ExperimentRecord(slug=chosen[0], name=name, description=description,
                                           created=utc_now())
            elif description is None or current.description == description:
                result.append(current)
                return {}
            else:
                current.description = description
            result.append(current)
            return {experiment_path(chosen[0]): experiment_to_yaml(current)}

        verb = "describe" if existing is not None else "create"
        self.commit(edit, f"experiment {name}: {verb}" + (f" — {description}" if description else ""))
        self._known_experiments[result[-1].slug] = result[-1]
        return result[-1]

    def define_metric(self, experiment: str, key: str, spec: MetricSpec) -> ExperimentRecord:
        """Declare what ``key`` means in ``experiment`` (created if missing): its goal, summary,
        step metric and whether it is a key metric. Fields left None keep what was declared."""
        slug = self.ensure_experiment(experiment).slug
        path = experiment_path(slug)
        result: list[ExperimentRecord] = []

        def edit(snapshot: Snapshot) -> dict[str, bytes]:
            data = snapshot.read(path)
            if data is None:
                raise InvalidValue(f"experiment {experiment!r} was removed while its metric was defined")
            current = experiment_from_yaml(data, slug)
            old = current.metrics.get(key, MetricSpec())
            new = MetricSpec(goal=spec.goal or old.goal, summary=spec.summary or old.summary,
                             step_metric=spec.step_metric or old.step_metric, key=spec.key or old.key)
            result.append(current)
            if new == old and key in current.metrics:
                return {}
            current.metrics[key] = new
            return {path: experiment_to_yaml(current)}

        declared = ", ".join(f"{name} {value}" for name, value in
                             (("goal", spec.goal), ("summary", spec.summary),
                              ("step metric", spec.step_metric)) if value)
        self.commit(edit, f"experiment {experiment}: metric {key}" + (f" — {declared}" if declared else "")
                    + (" (key metric)" if spec.key else ""))
        self._known_experiments[slug] = result[-1]
        return result[-1]

    def keep_packed(self) -> None:
        """Have git pack the loose objects labbook wrote once git's own rule says so.

        labbook writes objects with plumbing, which never runs ``git gc --auto`` as
        ``git commit`` does; this applies the same rule (``gc.auto``, 6,700 loose
        objects by default; 0 turns it off) at the end of a run.
        """
        if self.git.loose_objects_over(self.settings.gc_auto):
            self.git.gc_auto(str(self._gc_lock))

    def wait_for_gc(self, timeout: float = 60.0) -> bool:
        """Wait until the background ``git gc`` the end of a run may have started has finished
        (before inspecting the repository with ``git fsck`` or ``count-objects``, say); False
        if it still runs after ``timeout`` seconds."""
        return self.git.wait_for_gc_lock(str(self._gc_lock), timeout)

    @property
    def _gc_lock(self) -> Path:
        return Path(self.git.common_dir, "labbook", "gc.lock")

    def forget_experiment(self, slug: str) -> None:
        """Drop what this process remembers of an experiment (after it was renamed)."""
        self._known_experiments.pop(slug, None)

    def close(self) -> None:
        self.git.close()


def _second_slug(name: str) -> str:
    """The slug of ``name`` when another experiment holds its first one."""
    return f"{experiment_slug(name)}-{hashlib.sha256(name.encode()).hexdigest()[:12]}"


def _candidate_slugs(name: str) -> list[str]:
    """Where an experiment called ``name`` may be: its slug, its second slug, the slug
    versions before 0.2 gave it."""
    return list(dict.fromkeys([experiment_slug(name), _second_slug(name), legacy_experiment_slug(name)]))


def _renamed_to(snapshot: Snapshot, name: str) -> ExperimentRecord | None:
    """An experiment renamed to ``name`` (a rename keeps the file, so its slug is another
    name's): found by reading every experiment file."""
    for entry in snapshot.list("experiments"):
        other = entry.name.removesuffix(".yaml")
        if entry.name.endswith(".yaml") and slug_problem(other) is None:
            found = snapshot.read(experiment_path(other))
            try:
                exp = experiment_from_yaml(found, other) if found is not None else None
            except FormatError:
                continue  # a broken file is fsck's to report; it is not this experiment
            if exp is not None and exp.name == name:
                return exp
    return None


def open_repository(path: str | os.PathLike[str] | None = None) -> Repository:
    """The repository around ``path`` (default: $LABBOOK_REPO, else the current directory)."""
    where = path if path is not None else os.environ.get("LABBOOK_REPO") or None
    return Repository(discover(where))
