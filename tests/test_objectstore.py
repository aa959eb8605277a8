"""Artifacts in an object store, against a real S3 API: moto's server on 127.0.0.1, through s3fs.

Every labbook step runs in its own process, as a user's would: a 200 MB artifact
streams up and down with a small, constant memory; an upload killed mid-way
leaves nothing half-recorded and a retry works; a tampered object is refused.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import git
from labbook.errors import ArtifactError
from labbook.storage.objectstore import part_bytes, redact_url, retried

pytest.importorskip("s3fs")
pytest.importorskip("moto")
boto3 = pytest.importorskip("boto3")

BUCKET = "team-bucket"
SECRET = "not-a-real-secret-key-123"
MB = 1 << 20
pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def s3_server():
    """moto's S3 server on a free local port; yields its endpoint URL."""
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                pytest.fail("moto's S3 server did not start")
            time.sleep(0.2)
    yield endpoint
    server.terminate()
    server.wait(10)


@pytest.fixture
def s3(s3_server: str, repo: Path, monkeypatch: pytest.MonkeyPatch):
    """A fresh bucket, the credentials in the environment (the standard chain) and the repo's
    artifact store in it; yields a boto3 client to look at the bucket directly."""
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": SECRET,
                       "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL_S3": s3_server,
                       "AWS_ENDPOINT_URL": s3_server}.items():
        monkeypatch.setenv(key, value)
    client = boto3.client("s3", endpoint_url=s3_server)
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET) if _exists(client) else []:
        for item in page.get("Contents", []):
            client.delete_object(Bucket=BUCKET, Key=item["Key"])
    if not _exists(client):
        client.create_bucket(Bucket=BUCKET)
    git(repo, "config", "labbook.artifactStore", f"s3://{BUCKET}/labbook")
    return client


def _exists(client) -> bool:
    return any(b["Name"] == BUCKET for b in client.list_buckets().get("Buckets", []))


def _keys(client) -> list[str]:
    return [item["Key"] for item in client.list_objects_v2(Bucket=BUCKET).get("Contents", [])]


def _big_file(path: Path, size: int) -> str:
    digest = hashlib.sha256()
    with open(path, "wb") as out:
        block = os.urandom(MB)
        for i in range(size // MB):
            chunk = i.to_bytes(8, "big") + block[8:]
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest()


_RSS = "\nimport resource, sys\nprint('PEAK_RSS_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, " \
       "file=sys.stderr)\n"


def _python(code: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-c", code + _RSS], cwd=cwd, capture_output=True, text=True,
                          timeout=600)
    if check and done.returncode != 0:
        raise AssertionError(done.stderr)
    return done


def _log_artifact(file: Path) -> str:
    return (f"import labbook\nwith labbook.start_run('upload') as run:\n"
            f"    labbook.log_artifact({str(file)!r})\nprint(run.id)\n")


def _cli(*args: str) -> str:
    return ("import sys\nfrom labbook.cli import cli\n"
            f"try:\n    cli.main({list(args)!r}, prog_name='labbook')\n"
            "except SystemExit as exc:\n    code = exc.code or 0\nelse:\n    code = 0\n" + _RSS +
            "sys.exit(code)\n")


def _peak_mb(done: subprocess.CompletedProcess[str]) -> float:
    line = next(x for x in done.stderr.splitlines() if x.startswith("PEAK_RSS_KB"))
    return int(line.split()[1]) / 1024


def test_a_200_mb_artifact_streams_to_s3_and_back_in_constant_memory(s3, repo: Path, tmp_path: Path):
    small, big = tmp_path / "small.bin", tmp_path / "model.bin"
    _big_file(small, 2 * MB)
    digest = _big_file(big, 200 * MB)
    baseline = _python(_log_artifact(small), repo)
    upload = _python(_log_artifact(big), repo)
    run_id = upload.stdout.split()[-1]
    key = f"labbook/{digest[:2]}/{digest}"
    head = s3.head_object(Bucket=BUCKET, Key=key)
    assert head["ContentLength"] == 200 * MB
    assert head["ETag"].strip('"').endswith(f"-{200 * MB // part_bytes(200 * MB)}")  # a multipart upload
    growth = _peak_mb(upload) - _peak_mb(baseline)
    assert growth < 64, f"uploading 200 MB grew the peak RSS by {growth:.0f} MB"

    back = _python(_cli("get", run_id, "model.bin", "-o", str(tmp_path / "back.bin")), repo)
    assert back.stdout.strip() == str(tmp_path / "back.bin")
    assert _peak_mb(back) - _peak_mb(baseline) < 64
    print(f"peak RSS MB: 2 MB upload {_peak_mb(baseline):.0f}, 200 MB upload {_peak_mb(upload):.0f}, "
          f"200 MB get {_peak_mb(back):.0f}")
    from labbook.storage.artifacts import sha256_file

    assert sha256_file(tmp_path / "back.bin") == (digest, 200 * MB)

    record = git(repo, "grep", "-h", "-e", "sha256", "experiments", "--", "runs")
    assert digest in record
    everything = git(repo, "log", "-p", "experiments")
    assert "s3://" not in everything and BUCKET not in everything and SECRET not in everything


def _wait_for_parts(s3, child: subprocess.Popen, at_least: int) -> None:
    """Return once the child's multipart upload holds ``at_least`` parts (it must still run)."""
    deadline = time.monotonic() + 180
    parts = 0
    while parts < at_least:
        assert child.poll() is None and time.monotonic() < deadline, child.communicate()
        uploads = s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])
        if uploads:
            parts = len(s3.list_parts(Bucket=BUCKET, Key=uploads[0]["Key"],
                                      UploadId=uploads[0]["UploadId"]).get("Parts", []))
        time.sleep(0.05)


def _kill_mid_upload(s3, repo: Path, big: Path, at_least: int) -> tuple[dict, set[int]]:
    """Start logging ``big`` in a child, SIGKILL it once ``at_least`` parts are up; the
    multipart upload left behind and the part numbers the store holds."""
    child = subprocess.Popen([sys.executable, "-c", _log_artifact(big)], cwd=repo,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for_parts(s3, child, at_least)
    child.send_signal(signal.SIGKILL)
    child.communicate()
    time.sleep(0.5)  # a part whose bytes were all sent when the child died lands now, or never
    uploads = s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])
    assert len(uploads) == 1
    held = {p["PartNumber"] for p in s3.list_parts(Bucket=BUCKET, Key=uploads[0]["Key"],
                                                    UploadId=uploads[0]["UploadId"])["Parts"]}
    return uploads[0], held


def test_a_killed_upload_resumes_where_it_stopped(s3, s3_server: str, repo: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch):
    big = tmp_path / "weights.bin"
    size = 200 * MB
    digest = _big_file(big, size)
    total = -(-size // part_bytes(size))
    assert total == 25  # 8 MiB parts
    upload, held = _kill_mid_upload(s3, repo, big, at_least=3)
    assert 3 <= len(held) < total and held == set(range(1, len(held) + 1))
    assert _keys(s3) == []  # no object, not even a partial one
    resume = repo / ".git" / "labbook" / "uploads" / f"{digest}.json"
    assert json.loads(resume.read_text())["upload_id"] == upload["UploadId"]
    journals = list((repo / ".git" / "labbook" / "journal").glob("*"))
    assert journals and all('"e":"a"' not in p.read_text(errors="replace") for p in journals)
    shown = _python(_cli("ls", "--format", "json", "--all"), repo, check=False)
    assert digest not in shown.stdout

    proxy = _RecordingProxy(int(s3_server.rsplit(":", 1)[1]))
    for name in ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"):
        monkeypatch.setenv(name, f"http://127.0.0.1:{proxy.port}")
    try:
        retry = _python(_log_artifact(big), repo)
    finally:
        proxy.close()
        for name in ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"):
            monkeypatch.setenv(name, s3_server)
    sent = proxy.part_numbers()
    print(f"before the kill {len(held)} of {total} parts were up; the retry sent {len(sent)}")
    assert sorted(sent) == sorted(set(range(1, total + 1)) - held)  # only the rest, each once
    key = f"labbook/{digest[:2]}/{digest}"
    assert _keys(s3) == [key]
    head = s3.head_object(Bucket=BUCKET, Key=key)
    assert head["ContentLength"] == size and head["Metadata"] == {"sha256": digest}
    assert s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []  # no orphan left
    assert not resume.exists()
    run_id = retry.stdout.split()[-1]
    deep = _python(_cli("artifacts", "--deep", run_id), repo)  # downloads and re-hashes the 200 MB
    assert deep.stdout == f"weights.bin\t{size}\tstore\tok\n"


def test_an_abandoned_upload_is_listed_and_aborted_by_fsck(s3, repo: Path, tmp_path: Path):
    big = tmp_path / "ckpt.bin"
    digest = _big_file(big, 40 * MB)
    _kill_mid_upload(s3, repo, big, at_least=1)
    with open(big, "r+b") as handle:  # the file changes before anyone logs it again
        handle.write(b"changed")
    report = _python(_cli("fsck"), repo, check=False)
    assert "1 unfinished uploads of this clone" in report.stdout and digest in report.stdout
    aborted = _python(_cli("fsck", "--abort-uploads"), repo, check=False)
    assert "aborted 1 unfinished uploads" in aborted.stdout
    assert s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []
    assert not (repo / ".git" / "labbook" / "uploads" / f"{digest}.json").exists()
    assert "unfinished" not in _python(_cli("fsck"), repo, check=False).stdout
    assert _keys(s3) == []


def test_a_tampered_object_is_refused_by_get(s3, repo: Path, tmp_path: Path):
    data = os.urandom(3 * MB)
    (tmp_path / "a.bin").write_bytes(data)
    run_id = _python(_log_artifact(tmp_path / "a.bin"), repo).stdout.split()[-1]
    digest = hashlib.sha256(data).hexdigest()
    tampered = bytearray(data)
    tampered[MB] ^= 0xFF  # same size, one byte flipped
    s3.put_object(Bucket=BUCKET, Key=f"labbook/{digest[:2]}/{digest}", Body=bytes(tampered))
    out = tmp_path / "restored.bin"
    done = _python(_cli("get", run_id, "a.bin", "-o", str(out)), repo, check=False)
    assert done.returncode == 1
    assert "do not match their sha256" in done.stderr and "nothing written" in done.stderr
    assert not out.exists() and not list(tmp_path.glob(".restored.bin*"))
    listed = _python(_cli("artifacts", run_id), repo)  # same size, no sha256 metadata: unhashed
    assert listed.stdout == f"a.bin\t{3 * MB}\tstore\tsize ok\n"
    listed = _python(_cli("artifacts", "--deep", run_id), repo)
    assert listed.stdout == f"a.bin\t{3 * MB}\tstore\tMISMATCH\n"
    s3.put_object(Bucket=BUCKET, Key=f"labbook/{digest[:2]}/{digest}", Body=bytes(tampered),
                  Metadata={"sha256": hashlib.sha256(tampered).hexdigest()})
    listed = _python(_cli("artifacts", run_id), repo)  # its metadata names other bytes
    assert listed.stdout == f"a.bin\t{3 * MB}\tstore\tMISMATCH\n"
    s3.delete_object(Bucket=BUCKET, Key=f"labbook/{digest[:2]}/{digest}")
    done = _python(_cli("get", run_id, "a.bin", "-o", str(out)), repo, check=False)
    assert done.returncode == 1 and "are missing" in done.stderr


def test_the_site_says_an_artifact_is_in_the_object_store(s3, repo: Path, tmp_path: Path):
    (tmp_path / "m.bin").write_bytes(os.urandom(2 * MB))
    run_id = _python(_log_artifact(tmp_path / "m.bin"), repo).stdout.split()[-1]
    site = tmp_path / "site"
    _python(_cli("site", "build", "-o", str(site)), repo)
    from labbook.site.context import run_page

    page = (site / run_page(run_id)).read_text()
    assert "in the object store" in page and f"<code>labbook get {run_id[:8]} m.bin</code>" in page
    assert not list(site.rglob("m.bin*"))  # never downloaded into the site
    assert "s3://" not in page and SECRET not in page


def test_transient_failures_are_retried_and_permanent_ones_are_not():
    calls: list[int] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionResetError("connection reset by peer")
        return "done"

    assert retried(flaky, pause=0.01) == "done" and len(calls) == 3

    def denied() -> None:
        calls.append(1)
        raise PermissionError("access denied")

    calls.clear()
    with pytest.raises(PermissionError):
        retried(denied, pause=0.01)
    assert len(calls) == 1
    with pytest.raises(ArtifactError):
        retried(lambda: (_ for _ in ()).throw(ArtifactError("bad")), pause=0.01)


def test_urls_shown_in_messages_carry_no_credentials():
    assert redact_url("s3://AKIA:secret@bucket/prefix?token=abc") == "s3://bucket/prefix"
    assert redact_url("az://container/path") == "az://container/path"
    assert json.dumps(redact_url("gs://b/p")) == '"gs://b/p"'


class _RecordingProxy:
    """A TCP forwarder to the S3 server that notes the request line (method and path) of every
    HTTP request sent through it: what a labbook process asked the store for."""

    _REQUEST = re.compile(rb"(GET|PUT|POST|HEAD|DELETE) (/[^ \r\n]*) HTTP/1\.1\r\n")

    def __init__(self, target_port: int):
        import threading

        self.target, self.requests = target_port, []
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(16)
        self.port = self.server.getsockname()[1]
        self.lock = threading.Lock()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        import threading

        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target))
            threading.Thread(target=self._pipe, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, False), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, upload: bool) -> None:
        pending = b""
        try:
            while data := source.recv(1 << 16):
                sink.sendall(data)
                if upload:
                    pending += data
                    end = 0
                    for found in self._REQUEST.finditer(pending):
                        with self.lock:
                            self.requests.append((found[1].decode(), found[2].decode()))
                        end = found.end()
                    pending = pending[max(end, len(pending) - 4096):]
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()

    def part_numbers(self) -> list[int]:
        return [int(m[1]) for method, path in self.requests if method == "PUT"
                for m in [re.search(r"[?&]partNumber=(\d+)", path)] if m]

    def object_reads(self) -> list[str]:
        """GET requests of objects under labbook's prefix (listings have no key in the path)."""
        return [path for method, path in self.requests
                if method == "GET" and re.match(rf"/{BUCKET}/labbook/[0-9a-f]{{2}}/[0-9a-f]{{64}}", path)]

    def close(self) -> None:
        self.server.close()


def test_artifacts_and_fsck_check_object_store_artifacts_without_downloading_them(
        s3, s3_server: str, repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "m.bin").write_bytes(os.urandom(12 * MB))  # two parts
    run_id = _python(_log_artifact(tmp_path / "m.bin"), repo).stdout.split()[-1]
    proxy = _RecordingProxy(int(s3_server.rsplit(":", 1)[1]))
    for name in ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"):
        monkeypatch.setenv(name, f"http://127.0.0.1:{proxy.port}")
    try:
        listed = _python(_cli("artifacts", run_id), repo)
        checked = _python(_cli("fsck"), repo)
        assert proxy.requests and proxy.object_reads() == []  # HEAD only: nothing downloaded
        assert listed.stdout == f"m.bin\t{12 * MB}\tstore\tok\n"
        assert checked.stdout.endswith("1 artifacts, 1 experiments: no problems\n")
        deep = _python(_cli("fsck", "--deep"), repo)
        assert deep.stdout.endswith("no problems\n") and proxy.object_reads()  # --deep reads it
    finally:
        proxy.close()
    for name in ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"):
        monkeypatch.setenv(name, s3_server)
    digest = hashlib.sha256((tmp_path / "m.bin").read_bytes()).hexdigest()
    s3.put_object(Bucket=BUCKET, Key=f"labbook/{digest[:2]}/{digest}", Body=os.urandom(12 * MB))
    unhashed = _python(_cli("fsck"), repo, check=False)
    assert unhashed.returncode == 0 and "1 artifacts in the object store carry no sha256" in unhashed.stdout
    deep = _python(_cli("fsck", "--deep"), repo, check=False)
    assert deep.returncode == 1 and "artifact m.bin (store) is MISMATCH" in deep.stdout
    s3.delete_object(Bucket=BUCKET, Key=f"labbook/{digest[:2]}/{digest}")
    gone = _python(_cli("fsck"), repo, check=False)
    assert gone.returncode == 1 and "artifact m.bin (store) is missing" in gone.stdout


class _FlakyProxy:
    """A TCP forwarder to the S3 server that is down at first (connections refused), then cuts
    the first connection that carries more than ``cut_after`` bytes: a network that drops out."""

    def __init__(self, target_port: int, down_for: float, cut_after: int):
        self.port, self.target = _free_port(), target_port
        self.cut_after, self.cut = cut_after, False
        self.ready = time.monotonic() + down_for
        self.stop = False
        import threading

        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        import threading

        time.sleep(max(0.0, self.ready - time.monotonic()))
        with socket.socket() as server:
            server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            server.bind(("127.0.0.1", self.port))
            server.listen(16)
            server.settimeout(0.2)
            while not self.stop:
                try:
                    client, _ = server.accept()
                except TimeoutError:
                    continue
                upstream = socket.create_connection(("127.0.0.1", self.target))
                threading.Thread(target=self._pipe, args=(client, upstream, True), daemon=True).start()
                threading.Thread(target=self._pipe, args=(upstream, client, False), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, upload: bool) -> None:
        sent = 0
        try:
            while data := source.recv(1 << 16):
                sent += len(data)
                if upload and not self.cut and sent > self.cut_after:
                    self.cut = True
                    raise ConnectionResetError("cut")
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()


def test_an_upload_gets_through_a_network_that_drops_out(s3, s3_server: str, repo: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch):
    proxy = _FlakyProxy(int(s3_server.rsplit(":", 1)[1]), down_for=3.0, cut_after=4 * MB)
    endpoint = f"http://127.0.0.1:{proxy.port}"
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", endpoint)
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    digest = _big_file(tmp_path / "ckpt.bin", 40 * MB)
    started = time.monotonic()
    run_id = _python(_log_artifact(tmp_path / "ckpt.bin"), repo).stdout.split()[-1]
    print(f"upload through the flaky network: {time.monotonic() - started:.1f} s")
    assert time.monotonic() - started > 3.0 and proxy.cut  # it did meet both failures
    assert s3.head_object(Bucket=BUCKET, Key=f"labbook/{digest[:2]}/{digest}")["ContentLength"] == 40 * MB
    back = tmp_path / "back.bin"
    _python(_cli("get", run_id, "ckpt.bin", "-o", str(back)), repo)
    from labbook.storage.artifacts import sha256_file

    assert sha256_file(back) == (digest, 40 * MB)
    proxy.stop = True


def test_commands_that_touch_no_artifact_never_load_the_stores_sdk(repo: Path):
    git(repo, "config", "labbook.artifactStore", "s3://team-bucket/labbook")
    code = ("import sys, labbook\nlabbook.tracking.repository()\nlabbook.search_runs()\n"
            "print(sorted(m for m in ('s3fs', 'botocore', 'aiobotocore') if m in sys.modules))")
    assert _python(code, repo).stdout.strip() == "[]"
