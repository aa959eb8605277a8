"""Large artifacts in an object store: S3, GCS, Azure or any other fsspec URL.

``git config labbook.artifactStore s3://team-bucket/labbook`` (or ``gs://``,
``az://``, ``file://``…) makes the store a content-addressed prefix,
``<prefix>/<sha256[:2]>/<sha256>``. The URL is local configuration; a record
keeps only ``location: store``, the size and the sha256, never the URL and never
a credential. Credentials come from each store's own chain (for S3: the
``AWS_*`` variables, ``~/.aws``, an instance role; ``AWS_ENDPOINT_URL_S3`` for an
S3-compatible server).

An upload streams the file in parts of constant size (multipart on S3, resumable
sessions on GCS, staged blocks on Azure) while computing its sha256; the object
becomes visible only when it is complete and its hash matched, so a killed
upload leaves nothing a reader could mistake for the artifact. On S3 a killed or
failed upload resumes where it stopped (labbook/storage/s3upload.py) and the object
carries its sha256 as metadata; elsewhere the next attempt starts again. Stores whose
writes are not atomic (a local or mounted ``file://`` folder, …) get a
temporary name and a rename. Transient failures (a dropped connection, a
timeout, throttling) are retried a few times with growing pauses.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar
from urllib.parse import urlsplit, urlunsplit

from ..errors import ArtifactError

if TYPE_CHECKING:
    from .s3upload import S3Uploads

PART_BYTES = 8 << 20  # the part (block) size of uploads and reads: memory stays near this
MAX_PARTS = 9_000  # S3 allows 10,000 parts; bigger files get bigger parts
ATTEMPTS = 4
# Object stores whose objects appear only when their upload is committed.
_ATOMIC = frozenset({"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl", "oss", "r2"})
_RESUMABLE = frozenset({"s3", "s3a"})  # stores whose uploads labbook resumes itself
_PERMANENT = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError,
              FileExistsError)
_TRANSIENT_NAMES = frozenset({
    "EndpointConnectionError", "ConnectTimeoutError", "ReadTimeoutError", "ConnectionClosedError",
    "ServerDisconnectedError", "ClientOSError", "ClientPayloadError", "ServiceUnavailable",
    "TooManyRequests", "ServiceResponseError", "ThrottlingException", "SlowDown"})
T = TypeVar("T")


def redact_url(url: str) -> str:
    """``url`` without a user, password or query string (which may carry a token)."""
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def transient(exc: BaseException) -> bool:
    """True for failures worth another try: dropped connections, timeouts, throttling."""
    if isinstance(exc, (*_PERMANENT, ArtifactError)):
        return False
    return isinstance(exc, OSError | TimeoutError) or type(exc).__name__ in _TRANSIENT_NAMES


def retried(action: Callable[[], T], attempts: int = ATTEMPTS, pause: float = 0.5) -> T:
    """``action()``, tried again after a transient failure (pauses of 0.5, 1, 2 s…)."""
    for attempt in range(1, attempts + 1):
        try:
            return action()
        except Exception as exc:
            if attempt == attempts or not transient(exc):
                raise
            time.sleep(pause * 2 ** (attempt - 1))
    raise AssertionError("unreachable")  # pragma: no cover


def part_bytes(size: int) -> int:
    """The upload part size for a file of ``size`` bytes: 8 MiB, more for very large files."""
    return max(PART_BYTES, math.ceil(size / MAX_PARTS / (1 << 20)) << 20)


class ObjectStore:
    """A content-addressed artifact store at an fsspec URL (``s3://bucket/prefix``, ``memory://x``)."""

    remote = True

    def __init__(self, url: str, attempts: int = ATTEMPTS, state_dir: Path | None = None):
        try:
            import fsspec  # noqa: F401  (the store's own package, s3fs…, loads on first use)
        except ImportError as exc:
            raise ArtifactError(f"the artifact store {redact_url(url)!r} is a URL, which needs fsspec: "
                                "pip install 'labbook[fsspec]' (or labbook[s3], [gcs], [azure])") from exc
        self.root = redact_url(url)
        self.attempts = attempts
        self.atomic = urlsplit(url).scheme.lower() in _ATOMIC
        self.resumable = urlsplit(url).scheme.lower() in _RESUMABLE
        self.state_dir = state_dir  # where resume files of S3 uploads go (under the git dir)
        self._url = url
        self._fs: Any = None
        self._path = ""

    @property
    def fs(self) -> Any:
        """The fsspec file system, opened on first use (commands that touch no artifact never
        import s3fs and its SDK)."""
        if self._fs is None:
            import fsspec

            try:
                self._fs, path = fsspec.core.url_to_fs(self._url)
            except (ImportError, ValueError) as exc:
                raise ArtifactError(f"cannot open the artifact store {self.root!r}: {exc}") from exc
            self._path = path.rstrip("/")
        return self._fs

    def location_of(self, sha256: str) -> str:
        """The object's key in the store."""
        self.fs  # noqa: B018  (opening it sets the path)
        return f"{self._path}/{sha256[:2]}/{sha256}"

    def _retry(self, action: Callable[[], T], what: str) -> T:
        try:
            return retried(action, self.attempts)
        except ArtifactError:
            raise
        except FileNotFoundError:
            raise
        except Exception as exc:
            raise ArtifactError(f"{what} in the artifact store {self.root} failed: "
                                f"{type(exc).__name__}: {exc}") from exc

    @property
    def s3(self) -> S3Uploads:
        """Resumable uploads and metadata reads through s3fs's own client (s3:// only)."""
        from .s3upload import S3Uploads

        return S3Uploads(self.fs, self.state_dir)

    def stat(self, sha256: str) -> dict[str, Any] | None:
        """The stored object's ``size`` and the ``sha256`` its metadata names (None when the
        store keeps none), without reading it; None when there is no object."""
        key = self.location_of(sha256)
        if self.resumable:
            return self._retry(lambda: self.s3.head(key), f"looking up {sha256[:12]}")

        def info() -> dict[str, Any] | None:
            try:
                found = self.fs.info(key)
            except FileNotFoundError:
                return None
            if found.get("type") != "file":
                return None
            meta = found.get("metadata")
            named = meta.get("sha256") if isinstance(meta, dict) else None
            return {"size": int(found["size"]), "sha256": named if isinstance(named, str) else None}

        return self._retry(info, f"looking up {sha256[:12]}")

    def size_of(self, sha256: str) -> int | None:
        """The stored object's size, or None when there is none."""
        found = self.stat(sha256)
        return None if found is None else found["size"]

    def has(self, sha256: str) -> bool:
        """True when the object is there."""
        return self.size_of(sha256) is not None

    def put(self, source: Path, sha256: str) -> None:
        """Upload ``source`` under its hash (no-op if an object of its size is already there)."""
        size = source.stat().st_size
        if self.size_of(sha256) == size:
            return
        self._retry(lambda: self._upload(source, sha256, size), f"uploading {source.name}")

    def unfinished_uploads(self) -> list[str]:
        """This clone's S3 uploads that were started and neither completed nor aborted, as
        ``sha256 (size)`` lines."""
        if not self.resumable or self.state_dir is None or not any(self.state_dir.glob("*.json")):
            return []  # nothing to list: s3fs and its SDK are not even loaded
        return [f"{s.sha256} ({s.size} bytes, {len(s.parts)} parts sent)" for s in self.s3.unfinished()]

    def abort_uploads(self) -> int:
        """Abort every unfinished S3 upload of this clone; how many were aborted."""
        return len(self.s3.sweep(older_than=0)) if self.unfinished_uploads() else 0

    def _upload(self, source: Path, sha256: str, size: int) -> None:
        final = self.location_of(sha256)  # opens the file system, setting _path
        if self.resumable:
            self.s3.upload(source, final, sha256, size, part_bytes(size))
            return
        if not self.atomic:
            self.fs.makedirs(f"{self._path}/{sha256[:2]}", exist_ok=True)
        target = final if self.atomic else f"{self._path}/{sha256[:2]}/.{sha256}.{_token()}.tmp"
        out = self.fs.open(target, "wb", block_size=part_bytes(size))
        try:
            digest = _copy_hashing(source, out)
            if digest != sha256:
                raise ArtifactError(f"{source} changed while it was being uploaded; log it again")
        except BaseException:
            if self.atomic:
                _abandon(out)
            else:
                out.close()
                _remove_quietly(self.fs, target)
            raise
        out.close()  # an object store commits the object here, complete or not at all
        if not self.atomic:
            try:
                self.fs.mv(target, final)
            finally:
                _remove_quietly(self.fs, target)

    def open(self, sha256: str) -> BinaryIO:
        """The stored bytes of ``sha256`` for reading, in parts (FileNotFoundError when missing)."""
        key = self.location_of(sha256)
        return self._retry(lambda: self.fs.open(key, "rb", block_size=PART_BYTES),
                           f"reading {sha256[:12]}")


def _token() -> str:
    return f"{os.getpid()}.{secrets.token_hex(4)}"


def _copy_hashing(source: Path, out: Any) -> str:
    digest = hashlib.sha256()
    with open(source, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest()


def _abandon(out: Any) -> None:
    """Drop an unfinished object-store upload without committing it (aborts a multipart upload)."""
    with contextlib.suppress(Exception):  # abandoned either way; the original error matters
        out.discard()
    out.closed = True  # close() would commit what was written so far


def _remove_quietly(fs: Any, path: str) -> None:
    with contextlib.suppress(Exception):  # a leftover temporary name is harmless: nothing points at it
        if fs.exists(path):
            fs.rm(path)
