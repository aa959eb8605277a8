"""Where a benchmark leaves its figures: results/<name>.md and results/<name>.json.

The JSON is what run_all.py reads for its summary::

    {"machine": machine_info(),
     "rows": [{"figure": str, "value": float, "unit": str, "target": str | None, "met": bool | None}]}

A row with a target is a headline: the summary lists it with met yes/no.
Standard library only (bench_concurrency's MLflow workers import it too).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


def row(figure: str, value: float, unit: str, target: str | None = None,
        met: bool | None = None) -> dict[str, Any]:
    """One figure; ``value`` NaN (not measured) is written as null."""
    number = float(value)
    return {"figure": figure, "value": None if math.isnan(number) else number, "unit": unit,
            "target": target, "met": met}


def write(name: str, markdown: str, rows: list[dict[str, Any]],
          machine: dict[str, str] | None = None, folder: Path = RESULTS) -> Path:
    """Write <name>.md and <name>.json under ``folder``; return the JSON's path."""
    if machine is None:
        from bench_logging import machine_info

        machine = machine_info()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.md").write_text(markdown if markdown.endswith("\n") else markdown + "\n")
    path = folder / f"{name}.json"
    path.write_text(json.dumps({"machine": machine, "rows": rows}, indent=1, ensure_ascii=False) + "\n")
    return path
