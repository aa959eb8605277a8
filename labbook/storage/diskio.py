"""Writes the disk may refuse, and access git refuses: whole writes or none, clear errors.

``os.write`` may write fewer bytes than asked (a disk that fills up mid-write);
:func:`write_all` loops until everything is written or the disk says why not.
:func:`storage_error` turns the ``OSError`` into a :class:`StorageError` or
:class:`AccessDenied` whose one line names what was being written, the reason and the fix;
:func:`refuse_access` and :func:`ref_error` do the same for what git reports.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import time
from typing import IO

from ..errors import AccessDenied, GitError, LabbookError, StorageError

_FULL = {errno.ENOSPC, errno.EDQUOT}
_DENIED = {errno.EACCES, errno.EPERM, errno.EROFS}


def write_all(fd: int, data: bytes) -> None:
    """Write every byte of ``data`` to ``fd``; a write that makes no progress raises ENOSPC."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if written <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        view = view[written:]


def fsync_dir(folder: str | os.PathLike[str]) -> None:
    """Make a new name in ``folder`` survive a power cut (fsync of the directory)."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def who() -> str:
    """This process's user, as ``name (uid N)``."""
    uid = os.geteuid()
    try:
        import pwd

        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except (ImportError, KeyError):
        return f"uid {uid}"


def storage_error(exc: OSError, what: str) -> LabbookError:
    """The error to raise for ``exc``, met while doing ``what`` ("could not write X")."""
    where = f" ({exc.filename})" if exc.filename else ""
    reason = exc.strerror or str(exc)
    if exc.errno in _FULL:
        return StorageError(f"{what}: no space left on device{where}; nothing of it was written "
                            "and everything before it is safe: free some space and try again")
    if exc.errno == errno.EROFS:
        return AccessDenied(f"{what}: the file system is mounted read-only{where}; "
                            "read-only commands (ls, show, site build) still work")
    if exc.errno in _DENIED:
        return AccessDenied(f"{what}: permission denied{where} for {who()}; run labbook as the "
                            "repository's owner or give this user write access to its .git "
                            "folder (read-only commands such as ls, show and site build need none)")
    return StorageError(f"{what}: {reason}{where}; nothing of it was written")


def refuse_access(where: str, stderr: str) -> None:
    """Raise AccessDenied when git could not open a repository for this user, with git's
    reason and the fix: "dubious ownership" (safe.directory) or an unreadable ``.git``."""
    if "dubious ownership" in stderr:
        reason = stderr.strip().splitlines()[0].removeprefix("fatal: ")
        fix = next((line.strip() for line in stderr.splitlines() if "safe.directory" in line),
                   "git config --global --add safe.directory <path>")
        raise AccessDenied(f"git refuses the repository: {reason} (it belongs to another user "
                           f"than {who()}); if you trust it, run `{fix}`")
    folder = os.path.abspath(where)
    while True:
        dot_git = os.path.join(folder, ".git")
        if os.path.lexists(dot_git):
            if not os.access(dot_git, os.R_OK | os.X_OK):
                raise AccessDenied(f"{dot_git} is not readable by {who()} (permission denied); "
                                   "run labbook as the repository's owner or give this user "
                                   "read access (chmod -R a+rX .git)")
            return
        parent = os.path.dirname(folder)
        if parent == folder:
            return
        folder = parent


def ref_error(ref: str, status: int, stderr: bytes) -> LabbookError:
    """A clear error for a ref git could not write: the disk (full, read-only) or permissions."""
    err = stderr.decode("utf-8", "replace").strip()
    reason = err.splitlines()[-1] if err else f"exit status {status}"
    if "No space left" in err:
        return StorageError(f"could not move {ref}: no space left on device ({reason}); "
                            f"{ref} was not changed: free some space and try again")
    if "Permission denied" in err or "Read-only file system" in err:
        return AccessDenied(f"could not move {ref}: {reason}; {who()} may not write this "
                            "repository: run labbook as its owner or give this user write access")
    return GitError(["update-ref", ref], status, err)


def reader_failure(err: IO[bytes] | None) -> str:
    """Why ``git cat-file --batch`` stopped, from its stderr: above all an object that a
    partial clone could not fetch from its promisor remote."""
    text = ""
    if err is not None:
        with contextlib.suppress(OSError, ValueError):
            err.seek(0)
            text = err.read()[-4000:].decode("utf-8", "replace")
    lines = [line.removeprefix("fatal: ").strip() for line in text.splitlines() if line.strip()]
    if any("promisor remote" in line for line in lines):
        return (f"{lines[-1]} ({lines[0]}): this partial clone fetches missing objects from its "
                "remote when they are read; make that remote reachable, or clone without --filter")
    return lines[-1] if lines else "git cat-file exited unexpectedly"


def freshen(path: str) -> bool:
    """Date an existing loose object now (as git freshens an object it would rewrite);
    False when it does not exist. An object this user may not touch is left as it is."""
    try:
        os.utime(path)
    except FileNotFoundError:
        return False
    except OSError:
        return os.path.exists(path)
    return True


def unlink_quietly(path: str) -> None:
    """Remove a file if it can be removed (a temporary file after a failed write)."""
    with contextlib.suppress(OSError):
        os.unlink(path)


def gc_holder(common_dir: str) -> list[str] | None:
    """The command line of the ``git gc`` holding ``<common_dir>/gc.pid`` by git's own rule
    (a live process on this host, or any on another host, within 12 hours); ``[]`` when it
    runs but cannot be looked into, None when no gc runs."""
    path = os.path.join(common_dir, "gc.pid")
    try:
        with open(path, "rb") as handle:
            pid, _, host = handle.read(512).decode("utf-8", "replace").partition(" ")
        if time.time() - os.stat(path).st_mtime > 12 * 3600:
            return None
    except OSError:
        return None
    if host.strip() != socket.gethostname():
        return []
    try:
        os.kill(int(pid), 0)
        with open(f"/proc/{int(pid)}/cmdline", "rb") as handle:
            return handle.read().decode("utf-8", "replace").split("\0")
    except ProcessLookupError:
        return None
    except (OSError, ValueError):
        return []
