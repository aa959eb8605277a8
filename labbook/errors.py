"""Every error labbook raises on purpose.

    LabbookError                 base: the CLI prints its message as one line, exit 1
    ├── NotARepository           not inside a git work tree or git directory
    ├── InvalidValue             a name, key, value or argument that is not allowed
    │   └── ParamConflict        a param re-logged with a different value
    ├── RunNotFound              no run matches an id, prefix or name
    │   └── AmbiguousRun         a prefix or name matches several runs
    ├── NoActiveRun              a log call with no run started
    ├── ArtifactError            a missing, unsafe or corrupt artifact
    ├── SiteError                the journal site could not be built or published
    ├── FilterSyntaxError        a filter that does not parse (column + caret line)
    ├── FormatError              an on-branch file that does not parse (path + reason)
    │   └── NewerFormat          a file of a newer format than this labbook reads
    ├── BranchConflict           the branch could not be updated (lock, checkout, races)
    ├── SyncError                a push or pull that could not finish (local branch unchanged)
    ├── StorageError             the disk refused a write (full, I/O error): nothing half-written
    ├── AccessDenied             permissions or git's safe.directory keep this user out
    └── GitError                 git itself failed (argv, status, stderr)

The library never imports click; ``labbook.cli`` maps these to messages.
"""

from __future__ import annotations


class LabbookError(Exception):
    """Base class of every error labbook raises on purpose."""


class NotARepository(LabbookError):
    """The current directory is not inside a git repository."""


class InvalidValue(LabbookError):
    """A name, key, value or argument that labbook does not accept."""


class ParamConflict(InvalidValue):
    """A param was logged again with a different value (params are write-once)."""


class RunNotFound(LabbookError):
    """No run matches the given id, id prefix or name."""


class AmbiguousRun(RunNotFound):
    """A prefix or name matches more than one run."""


class NoActiveRun(LabbookError):
    """A logging call was made while no run is active."""


class ArtifactError(LabbookError):
    """An artifact that is missing, unsafe to store, or whose bytes do not match."""


class SiteError(LabbookError):
    """The journal site could not be built, served or published (two pages on one path…)."""


class FilterSyntaxError(LabbookError):
    """A filter or order_by that does not parse; the message shows where, with a caret."""

    def __init__(self, message: str, column: int):
        super().__init__(message)
        self.column = column


class FormatError(LabbookError):
    """An on-branch file that does not parse; the message names the path and the field."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class NewerFormat(FormatError):
    """An on-branch file written in a newer format than this labbook reads: upgrade."""


class BranchConflict(LabbookError):
    """The experiments branch could not be updated safely."""


class SyncError(LabbookError):
    """A push, pull or sync that could not finish; the local branch is as it was."""


class StorageError(LabbookError):
    """The disk refused a write (no space, I/O error); nothing was half-written."""


class AccessDenied(LabbookError):
    """This user may not read or write the repository (file permissions, git's safe.directory)."""


class GitError(LabbookError):
    """A git command failed; keeps the command, its exit status and its stderr."""

    def __init__(self, argv: list[str], status: int, stderr: str):
        shown = " ".join(argv)
        detail = stderr.strip().splitlines()[-1] if stderr.strip() else f"exit status {status}"
        super().__init__(f"git failed ({shown}): {detail}")
        self.argv = argv
        self.status = status
        self.stderr = stderr
