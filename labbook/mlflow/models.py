"""``from mlflow.models import infer_signature``: a model's input and output schema.

``infer_signature`` describes a pandas DataFrame column by column (``ColSpec``) and a
numpy array as a tensor (``TensorSpec``, first dimension -1), in MLflow's type names;
``to_dict()`` gives MLflow's JSON strings. ``mlflow.sklearn.log_model`` writes it into
the model's MLmodel file. Model serving and pyfunc are not here: anything else in
``mlflow.models`` raises :class:`Unsupported`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from .exceptions import MlflowException, Unsupported

_KINDS = {"b": "boolean", "i": "long", "u": "long", "f": "double", "O": "string", "U": "string",
          "S": "binary", "M": "datetime"}


@dataclass
class ColSpec:
    """One named column: MLflow's type name (double, long, string, boolean, …)."""

    type: str
    name: str | None = None
    required: bool = True

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type}
        if self.name is not None:
            out["name"] = self.name
        out["required"] = self.required
        return out


@dataclass
class TensorSpec:
    """An array: numpy dtype name and shape (-1 for the number of rows)."""

    dtype: str
    shape: tuple[int, ...]
    name: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "tensor", "tensor-spec": {"dtype": self.dtype,
                                                                  "shape": list(self.shape)}}
        if self.name is not None:
            out["name"] = self.name
        return out


@dataclass
class Schema:
    inputs: list[ColSpec | TensorSpec] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps([spec.to_dict() for spec in self.inputs])

    def input_names(self) -> list[str | None]:
        return [spec.name for spec in self.inputs]


@dataclass
class ModelSignature:
    """The schema of a model's inputs and (optionally) outputs."""

    inputs: Schema | None = None
    outputs: Schema | None = None
    params: Any = None

    def to_dict(self) -> dict[str, Any]:
        return {"inputs": self.inputs.to_json() if self.inputs else None,
                "outputs": self.outputs.to_json() if self.outputs else None,
                "params": None}


def infer_signature(model_input: Any = None, model_output: Any = None,
                    params: dict[str, Any] | None = None) -> ModelSignature:
    """The signature of a model from example input (and output) data."""
    if params:
        raise Unsupported("models.infer_signature(params=...)")
    return ModelSignature(_schema(model_input), _schema(model_output))


def _schema(data: Any) -> Schema | None:
    if data is None:
        return None
    import numpy as np
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        return Schema([ColSpec(_type_name(data[c].dtype), str(c)) for c in data.columns])
    if isinstance(data, pd.Series):
        return Schema([ColSpec(_type_name(data.dtype), None if data.name is None else str(data.name))])
    if isinstance(data, dict):
        return Schema([ColSpec(_type_name(np.asarray(v).dtype), str(k)) for k, v in data.items()])
    if isinstance(data, list | tuple):
        data = np.asarray(data)
    if isinstance(data, np.ndarray):
        return Schema([TensorSpec(str(data.dtype), (-1, *data.shape[1:]))])
    if isinstance(data, str | bool | int | float):
        return Schema([ColSpec(_type_name(np.asarray(data).dtype))])
    raise MlflowException(f"infer_signature cannot describe a {type(data).__name__}: "
                          "give a pandas DataFrame or Series, a numpy array, a list or a dict")


def _type_name(dtype: Any) -> str:
    if str(dtype) in ("float32", "int32"):
        return {"float32": "float", "int32": "integer"}[str(dtype)]
    return _KINDS.get(getattr(dtype, "kind", "O"), "string")


def __getattr__(name: str) -> Any:
    if name.startswith("_"):
        raise AttributeError(name)
    raise Unsupported(f"models.{name}")


__all__ = ["ColSpec", "ModelSignature", "Schema", "TensorSpec", "infer_signature"]
