"""Bad input: a LabbookError naming the value and what is allowed, nothing half-written."""

from __future__ import annotations

from pathlib import Path

import pytest

import labbook
from conftest import git


@pytest.mark.parametrize("key, message", [
    ("", "has 0 characters"),
    ("x" * 251, "has 251 characters; allowed: 1 to 250"),
    ("bad\nkey", "control character"),
    ("tab\tkey", "control character"),
    (" padded", "white space"),
    (3, "is a int"),
])
def test_bad_metric_keys(repo: Path, key, message):
    with labbook.start_run(), pytest.raises(labbook.InvalidValue, match=message):
        labbook.log_metric(key, 1.0)


@pytest.mark.parametrize("value", ["0.5", None, True, [1.0], {"a": 1}, object()])
def test_non_numeric_metric_values(repo: Path, value):
    with labbook.start_run(), pytest.raises(labbook.InvalidValue, match="allowed: a number"):
        labbook.log_metric("loss", value)


def test_relogging_a_param_with_another_value_is_a_conflict(repo: Path):
    with labbook.start_run() as run:
        labbook.log_param("alpha", 0.1)
        labbook.log_param("alpha", 0.1)  # the same value again is fine
        with pytest.raises(labbook.ParamConflict, match="'alpha' was logged as 0.1.*0.2"):
            labbook.log_param("alpha", 0.2)
    assert labbook.get_run(run.id).params == {"alpha": 0.1}


def test_unsupported_param_type(repo: Path):
    with labbook.start_run(), pytest.raises(labbook.InvalidValue, match="type set"):
        labbook.log_param("ids", {1, 2})


def test_unknown_verdict(repo: Path):
    with labbook.start_run(), pytest.raises(labbook.InvalidValue,
                                            match="'maybe'.*supported, refuted, inconclusive"):
        labbook.conclude("maybe", "hmm")


def test_missing_artifact_file(repo: Path):
    with labbook.start_run(), pytest.raises(labbook.ArtifactError, match="'nope.png' does not exist"):
        labbook.log_artifact("nope.png")


def test_logging_without_a_run(repo: Path):
    with pytest.raises(labbook.NoActiveRun, match="start_run"):
        labbook.log_metric("loss", 1.0)


def test_a_failed_call_leaves_the_record_whole(repo: Path):
    with labbook.start_run() as run:
        labbook.log_metric("loss", 1.0)
        with pytest.raises(labbook.InvalidValue):
            labbook.log_metrics({"good": 1.0, "bad": "x"})
    stored = labbook.get_run(run.id)
    assert stored.metrics == {"loss": 1.0}


def test_cli_error_is_one_line_without_traceback(repo: Path):
    import subprocess
    import sys
    git(repo, "config", "labbook.fsync", "sometimes")
    proc = subprocess.run([sys.executable, "-m", "labbook", "init"], cwd=repo,
                          capture_output=True, text=True)
    assert proc.returncode == 1
    assert proc.stderr == "labbook: error: git config labbook.fsync = 'sometimes' is not true " \
                          "or false\n"
