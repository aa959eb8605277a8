"""The on-branch format: exact YAML round-trips, stable bytes, lenient reading."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labbook.errors import FormatError
from labbook.format import record, yamlio
from labbook.format.record import Conclusion, MetricSummary, Note, RunRecord

TRICKY = ["no", "on", "off", "yes", "y", "n", "1e3", "0755", "0o17", "0x1F", "2024-01-01",
          "2024-01-01T10:00:00Z", "", " ", "=", "<<", "~", "null", "NaN", ".inf", "1:20",
          "- a", "# not a comment", "a: b", "'quoted'", '"dq"', "\u2028", "\x85", "tab\there",
          "line\nbreak", "trailing \n", "\n\nlead", "ünïcödé ✓", "&anchor", "*alias", "!tag"]

keys = st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=30)
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False), st.text(st.characters(blacklist_categories=("Cs",))),
    st.sampled_from(TRICKY))
texts = st.one_of(st.text(st.characters(blacklist_categories=("Cs",))), st.sampled_from(TRICKY))


def _record(params, tags, notes, hypothesis) -> RunRecord:
    return RunRecord(
        id="ab" * 16, name="r", experiment="e", start_time="2026-01-01T00:00:00.000Z",
        params=params, tags=tags, hypothesis=hypothesis,
        notes=[Note(time="2026-01-01T00:00:00.000Z", author="a", text=t) for t in notes],
        metrics={"loss": MetricSummary.first(0.5, 0, 1)})


@settings(max_examples=300, deadline=None)
@given(params=st.dictionaries(keys, st.one_of(scalars, st.lists(scalars, max_size=3))),
       tags=st.dictionaries(keys, texts), notes=st.lists(texts, max_size=3),
       hypothesis=st.one_of(st.none(), texts))
def test_any_record_round_trips_exactly_and_stably(params, tags, notes, hypothesis):
    rec = _record(params, tags, notes, hypothesis)
    data = record.run_to_yaml(rec)
    back = record.run_from_yaml(data, "run.yaml")
    assert back == rec
    for key, value in params.items():
        assert type(back.params[key]) is type(value)
    assert record.run_to_yaml(back) == data


@pytest.mark.parametrize("text", TRICKY)
def test_tricky_strings_stay_strings(text):
    assert yamlio.load(yamlio.dump({"v": text}), "t.yaml") == {"v": text}


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf"), -0.0, 1e300, 5e-324])
def test_special_floats_come_back_as_floats(value):
    back = yamlio.load(yamlio.dump({"v": value}), "t.yaml")["v"]
    assert isinstance(back, float)
    assert (math.isnan(back) and math.isnan(value)) or back == value


def test_numbers_like_1e3_are_quoted_for_yaml_1_2_readers():
    assert yamlio.dump({"v": "1e3"}) == b"v: '1e3'\n"


def test_unknown_keys_are_kept_and_written_back():
    rec = _record({"a": 1}, {}, [], None)
    data = record.run_to_yaml(rec).replace(b"hypothesis: null\n",
                                           b"hypothesis: null\nfuture_field:\n  x: 1\n")
    back = record.run_from_yaml(data, "run.yaml")
    assert back.extra == {"future_field": {"x": 1}}
    assert b"future_field:\n  x: 1\n" in record.run_to_yaml(back)


@pytest.mark.parametrize("bad, reason", [
    (b"id: a\nid: b\n", "duplicate key"),
    (b"a: &x [1]\nb: *x\n", "aliases"),
    (b"format: 99\nid: a\nname: b\nexperiment: c\n", "newer than this labbook reads"),
    (b"id: [unclosed\n", "run.yaml"),
    (b"- just a list\n", "should be a mapping"),
])
def test_bad_files_raise_a_format_error_naming_the_path(bad, reason):
    with pytest.raises(FormatError, match=reason) as caught:
        record.run_from_yaml(bad, "runs/ab/abc/run.yaml")
    assert caught.value.path == "runs/ab/abc/run.yaml"


def test_history_tsv_round_trips_special_values():
    rows = [("loss", 0, 1, 0.5), ("loss", 1, 2, float("inf")), ("val loss", -3, 3, -0.0)]
    back = record.history_from_tsv(record.history_to_tsv(rows), "metrics.tsv")
    assert back == rows


def test_conclusion_round_trips():
    rec = _record({}, {}, [], "h")
    rec.conclusion = Conclusion(verdict="supported", text="yes\nindeed", time="t")
    assert record.run_from_yaml(record.run_to_yaml(rec), "r").conclusion == rec.conclusion
