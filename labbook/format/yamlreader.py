"""The line by line reader of the YAML subset :func:`labbook.format.yamlio.dump` writes.

libyaml's parser is quick, but building PyYAML's node objects from its events
costs most of the time of reading a record. The records labbook writes use a
small, regular subset of YAML: block mappings and sequences indented by two
spaces (sequences inside mappings not indented), ``{}`` and ``[]``, plain,
single- and double-quoted scalars on one line, and literal block scalars (``|``).
:func:`read_lines` reads that subset line by line and returns what the libyaml
path of ``yamlio.load`` returns for the same bytes. Whenever the input holds
anything else (comments, anchors, tags, flow collections, folded or multi-line
scalars, document markers, odd indentation, duplicate keys, rare number forms ...)
it raises :class:`NotCanonical`, and the caller reads the bytes the complete way,
which also reports the errors. ``fastyaml`` is the way in.

Scalars and whole lines repeat a lot between records (keys, ``null``, ``true``,
small numbers, ``  status: FINISHED``), so the text of every scalar found valid
is memoised with its value, and so is every line ``key: scalar`` seen twice; a
memo that reaches its size limit starts over.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

import yaml

Resolvers = dict[Any, list[tuple[str, re.Pattern[str]]]]


class NotCanonical(Exception):
    """The input is outside the subset this reader fully understands."""


STR_TAG = "tag:yaml.org,2002:str"
INT_TAG = "tag:yaml.org,2002:int"
FLOAT_TAG = "tag:yaml.org,2002:float"
BOOL_TAG = "tag:yaml.org,2002:bool"
NULL_TAG = "tag:yaml.org,2002:null"
TRUE_WORDS = {"yes", "true", "on", "y"}
_NAN = yaml.constructor.SafeConstructor.nan_value  # the very values PyYAML's constructor returns
_INF = yaml.constructor.SafeConstructor.inf_value
_MAX_DEPTH = 90  # yamlio refuses more than 100 levels; deeper documents take the slow path
_MEMO_LIMIT = 100_000
_MAX_KEY = 1000  # libyaml refuses a key on one line of more than 1024 characters; dump writes 128 at most
_MISS = object()
_BLOCK = object()  # in the memo of lines: "key:", a block collection follows

# The resolvers and tag memo used when the caller passes none (yamlio passes its own).
DEFAULT_RESOLVERS: Resolvers = {
    first: [(tag, rx) for tag, rx in resolvers
            if tag not in ("tag:yaml.org,2002:merge", "tag:yaml.org,2002:value",
                           "tag:yaml.org,2002:timestamp")]  # a date reads as text, as in yamlio
    for first, resolvers in yaml.CSafeLoader.yaml_implicit_resolvers.items()
}
DEFAULT_TAGS: dict[str, str] = {}


class Memos(NamedTuple):
    """What is remembered between documents read with one table of resolvers.

    The memos hold values found with those resolvers, which are not expected to change.
    """

    resolvers: Resolvers
    scalars: dict[str, Any]  # scalar text → value
    entries: dict[str, tuple[int, Any, Any]]  # a whole line "key: scalar" or "key:" → (column, key, value)
    numbers: bool  # whether the resolvers are PyYAML's less merge and value, which read _NUMBER as numbers
    shapes: dict[str, Any]  # skeleton → its shape, for yamlshapes

    def reader(self, lines: list[str], tags: dict[str, str]) -> Reader:
        return Reader(lines, tags, self.resolvers, self.scalars, self.entries, self.numbers)


_MEMOS: dict[int, Memos] = {}  # id(resolvers) → their memos

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
def checked_text(data: bytes) -> str:
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


def memos_for(resolvers: Resolvers | None) -> Memos:
    if resolvers is None:
        resolvers = DEFAULT_RESOLVERS
    memos = _MEMOS.get(id(resolvers))
    if memos is None or memos.resolvers is not resolvers:
        if len(_MEMOS) >= 8:
            _MEMOS.clear()
        numbers = table(resolvers) == table(DEFAULT_RESOLVERS)
        memos = _MEMOS[id(resolvers)] = Memos(resolvers, {}, {}, numbers, {})
    return memos


def read_lines(text: str, tags: dict[str, str], memos: Memos) -> Any:
    """The value of the checked ``text`` read line by line, or :class:`NotCanonical`."""
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


class Reader:
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
        tag = self.tags.get(text) or plain_tag(text, self.resolvers, self.tags)
        if tag == STR_TAG:
            return text
        if tag == NULL_TAG:
            return None
        if tag == BOOL_TAG:
            return text.lower() in TRUE_WORDS
        if tag == INT_TAG:
            digits = text.lstrip("-+")
            if digits.isdigit() and (digits == "0" or digits[0] != "0"):
                return int(text)
            raise NotCanonical("a rarer form of integer")
        if tag == FLOAT_TAG:
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


def plain_tag(text: str, resolvers: Resolvers, tags: dict[str, str]) -> str:
    """The tag the implicit ``resolvers`` give the plain scalar ``text``, remembered in ``tags``."""
    tag = tags.get(text)
    if tag is None:
        tag = STR_TAG
        for candidate, regexp in resolvers.get(text[:1], ()):
            if regexp.match(text):
                tag = candidate
                break
        if len(tags) < _MEMO_LIMIT:
            tags[text] = tag
    return tag


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


def table(resolvers: Resolvers) -> dict[Any, list[tuple[str, str]]]:
    return {first: [(tag, rx.pattern) for tag, rx in pairs] for first, pairs in resolvers.items()}
