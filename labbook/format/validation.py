"""Checks on what users log, each failing with the bad value and what is allowed."""

from __future__ import annotations

import math
import numbers
import os
import re
import unicodedata
from collections.abc import Mapping
from typing import Any

from ..errors import InvalidValue
from ..storage.store import check_entry_name
from .record import VERDICTS

MAX_KEY_LENGTH = 250            # characters of a param, metric or tag key
MAX_NAME_LENGTH = 250           # characters of a run or experiment name
MAX_PARAM_STRING = 6000         # characters of a param's text value (each list item too)
MAX_TAG_VALUE = 8000            # characters of a tag's value
MAX_TEXT_BYTES = 64 * 1024      # UTF-8 bytes of a hypothesis or an experiment's description
MAX_NOTE_BYTES = 1024 * 1024    # UTF-8 bytes of a note or a conclusion's text
MAX_RECORD_BYTES = 16 * 1024 * 1024  # bytes of a whole run.yaml (the reader's cap is 64 MiB)
MAX_ARTIFACT_PATH_BYTES = 1024  # UTF-8 bytes of an artifact's path inside its run
MAX_NESTING = 16               # lists in a param value, dicts in log_params, one inside another
INT64_MIN, INT64_MAX = -(2 ** 63), 2 ** 63 - 1
_LINE_BREAKS = {"\u0085", "\u2028", "\u2029"}
_good_keys: set[tuple[str, str]] = set()


def check_text(text: Any, what: str, limit: int) -> str:
    """Text labbook will store: a str of at most ``limit`` UTF-8 bytes, encodable (no lone
    surrogates) and without NUL. Other control characters are kept (and escaped on print)."""
    if not isinstance(text, str):
        raise InvalidValue(f"{what} is a {type(text).__name__}; allowed: text")
    if len(text) > limit:  # a character is at least one byte: no need to encode to know
        raise InvalidValue(f"{what} has {len(text)} characters; allowed: up to {limit} bytes "
                           "of UTF-8")
    if text.isascii():
        if "\x00" in text:
            raise InvalidValue(f"{what} {_shown(text)} contains NUL (\\x00); allowed: text "
                               "without NUL")
        return text
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise InvalidValue(f"{what} {_shown(text)} contains the lone surrogate "
                           f"\\u{ord(text[exc.start]):04x} (bytes that were not UTF-8 read this "
                           "way); allowed: text UTF-8 can encode") from exc
    if size > limit:
        raise InvalidValue(f"{what} has {size} bytes of UTF-8; allowed: up to {limit}")
    if "\x00" in text:
        raise InvalidValue(f"{what} {_shown(text)} contains NUL (\\x00); allowed: text without NUL")
    return text


def storable_text(text: str) -> str:
    """Text from the system (argv, an exception's message) made storable: bytes a file name
    or argument held that are not UTF-8 (lone surrogates) become ``\\xff``, NUL ``\\x00``."""
    if text.isascii() and "\x00" not in text:
        return text
    if not text.isascii():
        text = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")  # any surrogate left
    return text.replace("\x00", "\\x00")


def _shown(text: str) -> str:
    """A short, escaped view of a bad value for an error message."""
    return ascii(text if len(text) <= 60 else text[:59] + "…")


def check_name(name: Any, what: str) -> str:
    """A run or experiment name: 1 to 250 characters on one line, no control characters."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidValue(f"{what} {name!r} is empty; allowed: 1 to {MAX_NAME_LENGTH} "
                           "printable characters")
    check_text(name, what, 4 * MAX_NAME_LENGTH)
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidValue(f"{what} {_shown(name)} has {len(name)} characters; allowed: 1 to "
                           f"{MAX_NAME_LENGTH}")
    bad = [ch for ch in name if is_control(ch)]
    if bad:
        raise InvalidValue(f"{what} {_shown(name)} contains the control character {bad[0]!r}; "
                           "allowed: printable characters on one line")
    return name


def is_control(ch: str) -> bool:
    """A character a terminal acts on or hides: C0/C1 controls, line breaks, format
    characters (bidi overrides, zero-width joiners) and surrogates."""
    return unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Zl", "Zp")


def escape_controls(text: str, keep: str = "\n\t") -> str:
    """``text`` safe to print on a terminal: every control, format or line-break character
    except those in ``keep`` is shown as an escape (``\\x1b``, ``\\r``, ``\\u202e``)."""
    if text.isprintable():
        return text
    return "".join(_escaped(ch) if ch not in keep and is_control(ch) else ch for ch in text)


def _escaped(ch: str) -> str:
    code = ord(ch)
    if ch == "\r":
        return "\\r"
    if code < 0x20:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    high, low = divmod(code - 0x10000, 0x400)  # as JSON spells it, so JSON output stays JSON
    return f"\\u{0xD800 + high:04x}\\u{0xDC00 + low:04x}"


def check_key(key: Any, what: str = "key") -> str:
    """A metric, param or tag key: 1 to 250 characters, no control characters."""
    if (what, key) in _good_keys:
        return key
    if not isinstance(key, str):
        raise InvalidValue(f"{what} {key!r} is a {type(key).__name__}; {what}s are strings")
    if not key or len(key) > MAX_KEY_LENGTH:
        raise InvalidValue(f"{what} {_shown(key)} has {len(key)} characters; "
                           f"allowed: 1 to {MAX_KEY_LENGTH}")
    bad = [ch for ch in key if unicodedata.category(ch) in ("Cc", "Cs") or ch in _LINE_BREAKS]
    if bad:
        raise InvalidValue(f"{what} {_shown(key)} contains the control character {bad[0]!r}; "
                           "allowed: printable characters")
    if key != key.strip():
        raise InvalidValue(f"{what} {key!r} starts or ends with white space")
    _good_keys.add((what, key))
    return key


def param_value(key: str, value: Any, depth: int = 0) -> Any:
    """A param value as it will be stored: str, int (within signed 64 bits), float, bool,
    None or a list of them (lists nest at most MAX_NESTING deep)."""
    if value is None or isinstance(value, bool):
        return value if value is None else bool(value)
    if isinstance(value, str):
        if len(value) > MAX_PARAM_STRING:
            raise InvalidValue(f"param {key!r} has a {len(value)}-character value; "
                               f"allowed: up to {MAX_PARAM_STRING}")
        return check_text(str(value), f"param {key!r}", 4 * MAX_PARAM_STRING)
    if isinstance(value, numbers.Integral):
        if INT64_MIN <= int(value) <= INT64_MAX:
            return int(value)
        raise InvalidValue(f"param {key!r} is the integer {_shown(str(value))}, outside signed 64 "
                           "bits, which other readers cannot hold; allowed: an integer from "
                           f"{INT64_MIN} to {INT64_MAX} (log a bigger one as a string)")
    if isinstance(value, numbers.Real):
        return float(value)
    if getattr(getattr(value, "dtype", None), "kind", None) == "b" and not getattr(value, "shape", ()):
        return bool(value)  # numpy's bool scalar is not a numbers.Integral
    if isinstance(value, os.PathLike):
        return param_value(key, os.fspath(value))
    if isinstance(value, list | tuple):
        if depth >= MAX_NESTING:
            raise InvalidValue(f"param {key!r} nests lists more than {MAX_NESTING} deep; allowed: "
                               f"up to {MAX_NESTING}")
        return [param_value(key, item, depth + 1) for item in value]
    raise InvalidValue(f"param {key!r} has a value of type {type(value).__name__} ({value!r:.60}); "
                       "allowed: str, int, float, bool, None, a list of those, or a dict (flattened)")


def flatten_params(params: Mapping[str, Any], prefix: str = "", depth: int = 0) -> dict[str, Any]:
    """Flatten nested dicts into dotted keys: {"model": {"kind": "r"}} → {"model.kind": "r"}."""
    if depth >= MAX_NESTING:
        raise InvalidValue(f"params under {_shown(prefix)} nest dicts more than {MAX_NESTING} deep; "
                           f"allowed: up to {MAX_NESTING}")
    flat: dict[str, Any] = {}
    for key, value in params.items():
        if not isinstance(key, str):
            raise InvalidValue(f"param key {key!r:.60} is a {type(key).__name__}; keys are strings")
        full = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten_params(value, f"{full}.", depth + 1))
        else:
            flat[full] = value
    return flat


def checked_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Params as they will be stored: flattened, every key and value checked."""
    return {check_key(key, "param"): param_value(key, value)
            for key, value in flatten_params(params).items()}


def checked_tags(tags: Mapping[str, Any]) -> dict[str, str]:
    """Tags as they will be stored: every key and value checked, values as text."""
    return {check_key(key, "tag"): tag_value(key, value) for key, value in tags.items()}


def metric_value(key: str, value: Any) -> float:
    """A metric value as a float; NaN and ±inf are allowed, text and bools are not."""
    if type(value) is float:
        return value
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        try:
            return float(value)
        except OverflowError as exc:
            raise InvalidValue(f"metric {key!r} got {_shown(str(value))}, too large for a float; "
                               "allowed: a number within ±1.8e308 (NaN and inf included)") from exc
    item = getattr(value, "item", None)  # numpy 0-d arrays, torch scalars
    if callable(item) and not isinstance(value, str | bytes | bool):
        try:
            got = item()
        except (TypeError, ValueError) as exc:
            raise InvalidValue(f"metric {key!r} got {value!r:.60}, which is not one number") from exc
        if isinstance(got, numbers.Real) and not isinstance(got, bool):
            return float(got)
    raise InvalidValue(f"metric {key!r} got {value!r:.60} ({type(value).__name__}); "
                       "allowed: a number (int or float, NaN and inf included)")


def step_value(step: Any) -> int:
    """A metric step: an integer within signed 64 bits (as MLflow and every reader store it)."""
    if isinstance(step, numbers.Integral) and not isinstance(step, bool):
        if INT64_MIN <= int(step) <= INT64_MAX:
            return int(step)
        raise InvalidValue(f"step {step!r} is outside signed 64 bits; allowed: "
                           f"{INT64_MIN} to {INT64_MAX}")
    raise InvalidValue(f"step {step!r} is not an integer; allowed: an integer within signed 64 bits")


def timestamp_ms(timestamp: Any) -> int:
    """A metric timestamp in milliseconds since the epoch, within signed 64 bits."""
    if isinstance(timestamp, numbers.Real) and not isinstance(timestamp, bool) \
            and math.isfinite(timestamp) and INT64_MIN <= int(timestamp) <= INT64_MAX:
        return int(timestamp)
    raise InvalidValue(f"timestamp {timestamp!r} is not milliseconds since the epoch; allowed: "
                       "a finite number within signed 64 bits")


def tag_value(key: str, value: Any) -> str:
    """A tag value as stored: text of up to 8000 characters (numbers and bools as text)."""
    if value is None or not isinstance(value, str | int | float | bool):
        raise InvalidValue(f"tag {key!r} has the value {value!r:.60}; "
                           "allowed: a string, number or bool")
    text = value if isinstance(value, str) else str(value)
    if len(text) > MAX_TAG_VALUE:
        raise InvalidValue(f"tag {key!r} has a {len(text)}-character value; "
                           f"allowed: up to {MAX_TAG_VALUE}")
    return check_text(text, f"tag {key!r}", 4 * MAX_TAG_VALUE)


def note_text(text: Any, what: str = "note") -> str:
    """A note's (or a conclusion's) markdown: up to 1 MiB of UTF-8, no NUL."""
    return check_text(text, what, MAX_NOTE_BYTES)


def check_record_size(size: int, run: str) -> None:
    """Refuse a run.yaml of more than MAX_RECORD_BYTES (checked before every commit)."""
    if size > MAX_RECORD_BYTES:
        raise InvalidValue(f"the record of run {run} would be {size} bytes; allowed: up to "
                           f"{MAX_RECORD_BYTES} (keep large text in an artifact)")


def verdict_value(verdict: Any) -> str:
    """A conclusion verdict: supported, refuted or inconclusive."""
    if isinstance(verdict, str) and verdict.lower() in VERDICTS:
        return verdict.lower()
    raise InvalidValue(f"verdict {verdict!r} is not allowed; use one of {', '.join(VERDICTS)}")


_UNSAFE_IN_PATHS = set("\\%?#")
_GIT_SPECIAL = {".git", ".gitmodules", ".gitattributes", ".gitignore", ".mailmap"}
_SHORT_NAME = re.compile(r"^[^~]{1,6}~[0-9]+(\.[^.]*)?$")  # 8.3 names: GIT~1, GITMOD~1


def artifact_path(path: Any) -> str:
    """A plain relative artifact path of safe segments, '/' between them.

    Refused: absolute paths, empty, '.' and '..' segments, backslashes, '%', '?', '#',
    control and format characters (zero-width joiners, bidi overrides), names git treats
    specially (.git, .gitmodules, .gitattributes, .gitignore, .mailmap in any case, with
    trailing dots or spaces) and 8.3 short names (GIT~1): every name the branch store
    refuses, and more.
    """
    if not isinstance(path, str) or not path.strip():
        raise InvalidValue(f"artifact path {path!r} is empty; allowed: a relative path such as "
                           "'plots/a.png'")
    check_text(path, f"artifact path {_shown(path)}", MAX_ARTIFACT_PATH_BYTES)
    if path.startswith("/") or (len(path) > 1 and path[1] == ":"):
        raise InvalidValue(f"artifact path {_shown(path)} is absolute; allowed: a relative path "
                           "inside the run")
    for part in path.split("/"):
        _artifact_segment(path, part)
    return path


def _artifact_segment(path: str, part: str) -> None:
    rule = None
    if part in ("", ".", ".."):
        rule = "empty, '.' and '..' segments are not allowed"
    elif _UNSAFE_IN_PATHS & set(part):
        rule = "'\\', '%', '?' and '#' are not allowed"
    elif any(is_control(ch) for ch in part):
        rule = "control and invisible format characters are not allowed"
    elif len(part.encode("utf-8")) > 255:
        rule = f"the name {_shown(part)} is longer than 255 bytes"
    else:
        folded = unicodedata.normalize("NFC", part).casefold().rstrip(". ")
        if folded in _GIT_SPECIAL or folded.startswith(".git:") or _SHORT_NAME.match(folded):
            rule = f"{part!r} is a name git treats specially"
    if rule is not None:
        raise InvalidValue(f"artifact path {_shown(path)} is refused: {rule}; allowed: a relative "
                           "path of plain names such as 'plots/a.png'")
    check_entry_name(part)


def folded_path(path: str) -> str:
    """How a case-insensitive, normalising file system (macOS, Windows) sees ``path``."""
    return unicodedata.normalize("NFC", path).casefold()


def check_collisions(existing: list[str], new: list[str]) -> None:
    """Refuse artifact paths that would collide once case is folded, or where one is a file
    and the other a folder: ``Model.bin``/``model.bin``, ``plots``/``plots/a.png``."""
    seen: dict[str, str] = {}
    folders: dict[str, str] = {}
    for path in [*existing, *new]:
        folded = folded_path(path)
        if seen.get(folded, path) != path:
            _collide(seen[folded], path)
        if folded in folders or any(p in seen for p in _parents(folded)):
            other = folders.get(folded) or next(seen[p] for p in _parents(folded) if p in seen)
            if other != path:
                _collide(other, path)
        seen[folded] = path
        for parent in _parents(folded):
            folders.setdefault(parent, path)


def _parents(folded: str) -> list[str]:
    parts = folded.split("/")
    return ["/".join(parts[:n]) for n in range(1, len(parts))]


def _collide(old: str, new: str) -> None:
    raise InvalidValue(f"artifact path {_shown(new)} collides with {_shown(old)} (same name once "
                       "case and Unicode form are folded, or a file where a folder is); allowed: "
                       "names that differ in more than case")
