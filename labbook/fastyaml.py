"""A fast reader for exactly the YAML that :func:`labbook.yamlio.dump` writes.

libyaml's parser is quick, but building PyYAML's node objects from its events
costs most of the time of reading a record. The records labbook writes use a
small, regular subset of YAML: block mappings and sequences indented by two
spaces (sequences inside mappings not indented), ``{}`` and ``[]``, plain,
single- and double-quoted scalars on one line, and literal block scalars (``|``).
:func:`parse` reads that subset line by line and returns what the libyaml path
of ``yamlio.load`` returns for the same bytes. Whenever the input holds anything
else (comments, anchors, tags, flow collections, folded or multi-line scalars,
document markers, odd indentation, duplicate keys, rare number forms ...) it
raises :class:`NotCanonical`, and the caller reads the bytes the complete way,
which also reports the errors.

Scalars and whole lines repeat a lot between records (keys, ``null``, ``true``,
small numbers, ``  status: FINISHED``), so the text of every scalar found valid
is memoised with its value, and so is every line ``key: scalar`` seen twice; a
memo that reaches its size limit starts over.

Whole documents repeat too: the runs of an experiment have the same keys on the
same lines and differ only in values. The second time a document's skeleton (its
text with each line's value cut out) is seen, its shape is compiled, and documents
with that skeleton are then read by one regular-expression split, a memo lookup
or a number conversion per value, and filling the values into the shape: about
twice as fast as line by line.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, NamedTuple

import yaml

__all__ = ["NotCanonical", "Slot", "parse", "project"]

Resolvers = dict[Any, list[tuple[str, re.Pattern[str]]]]


class NotCanonical(Exception):
    """The input is outside the subset this reader fully understands."""


_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"
_TRUE = {"yes", "true", "on", "y"}
_NAN = yaml.constructor.SafeConstructor.nan_value  # the very values PyYAML's constructor returns
_INF = yaml.constructor.SafeConstructor.inf_value
_MAX_DEPTH = 90  # yamlio refuses more than 100 levels; deeper documents take the slow path
_MEMO_LIMIT = 100_000
_MAX_KEY = 1000  # libyaml refuses a key on one line of more than 1024 characters; dump writes 128 at most
_MISS = object()
_BLOCK = object()  # in the memo of lines: "key:", a block collection follows

# The resolvers and tag memo used when the caller passes none (yamlio passes its own).
_DEFAULT_RESOLVERS: Resolvers = {
    first: [(tag, rx) for tag, rx in resolvers
            if tag not in ("tag:yaml.org,2002:merge", "tag:yaml.org,2002:value")]
    for first, resolvers in yaml.CSafeLoader.yaml_implicit_resolvers.items()
}
_DEFAULT_TAGS: dict[str, str] = {}


class _Memos(NamedTuple):
    """What is remembered between documents read with one table of resolvers.

    The memos hold values found with those resolvers, which are not expected to change.
    """

    resolvers: Resolvers
    scalars: dict[str, Any]  # scalar text → value
    entries: dict[str, tuple[int, Any, Any]]  # a whole line "key: scalar" or "key:" → (column, key, value)
    numbers: bool  # whether the resolvers are PyYAML's less merge and value, which read _NUMBER as numbers
    shapes: dict[str, Any]  # skeleton → its _Shape, None (seen once) or _UNSUPPORTED

    def reader(self, lines: list[str], tags: dict[str, str]) -> _Reader:
        return _Reader(lines, tags, self.resolvers, self.scalars, self.entries, self.numbers)


_MEMOS: dict[int, _Memos] = {}  # id(resolvers) → their memos

# Bytes of an ASCII document other than these are outside the subset (tabs, CR, controls).
_ASCII_OK = bytes(range(0x20, 0x7F)) + b"\n"
# The same for any document: characters other than printable ones and "\n" (this also
# refuses NEL, the BOM, and the line and paragraph separators libyaml takes as line breaks).
_BAD_CHAR = re.compile("[^\n -~\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]")
_MARKER = re.compile(r"(?:---|\.\.\.)(?: |\Z)")  # at the start of a line: a document marker
# A plain scalar that libyaml would not read as this one plain scalar on its line.
_BAD_PLAIN = re.compile(r"^(?:[-?:](?: |$)|[ ,\[\]{}#&*!|>'\"%@`])| #|: | $|:$")
_SINGLE = re.compile(r"'([^']*(?:''[^']*)*)'")
_DOUBLE = re.compile(r'"([^"\\]*(?:\\.[^"\\]*)*)"')
_ESCAPE = re.compile(r"\\(?:x([0-9A-Fa-f]{2})|u([0-9A-Fa-f]{4})|U([0-9A-Fa-f]{8})|(.))")
_SIMPLE_ESCAPES = {
    "0": "\0", "a": "\a", "b": "\b", "t": "\t", "n": "\n", "v": "\v", "f": "\f", "r": "\r",
    "e": "\x1b", " ": " ", '"': '"', "/": "/", "\\": "\\", "N": "\x85", "_": "\xa0",
    "L": "\u2028", "P": "\u2029",
}
# Numbers as PyYAML writes ints and finite floats; its resolvers take them as int and float.
_NUMBER = re.compile(r"-?(?:(0|[1-9][0-9]*)|[0-9]+\.[0-9]+(?:e[-+][0-9]+)?)\Z")
_BLOCK_HEADER = re.compile(r"\|([1-9]?)([-+]?)\Z")
# Shapes: from the first ": " of each line to its end is the line's value (if anything);
# the document with every value cut out is its skeleton.
# split() gives [skeleton part, int text, float text, other text, skeleton part, ...], the
# numbers as _NUMBER reads them (a value is one of the three, the others None).
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


def parse(data: bytes, tags: dict[str, str] | None = None, resolvers: Resolvers | None = None) -> Any:
    """Read ``data`` written by ``yamlio.dump``, or raise :class:`NotCanonical`.

    ``resolvers`` are the implicit resolvers (first character → [(tag, regexp)]) and
    ``tags`` the memo of plain text → tag of the slow path, so both paths resolve plain
    scalars with the same table; by default they are built as ``yamlio``'s are.
    """
    text = _text(data)
    memos = _memos(resolvers)
    tags = _DEFAULT_TAGS if tags is None else tags
    shaped = _shaped(text, tags, memos)
    if shaped is not None:
        shape, values = shaped
        return _fill(shape.tree, values)
    lines = text.split("\n")
    lines.pop()
    reader = memos.reader(lines, tags)
    try:
        value, i = reader.top()
    except (RecursionError, ValueError, OverflowError) as exc:
        raise NotCanonical(f"unexpected: {exc}") from None
    if i != len(lines):
        raise NotCanonical(f"line {i + 1} is unexpected")
    return value


class Slot:
    """Where the value numbered ``index`` of a document goes, in the template :func:`project` compiles."""

    __slots__ = ("index",)

    def __init__(self, index: int):
        self.index = index

    def __repr__(self) -> str:
        return f"Slot({self.index})"


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
    memos = _memos(resolvers)
    shaped = _shaped(_text(data), _DEFAULT_TAGS if tags is None else tags, memos)
    if shaped is None:
        return None
    shape, values = shaped
    plan = shape.plans.get(compile, _MISS)
    if plan is _MISS:
        plan = shape.plans[compile] = compile(_fill(shape.tree, [Slot(i) for i in range(shape.count)]))
    return None if plan is None else (plan, values)


def _text(data: bytes) -> str:
    """The text of ``data``, checked to hold only what the subset allows."""
    if type(data) is not bytes:
        raise NotCanonical("not bytes")
    if data.isascii():
        if data.translate(None, _ASCII_OK):
            raise NotCanonical("control characters")
        text = data.decode("ascii")
    else:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise NotCanonical("not UTF-8") from None
        if _BAD_CHAR.search(text):
            raise NotCanonical("characters outside the subset")
    if text[-1:] != "\n":
        raise NotCanonical("no final line break")
    if text.endswith("\n...\n"):  # libyaml ends a document with "..." after a kept |+ scalar
        text = text[:-4]
    return text


def _memos(resolvers: Resolvers | None) -> _Memos:
    if resolvers is None:
        resolvers = _DEFAULT_RESOLVERS
    memos = _MEMOS.get(id(resolvers))
    if memos is None or memos.resolvers is not resolvers:
        if len(_MEMOS) >= 8:
            _MEMOS.clear()
        numbers = _table(resolvers) == _table(_DEFAULT_RESOLVERS)
        memos = _MEMOS[id(resolvers)] = _Memos(resolvers, {}, {}, numbers, {})
    return memos


class _Reader:
    """The lines of one document, and how to resolve its plain scalars."""

    __slots__ = ("entries", "lines", "n", "numbers", "resolvers", "scalars", "tags")

    def __init__(self, lines: list[str], tags: dict[str, str], resolvers: Resolvers,
                 scalars: dict[str, Any], entries: dict[str, tuple[int, Any, Any]], numbers: bool) -> None:
        self.lines = lines
        self.n = len(lines)
        self.tags = tags
        self.resolvers = resolvers
        self.scalars = scalars  # scalar text → value
        self.entries = entries  # a whole line "key: scalar" or "key:" → (column, key, value or _BLOCK)
        self.numbers = numbers  # whether text matching _NUMBER may skip the resolvers

    # -- collections ------------------------------------------------------------
    def top(self) -> tuple[Any, int]:
        """The document's node, which starts on the first line."""
        if not self.lines:
            raise NotCanonical("an empty document")
        first = self.lines[0]
        if _MARKER.match(first):
            raise NotCanonical("a document marker")
        if first[:2] == "- ":
            return self.sequence(0, 0, 1)
        if _is_mapping_entry(first):
            return self.mapping(0, 0, 1)
        return self.inline(first, 0, 0)

    def mapping(self, i: int, col: int, depth: int) -> tuple[dict[Any, Any], int]:
        """The block mapping whose keys are at column ``col``, from line ``i``."""
        if depth > _MAX_DEPTH:
            raise NotCanonical("nested too deep")
        lines, n, entries = self.lines, self.n, self.entries.get
        out: dict[Any, Any] = {}
        pad = " " * col
        while i < n:
            line = lines[i]
            entry = entries(line)
            if entry is None:
                if not line.startswith(pad) or len(line) == col:
                    break  # a line less indented, or an empty one: the mapping ends
                i = self.entry(out, line, i, col, depth)
                continue
            at, key, value = entry  # the common case: a line seen before
            if at != col:
                if at < col:
                    break
                raise NotCanonical(f"line {i + 1} is indented more than expected")
            i += 1
            if value is _BLOCK:
                value, i = self.block(i, col, depth)
            if key in out:
                raise NotCanonical("a duplicate key")  # the slow path reports it
            out[key] = value
        return out, i

    def entry(self, out: dict[Any, Any], line: str, i: int, col: int, depth: int) -> int:
        """Add the mapping entry on line ``i`` (with the lines of its value) to ``out``; the next line."""
        if col:
            content = line[col:]
        elif _MARKER.match(line):  # the only lines at column 0 that are not seen here start with "- "
            raise NotCanonical("a document marker")
        else:
            content = line
        colon = content.find(": ")
        key = self.scalars.get(content[:colon], _MISS) if 0 < colon < _MAX_KEY else _MISS
        if key is _MISS:
            key, rest = self.key(content, i)
        else:
            rest = content[colon + 2:]
        if rest is None:
            value, j = self.block(i + 1, col, depth)
            remember = _BLOCK
        else:
            value = self.scalars.get(rest, _MISS)
            if value is not _MISS:  # (the memo holds no "{}", "[]" or "|" header)
                remember, j = value, i + 1
            elif rest[:1] == "|" or rest == "{}" or rest == "[]":
                value, j = self.inline(rest, i, col)
                remember = _MISS
            else:  # a scalar not seen before, maybe one that never repeats: remember the line next time
                value, j = self.scalar(rest, i), i + 1
                remember = _MISS
        if key in out:
            raise NotCanonical("a duplicate key")
        out[key] = value
        if remember is not _MISS:
            if len(self.entries) >= _MEMO_LIMIT:
                self.entries.clear()
            self.entries[line] = (col, key, remember)
        return j

    def key(self, content: str, i: int) -> tuple[Any, str | None]:
        """The key starting ``content`` and the text after ': ' (None when the line ends)."""
        first = content[0]
        if first == " ":
            raise NotCanonical(f"line {i + 1} is indented more than expected")
        if first == "'" or first == '"':
            key, end = self.quoted(content)
            if end >= _MAX_KEY:
                raise NotCanonical(f"line {i + 1}: a key too long")
            after = content[end:end + 2]
            if after == ": ":
                return key, content[end + 2:]
            if after == ":" and end + 1 == len(content):
                return key, None
            raise NotCanonical(f"line {i + 1}: a quoted key not followed by ': '")
        colon = content.find(": ", 0, _MAX_KEY)
        if colon >= 0:
            key_text, rest = content[:colon], content[colon + 2:]
        elif content[-1] == ":" and len(content) <= _MAX_KEY:
            key_text, rest = content[:-1], None
        else:
            raise NotCanonical(f"line {i + 1} is no mapping entry")
        key = self.scalars.get(key_text, _MISS)
        if key is _MISS:
            key = self.scalar(key_text, i)
        return key, rest

    def block(self, i: int, col: int, depth: int) -> tuple[Any, int]:
        """The block collection from line ``i`` that is the value of a key at column ``col``."""
        line = self.lines[i] if i < self.n else ""
        pad = " " * col
        if line.startswith(pad) and line.startswith("- ", col):
            return self.sequence(i, col, depth + 1)  # not indented, as libyaml writes it
        if (line.startswith(pad + "  ") and line[col + 2:col + 3] not in ("", " ")
                and not line.startswith("- ", col + 2)):
            return self.mapping(i, col + 2, depth + 1)
        raise NotCanonical(f"line {i + 1}: no block collection after a key")

    def sequence(self, i: int, col: int, depth: int) -> tuple[list[Any], int]:
        """The block sequence whose "- " are at column ``col``, from line ``i``."""
        if depth > _MAX_DEPTH:
            raise NotCanonical("nested too deep")
        lines, n, get = self.lines, self.n, self.scalars.get
        out: list[Any] = []
        inner = col + 2
        dash = " " * col + "- "
        while i < n:
            line = lines[i]
            if not line.startswith(dash):
                break
            rest = line[inner:]
            value = get(rest, _MISS)
            if value is not _MISS:
                i += 1
            elif rest[:2] == "- ":  # a sequence in a sequence: "- - a"
                lines[i] = " " * inner + rest
                value, i = self.sequence(i, inner, depth + 1)
            elif _is_mapping_entry(rest):  # a mapping in a sequence: "- key: value"
                lines[i] = " " * inner + rest
                value, i = self.mapping(i, inner, depth + 1)
            else:
                value, i = self.inline(rest, i, col)
            out.append(value)
        return out, i

    # -- scalars ----------------------------------------------------------------
    def inline(self, text: str, i: int, col: int) -> tuple[Any, int]:
        """The node that is ``text``, the end of line ``i``: a scalar, ``{}``, ``[]`` or a literal.

        ``col`` is the column of the collection holding it (0 at the top).
        """
        if text[:1] == "|":
            return self.literal(text, i, col)
        if text == "{}":
            return {}, i + 1
        if text == "[]":
            return [], i + 1
        value = self.scalars.get(text, _MISS)
        if value is _MISS:
            value = self.scalar(text, i)
        return value, i + 1

    def scalar(self, text: str, i: int) -> Any:
        """The value of the plain or quoted scalar that is all of ``text`` (and remember it)."""
        first = text[:1]
        number = _NUMBER.match(text) if self.numbers else None
        if number is not None:
            value = float(text) if number.group(1) is None else int(text)
        elif first == "'" or first == '"':
            value, end = self.quoted(text)
            if end != len(text):
                raise NotCanonical(f"line {i + 1}: more after a quoted scalar")
        elif not text or _BAD_PLAIN.search(text):
            raise NotCanonical(f"line {i + 1}: not a plain scalar of the subset")
        else:
            value = self.plain(text)
        if len(self.scalars) >= _MEMO_LIMIT:
            self.scalars.clear()
        self.scalars[text] = value
        return value

    def plain(self, text: str) -> Any:
        """A plain scalar's value, resolved and converted as yamlio's slow path does."""
        tags = self.tags
        tag = tags.get(text)
        if tag is None:
            tag = _STR
            for candidate, regexp in self.resolvers.get(text[:1], ()):
                if regexp.match(text):
                    tag = candidate
                    break
            if len(tags) < _MEMO_LIMIT:
                tags[text] = tag
        if tag == _STR:
            return text
        if tag == _NULL:
            return None
        if tag == _BOOL:
            return text.lower() in _TRUE
        if tag == _INT:
            digits = text.lstrip("-+")
            if digits.isdigit() and (digits == "0" or digits[0] != "0"):
                return int(text)
            raise NotCanonical("a rarer form of integer")
        if tag == _FLOAT:
            if "_" in text or ":" in text:
                raise NotCanonical("a rarer form of float")
            ending = text[-3:].lower()
            if ending == "inf":
                return -_INF if text[0] == "-" else _INF
            if ending == "nan":
                return _NAN
            return float(text)
        raise NotCanonical(f"a plain scalar tagged {tag}")

    def quoted(self, text: str) -> tuple[str, int]:
        """The value of the quoted scalar that starts ``text``, and where it ends."""
        if text[0] == "'":
            match = _SINGLE.match(text)
            if match is None:
                raise NotCanonical("a single-quoted scalar not closed on its line")
            return match.group(1).replace("''", "'"), match.end()
        match = _DOUBLE.match(text)
        if match is None:
            raise NotCanonical("a double-quoted scalar not closed on its line")
        value = match.group(1)
        if "\\" in value:
            value = _ESCAPE.sub(_unescape, value)
        return value, match.end()

    def literal(self, header: str, i: int, col: int) -> tuple[str, int]:
        """The literal block scalar whose ``header`` ends line ``i``, in a collection at ``col``."""
        match = _BLOCK_HEADER.match(header)
        if match is None:
            raise NotCanonical(f"line {i + 1}: a block scalar header outside the subset")
        digit, chomp = match.groups()
        lines, n = self.lines, self.n
        i += 1
        # libyaml's scanner: the content is indented by the indicator more than the
        # collection; without one, as its first line, which libyaml writes 2 deeper.
        indent = col + int(digit or 2)
        pad = " " * indent
        if not digit and (i >= n or not lines[i].startswith(pad) or lines[i][indent:indent + 1] in ("", " ")):
            raise NotCanonical(f"line {i + 1}: a block scalar not indented as libyaml writes it")
        start = i
        while i < n:
            line = lines[i]
            if line and not line.startswith(pad):
                if not line.strip(" "):
                    raise NotCanonical(f"line {i + 1}: a line of spaces in a block scalar")
                break
            i += 1
        body = [line[indent:] for line in lines[start:i]]
        end = len(body)
        while end and not body[end - 1]:
            end -= 1
        text = "\n".join(body[:end])
        if end and chomp != "-":
            text += "\n"
        if chomp == "+":
            text += "\n" * (len(body) - end)
        return text, i


# -- shapes: documents that differ only in their values ---------------------------
# Records of one experiment differ mostly in their values: the same keys on the same
# lines. The values of a document are the rest of each line after its first ": ", each
# sequence item that is one scalar, and each literal block (cut out first, and read by
# _Reader.literal); the document with its values cut out is its skeleton. A skeleton
# is read once, line by line, with a quoted marker standing for each value; that gives
# its shape, where each marker is a slot. A document with a known skeleton is then
# read by resolving its values as scalars and filling them into the shape. A value
# is read exactly as the line by line reader reads the rest of an entry's line, and a
# value that is not a scalar of the subset, or a skeleton that does not read, falls
# back to the line by line reader.
_MAP, _LIST, _SLOT_REF, _CONST = range(4)  # kinds of shape
_RUN, _RUN_MAP, _NODE = range(3)  # kinds of mapping segment


class _Shape:
    """A compiled shape: its tree, how many values it holds, and what ``project`` compiled from it."""

    __slots__ = ("count", "plans", "tree")

    def __init__(self, tree: Any, count: int):
        self.tree = tree
        self.count = count
        self.plans: dict[Callable[[Any], Any], Any] = {}


def _shaped(text: str, tags: dict[str, str], memos: _Memos) -> tuple[_Shape, list[Any]] | None:
    """(shape, values) of ``text`` if its skeleton has a shape and its values are scalars of the subset."""
    if not memos.numbers:  # the resolvers do not read _NUMBER as numbers, as the shapes do
        return None
    literals: list[str] = []
    if ": |" in text or "- |" in text:  # literal blocks (notes over lines): each becomes one value
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
    """The _Shape of the documents with this skeleton, or _UNSUPPORTED."""
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
    reader = _Reader(lines, tags, resolvers, {}, {}, True)  # own memos: no marker enters the shared ones
    try:
        value, i = reader.top()
        if i != len(lines):
            return _UNSUPPORTED
        slots: list[int] = []
        shape = _shape_of(value, slots)
    except (NotCanonical, RecursionError, ValueError, OverflowError):
        return _UNSUPPORTED
    count = len(parts) - 1
    return _Shape(shape, count) if slots == list(range(count)) else _UNSUPPORTED


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


def _fill(shape: Any, values: list[Any]) -> Any:
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
                out[segment[1]] = _fill(segment[2], values)
        return out
    if kind == _LIST:
        return [_fill(item, values) for item in body]
    if kind == _SLOT_REF:
        return values[body]
    return body


def _values(parts: list[str | None], reader: _Reader, literals: list[str]) -> list[Any]:
    """The values in the parts ``_VALUES.split`` cut a document into, read as the line by line
    reader reads the rest of an entry's line (``literals``: the blocks ``_cut_literals`` cut out)."""
    get = reader.scalars.get
    return [int(whole) if whole is not None else float(decimal) if decimal is not None
            else value if (value := get(other, _MISS)) is not _MISS else _value(other, reader, literals)
            for whole, decimal, other in zip(parts[1::4], parts[2::4], parts[3::4], strict=True)]


def _value(text: str, reader: _Reader, literals: list[str]) -> Any:
    if text[:1] == _LITERAL:
        return literals[int(text[1:])]
    if text == "{}":
        return {}
    if text == "[]":
        return []
    return reader.scalar(text, 0)


def _cut_literals(text: str, reader: _Reader, literals: list[str]) -> str | None:
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


def _is_mapping_entry(text: str) -> bool:
    """Whether ``text`` (the rest of a line) starts with a key followed by ':'."""
    first = text[:1]
    if first == "'" or first == '"':
        match = (_SINGLE if first == "'" else _DOUBLE).match(text)
        return match is not None and text[match.end():match.end() + 1] == ":"
    return ": " in text or text[-1:] == ":"


def _unescape(match: re.Match[str]) -> str:
    simple = match.group(4)
    if simple is not None:
        try:
            return _SIMPLE_ESCAPES[simple]
        except KeyError:
            raise NotCanonical(f"the escape \\{simple}") from None
    code = int(match.group(1) or match.group(2) or match.group(3), 16)
    if 0xD800 <= code <= 0xDFFF or code > 0x10FFFF:
        raise NotCanonical("an escape of an invalid code point")
    return chr(code)


def _table(resolvers: Resolvers) -> dict[Any, list[tuple[str, str]]]:
    return {first: [(tag, rx.pattern) for tag, rx in pairs] for first, pairs in resolvers.items()}
