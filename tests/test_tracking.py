"""The tracking API as a user drives it, checked with plain git on the branch."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import labbook
from conftest import git, run_ids, user_state


def test_issue_example_records_one_commit_per_event(repo: Path):
    (repo / "plots").mkdir()
    (repo / "plots" / "residuals.png").write_bytes(b"\x89PNG fake image bytes")
    before = user_state(repo)

    labbook.set_experiment("diabetes", description="Can a linear model beat the mean baseline?")
    with labbook.start_run(name="ridge-a0.9", hypothesis="Stronger L2 reduces test MSE") as run:
        labbook.log_params({"alpha": 0.9, "solver": "cholesky", "model": {"kind": "ridge"}})
        for epoch in range(100):
            labbook.log_metric("loss", 1.0 / (epoch + 1), step=epoch)
        labbook.log_metrics({"mse": 3012.5, "r2": 0.44})
        labbook.log_artifact("plots/residuals.png")
        labbook.note("Residuals fan out above 250 — heteroscedastic?")
        run.conclude("refuted", "MSE went up 4% against alpha=0.1")

    subjects = git(repo, "log", "--format=%s", "experiments").splitlines()
    assert subjects[:4] == [
        "end ridge-a0.9: FINISHED (loss=0.01, mse=3012.5, r2=0.44)",
        "conclude ridge-a0.9: refuted — MSE went up 4% against alpha=0.1",
        "note on ridge-a0.9: Residuals fan out above 250 — heteroscedastic?",
        "start ridge-a0.9 in diabetes: Stronger L2 reduces test MSE",
    ]
    assert user_state(repo) == before

    rid = run.id
    raw = yaml.safe_load(git(repo, "show", f"experiments:runs/{rid[:2]}/{rid}/run.yaml"))
    assert raw["status"] == "FINISHED"
    assert raw["params"] == {"alpha": 0.9, "solver": "cholesky", "model.kind": "ridge"}
    assert raw["metrics"]["loss"]["last"] == 0.01 and raw["metrics"]["loss"]["count"] == 100
    assert raw["conclusion"]["verdict"] == "refuted"
    assert raw["notes"][0]["author"] == "Ada Tester"
    assert raw["code"]["commit"] == git(repo, "rev-parse", "HEAD").strip()
    history = git(repo, "show", f"experiments:runs/{rid[:2]}/{rid}/metrics.tsv").splitlines()
    assert history[0] == "key\tstep\ttimestamp\tvalue" and len(history) == 1 + 100 + 2
    png = subprocess.run(
        ["git", "-C", str(repo), "show", f"experiments:runs/{rid[:2]}/{rid}/artifacts/plots/residuals.png"],
        capture_output=True, check=True).stdout
    assert png == b"\x89PNG fake image bytes"


def test_get_run_by_id_prefix_and_name(repo: Path):
    with labbook.start_run(name="baseline") as run:
        labbook.log_param("model", "mean")
    for key in (run.id, run.id[:6], "baseline"):
        found = labbook.get_run(key)
        assert found.id == run.id and found.params == {"model": "mean"}
    with pytest.raises(labbook.RunNotFound, match="at least 4"):
        labbook.get_run("ab")


def test_ambiguous_name_lists_candidates(repo: Path):
    for _ in range(2):
        with labbook.start_run(name="twin"):
            pass
    with pytest.raises(labbook.AmbiguousRun, match="2 runs are named 'twin'"):
        labbook.get_run("twin")


def test_nested_runs_record_their_parent(repo: Path):
    with labbook.start_run(name="sweep") as parent:
        for alpha in (0.1, 1.0):
            with labbook.start_run(name=f"alpha-{alpha}", nested=True) as child:
                labbook.log_param("alpha", alpha)
            assert labbook.active_run() is parent
    assert labbook.get_run(child.id).record.parent == parent.id
    assert labbook.active_run() is None


def test_starting_a_second_run_without_nested_is_refused(repo: Path):
    with labbook.start_run(name="outer"), pytest.raises(labbook.InvalidValue, match="nested=True"):
        labbook.start_run(name="inner")


def test_exception_inside_with_ends_the_run_failed(repo: Path):
    with pytest.raises(ZeroDivisionError), labbook.start_run(name="broken") as run:
        labbook.log_metric("loss", 0.5)
        1 / 0  # noqa: B018
    stored = labbook.get_run(run.id)
    assert stored.status == "FAILED"
    assert stored.record.error == "ZeroDivisionError: division by zero"
    assert stored.metrics == {"loss": 0.5}


def test_ctrl_c_inside_with_ends_the_run_killed(repo: Path):
    with pytest.raises(KeyboardInterrupt), labbook.start_run(name="stopped") as run:
        raise KeyboardInterrupt
    assert labbook.get_run(run.id).status == "KILLED"


def test_resume_by_run_id_adds_values(repo: Path):
    with labbook.start_run(name="long") as run:
        labbook.log_metric("loss", 1.0, step=0)
    with labbook.start_run(run_id=run.id[:8]):
        labbook.log_metric("loss", 0.5, step=1)
        labbook.log_metric("r2", 0.44)
    stored = labbook.get_run(run.id)
    assert stored.status == "FINISHED"
    assert stored.metric_history("loss") == [(0, stored.metric_history("loss")[0][1], 1.0),
                                              (1, stored.metric_history("loss")[1][1], 0.5)]
    assert stored.metrics == {"loss": 0.5, "r2": 0.44}
    assert run_ids(repo) == [run.id]


def test_default_steps_count_up_per_key(repo: Path):
    with labbook.start_run() as run:
        for value in (3.0, 2.0, 1.0):
            labbook.log_metric("loss", value)
        labbook.log_metrics({"acc": 0.5})
        labbook.log_metrics({"acc": 0.6})
    stored = labbook.get_run(run.id)
    assert [s for s, _, _ in stored.metric_history("loss")] == [0, 1, 2]
    assert [s for s, _, _ in stored.metric_history("acc")] == [0, 1]


def test_nan_and_inf_metrics_come_back_as_floats(repo: Path):
    with labbook.start_run() as run:
        labbook.log_metric("a", float("nan"))
        labbook.log_metric("b", float("inf"))
        labbook.log_metric("c", float("-inf"))
    metrics = labbook.get_run(run.id).metrics
    assert math.isnan(metrics["a"]) and metrics["b"] == math.inf and metrics["c"] == -math.inf


def test_numpy_values_are_accepted(repo: Path):
    np = pytest.importorskip("numpy")
    with labbook.start_run() as run:
        labbook.log_params({"n": np.int64(3), "lr": np.float32(0.5), "flag": np.bool_(True)})
        labbook.log_metric("loss", np.float64(0.25))
        labbook.log_metric("acc", np.array(0.75))
    stored = labbook.get_run(run.id)
    assert stored.params == {"n": 3, "lr": 0.5, "flag": True}
    assert stored.metrics == {"loss": 0.25, "acc": 0.75}


def test_process_exiting_with_a_run_open_ends_it_finished(repo: Path):
    code = ("import labbook\n"
            "run = labbook.start_run(name='forgotten')\n"
            "labbook.log_metric('loss', 0.1)\n"
            "print(run.id)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=repo, capture_output=True, text=True,
                         check=True).stdout.strip()
    stored = labbook.get_run(out)
    assert stored.status == "FINISHED" and stored.metrics == {"loss": 0.1}


def test_uncaught_exception_outside_with_ends_the_run_failed(repo: Path):
    code = ("import labbook\n"
            "run = labbook.start_run(name='crashy')\n"
            "print(run.id, flush=True)\n"
            "raise RuntimeError('out of memory on GPU 0')\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=repo, capture_output=True, text=True)
    assert proc.returncode == 1 and "RuntimeError" in proc.stderr
    stored = labbook.get_run(proc.stdout.strip())
    assert stored.status == "FAILED"
    assert stored.record.error == "RuntimeError: out of memory on GPU 0"


def test_experiment_file_is_written_once_and_updated_on_new_description(repo: Path):
    labbook.set_experiment("diabetes")
    labbook.set_experiment("diabetes")
    labbook.set_experiment("diabetes", description="Can a linear model beat the mean?")
    raw = yaml.safe_load(git(repo, "show", "experiments:experiments/diabetes.yaml"))
    assert raw["name"] == "diabetes"
    assert raw["description"] == "Can a linear model beat the mean?"
    log = git(repo, "log", "--format=%s", "experiments", "--", "experiments/diabetes.yaml")
    assert len(log.splitlines()) == 2


def test_experiment_names_with_odd_characters_get_safe_unique_files(repo: Path):
    labbook.set_experiment("/mlflow_sdk_test")
    labbook.set_experiment("A b")
    labbook.set_experiment("a-b")
    files = git(repo, "ls-tree", "--name-only", "experiments", "experiments/").split()
    assert len(files) == 3
    assert all("/" not in f.removeprefix("experiments/") for f in files)


def test_experiment_commits_say_create_then_describe(repo: Path):
    labbook.set_experiment("diabetes", description="first question")
    labbook.set_experiment("diabetes", description="better question")
    subjects = git(repo, "log", "--format=%s", "experiments").splitlines()
    assert subjects[:2] == ["experiment diabetes: describe — better question",
                            "experiment diabetes: create — first question"]


def test_artifact_names_do_not_depend_on_the_current_directory(repo: Path, tmp_path: Path):
    outside = tmp_path / "scratch" / "predictions.csv"
    outside.parent.mkdir()
    outside.write_text("y\n1\n")
    inside = repo / "plots" / "a.png"
    inside.parent.mkdir()
    inside.write_bytes(b"png")
    with labbook.start_run() as run:
        labbook.log_artifact(outside)
        labbook.log_artifact(inside)
        labbook.log_artifact("plots/a.png", artifact_path="figures")
        labbook.log_artifact("plots/a.png")
    assert sorted(a.path for a in run.artifacts) == ["a.png", "figures/a.png", "plots/a.png",
                                                     "predictions.csv"]


def test_threads_logging_without_steps_never_share_a_step(repo: Path):
    import threading
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: races show up
    try:
        with labbook.start_run(name="threads") as run:
            def work():  # a thread starts with no active run: it resumes this one by id
                with labbook.start_run(run_id=run.id):
                    for _ in range(400):
                        labbook.log_metrics({"x": 1.0})
                        labbook.log_metric("x", 2.0)
            threads = [threading.Thread(target=work) for _ in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
    finally:
        sys.setswitchinterval(old)
    steps = list(labbook.get_metric_history(run.id, "x")["step"])
    assert sorted(steps) == list(range(3200))
