"""YAML in and out, safe and exact.

Dumping uses libyaml (``CSafeDumper``) with YAML 1.2's number forms added to
the resolver, so a string such as ``"1e3"`` or ``"0o17"`` is written quoted and
reads back as a string in any YAML reader. Loading uses ``CSafeLoader`` hardened
against what a shared branch may carry: duplicate keys and aliases are refused,
the input size is capped, and the plain scalars ``=`` and ``<<`` are strings.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

import yaml

from .errors import FormatError

MAX_DOCUMENT_BYTES = 64 * 1024 * 1024

if not getattr(yaml, "__with_libyaml__", False):  # pragma: no cover - depends on the wheel
    raise ImportError("labbook needs PyYAML built with libyaml (the C loader and dumper)")

_YAML12_FLOAT = re.compile(r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$")
_YAML12_INT = re.compile(r"^(?:0o[0-7]+|0x[0-9a-fA-F]+)$")
_MERGE = "tag:yaml.org,2002:merge"
_VALUE = "tag:yaml.org,2002:value"


class _Dumper(yaml.CSafeDumper):
    """libyaml dumper that also quotes strings YAML 1.2 readers would take as numbers."""


_Dumper.add_implicit_resolver("tag:yaml.org,2002:float", _YAML12_FLOAT, list("0123456789+-."))
_Dumper.add_implicit_resolver("tag:yaml.org,2002:int", _YAML12_INT, list("0"))


def _represent_str(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    style = "|" if "\n" in text else None  # notes read well in git diffs as block scalars
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_Dumper.add_representer(str, _represent_str)


class _Loader(yaml.CSafeLoader):
    """libyaml loader that refuses aliases, duplicate keys and non-scalar keys."""

    yaml_implicit_resolvers: ClassVar[dict] = {
        first: [(tag, rx) for tag, rx in resolvers if tag not in (_MERGE, _VALUE)]
        for first, resolvers in yaml.CSafeLoader.yaml_implicit_resolvers.items()
    }

    def construct_document(self, node: yaml.Node) -> Any:
        _check_graph(node)
        return super().construct_document(node)


def _check_graph(root: yaml.Node) -> None:
    """Refuse a node graph with shared nodes (aliases) or duplicate mapping keys."""
    seen: set[int] = set()
    pending = [root]
    while pending:
        node = pending.pop()
        if id(node) in seen:
            raise yaml.constructor.ConstructorError(
                None, None, "aliases (*name) are not allowed", node.start_mark)
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            keys = set()
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    raise yaml.constructor.ConstructorError(
                        None, None, "mapping keys must be plain values", key_node.start_mark)
                key = (key_node.tag, key_node.value)
                if key in keys:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key_node.value!r}", key_node.start_mark)
                keys.add(key)
                pending.append(value_node)
        elif isinstance(node, yaml.SequenceNode):
            pending.extend(node.value)


def dump(data: Any) -> bytes:
    """Serialise ``data`` to YAML bytes; the same data always gives the same bytes."""
    text = yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True,
                     default_flow_style=False, width=1_000_000)
    return text.encode("utf-8")


def load(data: bytes, path: str) -> Any:
    """Parse YAML bytes read from ``path``; any problem is a FormatError naming the path."""
    if len(data) > MAX_DOCUMENT_BYTES:
        raise FormatError(path, f"{len(data)} bytes is more than the {MAX_DOCUMENT_BYTES} allowed")
    try:
        return yaml.load(data, Loader=_Loader)
    except yaml.YAMLError as exc:
        raise FormatError(path, " ".join(str(exc).split())) from exc
