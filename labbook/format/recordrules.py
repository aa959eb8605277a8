"""The rules every record read from the branch passes, whoever wrote it.

Part of the format that ``record.py`` owns (it re-exports what others use): the
branch is input, not memory — a teammate's record, a hand edit, another labbook
version or an attacker with push rights. Every reader (the catalog's fast rows and
full records, ``show``, ``fsck``, the site, a pull's merge, resuming a run) checks a
record here before any of its values reaches a path, a git command, a cache or a
page; a record that breaks a rule is skipped with a FormatError naming the file, the
field and why. docs/FORMAT.md, "Reading records you did not write", lists the rules.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from ..errors import FormatError, InvalidValue, NewerFormat
from .schema import PLAIN, Dict, List, Map, OneOf, Opt, SchemaError, check, slot_checks

FORMAT_VERSION = 1
STATUSES = ("RUNNING", "FINISHED", "FAILED", "KILLED")
VERDICTS = ("supported", "refuted", "inconclusive")
ARTIFACT_LOCATIONS = ("branch", "store")
RUN_ID = re.compile(r"[0-9a-f]{32}")  # the id rule: 32 lower-case hex digits
SLUG = re.compile(r"[a-z0-9](?:[a-z0-9._-]{0,150}[a-z0-9])?")  # what experiment_slug makes
_FANOUT = re.compile(r"[0-9a-f]{2}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}(?:[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,6})?)?)?"
                   r"(?:Z|[+-][0-9]{2}:?[0-9]{2})?")
_RUN_YAML = re.compile(r"runs/([^/]*)/([^/]*)/run\.yaml")


def file_mode_problem(mode: str) -> str | None:
    """Why a tree entry of this mode is not a file a reader may read (a submodule, a symlink,
    a folder), or None for a regular file."""
    return None if mode in ("100644", "100755") else f"not a regular file (mode {mode})"


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


# -- what a record read from the branch may hold (docs/FORMAT.md, "Reading records you did not write")
def _text(value: Any) -> str | None:
    return None if type(value) is str else f"should be text, not {shown(value)}"


def shown(value: Any) -> str:
    """A value as a reason names it: null, a list, a mapping, or its type and start."""
    return "null" if value is None else "a list" if type(value) is list else \
        "a mapping" if type(value) is dict else f"the {type(value).__name__} {value!r:.40}"


def _bool(value: Any) -> str | None:
    return None if type(value) is bool else f"should be true or false, not {shown(value)}"


def _int64(value: Any) -> str | None:
    if type(value) is not int:
        return f"should be an integer, not {shown(value)}"
    return None if -2**63 <= value < 2**63 else f"{value} is beyond 64-bit integers"


def _size(value: Any) -> str | None:
    return _int64(value) or (None if value >= 0 else f"{value} is negative")


def _number(value: Any) -> str | None:
    if type(value) is float:
        return None
    if type(value) is int:
        return None if abs(value) <= 1.7976931348623157e308 else f"{value} is beyond a float"
    return f"should be a number, not {shown(value)}"


def _time(value: Any) -> str | None:
    """A time as the format writes it (ISO 8601); what pandas and datetime both read."""
    if type(value) is not str:
        return f"should be a time in quotes ('2026-01-01T00:00:00.000Z'), not {shown(value)}"
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


def slug_problem(value: Any) -> str | None:
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
        return f"should be a path, not {shown(value)}"
    from ..storage.store import check_entry_name  # store reads no record: imported when first needed

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
        f"is {shown(value)}; allowed: null, a boolean, a number, text"


def _tag(value: Any) -> str | None:
    if type(value) is str:
        return None
    if type(value) is bool:
        return (f"is the boolean {str(value).lower()}: YAML reads yes/no/on/off/true/false "
                "unquoted as booleans; tag values are text, so quote it ('yes')")
    return f"is {shown(value)}; tag values are text: quote it"


def _format(value: Any) -> str | None:
    if type(value) is not int:
        return f"should be the integer {FORMAT_VERSION}, not {shown(value)}"
    return None if value <= FORMAT_VERSION else \
        f"format {value!r} is newer than this labbook reads (format {FORMAT_VERSION}); upgrade labbook"


# Types whose every value passes a rule: readers check those without calling it.
for _rule, _types in ((_text, (str,)), (_bool, (bool,)), (_number, (float,)), (_tag, (str,)),
                      (_param, (type(None), bool, int, float, str))):
    _rule.types = _types  # type: ignore[attr-defined]
_TEXT = Opt(_text)
_SUMMARY = Map({"last": _number, "min": _number, "max": _number,
                "step": _int64, "timestamp": _int64, "count": _int64},
               frozenset({"last", "min", "max", "step", "timestamp", "count"}), PLAIN)
RUN_SHAPE = Map({
    "format": _format, "id": _run_id, "name": _text, "experiment": slug_problem,
    "status": _one_of(STATUSES), "start_time": Opt(_time), "end_time": Opt(_time),
    "parent": Opt(_run_id), "user": _TEXT, "host": _TEXT, "command": Opt(List(_text)),
    "code": Opt(Map({"commit": _TEXT, "branch": _TEXT, "remote": _TEXT, "dirty": Opt(_bool),
                     "diff": Opt(_branch_path), "cwd": _TEXT}, other=PLAIN)),
    "environment": Opt(Map({"python": _TEXT, "platform": _TEXT, "packages": Opt(_branch_path)}, other=PLAIN)),
    "hypothesis": _TEXT,
    "params": Opt(Dict(_key, OneOf((_param, List(_param)),
                                   "null, a boolean, a number, text, or a list of those"))),
    "tags": Opt(Dict(_key, _tag)),
    "metrics": Opt(Dict(_key, _SUMMARY)),
    "notes": Opt(List(Map({"time": _text, "author": _text, "text": _text},
                          frozenset({"time", "author", "text"}), PLAIN))),
    "conclusion": Opt(Map({"verdict": _one_of(VERDICTS), "text": _text, "time": _text},
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
        raise FormatError(path, f"run.yaml should be a mapping, not {shown(raw)}")
    check_shape(raw, RUN_SHAPE, path)
    check_run_folder(raw["id"], path)


def check_run_folder(run_id: Any, path: str) -> None:
    """Raise FormatError unless ``run_id`` is the id of the folder of ``path`` (runs/…/run.yaml)."""
    found = _RUN_YAML.fullmatch(path)
    if found is not None and (run_id != found[2] or run_folder_problem(found[1], found[2])):
        raise FormatError(path, f"its id {run_id!r:.60} is not its folder's {found[2]!r:.60}")


def check_shape(raw: dict[str, Any], shape: Map, path: str) -> None:
    problem = _format(raw.get("format", FORMAT_VERSION))  # a newer format: say so first
    if problem is not None:
        raise (NewerFormat if "newer" in problem else FormatError)(
            path, problem if "newer" in problem else f"format: {problem}")
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


