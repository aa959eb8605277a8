"""The example study (examples/diabetes_study.py) records a whole, readable notebook."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

import labbook

pytest.importorskip("sklearn")

STUDY = Path(__file__).resolve().parent.parent / "examples" / "diabetes_study.py"


def _git(repo: Path, *args: str) -> str:
    proc = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 0, f"git {' '.join(args)} failed: {proc.stderr}"
    return proc.stdout


def _load_study(monkeypatch: pytest.MonkeyPatch):
    """Import examples/diabetes_study.py (examples/ is not a package)."""
    spec = importlib.util.spec_from_file_location("diabetes_study", STUDY)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def code_repo(repo: Path) -> Path:
    """The shared ``repo`` fixture (one commit, isolated git config) plus an untracked file."""
    (repo / "scratch.txt").write_text("not committed\n")
    return repo


def test_diabetes_study_records_a_complete_notebook(code_repo: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    study = _load_study(monkeypatch)
    status_before = _git(code_repo, "status", "--porcelain", "--untracked-files=all")
    head_before = _git(code_repo, "rev-parse", "HEAD")

    recorded = study.run_study(code_repo)

    names = _git(code_repo, "ls-tree", "-r", "--name-only", "experiments").splitlines()
    run_ids = sorted(n.split("/")[2] for n in names if n.endswith("/run.yaml"))
    assert len(run_ids) >= 10
    assert sorted(run_ids) == sorted(i for ids in recorded.values() for i in ids)
    assert sorted(n for n in names if n.startswith("experiments/")) == [
        "experiments/diabetes-linear.yaml", "experiments/diabetes-trees.yaml"]

    runs = {run_id: labbook.get_run(run_id) for run_id in run_ids}
    for run in runs.values():
        rec = run.record
        assert rec.status == "FINISHED", run
        assert rec.hypothesis and rec.hypothesis.strip(), run
        assert rec.conclusion is not None and rec.conclusion.verdict in (
            "supported", "refuted", "inconclusive"), run
        assert rec.conclusion.text.strip(), run
        assert rec.params and rec.notes and rec.artifacts, run
        assert {"mse", "r2", "mae"} <= set(run.metrics), run
        assert "predictions.csv" in {a.path for a in rec.artifacts}, run

    by_name = {run.name: run for run in runs.values()}
    sweep = by_name["ridge-sweep"]
    children = [run for run in runs.values() if run.record.parent == sweep.id]
    assert len(children) >= 3
    assert all(child.name.startswith("ridge-alpha-") for child in children)
    assert all(child.experiment == sweep.experiment for child in children)

    # The verdict follows the numbers: OLS is supported exactly when it beat the baseline.
    baseline, ols = by_name["mean-baseline"], by_name["linear-regression"]
    beat = ols.metrics["mse"] < baseline.metrics["mse"]
    assert (ols.record.conclusion.verdict == "supported") == beat

    # A per-step history: one test-set MSE per boosting stage.
    boosting = by_name["gradient-boosting"]
    stages = boosting.metric_history("test_mse")
    assert [step for step, _, _ in stages] == list(range(1, boosting.params["model.n_estimators"]
                                                         + 1))

    assert _git(code_repo, "status", "--porcelain", "--untracked-files=all") == status_before
    assert _git(code_repo, "rev-parse", "HEAD") == head_before
