"""Artifact bytes: hashing, choosing branch or store, and the local artifact store.

Files up to ``labbook.inlineArtifactBytes`` become blobs in the run's folder on
the branch (they travel with push); larger files are copied into the artifact
store, a content-addressed folder (``<sha256[:2]>/<sha256>``), and only the
pointer is committed. ``labbook.artifactStore`` may also be an fsspec URL
(``s3://bucket/prefix``; ``pip install 'labbook[fsspec]'``).

Links: ``log_artifact`` stores what a symbolic link points to only when that is
inside the repository's work tree or the current directory; ``log_artifacts``
only when it is inside the folder being logged. Anything else is an ArtifactError.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from ..errors import ArtifactError

if TYPE_CHECKING:
    from .objectstore import ObjectStore

_CHUNK = 1 << 20


def sha256_file(path: Path) -> tuple[str, int]:
    """The sha256 hex digest and the size of a file."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def regular_file(path: str | os.PathLike[str]) -> Path:
    """The path of an existing regular file to log, or an ArtifactError saying what is wrong."""
    file = Path(path)
    if not file.exists():
        raise ArtifactError(f"artifact file {os.fspath(path)!r} does not exist")
    if not file.is_file():
        raise ArtifactError(f"artifact {os.fspath(path)!r} is not a regular file "
                            "(use log_artifacts for a folder)")
    return file


def files_under(folder: str | os.PathLike[str]) -> Iterator[tuple[Path, str]]:
    """Each file under ``folder`` with its relative path; links leaving the folder are refused."""
    root = Path(folder)
    if not root.is_dir():
        raise ArtifactError(f"artifact folder {os.fspath(folder)!r} is not a folder")
    real_root = root.resolve()
    for current, dirs, files in os.walk(root, followlinks=False):
        dirs.sort()
        for name in sorted(files) + [d for d in dirs if Path(current, d).is_symlink()]:
            path = Path(current, name)
            target = path.resolve()
            if not target.is_relative_to(real_root):
                raise ArtifactError(f"{path} is a link leaving {os.fspath(folder)!r}; refused")
            if target.is_file():
                yield path, path.relative_to(root).as_posix()


def followed_links_stay_inside(path: Path, toplevel: str | None) -> None:
    """Refuse a path that reaches, through a symbolic link, a file outside the repository's
    work tree and the current directory (a link in a results folder to ~/.ssh/id_ed25519)."""
    lexical, real = Path(os.path.abspath(path)), Path(os.path.realpath(path))
    if lexical == real:
        return
    roots = [Path(os.path.realpath(r)) for r in (toplevel, os.getcwd()) if r]
    if any(real.is_relative_to(root) for root in roots):
        return
    plain_roots = [Path(os.path.abspath(r)) for r in (toplevel, os.getcwd()) if r]
    if path.is_symlink() or any(lexical.is_relative_to(root) for root in plain_roots):
        raise ArtifactError(f"{os.fspath(path)} is a link to {real}, outside the repository and "
                            "the current directory; refused (copy the file in to log it)")


class ArtifactStore:
    """A content-addressed folder of large artifacts (the default store, or a local URL)."""

    remote = False

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root)

    def location_of(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256

    def put(self, source: Path, sha256: str) -> None:
        """Copy ``source`` into the store under its hash (no-op if already there)."""
        final = self.location_of(sha256)
        if final.exists():
            return
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = final.with_name(f".{sha256}.{os.getpid()}.tmp")
        try:
            shutil.copyfile(source, tmp)
            with open(tmp, "rb") as handle:
                os.fsync(handle.fileno())
            if sha256_file(tmp)[0] != sha256:
                raise ArtifactError(f"{source} changed while it was being copied; log it again")
            os.replace(tmp, final)
        finally:
            tmp.unlink(missing_ok=True)

    def has(self, sha256: str) -> bool:
        return self.location_of(sha256).is_file()

    def open(self, sha256: str) -> BinaryIO:
        """The stored bytes of ``sha256`` for reading (FileNotFoundError when missing)."""
        return open(self.location_of(sha256), "rb")


def open_store(where: str, state_dir: Path | None = None) -> ArtifactStore | ObjectStore:
    """The artifact store at ``where``: a URL with a scheme goes through fsspec (see
    labbook.storage.objectstore; ``state_dir`` keeps the resume files of its uploads), else a folder."""
    if "://" in where:
        from .objectstore import ObjectStore

        return ObjectStore(where, state_dir=state_dir)
    return ArtifactStore(Path(where).expanduser())


def hash_stream(handle: BinaryIO, sink: BinaryIO | None = None) -> tuple[str, int]:
    """The sha256 and size of a stream's bytes, copying them to ``sink`` on the way."""
    digest = hashlib.sha256()
    size = 0
    while chunk := handle.read(_CHUNK):
        digest.update(chunk)
        size += len(chunk)
        if sink is not None:
            sink.write(chunk)
    return digest.hexdigest(), size
