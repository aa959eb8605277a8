"""The MLflow calls and import paths scripts use, through the drop-in: explicit times,
experiments (Default, tags, filters), artifacts listing, paging, run updates."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import labbook
import labbook.mlflow as mlflow
from labbook.mlflow.entities import ViewType
from labbook.mlflow.exceptions import MlflowException
from labbook.mlflow.models import infer_signature
from labbook.mlflow.tracking import MlflowClient

START, END = 1_600_000_000_000, 1_600_000_100_000


def test_create_run_and_set_terminated_honour_explicit_times(repo: Path) -> None:
    client = MlflowClient()
    run = client.create_run("0", start_time=START, run_name="backfilled")
    assert run.info.start_time == START
    client.set_terminated(run.info.run_id, end_time=END)
    got = client.get_run(run.info.run_id)
    assert (got.info.start_time, got.info.end_time, got.info.status) == (START, END, "FINISHED")
    assert labbook.get_run(run.info.run_id).record.start_time == "2020-09-13T12:26:40.000Z"
    client.log_metric(run.info.run_id, "late", 1.0)  # logging to an ended run keeps its end
    assert client.get_run(run.info.run_id).info.end_time == END


def test_bad_times_and_statuses_are_mlflow_exceptions(repo: Path) -> None:
    client = MlflowClient()
    with pytest.raises(MlflowException, match="milliseconds"):
        client.create_run("0", start_time="yesterday")
    run = client.create_run("0")
    with pytest.raises(MlflowException, match="milliseconds"):
        client.set_terminated(run.info.run_id, end_time=-5)
    with pytest.raises(MlflowException, match="FINISHED, FAILED, KILLED"):
        client.set_terminated(run.info.run_id, status="DONE")
    assert client.get_run(run.info.run_id).info.status == "RUNNING"


def test_a_fresh_store_has_the_default_experiment(repo: Path) -> None:
    assert [(e.experiment_id, e.name) for e in mlflow.search_experiments()] == [("default", "Default")]
    assert mlflow.get_experiment_by_name("Default").experiment_id == "default"
    assert mlflow.get_experiment("0").name == "Default"
    with mlflow.start_run(experiment_id="0") as run:
        mlflow.log_metric("m", 1.0)
    assert run.info.experiment_id == "default"
    assert list(mlflow.search_runs(experiment_ids=["0"])["run_id"]) == [run.info.run_id]
    mlflow.set_experiment("Default")
    assert labbook.tracking._state.experiment == "default"


def test_experiments_keep_tags_and_are_searched_by_filter(repo: Path) -> None:
    client = MlflowClient()
    alpha = client.create_experiment("alpha", tags={"team": "vision", "mlflow.note.content": "Why"})
    client.create_experiment("beta")
    assert client.get_experiment(alpha).tags == {"team": "vision", "mlflow.note.content": "Why"}
    assert labbook.tracking.repository().experiment(alpha).description == "Why"
    names = [e.name for e in mlflow.search_experiments()]
    assert names == ["beta", "alpha", "Default"]  # newest first, as MLflow
    assert [e.name for e in mlflow.search_experiments(filter_string="name LIKE 'a%'")] == ["alpha"]
    assert [e.name for e in client.search_experiments(filter_string="tags.team = 'vision'")] == ["alpha"]
    assert [e.name for e in mlflow.search_experiments(order_by=["name ASC"])] == \
        ["Default", "alpha", "beta"]
    page = client.search_experiments(max_results=2)
    assert len(page) == 2 and page.token
    assert [e.name for e in client.search_experiments(max_results=2, page_token=page.token)] == ["Default"]
    with pytest.raises(MlflowException, match="artifact_location"):
        client.create_experiment("gamma", artifact_location="/tmp/elsewhere")
    with pytest.raises(MlflowException, match="already exists"):
        client.create_experiment("alpha")
    mlflow.set_experiment("beta")
    mlflow.set_experiment_tag("stage", "dev")
    assert mlflow.get_experiment_by_name("beta").tags == {"stage": "dev"}


def test_search_runs_pages_with_a_token_and_refuses_too_many(repo: Path) -> None:
    client = MlflowClient()
    made = [client.create_run("0", start_time=START + i).info.run_id for i in range(5)]
    seen, token = [], None
    while True:
        page = client.search_runs(["0"], max_results=2, page_token=token)
        seen += [r.info.run_id for r in page]
        token = page.token
        if token is None:
            break
    assert seen == made[::-1]  # newest first, every run once
    with pytest.raises(MlflowException, match="at most 50000"):
        client.search_runs(["0"], max_results=50_001)
    with pytest.raises(MlflowException, match="page token"):
        client.search_runs(["0"], page_token="not-a-token")


def test_list_artifacts_and_get_artifact_uri(repo: Path, tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_text("x")
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(tmp_path / "f.txt"), "d/e")
        mlflow.log_artifact(str(tmp_path / "f.txt"))
        uri = mlflow.get_artifact_uri()
        assert mlflow.get_artifact_uri("d") == uri + "/d"
    assert uri == run.info.artifact_uri
    client = MlflowClient()
    assert [(f.path, f.is_dir, f.file_size) for f in client.list_artifacts(run.info.run_id)] == \
        [("d", True, None), ("f.txt", False, 1)]
    assert [(f.path, f.is_dir) for f in client.list_artifacts(run.info.run_id, "d")] == [("d/e", True)]
    assert [f.path for f in client.list_artifacts(run.info.run_id, "d/e")] == ["d/e/f.txt"]


def test_update_run_renames_and_sets_status(repo: Path) -> None:
    client = MlflowClient()
    rid = client.create_run("0", run_name="first").info.run_id
    client.update_run(rid, status="KILLED", name="second")
    got = client.get_run(rid)
    assert (got.info.run_name, got.info.status, got.data.tags["mlflow.runName"]) == \
        ("second", "KILLED", "second")
    with pytest.raises(MlflowException) as caught:
        client.update_run("f" * 32, name="x")
    assert caught.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_import_paths_scripts_use(repo: Path) -> None:
    import labbook.mlflow.tracking

    assert mlflow.tracking.MlflowClient is MlflowClient is labbook.mlflow.tracking.MlflowClient
    assert (ViewType.ACTIVE_ONLY, ViewType.DELETED_ONLY, ViewType.ALL) == (1, 2, 3)
    frame = pd.DataFrame({"a": [1.0, 2.0], "b": [1, 2], "c": ["x", "y"]})
    signature = infer_signature(frame, np.array([0.5, 0.7]))
    assert [(s.name, s.type) for s in signature.inputs.inputs] == \
        [("a", "double"), ("b", "long"), ("c", "string")]
    assert signature.to_dict()["outputs"] == \
        '[{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1]}}]'
    with pytest.raises(mlflow.Unsupported, match="models.Model"):
        mlflow.models.Model  # noqa: B018


def test_the_drop_in_imports_without_mlflow_or_sklearn(tmp_path: Path) -> None:
    """A child interpreter where `import mlflow` and `import sklearn` fail still imports every
    module of labbook.mlflow (MLflow is needed only by `labbook import mlflow`)."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('mlflow', 'sklearn'):\n"
        "            raise ImportError(name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import labbook.mlflow as m\n"
        "from labbook.mlflow.tracking import MlflowClient\n"
        "from labbook.mlflow.entities import ViewType\n"
        "from labbook.mlflow.models import infer_signature\n"
        "import labbook.mlflow.sklearn\n"
        "print(m.tracking.MlflowClient is MlflowClient, ViewType.ALL)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["True", "3"]
