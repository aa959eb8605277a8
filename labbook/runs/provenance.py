"""Where a run came from: code, command line and environment — with secrets removed.

Nothing here captures the environment wholesale: only the interpreter, the
platform and the installed package versions are recorded. Remote URLs lose
their credentials and secret-looking command-line arguments are redacted.
"""

from __future__ import annotations

import os
import platform
import re
import sys
from collections.abc import Mapping
from functools import lru_cache
from importlib import metadata
from urllib.parse import urlsplit, urlunsplit

from ..format.record import Code
from ..format.validation import storable_text
from ..storage.gitcmd import Git

REDACTED = "***"
_SECRET_NAME = re.compile(
    r"(pass(word|wd|phrase)?|secret|token|api[-_]?key|access[-_]?key|auth|credential|"
    r"private[-_]?key|session[-_]?key)", re.IGNORECASE)


def strip_credentials(url: str | None) -> str | None:
    """Remove user:password@ from a URL (keeps a bare ssh user such as git@)."""
    if not url:
        return url
    if "://" not in url:
        return url  # scp-like "git@host:org/repo" carries no password
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    keep_user = parts.scheme in ("ssh", "git+ssh") and parts.password is None
    netloc = f"{parts.username}@{host}" if keep_user and parts.username else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def redact_command(argv: list[str]) -> list[str]:
    """The command line with values of secret-looking options replaced by ***."""
    out: list[str] = []
    hide_next = False
    for arg in map(storable_text, argv):
        if hide_next:
            out.append(REDACTED)
            hide_next = False
            continue
        name, eq, _ = arg.partition("=")
        if name.startswith("-") and _SECRET_NAME.search(name):
            if eq:
                out.append(f"{name}={REDACTED}")
            else:
                out.append(arg)
                hide_next = True
            continue
        if "://" in arg:
            arg = strip_credentials(arg) or arg
        out.append(arg)
    return out


def code_provenance(git: Git, settings: Mapping[str, str]) -> tuple[Code, bytes | None]:
    """The code commit, branch, remote and dirty state of the work tree, and its diff."""
    if git.toplevel is None:
        return Code(), None
    proc = git.run(["status", "--porcelain=v2", "--branch", "--untracked-files=no", "-z"],
                   in_worktree=True, check=False)
    commit = branch = None
    dirty = False
    for entry in proc.stdout.decode("utf-8", "replace").split("\0"):
        if entry.startswith("# branch.oid "):
            value = entry.split(" ", 2)[2]
            commit = None if value == "(initial)" else value
        elif entry.startswith("# branch.head "):
            value = entry.split(" ", 2)[2]
            branch = None if value == "(detached)" else value
        elif entry[:2] in ("1 ", "2 ", "u "):
            dirty = True
    diff = None
    if dirty and commit:
        diff = git.run(["diff", "--binary", "HEAD"], in_worktree=True, check=False).stdout or None
    remote_name = settings.get(f"branch.{branch}.remote", "origin") if branch else "origin"
    remote = strip_credentials(settings.get(f"remote.{remote_name}.url"))
    return Code(commit=commit, branch=branch, remote=remote, dirty=dirty,
                cwd=_relative_cwd(git.toplevel)), diff


def _relative_cwd(toplevel: str) -> str | None:
    try:
        rel = os.path.relpath(os.path.realpath(os.getcwd()), os.path.realpath(toplevel))
    except (OSError, ValueError):
        return None
    return None if rel.startswith("..") else rel.replace(os.sep, "/")


def python_and_platform() -> tuple[str, str]:
    """The interpreter version and the platform string."""
    return platform.python_version(), platform.platform()


@lru_cache(maxsize=1)
def installed_packages() -> dict[str, str]:
    """Installed distributions and their versions (read once per process)."""
    found: dict[str, str] = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"] if dist.metadata else None
        if name:
            found.setdefault(name.lower(), dist.version)
    return found


def command_line() -> list[str]:
    """This process's command line, redacted."""
    return redact_command([sys.executable, *sys.argv] if sys.argv and sys.argv[0] else [sys.executable])
