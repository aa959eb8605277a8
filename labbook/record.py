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

from . import yamlio
from .errors import FormatError, InvalidValue
from .schema import PLAIN, Dict, List, Map, OneOf, Opt, SchemaError, check, slot_checks

FORMAT_VERSION = 1
STATUSES = ("RUNNING", "FINISHED", "FAILED", "KILLED")
TERMINAL_STATUSES = ("FINISHED", "FAILED", "KILLED")
VERDICTS = ("supported", "refuted", "inconclusive")
ARTIFACT_LOCATIONS = ("branch", "store")
HEADER_PATH = "labbook.yaml"
DEFAULT_EXPERIMENT = "default"


RUN_ID = re.compile(r"[0-9a-f]{32}")  # the id rule: 32 lower-case hex digits
SLUG = re.compile(r"[a-z0-9](?:[a-z0-9._-]{0,150}[a-z0-9])?")  # what experiment_slug makes
_FANOUT = re.compile(r"[0-9a-f]{2}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_TIME = re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?)?(?:Z|[+-]\d{2}:?\d{2})?")
_RUN_YAML = re.compile(r"runs/([^/]*)/([^/]*)/run\.yaml")


# -- paths -------------------------------------------------------------------
def is_run_id(value: Any) -> bool:
    """Whether ``value`` passes the id rule (32 lower-case hex digits), so it may become a path."""
    return type(value) is str and RUN_ID.fullmatch(value) is not None


def run_folder_problem(fanout: str, name: str | None = None) -> str | None:
    """Why ``runs/<fanout>/<name>`` (or the fan-out folder alone) is not a run folder, or None."""
    if _FANOUT.fullmatch(fanout) is None:
        return "not a fan-out folder (two lower-case hex digits)"
    if name is None:
        return None
    if not is_run_id(name):
        return "not a run id (32 lower-case hex digits)"
    if name[:2] != fanout:
        return f"a run in the wrong fan-out folder (runs/{name[:2]}/ holds it)"
    return None


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
        """Fold one more logged value in (the newest step wins ``last``)."""
        if step >= self.step:
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
class ExperimentRecord:
    """An experiment: a question and the runs that try to answer it."""

    slug: str
    name: str
    description: str | None = None
    created: str = ""
    extra: dict[str, Any] = field(default_factory=dict)



# -- what a record read from the branch may hold (docs/FORMAT.md, "Reading records you did not write")
def _text(value: Any) -> str | None:
    return None if type(value) is str else f"should be text, not {_shown(value)}"


def _shown(value: Any) -> str:
    return "null" if value is None else "a list" if type(value) is list else \
        "a mapping" if type(value) is dict else f"the {type(value).__name__} {value!r:.40}"


def _bool(value: Any) -> str | None:
    return None if type(value) is bool else f"should be true or false, not {_shown(value)}"


def _int64(value: Any) -> str | None:
    if type(value) is not int:
        return f"should be an integer, not {_shown(value)}"
    return None if -2**63 <= value < 2**63 else f"{value} is beyond 64-bit integers"


def _size(value: Any) -> str | None:
    return _int64(value) or (None if value >= 0 else f"{value} is negative")


def _number(value: Any) -> str | None:
    if type(value) is float:
        return None
    if type(value) is int:
        return None if abs(value) <= 1.7976931348623157e308 else f"{value} is beyond a float"
    return f"should be a number, not {_shown(value)}"


def _time(value: Any) -> str | None:
    """A time as the format writes it (ISO 8601); what pandas and datetime both read."""
    if type(value) is not str:
        return f"should be a time in quotes ('2026-01-01T00:00:00.000Z'), not {_shown(value)}"
    if value == "":
        return None
    try:
        if _TIME.fullmatch(value) is None:
            raise ValueError(value)
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return f"{value!r:.40} is not an ISO 8601 time ('2026-01-01T00:00:00.000Z')"
    return None


def _run_id(value: Any) -> str | None:
    return None if is_run_id(value) else f"{value!r:.60} is not a run id (32 lower-case hex digits)"


def _slug(value: Any) -> str | None:
    return None if type(value) is str and SLUG.fullmatch(value) else \
        f"{value!r:.60} is not an experiment slug (a-z, 0-9, '.', '_', '-')"


def _one_of(allowed: tuple[str, ...]) -> Callable[[Any], str | None]:
    def rule(value: Any) -> str | None:
        return None if value in allowed and type(value) is str else \
            f"{value!r:.40} is not one of {', '.join(allowed)}"
    return rule


def _sha256(value: Any) -> str | None:
    return None if type(value) is str and _SHA256.fullmatch(value) else \
        f"{value!r:.70} is not a sha256 (64 lower-case hex digits)"


def _branch_path(value: Any) -> str | None:
    """A relative path of safe names (git's special names, '..' and '.' refused)."""
    if type(value) is not str:
        return f"should be a path, not {_shown(value)}"
    from .store import check_entry_name  # store reads no record: imported when first needed

    try:
        for part in value.split("/"):
            check_entry_name(part)
    except InvalidValue as exc:
        return f"{value!r:.80} is not a safe relative path ({exc})"
    return None


def _key(value: str) -> str | None:
    if not value or any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        return "a key is one or more characters, no control characters"
    return None


def _param(value: Any) -> str | None:
    return None if value is None or type(value) in (bool, int, float, str) else \
        f"is {_shown(value)}; allowed: null, a boolean, a number, text"


def _tag(value: Any) -> str | None:
    if type(value) is str:
        return None
    if type(value) is bool:
        return (f"is the boolean {str(value).lower()}: YAML reads yes/no/on/off/true/false "
                "unquoted as booleans; tag values are text, so quote it ('yes')")
    return f"is {_shown(value)}; tag values are text: quote it"


def _format(value: Any) -> str | None:
    if type(value) is not int:
        return f"should be the integer {FORMAT_VERSION}, not {_shown(value)}"
    return None if value <= FORMAT_VERSION else \
        f"format {value!r} is newer than this labbook reads (format {FORMAT_VERSION}); upgrade labbook"


_TEXT = Opt(_text)
_SUMMARY = Map({k: _number for k in ("last", "min", "max")} | {k: _int64 for k in ("step", "timestamp", "count")},
               frozenset({"last", "min", "max", "step", "timestamp", "count"}), PLAIN)
RUN_SHAPE = Map({
    "format": _format, "id": _run_id, "name": _text, "experiment": _slug,
    "status": _one_of(STATUSES), "start_time": Opt(_time), "end_time": Opt(_time),
    "parent": Opt(_run_id), "user": _TEXT, "host": _TEXT, "command": Opt(List(_text)),
    "code": Opt(Map({"commit": _TEXT, "branch": _TEXT, "remote": _TEXT, "dirty": Opt(_bool),
                     "diff": Opt(_branch_path), "cwd": _TEXT}, other=PLAIN)),
    "environment": Opt(Map({"python": _TEXT, "platform": _TEXT, "packages": Opt(_branch_path)}, other=PLAIN)),
    "hypothesis": _TEXT,
    "params": Opt(Dict(_key, OneOf((_param, List(_param)), "null, a boolean, a number, text, or a list of those"))),
    "tags": Opt(Dict(_key, _tag)),
    "metrics": Opt(Dict(_key, _SUMMARY)),
    "notes": Opt(List(Map({"time": _time, "author": _text, "text": _text},
                          frozenset({"time", "author", "text"}), PLAIN))),
    "conclusion": Opt(Map({"verdict": _one_of(VERDICTS), "text": _text, "time": _time},
                          frozenset({"verdict", "text", "time"}), PLAIN)),
    "error": _TEXT, "exit_code": Opt(_int64),
    "artifacts": Opt(List(Map({"path": _branch_path, "size": _size, "sha256": _sha256,
                               "location": _one_of(ARTIFACT_LOCATIONS)},
                              frozenset({"path", "size", "sha256", "location"}), PLAIN))),
    "deleted": Opt(_bool),
    "conflicts": Opt(List(Map({"field": _text, "value": PLAIN, "commit": _TEXT},
                              frozenset({"field", "value"}), PLAIN))),
}, frozenset({"id", "name", "experiment"}), PLAIN)
EXPERIMENT_SHAPE = Map({"format": _format, "name": _text, "description": _TEXT, "created": Opt(_time)},
                       frozenset({"name"}), PLAIN)


def check_run_plain(raw: Any, path: str) -> None:
    """Raise FormatError (naming ``path``, the field and why) unless ``raw`` is a run record
    that passes every rule of the format; run.yaml's id must also be its folder's name."""
    if type(raw) is not dict:
        raise FormatError(path, f"run.yaml should be a mapping, not {_shown(raw)}")
    _check_shape(raw, RUN_SHAPE, path)
    check_run_folder(raw["id"], path)


def check_run_folder(run_id: Any, path: str) -> None:
    """Raise FormatError unless ``run_id`` is the id of the folder of ``path`` (runs/…/run.yaml)."""
    found = _RUN_YAML.fullmatch(path)
    if found is not None and (run_id != found[2] or run_folder_problem(found[1], found[2])):
        raise FormatError(path, f"its id {run_id!r:.60} is not its folder's {found[2]!r:.60}")


def _check_shape(raw: dict[str, Any], shape: Map, path: str) -> None:
    problem = _format(raw.get("format", FORMAT_VERSION))  # a newer format: say so first
    if problem is not None:
        raise FormatError(path, f"format: {problem}" if "newer" not in problem else problem)
    try:
        check(raw, shape)
    except SchemaError as exc:
        raise FormatError(path, str(exc)) from exc


def run_slot_checks(template: Any, is_slot: Callable[[Any], bool]) -> list[tuple[int, Any, str]] | None:
    """For a run.yaml template (values replaced by slots): what each slot's value must pass
    (``check_slot``), or None when what the template fixes already breaks a rule."""
    try:
        if type(template) is not dict:
            return None
        problem = template.get("format", FORMAT_VERSION)
        if not is_slot(problem) and _format(problem) is not None:
            return None
        return slot_checks(template, RUN_SHAPE, is_slot)
    except SchemaError:
        return None


def check_slot(value: Any, shape: Any) -> bool:
    """Whether a slot's value passes its rule (from :func:`run_slot_checks`)."""
    try:
        check(value, shape)
    except SchemaError:
        return False
    return True


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
    """The bytes of experiments/<slug>.yaml."""
    data = _plain(record)
    data.pop("slug")
    return yamlio.dump({"format": FORMAT_VERSION, **data})


def experiment_from_yaml(data: bytes, slug: str) -> ExperimentRecord:
    """Parse an experiment file leniently."""
    path = experiment_path(slug)
    if _slug(slug) is not None:
        raise FormatError(path, f"the file name is not an experiment slug: {_slug(slug)}")
    raw = yamlio.load(data, path)
    if type(raw) is not dict:
        raise FormatError(path, f"an experiment should be a mapping, not {_shown(raw)}")
    _check_shape(raw, EXPERIMENT_SHAPE, path)
    raw = dict(raw)
    raw.pop("format", None)
    raw.pop("slug", None)
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
    text = data.decode("utf-8")
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
