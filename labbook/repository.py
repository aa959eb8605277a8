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
labbook.remoteArtifactStore    shared folder large artifacts are copied    (none)
                               to on push and from on pull
=============================  ==========================================  ================
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from . import __version__, validation
from .artifacts import open_store
from .errors import FormatError, InvalidValue
from .gitcmd import Git, discover
from .journal import journal_dir
from .record import (
    HEADER_PATH,
    ExperimentRecord,
    experiment_from_yaml,
    experiment_path,
    experiment_slug,
    experiment_to_yaml,
    header_yaml,
    utc_now,
)
from .store import BranchStore, Edit, Snapshot, identity_from

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
        self.artifact_store = open_store(store_root)
        self._known_experiments: dict[str, ExperimentRecord] = {}
        self._slug_by_name: dict[str, str] = {}

    def init(self) -> bool:
        """Create the branch with its labbook.yaml if missing; True if it was created.

        In a clone whose remote (labbook.remote) already has the branch, the local branch
        starts at the remote-tracking one, as ``git checkout`` does, so that teammates
        share one history instead of each starting their own.
        """
        tracking = f"refs/remotes/{self.settings.remote}/{self.settings.branch}"
        usable = tracking.isprintable() and " " not in tracking
        found = self.git.read_object(tracking) if usable and self.store.tip() is None else None
        if found is not None and found[1] == "commit" \
                and self.store.move(found[0], None, f"labbook: start from {tracking}"):
            return True
        header = header_yaml(f"labbook {__version__}")

        def add_header(snapshot):
            return {} if snapshot.read(HEADER_PATH) is not None else {HEADER_PATH: header}

        return self.store.commit(add_header, "labbook: start the notebook") is not None

    def commit(self, edit: Edit, message: str | Callable[[], str]) -> str | None:
        """Commit to the branch, creating it first if this is the repository's first run."""
        if self.store.tip() is None:
            self.init()
        return self.store.commit(edit, message)

    def experiment(self, slug: str) -> ExperimentRecord | None:
        """The experiment stored under ``slug``, or None."""
        data = self.store.snapshot().read(experiment_path(slug))
        return None if data is None else experiment_from_yaml(data, slug)

    def ensure_experiment(self, name: str, description: str | None = None) -> ExperimentRecord:
        """Create the experiment if missing; update its description when one is given.

        An experiment is found by its name: at its slug's file, or (after a rename, which
        keeps the file) wherever a file holds that name. A name that is another
        experiment's slug is refused rather than logged into that experiment.
        """
        validation.check_name(name, "experiment name")
        if description is not None:
            validation.check_text(description, "description", validation.MAX_TEXT_BYTES)
        known = self._known_experiments.get(self._slug_by_name.get(name, experiment_slug(name)))
        if known is not None and known.name == name and description is None:
            return known
        result: list[ExperimentRecord] = []

        def edit(snapshot: Snapshot) -> dict[str, bytes]:
            current = _experiment_named(snapshot, name)
            if current is None:
                slug = experiment_slug(name)
                taken = snapshot.read(experiment_path(slug))
                if taken is not None:
                    other = experiment_from_yaml(taken, slug).name
                    raise InvalidValue(f"experiment name {name!r} is the slug of experiment "
                                       f"{other!r} ({experiment_path(slug)}); allowed: a name no "
                                       "other experiment has as its name or slug")
                current = ExperimentRecord(slug=slug, name=name, description=description,
                                           created=utc_now())
            elif description is None or current.description == description:
                result.append(current)
                return {}
            else:
                current.description = description
            result.append(current)
            return {experiment_path(current.slug): experiment_to_yaml(current)}

        exists = _experiment_named(self.store.snapshot(), name) is not None
        verb = "describe" if exists else "create"
        self.commit(edit, f"experiment {name}: {verb}" + (f" — {description}" if description else ""))
        self._known_experiments[result[-1].slug] = result[-1]
        self._slug_by_name[name] = result[-1].slug
        return result[-1]

    def keep_packed(self) -> None:
        """Have git pack the loose objects labbook wrote once git's own rule says so.

        labbook writes objects with plumbing, which never runs ``git gc --auto`` as
        ``git commit`` does; this applies the same rule (``gc.auto``, 6,700 loose
        objects by default; 0 turns it off) at the end of a run.
        """
        if self.git.loose_objects_over(self.settings.gc_auto):
            self.git.gc_auto()

    def forget_experiment(self, slug: str) -> None:
        """Drop what this process remembers of an experiment (after it was renamed)."""
        self._known_experiments.pop(slug, None)
        self._slug_by_name = {n: s for n, s in self._slug_by_name.items() if s != slug}

    def close(self) -> None:
        self.git.close()


def _experiment_named(snapshot: Snapshot, name: str) -> ExperimentRecord | None:
    """The experiment called ``name``: at its slug's file, else (renamed) any file."""
    slug = experiment_slug(name)
    data = snapshot.read(experiment_path(slug))
    if data is not None and experiment_from_yaml(data, slug).name == name:
        return experiment_from_yaml(data, slug)
    for entry in snapshot.list("experiments"):
        other = entry.name.removesuffix(".yaml")
        if other != slug and entry.name.endswith(".yaml"):
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
