"""The only module that runs git or touches git's object files.

Everything here is git mechanics with no knowledge of labbook's format:

* :func:`discover` finds the repository around a directory;
* :class:`Git` runs git with a scrubbed environment and no user hooks,
  reads objects through one long-lived ``git cat-file --batch`` process,
  writes loose objects in-process (SHA-1 and SHA-256 repositories alike),
  and moves refs with compare-and-swap ``git update-ref``;
* :func:`parse_tree` / :func:`format_tree` convert tree objects.

Writing objects in-process keeps subprocesses off the per-commit path: one
``update-ref`` per commit is the only process labbook starts when it records.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import secrets
import subprocess
import tempfile
import threading
import time
import weakref
import zlib
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import IO

from ..errors import BranchConflict, GitError, NotARepository, StorageError
from .diskio import (
    freshen,
    gc_holder,
    reader_failure,
    ref_error,
    refuse_access,
    storage_error,
    unlink_quietly,
    write_all,
)

# Variables a parent git (a hook, `git rebase --exec`) may leave behind that
# would redirect labbook's plumbing into the user's index or another repository.
_KEPT_GIT_VARIABLES = {
    "GIT_CONFIG_GLOBAL",
    "GIT_CONFIG_SYSTEM",
    "GIT_CONFIG_NOSYSTEM",
    "GIT_SSH",
    "GIT_SSH_COMMAND",
    "GIT_SSH_VARIANT",
    "GIT_ASKPASS",
    "GIT_TERMINAL_PROMPT",
    "GIT_EXEC_PATH",
}

# Every internal git call runs without the user's hooks, and never with the `ext::`
# transport (it runs any command a remote URL names), whatever the user's config says:
# a -c on the command line overrides every config file, and protocol.ext.allow
# overrides protocol.allow.
_SAFE_CONFIG = ["-c", "core.hooksPath=/dev/null", "-c", "protocol.ext.allow=never"]

TREE_MODE = "40000"
GC_WAIT_SECONDS = 300  # longest wait for a running `git gc` before checking objects anyway
BLOB_MODE = "100644"


def clean_env() -> dict[str, str]:
    """The environment for labbook's git calls: no GIT_* redirections, C locale, no locks."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_") or k in _KEPT_GIT_VARIABLES}
    env["LC_ALL"] = "C"
    env["LANGUAGE"] = "C"
    env["GIT_OPTIONAL_LOCKS"] = "0"  # `git status` must not rewrite the user's index
    return env


class MissingObject(GitError):
    """An object a tree or ref points at is not in the repository (pruned, or never fetched)."""


class RefUpdate(Enum):
    """How a compare-and-swap ref update ended."""

    DONE = "done"
    MOVED = "moved"  # the ref was not at the expected value: rebuild and retry
    LOCKED = "locked"  # a lock file is in the way: wait and retry
    PRUNED = "pruned"  # the new commit vanished (a concurrent `git gc --prune=now`): rewrite it


@dataclass(frozen=True)
class TreeEntry:
    """One entry of a git tree object."""

    mode: str
    name: str
    oid: str

    @property
    def is_tree(self) -> bool:
        return self.mode == TREE_MODE


def discover(path: str | os.PathLike[str] | None = None) -> Git:
    """Find the git repository containing ``path`` (default: the current directory)."""
    where = os.fspath(path) if path is not None else os.getcwd()
    argv = ["git", *_SAFE_CONFIG, "rev-parse", "--path-format=absolute", "--is-bare-repository", "--git-dir",
            "--git-common-dir", "--git-path", "objects", "--show-object-format", "--show-toplevel"]
    try:
        proc = subprocess.run(argv, cwd=where, env=clean_env(), capture_output=True, text=True)
    except FileNotFoundError as exc:
        if not os.path.isdir(where):
            raise NotARepository(f"no such directory: {where}") from exc
        raise NotARepository("git is not installed (no `git` on PATH)") from exc
    lines = proc.stdout.splitlines()
    if len(lines) < 5:
        refuse_access(where, proc.stderr)
        raise NotARepository(f"not a git repository: {where} (run `git init` first)")
    bare = lines[0] == "true"
    toplevel = None if bare or len(lines) < 6 else lines[5]
    return Git(git_dir=lines[1], common_dir=lines[2], objects_dir=lines[3],
               object_format=lines[4], toplevel=toplevel)


class Git:
    """A repository as labbook's plumbing sees it."""

    def __init__(self, git_dir: str, common_dir: str, objects_dir: str, object_format: str,
                 toplevel: str | None):
        self.git_dir = git_dir
        self.common_dir = common_dir
        self.objects_dir = objects_dir
        self.object_format = object_format
        self.toplevel = toplevel
        if object_format not in ("sha1", "sha256"):
            raise GitError(["rev-parse", "--show-object-format"], 0,
                           f"unsupported object format {object_format!r}")
        self.zero_oid = "0" * (40 if object_format == "sha1" else 64)
        self._env = clean_env()
        self._reader: subprocess.Popen[bytes] | None = None
        self._reader_err: IO[bytes] | None = None
        self._reader_lock = threading.Lock()
        self.fsync = True
        self._prune_setting: str | None = None  # gc.pruneExpire, read when first needed
        _OPEN.add(self)

    # -- running git ---------------------------------------------------------
    def run(self, args: list[str], *, input: bytes | None = None, check: bool = True,
            in_worktree: bool = False, extra_config: list[str] | None = None,
            pass_fds: tuple[int, ...] = ()) -> subprocess.CompletedProcess[bytes]:
        """Run ``git ARGS`` against this repository, hooks off, environment scrubbed."""
        where = ["-C", self.toplevel] if in_worktree and self.toplevel else [f"--git-dir={self.git_dir}"]
        argv = ["git", *where, *_SAFE_CONFIG, *(extra_config or []), *args]
        proc = subprocess.run(argv, input=input, env=self._env, capture_output=True, pass_fds=pass_fds)
        if check and proc.returncode != 0:
            raise GitError(["git", *args], proc.returncode, proc.stderr.decode("utf-8", "replace"))
        return proc

    def fetch(self, remote: str, refspecs: list[str], options: list[str]
              ) -> subprocess.CompletedProcess[bytes]:
        """``git fetch OPTIONS -- REMOTE REFSPECS`` (not checked): ``--end-of-options`` keeps a
        remote or refspec starting with ``-`` from being read as an option."""
        return self.run(["fetch", *options, "--end-of-options", remote, *refspecs], check=False)

    def push(self, remote: str, refspecs: list[str], options: list[str]
             ) -> subprocess.CompletedProcess[bytes]:
        """``git push OPTIONS -- REMOTE REFSPECS`` (not checked), like :meth:`fetch`."""
        return self.run(["push", *options, "--end-of-options", remote, *refspecs], check=False)

    def is_shallow(self) -> bool:
        """Whether this is a shallow clone: git lists the commits where history is cut in
        ``<common git dir>/shallow`` (read here, one process fewer per fetch)."""
        return os.path.exists(os.path.join(self.common_dir, "shallow"))

    def config(self) -> dict[str, str]:
        """Every git config setting in force here (system, global, local), last one wins."""
        out = self.run(["config", "-z", "--list"], check=False).stdout.decode("utf-8", "replace")
        settings: dict[str, str] = {}
        for item in out.split("\0"):
            if item:
                key, _, value = item.partition("\n")
                settings[key.lower()] = value
        return settings

    # -- reading objects -----------------------------------------------------
    def read_object(self, name: str) -> tuple[str, str, bytes] | None:
        """Return ``(oid, type, content)`` of an object or ref name, or None if missing."""
        with self._reader_lock:
            reader = self._ensure_reader()
            assert reader.stdin is not None and reader.stdout is not None
            reader.stdin.write(name.encode() + b"\n")
            reader.stdin.flush()
            return self._reply(reader)

    def read_many(self, names: list[str]) -> list[tuple[str, str, bytes] | None]:
        """Read many objects in one pipelined exchange with cat-file (no round trip each)."""
        if not names:
            return []
        request = "".join(f"{name}\n" for name in names).encode()
        with self._reader_lock:
            reader = self._ensure_reader()
            assert reader.stdin is not None and reader.stdout is not None
            feeder = threading.Thread(target=_feed, args=(reader.stdin, request), daemon=True)
            feeder.start()
            out = [self._reply(reader) for _ in names]
            feeder.join()
            return out

    def _reply(self, reader: subprocess.Popen[bytes]) -> tuple[str, str, bytes] | None:
        """One answer of cat-file --batch: (oid, type, content), or None for a missing name."""
        assert reader.stdout is not None
        header = reader.stdout.readline()
        if not header:
            self.close()
            raise GitError(["cat-file", "--batch"], -1, reader_failure(self._reader_err))
        parts = header.split()
        if len(parts) != 3:
            return None  # "<name> missing" or "<name> ambiguous"
        data = reader.stdout.read(int(parts[2]))
        reader.stdout.read(1)  # the newline after the content
        return parts[0].decode(), parts[1].decode(), data

    def list_files(self, tree: str) -> list[tuple[str, TreeEntry]]:
        """Every file beneath a tree, as (path inside the tree, entry), in one ``git ls-tree -r``.

        git walks the subtrees in C, far faster than reading them one by one here.
        """
        out = self.run(["ls-tree", "-r", "-z", "--end-of-options", tree]).stdout
        files = []
        for item in out.split(b"\0"):
            if item:
                info, _, path = item.partition(b"\t")
                mode, _, oid = info.decode().split(" ")
                name = path.decode("utf-8", "surrogateescape")
                files.append((name, TreeEntry(mode, name.rpartition("/")[2], oid)))
        return files

    def loose_objects_over(self, limit: int) -> bool:
        """Whether there are probably more than ``limit`` loose objects, estimated as
        ``git gc --auto`` does: from the count in the one fan-out folder ``objects/17``."""
        if limit <= 0:
            return False
        try:
            count = sum(1 for name in os.listdir(os.path.join(self.objects_dir, "17")) if len(name) >= 38)
        except OSError:
            return False
        return count > -(-limit // 256)

    def gc_auto(self, lock: str) -> None:
        """``git gc --auto --quiet``: git packs loose objects when due, in the background
        unless gc.autoDetach is false. git and its detached child inherit a descriptor
        holding an flock on the file ``lock`` until the gc ends: :meth:`wait_for_gc_lock` waits
        for it. Skipped while a gc started this way still runs."""
        try:
            os.makedirs(os.path.dirname(lock), exist_ok=True)
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError:  # no lock where the repository is read-only: git will say no anyway
            self.run(["gc", "--auto", "--quiet"], check=False)
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return
        try:
            self.run(["gc", "--auto", "--quiet"], check=False, pass_fds=(fd,))
        finally:
            os.close(fd)

    @staticmethod
    def wait_for_gc_lock(lock: str, timeout: float) -> bool:
        """Wait until no gc started by :meth:`gc_auto` runs; False if one still runs after
        ``timeout`` seconds."""
        try:
            fd = os.open(lock, os.O_RDONLY)
        except OSError:
            return True  # never started one
        deadline = time.monotonic() + timeout
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                    return True
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        return False
                    time.sleep(0.02)
        finally:
            os.close(fd)

    def resolve_commit(self, rev: str) -> str | None:
        """The commit id a revision (HEAD~3, a tag, a short sha) names in this repository."""
        proc = self.run(["rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}"],
                        check=False)
        return proc.stdout.decode().strip() or None

    def diff_commits(self, old: str, new: str) -> str | None:
        """``git diff old new`` of the code, or None when either commit is not here."""
        proc = self.run(["diff", "--no-color", "--no-ext-diff", old, new, "--"], check=False)
        return proc.stdout.decode("utf-8", "replace") if proc.returncode == 0 else None

    def read_blob(self, oid: str) -> bytes:
        """The content of a blob; raises MissingObject if it is missing."""
        found = self.read_object(oid)
        if found is None:
            raise MissingObject(["cat-file", "blob", oid], 128, f"object {oid} is missing")
        return found[2]

    def read_tree(self, oid: str) -> list[TreeEntry]:
        """The entries of a tree object."""
        found = self.read_object(oid)
        if found is None or found[1] != "tree":
            raise MissingObject(["cat-file", "tree", oid], 128, f"tree {oid} is missing")
        return parse_tree(found[2], self.oid_bytes)

    def _ensure_reader(self) -> subprocess.Popen[bytes]:
        if self._reader is None or self._reader.poll() is not None:
            self._reader_err = tempfile.TemporaryFile()  # noqa: SIM115 (lives with the reader)
            self._reader = subprocess.Popen(
                ["git", f"--git-dir={self.git_dir}", *_SAFE_CONFIG, "cat-file", "--batch"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._reader_err,
                env=self._env)
        return self._reader

    def close(self) -> None:
        """Stop the cat-file process (it is restarted on the next read)."""
        reader, self._reader = self._reader, None
        if reader is not None:
            try:
                if reader.stdin:
                    reader.stdin.close()
                reader.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                reader.kill()
            if reader.stdout:
                reader.stdout.close()

    # -- writing objects -----------------------------------------------------
    @property
    def oid_bytes(self) -> int:
        return 20 if self.object_format == "sha1" else 32

    def hash_object(self, kind: str, data: bytes) -> str:
        """The object id ``data`` would have as a ``kind`` object, without writing it."""
        header = f"{kind} {len(data)}\0".encode()
        digest = hashlib.new(self.object_format, header)
        digest.update(data)
        return digest.hexdigest()

    def write_object(self, kind: str, data: bytes) -> str:
        """Write a loose object (whole and fsynced before it is renamed into place) and
        return its id; StorageError or AccessDenied when the disk refuses.

        The temporary file has a name git itself uses (``tmp_obj_…``), which ``git prune``
        recognises instead of reporting "bad sha1 file" (and ``git gc --auto`` then refusing
        to run for a day). An object that exists loose is freshened, as git does.
        """
        oid = self.hash_object(kind, data)
        folder = os.path.join(self.objects_dir, oid[:2])
        final = os.path.join(folder, oid[2:])
        if freshen(final):
            return oid
        payload = zlib.compress(f"{kind} {len(data)}\0".encode() + data, 1)
        try:
            for _ in range(10):
                if self._write_loose(folder, final, payload):
                    return oid
        except OSError as exc:
            raise storage_error(exc, f"could not write a {kind} object into {self.objects_dir}") from exc
        raise StorageError(f"could not write a {kind} object into {self.objects_dir}: its temporary "
                           "file kept vanishing (is `git prune --expire=now` running in a loop?)")

    def _write_loose(self, folder: str, final: str, payload: bytes) -> bool:
        """One attempt at a loose object; False when a concurrent prune took the temporary file."""
        os.makedirs(folder, exist_ok=True)
        tmp = os.path.join(folder, f"tmp_obj_{secrets.token_hex(8)}")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
        except FileNotFoundError:  # a prune removed the (empty) folder after makedirs
            return False
        try:
            write_all(fd, payload)
            if self.fsync:
                os.fsync(fd)
        except BaseException:
            os.close(fd)
            unlink_quietly(tmp)
            raise
        os.close(fd)
        try:
            os.replace(tmp, final)
        except FileNotFoundError:  # pruned before the rename (or its folder was)
            return False
        return True

    def has_object(self, oid: str) -> bool:
        """Whether the object is in the repository (loose, or in a pack)."""
        if os.path.exists(os.path.join(self.objects_dir, oid[:2], oid[2:])):
            return True
        return self.read_object(oid) is not None

    def gc_running(self) -> bool:
        """Whether a ``git gc`` that may prune objects written moments ago runs here: one
        holding ``gc.pid`` unless its command line shows it keeps recent objects (``git gc
        --auto`` and plain ``git gc`` prune only what is two weeks old, by default)."""
        argv = gc_holder(self.common_dir)
        if not argv:
            return argv is not None  # [] is a gc we cannot look into: assume the worst
        prune = next((a.partition("=")[2] for a in argv if a.startswith("--prune=")), None)
        if prune is None and "--no-prune" not in argv:
            prune = self._prune_expire
        return prune is not None and prune not in ("never", "false", "2.weeks.ago")

    @property
    def _prune_expire(self) -> str | None:
        """gc.pruneExpire when set (read once)."""
        if self._prune_setting is None:
            out = self.run(["config", "--get", "gc.pruneExpire"], check=False).stdout
            self._prune_setting = out.decode("utf-8", "replace").strip()
        return self._prune_setting or None

    def gc_ran_lately(self, seconds: float = 5.0) -> bool:
        """Whether a gc runs, or wrote a pack in the last ``seconds`` (a gc always repacks
        before it prunes)."""
        try:
            packed = os.stat(os.path.join(self.objects_dir, "pack")).st_mtime
        except OSError:
            packed = 0.0
        return time.time() - packed < seconds or self.gc_running()

    def wait_for_gc(self, timeout: float = GC_WAIT_SECONDS) -> None:
        """Return once no ``git gc`` that may prune recent objects runs here (or after
        ``timeout`` seconds)."""
        deadline = time.monotonic() + timeout
        while self.gc_running() and time.monotonic() < deadline:
            time.sleep(0.02)

    def write_tree(self, entries: list[TreeEntry]) -> str:
        """Write a tree object from entries (sorted here the way git sorts them)."""
        return self.write_object("tree", format_tree(entries))

    # -- refs ----------------------------------------------------------------
    def set_ref(self, ref: str, oid: str) -> None:
        """Point a private ref (``refs/labbook/…``) at ``oid``, whatever it pointed at."""
        proc = self.run(["update-ref", "--no-deref", ref, oid], check=False)
        if proc.returncode != 0:
            raise ref_error(ref, proc.returncode, proc.stderr)

    def delete_ref(self, ref: str) -> None:
        """Delete a private ref (nothing happens when it does not exist)."""
        proc = self.run(["update-ref", "--no-deref", "-d", ref], check=False)
        if proc.returncode != 0:
            raise ref_error(ref, proc.returncode, proc.stderr)

    def update_ref(self, ref: str, new: str, old: str | None, message: str) -> RefUpdate:
        """Move ``ref`` from ``old`` (None: must not exist) to ``new``, atomically."""
        fsync = ["-c", "core.fsync=loose-object,reference"] if self.fsync else []
        proc = self.run(["update-ref", "-m", message, ref, new, old or self.zero_oid],
                        check=False, extra_config=fsync)
        if proc.returncode == 0:
            return RefUpdate.DONE
        err = proc.stderr.decode("utf-8", "replace")
        if "Permission denied" in err or "Read-only file system" in err or "No space left" in err:
            raise ref_error(ref, proc.returncode, proc.stderr)
        if "with nonexistent object" in err:
            return RefUpdate.PRUNED
        if "but expected" in err or "reference already exists" in err or "unable to resolve" in err:
            return RefUpdate.MOVED
        if ".lock': File exists" in err or ("Unable to create" in err and ".lock" in err):
            return RefUpdate.LOCKED
        if "cannot lock ref" in err and "exists; cannot create" in err:
            raise BranchConflict(
                f"cannot create {ref}: another branch name is in the way ({err.strip()}); "
                "set another name with `git config labbook.branch NAME`")
        raise GitError(["update-ref", ref], proc.returncode, err)

    def lock_file(self, ref: str) -> str:
        """The path of the lock file git takes to update ``ref``."""
        return os.path.join(self.common_dir, *ref.split("/")) + ".lock"

    def worktrees_on(self, ref: str) -> list[str]:
        """Work trees (their git dirs) whose HEAD is the branch ``ref``."""
        heads = [Path(self.common_dir, "HEAD"), *Path(self.common_dir, "worktrees").glob("*/HEAD")]
        wanted = f"ref: {ref}"
        found = []
        for head in heads:
            try:
                if head.read_text().strip() == wanted:
                    found.append(str(head.parent))
            except OSError:
                continue
        return found


_OPEN: weakref.WeakSet[Git] = weakref.WeakSet()








def _forget_readers_in_child() -> None:
    """In a forked child, drop the parent's cat-file pipes: sharing them would mix replies."""
    for git in list(_OPEN):
        git._reader = None
        git._reader_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_readers_in_child)


def _feed(pipe, data: bytes) -> None:  # type: ignore[no-untyped-def]
    pipe.write(data)
    pipe.flush()


def _tree_sort_key(entry: TreeEntry) -> bytes:
    name = entry.name.encode("utf-8")
    return name + b"/" if entry.is_tree else name


def format_tree(entries: list[TreeEntry]) -> bytes:
    """Serialise tree entries in git's canonical order."""
    out = bytearray()
    for entry in sorted(entries, key=_tree_sort_key):
        out += f"{entry.mode} {entry.name}\0".encode()
        out += bytes.fromhex(entry.oid)
    return bytes(out)


def parse_tree(data: bytes, oid_bytes: int) -> list[TreeEntry]:
    """Parse the content of a tree object."""
    entries = []
    pos = 0
    while pos < len(data):
        space = data.index(b" ", pos)
        nul = data.index(b"\0", space)
        mode = data[pos:space].decode()
        name = data[space + 1:nul].decode("utf-8", "surrogateescape")
        oid = data[nul + 1:nul + 1 + oid_bytes].hex()
        entries.append(TreeEntry(mode, name, oid))
        pos = nul + 1 + oid_bytes
    return entries
