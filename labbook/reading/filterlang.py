"""The filter language: MLflow's search grammar, plus OR, NOT and parentheses.

    metrics.mse < 3000 and params.solver = 'cholesky'
    (tags.stage = 'baseline' OR metrics.`val loss` <= 0.2) AND NOT status = 'FAILED'
    attributes.run_name LIKE 'ridge-%' AND params.alpha IN (0.1, 1, 10)
    metrics.r2 IS NOT NULL

A tokenizer and a recursive-descent parser turn the text into a small tree of
:class:`Comparison`, :class:`Not` and :class:`BoolOp` nodes; ``query`` turns
that tree into pandas operations. Nothing here ever evaluates user text.

Grammar (keywords are case-insensitive)::

    expr       := and_expr ( OR and_expr )*
    and_expr   := not_expr ( AND not_expr )*
    not_expr   := NOT not_expr | '(' expr ')' | comparison
    comparison := identifier ( op literal
                             | [NOT] (LIKE | ILIKE) string
                             | [NOT] IN '(' literal ( ',' literal )* ')'
                             | IS [NOT] NULL )
    identifier := prefix '.' key | attribute
    op         := = | == | != | <> | < | <= | > | >=
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import FilterSyntaxError

PREFIXES = {
    "metrics": "metrics", "metric": "metrics",
    "params": "params", "param": "params", "parameters": "params", "parameter": "params",
    "tags": "tags", "tag": "tags",
    "attributes": "attributes", "attribute": "attributes", "attr": "attributes", "run": "attributes",
}
ATTRIBUTES = {
    "run_id": "run_id", "id": "run_id",
    "run_name": "run_name", "run name": "run_name", "name": "run_name",
    "status": "status", "experiment": "experiment", "user": "user",
    "start_time": "start_time", "created": "start_time", "end_time": "end_time",
    "duration": "duration", "parent_run_id": "parent_run_id", "parent": "parent_run_id",
    "code_commit": "code_commit", "commit": "code_commit", "code_dirty": "code_dirty",
    "user_id": "user", "artifact_uri": "artifact_uri",
    "hypothesis": "hypothesis", "verdict": "verdict",
}
MAX_DEPTH = 100  # parentheses and NOTs one inside another; deeper is a FilterSyntaxError
KEYWORDS = {"and", "or", "not", "like", "ilike", "in", "is", "null", "asc", "desc"}

_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<number>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?(?![\w.]))
  | (?P<string>'(?:[^']|'')*'|"(?:[^"]|"")*")
  | (?P<qprefix>`(?i:metrics?|params?|parameters?|tags?|attributes?|attr|run)`\.)
  | (?P<backtick>`(?:[^`]|``)*`)
  | (?P<op>==|!=|<>|<=|>=|=|<|>)
  | (?P<punct>[(),])
  | (?P<name>[A-Za-z_][\w.\-/:]*)
""", re.VERBOSE)


@dataclass(frozen=True)
class Token:
    """One token: its kind, its value and the column (0-based) where it starts."""

    kind: str
    value: str
    pos: int


@dataclass(frozen=True)
class Column:
    """A column of the runs table: ``metrics.mse``, ``params.alpha``, or an attribute."""

    kind: str  # metrics | params | tags | attributes
    key: str

    @property
    def name(self) -> str:
        """The DataFrame column name."""
        return self.key if self.kind == "attributes" else f"{self.kind}.{self.key}"


@dataclass(frozen=True)
class Comparison:
    """``column op value``; op is one of = != < <= > >= like ilike in null."""

    column: Column
    op: str
    value: object = None
    negated: bool = False


@dataclass(frozen=True)
class Not:
    operand: object


@dataclass(frozen=True)
class BoolOp:
    op: str  # "and" | "or"
    operands: tuple[object, ...]


def tokenize(text: str) -> list[Token]:
    """Split a filter into tokens; an unknown character is a syntax error at its column."""
    tokens = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise _error(text, pos, f"unexpected character {text[pos]!r}")
        kind = match.lastgroup or ""
        value = match.group()
        if kind == "string":
            value = value[1:-1].replace(value[0] * 2, value[0])
        elif kind == "backtick":
            value = value[1:-1].replace("``", "`")
        elif kind == "qprefix":  # `metrics`.mse: a quoted prefix, as MLflow allows
            kind, value = "name", value[1:-2] + "."
        elif kind == "name" and value.lower() in KEYWORDS:
            kind, value = "keyword", value.lower()
        if kind != "space":
            tokens.append(Token(kind, value, match.start()))
        pos = match.end()
    tokens.append(Token("end", "", len(text)))
    return tokens


def parse(text: str) -> object | None:
    """Parse a filter into a tree; an empty filter is None (every run matches)."""
    if text is None or not text.strip():
        return None
    parser = _Parser(text)
    tree = parser.expr()
    parser.expect_end()
    return tree


def parse_order_by(text: str) -> tuple[Column, bool]:
    """Parse one order_by item, ``metrics.mse DESC`` → (column, ascending)."""
    parser = _Parser(text)
    column = parser.identifier()
    ascending = True
    if parser.peek().kind == "keyword" and parser.peek().value in ("asc", "desc"):
        ascending = parser.take().value == "asc"
    parser.expect_end()
    return column, ascending


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.tokens = tokenize(text)
        self.index = 0
        self.depth = 0

    def peek(self) -> Token:
        return self.tokens[self.index]

    def take(self) -> Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def at_keyword(self, *words: str) -> bool:
        token = self.peek()
        return token.kind == "keyword" and token.value in words

    def fail(self, expected: str) -> FilterSyntaxError:
        token = self.peek()
        found = "the end of the filter" if token.kind == "end" else repr(token.value)
        return _error(self.text, token.pos, f"expected {expected}, found {found}")

    def expect_end(self) -> None:
        if self.peek().kind != "end":
            raise self.fail("AND, OR or the end of the filter")

    def expr(self) -> object:
        operands = [self.and_expr()]
        while self.at_keyword("or"):
            self.take()
            operands.append(self.and_expr())
        return operands[0] if len(operands) == 1 else BoolOp("or", tuple(operands))

    def and_expr(self) -> object:
        operands = [self.not_expr()]
        while self.at_keyword("and"):
            self.take()
            operands.append(self.not_expr())
        return operands[0] if len(operands) == 1 else BoolOp("and", tuple(operands))

    def not_expr(self) -> object:
        if self.at_keyword("not"):
            self.enter()
            self.take()
            negated = Not(self.not_expr())
            self.depth -= 1
            return negated
        if self.peek().kind == "punct" and self.peek().value == "(":
            self.enter()
            self.take()
            inner = self.expr()
            if self.peek().value != ")" or self.peek().kind != "punct":
                raise self.fail("')'")
            self.take()
            self.depth -= 1
            return inner
        return self.comparison()

    def enter(self) -> None:
        """One level deeper into parentheses or NOTs, refused past MAX_DEPTH (never a
        RecursionError)."""
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise _error(self.text, self.peek().pos, f"the filter nests parentheses and NOTs "
                         f"more than {MAX_DEPTH} deep; allowed: up to {MAX_DEPTH}")

    def identifier(self) -> Column:
        token = self.peek()
        if token.kind == "backtick":
            self.take()
            return self._attribute(token.value, token)
        if token.kind != "name":
            raise self.fail("a column such as metrics.mse, params.alpha, tags.stage or status")
        self.take()
        prefix, dot, key = token.value.partition(".")
        kind = PREFIXES.get(prefix.lower()) if dot else None
        if kind is None:
            return self._attribute(token.value, token)
        if not key:  # metrics.`val loss`, metrics."val loss" or `metrics`.mse
            quoted = self.peek()
            if quoted.kind not in ("backtick", "string") and not (
                    quoted.kind == "name" and quoted.pos == token.pos + len(token.value) + 2):
                raise self.fail(f"a key after '{prefix}.'")
            self.take()
            key = quoted.value
        if kind == "attributes":
            return self._attribute(key, token)
        return Column(kind, key)

    def _attribute(self, name: str, token: Token) -> Column:
        attribute = ATTRIBUTES.get(name.lower())
        if attribute is None:
            known = ", ".join(sorted(set(ATTRIBUTES.values())))
            raise _error(self.text, token.pos, f"unknown attribute {name!r}; use metrics.<key>, "
                                               f"params.<key>, tags.<key> or one of: {known}")
        return Column("attributes", attribute)

    def literal(self) -> object:
        token = self.peek()
        if token.kind == "number":
            self.take()
            number = float(token.value)
            return int(number) if number.is_integer() and re.fullmatch(r"[-+]?\d+", token.value) \
                else number
        if token.kind == "string":
            self.take()
            return token.value
        if token.kind == "name" and token.value.lower() in ("true", "false"):
            self.take()
            return token.value.lower() == "true"
        raise self.fail("a number, a quoted string, true or false")

    def comparison(self) -> Comparison:
        column = self.identifier()
        token = self.peek()
        if token.kind == "op":
            self.take()
            op = {"==": "=", "<>": "!="}.get(token.value, token.value)
            return Comparison(column, op, self.literal())
        negated = False
        if self.at_keyword("not"):
            self.take()
            negated = True
            if not self.at_keyword("like", "ilike", "in"):
                raise self.fail("LIKE, ILIKE or IN after NOT")
        if self.at_keyword("like", "ilike"):
            op = self.take().value
            if self.peek().kind != "string":
                raise self.fail("a quoted pattern")
            return Comparison(column, op, self.take().value, negated)
        if self.at_keyword("in"):
            self.take()
            if not (self.peek().kind == "punct" and self.peek().value == "("):
                raise self.fail("'(' to open the IN list")
            self.take()
            values = [self.literal()]
            while self.peek().kind == "punct" and self.peek().value == ",":
                self.take()
                values.append(self.literal())
            if not (self.peek().kind == "punct" and self.peek().value == ")"):
                raise self.fail("',' or ')' in the IN list")
            self.take()
            return Comparison(column, "in", tuple(values), negated)
        if self.at_keyword("is"):
            self.take()
            if self.at_keyword("not"):
                self.take()
                negated = True
            if not self.at_keyword("null"):
                raise self.fail("NULL")
            self.take()
            return Comparison(column, "null", None, negated)
        raise self.fail("a comparison (=, !=, <, <=, >, >=, LIKE, ILIKE, IN, IS NULL)")


def _error(text: str, pos: int, message: str) -> FilterSyntaxError:
    start = max(0, pos - 60) if len(text) > 120 else 0  # a long filter: the part around pos
    shown = text[start:start + 120]
    return FilterSyntaxError(f"filter syntax error at column {pos + 1}: {message}\n"
                             f"  {shown}\n  {' ' * (pos - start)}^", column=pos + 1)
