"""benchmarks/bench_scale.py at a tiny scale, so the benchmark cannot rot.

The full benchmark (16 clones for minutes, a million runs) is not part of the suite; this
runs every part of it small — 2 clones × 2 runs pushing through a real ``git daemon``,
1,000 runs built with ``git fast-import`` and read back by labbook, runs with artifacts
in a ``file://`` object store — and checks its figures and that it stopped its daemon.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

pytestmark = pytest.mark.slow


def _group_alive(pgid: int) -> list[int]:
    """Processes still in process group ``pgid`` (Linux /proc)."""
    alive = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            alive.append(int(stat.parent.name))
    return alive


def test_bench_scale_runs_at_tiny_scale_and_stops_its_git_daemon(tmp_path: Path):
    results = tmp_path / "results"
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_scale.py"), "--quick",
                           "--results", str(results)], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    raw = json.loads((results / "scale-raw.json").read_text())

    push = raw["push"]
    assert (push["clones"], push["runs_committed"], push["runs_on_remote"], push["runs_lost"]) == (2, 4, 4, 0)
    assert push["pushes_ok"] == 4 and push["attempts"] >= 4 and push["final_pushes_failed"] == 0
    assert _group_alive(push["daemon_pid"]) == []  # the daemon and its forks are gone

    (million,) = raw["million"]
    assert million["size"] == 1000
    assert million["cold"]["all_rows"] == 1001  # the 1,000 synthetic runs and the real one they copy
    assert million["readable"]["ls"] and million["readable"]["show"] and million["readable"]["fsck"]
    assert million["readable"]["fsck_output"] == [
        "checked 1001 runs, 0 artifacts, 1 experiments: no problems"]
    assert len(million["commit"]["run_seconds"]) == 5 and all(w["rows"] > 0 for w in million["warm"])

    artifacts = raw["artifacts"]
    assert artifacts["10"]["locations"] == ["store"] and "artifacts" not in artifacts["10"]["folder"]
    per_pointer = (artifacts["10"]["run_yaml"] - artifacts["0"]["run_yaml"]) / 10
    assert 100 < per_pointer < 300  # a path, a size, a sha256 and a location: no bytes, no URL

    summary = (results / "scale.md").read_text()
    assert "| runs lost | 0 |" in summary and "| 1,000 |" in summary
