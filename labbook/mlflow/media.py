"""Artifacts the MLflow way: files under a folder, text, dicts, figures and images.

Each writes a temporary file and stores it through the run's artifact machinery
(small files on the branch, large ones in the artifact store).
"""

from __future__ import annotations

import json
import os
import struct
import sys
import tempfile
import zlib
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from ..format import validation
from ..runs.run import Run
from ..storage.artifacts import regular_file
from .exceptions import MlflowException


def source_name() -> str:
    """What MLflow records as mlflow.source.name: the script's file name."""
    return os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "<console>"


def store_file(run: Run, local_path: str | os.PathLike[str], artifact_path: str | None) -> None:
    """``artifact_path/<base name>`` (just the base name without artifact_path), as MLflow does."""
    source = regular_file(local_path)
    name = f"{artifact_path.strip('/')}/{source.name}" if artifact_path else source.name
    run.store_as(source, name)


def _split(artifact_file: str) -> tuple[str | None, str]:
    path = PurePosixPath(validation.artifact_path(artifact_file))  # checked before any write
    folder = str(path.parent)
    return (None if folder in ("", ".") else folder), path.name


def store_bytes(run: Run, data: bytes, artifact_file: str) -> None:
    folder, name = _split(artifact_file)
    with tempfile.TemporaryDirectory(prefix="labbook-mlflow-") as tmp:
        target = Path(tmp) / name
        target.write_bytes(data)
        store_file(run, target, folder)


def log_text(run: Run, text: str, artifact_file: str) -> None:
    store_bytes(run, text.encode("utf-8"), artifact_file)


def log_dict(run: Run, dictionary: Any, artifact_file: str) -> None:
    if artifact_file.lower().endswith((".yaml", ".yml")):
        text = yaml.safe_dump(dictionary, sort_keys=False, default_flow_style=False)
    else:
        text = json.dumps(dictionary, indent=2)
    log_text(run, text, artifact_file)


def log_figure(run: Run, figure: Any, artifact_file: str, save_kwargs: dict[str, Any]) -> None:
    folder, name = _split(artifact_file)
    with tempfile.TemporaryDirectory(prefix="labbook-mlflow-") as tmp:
        target = Path(tmp) / name
        if hasattr(figure, "savefig"):  # matplotlib
            figure.savefig(target, **save_kwargs)
        elif hasattr(figure, "write_html") and name.lower().endswith(".html"):  # plotly
            figure.write_html(str(target), **save_kwargs)
        elif hasattr(figure, "write_image"):
            figure.write_image(str(target), **save_kwargs)
        else:
            raise MlflowException(f"log_figure takes a matplotlib or plotly figure, got "
                                  f"{type(figure).__name__}")
        store_file(run, target, folder)


def log_image(run: Run, image: Any, artifact_file: str) -> None:
    if hasattr(image, "save") and hasattr(image, "mode"):  # a PIL image
        folder, name = _split(artifact_file)
        with tempfile.TemporaryDirectory(prefix="labbook-mlflow-") as tmp:
            target = Path(tmp) / name
            image.save(target)
            store_file(run, target, folder)
        return
    store_bytes(run, png_bytes(image), artifact_file)


def png_bytes(image: Any) -> bytes:
    """A numpy array as PNG: H×W grey, H×W×1/2/3/4 channels; floats are taken as [0, 1]."""
    import numpy as np

    pixels = np.asarray(image)
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    if pixels.ndim != 3 or pixels.shape[2] not in (1, 2, 3, 4) or pixels.size == 0:
        raise MlflowException(f"an image is H×W or H×W×C with C in 1-4, got the shape {pixels.shape}")
    if pixels.dtype.kind == "f":
        pixels = np.clip(np.nan_to_num(pixels) * 255.0 + 0.5, 0, 255)
    elif pixels.dtype.kind == "b":
        pixels = pixels * 255
    elif pixels.dtype.kind in "iu" and (pixels.min() < 0 or pixels.max() > 255):
        raise MlflowException("integer image values must lie in 0-255")
    pixels = pixels.astype(np.uint8)
    height, width, channels = pixels.shape
    colour = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    raw = b"".join(b"\x00" + pixels[row].tobytes() for row in range(height))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, colour, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) \
        + chunk(b"IEND", b"")
