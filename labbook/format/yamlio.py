"""YAML in and out, safe and exact.

Dumping uses libyaml (``CSafeDumper``) with YAML 1.2's number forms added to
the resolver, so a string such as ``"1e3"`` or ``"0o17"`` is written quoted and
reads back as a string in any YAML reader. Loading uses ``CSafeLoader`` hardened
against what a shared branch may carry: duplicate keys, aliases and tags other
than YAML's core ones (``!!binary``, ``!!set``, ``!!timestamp``…) are refused, the
input size is capped, and the plain scalars ``=``, ``<<`` and dates such as
``2024-01-01`` are strings (YAML 1.1 would make the last a date, which no record holds).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, ClassVar

import yaml

from ..errors import FormatError
from .yamlreader import BOOL_TAG as _BOOL
from .yamlreader import FLOAT_TAG as _FLOAT
from .yamlreader import INT_TAG as _INT
from .yamlreader import NULL_TAG as _NULL
from .yamlreader import STR_TAG as _STR
from .yamlreader import TRUE_WORDS as _TRUE
from .yamlreader import plain_tag

MAX_DOCUMENT_BYTES = 64 * 1024 * 1024

if not getattr(yaml, "__with_libyaml__", False):  # pragma: no cover - depends on the wheel
    raise ImportError("labbook needs PyYAML built with libyaml (the C loader and dumper)")

_YAML12_FLOAT = re.compile(r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$")
_YAML12_INT = re.compile(r"^(?:0o[0-7]+|0x[0-9a-fA-F]+)$")
_MERGE = "tag:yaml.org,2002:merge"
_VALUE = "tag:yaml.org,2002:value"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_CORE = {_STR, _INT, _FLOAT, _BOOL, _NULL, "tag:yaml.org,2002:seq", "tag:yaml.org,2002:map"}


class _Dumper(yaml.CSafeDumper):
    """libyaml dumper that also quotes strings YAML 1.2 readers would take as numbers."""


_Dumper.add_implicit_resolver("tag:yaml.org,2002:float", _YAML12_FLOAT, list("0123456789+-."))
_Dumper.add_implicit_resolver("tag:yaml.org,2002:int", _YAML12_INT, list("0"))


def _represent_str(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    style = "|" if "\n" in text else None  # notes read well in git diffs as block scalars
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_Dumper.add_representer(str, _represent_str)


_SEQ = "tag:yaml.org,2002:seq"
_MAP = "tag:yaml.org,2002:map"
_PLAIN_TAGS: dict[str, str] = {}  # plain scalar text → resolved tag (keys repeat a lot)


class _Loader(yaml.CSafeLoader):
    """libyaml's parser with a memoised resolver; :func:`_build` turns its nodes into values."""

    yaml_implicit_resolvers: ClassVar[dict] = {
        first: [(tag, rx) for tag, rx in resolvers if tag not in (_MERGE, _VALUE, _TIMESTAMP)]
        for first, resolvers in yaml.CSafeLoader.yaml_implicit_resolvers.items()
    }

    def resolve(self, kind: type, value: Any, implicit: tuple[bool, bool]) -> str:
        if kind is yaml.ScalarNode:
            if not implicit[0]:
                return _STR
            return _PLAIN_TAGS.get(value) or plain_tag(value, self.yaml_implicit_resolvers, _PLAIN_TAGS)
        return _SEQ if kind is yaml.SequenceNode else _MAP


def _build(loader: _Loader, node: yaml.Node, seen: set[int], depth: int = 0) -> Any:
    """Turn a node into plain values, refusing aliases, duplicate keys and non-scalar keys."""
    if id(node) in seen:
        raise yaml.constructor.ConstructorError(None, None, "aliases (*name) are not allowed",
                                                node.start_mark)
    seen.add(id(node))
    if node.tag not in _CORE:  # !!binary, !!timestamp, !!set, !!omap, local tags: not plain data
        raise yaml.constructor.ConstructorError(
            None, None, f"the tag {node.tag.replace('tag:yaml.org,2002:', '!!')} is not allowed "
            "(labbook reads null, booleans, numbers, text, lists and mappings)", node.start_mark)
    if depth > 100:
        raise yaml.constructor.ConstructorError(None, None, "nested more than 100 levels deep",
                                                node.start_mark)
    tag = node.tag
    if isinstance(node, yaml.ScalarNode):
        value = node.value
        if tag == _STR:
            return value
        if tag == _FLOAT and value[-3:].lower() not in ("nan", "inf") and "_" not in value:
            return float(value)
        digits = value.lstrip("-+")
        if tag == _INT and digits.isdigit() and (digits == "0" or not digits.startswith("0")):
            return int(value)
        if tag == _BOOL:
            return value.lower() in _TRUE
        if tag == _NULL:
            return None
        return loader.construct_object(node, deep=True)  # rarer forms: 0x1F, .inf, 1_000
    if isinstance(node, yaml.SequenceNode):
        if tag != _SEQ:
            return loader.construct_object(node, deep=True)
        return [_build(loader, item, seen, depth + 1) for item in node.value]
    if tag != _MAP:
        return loader.construct_object(node, deep=True)
    out: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        if not isinstance(key_node, yaml.ScalarNode):
            raise yaml.constructor.ConstructorError(
                None, None, "mapping keys must be plain values", key_node.start_mark)
        key = _build(loader, key_node, seen, depth + 1)
        if key in out:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key_node.value!r}", key_node.start_mark)
        out[key] = _build(loader, value_node, seen, depth + 1)
    return out


def dump(data: Any) -> bytes:
    """Serialise ``data`` to YAML bytes; the same data always gives the same bytes."""
    text = yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True,
                     default_flow_style=False, width=1_000_000)
    return text.encode("utf-8")


def load(data: bytes, path: str) -> Any:
    """Parse YAML bytes read from ``path``; any problem is a FormatError naming the path."""
    if len(data) > MAX_DOCUMENT_BYTES:
        raise FormatError(path, f"{len(data)} bytes is more than the {MAX_DOCUMENT_BYTES} allowed")
    from . import fastyaml  # the fast reader of what dump writes; it never imports this module

    try:
        return fastyaml.parse(data, _PLAIN_TAGS, _Loader.yaml_implicit_resolvers)
    except fastyaml.NotCanonical:
        pass  # anything else is read, or refused, by libyaml below
    loader = _Loader(data)
    try:
        node = loader.get_single_node()
        return None if node is None else _build(loader, node, set())
    except yaml.YAMLError as exc:
        raise FormatError(path, " ".join(str(exc).split())) from exc
    except (ValueError, TypeError, RecursionError) as exc:
        raise FormatError(path, f"unreadable value: {exc}") from exc
    finally:
        loader.dispose()


def project(data: bytes, compile: Callable[[Any], Any]) -> tuple[Any, list[Any]] | None:
    """``fastyaml.project`` with this module's table: ``(compile(template), values)`` for a
    document of a shape already seen, or None, and then :func:`load` reads it."""
    if len(data) > MAX_DOCUMENT_BYTES:
        return None
    from . import fastyaml

    try:
        return fastyaml.project(data, compile, _PLAIN_TAGS, _Loader.yaml_implicit_resolvers)
    except fastyaml.NotCanonical:
        return None
