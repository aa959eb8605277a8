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


# The floors of the house, from the ground up: a module may import its own floor and the
# floors below it, never one above. docs/ARCHITECTURE.md draws the same picture.
FLOORS = [
    {"errors"},
    {"storage"},
    {"format"},
    {"runs"},
    {"reading"},
    {"sharing"},
    {"site"},
    {"tracking", "autolog", "jupyter", "importers"},
    {"integrations", "mlflow"},
    {"cli"},
    {"__main__", "__init__"},
]
FLOOR = {room: level for level, rooms in enumerate(FLOORS) for room in rooms}
# Imports that still climb a floor, each a debt to pay, never a rule to copy.
CLIMBING: set[tuple[str, str]] = {("labbook.runs.run", "jupyter")}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _labbook_imports(path: Path) -> set[str]:
    """Every labbook module or name `path` imports, relative imports resolved, lazy ones too."""
    import ast
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "labbook")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            if module.split(".")[0] != "labbook":
                continue
            if module != "labbook":  # `from labbook import x` imports x, not the package face
                found.add(module)
            found.update(f"{module}.{a.name}" for a in node.names)
    return found


def _room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _house() -> dict[str, set[str]]:
    return {_module_name(p): _labbook_imports(p) for p in (ROOT / "labbook").rglob("*.py")}


def test_every_module_stands_on_a_floor():
    rooms = {_room(m) for m in _house()}
    assert rooms <= set(FLOOR), f"modules on no floor: {sorted(rooms - set(FLOOR))}"


def test_no_import_climbs_a_floor():
    climbing = set()
    for module, imports in _house().items():
        for target in imports:
            room = _room(target)
            if room in FLOOR and FLOOR[room] > FLOOR[_room(module)]:
                climbing.add((module, room))
    assert climbing == CLIMBING


def test_layers_import_only_what_they_may():
    house = _house()

    def importers_of(target: str) -> set[str]:
        return {m for m, deps in house.items() if any(d == target or d.startswith(target + ".")
                                                     for d in deps)}

    assert importers_of("labbook.storage.gitcmd") <= {
        "labbook.storage.store", "labbook.storage", "labbook.runs.repository",
        "labbook.runs.provenance"}
    assert importers_of("labbook.cli") == {"labbook.__main__"}
    low = ("labbook.storage", "labbook.format.yamlio", "labbook.reading.cache",
           "labbook.reading.catalog")
    assert not {d for d in house["labbook.cli"] if d.startswith(low)}, \
        "the CLI calls the library, never git or YAML itself"
    assert not {d for d in house["labbook.reading.display"]
                if d.startswith(("labbook.runs.repository", "labbook.storage"))}
    # site.build reading environments/*.yaml itself is a debt of the one read model
    assert importers_of("labbook.format.yamlio") <= {"labbook.format.record", "labbook.site.build"}


def test_logging_and_plain_commands_do_not_load_pandas():
    code = ("import sys, labbook, labbook.cli\n"
            "assert 'pandas' not in sys.modules, 'pandas was imported'\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_cli_formats_match_the_renderer():
    from labbook.reading import display
    assert cli_module.TABLE_FORMATS == display.FORMATS
