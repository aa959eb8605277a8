"""Checks on what users log, each failing with the bad value and what is allowed."""

from __future__ import annotations

import math
import numbers
import os
import unicodedata
from collections.abc import Mapping
from typing import Any

from .errors import InvalidValue
from .record import VERDICTS
from .store import check_entry_name

MAX_KEY_LENGTH = 250
MAX_PARAM_STRING = 6000
_LINE_BREAKS = {"\u0085", "\u2028", "\u2029"}
_good_keys: set[tuple[str, str]] = set()


def check_key(key: Any, what: str = "key") -> str:
    """A metric, param or tag key: 1 to 250 characters, no control characters."""
    if (what, key) in _good_keys:
        return key
    if not isinstance(key, str):
        raise InvalidValue(f"{what} {key!r} is a {type(key).__name__}; {what}s are strings")
    if not key or len(key) > MAX_KEY_LENGTH:
        raise InvalidValue(f"{what} {key[:60]!r} has {len(key)} characters; "
                           f"allowed: 1 to {MAX_KEY_LENGTH}")
    bad = [ch for ch in key if unicodedata.category(ch) == "Cc" or ch in _LINE_BREAKS]
    if bad:
        raise InvalidValue(f"{what} {key!r} contains the control character {bad[0]!r}; "
                           "allowed: printable characters")
    if key != key.strip():
        raise InvalidValue(f"{what} {key!r} starts or ends with white space")
    _good_keys.add((what, key))
    return key


def param_value(key: str, value: Any) -> Any:
    """A param value as it will be stored: str, int, float, bool, None or a list of them."""
    if value is None or isinstance(value, bool):
        return value if value is None else bool(value)
    if isinstance(value, str):
        if len(value) > MAX_PARAM_STRING:
            raise InvalidValue(f"param {key!r} has a {len(value)}-character value; "
                               f"allowed: up to {MAX_PARAM_STRING}")
        return str(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if getattr(getattr(value, "dtype", None), "kind", None) == "b" and not getattr(value, "shape", ()):
        return bool(value)  # numpy's bool scalar is not a numbers.Integral
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, list | tuple):
        return [param_value(key, item) for item in value]
    raise InvalidValue(f"param {key!r} has a value of type {type(value).__name__} ({value!r:.60}); "
                       "allowed: str, int, float, bool, None, a list of those, or a dict (flattened)")


def flatten_params(params: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flatten nested dicts into dotted keys: {"model": {"kind": "r"}} → {"model.kind": "r"}."""
    flat: dict[str, Any] = {}
    for key, value in params.items():
        if not isinstance(key, str):
            raise InvalidValue(f"param key {key!r} is a {type(key).__name__}; keys are strings")
        full = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten_params(value, f"{full}."))
        else:
            flat[full] = value
    return flat


def metric_value(key: str, value: Any) -> float:
    """A metric value as a float; NaN and ±inf are allowed, text and bools are not."""
    if type(value) is float:
        return value
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
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
    """A metric step: an integer."""
    if isinstance(step, numbers.Integral) and not isinstance(step, bool):
        return int(step)
    raise InvalidValue(f"step {step!r} is not an integer")


def timestamp_ms(timestamp: Any) -> int:
    """A metric timestamp in milliseconds since the epoch."""
    if isinstance(timestamp, numbers.Real) and not isinstance(timestamp, bool) \
            and math.isfinite(timestamp):
        return int(timestamp)
    raise InvalidValue(f"timestamp {timestamp!r} is not milliseconds since the epoch")


def verdict_value(verdict: Any) -> str:
    """A conclusion verdict: supported, refuted or inconclusive."""
    if isinstance(verdict, str) and verdict.lower() in VERDICTS:
        return verdict.lower()
    raise InvalidValue(f"verdict {verdict!r} is not allowed; use one of {', '.join(VERDICTS)}")


def artifact_path(path: str) -> str:
    """A relative artifact path, normalised to '/' separators; '..' and absolute are refused."""
    if not isinstance(path, str) or not path.strip():
        raise InvalidValue(f"artifact path {path!r} is empty")
    if path.startswith(("/", "\\")) or (len(path) > 1 and path[1] == ":"):
        raise InvalidValue(f"artifact path {path!r} is absolute; give a path inside the run")
    parts = [p for p in path.replace("\\", "/").split("/") if p not in ("", ".")]
    if ".." in parts:
        raise InvalidValue(f"artifact path {path!r} leaves the run's folder ('..' is not allowed)")
    if not parts:
        raise InvalidValue(f"artifact path {path!r} names no file")
    for part in parts:
        check_entry_name(part)
    return "/".join(parts)
