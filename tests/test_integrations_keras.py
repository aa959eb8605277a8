"""Keras 3 (torch backend): a 2-layer MLP fitted on tiny data logs its epochs, batches and config."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import labbook

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")
np = pytest.importorskip("numpy")


def tiny_model() -> keras.Model:
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dense(1)], name="mlp")
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.01), loss="mse", metrics=["mae"])
    return model


def tiny_data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 4)).astype("float32")
    return X, (X @ np.array([1.0, -1.0, 0.5, 0.0], dtype="float32"))[:, None]


def test_fit_logs_epochs_batches_params_and_the_model_config(repo: Path, tmp_path: Path) -> None:
    from labbook.integrations.keras import LabbookCallback

    X, y = tiny_data()
    model = tiny_model()
    model.fit(X, y, epochs=3, batch_size=16, validation_split=0.25, verbose=0,
              callbacks=[LabbookCallback(experiment="keras", hypothesis="8 units suffice")])
    assert labbook.active_run() is None
    run = labbook.get_run("mlp")
    assert run.status == "FINISHED" and run.experiment.startswith("keras")
    assert run.params["fit.epochs"] == 3
    assert run.params["optimizer.learning_rate"] == pytest.approx(0.01)
    assert run.params["optimizer.name"] == "adam"
    for key in ("loss", "val_loss", "mae", "val_mae"):
        assert [s for s, _, _ in run.metric_history(key)] == [0, 1, 2], key
    # 48 training rows in batches of 16: 3 batches an epoch, counted across epochs
    assert [s for s, _, _ in run.metric_history("batch/loss")] == list(range(9))
    assert [a.path for a in run.artifacts] == ["model/config.json"]
    [restored] = labbook.tracking.get_artifacts(run.id, "model/config.json", dest=str(tmp_path / "out"))
    config = json.loads(Path(restored).read_text())
    assert config["class_name"] == "Sequential"
    assert [layer["class_name"] for layer in config["config"]["layers"]][-2:] == ["Dense", "Dense"]


def test_off_rank_zero_keras_logs_nothing(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from labbook.integrations.keras import LabbookCallback

    monkeypatch.setenv("RANK", "2")
    X, y = tiny_data()
    tiny_model().fit(X, y, epochs=1, batch_size=32, verbose=0, callbacks=[LabbookCallback()])
    assert labbook.search_runs().empty


def test_a_refused_write_warns_and_training_goes_on(repo: Path, caplog: pytest.LogCaptureFixture) -> None:
    from labbook.integrations.keras import LabbookCallback

    X, y = tiny_data()
    model = tiny_model()
    with labbook.start_run(name="mine"):
        labbook.log_param("optimizer.learning_rate", 1.0)  # the callback's 0.01 will conflict
        history = model.fit(X, y, epochs=2, batch_size=32, verbose=0, callbacks=[LabbookCallback()])
    assert len(history.history["loss"]) == 2
    assert "labbook.integrations.keras: could not log params" in caplog.text
    run = labbook.get_run("mine")
    assert run.status == "FINISHED" and run.params["optimizer.learning_rate"] == 1.0
    assert [s for s, _, _ in run.metric_history("loss")] == [0, 1]
