"""Resumable uploads to S3: a killed or failed multipart upload continues where it stopped.

fsspec's file interface cannot resume an upload (its writer forgets the upload when the
process dies), so for ``s3://`` stores labbook drives the multipart upload itself through
s3fs's botocore client. Each upload of a file larger than one part keeps a small resume
file, ``<common git dir>/labbook/uploads/<sha256>.json``: the bucket, key, upload id,
part size and the parts sent with their ETags. On the next attempt — a retry in the same
process, or ``log_artifact`` of the same file after a crash — labbook asks the store which
parts it holds (ListParts), re-reads those parts locally (a sha256 cannot be saved and
restored half way, and re-reading local bytes is cheap next to sending them), checks each
against its ETag (the part's MD5) and sends only the rest.

Every upload carries the file's sha256 as object metadata (``x-amz-meta-sha256``), which
``labbook artifacts`` and ``labbook fsck`` compare without downloading the object.

An upload is aborted when the file changed under it; resume files older than
STALE_SECONDS are aborted and removed at the next upload (and by ``labbook fsck
--abort-uploads``); the bucket's ``AbortIncompleteMultipartUpload`` lifecycle rule is the
backstop for a clone that is gone.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import json
import math
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ArtifactError

STALE_SECONDS = 7 * 24 * 3600  # a resume file this old is given up: its upload is aborted
_STATE_VERSION = 1
_MAX_STATE_BYTES = 1 << 20


@dataclass
class UploadState:
    """What a resume file holds (it is local, but read as untrusted input all the same)."""

    bucket: str
    key: str
    upload_id: str
    part_bytes: int
    size: int
    sha256: str
    started: float
    parts: dict[str, str] = field(default_factory=dict)  # part number → ETag, as sent

    @classmethod
    def from_json(cls, data: bytes) -> UploadState | None:
        """The state in ``data``, or None when it is not a resume file of this version."""
        try:
            raw = json.loads(data)
            if not isinstance(raw, dict) or raw.pop("version", None) != _STATE_VERSION:
                return None
            state = cls(**raw)
        except (ValueError, TypeError):
            return None
        texts = (state.bucket, state.key, state.upload_id, state.sha256)
        numbers = (state.part_bytes, state.size)
        if (not all(isinstance(t, str) and t for t in texts) or not all(
                isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in numbers)
                or not isinstance(state.started, int | float) or not isinstance(state.parts, dict)):
            return None
        return state


class S3Uploads:
    """Resumable multipart uploads through an s3fs file system, with resume files in ``state_dir``."""

    def __init__(self, fs: Any, state_dir: Path | None):
        self.fs = fs
        self.state_dir = state_dir

    def _call(self, method: str, **kwargs: Any) -> Any:
        return self.fs.call_s3(method, **kwargs)

    # -- reading --------------------------------------------------------------------------
    def head(self, path: str) -> dict[str, Any] | None:
        """Size, ETag and sha256 metadata of the object at ``path``; None when there is none."""
        bucket, key, _ = self.fs.split_path(path)
        try:
            found = self._call("head_object", Bucket=bucket, Key=key)
        except FileNotFoundError:
            return None
        meta = {str(k).lower(): v for k, v in (found.get("Metadata") or {}).items()}
        return {"size": int(found.get("ContentLength", -1)), "etag": str(found.get("ETag", "")).strip('"'),
                "sha256": meta.get("sha256")}

    # -- writing --------------------------------------------------------------------------
    def upload(self, source: Path, path: str, sha256: str, size: int, part_bytes: int) -> None:
        """Upload ``source`` to ``path``, resuming an earlier attempt of this clone when one is
        recorded; the object appears only once every part is there and the sha256 matched."""
        bucket, key, _ = self.fs.split_path(path)
        if size <= part_bytes:
            self._put_whole(source, bucket, key, sha256)
            return
        with self._locked(sha256):
            self.sweep(keep=sha256)
            found = self.head(path)
            if found is not None and found["size"] == size:
                self._forget(sha256)  # done: by another process, or completed before a lost reply
                return
            state = self._resumable(bucket, key, size, part_bytes, sha256)
            self._send(source, state)
            lock = self._file(sha256)
            if lock is not None:  # a process waiting on it finds the object there, and returns
                lock.with_suffix(".lock").unlink(missing_ok=True)

    def _put_whole(self, source: Path, bucket: str, key: str, sha256: str) -> None:
        data = source.read_bytes()  # at most one part: the memory an upload uses anyway
        if hashlib.sha256(data).hexdigest() != sha256:
            raise ArtifactError(f"{source} changed while it was being uploaded; log it again")
        self._call("put_object", Bucket=bucket, Key=key, Body=data, Metadata={"sha256": sha256},
                   ContentMD5=base64.b64encode(hashlib.md5(data).digest()).decode())

    def _resumable(self, bucket: str, key: str, size: int, part_bytes: int, sha256: str) -> UploadState:
        """The recorded upload of ``sha256`` when it still fits (same place, size, part size) and
        the store still has it; else a new multipart upload, recorded."""
        state = self._load(sha256)
        if state is not None:
            if (state.bucket, state.key, state.size, state.part_bytes) == (bucket, key, size, part_bytes):
                held = self._listed_parts(state)
                if held is not None:
                    state.parts = held
                    return state
            else:
                self._abort(state)
        created = self._call("create_multipart_upload", Bucket=bucket, Key=key, Metadata={"sha256": sha256})
        state = UploadState(bucket, key, created["UploadId"], part_bytes, size, sha256, time.time())
        self._save(state)
        return state

    def _listed_parts(self, state: UploadState) -> dict[str, str] | None:
        """The parts the store holds for the upload (number → ETag), full-sized ones only;
        None when the store no longer knows the upload."""
        held: dict[str, str] = {}
        marker = 0
        try:
            while True:
                page = self._call("list_parts", Bucket=state.bucket, Key=state.key, UploadId=state.upload_id,
                                  MaxParts=1000, PartNumberMarker=marker)
                for part in page.get("Parts", []):
                    if part.get("Size") == state.part_bytes or part["PartNumber"] == _count(state):
                        held[str(int(part["PartNumber"]))] = str(part.get("ETag", "")).strip('"')
                if not page.get("IsTruncated"):
                    return held
                marker = int(page["NextPartNumberMarker"])
        except FileNotFoundError:
            return None

    def _send(self, source: Path, state: UploadState) -> None:
        digest = hashlib.sha256()
        total = _count(state)
        with open(source, "rb") as handle:
            for number in range(1, total + 1):
                data = handle.read(state.part_bytes)
                digest.update(data)
                held = state.parts.get(str(number))
                if held is not None and held == hashlib.md5(data).hexdigest():
                    continue  # already in the store, and the same bytes
                sent = self._call("upload_part", Bucket=state.bucket, Key=state.key, UploadId=state.upload_id,
                                  PartNumber=number, Body=data,
                                  ContentMD5=base64.b64encode(hashlib.md5(data).digest()).decode())
                state.parts[str(number)] = str(sent["ETag"]).strip('"')
                self._save(state)
            if handle.read(1) or digest.hexdigest() != state.sha256:
                self._abort(state)
                raise ArtifactError(f"{source} changed while it was being uploaded; log it again")
        parts = [{"PartNumber": n, "ETag": f'"{state.parts[str(n)]}"'} for n in range(1, total + 1)]
        self._call("complete_multipart_upload", Bucket=state.bucket, Key=state.key, UploadId=state.upload_id,
                   MultipartUpload={"Parts": parts})
        self._forget(state.sha256)

    # -- resume files ---------------------------------------------------------------------
    def _file(self, sha256: str) -> Path | None:
        return None if self.state_dir is None else self.state_dir / f"{sha256}.json"

    def _load(self, sha256: str) -> UploadState | None:
        path = self._file(sha256)
        try:
            if path is None or path.stat().st_size > _MAX_STATE_BYTES:
                return None
            state = UploadState.from_json(path.read_bytes())
        except OSError:
            return None
        return state if state is not None and state.sha256 == sha256 else None

    def _save(self, state: UploadState) -> None:
        """Write the resume file whole (temporary name, rename); no resume file when the
        git dir cannot be written: the upload still works, it just cannot be resumed."""
        path = self._file(state.sha256)
        if path is None:
            return
        with contextlib.suppress(OSError):
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps({"version": _STATE_VERSION, **asdict(state)}))
            os.replace(tmp, path)

    def _forget(self, sha256: str) -> None:
        path = self._file(sha256)
        if path is not None:
            path.unlink(missing_ok=True)

    def _abort(self, state: UploadState) -> None:
        """Abort the multipart upload (its parts are deleted) and forget it."""
        with contextlib.suppress(FileNotFoundError):  # the store has forgotten it already
            self._call("abort_multipart_upload", Bucket=state.bucket, Key=state.key, UploadId=state.upload_id)
        self._forget(state.sha256)

    @contextlib.contextmanager
    def _locked(self, sha256: str) -> Iterator[None]:
        """One process of this clone at a time uploads a given file (others wait, then find it)."""
        path = self._file(sha256)
        handle = None
        with contextlib.suppress(OSError):
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                handle = open(path.with_suffix(".lock"), "a")  # noqa: SIM115  (held for the block)
                fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            if handle is not None:
                handle.close()

    def unfinished(self) -> list[UploadState]:
        """This clone's uploads that were started and neither completed nor aborted."""
        if self.state_dir is None or not self.state_dir.is_dir():
            return []
        found = []
        for path in sorted(self.state_dir.glob("*.json")):
            state = self._load(path.stem)
            if state is not None:
                found.append(state)
        return found

    def sweep(self, keep: str | None = None, older_than: float = STALE_SECONDS) -> list[UploadState]:
        """Abort this clone's unfinished uploads started more than ``older_than`` seconds ago
        (all of them with 0), except ``keep``'s; returns the ones aborted."""
        aborted = []
        for state in self.unfinished():
            if state.sha256 != keep and time.time() - state.started >= older_than:
                with contextlib.suppress(OSError):  # a store that cannot be reached now: next time
                    self._abort(state)
                    aborted.append(state)
        return aborted


def _count(state: UploadState) -> int:
    return math.ceil(state.size / state.part_bytes)
