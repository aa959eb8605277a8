"""Documents that differ only in their values, read by their compiled shape.

Records of one experiment differ mostly in their values: the same keys on the same
lines. The values of a document are the rest of each line after its first ": ", each
sequence item that is one scalar, and each literal block (cut out first, and read by
``Reader.literal``); the document with its values cut out is its skeleton. The second
time a skeleton is seen it is read once, line by line, with a quoted marker standing
for each value; that gives its shape, where each marker is a slot. A document with a
known skeleton is then read by one regular-expression split, a memo lookup or a number
conversion per value, and filling the values into the shape: about twice as fast as
line by line. A value is read exactly as the line by line reader reads it there; a
value that is not a scalar of the subset, or a skeleton that does not read, is left to
the line by line reader.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from .yamlreader import Memos, NotCanonical, Reader, Resolvers

_MISS = object()

# split() gives [skeleton part, int text, float text, other text, skeleton part, ...], the
# numbers as yamlreader's _NUMBER reads them (a value is one of the three, the others None).
_VALUES = re.compile(r": (?:(-?(?:0|[1-9][0-9]*))|(-?[0-9]+\.[0-9]+(?:e[-+][0-9]+)?)|([^\n]*))$", re.M)
_SLOT = "\x00"  # never in a document that gets this far (control characters are refused)
_SLOT_TAIL = ":" + _SLOT
# A sequence item that is one scalar ("- x", not "- - x", "- key: x" or "- key:") gets a
# marker and ": " before its value, so that _VALUES takes the value; the skeleton then
# holds "- <_ITEM>:" where the value was.
_ITEM = "\x01"
_SCALAR_ITEM = re.compile(r"\n( *)- (?!- )(?=(?:[^:\n]|:(?=[^ \n]))+$)", re.M)
_MARKED_ITEM = "\n\\1- " + _ITEM + ": "
# The header of a literal block, which ends its line (where it may be one).
_LITERAL_HEADER = re.compile(r" (\|[1-9]?[-+]?)$", re.M)
_LITERAL = "\x02"  # stands for the value of a literal block cut out of a document
_SHAPE_LIMIT = 1000
_UNSUPPORTED = object()  # a skeleton whose shape is not compiled (the line by line reader reads it)


class Slot:
    """Where value number ``index`` of a document goes, in the template ``fastyaml.project`` compiles."""

    __slots__ = ("index",)

    def __init__(self, index: int):
        self.index = index

    def __repr__(self) -> str:
        return f"Slot({self.index})"


_MAP, _LIST, _SLOT_REF, _CONST = range(4)  # kinds of shape
_RUN, _RUN_MAP, _NODE = range(3)  # kinds of mapping segment


class Shape:
    """A compiled shape: its tree, how many values it holds, and what ``project`` compiled from it."""

    __slots__ = ("count", "plans", "tree")

    def __init__(self, tree: Any, count: int):
        self.tree = tree
        self.count = count
        self.plans: dict[Callable[[Any], Any], Any] = {}


def shaped(text: str, tags: dict[str, str], memos: Memos) -> tuple[Shape, list[Any]] | None:
    """(shape, values) of ``text`` if its skeleton has a shape and its values are scalars of the subset."""
    if not memos.numbers:  # the resolvers do not read _NUMBER as numbers, as the shapes do
        return None
    literals: list[str] = []
    if "|" in text and (": |" in text or "- |" in text):  # literal blocks (notes over lines): one value each
        cut = _cut_literals(text, memos.reader(text.split("\n")[:-1], tags), literals)
        if cut is None:
            return None
        text = cut
    if "- " in text:
        text = _SCALAR_ITEM.sub(_MARKED_ITEM, text)
    parts = _VALUES.split(text)
    skeleton = _SLOT_TAIL.join(parts[::4])
    shapes = memos.shapes
    shape = shapes.get(skeleton, _MISS)
    if shape is _MISS:  # seen once: not worth compiling yet
        if len(shapes) >= _SHAPE_LIMIT:
            shapes.clear()
        shapes[skeleton] = None
        return None
    if shape is None:
        shape = shapes[skeleton] = _compile_shape(skeleton, tags, memos.resolvers)
    if shape is _UNSUPPORTED:
        return None
    try:
        return shape, _values(parts, memos.reader([], tags), literals)
    except NotCanonical:  # a value outside the subset: the line by line reader says which
        return None


def _compile_shape(skeleton: str, tags: dict[str, str], resolvers: Resolvers) -> Any:
    """The Shape of the documents with this skeleton, or _UNSUPPORTED."""
    if _LITERAL in skeleton:  # a literal block that is not a value (a sequence's first line)
        return _UNSUPPORTED
    parts = skeleton.split(_SLOT)
    pieces = [parts[0]]
    for i, part in enumerate(parts[1:]):
        if pieces[-1].endswith(_ITEM + ":"):  # a scalar item: "- " and its value
            pieces[-1] = pieces[-1][:-2]
            pieces.append(f"'{_SLOT}{i}'")
        else:  # the value of a mapping entry: ": " and its value
            pieces.append(f" '{_SLOT}{i}'")
        pieces.append(part)
    lines = "".join(pieces).split("\n")
    lines.pop()
    reader = Reader(lines, tags, resolvers, {}, {}, True)  # own memos: no marker enters the shared ones
    try:
        value, i = reader.top()
        if i != len(lines):
            return _UNSUPPORTED
        slots: list[int] = []
        shape = _shape_of(value, slots)
    except (NotCanonical, RecursionError, ValueError, OverflowError):
        return _UNSUPPORTED
    count = len(parts) - 1
    return Shape(shape, count) if slots == list(range(count)) else _UNSUPPORTED


def _shape_of(value: Any, slots: list[int]) -> Any:
    """The shape of a value read from a probe; ``slots`` collects the slot numbers in order.

    A shape is (_MAP, segments), (_LIST, shapes), (_SLOT_REF, slot) or (_CONST, value). The
    segments of a mapping, in order, are (_RUN, keys, first slot, end) for entries whose
    values are consecutive slots, (_RUN_MAP, key, keys, first slot, end) for an entry whose
    value is a mapping of such entries only, and (_NODE, key, shape) for any other entry.
    """
    if type(value) is dict:
        segments: list[tuple[Any, ...]] = []
        for key, item in value.items():
            if type(key) is str and _SLOT in key:
                raise NotCanonical("a marker in a key")
            inner = _shape_of(item, slots)
            last = segments[-1] if segments else (None,)
            if inner[0] == _SLOT_REF:
                if last[0] == _RUN and last[3] == inner[1]:
                    segments[-1] = (_RUN, (*last[1], key), last[2], inner[1] + 1)
                else:
                    segments.append((_RUN, (key,), inner[1], inner[1] + 1))
            elif inner[0] == _MAP and len(inner[1]) == 1 and inner[1][0][0] == _RUN:
                segments.append((_RUN_MAP, key, *inner[1][0][1:]))
            else:
                segments.append((_NODE, key, inner))
        return (_MAP, segments)
    if type(value) is list:
        return (_LIST, [_shape_of(item, slots) for item in value])
    if type(value) is str and _SLOT in value:
        if value[:1] != _SLOT or not value[1:].isdigit():
            raise NotCanonical("a marker inside a scalar")
        slots.append(int(value[1:]))
        return (_SLOT_REF, slots[-1])
    return (_CONST, value)


def fill(shape: Any, values: list[Any]) -> Any:
    """The value of ``shape`` with ``values`` in its slots."""
    kind, body = shape
    if kind == _MAP:
        out: dict[Any, Any] = {}
        for segment in body:
            how = segment[0]
            if how == _RUN:
                out.update(zip(segment[1], values[segment[2]:segment[3]], strict=True))
            elif how == _RUN_MAP:
                out[segment[1]] = dict(zip(segment[2], values[segment[3]:segment[4]], strict=True))
            else:
                out[segment[1]] = fill(segment[2], values)
        return out
    if kind == _LIST:
        return [fill(item, values) for item in body]
    if kind == _SLOT_REF:
        return values[body]
    return body


def _values(parts: list[str | None], reader: Reader, literals: list[str]) -> list[Any]:
    """The values in the parts ``_VALUES.split`` cut a document into, read as the line by line
    reader reads the rest of an entry's line (``literals``: the blocks ``_cut_literals`` cut out)."""
    get = reader.scalars.get
    return [int(whole) if whole is not None else float(decimal) if decimal is not None
            else value if (value := get(other, _MISS)) is not _MISS else _value(other, reader, literals)
            for whole, decimal, other in zip(parts[1::4], parts[2::4], parts[3::4], strict=True)]


def _value(text: str, reader: Reader, literals: list[str]) -> Any:
    if text[:1] == _LITERAL:
        return literals[int(text[1:])]
    if text == "{}":
        return {}
    if text == "[]":
        return []
    return reader.scalar(text, 0)


def _cut_literals(text: str, reader: Reader, literals: list[str]) -> str | None:
    """``text`` with each literal block scalar (header and lines) replaced by ``_LITERAL`` and
    its number in ``literals``, where its value goes, as the line by line reader reads it;
    None when a block is not one it reads."""
    lines = reader.lines
    out: list[str] = []
    done = 0  # the lines before this one are in out
    for match in _LITERAL_HEADER.finditer(text):
        if text[match.start() - 1:match.start()] not in (":", "-"):
            continue
        i = text.count("\n", 0, match.start())
        if i < done:  # a line of a block already cut out
            continue
        header = match.group(1)
        line = lines[i]
        rest = line.lstrip(" ")
        col = len(line) - len(rest)  # the column of the collection holding the block
        dashes = 0
        while rest.startswith("- "):
            rest = rest[2:]
            dashes += 1
        if rest == header:  # "- |": a sequence's item
            col += 2 * max(dashes - 1, 0)
        elif rest.endswith(": " + header) and len(rest) > len(header) + 2:  # "key: |": a mapping's value
            col += 2 * dashes
        else:  # "|" inside a scalar ("a - |"): not a header
            continue
        try:
            value, end = reader.literal(header, i, col)
        except (NotCanonical, ValueError):
            return None
        out += lines[done:i]
        out.append(f"{lines[i][:-len(header)]}{_LITERAL}{len(literals)}")
        literals.append(value)
        done = end
    out += lines[done:]
    out.append("")
    return "\n".join(out)
