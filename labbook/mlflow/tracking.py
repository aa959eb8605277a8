"""``from mlflow.tracking import MlflowClient``: the same client as ``labbook.mlflow.MlflowClient``."""

from __future__ import annotations

from typing import Any

from .client import MlflowClient
from .exceptions import Unsupported


def __getattr__(name: str) -> Any:
    if name.startswith("_"):
        raise AttributeError(name)
    raise Unsupported(f"tracking.{name}")


__all__ = ["MlflowClient"]
