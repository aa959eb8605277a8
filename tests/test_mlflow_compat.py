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
LABBOOK_ONLY = {"tags.mlflow.source.git.commit", "tags.mlflow.source.git.branch"}


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


def rows_by_name(result: dict) -> dict[str, dict]:
    frame = result["frame"]
    rows = [dict(zip(frame["columns"], values, strict=True)) for values in frame["data"]]
    names = {row["run_id"]: row["tags.mlflow.runName"] for row in rows}
    out = {}
    for row in rows:
        parent = row.get("tags.mlflow.parentRunId")
        row["parent_name"] = names.get(parent) if parent else None
        out[row["tags.mlflow.runName"]] = row
    return out


def same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9) or (math.isnan(a) and math.isnan(b))
    return a == b


@pytest.mark.parametrize("script", ["nested_example.py", "compare_models.py", "sweep.py", "resume.py"])
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

    their_rows, our_rows = rows_by_name(theirs), rows_by_name(ours)
    assert sorted(their_rows) == sorted(our_rows)
    for name, theirs_row in their_rows.items():
        ours_row = our_rows[name]
        assert ours_row["status"] == theirs_row["status"]
        assert ours_row["parent_name"] == theirs_row["parent_name"]
        for column in their_cols - OWN_VALUES - {"tags.mlflow.parentRunId"}:
            if column.startswith(("params.", "metrics.", "tags.")):
                assert same(ours_row[column], theirs_row[column]), (name, column)
    # the order search_runs gives (newest first), by name
    assert [r[-1] for r in _names_in_order(ours)] == [r[-1] for r in _names_in_order(theirs)]


def _names_in_order(result: dict) -> list[tuple[str]]:
    index = result["frame"]["columns"].index("tags.mlflow.runName")
    return [(row[index],) for row in result["frame"]["data"]]
