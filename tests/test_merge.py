"""The three-way merge of run records, as pure functions (no git)."""

from __future__ import annotations

import copy

from labbook.format import merge, record
from labbook.format.merge import PathChange, RunFiles
from labbook.format.record import Artifact, Conclusion, Conflict, MetricSummary, Note, RunRecord

RID = "ab" * 16


def run(**fields) -> RunRecord:
    base = dict(id=RID, name="r", experiment="e", status="RUNNING",
                start_time="2026-01-01T00:00:00.000Z")
    return RunRecord(**{**base, **fields})


def note(time: str, text: str, author: str = "ada") -> Note:
    return Note(time=f"2026-01-01T00:00:{time}.000Z", author=author, text=text)


def test_notes_are_a_union_ordered_by_time_without_duplicates():
    shared = note("01", "both have this")
    ours, theirs = [shared, note("05", "mine")], [shared, note("03", "theirs")]
    merged = merge.merge_notes(ours, theirs)
    assert [n.text for n in merged] == ["both have this", "theirs", "mine"]


def test_a_terminal_status_beats_running_and_the_later_end_wins():
    base = run()
    done = run(status="FINISHED", end_time="2026-01-01T01:00:00.000Z")
    failed_later = run(status="FAILED", end_time="2026-01-01T02:00:00.000Z", error="boom")
    assert merge.merge_records(base, base, done).status == "FINISHED"
    assert merge.merge_records(base, done, base).status == "FINISHED"
    merged = merge.merge_records(base, done, failed_later)
    assert (merged.status, merged.error) == ("FAILED", "boom")
    assert merge.merge_records(base, failed_later, done).status == "FAILED"


def test_the_later_conclusion_wins_and_the_other_is_kept_in_conflicts():
    early = Conclusion("refuted", "no change", "2026-01-01T01:00:00.000Z")
    late = Conclusion("supported", "4% better", "2026-01-01T02:00:00.000Z")
    base = run()
    merged = merge.merge_records(base, run(conclusion=early), run(conclusion=late), source="c0ffee")
    assert merged.conclusion == late
    assert merged.conflicts == [Conflict("conclusion", record.to_plain(early), "c0ffee")]
    assert merge.merge_records(base, base, run(conclusion=late)).conflicts == []


def test_params_and_tags_changed_on_one_side_are_taken_and_clashes_keep_both():
    base = run(params={"lr": 0.1}, tags={"stage": "a"})
    ours = run(params={"lr": 0.1, "seed": 1}, tags={"stage": "b"})
    theirs = run(params={"lr": 0.1, "seed": 2, "depth": 3}, tags={"stage": "a", "x": "y"})
    merged = merge.merge_records(base, ours, theirs, source="f00d")
    assert merged.params == {"lr": 0.1, "seed": 1, "depth": 3}
    assert merged.tags == {"stage": "b", "x": "y"}
    assert merged.conflicts == [Conflict("params.seed", 2, "f00d")]
    again = merge.merge_records(base, merged, run(params={"lr": 0.1, "seed": 2}, conflicts=[
        Conflict("params.seed", 1, "beef")]))
    assert again.params["seed"] == 1
    assert [(c.field, c.value) for c in again.conflicts] == [("params.seed", 2)]  # never the kept one


def test_types_count_in_a_clash_and_a_removed_key_changed_elsewhere_is_kept():
    merged = merge.merge_records(None, run(params={"n": 1}), run(params={"n": 1.0}))
    assert merged.params == {"n": 1} and merged.conflicts[0].value == 1.0
    kept = merge.merge_records(run(tags={"t": "a"}), run(tags={}), run(tags={"t": "b"}))
    assert kept.tags == {"t": "b"}


def test_artifacts_are_a_union_by_path():
    a = Artifact("plots/a.png", 3, "1" * 64, "branch")
    b = Artifact("model.bin", 9, "2" * 64, "store")
    merged = merge.merge_records(run(), run(artifacts=[a]), run(artifacts=[b]))
    assert merged.artifacts == [a, b]


def test_histories_are_united_by_key_step_and_time_and_summaries_recomputed():
    base = [("loss", 0, 10, 1.0)]
    ours = [*base, ("loss", 1, 20, 0.5), ("acc", 0, 21, 0.7)]
    theirs = [*base, ("loss", 1, 15, 0.6), ("loss", 2, 30, 0.4), ("acc", 0, 21, 0.9)]
    rec = run(metrics={"loss": MetricSummary.first(0.5, 1, 20)})
    files, line = merge.merge_run(
        RID, RunFiles(record.run_to_yaml(rec), record.history_to_tsv(base)),
        RunFiles(record.run_to_yaml(rec), record.history_to_tsv(ours)),
        RunFiles(record.run_to_yaml(rec), record.history_to_tsv(theirs)))
    rows = record.history_from_tsv(files.history, "metrics.tsv")
    assert rows == [("loss", 0, 10, 1.0), ("loss", 1, 15, 0.6), ("loss", 1, 20, 0.5),
                    ("acc", 0, 21, 0.7), ("loss", 2, 30, 0.4)]
    merged = record.run_from_yaml(files.record, "run.yaml")
    assert merged.metrics["loss"] == MetricSummary(0.4, 0.4, 1.0, 2, 30, 4)
    assert merged.metrics["acc"] == MetricSummary.first(0.7, 0, 21)  # the local value of a tie
    assert line == "run r (abababab): metric values 3 + 4 → 5"


def test_records_merge_the_same_whichever_side_holds_a_history_only():
    rec = run(metrics={"loss": MetricSummary.first(1.0, 0, 10)})
    history = record.history_to_tsv([("loss", 0, 10, 1.0)])
    files, _ = merge.merge_run(RID, RunFiles(), RunFiles(record.run_to_yaml(rec), history),
                               RunFiles(record.run_to_yaml(rec), None))
    assert files.history == history and record.run_from_yaml(files.record, "r") == rec


def test_plan_never_removes_run_files_and_never_merges_content_by_similarity():
    r1, r2 = "runs/11/" + "1" * 32 + "/run.yaml", "runs/22/" + "2" * 32 + "/run.yaml"
    ours = {r1: PathChange("a", "b", "100644"), "notes.md": PathChange("n", "m", "100644")}
    theirs = {r1: PathChange("a", None), r2: PathChange(None, "a2", "100644"),
              "runs/33/" + "3" * 32 + "/run.yaml": PathChange("c", None),
              "old.md": PathChange("o", None), "notes.md": PathChange("n", "x", "100644")}
    todo = merge.plan(ours, theirs)
    assert todo.take == {r2: PathChange(None, "a2", "100644"), "old.md": PathChange("o", None)}
    assert todo.runs == set() and todo.new_runs == 1
    assert len(todo.notes) == 3 and any("never removes run files" in n for n in todo.notes)
    assert any("kept the local notes.md" in n for n in todo.notes)


def test_plan_sends_runs_and_experiments_changed_on_both_sides_to_the_field_merge():
    path = record.run_path(RID)
    todo = merge.plan({path: PathChange("a", "b", "100644"),
                       "experiments/e.yaml": PathChange(None, "e1", "100644")},
                      {path: PathChange("a", "c", "100644"),
                       "experiments/e.yaml": PathChange(None, "e2", "100644")})
    assert todo.runs == {RID} and todo.experiments == {"e"} and todo.take == {}


def test_experiments_keep_the_local_description_and_the_earlier_creation():
    def exp(description, created):
        return record.experiment_to_yaml(record.ExperimentRecord(
            slug="e", name="e", description=description, created=created))
    data, line = merge.merge_experiment("e", None, exp("mine?", "2026-02-01T00:00:00.000Z"),
                                        exp("theirs?", "2026-01-01T00:00:00.000Z"))
    merged = record.experiment_from_yaml(data, "e")
    assert (merged.description, merged.created) == ("mine?", "2026-01-01T00:00:00.000Z")
    assert line == "experiment e: kept the local description; the other was: 'theirs?'"
    data, _ = merge.merge_experiment("e", None, exp(None, "2026-02-01T00:00:00.000Z"),
                                     exp("theirs?", "2026-01-01T00:00:00.000Z"))
    assert record.experiment_from_yaml(data, "e").description == "theirs?"


def test_experiment_tags_set_on_both_sides_are_all_kept():
    def exp(tags):
        return record.experiment_to_yaml(record.ExperimentRecord(
            slug="e", name="e", created="2026-01-01T00:00:00.000Z", tags=tags))
    base = exp({"team": "a"})
    assert b"tags" not in exp({})  # files without tags keep their bytes
    data, _ = merge.merge_experiment("e", base, exp({"team": "a", "stage": "dev"}),
                                     exp({"team": "b"}))
    assert record.experiment_from_yaml(data, "e").tags == {"team": "b", "stage": "dev"}


def test_a_record_without_conflicts_keeps_its_bytes():
    rec = run(params={"a": 1})
    assert b"conflicts" not in record.run_to_yaml(rec)
    with_one = copy.deepcopy(rec)
    with_one.conflicts = [Conflict("params.a", 2, None)]
    assert record.run_from_yaml(record.run_to_yaml(with_one), "r") == with_one
