"""Declarative shapes of plain data read from the branch, and one walker that checks them.

``record.py`` declares what each file of the branch may hold with these pieces;
:func:`check` walks a parsed document against that declaration and raises
:class:`SchemaError` naming the first field that is wrong (``params.lr``,
``metrics.loss.step``) and why. :func:`slot_checks` walks a *template* instead (a
document whose values are placeholders, see ``fastyaml.project``): it checks
what the template fixes once and returns, for each placeholder, the rule its
value must pass, so a reader that fills templates checks exactly what
:func:`check` checks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Rule = Callable[[Any], "str | None"]  # None when the value is allowed, else what is wrong with it


class SchemaError(ValueError):
    """A value that does not have the declared shape; ``where`` is its dotted place."""

    def __init__(self, where: str, problem: str):
        super().__init__(f"{where}: {problem}" if where else problem)
        self.where = where
        self.problem = problem


@dataclass(frozen=True)
class Map:
    """A mapping with known fields; ``other`` is the shape of any other key's value (None:
    other keys are refused). Keys are always text."""

    fields: dict[str, Any]
    required: frozenset[str] = frozenset()
    other: Any = None


@dataclass(frozen=True)
class Dict:
    """A mapping of text keys (each passing ``key``) to values of one shape."""

    key: Rule
    value: Any


@dataclass(frozen=True)
class List:
    """A list of values of one shape."""

    item: Any


@dataclass(frozen=True)
class Opt:
    """None, or a value of the shape."""

    shape: Any


@dataclass(frozen=True)
class OneOf:
    """A value of the first of several shapes it fits (``what`` says what is allowed)."""

    shapes: tuple[Any, ...]
    what: str = field(default="")


class _Plain:
    """Any plain value: None, bool, int, float, text, and lists and text-keyed mappings of them."""


PLAIN = _Plain()
_SCALARS = (type(None), bool, int, float, str)


def _kind(value: Any) -> str:
    return "null" if value is None else "a list" if type(value) is list else \
        "a mapping" if type(value) is dict else f"{type(value).__name__} {value!r:.40}"


def check(value: Any, shape: Any, where: str = "") -> None:
    """Raise SchemaError unless ``value`` has ``shape``."""
    if callable(shape) and not isinstance(shape, (Map, Dict, List, Opt, OneOf, _Plain)):
        problem = shape(value)
        if problem is not None:
            raise SchemaError(where, problem)
    elif isinstance(shape, Opt):
        if value is not None:
            check(value, shape.shape, where)
    elif isinstance(shape, Map):
        _check_map(value, shape, where)
    elif isinstance(shape, Dict):
        if type(value) is not dict:
            raise SchemaError(where, f"should be a mapping, not {_kind(value)}")
        for key, item in value.items():
            _check_key(key, shape.key, where)
            check(item, shape.value, _join(where, key))
    elif isinstance(shape, List):
        if type(value) is not list:
            raise SchemaError(where, f"should be a list, not {_kind(value)}")
        for number, item in enumerate(value):
            check(item, shape.item, f"{where}[{number}]")
    elif isinstance(shape, OneOf):
        for option in shape.shapes:
            try:
                check(value, option, where)
                return
            except SchemaError:
                continue
        raise SchemaError(where, f"is {_kind(value)}; allowed: {shape.what}")
    else:
        _check_plain(value, where)


def _check_map(value: Any, shape: Map, where: str) -> None:
    if type(value) is not dict:
        raise SchemaError(where, f"should be a mapping, not {_kind(value)}")
    for key, item in value.items():
        if type(key) is not str:
            raise SchemaError(where, f"has the key {key!r}, which is not text")
        inner = shape.fields.get(key, shape.other)
        if inner is None:
            raise SchemaError(_join(where, key), "is not a field here")
        check(item, inner, _join(where, key))
    missing = sorted(shape.required - value.keys())
    if missing:
        raise SchemaError(where, f"misses the field {missing[0]!r}")


def _check_key(key: Any, rule: Rule, where: str) -> None:
    if type(key) is not str:
        raise SchemaError(where, f"has the key {key!r}, which is not text")
    problem = rule(key)
    if problem is not None:
        raise SchemaError(_join(where, key), problem)


def _check_plain(value: Any, where: str) -> None:
    kind = type(value)
    if kind in _SCALARS:
        return
    if kind is list:
        for number, item in enumerate(value):
            _check_plain(item, f"{where}[{number}]")
    elif kind is dict:
        for key, item in value.items():
            if type(key) is not str:
                raise SchemaError(where, f"has the key {key!r}, which is not text")
            _check_plain(item, _join(where, key))
    else:
        raise SchemaError(where, f"is a {kind.__name__}; labbook reads only null, booleans, "
                                 "numbers, text, lists and mappings")


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else str(key)


def slot_checks(template: Any, shape: Any, is_slot: Callable[[Any], bool],
                where: str = "") -> list[tuple[int, Any, str]]:
    """Check what ``template`` fixes against ``shape`` (SchemaError if that is wrong) and return
    (slot index, shape its value must have, where) for each slot, in document order."""
    out: list[tuple[int, Any, str]] = []
    _slots(template, shape, is_slot, where, out)
    return out


def _slots(value: Any, shape: Any, is_slot: Callable[[Any], bool], where: str,
           out: list[tuple[int, Any, str]]) -> None:
    if is_slot(value):
        out.append((value.index, shape, where))
        return
    if isinstance(shape, Opt):
        if value is not None:
            _slots(value, shape.shape, is_slot, where, out)
    elif isinstance(shape, Map) and type(value) is dict:
        for key, item in value.items():
            if type(key) is not str:
                raise SchemaError(where, f"has the key {key!r}, which is not text")
            inner = shape.fields.get(key, shape.other)
            if inner is None:
                raise SchemaError(_join(where, key), "is not a field here")
            _slots(item, inner, is_slot, _join(where, key), out)
        missing = sorted(shape.required - value.keys())
        if missing:
            raise SchemaError(where, f"misses the field {missing[0]!r}")
    elif isinstance(shape, Dict) and type(value) is dict:
        for key, item in value.items():
            _check_key(key, shape.key, where)
            _slots(item, shape.value, is_slot, _join(where, key), out)
    elif isinstance(shape, List) and type(value) is list:
        for number, item in enumerate(value):
            _slots(item, shape.item, is_slot, f"{where}[{number}]", out)
    elif isinstance(shape, OneOf) and type(value) in (dict, list):
        for option in shape.shapes:  # the template fixes which option a container can be
            found: list[tuple[int, Any, str]] = []
            try:
                _slots(value, option, is_slot, where, found)
            except SchemaError:
                continue
            out += found
            return
        raise SchemaError(where, f"is {_kind(value)}; allowed: {shape.what}")
    elif isinstance(shape, _Plain) and type(value) is dict:
        for key, item in value.items():
            if type(key) is not str:
                raise SchemaError(where, f"has the key {key!r}, which is not text")
            _slots(item, PLAIN, is_slot, _join(where, key), out)
    elif isinstance(shape, _Plain) and type(value) is list:
        for number, item in enumerate(value):
            _slots(item, PLAIN, is_slot, f"{where}[{number}]", out)
    else:
        check(value, shape, where)  # a constant, or a container where the shape wants another



def predicate(shape: Any) -> Callable[[Any], bool]:
    """A test of one value against ``shape``: True when :func:`check` would pass it."""
    if callable(shape) and not isinstance(shape, (Map, Dict, List, Opt, OneOf, _Plain)):
        return lambda value: shape(value) is None

    def passes(value: Any) -> bool:
        try:
            check(value, shape)
        except SchemaError:
            return False
        return True
    return passes


def passing_types(shape: Any) -> tuple[type, ...]:
    """Types whose every value passes ``shape`` (a rule declares them as its ``types``
    attribute), so a reader checks those values with one ``type(value) in …``."""
    if isinstance(shape, Opt):
        return (*passing_types(shape.shape), type(None))
    if isinstance(shape, _Plain):
        return _SCALARS
    if isinstance(shape, OneOf):
        return tuple(t for option in shape.shapes for t in passing_types(option))
    if callable(shape) and not isinstance(shape, (Map, Dict, List, OneOf)):
        return tuple(getattr(shape, "types", ()))
    return ()
