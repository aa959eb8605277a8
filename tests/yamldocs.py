"""Helpers for the tests of reading YAML: comparing values exactly, and documents of one shape."""

from __future__ import annotations

import math
from typing import Any


def same(a: Any, b: Any) -> bool:
    """Equal values of equal types, in the same order; NaN equals NaN, -0.0 differs from 0.0."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    if isinstance(a, dict):
        return len(a) == len(b) and all(same(ka, kb) and same(va, vb)
                                        for (ka, va), (kb, vb) in zip(a.items(), b.items(), strict=True))
    if isinstance(a, list):
        return len(a) == len(b) and all(map(same, a, b))
    return a == b


def with_other_scalars(value: Any, others: list[Any]) -> Any:
    """``value`` with each scalar in it replaced by the next of ``others`` (cycled), keys kept."""
    if isinstance(value, dict):
        return {k: with_other_scalars(v, others) for k, v in value.items()}
    if isinstance(value, list):
        return [with_other_scalars(v, others) for v in value]
    others.append(others.pop(0))
    return others[-1]
