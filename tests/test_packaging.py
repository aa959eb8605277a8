"""The package as a user installs it: a wheel with the module, the console script, the docs."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path
from unittest import mock

from click.testing import CliRunner

from labbook import cli as cli_module
from labbook.cli import cli

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_installs_and_its_labbook_command_runs(tmp_path: Path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path),
                    str(ROOT)], check=True, capture_output=True)
    wheel = next(tmp_path.glob("labbook-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "labbook/py.typed" in names and "labbook/tracking.py" in names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "labbook = labbook.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target",
                    str(target), str(wheel)], check=True, capture_output=True)
    env = dict(os.environ, PYTHONPATH=str(target))
    proc = subprocess.run([sys.executable, "-m", "labbook", "--version"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "labbook, version 0.1.0"


def test_init_command_is_a_thin_adapter():
    with mock.patch.object(cli_module.tracking, "init", autospec=True, return_value=True) as init:
        result = CliRunner().invoke(cli, ["init"])
    init.assert_called_once_with()
    assert result.output == "created the experiments branch\n"


def test_recover_command_is_a_thin_adapter():
    with mock.patch.object(cli_module.tracking, "recover", autospec=True, return_value=[]) as rec:
        result = CliRunner().invoke(cli, ["recover"])
    rec.assert_called_once_with()
    assert result.output == "no runs to recover\n"


def _imports(module: Path) -> set[str]:
    import ast
    found = set()
    for node in ast.walk(ast.parse(module.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            found.add((node.module or "").split(".")[0])
            found.update(a.name for a in node.names if not node.module)
    return found


def test_layers_import_only_what_they_may():
    modules = {p.stem: _imports(p) for p in (ROOT / "labbook").glob("*.py")}
    assert {m for m, deps in modules.items() if "gitcmd" in deps} <= {"store", "repository",
                                                                      "provenance"}
    assert [m for m, deps in modules.items() if "cli" in deps] == ["__main__"]
    low_layers = {"gitcmd", "store", "yamlio", "journal", "cache", "catalog"}
    assert not modules["cli"] & low_layers, "the CLI calls the library, never git or YAML itself"
    assert "repository" not in modules["display"] and "gitcmd" not in modules["display"]
    assert {m for m, deps in modules.items() if "yamlio" in deps} == {"record"}


def test_logging_and_plain_commands_do_not_load_pandas():
    code = ("import sys, labbook, labbook.cli\n"
            "assert 'pandas' not in sys.modules, 'pandas was imported'\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_cli_formats_match_the_renderer():
    from labbook import display
    assert cli_module.TABLE_FORMATS == display.FORMATS
