"""BranchStore: the experiments branch as a tree of files, changed by atomic commits.

Only this module moves the branch. A commit rebuilds just the trees on the
paths that change (a run's folder, its fan-out folder, ``runs/`` and the root),
writes them in-process, and moves the ref with one compare-and-swap
``git update-ref``. When another writer moved the branch first, the edit is
applied again on the new tip, so concurrent writers never lose each other's work.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import threading
import time
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from ..errors import BranchConflict, InvalidValue, LabbookError
from .gitcmd import (
    BLOB_MODE,
    TREE_MODE,
    Git,
    MissingObject,
    RefUpdate,
    TreeEntry,
    format_tree,
    parse_tree,
)


@dataclass(frozen=True)
class Blob:
    """A change that points a path at an already written blob (mode: git's file mode)."""

    oid: str
    mode: str = BLOB_MODE


T = TypeVar("T")
Change = bytes | Blob | None  # new content, an existing blob, or removal
Edit = Mapping[str, Change] | Callable[["Snapshot"], Mapping[str, Change]]

# Code points git ignores when it compares names on HFS+ (fsck's hasDotgit check).
_HFS_IGNORED = {chr(c) for c in (0x200C, 0x200D, 0x200E, 0x200F, 0x202A, 0x202B, 0x202C,
                                 0x202D, 0x202E, 0x206A, 0x206B, 0x206C, 0x206D, 0x206E,
                                 0x206F, 0xFEFF)}
_MAX_NAME_BYTES = 255
_GIT_NAMES = {".git", ".gitmodules", ".gitattributes", ".gitignore", ".mailmap"}
_GIT_SHORT_NAME = re.compile(r"(git|gitmod)~[0-9]+")  # NTFS 8.3 names of .git and .gitmodules
_REMEMBER_BYTES = 1 << 20  # blobs up to this size are kept in memory until a ref reaches them
_REMEMBER_COUNT = 32
_REPAIR_SECONDS = 1.0  # how long a writer may take to restore what a finished gc pruned


def check_entry_name(name: str) -> None:
    """Refuse a tree entry name that git or a checking remote would treat as dangerous:
    empty, ``.``, ``..``, slashes, control characters, and git's names in any case or
    disguise (``.git``, ``.GIT``, ``git~1``, ``.git`` + an ignorable code point, ``.gitmodules``,
    ``.gitattributes``, ``.gitignore``, ``gitmod~1``: `git fsck` flags these, so a remote
    with ``receive.fsckObjects`` would refuse every later push)."""
    if name in ("", ".", ".."):
        raise InvalidValue(f"path component {name!r} is not allowed")
    if "/" in name or "\\" in name or any(unicodedata.category(ch) == "Cc" for ch in name):
        raise InvalidValue(f"path component {name!r} contains a slash, backslash or control character")
    if len(name.encode("utf-8", "surrogateescape")) > _MAX_NAME_BYTES:
        raise InvalidValue(f"path component {name[:40]!r}… is longer than {_MAX_NAME_BYTES} bytes")
    folded = "".join(ch for ch in name if ch not in _HFS_IGNORED).casefold().rstrip(". ")
    if folded in _GIT_NAMES or _GIT_SHORT_NAME.fullmatch(folded):
        raise InvalidValue(f"path component {name!r} is reserved by git and is not allowed "
                           "(.git, .gitmodules, .gitattributes, .gitignore, .mailmap and their "
                           "8.3 forms git~1, gitmod~1, in any case; .github and the like are fine)")


def check_path(path: str) -> list[str]:
    """Split a branch path into checked components."""
    parts = path.split("/")
    for part in parts:
        check_entry_name(part)
    return parts


class Snapshot:
    """Read access to one tree of the branch (the tip an edit is applied to)."""

    def __init__(self, store: BranchStore, commit: str | None, tree: str | None):
        self.store = store
        self.commit = commit
        self.tree = tree

    def entry(self, path: str) -> TreeEntry | None:
        """The tree entry at ``path``, or None."""
        if self.tree is None:
            return None
        current = TreeEntry(TREE_MODE, "", self.tree)
        for part in path.strip("/").split("/") if path.strip("/") else []:
            if not current.is_tree:
                return None
            current = next((e for e in self.store.tree(current.oid) if e.name == part), None)
            if current is None:
                return None
        return current

    def read(self, path: str) -> bytes | None:
        """The content of the file at ``path``, or None if there is none."""
        found = self.entry(path)
        if found is None or found.is_tree:
            return None
        return self.store.settled(self.store.git.read_blob, found.oid)

    def list(self, path: str) -> list[TreeEntry]:
        """The entries of the folder at ``path`` (empty if there is none)."""
        found = self.entry(path)
        if found is None or not found.is_tree:
            return []
        return self.store.tree(found.oid)


class BranchStore:
    """The ``experiments`` branch (or the branch named by ``labbook.branch``)."""

    def __init__(self, git: Git, branch: str, identity: tuple[str, str],
                 lock_timeout: float = 10.0):
        self.git = git
        self.branch = branch
        self.ref = f"refs/heads/{branch}"
        self.identity = identity
        self.lock_timeout = lock_timeout
        self._trees: dict[str, list[TreeEntry]] = {}
        self._building = threading.local()  # .written: objects of the commit being built
        self._recent: dict[str, bytes] = {}  # blobs written, not yet reached by a ref

    # -- reading -------------------------------------------------------------
    def tip(self) -> str | None:
        """The commit the branch points at, or None if it does not exist yet."""
        found = self.git.read_object(self.ref)
        if found is None or found[1] != "commit":
            return None
        return found[0]

    def snapshot(self, commit: str | None = None) -> Snapshot:
        """A view of the branch at ``commit`` (default: the tip)."""
        commit = commit if commit is not None else self.tip()
        if commit is None:
            return Snapshot(self, None, None)
        return Snapshot(self, commit, self.commit_tree(commit))

    def commit_tree(self, commit: str) -> str:
        """The root tree of a commit."""
        found = self.settled(self._read_commit, commit)
        if found[1] != "commit":
            raise BranchConflict(f"{self.ref} points at {commit}, which is not a commit")
        first_line = found[2].split(b"\n", 1)[0].decode()
        return first_line.split()[1]

    def _read_commit(self, commit: str) -> tuple[str, str, bytes]:
        found = self.git.read_object(commit)
        if found is None:
            raise MissingObject(["cat-file", "commit", commit], 128, f"commit {commit} is missing")
        return found

    def settled(self, read: Callable[[str], T], oid: str) -> T:
        """``read(oid)``; when the object is missing because a ``git gc --prune=now`` took it
        from under a writer (who writes it again once the gc ends, see ``_settle``), wait
        for the gc and a moment more before believing it is gone."""
        try:
            return read(oid)
        except MissingObject:
            if not self.git.gc_ran_lately():
                raise  # missing for good: a broken repository, a partial clone offline
            self.git.wait_for_gc()
            deadline = time.monotonic() + _REPAIR_SECONDS
            while True:
                time.sleep(0.02)
                try:
                    return read(oid)
                except MissingObject:
                    if time.monotonic() > deadline:
                        raise

    def tree(self, oid: str) -> list[TreeEntry]:
        """The entries of a tree, cached by id (a tree id never changes meaning)."""
        entries = self._trees.get(oid)
        if entries is None:
            if len(self._trees) > 4096:
                self._trees.clear()
            entries = self.settled(self.git.read_tree, oid)
            self._trees[oid] = entries
        return entries

    def trees(self, oids: list[str]) -> dict[str, list[TreeEntry]]:
        """Many trees at once (cached ones from memory, the rest in one batch)."""
        out = {oid: self._trees[oid] for oid in oids if oid in self._trees}
        missing = [oid for oid in dict.fromkeys(oids) if oid not in out]
        for oid, found in zip(missing, self.git.read_many(missing), strict=True):
            if found is None or found[1] != "tree":
                raise BranchConflict(f"tree {oid} of {self.ref} is missing from the repository")
            out[oid] = parse_tree(found[2], self.git.oid_bytes)
        return out

    def files(self, tree: str) -> list[tuple[str, TreeEntry]]:
        """Every file beneath a tree, as (path inside it, entry): one walk done by git."""
        return self.git.list_files(tree)

    def blobs(self, oids: list[str]) -> dict[str, bytes]:
        """The content of many blobs, read in one batch."""
        unique = list(dict.fromkeys(oids))
        out = {}
        for oid, found in zip(unique, self.git.read_many(unique), strict=True):
            if found is None:
                raise BranchConflict(f"blob {oid} of {self.ref} is missing from the repository")
            out[oid] = found[2]
        return out

    # -- writing -------------------------------------------------------------
    def write_blob(self, data: bytes) -> Blob:
        """Store bytes as a blob now; commit them later by path with the returned Blob (or
        keep it with :meth:`keep` meanwhile). Small blobs are remembered until then, so one a
        concurrent ``git gc --prune=now`` removed can be written again."""
        oid = self.git.write_object("blob", data)
        if len(data) <= _REMEMBER_BYTES:
            self._recent[oid] = data
            while len(self._recent) > _REMEMBER_COUNT:
                del self._recent[next(iter(self._recent))]
        return Blob(oid)

    def keep(self, owner: str, blobs: list[Blob]) -> None:
        """Keep written-but-uncommitted blobs reachable from ``refs/labbook/pending/<owner>``
        (a tree listing them), so ``git gc --prune=now`` cannot drop them before a commit
        references them. New objects are dated ahead (``gitcmd.FRESH_SECONDS``), so this
        must happen within a few seconds of writing them."""
        entries = {b.oid: TreeEntry(b.mode, b.oid, b.oid) for b in blobs}
        self._building.written = []
        self.git.set_ref(pending_ref(owner), self._write("tree", format_tree(list(entries.values()))))
        self._settle(self._building.written, [b.oid for b in blobs])

    def release(self, owner: str) -> None:
        """Drop ``owner``'s pending ref, once the branch references what it kept (best effort:
        a ref left behind only keeps a few objects longer)."""
        with contextlib.suppress(LabbookError):
            self.git.delete_ref(pending_ref(owner))

    def commit(self, edit: Edit, message: str | Callable[[], str], *,
               allow_empty: bool = False) -> str | None:
        """Apply ``edit`` to the tip and move the branch there atomically.

        ``edit`` maps paths to new content (or is a function of the tip's snapshot
        returning such a mapping). ``message`` may be a function, asked after the
        edit ran (so an edit can word its own notebook line). Returns the new commit,
        or None when the edit changed nothing. A lost race re-applies the edit on
        the new tip.
        """
        locked_since: float | None = None
        missing_since: float | None = None
        for attempt in range(1000):
            self._refuse_if_checked_out()
            tip = self.tip()
            self._building.written = []
            try:
                snapshot = self.snapshot(tip)
                changes = edit(snapshot) if callable(edit) else edit
                new_tree = self._apply(snapshot.tree, _group(changes))
            except MissingObject:  # a gc --prune=now took what another writer is restoring
                missing_since = missing_since or time.monotonic()
                if time.monotonic() - missing_since > self.lock_timeout:
                    raise
                self.git.wait_for_gc()
                time.sleep(0.05)
                continue
            if new_tree == snapshot.tree and not allow_empty:
                return None
            text = message() if callable(message) else message
            commit = self._write_commit(new_tree, tip, text)
            outcome = self.git.update_ref(self.ref, commit, tip, text.split("\n", 1)[0])
            if outcome is RefUpdate.DONE:
                self._settle(self._building.written, _blob_ids(changes))
                return commit
            if outcome is RefUpdate.PRUNED:  # written again on the next attempt, once gc is done
                self.git.wait_for_gc()
                continue
            if outcome is RefUpdate.LOCKED:
                locked_since = locked_since or time.monotonic()
                if time.monotonic() - locked_since > self.lock_timeout:
                    raise BranchConflict(self._lock_message())
            else:
                locked_since = None
            time.sleep(random.uniform(0, min(0.05, 0.002 * (attempt + 1))))
        raise BranchConflict(f"gave up updating {self.ref} after 1000 lost races")

    def write_merge(self, local: str, other: str, changes: Mapping[str, Change], message: str) -> str:
        """Write a merge commit (parents ``local`` and ``other``) whose tree is ``local``'s tree
        with ``changes`` applied; the branch is not moved (see :meth:`move`).

        A change that would put a file where the tree has a folder, or a folder where
        it has a file, raises BranchConflict instead of replacing what is there.
        """
        tree = self._apply(self.commit_tree(local), _group(changes), strict=True)
        return self._write_commit(tree or self.git.write_tree([]), local, message, other)

    def move(self, new: str, old: str | None, message: str) -> bool:
        """Point the branch at the existing commit ``new`` if it is still at ``old``.

        Compare-and-swap: returns False (and changes nothing) when the branch moved.
        """
        locked_since: float | None = None
        while True:
            self._refuse_if_checked_out()
            outcome = self.git.update_ref(self.ref, new, old, message)
            if outcome is RefUpdate.DONE:
                return True
            if outcome is RefUpdate.MOVED:
                return False
            if outcome is RefUpdate.PRUNED:
                raise BranchConflict(f"commit {new} vanished before {self.ref} could point at it "
                                     "(was `git gc --prune=now` running?); try again")
            locked_since = locked_since or time.monotonic()
            if time.monotonic() - locked_since > self.lock_timeout:
                raise BranchConflict(self._lock_message())
            time.sleep(random.uniform(0.001, 0.02))

    def _lock_message(self) -> str:
        lock = self.git.lock_file(self.ref)
        return (f"{self.ref} stayed locked for {self.lock_timeout:.0f}s: {lock} exists. "
                "If no git or labbook process is running (check with `ps aux | grep git`), "
                f"the lock is stale: remove it with `rm '{lock}'`")

    def _refuse_if_checked_out(self) -> None:
        users = self.git.worktrees_on(self.ref)
        if users:
            raise BranchConflict(
                f"the branch {self.branch!r} is checked out in {users[0]}; labbook will not move "
                "it under that work tree's feet: switch that work tree to another branch first")

    def _write(self, kind: str, data: bytes) -> str:
        """Write an object for the commit being built, remembering it until it is settled."""
        oid = self.git.write_object(kind, data)
        getattr(self._building, "written", []).append((oid, kind, data))
        return oid

    def _settle(self, written: list[tuple[str, str, bytes]], blobs: list[str]) -> None:
        """Make sure what a ref now reaches is still there. A ``git gc --prune=now`` whose walk
        began before the ref moved may delete the objects written just before: wait for
        such a gc to end, then write again what it removed (git's docs call --prune=now
        unsafe beside a writer; this makes it safe beside labbook)."""
        recent = [(oid, "blob", self._recent.pop(oid)) for oid in blobs if oid in self._recent]
        objects = written + recent
        if not self.git.gc_running() and all(
                os.path.exists(os.path.join(self.git.objects_dir, oid[:2], oid[2:]))
                for oid, _, _ in objects):
            return
        self.git.wait_for_gc()
        for oid, kind, data in objects:
            if not self.git.has_object(oid):
                self.git.write_object(kind, data)

    def _write_commit(self, tree: str, parent: str | None, message: str, *others: str) -> str:
        name, email = self.identity
        stamp = f"{int(time.time())} +0000"
        lines = [f"tree {tree}"]
        lines += [f"parent {p}" for p in (parent, *others) if p]
        lines += [f"author {name} <{email}> {stamp}", f"committer {name} <{email}> {stamp}", ""]
        body = "\n".join(lines) + "\n" + message.rstrip("\n") + "\n"
        return self._write("commit", body.encode("utf-8"))

    def _apply(self, tree: str | None, changes: dict[str, object], strict: bool = False,
               where: str = "") -> str | None:
        entries = {e.name: e for e in self.tree(tree)} if tree else {}
        for name, change in changes.items():
            existing = entries.get(name)
            folder = isinstance(change, dict) or (isinstance(change, Blob) and change.mode == TREE_MODE)
            if strict and existing is not None and change is not None and existing.is_tree != folder:
                raise BranchConflict(f"{where}{name} is a {'folder' if existing.is_tree else 'file'} "
                                     "on one side and not on the other; labbook will not replace it")
            if isinstance(change, dict):
                child = existing.oid if existing is not None and existing.is_tree else None
                new = self._apply(child, change, strict, f"{where}{name}/")
            elif change is None:
                new = None
            elif isinstance(change, Blob):
                new = change.oid
            else:
                new = self._write("blob", change)
            if new is None:
                entries.pop(name, None)
            else:
                mode = TREE_MODE if isinstance(change, dict) else \
                    change.mode if isinstance(change, Blob) else BLOB_MODE  # a Blob may be a tree
                entries[name] = TreeEntry(mode, name, new)
        if not entries:
            return None
        return self._write("tree", format_tree(list(entries.values())))


def _blob_ids(changes: Mapping[str, Change]) -> list[str]:
    return [change.oid for change in changes.values() if isinstance(change, Blob)]


def pending_ref(owner: str) -> str:
    """The private ref that keeps a live run's uncommitted objects from ``git gc``."""
    check_entry_name(owner)
    return f"refs/labbook/pending/{owner}"


def _group(changes: Mapping[str, Change]) -> dict[str, object]:
    """Turn ``{"a/b/c": x}`` into nested ``{"a": {"b": {"c": x}}}``, checking every name."""
    root: dict[str, object] = {}
    for path, change in changes.items():
        parts = check_path(path)
        node = root
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise InvalidValue(f"{path!r} puts a file and a folder on one path")
            node = child
        node[parts[-1]] = change
    return root


def identity_from(settings: Mapping[str, str]) -> tuple[str, str]:
    """The commit identity: git's user.name/user.email, or the login name on this host."""
    login = os.environ.get("USER") or os.environ.get("LOGNAME") or "labbook"
    name = settings.get("user.name") or login
    email = settings.get("user.email") or f"{login}@localhost"
    strip = str.maketrans("", "", "<>\n\r")
    return name.translate(strip).strip() or login, email.translate(strip).strip() or "labbook@localhost"
