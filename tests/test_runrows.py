"""Rows of the runs table straight from a record's values give what the full read gives."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from yamldocs import same, with_other_scalars

from labbook.errors import FormatError
from labbook.format import record, yamlio
from labbook.format.record import MetricSummary, RunRecord
from labbook.reading import rows

RID = "ab" * 16
PATH = f"runs/ab/{RID}/run.yaml"


def full_read(data: bytes) -> tuple[list[str], list[Any]] | str:
    """The row as the full read makes it, or the reason the record is skipped."""
    try:
        row = rows.record_row(record.run_plain_from_yaml(data, PATH))
    except FormatError as exc:
        return exc.reason
    return list(row), list(row.values())


def fast_read(data: bytes) -> tuple[list[str], list[Any]] | str:
    try:
        names, cells = rows.row_of_yaml(data, PATH)
    except FormatError as exc:
        return exc.reason
    return list(names), list(cells)


scalars = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.floats(), st.text(max_size=8),
                    st.sampled_from(["FINISHED", "RUNNING", "BOGUS", "", "1", "null", "{}"]))
keys = st.one_of(st.text(min_size=1, max_size=6), st.integers(0, 3), st.sampled_from(["1", "lr", "a b"]))
cells = st.one_of(scalars, st.lists(scalars, max_size=2), st.dictionaries(keys, scalars, max_size=2))
fields = st.sampled_from(["format", "id", "name", "experiment", "status", "params", "tags", "metrics",
                          "code", "conclusion", "deleted", "hypothesis", "parent", "extra"])


def a_record(params: dict, metrics: dict, tags: dict) -> dict[str, Any]:
    rec = RunRecord(id=RID, name="r", experiment="e", status="FINISHED",
                    start_time="2026-01-01T00:00:00.000Z", params=params, tags=tags,
                    metrics={k: MetricSummary.first(v, 0, 1) for k, v in metrics.items()})
    return yamlio.load(record.run_to_yaml(rec), "t")


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(keys, cells, max_size=3), st.dictionaries(keys, st.floats(), max_size=3),
       st.dictionaries(keys, scalars, max_size=2),
       st.lists(st.tuples(fields, cells), max_size=3), st.lists(scalars, min_size=1, max_size=6))
@example({}, {}, {}, [("deleted", [None])], [None])  # a list as a cell, made a bool
@example({}, {}, {}, [("metrics", {"0": None})], [None])  # a summary that is one value
@example({"layers": [64, 64], "opt": {"name": "adam"}}, {"loss": 0.5}, {}, [], [1, "x"])
def test_rows_by_plan_are_the_rows_of_the_full_read(params, metrics, tags, changes, others):
    """Records of one shape, some broken by hand: the same row, or the same reason to skip."""
    plain = a_record(params, metrics, tags)
    for field, value in changes:
        plain[field] = value
    first = yamlio.dump(plain)
    second = yamlio.dump(with_other_scalars(plain, others))  # the same keys, other values
    for data in (first, second, first, second):  # the shape is known from the second read on
        assert same(fast_read(data), full_read(data)), data


def test_a_record_without_a_status_is_running():
    """The status RunRecord defaults to (the full read used to fail with a KeyError)."""
    plain = a_record({"lr": 0.1}, {"m": 1.0}, {})
    del plain["status"]
    data = yamlio.dump(plain)
    for _ in range(3):
        names, cells = fast_read(data)
        assert dict(zip(names, cells, strict=True))["status"] == "RUNNING"
    assert fast_read(data) == full_read(data)


def test_a_key_that_is_not_text_is_skipped_by_both_paths():
    """Keys 1 and "1" would make one column twice: a record with a key that is not text
    is skipped, with the same reason on both paths."""
    plain = a_record({1: "int key", "1": "text key"}, {}, {})
    data = yamlio.dump(plain)
    for _ in range(3):
        assert fast_read(data) == full_read(data)
        assert "not text" in fast_read(data)


@pytest.mark.parametrize(("field", "value"), [
    ("params", {"day": "2024-01-01"}), ("params", {"seed": 2**70}), ("tags", {"ok": True}),
    ("id", "../../x"), ("id", "cd" * 16), ("parent", "../x"), ("experiment", "../e"),
    ("artifacts", [{"path": "../x", "size": 1, "sha256": "0" * 64, "location": "branch"}]),
    ("metrics", {"m": {"last": 1.0, "min": 1.0, "max": 1.0, "step": 2**64, "timestamp": 1, "count": 1}}),
    ("start_time", "yesterday"), ("deleted", "yes"), ("notes", [{"time": "t"}])])
def test_both_paths_agree_on_the_rules_for_records_of_one_shape(field, value):
    good = a_record({"lr": 0.1}, {"m": 1.0}, {})
    for _ in range(2):
        assert fast_read(yamlio.dump(good)) == full_read(yamlio.dump(good))
    data = yamlio.dump({**good, field: value})
    for _ in range(3):
        assert same(fast_read(data), full_read(data)), data


@pytest.mark.parametrize(("field", "value"), [("status", "BOGUS"), ("id", 5), ("format", 99),
                                              ("params", "text"), ("metrics", {"m": 1.0})])
def test_a_broken_value_in_a_known_shape_is_skipped_with_the_full_reason(field, value):
    good = a_record({"lr": 0.1}, {"m": 1.0}, {})
    broken = {**good, field: value}
    for _ in range(2):
        yamlio.load(yamlio.dump(good), "t")
        assert fast_read(yamlio.dump(good)) == full_read(yamlio.dump(good))
    reason = fast_read(yamlio.dump(broken))
    assert isinstance(reason, str) and reason == full_read(yamlio.dump(broken))


def test_real_records_read_by_plan_as_in_full(repo):
    """Runs as a script logs them (nested params, a multi-line note, a child, artifacts, a
    conclusion), read three times each: the rows by plan are the rows of the full read."""
    import subprocess

    import labbook

    for lr in (0.1, 0.01, 0.001):
        with labbook.start_run(name=f"lr {lr}", hypothesis="smaller is better", tags={"team": "on"}):
            labbook.log_params({"lr": lr, "layers": [64, 64], "opt": {"name": "adam"}, "flag": True})
            for step in range(3):
                labbook.log_metric("loss", lr / (step + 1), step=step)
            labbook.note(f"lr {lr}: fine" if lr > 0.01 else "two\nlines")
            (repo / "out.txt").write_text(str(lr))
            labbook.log_artifact(repo / "out.txt")
            with labbook.start_run(name="child", nested=True):
                labbook.log_metric("acc", lr)
            labbook.conclude("supported", "as expected")
    names = subprocess.run(["git", "-C", str(repo), "ls-tree", "-r", "--name-only", "experiments", "runs"],
                           capture_output=True, text=True, check=True).stdout.split()
    records = [subprocess.run(["git", "-C", str(repo), "show", f"experiments:{name}"],
                              capture_output=True, check=True).stdout
               for name in names if name.endswith("/run.yaml")]
    assert len(records) == 6
    for _ in range(3):
        for data in records:
            assert same(fast_read(data), full_read(data)), data


def test_a_good_record_is_read_by_its_plan_with_every_rule_checked_per_value():
    """The rules do not push records of a known shape to the full read."""
    good = a_record({"lr": 0.1, "layers": [64, 64], "flag": None}, {"m": 1.0}, {"t": "x"})
    good["artifacts"] = [{"path": "plots/a.png", "size": 3, "sha256": "0" * 64, "location": "branch"}]
    data = yamlio.dump(good)
    for _ in range(2):
        yamlio.load(data, "t")
    projected = record.project_run_yaml(data, rows.row_plan)
    assert projected is not None
    plan, values = projected
    assert plan.cells(values) is not None
