"""Hugging Face Transformers: a 2-layer BERT built from a BertConfig, trained on tiny made-up data."""

from __future__ import annotations

from pathlib import Path

import pytest

import labbook

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("accelerate")


class Tokens(torch.utils.data.Dataset):
    """Label 1 when token 7 appears: learnable by a tiny model."""

    def __init__(self, n: int, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        self.ids = torch.randint(1, 30, (n, 12), generator=g)
        self.labels = (self.ids == 7).any(dim=1).long()

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.ids[i], "attention_mask": torch.ones(12, dtype=torch.long),
                "labels": self.labels[i]}


def tiny_bert() -> transformers.PreTrainedModel:
    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=32, hidden_size=16, num_hidden_layers=2,
                                     num_attention_heads=2, intermediate_size=32,
                                     max_position_embeddings=16, num_labels=2)
    return transformers.BertForSequenceClassification(config)


def arguments(tmp_path: Path, **kwargs: object) -> transformers.TrainingArguments:
    defaults: dict[str, object] = dict(
        output_dir=str(tmp_path / "out"), num_train_epochs=2, per_device_train_batch_size=8,
        per_device_eval_batch_size=16, learning_rate=5e-3, logging_steps=1, eval_strategy="epoch",
        save_strategy="epoch", load_best_model_at_end=True, metric_for_best_model="loss",
        report_to="none", use_cpu=True, disable_tqdm=True, seed=0, save_total_limit=2)
    defaults.update(kwargs)
    return transformers.TrainingArguments(**defaults)  # type: ignore[arg-type]


def test_trainer_logs_arguments_steps_eval_metrics_and_the_best_checkpoint(repo: Path,
                                                                         tmp_path: Path) -> None:
    from labbook.integrations.transformers import LabbookCallback

    trainer = transformers.Trainer(
        model=tiny_bert(), args=arguments(tmp_path), train_dataset=Tokens(32, 0),
        eval_dataset=Tokens(16, 1),
        callbacks=[LabbookCallback(experiment="bert", hypothesis="two layers are enough")])
    trainer.train()
    assert labbook.active_run() is None

    [run_id] = labbook.search_runs("bert").run_id
    run = labbook.get_run(run_id)
    assert run.name == "BertForSequenceClassification"
    assert run.status == "FINISHED"
    assert run.params["learning_rate"] == 5e-3
    assert run.params["per_device_train_batch_size"] == 8
    assert run.params["model_config.num_hidden_layers"] == 2
    assert "hub_token" not in run.params and "output_dir" not in run.params
    # 32 rows in batches of 8: 4 steps an epoch, a loss logged at each global step
    assert [s for s, _, _ in run.metric_history("loss")] == list(range(1, 9))
    assert [s for s, _, _ in run.metric_history("eval_loss")] == [4, 8]
    assert "learning_rate" in run.metrics and "grad_norm" in run.metrics
    assert run.tags["checkpoint.best_path"] == trainer.state.best_model_checkpoint
    assert run.tags["checkpoint.last_path"].endswith("checkpoint-8")
    assert run.metrics["best_metric"] == pytest.approx(trainer.state.best_metric)


def test_report_to_labbook_after_register(repo: Path, tmp_path: Path) -> None:
    from labbook.integrations import transformers as integration

    integration.register()
    trainer = transformers.Trainer(model=tiny_bert(), train_dataset=Tokens(16, 0), args=arguments(
        tmp_path, report_to="labbook", run_name="reported", num_train_epochs=1, eval_strategy="no",
        save_strategy="no", load_best_model_at_end=False))
    trainer.train()
    run = labbook.get_run("reported")
    assert run.status == "FINISHED" and len(run.metric_history("loss")) == 2


def test_off_rank_zero_nothing_is_logged(repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from labbook.integrations.transformers import LabbookCallback

    callback = LabbookCallback()
    monkeypatch.setenv("RANK", "1")
    transformers.Trainer(model=tiny_bert(), train_dataset=Tokens(16, 0), callbacks=[callback], args=arguments(
        tmp_path, num_train_epochs=1, eval_strategy="no", save_strategy="no",
        load_best_model_at_end=False)).train()
    assert labbook.search_runs().empty
