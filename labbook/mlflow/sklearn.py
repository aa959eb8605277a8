"""``mlflow.sklearn`` through the drop-in: ``autolog``, ``log_model`` and ``load_model``.

``autolog`` is :func:`labbook.autolog` (MLflow's metric names, params, tags, the model and
a search's children); its MLflow options that labbook does not have raise
:class:`Unsupported` when set. Models are stored as run artifacts in MLflow's layout
(``model/MLmodel``, ``model/model.pkl``); there is no model registry and no LoggedModel.
"""

from __future__ import annotations

import tempfile
from typing import Any

from .. import tracking as fluent
from ..autolog import autolog as labbook_autolog
from ..errors import ArtifactError, RunNotFound
from ..runs import models
from .client import client_run
from .exceptions import RESOURCE_DOES_NOT_EXIST, MlflowException, Unsupported

FLAVOR_NAME = "sklearn"
SERIALIZATION_FORMAT_PICKLE = "pickle"
SERIALIZATION_FORMAT_CLOUDPICKLE = "cloudpickle"
SERIALIZATION_FORMAT_SKOPS = "skops"
SUPPORTED_SERIALIZATION_FORMATS = list(models.FORMATS)


def autolog(log_input_examples: bool = False, log_model_signatures: bool = True,
            log_models: bool = True, log_datasets: bool = True, disable: bool = False,
            exclusive: bool = False, disable_for_unsupported_versions: bool = False,
            silent: bool = False, max_tuning_runs: int | None = 5,
            log_post_training_metrics: bool = True, serialization_format: str = "cloudpickle",
            registered_model_name: str | None = None, pos_label: Any = None,
            extra_tags: dict[str, str] | None = None) -> None:
    """Log every scikit-learn fit as MLflow's sklearn autolog does (see docs/mlflow.md).

    Not logged, as labbook has no such thing: datasets (``log_datasets``), input examples,
    post-training metrics of ``sklearn.metrics`` calls, registered models.
    """
    if log_input_examples:
        raise Unsupported("sklearn.autolog(log_input_examples=True)")
    if registered_model_name is not None:
        raise Unsupported("sklearn.autolog(registered_model_name=...)", "labbook has no model registry")
    if exclusive:
        raise Unsupported("sklearn.autolog(exclusive=True)")
    if serialization_format not in models.FORMATS:
        raise MlflowException(f"Unrecognized serialization format: {serialization_format}. Please "
                              f"specify one of the following supported formats: {list(models.FORMATS)}.")
    labbook_autolog(disable=disable, log_models=log_models, max_tuning_runs=max_tuning_runs,
                        serialization_format=serialization_format, pos_label=pos_label,
                        extra_tags=extra_tags, run_starter=_start_run)


def _start_run(name: str, parent: Any) -> Any:
    """A run autolog makes itself, started as labbook.mlflow.start_run starts one (with
    MLflow's mlflow.source.* tags)."""
    from . import start_run

    return start_run(run_name=name, parent_run_id=None if parent is None else parent.id).labbook_run


def log_model(sk_model: Any, artifact_path: str | None = None, *, name: str | None = None,
              serialization_format: str = "cloudpickle", signature: Any = None,
              input_example: Any = None, registered_model_name: str | None = None,
              **ignored: Any) -> ModelInfo:
    """Store a fitted estimator as ``<name>/model.pkl`` + ``<name>/MLmodel`` of the active run."""
    if registered_model_name is not None:
        raise Unsupported("sklearn.log_model(registered_model_name=...)", "labbook has no model registry")
    path = (name or artifact_path or "model").strip("/")
    if serialization_format not in models.FORMATS:
        raise MlflowException(f"Unrecognized serialization format: {serialization_format}")
    with client_run(None) as run:
        models.log_model(run, sk_model, path, serialization_format, signature)
        return ModelInfo(run.id, path, f"runs:/{run.id}/{path}", signature)


class ModelInfo:
    """What log_model returns: where the model is (``model_uri`` for load_model)."""

    def __init__(self, run_id: str, artifact_path: str, model_uri: str, signature: Any):
        self.run_id, self.artifact_path, self.model_uri = run_id, artifact_path, model_uri
        self.signature = signature


def load_model(model_uri: str, dst_path: str | None = None) -> Any:
    """The estimator stored at ``runs:/<run id>/<path>`` (by log_model or autolog)."""
    if not model_uri.startswith("runs:/"):
        raise Unsupported(f"sklearn.load_model({model_uri!r})", "only runs:/<run id>/<path> URIs")
    run_id, _, path = model_uri[len("runs:/"):].partition("/")
    path = path.strip("/") or "model"
    mlmodel = models.mlmodel_of(_artifact_bytes(run_id, f"{path}/MLmodel"))
    flavour = mlmodel["flavors"]["sklearn"]
    data = _artifact_bytes(run_id, f"{path}/{flavour['pickled_model']}")
    return models.load_bytes(data, flavour.get("serialization_format", "cloudpickle"))


def _artifact_bytes(run_id: str, path: str) -> bytes:
    """One artifact's bytes, checked against its sha256."""
    from ..runs import artifact_files

    with tempfile.TemporaryDirectory(prefix="labbook-model-") as tmp:
        try:
            [written] = artifact_files.get_artifacts(fluent.repository(), run_id, path, tmp)
        except (RunNotFound, ArtifactError) as exc:
            raise MlflowException(f"{exc}", RESOURCE_DOES_NOT_EXIST) from exc
        return written.read_bytes()


def __getattr__(name: str) -> Any:
    if name.startswith("_"):
        raise AttributeError(name)
    raise Unsupported(f"sklearn.{name}")


__all__ = ["autolog", "load_model", "log_model"]
