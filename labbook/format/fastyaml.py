"""A fast reader for exactly the YAML that :func:`labbook.format.yamlio.dump` writes.

Two layers: ``yamlshapes`` reads a document whose skeleton (its text with the values
cut out) was seen before by filling its values into the skeleton's compiled shape;
``yamlreader`` reads any document of the subset line by line. Either returns what
libyaml returns for the same bytes, or raises :class:`NotCanonical`, and the caller
reads the bytes the complete way, which also reports the errors.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .yamlreader import DEFAULT_TAGS, NotCanonical, Resolvers, checked_text, memos_for, read_lines
from .yamlshapes import Slot, fill, shaped

__all__ = ["NotCanonical", "Slot", "parse", "project"]

_MISS = object()


def parse(data: bytes, tags: dict[str, str] | None = None, resolvers: Resolvers | None = None) -> Any:
    """Read ``data`` written by ``yamlio.dump``, or raise :class:`NotCanonical`.

    ``resolvers`` are the implicit resolvers (first character → [(tag, regexp)]) and
    ``tags`` the memo of plain text → tag of the slow path, so both paths resolve plain
    scalars with the same table; by default they are built as ``yamlio``'s are.
    """
    text = checked_text(data)
    memos = memos_for(resolvers)
    tags = DEFAULT_TAGS if tags is None else tags
    found = shaped(text, tags, memos)
    if found is not None:
        shape, values = found
        return fill(shape.tree, values)
    return read_lines(text, tags, memos)


def project(data: bytes, compile: Callable[[Any], Any], tags: dict[str, str] | None = None,
            resolvers: Resolvers | None = None) -> tuple[Any, list[Any]] | None:
    """``(compile(template), values)`` for a document whose skeleton has a known shape, else None.

    The template is the document with a :class:`Slot` where each value goes; ``values``
    are the document's values, in slot order, as :func:`parse` reads them. ``compile``
    runs once per shape (its result is remembered with the shape) and may return None,
    for shapes it does not handle. None also when the skeleton is new or a value is
    outside the subset: then :func:`parse` is the way to read the document. Raises
    :class:`NotCanonical` as :func:`parse` does for bytes outside the subset.
    """
    memos = memos_for(resolvers)
    found = shaped(checked_text(data), DEFAULT_TAGS if tags is None else tags, memos)
    if found is None:
        return None
    shape, values = found
    plan = shape.plans.get(compile, _MISS)
    if plan is _MISS:
        plan = shape.plans[compile] = compile(fill(shape.tree, [Slot(i) for i in range(shape.count)]))
    return None if plan is None else (plan, values)
