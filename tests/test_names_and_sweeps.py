"""Names are the handle people use: reruns share them, sweeps nest them."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

import labbook
from labbook.cli import cli


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), env={"COLUMNS": "80"})
    return result.exit_code, result.output


def test_an_ambiguous_name_lists_the_runs_and_how_to_pick_one(repo: Path):
    labbook.set_experiment("diabetes")
    ids = []
    for status in ("FAILED", "FINISHED", "FINISHED"):
        run = labbook.start_run("rerun")
        labbook.log_metric("loss", 1.0)
        run.end(status)
        ids.append(run.id)
    code, out = invoke("show", "rerun")
    assert code == 1
    lines = out.splitlines()
    assert lines[0] == "labbook: error: 3 runs are named 'rerun', newest first:"
    assert lines[1].split()[:3] == ["rerun~0", ids[2][:8], "diabetes"] and lines[1].endswith("FINISHED")
    assert lines[3].split()[:2] == ["rerun~2", ids[0][:8]] and lines[3].endswith("FAILED")
    assert "rerun@latest for the newest, or rerun~1 for the one before" in lines[-1]
    assert invoke("show", "rerun@latest")[1].startswith(f"rerun  ({ids[2]})")
    assert invoke("show", "rerun~2")[1].startswith(f"rerun  ({ids[0]})")
    code, out = invoke("show", "rerun~3")
    assert code == 1 and "only 3 runs are named 'rerun' (rerun~2 is the oldest)" in out
    assert labbook.get_run("rerun~1").id == ids[1]
    assert invoke("note", "rerun@latest", "the good one")[0] == 0
    assert [n.text for n in labbook.get_run(ids[2]).notes] == ["the good one"]


def test_show_parent_lists_its_children_best_first(repo: Path):
    labbook.set_experiment("sweep")
    with labbook.start_run("grid") as parent:
        for alpha, mse in ((0.1, 3.0), (1.0, 2.0), (10.0, 5.0)):
            with labbook.start_run(f"alpha-{alpha}", nested=True):
                labbook.log_param("alpha", alpha)
                labbook.log_metrics({"val_mse": mse, "lr": 0.1})
    code, out = invoke("show", "grid")
    assert code == 0, out
    tail = out[out.index("children (3), by val_mse"):].splitlines()
    assert [line.split()[1] for line in tail[1:]] == ["alpha-1.0", "alpha-0.1", "alpha-10.0"]
    assert tail[1].split()[-1] == "2"
    labbook.define_metric("val_mse", "max", experiment="sweep")  # say the opposite: the order follows
    tail = invoke("show", parent.id)[1].split("children (3), by val_mse")[1].splitlines()
    assert [line.split()[1] for line in tail[1:]] == ["alpha-10.0", "alpha-0.1", "alpha-1.0"]
