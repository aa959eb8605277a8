"""Reading artifacts back: list a run's pointers with a verdict, restore their bytes safely.

Bytes come from the branch blob (``location: branch``) or the artifact store
(``location: store``) and are checked against the pointer's sha256 before they
are moved into place. A restore writes to a temporary file in the destination's
folder, fsyncs it and renames it; it never writes through a link, never leaves
the destination folder and never overwrites a file unless asked.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ..errors import ArtifactError, InvalidValue
from ..format import record, validation
from ..format.record import Artifact
from ..storage.artifacts import hash_stream
from ..storage.store import Snapshot
from . import lifecycle
from .repository import Repository


@dataclass
class ArtifactCheck:
    """One artifact pointer and whether its bytes are there and match."""

    path: str
    size: int
    location: str
    sha256: str
    verified: str  # "ok", "MISMATCH", "missing" or "size ok" (an object store's, unhashed)


def open_bytes(repo: Repository, snapshot: Snapshot, run_id: str, pointer: Artifact) -> BinaryIO:
    """The artifact's bytes for reading; FileNotFoundError when they are nowhere."""
    if pointer.location == "branch":
        data = snapshot.read(record.artifact_branch_path(run_id, pointer.path))
        if data is None:
            raise FileNotFoundError(record.artifact_branch_path(run_id, pointer.path))
        return io.BytesIO(data)
    return repo.artifact_store.open(pointer.sha256)


def check(repo: Repository, snapshot: Snapshot, run_id: str, pointer: Artifact, deep: bool = False) -> str:
    """"ok", "MISMATCH" or "missing" for one pointer. Bytes on the branch or in a local store
    are re-hashed; an object store's are not downloaded unless ``deep``: its object's size
    and the sha256 its metadata names (written at upload) are compared instead, and an
    object without that metadata whose size matches is "size ok"."""
    store = repo.artifact_store
    if pointer.location == "store" and store.remote and not deep:
        found = store.stat(pointer.sha256)
        if found is None:
            return "missing"
        if found["size"] != pointer.size or found["sha256"] not in (None, pointer.sha256):
            return "MISMATCH"
        return "ok" if found["sha256"] == pointer.sha256 else "size ok"
    try:
        with open_bytes(repo, snapshot, run_id, pointer) as handle:
            digest, size = hash_stream(handle)
    except FileNotFoundError:
        return "missing"
    return "ok" if digest == pointer.sha256 and size == pointer.size else "MISMATCH"


def list_artifacts(repo: Repository, run: str, deep: bool = False) -> list[ArtifactCheck]:
    """Every artifact of ``run`` (id, prefix or name), each verified (see ``check``)."""
    snapshot = repo.store.snapshot()
    rec = lifecycle.load(repo, run, snapshot).record
    return [ArtifactCheck(a.path, a.size, a.location, a.sha256, check(repo, snapshot, rec.id, a, deep))
            for a in rec.artifacts]


def get_artifacts(repo: Repository, run: str, path: str, dest: str | None = None,
                  force: bool = False) -> list[Path]:
    """Restore artifact ``path`` of ``run`` (or every artifact under a folder ``path``; ``.``
    for all) to ``dest``; returns the files written.

    One file goes to ``dest`` (default ``./<base name>``; into it when it is a folder).
    A folder goes under ``dest`` (default ``./<base name>``) keeping the paths below it.
    """
    snapshot = repo.store.snapshot()
    rec = lifecycle.load(repo, run, snapshot).record
    wanted = path.strip("/")
    exact = [a for a in rec.artifacts if a.path == wanted]
    if exact:
        _check_restorable([exact[0].path])
        name = wanted.rsplit("/", 1)[-1]
        target = Path(dest) if dest is not None else Path(name)
        if target.is_dir() and not target.is_symlink():
            target = target / name
        _restore(repo, snapshot, rec.id, exact[0], target, target.parent, force)
        return [target]
    prefix = "" if wanted in ("", ".") else wanted + "/"
    under = [a for a in rec.artifacts if a.path.startswith(prefix)]
    if not under:
        known = ", ".join(a.path for a in rec.artifacts[:10]) or "none"
        raise ArtifactError(f"run {rec.id[:8]} ({rec.name}) has no artifact {path!r} "
                            f"(its artifacts: {known})")
    _check_restorable([a.path for a in under])  # every path, before any file is written
    root = Path(dest) if dest is not None else Path(wanted.rsplit("/", 1)[-1] if prefix else ".")
    if root.is_symlink():
        raise ArtifactError(f"{root} is a link; refusing to write through it")
    written = []
    for pointer in under:
        target = root / pointer.path[len(prefix):]
        _restore(repo, snapshot, rec.id, pointer, target, root, force)
        written.append(target)
    return written


def _check_restorable(paths: list[str]) -> None:
    """Refuse pointer paths (from a record anyone may have edited) that could leave the
    destination or clash there: absolute, empty, '.'/'..' segments, backslashes, NUL, or two
    paths that are one file once case is folded, or a file and a folder."""
    for path in paths:
        parts = path.split("/") if isinstance(path, str) else [""]
        if (not isinstance(path, str) or "\x00" in path or "\\" in path or path.startswith("/")
                or any(part in ("", ".", "..") for part in parts)):
            raise ArtifactError(f"artifact path {path!r} in the record is not a plain relative "
                                "path; refusing to restore (nothing was written)")
    try:
        validation.check_collisions([], paths)
    except InvalidValue as exc:
        raise ArtifactError(f"{exc}; restore them one by one with -o (nothing was written)") from exc


def _safe_target(target: Path, root: Path) -> Path:
    """``target`` once its folder exists, refusing links on the way and anything outside ``root``."""
    parent = Path(os.path.abspath(target.parent))
    if not parent.is_relative_to(Path(os.path.abspath(root))):
        raise ArtifactError(f"{target} is outside {root}; refused")
    existing = parent
    while not os.path.lexists(existing):
        existing = existing.parent
    if existing.resolve() != existing:
        raise ArtifactError(f"{existing} goes through a link; refusing to write through it")
    parent.mkdir(parents=True, exist_ok=True)
    if parent.resolve() != parent:
        raise ArtifactError(f"{parent} goes through a link; refusing to write through it")
    final = parent / target.name
    if final.is_symlink():
        raise ArtifactError(f"{final} is a link; refusing to write through it")
    if final.is_dir():
        raise ArtifactError(f"{final} is a folder; give a file name with -o")
    return final


def _new_file_mode() -> int:
    """The mode a file created by ``open()`` gets here: 0666 less the process umask."""
    try:
        with open("/proc/self/status") as status:  # read without changing it (Linux ≥ 4.7)
            for line in status:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)  # elsewhere: the classic read-by-setting, put back at once
    os.umask(mask)
    return 0o666 & ~mask


def _restore(repo: Repository, snapshot: Snapshot, run_id: str, pointer: Artifact, target: Path,
             root: Path, force: bool) -> None:
    final = _safe_target(target, root)
    if final.exists() and not force:
        raise ArtifactError(f"{final} exists; use --force to overwrite it")
    fd, tmp = tempfile.mkstemp(dir=final.parent, prefix=f".{final.name}.", suffix=".labbook-tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                with open_bytes(repo, snapshot, run_id, pointer) as handle:
                    digest, size = hash_stream(handle, out)
            except FileNotFoundError as exc:
                raise ArtifactError(f"the bytes of {pointer.path} are missing "
                                    f"({pointer.location}: {exc})") from exc
            out.flush()
            os.chmod(out.fileno(), _new_file_mode())  # mkstemp's 0600, made what open() would give
            os.fsync(out.fileno())
        if digest != pointer.sha256 or size != pointer.size:
            raise ArtifactError(f"the bytes of {pointer.path} do not match their sha256 "
                                f"({digest[:12]} ≠ {pointer.sha256[:12]}); nothing written")
        os.replace(tmp, final)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
