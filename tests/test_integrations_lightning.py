"""PyTorch Lightning: a 2-layer MLP trained on tiny CPU data through LabbookLogger."""

from __future__ import annotations

from pathlib import Path

import pytest

import labbook

torch = pytest.importorskip("torch")
L = pytest.importorskip("lightning")


class MLP(L.LightningModule):
    def __init__(self, hidden: int = 8, lr: float = 0.05, fail_at_epoch: int | None = None) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = torch.nn.Sequential(torch.nn.Linear(4, hidden), torch.nn.ReLU(),
                                       torch.nn.Linear(hidden, 1))

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        if self.hparams.fail_at_epoch is not None and self.current_epoch == self.hparams.fail_at_epoch:
            raise RuntimeError("loss went NaN")
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.net(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        self.log("val_loss", torch.nn.functional.mse_loss(self.net(x), y))

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        self.log("test_loss", torch.nn.functional.mse_loss(self.net(x), y))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


def loaders() -> tuple[torch.utils.data.DataLoader, torch.utils.data.DataLoader]:
    torch.manual_seed(0)
    x = torch.randn(64, 4)
    y = x @ torch.tensor([[1.0], [-1.0], [0.5], [0.0]])
    data = torch.utils.data.TensorDataset(x, y)
    train, valid = torch.utils.data.random_split(data, [48, 16])
    return (torch.utils.data.DataLoader(train, batch_size=8),
            torch.utils.data.DataLoader(valid, batch_size=16))


def trainer(tmp_path: Path, logger: object, **kwargs: object) -> L.Trainer:
    kwargs.setdefault("max_epochs", 2)
    return L.Trainer(logger=logger, accelerator="cpu", devices=1,
                     default_root_dir=str(tmp_path / "lightning"), log_every_n_steps=1,
                     enable_progress_bar=False, enable_model_summary=False, **kwargs)


def test_fit_logs_hyperparams_metrics_per_step_checkpoints_and_status(repo: Path, tmp_path: Path) -> None:
    from lightning.pytorch.callbacks import ModelCheckpoint

    from labbook.integrations.lightning import LabbookLogger

    logger = LabbookLogger(experiment="cifar", name="mlp", hypothesis="SGD converges in 2 epochs",
                           log_checkpoints=True)
    checkpoint = ModelCheckpoint(monitor="val_loss", save_top_k=1)
    train, valid = loaders()
    trainer(tmp_path, logger, callbacks=[checkpoint]).fit(MLP(), train, valid)
    assert labbook.active_run() is None

    run = labbook.get_run("mlp")
    assert run.status == "FINISHED" and run.hypothesis == "SGD converges in 2 epochs"
    assert run.params["hidden"] == 8 and run.params["lr"] == 0.05
    # 48 rows in batches of 8: 6 steps an epoch, one train_loss per step
    assert [s for s, _, _ in run.metric_history("train_loss")] == list(range(12))
    assert [s for s, _, _ in run.metric_history("val_loss")] == [5, 11]
    assert run.tags["checkpoint.best_path"] == checkpoint.best_model_path
    assert run.id in checkpoint.best_model_path  # checkpoints go under <name>/<run id>/
    assert float(run.tags["checkpoint.best_score"]) == pytest.approx(float(checkpoint.best_model_score))
    assert [a.path for a in run.artifacts] == [f"checkpoints/{Path(checkpoint.best_model_path).name}"]
    assert run.tags["labbook.integration"] == "lightning"

    # a test after fit resumes the same run
    trainer(tmp_path, logger).test(MLP(), valid, verbose=False)
    again = labbook.get_run("mlp")
    assert again.status == "FINISHED" and "test_loss" in again.metrics
    assert len(labbook.search_runs("cifar")) == 1


def test_a_failed_fit_ends_the_run_failed(repo: Path, tmp_path: Path) -> None:
    from labbook.integrations.lightning import LabbookLogger

    train, valid = loaders()
    with pytest.raises(RuntimeError, match="NaN"):
        trainer(tmp_path, LabbookLogger(name="diverges"), enable_checkpointing=False).fit(
            MLP(fail_at_epoch=1), train, valid)
    run = labbook.get_run("diverges")
    assert run.status == "FAILED"
    assert len(run.metric_history("train_loss")) == 6  # the first epoch was logged


def test_off_rank_zero_the_logger_logs_nothing(repo: Path, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from labbook.integrations.lightning import LabbookLogger

    monkeypatch.setenv("LOCAL_RANK", "1")
    train, valid = loaders()
    trainer(tmp_path, LabbookLogger(name="rank1"), enable_checkpointing=False, max_epochs=1).fit(
        MLP(), train, valid)
    assert labbook.search_runs().empty


def test_the_logger_pickles_for_ddp_spawn_workers(repo: Path) -> None:
    import pickle

    from labbook.integrations.lightning import LabbookLogger

    logger = LabbookLogger(name="spawned")
    run_id = logger.version
    copy = pickle.loads(pickle.dumps(logger))
    assert type(copy) is LabbookLogger and copy.session.run is None
    logger.finalize("success")
    assert labbook.get_run(run_id).status == "FINISHED"
