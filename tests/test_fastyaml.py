"""The fast reader of what yamlio.dump writes: the same values as libyaml, or a fall back to it."""

from __future__ import annotations

import contextlib
import math
import subprocess
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from yamldocs import same, with_other_scalars

import labbook
from labbook.errors import FormatError
from labbook.format import fastyaml, yamlio, yamlreader

TRICKY = ["no", "No", "on", "off", "yes", "y", "n", "true", "False", "null", "Null", "~", "", " ", "  x",
          "x ", "1e3", "1.5e3", "0755", "010", "0o17", "0x1F", "0b101", "1_000", "1:20", "1:20.5", "+1", "-0",
          ".5", "1.", "NaN", ".nan", ".inf", "-.inf", "2024-01-01", "2024-01-01T10:00:00Z", "=", "<<",
          "- a", "-a", "-", "?", "? a", "?a", ":a", "a:", "a: b", "a:b", "a:: b", "# x", "a #b", "a#b",
          "'quoted'", '"dq"', "it's", "\u2028", "a\u2029b", "\x85", "\ufeff", "tab\there", "cr\rlf",
          "line\nbreak", "trailing \n", "\n\nlead", "x\n", "x\n\n", "\n", " \n", "\n ", " x\ny", "x\n\n\ny",
          "ünïcödé ✓", "😀", "&anchor", "*alias", "!tag", "|", "|-", ">", "%x", "@x", "`x", "[x]", "{x}",
          "{}", "[]", "a, b", "---", "...", "--- x", "\\", "\\n", '"', "'", "''", "\x00", "\x7f", "\t",
          "\x1b", "\xa0", "x" * 200]
LINE_BREAKS = ("\n", "\r", "\x85", "\u2028", "\u2029")

texts = st.one_of(st.sampled_from(TRICKY), st.text(st.characters(blacklist_categories=("Cs",))))
# Keys with line breaks or of more than 128 bytes are written as "? key", which the fast reader
# leaves to libyaml: keep them rare enough that most documents take the fast path.
keys = st.one_of(
    st.sampled_from([t for t in TRICKY if len(t) < 100 and not any(b in t for b in LINE_BREAKS)]),
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters=LINE_BREAKS), max_size=30),
    st.sampled_from(TRICKY))
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), texts)
values = st.recursive(
    scalars, lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=5)),
    max_leaves=12)
documents = st.one_of(st.dictionaries(keys, values, max_size=6), st.lists(values, max_size=4), values)


def _never(data: bytes, *args: object) -> Any:
    raise fastyaml.NotCanonical


def slow_load(data: bytes) -> Any:
    """yamlio.load with the fast path switched off: libyaml alone."""
    parse, fastyaml.parse = fastyaml.parse, _never
    try:
        return yamlio.load(data, "t.yaml")
    finally:
        fastyaml.parse = parse


def may_need_slow_path(value: Any) -> bool:
    """What dump writes in a form the fast reader leaves to libyaml.

    Raw line and paragraph separators (in single-quoted or literal scalars), and keys
    libyaml writes as complex keys ("? key"): longer than 128 bytes or with a line break.
    """
    if isinstance(value, str):
        return "\u2028" in value or "\u2029" in value
    if isinstance(value, list):
        return any(map(may_need_slow_path, value))
    if isinstance(value, dict):
        return any(may_need_slow_path(k) or may_need_slow_path(v) or len(k.encode()) > 128
                   or any(b in k for b in LINE_BREAKS) for k, v in value.items())
    return False


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents)
def test_fast_reader_returns_what_libyaml_returns(value):
    data = yamlio.dump(value)
    slow = slow_load(data)
    assert same(slow, value) or (isinstance(value, float) and math.isnan(value))
    for _ in range(3):  # line by line, then by its shape (compiled the second time it is seen)
        try:
            fast = fastyaml.parse(data)
        except fastyaml.NotCanonical:
            assert may_need_slow_path(value), data
        else:
            assert same(fast, slow), data
    assert same(yamlio.load(data, "t.yaml"), slow)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents, st.lists(scalars, min_size=1, max_size=8))
def test_documents_with_the_same_keys_read_the_same_by_their_shape(value, others):
    """Records of one experiment share their keys and lines; only values differ."""
    first, second = yamlio.dump(value), yamlio.dump(with_other_scalars(value, others))
    for data in (first, second, first, second):
        try:
            fast = fastyaml.parse(data)
        except fastyaml.NotCanonical:
            continue
        assert same(fast, slow_load(data)), data


EDITS = [" ", "  ", "#", " #", "&a ", "*a", "!", "!!str ", ":", ": ", "- ", "-", "? ", "'", '"', "|", "|-",
         "|+", "|2", ">", "{", "}", "[", "]", ",", "\\", "\\x4", "\n", "\n ", "\n  ", "\n- ", "...", "---",
         "%", "@", "~", "1", "0x", ".", "\t", "\r", "\u2028", "\x85", "\ufeff", "''", "e3", "_", "<<", "=",
         None]  # None: delete a character
edits = st.lists(st.tuples(st.integers(min_value=0), st.sampled_from(EDITS)), min_size=1, max_size=3)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents, edits)
def test_edited_documents_read_the_same_or_fall_back(value, changes):
    """Bytes edited by hand: whatever the fast reader accepts, libyaml reads the same."""
    text = yamlio.dump(value).decode()
    for position, edit in changes:
        at = position % (len(text) + 1)
        text = text[:at] + text[at + 1:] if edit is None else text[:at] + edit + text[at:]
    data = text.encode()
    for _ in range(3):
        try:
            fast = fastyaml.parse(data)
        except fastyaml.NotCanonical:
            return
        assert same(fast, slow_load(data)), data


@pytest.mark.parametrize("text", TRICKY)
def test_tricky_strings_as_keys_and_values_read_fast(text):
    value = {text: [text, {text: text}], "k": {"n": text}}
    data = yamlio.dump(value)
    assert same(slow_load(data), value)
    assert same(yamlio.load(data, "t.yaml"), value)
    if may_need_slow_path(value):
        with pytest.raises(fastyaml.NotCanonical):
            fastyaml.parse(data)
    else:
        assert same(fastyaml.parse(data), value)


@pytest.mark.parametrize("number", [0, -1, 10**30, -(10**30), 0.0, -0.0, 1.5, 1e17, 1e-300, 5e-324, 1e300,
                                    float("inf"), float("-inf"), float("nan"), True, False, None])
def test_numbers_and_constants_read_fast(number):
    data = yamlio.dump({"v": number, "l": [number]})
    assert same(fastyaml.parse(data), slow_load(data))


CANONICAL_BY_HAND = [
    b"- |-\n  line\n  break\n",
    b"a:\n- |-\n  x\n  y\n- |\n  z\n- - |+\n    w\n\n  - k: |2-\n       v\n      u\nb: 1\n",
    b"a: |+\n  x\n\n\nb: 1\n",
    b"a: |-\n  x\n\n\nb: 1\n",
    b"a: |\n  x\n\n\nb: 1\n",
    b"- |2\n\n   x\n",
    b"a: |1\n  x\n",
    b"a: |2\n  x\n   \n  y\n",
    b"a: |\n  x\n  \n",
    b"a: 1\n...\n",
    b"k: |+\n  x\n\n...\n",
    b'a: "\\x41\\u00e9\\U0001F600\\t\\ \\/\\N\\_\\L\\P\\0\\a\\b\\e\\f\\r\\v\\\\\\""\n',
    b"a: ''\n",
    b"a: 0o17\nb: 1.5e3\nc: +1\nd: -0\ne: .5\nf: .NaN\ng: +.inf\nh: 0.\n",
    b"a :b\n",
    b"- - - a\n    - b\n  - c\n- d: e\n  f:\n  - g\n  h:\n    i: j\n",
    b"'a': 1\n\"b\\tc\": 2\n'd''e':\n- {}\n",
    "é: ü\nlist:\n- 😀\n".encode(),
]


@pytest.mark.parametrize("data", CANONICAL_BY_HAND)
def test_hand_written_documents_of_the_subset_read_fast(data):
    for _ in range(3):
        assert same(fastyaml.parse(data), slow_load(data))


DEEP_MAP = b"a:\n" + b"".join(b"  " * k + b"b:\n" for k in range(1, 120)) + b"  " * 120 + b"c: 1\n"
BAD = FormatError
OUTSIDE_THE_SUBSET = [
    (b"a: &x 1\nb: *x\n", BAD),
    (b"a: &x 1\n", {"a": 1}),
    (b"a: 1 # c\n", {"a": 1}),
    (b"# c\na: 1\n", {"a": 1}),
    (b"a: 1\n# c\n", {"a": 1}),
    (b"a: {b: 1, c: [1, 2]}\n", {"a": {"b": 1, "c": [1, 2]}}),
    (b"[1, 2]\n", [1, 2]),
    (b"{a: 1}\n", {"a": 1}),
    (b"a: [x]\n", {"a": ["x"]}),
    (b"a: { }\n", {"a": {}}),
    (b"a: >\n  x\n  y\n", {"a": "x y\n"}),
    (b"a: >-\n  x\n", {"a": "x"}),
    (b"---\na: 1\n", {"a": 1}),
    (b"a: 1\n---\nb: 2\n", BAD),
    (b"--- a: 1\n", BAD),
    (b"a: 1\n...\nb: 2\n", BAD),
    (b"a: !!str 1\n", {"a": "1"}),
    (b"a: !foo 1\n", BAD),
    (b"!!map\na: 1\n", {"a": 1}),
    (b"a: x\n  y\n", {"a": "x y"}),
    (b"a: 'x\n  y'\n", {"a": "x y"}),
    (b'a: "x\\\n  y"\n', {"a": "xy"}),
    (b"a:\n\tb: 1\n", BAD),
    (b"a:\n   b: 1\n", {"a": {"b": 1}}),
    (b"a:\n  - 1\n", {"a": [1]}),
    (b"? a\n: 1\n", {"a": 1}),
    (b"a: 1\na: 2\n", BAD),
    (b"1: a\ntrue: b\n", BAD),
    (b"a:\n  b: 1\n  b: 2\n", BAD),
    (b"- a: 1\n  a: 1\n", BAD),
    (b"a: 0x1F\n", {"a": 31}),
    (b"a: 1_000\n", {"a": 1000}),
    (b"a: 1:30\n", {"a": 90}),
    (b"a: 010\n", {"a": 8}),
    (b'a: "\\q"\n', BAD),
    (b'a: "\\ud800"\n', BAD),
    (b"", None),
    (b"\n", None),
    (b"a: 1", {"a": 1}),
    (b"a:\n", {"a": None}),
    (b"\xef\xbb\xbfa: 1\n", {"a": 1}),
    (b"a: 1\r\nb: 2\r\n", {"a": 1, "b": 2}),
    ("a: x\u2028y\n".encode(), BAD),
    (b"a: \x01\n", BAD),
    (b"a: \xff\n", BAD),
    (b"a: b: c\n", BAD),
    (b"a:  b\n", {"a": "b"}),
    (b"a: b \n", {"a": "b"}),
    (b"a : b\n", {"a": "b"}),
    (b"- a\nb: 1\n", BAD),
    (b"a: |\n   x\n", {"a": "x\n"}),
    (b"a: |\n x\n", {"a": "x\n"}),
    (b"a: |\n  x\n y\n", BAD),
    (b"a: |2-\n  x\n \n  y\n", {"a": "x\n\ny"}),
    (b"a: |0\n  x\n", BAD),
    (b"a: 1\n\nb: 2\n", {"a": 1, "b": 2}),
    (b" a: 1\n", {"a": 1}),
    (b"a: %x\n", BAD),
    (b"a: -\n", BAD),
    (b"- - a\n -b\n", BAD),
    (b"a: 'x' y\n", BAD),
    (b"'a'b: 1\n", BAD),
    (b"[" * 150 + b"]" * 150 + b"\n", BAD),
    (DEEP_MAP, BAD),
    (b"a" * 1100 + b": 1\n", BAD),
    (b"'" + b"a" * 1100 + b"': 1\n", BAD),
    (b"- " + b"a" * 1100 + b": 1\n", BAD),
]


@pytest.mark.parametrize(("data", "expected"), OUTSIDE_THE_SUBSET)
def test_anything_else_falls_back_to_libyaml(data, expected):
    for _ in range(3):
        with pytest.raises(fastyaml.NotCanonical):
            fastyaml.parse(data)
    if expected is BAD:
        with pytest.raises(FormatError):
            yamlio.load(data, "t.yaml")
    else:
        assert same(yamlio.load(data, "t.yaml"), expected)


def test_dates_read_as_text_on_both_paths():
    """YAML 1.1 would make a date of an unquoted 2024-01-01; no record holds a date."""
    for data in (b"a: 2024-01-01\n", b"a: 2024-01-01 10:00:00\n"):
        for _ in range(2):
            assert yamlio.load(data, "t.yaml") == {"a": data[3:-1].decode()}
    assert fastyaml.parse(b"a: 2024-01-01\n") == {"a": "2024-01-01"}


def test_load_takes_the_fast_path_for_what_dump_writes():
    data = yamlio.dump({"a": [1, {"b": "two\nlines"}], "c": None})
    with mock.patch.object(yamlio, "_build", side_effect=AssertionError("slow path taken")):
        assert yamlio.load(data, "t.yaml") == {"a": [1, {"b": "two\nlines"}], "c": None}


def test_both_paths_resolve_plain_scalars_with_the_same_table():
    theirs = yamlio._Loader.yaml_implicit_resolvers
    assert yamlreader.table(yamlreader.DEFAULT_RESOLVERS) == yamlreader.table(theirs)


def test_a_real_run_record_reads_through_the_fast_path(repo: Path):
    with labbook.start_run(name="real run", hypothesis="no", tags={"team": "on", "x": "1e3"}):
        labbook.log_params({"lr": 0.001, "layers": [64, 64], "opt": {"name": "adam", "eps": 1e-8},
                            "flag": True, "none": None, "text": "two\nlines\n", "zip": "0755"})
        for step in range(3):
            labbook.log_metric("loss", 1.0 / (step + 1), step=step)
        labbook.log_metric("nan_metric", float("nan"))
        labbook.note("a note\nover two lines")
    names = subprocess.run(["git", "-C", str(repo), "ls-tree", "-r", "--name-only", "experiments"],
                           capture_output=True, text=True, check=True).stdout.split()
    yamls = [n for n in names if n.endswith(".yaml")]
    assert any(n.endswith("/run.yaml") for n in yamls)
    for name in yamls:
        data = subprocess.run(["git", "-C", str(repo), "show", f"experiments:{name}"],
                              capture_output=True, check=True).stdout
        assert same(fastyaml.parse(data), slow_load(data)), name  # NotCanonical fails the test


def test_records_of_one_skeleton_are_read_by_their_shape():
    """The second record with the same keys on the same lines is not read line by line."""
    def record(i: int) -> dict[str, Any]:
        return {"id": f"run-{i}", "params": {"lr": i / 7, "opt": "adam", "n": i}, "tags": {},
                "metrics": {"loss": {"last": i * 0.5, "step": i}}, "ok": i % 2 == 0,
                "command": ["python", "train.py", "--lr", str(i / 7), i, {} if i % 2 else []],
                "notes": [{"text": f"run {i}: lr {i / 7}", "at": i}, {"text": f"over\n{i} lines\n"}],
                "hypothesis": f"two\nlines {i}" if i % 2 else f" led by a space\n{i}"}

    fastyaml.parse(yamlio.dump(record(0)))
    fastyaml.parse(yamlio.dump(record(1)))  # the skeleton seen again: its shape is compiled
    with mock.patch.object(yamlreader.Reader, "mapping", side_effect=AssertionError("read line by line")):
        for i in range(2, 5):
            assert same(fastyaml.parse(yamlio.dump(record(i))), record(i))


@pytest.mark.parametrize("other", [b"a: |\n  x\n", b"a: x # c\n", b"a: &x 1\n", b"a: 'x\n", b"a: {b: 1}\n",
                                   b"a: 1_000\n", b"a: 2024-01-01\n", b"a: \n", b"a: b: c\n", b"a: [x]\n"])
def test_a_value_not_a_scalar_of_the_subset_in_a_known_skeleton_is_read_line_by_line(other):
    for _ in range(2):
        assert fastyaml.parse(b"a: 1\n") == {"a": 1}  # the skeleton "a:" has a shape now
    try:
        slow = slow_load(other)
    except FormatError:
        slow = FormatError
    with contextlib.suppress(fastyaml.NotCanonical):
        assert same(fastyaml.parse(other), slow)
    if slow is FormatError:
        with pytest.raises(FormatError):
            yamlio.load(other, "t.yaml")
    else:
        assert same(yamlio.load(other, "t.yaml"), slow)
