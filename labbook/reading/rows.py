"""A run as a row of the runs table: from its plain record, or straight from its values.

:func:`record_row` turns a checked plain record (``record.run_plain_from_yaml``)
into a row. The runs of an experiment share the shape of their run.yaml (see
``fastyaml.project``), so :func:`row_plan` compiles, once per shape, which value of
the document goes to which column, and, from the record's declared shape
(``record.RUN_SHAPE``, through ``record.run_slot_checks``), what each value must pass
for the record to pass ``run_plain_from_yaml``'s checks. A record whose values do not
is read the full way, which names the problem: both paths check one declaration.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from operator import itemgetter
from typing import Any

from ..format import record, schema
from ..format.fastyaml import Slot

# (column, path to the value in the record, value when the path is missing), in the table's order
ATTRIBUTES = (
    ("run_id", ("id",), None), ("run_name", ("name",), None), ("experiment", ("experiment",), None),
    ("status", ("status",), "RUNNING"), ("start_time", ("start_time",), None),
    ("end_time", ("end_time",), None), ("user", ("user",), None), ("parent_run_id", ("parent",), None),
    ("code_commit", ("code", "commit"), None), ("code_dirty", ("code", "dirty"), None),
    ("hypothesis", ("hypothesis",), None), ("verdict", ("conclusion", "verdict"), None),
    ("deleted", ("deleted",), None),
)
# (column prefix, field, the key of each entry's value that is the cell, or None for the value)
GROUPS = (("params.", "params", None), ("metrics.", "metrics", "last"), ("tags.", "tags", None))


def record_row(plain: dict[str, Any]) -> dict[str, Any]:
    """One run as a flat row: attributes, then params.*, metrics.* (last value), tags.*."""
    row = {}
    for column, path, default in ATTRIBUTES:
        node: Any = plain
        for name in path[:-1]:
            node = node.get(name) or {}
        row[column] = node.get(path[-1], default)
    row["deleted"] = bool(row["deleted"])
    for prefix, field, inner in GROUPS:
        for key, value in (plain.get(field) or {}).items():
            row[f"{prefix}{key}"] = value if inner is None else value[inner]
    return row


def row_of_yaml(data: bytes, path: str) -> tuple[Sequence[str], Sequence[Any]]:
    """The columns and cells of run.yaml's row: by the plan of its shape when there is one
    and its values pass, else from the checked plain record (FormatError if it is not one)."""
    projected = record.project_run_yaml(data, row_plan)
    if projected is not None:
        plan, values = projected
        cells = plan.cells(values)
        if cells is not None:
            record.check_run_folder(cells[0], path)  # cells[0] is run_id, as in ATTRIBUTES
            return plan.names, cells
    row = record_row(record.run_plain_from_yaml(data, path))
    return list(row), list(row.values())


class RowPlan:
    """The row of any run.yaml of one shape, from the document's values."""

    def __init__(self, names: list[str], sources: list[int], constants: list[Any],
                 checks: list[tuple[int, tuple[type, ...], Callable[[Any], bool]]],
                 nested: list[tuple[int, Any]]):
        self.names = names  # the row's columns, in record_row's order
        self._pick = itemgetter(*sources)  # from values + constants, the cell of each column
        self._constants = constants
        self._checks = checks  # (value number, types that always pass, what must hold of it)
        self._nested = nested  # (column number, template) of cells that are a list or a mapping
        self._deleted = names.index("deleted")

    def cells(self, values: list[Any]) -> list[Any] | None:
        """The row's cells, or None when the values would not pass the record's checks."""
        for index, types, check in self._checks:
            value = values[index]
            if type(value) not in types and not check(value):
                return None
        cells = list(self._pick(values + self._constants))
        for position, template in self._nested:
            cells[position] = _instantiate(template, values)
        cells[self._deleted] = bool(cells[self._deleted])
        return cells


def _instantiate(template: Any, values: list[Any]) -> Any:
    """A part of a template with the document's values in its slots (new lists and mappings)."""
    if type(template) is Slot:
        return values[template.index]
    if type(template) is dict:
        return {key: _instantiate(item, values) for key, item in template.items()}
    if type(template) is list:
        return [_instantiate(item, values) for item in template]
    return template


def _is_slot(value: Any) -> bool:
    return type(value) is Slot


def row_plan(template: Any) -> RowPlan | None:
    """The plan for run.yaml documents of this template (see ``fastyaml.project``), or None
    for shapes read the full way (a record that never passes the checks)."""
    if type(template) is not dict:
        return None
    found = record.run_slot_checks(template, _is_slot)
    if found is None:
        return None
    checks = [(index, schema.passing_types(shape), schema.predicate(shape)) for index, shape, _ in found]
    metrics = template.get("metrics")
    if type(metrics) is dict and any(type(s) is not dict for s in metrics.values()):
        return None  # a summary that is one value (a slot): read the full way, which says why
    names: list[str] = []
    cells: list[Any] = []
    for column, path, default in ATTRIBUTES:
        node = template
        for name in path[:-1]:
            node = node.get(name) if type(node) is dict else None  # a value here is None or {}
        names.append(column)
        cells.append(node.get(path[-1], default) if type(node) is dict else default)
    for prefix, field, inner in GROUPS:
        group = template.get(field)
        for key, value in group.items() if type(group) is dict else ():
            names.append(f"{prefix}{key}")
            cells.append(value if inner is None else value[inner])
    if len(set(names)) != len(names):  # keys such as 1 and "1": one column, as record_row makes it
        return None
    nested = [(position, cell) for position, cell in enumerate(cells) if type(cell) in (dict, list)]
    for position, _ in nested:
        cells[position] = None  # a placeholder: the cell is built from the values each time
    constants = [cell for cell in cells if type(cell) is not Slot]
    sources, behind = [], len(constants)
    for cell in cells:  # the number of a constant counts back from the end of values + constants
        if type(cell) is Slot:
            sources.append(cell.index)
        else:
            sources.append(-behind)
            behind -= 1
    return RowPlan(names, sources, constants, checks, nested)
