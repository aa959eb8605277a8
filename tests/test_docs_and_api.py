"""Docs kept honest: the format doc names every field, the CLI doc every command."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

from click.testing import CliRunner

import labbook
from labbook.cli import cli
from labbook.format import record

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_format_doc_lists_every_field_the_code_writes():
    text = (DOCS / "FORMAT.md").read_text()
    documented = set(re.findall(r"^\| `([a-z_0-9]+)` \|", text, flags=re.MULTILINE))
    for cls in (record.RunRecord, record.Code, record.Environment, record.MetricSummary,
                record.Note, record.Conclusion, record.Artifact, record.ExperimentRecord):
        for f in fields(cls):
            if f.name not in ("extra", "slug"):
                assert f.name in documented, f"{cls.__name__}.{f.name} is not in docs/FORMAT.md"
    assert "format" in documented and "created_by" in documented


def test_every_command_has_help_and_a_section_in_the_cli_doc():
    text = (DOCS / "cli.md").read_text()
    for name, command in cli.commands.items():
        assert command.help, f"labbook {name} has no help text"
        assert f"## `labbook {name}" in text, f"labbook {name} is not in docs/cli.md"
        result = CliRunner().invoke(cli, [name, "--help"])
        assert result.exit_code == 0


def test_public_api_is_pinned():
    assert sorted(labbook.__all__) == sorted([
        "AmbiguousRun", "ArtifactError", "BranchConflict", "FilterSyntaxError", "FormatError",
        "GitError", "get_metric_history", "list_experiments", "load_history", "search_runs",
        "InvalidValue", "LabbookError", "NoActiveRun", "NotARepository", "ParamConflict", "Run",
        "RunNotFound", "__version__", "active_run", "autolog", "conclude", "define_metric", "end_run",
        "get_run", "init",
        "log_artifact", "log_artifacts", "log_metric", "log_metrics", "log_param", "log_params",
        "note", "recover", "set_experiment", "set_repository", "set_tag", "set_tags",
        "start_run", "AccessDenied", "StorageError", "compare", "show"])
    for name in labbook.__all__:
        assert hasattr(labbook, name)


def test_settings_table_matches_the_code():
    text = (DOCS / "cli.md").read_text()
    for key in ("labbook.branch", "labbook.inlineArtifactBytes", "labbook.artifactStore",
                "labbook.checkpointSeconds", "labbook.lockTimeoutSeconds", "labbook.fsync",
                "labbook.remote", "labbook.remoteArtifactStore"):
        assert f"`{key}`" in text
