"""`labbook import mlflow`: stores written by MLflow itself, read back through labbook."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import labbook
from conftest import user_state
from labbook import tracking
from labbook.cli import cli
from labbook.errors import LabbookError

pytest.importorskip("mlflow")
from mlflow import MlflowClient

T0 = 1_700_000_000_000


def fill_store(client: MlflowClient, artifacts: Path | None, tmp: Path) -> dict[str, str]:
    """A parent run with two nested children, 5-step metric histories, params, tags, a note and
    an artifact; returns run name → MLflow run id."""
    location = artifacts.resolve().as_uri() if artifacts is not None else None
    exp = client.create_experiment("/sweep", artifact_location=location,
                                   tags={"mlflow.note.content": "Which alpha is best?",
                                         "owner": "vision-team"})
    parent = client.create_run(exp, run_name="sweep-parent", tags={"team": "vision"},
                               start_time=T0)
    pid = parent.info.run_id
    client.log_param(pid, "model", "ridge")
    client.set_tag(pid, "mlflow.note.content", "the parent of the sweep")
    report = tmp / "report.txt"
    report.write_text("best alpha: 0.1\n")
    client.log_artifact(pid, str(report), "reports")
    ids = {"sweep-parent": pid}
    for i, (alpha, status) in enumerate([(0.1, "FINISHED"), (1.0, "FAILED")]):
        child = client.create_run(exp, run_name=f"alpha-{alpha}", start_time=T0 + 10 + i,
                                  tags={"mlflow.parentRunId": pid, "stage": "sweep"})
        cid = child.info.run_id
        client.log_param(cid, "alpha", alpha)
        client.log_param(cid, "solver", "auto")
        for step in range(5):
            client.log_metric(cid, "loss", alpha + 1.0 / (step + 1), timestamp=T0 + 1000 * step, step=step)
        client.log_metric(cid, "r2", 0.5 + i / 10, timestamp=T0 + 5000, step=0)
        client.set_terminated(cid, status, end_time=T0 + 60_000 + i)
        ids[f"alpha-{alpha}"] = cid
    client.set_terminated(pid, "FINISHED", end_time=T0 + 120_000)
    return ids


@pytest.fixture(params=["folder", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """An MLflow store made by MLflow: (SOURCE for labbook import, its client, run ids)."""
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    if request.param == "folder":
        source = str(tmp_path / "mlruns")
        client = MlflowClient(tracking_uri=(tmp_path / "mlruns").as_uri())
        ids = fill_store(client, None, tmp_path)
    else:
        source = f"sqlite:///{tmp_path / 'mlflow.db'}"
        client = MlflowClient(tracking_uri=source)
        ids = fill_store(client, tmp_path / "mlartifacts", tmp_path)
    return source, client, ids


def test_import_brings_every_run_param_metric_tag_parent_status_and_artifact(repo: Path, store):
    source, _client, ids = store
    before = user_state(repo)
    summary = tracking.import_mlflow(source)
    assert (summary.imported, summary.experiments, summary.metric_points, summary.artifacts) == (3, 1, 12, 1)
    assert summary.skipped == {} and summary.warnings == []
    frame = labbook.search_runs().set_index("run_id")
    assert sorted(frame.index) == sorted(ids.values())
    pid, good, bad = ids["sweep-parent"], ids["alpha-0.1"], ids["alpha-1.0"]
    assert frame.loc[good, "run_name"] == "alpha-0.1"
    assert frame.loc[good, "params.alpha"] == "0.1" and frame.loc[bad, "params.alpha"] == "1.0"
    assert frame.loc[good, "params.solver"] == "auto" and frame.loc[pid, "params.model"] == "ridge"
    assert frame.loc[good, "parent_run_id"] == pid and frame.loc[bad, "parent_run_id"] == pid
    assert frame.loc[good, "status"] == "FINISHED" and frame.loc[bad, "status"] == "FAILED"
    assert frame.loc[good, "tags.stage"] == "sweep" and frame.loc[pid, "tags.team"] == "vision"
    assert [c for c in frame.columns if c.startswith("tags.mlflow.")] == ["tags.mlflow.note.content"]
    assert frame.loc[pid, "tags.mlflow.note.content"] == "the parent of the sweep"
    assert frame["user"].isna().all()  # MLflow's client-made runs have no mlflow.user tag
    history = labbook.get_metric_history(bad, "loss")
    assert list(history["step"]) == [0, 1, 2, 3, 4]
    assert list(history["value"]) == pytest.approx([1.0 + 1.0 / (s + 1) for s in range(5)])
    assert labbook.get_metric_history(good, "r2")["value"].tolist() == [0.5]
    parent = labbook.get_run(pid)
    assert parent.name == "sweep-parent" and parent.status == "FINISHED"
    assert parent.record.start_time == "2023-11-14T22:13:20.000Z"
    assert parent.record.end_time == "2023-11-14T22:15:20.000Z"
    assert [n.text for n in parent.notes] == ["the parent of the sweep"]
    assert [(a.path, a.size) for a in parent.artifacts] == [("reports/report.txt", 16)]
    assert Path(labbook.tracking.get_artifacts(pid, "reports/report.txt", str(repo.parent / "out.txt"))[0]
                ).read_text() == "best alpha: 0.1\n"
    experiments = labbook.list_experiments()
    assert experiments[["experiment", "description", "runs"]].values.tolist() == [
        ["/sweep", "Which alpha is best?", 3]]
    [slug] = [e.name[:-5] for e in tracking.repository().store.snapshot().list("experiments")]
    assert tracking.repository().experiment(slug).tags == {"owner": "vision-team"}
    import labbook.mlflow as lmlflow

    mirrored = lmlflow.get_run(pid)  # the drop-in shows what MLflow showed
    assert mirrored.data.tags["mlflow.note.content"] == "the parent of the sweep"
    assert "mlflow.user" not in mirrored.data.tags
    assert lmlflow.get_experiment_by_name("/sweep").tags == {
        "owner": "vision-team", "mlflow.note.content": "Which alpha is best?"}
    assert user_state(repo) == before

    again = tracking.import_mlflow(source)
    assert again.imported == 0 and again.skipped == {"already on the branch": 3}
    assert len(labbook.search_runs()) == 3
    assert user_state(repo) == before


def test_incremental_import_brings_only_new_runs(repo: Path, store):
    source, client, ids = store
    tracking.import_mlflow(source)
    exp = client.get_experiment_by_name("/sweep").experiment_id
    late = client.create_run(exp, run_name="late", tags={"mlflow.parentRunId": ids["sweep-parent"]})
    client.log_metric(late.info.run_id, "loss", 0.3, step=0)
    running = client.create_run(exp, run_name="still-running")
    summary = tracking.import_mlflow(source)
    assert summary.imported == 2 and summary.skipped == {"already on the branch": 3}
    assert labbook.get_run(late.info.run_id).parent == ids["sweep-parent"]
    still = labbook.get_run(running.info.run_id)
    assert still.status == "KILLED" and "RUNNING in MLflow" in still.record.error


def test_cli_import_prints_a_summary(repo: Path, store):
    source = store[0]
    result = CliRunner().invoke(cli, ["import", "mlflow", source])
    assert result.exit_code == 0, result.output
    assert "imported 3 runs" in result.output and "12 metric points, 1 artifacts" in result.output
    result = CliRunner().invoke(cli, ["import", "mlflow", source])
    assert "imported 0 runs" in result.output
    assert "skipped 3 runs: already on the branch" in result.output


def test_missing_source_and_missing_mlflow_are_one_line_errors(repo: Path, monkeypatch: pytest.MonkeyPatch):
    result = CliRunner().invoke(cli, ["import", "mlflow", str(repo / "nowhere")])
    assert result.exit_code == 1 and "neither an MLflow folder" in result.output
    (repo.parent / "mlruns").mkdir()
    monkeypatch.setitem(sys.modules, "mlflow", None)
    with pytest.raises(LabbookError, match=r"pip install 'labbook\[mlflow\]'"):
        tracking.import_mlflow(str(repo.parent / "mlruns"))
