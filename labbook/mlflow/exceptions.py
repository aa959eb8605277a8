"""Errors of the MLflow drop-in; ``except mlflow.exceptions.MlflowException`` keeps working.

    LabbookError
    └── MlflowException          what MLflow would raise (an unknown run, a changed param…)
        └── Unsupported          an MLflow function labbook.mlflow does not provide
"""

from __future__ import annotations

from ..errors import LabbookError

RESOURCE_DOES_NOT_EXIST = "RESOURCE_DOES_NOT_EXIST"
RESOURCE_ALREADY_EXISTS = "RESOURCE_ALREADY_EXISTS"
INVALID_PARAMETER_VALUE = "INVALID_PARAMETER_VALUE"


class MlflowException(LabbookError):
    """An error MLflow raises in the same situation; ``error_code`` as MLflow names it."""

    def __init__(self, message: str, error_code: str = INVALID_PARAMETER_VALUE):
        super().__init__(message)
        self.message = message
        self.error_code = error_code


class Unsupported(MlflowException, NotImplementedError, AttributeError):
    """An MLflow function or module that labbook.mlflow does not provide (fails loudly)."""

    def __init__(self, name: str, hint: str = ""):
        tail = f"; {hint}" if hint else ""
        super().__init__(f"labbook.mlflow does not support mlflow.{name}{tail} (see docs/mlflow.md)",
                         "NOT_IMPLEMENTED")
        self.feature = name
