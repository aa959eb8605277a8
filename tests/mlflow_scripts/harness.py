"""Run one compat script with MLflow or with labbook.mlflow; the last stdout line is JSON.

    python harness.py mlflow|labbook SCRIPT

The script's import lines are the only thing changed for labbook (see ``as_labbook``). Where runs go
comes from the environment: MLFLOW_TRACKING_URI for MLflow, the working directory (a git
repository) for labbook. Used by tests/test_mlflow_compat.py and benchmarks/bench_mlflow_compat.py.
"""

import contextlib
import importlib
import json
import re
import sys
import time
from pathlib import Path


def as_labbook(source: str) -> str:
    """Only the import lines change: ``import mlflow`` → ``import labbook.mlflow as mlflow``,
    ``import mlflow.sklearn`` → ``import labbook.mlflow.sklearn``, ``from mlflow.x import y``
    → ``from labbook.mlflow.x import y``."""
    source = re.sub(r"^import mlflow$", "import labbook.mlflow as mlflow", source, flags=re.M)
    source = re.sub(r"^import mlflow\.([\w.]+)$", r"import labbook.mlflow.\1", source, flags=re.M)
    return re.sub(r"^from mlflow(\.[\w.]+)? import", r"from labbook.mlflow\1 import", source, flags=re.M)


def main() -> None:
    flavor, script = sys.argv[1], Path(sys.argv[2]).resolve()
    source = script.read_text()
    module = "mlflow"
    if flavor == "labbook":
        source = as_labbook(source)
        module = "labbook.mlflow"
    out = sys.stdout
    with contextlib.redirect_stdout(sys.stderr):
        began = time.perf_counter()
        mlflow = importlib.import_module(module)
        imported = time.perf_counter()
        sys.argv = [str(script)]
        namespace = {"__name__": "__main__", "__file__": str(script)}
        exec(compile(source, str(script), "exec"), namespace)
        done = time.perf_counter()
        frame = mlflow.search_runs(search_all_experiments=True)
    result = {"frame": json.loads(frame.to_json(orient="split", date_format="iso")),
              "dtypes": {c: str(t) for c, t in frame.dtypes.items()},
              "extra": namespace.get("EXTRA"), "import_seconds": imported - began,
              "seconds": done - imported}
    out.write(json.dumps(result, default=str) + "\n")


if __name__ == "__main__":
    main()
