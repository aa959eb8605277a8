"""Wall time of the MLflow compat scripts under MLflow and under labbook.mlflow.

    python benchmarks/bench_mlflow_compat.py [--repeat 5]
    python benchmarks/bench_mlflow_compat.py --quick       # each script twice per side

Each script (tests/mlflow_scripts/) runs --repeat times per side in a fresh store; prints
the median of the whole process (interpreter start, import, script, one search_runs) and
of the script alone. MLflow runs with benchmarks/.venv-mlflow (made if missing); git runs
with the benchmark's own git config. The table also goes to benchmarks/results/
mlflow_compat.md and .json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "tests" / "mlflow_scripts"
NAMES = ["nested_example.py", "compare_models.py", "sweep.py", "resume.py"]
sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_logging import DEFAULT_VENV, clean_env, ensure_mlflow, machine_info  # noqa: E402
from resultfile import row, write  # noqa: E402


def once(flavor: str, script: str, base_env: dict[str, str], mlflow_python: str) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(base_env)
        python = sys.executable
        if flavor == "mlflow":
            python = mlflow_python
            env["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp}/mlflow.db"
        else:
            for args in (["init", "-q"], ["-c", "user.name=bench", "-c", "user.email=b@example.com",
                                          "commit", "-q", "--allow-empty", "-m", "first"]):
                subprocess.run(["git", "-C", tmp, *args], env=env, check=True)
            env["PYTHONPATH"] = str(ROOT)
            env.setdefault("GIT_AUTHOR_NAME", "bench")
        began = time.perf_counter()
        proc = subprocess.run([python, str(SCRIPTS / "harness.py"), flavor, str(SCRIPTS / script)],
                              cwd=tmp, env=env, capture_output=True, text=True, check=True)
        total = time.perf_counter() - began
        return total, json.loads(proc.stdout.strip().splitlines()[-1])["seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, help="runs of each script per side (default 5)")
    parser.add_argument("--quick", action="store_true", help="each script twice per side")
    args = parser.parse_args()
    repeat = args.repeat or (2 if args.quick else 5)
    mlflow_python = str(ensure_mlflow(DEFAULT_VENV, "mlflow"))
    with tempfile.TemporaryDirectory() as home:
        config = Path(home, "gitconfig")
        config.write_text("[user]\n\tname = bench\n\temail = bench@localhost\n"
                          "[init]\n\tdefaultBranch = main\n[gc]\n\tauto = 0\n")
        env = clean_env(config)
        print(f"{'script':<20} {'side':<8} {'process s':>10} {'script s':>9}")
        medians: dict[tuple[str, str], tuple[float, float]] = {}
        for script in NAMES:
            for flavor in ("mlflow", "labbook"):
                times = [once(flavor, script, env, mlflow_python) for _ in range(repeat)]
                medians[script, flavor] = (statistics.median(t for t, _ in times),
                                           statistics.median(s for _, s in times))
                print(f"{script:<20} {flavor:<8} {medians[script, flavor][0]:>10.2f} "
                      f"{medians[script, flavor][1]:>9.2f}", flush=True)
    report(medians, repeat)


def report(medians: dict[tuple[str, str], tuple[float, float]], repeat: int) -> None:
    lines = ["# MLflow scripts under mlflow and under labbook.mlflow", "",
             f"Wall time in seconds, median of {repeat} per side: the whole process (interpreter "
             "start, import, script, one search_runs) and the script alone.", "",
             "| script | MLflow process | labbook process | MLflow script | labbook script | "
             "labbook / MLflow (process) |", "|---|---:|---:|---:|---:|---:|"]
    rows = []
    for script in NAMES:
        (mp, ms), (lp, ls) = medians[script, "mlflow"], medians[script, "labbook"]
        lines.append(f"| {script} | {mp:.2f} | {lp:.2f} | {ms:.2f} | {ls:.2f} | {lp / mp:.2f} |")
        rows += [row(f"mlflow compat, {script}: MLflow whole process", mp, "s"),
                 row(f"mlflow compat, {script}: labbook.mlflow whole process", lp, "s"),
                 row(f"mlflow compat, {script}: MLflow script alone", ms, "s"),
                 row(f"mlflow compat, {script}: labbook.mlflow script alone", ls, "s")]
    text = "\n".join(lines) + "\n"
    print()
    print(text)
    write("mlflow_compat", text, rows, machine_info())


if __name__ == "__main__":
    main()
