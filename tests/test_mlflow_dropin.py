"""labbook.mlflow in-process: entities, errors, artifacts, unsupported features."""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import numpy as np
import pytest
import yaml

import labbook
import labbook.mlflow as mlflow
from labbook.errors import LabbookError


def test_example_from_the_issue(repo: Path) -> None:
    exp = mlflow.set_experiment("/mlflow_sdk_test")
    assert exp.experiment_id == "mlflow_sdk_test-" + exp.experiment_id.rsplit("-", 1)[1]
    with mlflow.start_run(run_name="Ridge Regression Nested") as parent:  # noqa: SIM117
        with mlflow.start_run(run_name="Child Run: alpha 0.1", nested=True) as child:
            mlflow.log_param("alpha", 0.1)
            mlflow.log_metric("mse", 3000.0)
            assert child.info.status == "RUNNING"
    with mlflow.start_run(run_id=parent.info.run_id):
        mlflow.log_metric("r2", 0.44)
    df = mlflow.search_runs(order_by=["start_time DESC"])
    assert list(df["tags.mlflow.runName"]) == ["Child Run: alpha 0.1", "Ridge Regression Nested"]
    assert df["params.alpha"].iloc[0] == "0.1"
    assert df["tags.mlflow.parentRunId"].iloc[0] == parent.info.run_id
    assert str(df["start_time"].dt.tz) == "UTC"
    assert mlflow.last_active_run().info.run_id == parent.info.run_id
    assert mlflow.get_run(child.info.run_id).data.metrics == {"mse": 3000.0}
    assert labbook.get_run(child.info.run_id).params == {"alpha": 0.1}  # typed on the branch


def test_errors_are_mlflow_exceptions(repo: Path) -> None:
    with mlflow.start_run():
        mlflow.log_param("depth", 3)
        mlflow.log_param("depth", "3")  # the same text: fine, as in MLflow
        with pytest.raises(mlflow.exceptions.MlflowException, match="Changing param values"):
            mlflow.log_param("depth", 5)
    with pytest.raises(mlflow.MlflowException) as info:
        mlflow.MlflowClient().get_run("0123456789abcdef0123456789abcdef")
    assert info.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert isinstance(info.value, LabbookError)
    with pytest.raises(mlflow.MlflowException, match="already exists"):
        mlflow.create_experiment("default")


def test_unsupported_fails_loudly(repo: Path) -> None:
    for name in ("log_model", "register_model", "autolog_everything"):
        with pytest.raises(NotImplementedError, match=f"does not support mlflow.{name}"):
            getattr(mlflow, name)
    with pytest.raises(NotImplementedError, match="does not support mlflow.sklearn.save_model"):
        mlflow.sklearn.save_model  # noqa: B018
    assert not hasattr(mlflow, "pyfunc")
    with pytest.raises(mlflow.exceptions.Unsupported, match="set_tracking_uri"):
        mlflow.set_tracking_uri("http://localhost:5000")
    with pytest.raises(NotImplementedError, match="MlflowClient.create_registered_model"):
        mlflow.MlflowClient().create_registered_model("m")


def test_set_tracking_uri_names_a_repository(repo: Path) -> None:
    mlflow.set_tracking_uri(f"file://{repo}")
    assert mlflow.get_tracking_uri() == f"file:{repo}"


def test_empty_search_has_base_columns(repo: Path) -> None:
    labbook.init()
    df = mlflow.search_runs(filter_string="metrics.nothing > 1")
    assert list(df.columns) == ["run_id", "experiment_id", "status", "artifact_uri", "start_time",
                                "end_time"]
    assert mlflow.search_runs(output_format="list") == []


def test_missing_values_sort_last_and_filter_aliases(repo: Path) -> None:
    for name, mse in (("a", 2.0), ("b", None), ("c", 1.0)):
        with mlflow.start_run(run_name=name):
            if mse is not None:
                mlflow.log_metric("mse", mse)
    for order in ("ASC", "DESC"):
        names = mlflow.search_runs(order_by=[f"metrics.mse {order}"])["tags.mlflow.runName"].tolist()
        assert names[-1] == "b"
    assert mlflow.search_runs(filter_string="`Run Name` = 'c'")["tags.mlflow.runName"].tolist() == ["c"]
    assert len(mlflow.search_runs(filter_string="run.created > 0")) == 3
    assert len(mlflow.search_runs(experiment_names=["nope"])) == 0


def test_artifacts_the_mlflow_way(repo: Path, tmp_path: Path) -> None:
    source = tmp_path / "sub" / "model.txt"
    source.parent.mkdir()
    source.write_text("weights")
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(source))
        mlflow.log_artifact(str(source), artifact_path="models/best")
        mlflow.log_text("hello", "notes/readme.md")
        mlflow.log_dict({"a": 1}, "config.yaml")
        mlflow.log_dict({"a": 1}, "config.json")
        mlflow.log_image(np.zeros((4, 5, 3), dtype=np.uint8), "img/black.png")
        mlflow.log_image(np.ones((2, 2)), "img/white.png")
    paths = {a.path for a in labbook.get_run(run.info.run_id).artifacts}
    assert paths == {"model.txt", "models/best/model.txt", "notes/readme.md", "config.yaml",
                     "config.json", "img/black.png", "img/white.png"}
    out = labbook.tracking.get_artifacts(run.info.run_id, "config.yaml", str(tmp_path / "out"))
    assert yaml.safe_load(out[0].read_text()) == {"a": 1}
    out = labbook.tracking.get_artifacts(run.info.run_id, "config.json", str(tmp_path / "out2"))
    assert json.loads(out[0].read_text()) == {"a": 1}


def test_png_encoder_is_a_valid_png() -> None:
    data = mlflow.media.png_bytes(np.arange(12, dtype=np.uint8).reshape(3, 4))
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    idat = data.index(b"IDAT")
    length = int.from_bytes(data[idat - 4: idat], "big")
    raw = zlib.decompress(data[idat + 4: idat + 4 + length])
    assert raw == b"".join(b"\x00" + bytes(range(r * 4, r * 4 + 4)) for r in range(3))
    with pytest.raises(mlflow.MlflowException):
        mlflow.media.png_bytes(np.zeros((2, 2, 5)))


def test_client_logs_to_a_finished_run(repo: Path) -> None:
    client = mlflow.MlflowClient()
    exp_id = client.create_experiment("client-exp")
    created = client.create_run(exp_id, run_name="by-client")
    client.log_param(created.info.run_id, "k", 1)
    client.log_metric(created.info.run_id, "m", 0.5, step=3)
    client.set_terminated(created.info.run_id)
    run = client.get_run(created.info.run_id)
    assert (run.info.status, run.data.params, run.data.metrics) == ("FINISHED", {"k": "1"}, {"m": 0.5})
    client.set_tag(run.info.run_id, "late", "yes")
    assert client.get_run(run.info.run_id).info.status == "FINISHED"
    [metric] = client.get_metric_history(run.info.run_id, "m")
    assert (metric.key, metric.value, metric.step) == ("m", 0.5, 3)
    assert [r.info.run_name for r in client.search_runs([exp_id])] == ["by-client"]
    assert client.get_experiment_by_name("client-exp").experiment_id == exp_id
