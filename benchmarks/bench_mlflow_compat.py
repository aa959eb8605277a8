"""Wall time of the MLflow compat scripts under MLflow and under labbook.mlflow.

    python benchmarks/bench_mlflow_compat.py [--repeat 5]

Each script (tests/mlflow_scripts/) runs --repeat times per side in a fresh store; prints
the median of the whole process (interpreter start, import, script, one search_runs) and
of the script alone. MLflow runs with benchmarks/.venv-mlflow (or this interpreter).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "tests" / "mlflow_scripts"
NAMES = ["nested_example.py", "compare_models.py", "sweep.py", "resume.py"]


def mlflow_python() -> str:
    venv = ROOT / "benchmarks" / ".venv-mlflow" / "bin" / "python"
    if venv.exists():
        return str(venv)
    if importlib.util.find_spec("mlflow") is None:
        sys.exit("MLflow is not installed here and benchmarks/.venv-mlflow is missing")
    return sys.executable


def once(flavor: str, script: str) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "LABBOOK_"))}
        python = sys.executable
        if flavor == "mlflow":
            python = mlflow_python()
            env["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp}/mlflow.db"
        else:
            for args in (["init", "-q"], ["-c", "user.name=bench", "-c", "user.email=b@example.com",
                                          "commit", "-q", "--allow-empty", "-m", "first"]):
                subprocess.run(["git", "-C", tmp, *args], check=True)
            env["PYTHONPATH"] = str(ROOT)
            env.setdefault("GIT_AUTHOR_NAME", "bench")
        began = time.perf_counter()
        proc = subprocess.run([python, str(SCRIPTS / "harness.py"), flavor, str(SCRIPTS / script)],
                              cwd=tmp, env=env, capture_output=True, text=True, check=True)
        total = time.perf_counter() - began
        return total, json.loads(proc.stdout.strip().splitlines()[-1])["seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"{'script':<20} {'side':<8} {'process s':>10} {'script s':>9}")
    for script in NAMES:
        for flavor in ("mlflow", "labbook"):
            times = [once(flavor, script) for _ in range(args.repeat)]
            print(f"{script:<20} {flavor:<8} {statistics.median(t for t, _ in times):>10.2f} "
                  f"{statistics.median(s for _, s in times):>9.2f}", flush=True)


if __name__ == "__main__":
    main()
