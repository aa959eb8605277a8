"""labbook.mlflow against MLflow itself: the same scripts, compared DataFrame to DataFrame.

Each script in tests/mlflow_scripts/ runs twice in a child process (tests/mlflow_scripts/
harness.py): with ``import mlflow`` on MLflow's sqlite store, and with
``import labbook.mlflow as mlflow`` in a git repository. MLflow comes from this interpreter
when it is installed (the ``test`` extra has it), else from benchmarks/.venv-mlflow; with
neither, these tests are skipped.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, git

SCRIPTS = ROOT / "tests" / "mlflow_scripts"
HARNESS = SCRIPTS / "harness.py"
# MLflow sets these from its own environment; labbook derives them from the record.
OWN_VALUES = {"tags.mlflow.user", "tags.mlflow.source.git.commit", "tags.mlflow.source.git.branch",
              "tags.mlflow.source.name"}
# MLflow sets these only for a script inside a git checkout; labbook always knows the code commit
# Tags MLflow derives from the checkout the script sits in (a clone with an origin remote
# gets repoURL; a copy without one does not): not part of what the scripts logged.
FROM_MLFLOWS_ENVIRONMENT = {"tags.mlflow.source.git.repoURL"}
LABBOOK_ONLY = {"tags.mlflow.source.git.commit", "tags.mlflow.source.git.branch",
                "tags.mlflow.user"}  # labbook records who made a run, also by MlflowClient.create_run


def mlflow_python() -> str | None:
    if importlib.util.find_spec("mlflow") is not None:
        return sys.executable
    venv = ROOT / "benchmarks" / ".venv-mlflow" / "bin" / "python"
    return str(venv) if venv.exists() else None


pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(mlflow_python() is None, reason="MLflow is not installed")]


def run_script(flavor: str, script: str, where: Path) -> dict:
    where.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "LABBOOK_"))}
    python = sys.executable
    if flavor == "mlflow":
        python = mlflow_python() or sys.executable
        env["MLFLOW_TRACKING_URI"] = f"sqlite:///{where / 'mlflow.db'}"
    else:
        git(where, "init", "-q")
        git(where, "commit", "-q", "--allow-empty", "-m", "first")
        env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.run([python, str(HARNESS), flavor, str(SCRIPTS / script)], cwd=where, env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def rows_by_key(result: dict, by_name: bool) -> dict[object, dict]:
    """Rows keyed by run name, or (where MLflow names runs at random: autolog, unnamed runs)
    by what they logged: their params and estimator, and their parent's key."""
    frame = result["frame"]
    rows = [dict(zip(frame["columns"], values, strict=True)) for values in frame["data"]]
    by_id = {row["run_id"]: row for row in rows}

    def key(row: dict) -> object:
        if by_name:
            return row["tags.mlflow.runName"]
        parent = by_id.get(row.get("tags.mlflow.parentRunId") or "")
        logged = tuple(sorted((c, str(v)) for c, v in row.items()
                              if c.startswith("params.") and v is not None))
        return (key(parent) if parent else None, row.get("tags.estimator_name"), logged)

    out = {}
    for row in rows:
        parent = by_id.get(row.get("tags.mlflow.parentRunId") or "")
        row["parent_key"] = key(parent) if parent else None
        out[key(row)] = row
    return out


def same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9) or (math.isnan(a) and math.isnan(b))
    return a == b


# MLflow's own examples and tutorials (written again after them, see each script's first lines)
# and labbook's scenarios; each runs unchanged but for its import lines.
SCRIPT_NAMES = ["nested_example.py", "compare_models.py", "sweep.py", "resume.py",
                "elasticnet_wine.py", "autolog_linear.py", "autolog_grid_search.py",
                "autolog_pipeline.py", "quickstart.py", "thread_pool.py", "client_tutorial.py"]
# Times a search took (cv_results_), different on every run.
TIMINGS = {"metrics.mean_fit_time", "metrics.std_fit_time", "metrics.mean_score_time",
           "metrics.std_score_time"}


@pytest.mark.parametrize("script", SCRIPT_NAMES)
def test_same_dataframe_as_mlflow(script: str, tmp_path: Path) -> None:
    theirs = run_script("mlflow", script, tmp_path / "mlflow")
    ours = run_script("labbook", script, tmp_path / "labbook")

    their_cols, our_cols = set(theirs["frame"]["columns"]), set(ours["frame"]["columns"])
    their_cols -= FROM_MLFLOWS_ENVIRONMENT  # present or not depending on where the checkout is
    assert their_cols - our_cols == set()
    assert our_cols - their_cols <= LABBOOK_ONLY
    assert theirs["extra"] == ours["extra"]
    for column in their_cols:
        if column.startswith(("params.", "tags.")) or column in ("run_id", "status"):
            assert ours["dtypes"][column] == theirs["dtypes"][column], column
        if column.startswith("metrics."):
            assert ours["dtypes"][column] == theirs["dtypes"][column] == "float64"

    by_name = sorted(_names(theirs)) == sorted(_names(ours))
    their_rows, our_rows = rows_by_key(theirs, by_name), rows_by_key(ours, by_name)
    assert sorted(their_rows, key=repr) == sorted(our_rows, key=repr)
    for key, theirs_row in their_rows.items():
        ours_row = our_rows[key]
        assert ours_row["status"] == theirs_row["status"]
        assert ours_row["parent_key"] == theirs_row["parent_key"]
        for column in their_cols - OWN_VALUES - TIMINGS - {"tags.mlflow.parentRunId",
                                                            "tags.mlflow.runName"}:
            if column.startswith(("params.", "metrics.", "tags.")):
                assert same(ours_row[column], theirs_row[column]), (key, column)
        if by_name:
            assert ours_row["tags.mlflow.runName"] == theirs_row["tags.mlflow.runName"]
    if by_name and script != "thread_pool.py":  # threads start their runs in any order
        assert _names(ours) == _names(theirs)  # the order search_runs gives (newest first)


def _names(result: dict) -> list[str]:
    index = result["frame"]["columns"].index("tags.mlflow.runName")
    return [row[index] for row in result["frame"]["data"]]
