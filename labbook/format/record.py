"""The on-branch format, version 1: the single owner of every path and field.

Layout of the branch (docs/FORMAT.md is the public description)::

    labbook.yaml                      format version, created-by
    experiments/<slug>.yaml           ExperimentRecord
    environments/<sha256>.yaml        installed packages, shared by every run that had them
    runs/<id[:2]>/<id>/run.yaml       RunRecord
    runs/<id[:2]>/<id>/metrics.tsv    per-step history: key, step, timestamp (ms), value
    runs/<id[:2]>/<id>/code.diff      uncommitted tracked changes when the run started
    runs/<id[:2]>/<id>/artifacts/...  artifacts small enough to live on the branch

Reading is lenient: keys this version does not know are kept in ``extra`` and
written back unchanged, so teammates on different versions share one branch.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

from ..errors import FormatError
from . import recordrules, yamlio
from .recordrules import EXPERIMENT_SHAPE, check_run_plain, check_shape, shown, slug_problem

# The rules every record read from the branch passes live in recordrules; these names are
# the format's public face.
FORMAT_VERSION = recordrules.FORMAT_VERSION
STATUSES = recordrules.STATUSES
VERDICTS = recordrules.VERDICTS
ARTIFACT_LOCATIONS = recordrules.ARTIFACT_LOCATIONS
RUN_ID = recordrules.RUN_ID
SLUG = recordrules.SLUG
RUN_SHAPE = recordrules.RUN_SHAPE
is_run_id = recordrules.is_run_id
file_mode_problem = recordrules.file_mode_problem
run_folder_problem = recordrules.run_folder_problem
check_run_folder = recordrules.check_run_folder
run_slot_checks = recordrules.run_slot_checks
check_slot = recordrules.check_slot
TERMINAL_STATUSES = ("FINISHED", "FAILED", "KILLED")
METRIC_GOALS = ("maximize", "minimize")
METRIC_SUMMARIES = ("last", "min", "max", "mean")
HEADER_PATH = "labbook.yaml"
DEFAULT_EXPERIMENT = "default"


# -- paths -------------------------------------------------------------------
def run_dir(run_id: str) -> str:
    """The folder of a run on the branch (fanned out by the id's first two characters)."""
    return f"runs/{run_id[:2]}/{run_id}"


def run_path(run_id: str) -> str:
    return f"{run_dir(run_id)}/run.yaml"


def history_path(run_id: str) -> str:
    return f"{run_dir(run_id)}/metrics.tsv"


def diff_path(run_id: str) -> str:
    return f"{run_dir(run_id)}/code.diff"


def artifact_branch_path(run_id: str, artifact_path: str) -> str:
    return f"{run_dir(run_id)}/artifacts/{artifact_path}"


def experiment_path(slug: str) -> str:
    return f"experiments/{slug}.yaml"


def environment_path(digest: str) -> str:
    return f"environments/{digest}.yaml"


def experiment_slug(name: str) -> str:
    """A file-safe, stable id for an experiment name (a hash suffix keeps it unique)."""
    slug = re.sub(r"[^a-z0-9._-]+", "-", name.lower()).strip("-._")[:60] or "experiment"
    if slug != name or re.search(r"-[0-9a-f]{6}$", name):  # a name shaped like a hashed slug
        slug = f"{slug}-{hashlib.sha256(name.encode()).hexdigest()[:6]}"  # hashes too: never shared
    return slug


def legacy_experiment_slug(name: str) -> str:
    """The slug versions before 0.2 gave ``name`` (a name shaped like a hashed slug was its own
    slug, so it could share the file of another name); still found when reading."""
    slug = re.sub(r"[^a-z0-9._-]+", "-", name.lower()).strip("-._")[:60] or "experiment"
    return slug if slug == name else experiment_slug(name)


def utc_now() -> str:
    """The current time as the format writes it: UTC ISO 8601 with milliseconds."""
    return format_time(datetime.now(UTC))


def format_time(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# -- records -----------------------------------------------------------------
@dataclass
class Note:
    """A timestamped, authored notebook entry (markdown)."""

    time: str
    author: str
    text: str


@dataclass
class Conclusion:
    """What the run showed about its hypothesis."""

    verdict: str
    text: str
    time: str


@dataclass
class MetricSummary:
    """Last, min and max of one metric, with the step and time of the last value."""

    last: float
    min: float
    max: float
    step: int
    timestamp: int
    count: int

    def add(self, value: float, step: int, timestamp: int) -> None:
        """Fold one more logged value in: ``last`` is the value of the highest step, then the
        latest timestamp, then the larger value, as MLflow's latest metric."""
        newer = (step, timestamp) > (self.step, self.timestamp)
        if newer or ((step, timestamp) == (self.step, self.timestamp)
                     and (value > self.last or math.isnan(self.last))):
            self.last, self.step, self.timestamp = value, step, timestamp
        if not math.isnan(value):
            self.min = value if math.isnan(self.min) else min(self.min, value)
            self.max = value if math.isnan(self.max) else max(self.max, value)
        self.count += 1

    @classmethod
    def first(cls, value: float, step: int, timestamp: int) -> MetricSummary:
        return cls(value, value, value, step, timestamp, 1)


@dataclass
class Artifact:
    """A pointer to an artifact: where its bytes live and how to check them."""

    path: str
    size: int
    sha256: str
    location: str  # "branch" (a blob in the run's folder) or "store" (the artifact store)


@dataclass
class Conflict:
    """A value a merge of teammates' branches did not keep, kept here so nothing is dropped."""

    field: str  # where it was: "params.alpha", "tags.stage", "conclusion", "artifacts.<path>", …
    value: Any  # the value that was set aside
    commit: str | None = None  # the tip of the branch it came from


@dataclass
class Code:
    """Code provenance: the commit a run ran on and whether the tree was dirty."""

    commit: str | None = None
    branch: str | None = None
    remote: str | None = None
    dirty: bool = False
    diff: str | None = None  # branch path of the uncommitted tracked changes
    cwd: str | None = None  # working directory relative to the repository root


@dataclass
class Environment:
    """Interpreter and platform; the package list lives in a shared file."""

    python: str | None = None
    platform: str | None = None
    packages: str | None = None  # branch path of environments/<sha256>.yaml


@dataclass
class RunRecord:
    """Everything about one run; written as runs/<id[:2]>/<id>/run.yaml."""

    id: str
    name: str
    experiment: str
    status: str = "RUNNING"
    start_time: str = ""
    end_time: str | None = None
    parent: str | None = None
    user: str | None = None
    host: str | None = None
    command: list[str] = field(default_factory=list)
    code: Code = field(default_factory=Code)
    environment: Environment = field(default_factory=Environment)
    hypothesis: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, MetricSummary] = field(default_factory=dict)
    notes: list[Note] = field(default_factory=list)
    conclusion: Conclusion | None = None
    error: str | None = None
    exit_code: int | None = None  # the command's exit status, for runs made by `labbook run`
    artifacts: list[Artifact] = field(default_factory=list)
    deleted: bool = False  # soft deletion: hidden by default, kept in history; written when true
    conflicts: list[Conflict] = field(default_factory=list)  # written only when not empty
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class MetricSpec:
    """What an experiment declares about one of its metrics (``labbook.define_metric``)."""

    goal: str | None = None  # "maximize" or "minimize": which way is better
    summary: str | None = None  # which value stands for a run: last (default), min, max or mean
    step_metric: str | None = None  # another metric to use as this one's x axis
    key: bool = False  # one of the experiment's key metrics, shown first

    def to_plain(self) -> dict[str, Any]:
        """Only what was declared, so an experiment file stays short."""
        out: dict[str, Any] = {}
        for name in ("goal", "summary", "step_metric"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        if self.key:
            out["key"] = True
        return out


@dataclass
class ExperimentRecord:
    """An experiment: a question and the runs that try to answer it."""

    slug: str
    name: str
    description: str | None = None
    created: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, MetricSpec] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)



# -- to and from plain data -----------------------------------------------------
def _plain(obj: Any) -> Any:
    """Dataclasses to dicts in field order, ``extra`` merged in last."""
    if hasattr(obj, "__dataclass_fields__"):
        out = {f.name: _plain(getattr(obj, f.name)) for f in fields(obj) if f.name != "extra"}
        out.update(getattr(obj, "extra", {}) or {})
        return out
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_plain(v) for v in obj]
    return obj


def _build(cls: type, data: Any, path: str, where: str) -> Any:
    if not isinstance(data, dict):
        raise FormatError(path, f"{where} should be a mapping, not {type(data).__name__}")
    known = {f.name for f in fields(cls)}
    kwargs = {k: v for k, v in data.items() if k in known and k != "extra"}
    if "extra" in known:
        kwargs["extra"] = {k: v for k, v in data.items() if k not in known}
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise FormatError(path, f"{where}: {exc}") from exc


def run_to_yaml(record: RunRecord) -> bytes:
    """The bytes of run.yaml; the same record always gives the same bytes."""
    data = _plain(record)
    for optional in ("deleted", "conflicts"):
        if not data.get(optional):
            data.pop(optional, None)
    return yamlio.dump({"format": FORMAT_VERSION, **data})


def to_plain(obj: Any) -> Any:
    """Any record part as plain data (dicts, lists and scalars), in field order."""
    return _plain(obj)


def run_to_plain(record: RunRecord) -> dict[str, Any]:
    """The record as plain data (what run.yaml holds, without the format key)."""
    return _plain(record)


def run_from_yaml(data: bytes, path: str) -> RunRecord:
    """Parse run.yaml leniently: unknown keys are kept, a newer format is refused."""
    return run_from_plain(yamlio.load(data, path), path)


def load_yaml(data: bytes, path: str) -> Any:
    """Parse a YAML file labbook reads off the branch (a metrics file) with the hardened loader."""
    return yamlio.load(data, path)


def run_plain_from_yaml(data: bytes, path: str) -> dict[str, Any]:
    """run.yaml as checked plain data, without building a RunRecord (the fast read path).

    The same checks as :func:`run_from_yaml` (:func:`check_run_plain`): what readers of
    rows see has passed every rule a RunRecord is built from.
    """
    raw = yamlio.load(data, path)
    check_run_plain(raw, path)
    raw = dict(raw)
    raw.pop("format", None)
    return raw


def project_run_yaml(data: bytes, compile: Callable[[Any], Any]) -> tuple[Any, list[Any]] | None:
    """run.yaml's values with what ``compile`` made of their shape (``fastyaml.project``), or
    None; then :func:`run_plain_from_yaml` reads it. Unchecked: the caller checks the values."""
    return yamlio.project(data, compile)


def run_from_plain(raw: Any, path: str) -> RunRecord:
    """Build a RunRecord from plain data (run.yaml content or a journal's copy)."""
    check_run_plain(raw, path)
    raw = dict(raw)
    raw.pop("format", None)
    record: RunRecord = _build(RunRecord, raw, path, "run")
    record.code = _build(Code, raw.get("code") or {}, path, "code")
    record.environment = _build(Environment, raw.get("environment") or {}, path, "environment")
    record.metrics = {str(k): _build(MetricSummary, v, path, f"metrics.{k}")
                      for k, v in (raw.get("metrics") or {}).items()}
    record.notes = [_build(Note, n, path, "notes") for n in raw.get("notes") or []]
    if raw.get("conclusion") is not None:
        record.conclusion = _build(Conclusion, raw["conclusion"], path, "conclusion")
    record.artifacts = [_build(Artifact, a, path, "artifacts") for a in raw.get("artifacts") or []]
    record.conflicts = [_build(Conflict, c, path, "conflicts") for c in raw.get("conflicts") or []]
    record.params = dict(raw.get("params") or {})
    record.tags = dict(raw.get("tags") or {})
    record.command = list(raw.get("command") or [])
    record.deleted = bool(record.deleted)
    return record


def experiment_to_yaml(record: ExperimentRecord) -> bytes:
    """The bytes of experiments/<slug>.yaml (``metrics`` only when some are declared)."""
    data = _plain(record)
    data.pop("slug")
    if not data.get("tags"):
        data.pop("tags", None)  # written only when set, so older files keep their bytes
    specs = {key: spec.to_plain() for key, spec in sorted(record.metrics.items())}
    data["metrics"] = {key: plain for key, plain in specs.items() if plain}
    if not data["metrics"]:
        data.pop("metrics")
    return yamlio.dump({"format": FORMAT_VERSION, **data})


def metric_specs_from_plain(raw: Any) -> dict[str, MetricSpec]:
    """An experiment's ``metrics`` mapping, read leniently: a value outside its allowed set
    (a goal other than maximize/minimize, a summary other than last/min/max/mean, a key
    that is not a bool) is read as not declared, and entries that are not mappings are skipped."""
    if not isinstance(raw, dict):
        return {}
    specs = {}
    for key, entry in raw.items():
        if not isinstance(key, str) or not isinstance(entry, dict):
            continue
        goal, summary, step = entry.get("goal"), entry.get("summary"), entry.get("step_metric")
        specs[key] = MetricSpec(goal=goal if goal in METRIC_GOALS else None,
                                summary=summary if summary in METRIC_SUMMARIES else None,
                                step_metric=step if isinstance(step, str) and step else None,
                                key=entry.get("key") is True)
    return specs


def experiment_from_yaml(data: bytes, slug: str) -> ExperimentRecord:
    """Parse an experiment file leniently."""
    path = experiment_path(slug)
    if slug_problem(slug) is not None:
        raise FormatError(path, f"the file name is not an experiment slug: {slug_problem(slug)}")
    raw = yamlio.load(data, path)
    if type(raw) is not dict:
        raise FormatError(path, f"an experiment should be a mapping, not {shown(raw)}")
    check_shape(raw, EXPERIMENT_SHAPE, path)
    raw = dict(raw)
    raw.pop("format", None)
    raw.pop("slug", None)
    tags = raw.get("tags") or {}
    if not isinstance(tags, dict):
        raise FormatError(path, f"tags should be a mapping, not {type(tags).__name__}")
    raw["tags"] = {str(k): str(v) for k, v in tags.items()}
    raw["metrics"] = metric_specs_from_plain(raw.get("metrics"))
    return _build(ExperimentRecord, {"slug": slug, **raw}, path, "experiment")


def header_yaml(created_by: str) -> bytes:
    """The bytes of labbook.yaml at the branch root."""
    return yamlio.dump({"format": FORMAT_VERSION, "created_by": created_by})


def environment_yaml(packages: dict[str, str]) -> tuple[str, bytes]:
    """The content-addressed path and bytes of a package list."""
    data = yamlio.dump({"packages": dict(sorted(packages.items()))})
    return environment_path(hashlib.sha256(data).hexdigest()), data


# -- metric history ------------------------------------------------------------
HISTORY_HEADER = "key\tstep\ttimestamp\tvalue\n"


def history_to_tsv(rows: list[tuple[str, int, int, float]]) -> bytes:
    """Per-step history as TSV: one line per logged value, in logging order."""
    lines = [HISTORY_HEADER]
    lines.extend(f"{key}\t{step}\t{ts}\t{value!r}\n" for key, step, ts, value in rows)
    return "".join(lines).encode("utf-8")


def history_from_tsv(data: bytes, path: str) -> list[tuple[str, int, int, float]]:
    """Parse metrics.tsv back into (key, step, timestamp, value) rows."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FormatError(path, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    lines = text.split("\n")
    if not lines or lines[0] + "\n" != HISTORY_HEADER:
        raise FormatError(path, "the first line should be the header key, step, timestamp, value")
    rows = []
    for number, line in enumerate(lines[1:], start=2):
        if not line:
            continue
        try:
            key, step, ts, value = line.split("\t")
            rows.append((key, int(step), int(ts), float(value)))
        except ValueError as exc:
            raise FormatError(path, f"line {number} is not key, step, timestamp, value") from exc
    return rows
