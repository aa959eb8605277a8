"""System metrics: a run that asks for them has the machine in its history as system/* metrics."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import pytest

import labbook
from conftest import git

pytest.importorskip("psutil")

SAMPLER = "labbook-system-metrics"


def samplers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == SAMPLER]


def test_a_run_samples_the_machine_until_it_ends(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LABBOOK_SYSTEM_METRICS_INTERVAL", "0.05")
    with labbook.start_run(name="sampled", log_system_metrics=True) as run:
        labbook.log_metric("loss", 1.0)
        time.sleep(0.6)
        assert samplers() and samplers()[0].daemon
    assert not samplers(), "ending the run stops and joins the sampler"

    back = labbook.get_run(run.id)
    assert back.status == "FINISHED"
    for key in ("system/cpu_utilization_percentage", "system/system_memory_usage_megabytes",
                "system/system_memory_usage_percentage", "system/disk_usage_percentage",
                "system/network_receive_megabytes", "system/network_transmit_megabytes"):
        assert key in back.metrics, key
    cpu = back.metric_history("system/cpu_utilization_percentage")
    assert len(cpu) >= 4
    assert [step for step, _, _ in cpu] == list(range(len(cpu)))
    assert all(0 <= value <= 100 for _, _, value in cpu)
    assert 0 < back.metrics["system/system_memory_usage_percentage"] <= 100
    assert back.metrics["loss"] == 1.0
    history = labbook.get_metric_history(run.id, "system/system_memory_usage_megabytes")
    assert len(history) == len(cpu)
    # nothing more is logged after the end
    time.sleep(0.2)
    assert len(labbook.get_run(run.id).metric_history("system/cpu_utilization_percentage")) == len(cpu)


def test_off_by_default_and_on_by_git_config(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with labbook.start_run(name="plain") as plain:
        assert not samplers()
    assert not any(k.startswith("system/") for k in labbook.get_run(plain.id).metrics)

    git(repo, "config", "labbook.systemMetrics", "true")
    git(repo, "config", "labbook.systemMetricsInterval", "30")
    labbook.set_repository(repo)  # settings are read when the repository is opened
    with labbook.start_run(name="by-setting") as run:
        assert samplers()
    assert not samplers()
    # the first sample is taken at once; the next would be 30 s later
    assert len(labbook.get_run(run.id).metric_history("system/cpu_utilization_percentage")) == 1

    with labbook.start_run(name="argument-wins", log_system_metrics=False):
        assert not samplers()


def test_a_bad_setting_is_named_and_no_run_starts(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LABBOOK_SYSTEM_METRICS_INTERVAL", "soon")
    with pytest.raises(labbook.InvalidValue, match="LABBOOK_SYSTEM_METRICS_INTERVAL = 'soon'"):
        labbook.start_run(log_system_metrics=True)
    monkeypatch.setenv("LABBOOK_SYSTEM_METRICS_INTERVAL", "-1")
    with pytest.raises(labbook.InvalidValue, match="more than 0"):
        labbook.start_run(log_system_metrics=True)
    monkeypatch.delenv("LABBOOK_SYSTEM_METRICS_INTERVAL")
    monkeypatch.setenv("LABBOOK_SYSTEM_METRICS", "maybe")
    with pytest.raises(labbook.InvalidValue, match="not true or false"):
        labbook.start_run()
    assert labbook.active_run() is None
    assert labbook.search_runs().empty


def test_a_failed_run_stops_its_sampler_too(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LABBOOK_SYSTEM_METRICS_INTERVAL", "0.05")
    with pytest.raises(RuntimeError), labbook.start_run(name="boom", log_system_metrics=True) as run:
        time.sleep(0.15)
        raise RuntimeError("diverged")
    assert not samplers()
    back = labbook.get_run(run.id)
    assert back.status == "FAILED"
    assert back.metric_history("system/cpu_utilization_percentage")


def test_without_psutil_the_run_goes_on_and_says_what_to_install(
        repo: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setitem(sys.modules, "psutil", None)  # import psutil now raises ImportError
    with labbook.start_run(name="no-psutil", log_system_metrics=True) as run:
        labbook.log_metric("loss", 0.5)
        assert not samplers()
    assert "labbook[system]" in caplog.text
    assert labbook.get_run(run.id).metrics == {"loss": 0.5}


def test_no_gpu_is_skipped_cleanly(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LABBOOK_SYSTEM_METRICS_INTERVAL", "0.05")
    with labbook.start_run(name="cpu-only", log_system_metrics=True) as run:
        time.sleep(0.1)
    assert not any(k.startswith("system/gpu") for k in labbook.get_run(run.id).metrics)


def test_the_mlflow_drop_in_samples_too(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import labbook.mlflow as mlflow

    monkeypatch.setenv("LABBOOK_SYSTEM_METRICS_INTERVAL", "0.05")
    with mlflow.start_run(run_name="dropin", log_system_metrics=True) as active:
        time.sleep(0.15)
    assert not samplers()
    client = mlflow.MlflowClient()
    history = client.get_metric_history(active.info.run_id, "system/cpu_utilization_percentage")
    assert len(history) >= 2
