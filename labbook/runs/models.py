"""A fitted scikit-learn estimator as run artifacts, laid out as MLflow's sklearn flavour:

    model/model.pkl     the estimator, serialised with cloudpickle (default), pickle or skops
    model/MLmodel       YAML: the flavours, the serialisation format, versions, signature
    model/requirements.txt   scikit-learn (and cloudpickle/skops) at the versions used

``load_model`` reads it back (for skops only the types skops trusts by default load).
Used by ``labbook.autolog`` and ``labbook.mlflow.sklearn.log_model``/``load_model``.
"""

from __future__ import annotations

import io
import pickle
import platform
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from ..errors import InvalidValue
from ..format import record
from .run import Run

FORMATS = ("cloudpickle", "pickle", "skops")
MODEL_FILE = {"cloudpickle": "model.pkl", "pickle": "model.pkl", "skops": "model.skops"}


def serialise(estimator: Any, fmt: str) -> bytes:
    """The estimator's bytes in ``fmt`` (cloudpickle falls back to pickle when missing)."""
    if fmt == "skops":
        try:
            import skops.io as sio
        except ImportError as exc:
            raise InvalidValue("serialization_format='skops' needs skops: pip install skops") from exc
        return bytes(sio.dumps(estimator))
    if fmt == "cloudpickle":
        try:
            import cloudpickle
        except ImportError:
            return pickle.dumps(estimator)
        return bytes(cloudpickle.dumps(estimator))
    if fmt == "pickle":
        return pickle.dumps(estimator)
    raise InvalidValue(f"serialization_format {fmt!r} is not one of {', '.join(FORMATS)}")


def log_model(run: Run, estimator: Any, path: str = "model", fmt: str = "cloudpickle",
              signature: Any = None) -> str:
    """Store the estimator under ``path/`` of the run; the artifact path of its MLmodel."""
    data = serialise(estimator, fmt)
    model_file = MODEL_FILE[fmt]
    mlmodel: dict[str, Any] = {
        "artifact_path": path,
        "flavors": {
            "python_function": {"loader_module": "mlflow.sklearn", "model_path": model_file,
                                "predict_fn": "predict", "python_version": platform.python_version()},
            "sklearn": {"pickled_model": model_file, "serialization_format": fmt,
                        "sklearn_version": _version("scikit-learn"), "code": None},
        },
        "run_id": run.id,
        "utc_time_created": record.utc_now(),
    }
    if signature is not None:
        mlmodel["signature"] = signature.to_dict()
    needs = ["scikit-learn"] + (["cloudpickle"] if fmt == "cloudpickle" else []) + \
        (["skops"] if fmt == "skops" else [])
    requirements = "".join(f"{name}=={_version(name)}\n" for name in needs if _version(name))
    log_bytes(run, f"{path}/{model_file}", data)
    mlmodel_text = yaml.safe_dump(mlmodel, sort_keys=False, default_flow_style=False)
    log_bytes(run, f"{path}/MLmodel", mlmodel_text.encode())
    log_bytes(run, f"{path}/requirements.txt", requirements.encode())
    return f"{path}/MLmodel"


def log_html(run: Run, estimator: Any) -> None:
    """``estimator.html``: scikit-learn's diagram of the estimator."""
    from sklearn.utils import estimator_html_repr

    page = f"<html><head><meta charset='utf-8'></head><body>{estimator_html_repr(estimator)}</body></html>"
    log_bytes(run, "estimator.html", page.encode())


def log_bytes(run: Run, artifact_file: str, data: bytes) -> None:
    """Store ``data`` as the artifact ``artifact_file`` of a live run."""
    folder, _, name = artifact_file.rpartition("/")
    with tempfile.TemporaryDirectory(prefix="labbook-model-") as tmp:
        source = Path(tmp) / name
        source.write_bytes(data)
        run.log_artifact(source, folder or None)


def load_bytes(data: bytes, fmt: str) -> Any:
    """An estimator from its bytes (MLmodel's serialization_format)."""
    if fmt == "skops":
        import skops.io as sio

        return sio.loads(data, trusted=sio.get_untrusted_types(data=data))
    return pickle.load(io.BytesIO(data))  # cloudpickle's output loads with pickle


def mlmodel_of(data: bytes) -> dict[str, Any]:
    """The parsed MLmodel file."""
    try:
        parsed = yaml.safe_load(data)
    except yaml.YAMLError as exc:
        raise InvalidValue(f"this MLmodel is not YAML: {exc}") from exc
    if not isinstance(parsed, dict) or "sklearn" not in (parsed.get("flavors") or {}):
        raise InvalidValue("this MLmodel has no sklearn flavour; labbook loads scikit-learn models only")
    return parsed


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None
