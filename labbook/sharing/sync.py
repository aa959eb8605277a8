"""Sharing the experiments branch through a git remote: push, pull and sync.

    pull   fetch the remote's branch; fast-forward, or merge it in with a merge
           commit built from trees (labbook's own three-way merge, labbook/format/merge.py)
    push   push the branch; when someone pushed first: fetch, merge, retry for up to
           labbook.pushTimeoutSeconds (60), with growing, random pauses
    sync   pull, then push

The remote's atomic ref update is the distributed compare-and-swap: a push that
is not a fast-forward is refused by git, never forced. A busy remote is retried
by time, not by count: a fixed number of attempts gives up exactly when the team
is busiest. git runs with ``protocol.ext.allow=never`` and ``--end-of-options``
before the remote and refspecs (labbook/storage/gitcmd.py). The local branch moves only
by compare-and-swap (BranchStore.move), so a failed pull or push leaves it
exactly as it was. Authentication is git's (credential helpers, ssh agents,
prompts); labbook runs git's push and fetch with hooks off (no ``pre-push``; see
docs/sync.md). Large artifacts travel through ``labbook.remoteArtifactStore``,
a shared folder, when it is set.
"""

from __future__ import annotations

import hashlib
import logging
import random
import re
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import FormatError, InvalidValue, NewerFormat, SyncError
from ..format import merge, record
from ..format.merge import PathChange, RunFiles
from ..runs.repository import Repository
from ..storage.artifacts import ArtifactStore
from ..storage.store import Blob, Change, check_entry_name

FIRST_PAUSE = 0.1  # seconds: the bound of the first pause after a refused push, which ...
LONGEST_PAUSE = 2.0  # ... doubles up to this; each pause is drawn at random below its bound
_LOCAL_ATTEMPTS = 32  # local compare-and-swap attempts while merging (others commit runs here)
_log = logging.getLogger("labbook")
_DEEP = "--depth=1000000000"  # deepens only the fetched branch (--unshallow deepens every branch)
_FETCH = ["--quiet", "--no-tags", "--no-write-fetch-head", "--no-recurse-submodules",
          "--no-auto-maintenance"]
_SHA256 = re.compile(r"[0-9a-f]{64}")
_MAX_MESSAGE_LINES = 200


@dataclass
class SyncResult:
    """What a push, pull or sync did, for the CLI to print."""

    remote: str
    branch: str
    pulled: str | None = None  # up to date | fast-forward | merged | created | absent
    pushed: str | None = None  # pushed | created | up to date | nothing
    new_runs: int = 0
    reconciled: list[str] = field(default_factory=list)
    unrelated: bool = False
    artifacts_sent: int = 0
    artifacts_received: int = 0
    artifacts_missing: int = 0
    attempts: int = 0  # pushes tried (more than one when others pushed first)
    seconds: float = 0.0  # from the first push attempt to the last

    def lines(self) -> list[str]:
        """One line per thing that happened, then the reconciled runs indented."""
        out = []
        runs = f"{self.new_runs} new run{'s' * (self.new_runs != 1)}"
        pulled = {"up to date": "already up to date", "fast-forward": f"fast-forward, {runs}",
                  "created": f"created the local {self.branch} branch, {runs}",
                  "merged": f"merged, {runs}, {len(self.reconciled)} reconciled"
                            + (" (unrelated histories)" if self.unrelated else ""),
                  "absent": f"{self.remote} has no {self.branch} branch yet"}
        if self.pulled:
            out.append(f"pulled from {self.remote}: {pulled[self.pulled]}")
            out += [f"  {line}" for line in self.reconciled]
        if self.artifacts_received:
            out.append(f"copied {self.artifacts_received} artifacts from the remote artifact store")
        if self.artifacts_missing:
            out.append(f"{self.artifacts_missing} artifacts are in neither artifact store")
        if self.artifacts_sent:
            out.append(f"copied {self.artifacts_sent} artifacts to the remote artifact store")
        pushed = {"pushed": f"pushed {self.branch} to {self.remote}",
                  "created": f"pushed {self.branch} to {self.remote} (a new branch there)",
                  "up to date": f"{self.remote} is up to date",
                  "nothing": f"nothing to push: there is no {self.branch} branch here yet"}
        if self.pushed:
            retried = (f" after {self.attempts} attempts in {self.seconds:.1f} s (others pushed "
                       "first)") if self.attempts > 1 else ""
            out.append(pushed[self.pushed] + retried)
        return out


@dataclass(frozen=True)
class _Target:
    name: str  # a configured remote, a URL or a path: what git fetch/push are given
    tracking: str  # the ref the fetched tip is kept in


# -- the commands ------------------------------------------------------------------------
def pull(repo: Repository, remote: str | None = None, result: SyncResult | None = None) -> SyncResult:
    """Fetch the remote's branch and merge it into the local one (fast-forward when possible)."""
    target = _target(repo, remote)
    shared = _remote_store(repo)
    result = result or SyncResult(target.name, repo.settings.branch)
    theirs = _fetch(repo, target)
    if theirs is None:
        result.pulled = "absent"
    else:
        _integrate(repo, target, theirs, result)
    if shared is not None:
        _receive_artifacts(repo, shared, result)
    return result


def push(repo: Repository, remote: str | None = None, timeout: float | None = None,
         result: SyncResult | None = None) -> SyncResult:
    """Push the local branch; when the remote moved first, fetch, merge and try again, for up
    to ``timeout`` seconds (default: labbook.pushTimeoutSeconds) with growing, jittered pauses."""
    target = _target(repo, remote)
    shared = _remote_store(repo)
    result = result or SyncResult(target.name, repo.settings.branch)
    budget = repo.settings.push_timeout if timeout is None else timeout
    started = time.monotonic()
    pauses = _pauses()
    while True:
        tip = repo.store.tip()
        if tip is None:
            result.pushed = "nothing"
            return result
        if shared is not None:
            _send_artifacts(repo, shared, tip, result)
        result.attempts += 1
        outcome = _push_once(repo, target, tip)
        result.seconds = time.monotonic() - started
        if outcome is not None:
            result.pushed = outcome
            return result
        left = budget - (time.monotonic() - started)
        if left <= 0:
            break
        time.sleep(min(next(pauses), left))  # then fetch, merge, push again
        theirs = _fetch(repo, target)
        if theirs is not None:
            _integrate(repo, target, theirs, result)
    raise SyncError(f"gave up pushing {repo.settings.branch} to {target.name} after "
                    f"{result.attempts} attempts in {result.seconds:.1f} s (labbook.pushTimeoutSeconds "
                    f"is {budget:g}): others kept pushing first; your runs are safe on the local "
                    "branch (merged with theirs): run `labbook push` again, or raise "
                    "labbook.pushTimeoutSeconds")


def _pauses() -> Iterator[float]:
    """Pauses between push attempts: the bound doubles from FIRST_PAUSE up to LONGEST_PAUSE
    and each pause is drawn at random below it, so teammates refused together spread out
    instead of colliding again. The cap stays short: a long pause would hand the remote to
    whoever starts pushing later (they begin with short pauses)."""
    bound = FIRST_PAUSE
    while True:
        yield random.uniform(0, bound)
        bound = min(bound * 2, LONGEST_PAUSE)


def sync(repo: Repository, remote: str | None = None) -> SyncResult:
    """Pull, then push."""
    result = pull(repo, remote)
    return push(repo, remote, result=result)


def configure_fetch(repo: Repository, remote: str | None = None) -> bool:
    """Make plain ``git fetch`` bring the branch: add the refspec
    ``+refs/heads/<branch>:refs/remotes/<remote>/<branch>`` to the remote when it exists
    and none of its refspecs covers the branch. True when it was added."""
    name = remote or repo.settings.remote
    if not _is_configured(repo, name):
        return False
    branch = repo.settings.branch
    wanted = f"+refs/heads/{branch}:refs/remotes/{name}/{branch}"
    found = repo.git.run(["config", "--get-all", f"remote.{name}.fetch"], check=False)
    specs = found.stdout.decode("utf-8", "replace").split()
    covered = {wanted, wanted[1:], f"+refs/heads/*:refs/remotes/{name}/*",
               f"refs/heads/*:refs/remotes/{name}/*"}
    if covered & set(specs):
        return False
    repo.git.run(["config", "--add", f"remote.{name}.fetch", wanted])
    return True


# -- remotes, fetch and push ----------------------------------------------------------------
def _target(repo: Repository, remote: str | None) -> _Target:
    name = (remote if remote is not None else repo.settings.remote).strip()
    if not name or any(ord(c) < 32 for c in name):  # a leading "-" is safe: --end-of-options
        raise InvalidValue(f"{name!r} is not a remote name, URL or path")
    branch = repo.settings.branch
    if _is_configured(repo, name) and not any(c.isspace() for c in name):
        return _Target(name, f"refs/remotes/{name}/{branch}")
    digest = hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    return _Target(name, f"refs/labbook/fetched/{digest}/{branch}")


def _is_configured(repo: Repository, name: str) -> bool:
    proc = repo.git.run(["config", "--get", f"remote.{name}.url"], check=False)
    return proc.returncode == 0


def _fetch(repo: Repository, target: _Target) -> str | None:
    """Fetch the remote's branch into ``target.tracking``; its tip, or None if it has none."""
    branch = repo.settings.branch
    args = list(_FETCH)
    if repo.git.is_shallow():
        args.append(_DEEP)  # the branch's whole history, so a merge base can be found
    refspec = f"+refs/heads/{branch}:{target.tracking}"
    deadline = time.monotonic() + repo.settings.lock_timeout_seconds
    while True:
        proc = repo.git.fetch(target.name, [refspec], args)
        if proc.returncode == 0:
            break
        err = proc.stderr.decode("utf-8", "replace")
        if "couldn't find remote ref" in err:
            return None
        if ".lock" not in err or time.monotonic() > deadline:  # a local tracking ref locked
            raise SyncError(f"could not fetch {branch} from {target.name}: {_git_message(err)}; "
                            "the local branch is unchanged")
        time.sleep(random.uniform(0.01, 0.1))
    found = repo.git.read_object(target.tracking)
    if found is None or found[1] != "commit":
        raise SyncError(f"fetched {branch} from {target.name}, but {target.tracking} is not a commit")
    return found[0]


def _push_once(repo: Repository, target: _Target, tip: str) -> str | None:
    """Push ``tip``; "pushed", "created" or "up to date", or None when the remote moved first."""
    dest = f"refs/heads/{repo.settings.branch}"
    proc = repo.git.push(target.name, [f"{tip}:{dest}"],
                         ["--porcelain", "--no-verify", "--no-recurse-submodules"])
    out, err = proc.stdout.decode("utf-8", "replace"), proc.stderr.decode("utf-8", "replace")
    line = next((ln for ln in out.splitlines()
                 if ln[:1] in " +-*=!" and ln[1:2] == "\t" and ln.split("\t")[1].endswith(f":{dest}")),
                None)
    if line is None:
        raise SyncError(f"could not push to {target.name}: {_git_message(err)}; "
                        "the local branch is unchanged")
    flag, summary = line[0], line.split("\t", 2)[-1]
    if flag == "=":
        return "up to date"
    if flag in " +":
        return "pushed"
    if flag == "*":
        return "created"
    if "[remote rejected]" in summary:
        said = " ".join(ln[len("remote:"):].strip() for ln in err.splitlines()
                        if ln.startswith("remote:") and ln[len("remote:"):].strip())
        reason = summary.replace("[remote rejected]", "").strip(" ()")
        if reason in ("failed to update ref", "failed to lock") and (
                "but expected" in said or "cannot lock ref" in said or ".lock" in said):
            return None  # another push won the race for the remote's ref: merge and retry
        raise SyncError(f"{target.name} refused the push of {repo.settings.branch}: {reason}"
                        + (f" (remote: {said[:300]})" if said else "")
                        + "; the local branch is unchanged")
    if "fetch first" in summary or "non-fast-forward" in summary or "stale info" in summary:
        return None
    raise SyncError(f"could not push to {target.name}: {summary}; the local branch is unchanged")


def _git_message(err: str) -> str:
    """The most telling line of git's stderr (its first fatal or error line)."""
    lines = [ln.strip() for ln in err.splitlines() if ln.strip()]
    for line in lines:
        if line.startswith(("fatal:", "error:")):
            return line
    return lines[-1] if lines else "git failed"


# -- bringing the remote's branch in ------------------------------------------------------
def _integrate(repo: Repository, target: _Target, theirs: str, result: SyncResult) -> None:
    """Make the local branch contain ``theirs``: create, fast-forward or merge, by CAS."""
    store, label = repo.store, _label(target)
    for _ in range(_LOCAL_ATTEMPTS):
        local = store.tip()
        if local is None:
            if store.move(theirs, None, f"labbook pull: {label}"):
                result.pulled, result.new_runs = "created", _count_new_runs(repo, None, theirs)
                return
            continue
        base = _merge_base(repo, local, theirs)
        if base == theirs:
            result.pulled = result.pulled or "up to date"
            return
        if base == local:
            new_runs = _count_new_runs(repo, local, theirs)
            if store.move(theirs, local, f"labbook pull: fast-forward to {label}"):
                result.pulled, result.new_runs = "fast-forward", result.new_runs + new_runs
                return
            continue
        commit, done = _merge_commit(repo, base, local, theirs, label)
        if store.move(commit, local, f"labbook pull: merge {label}"):
            result.pulled, result.unrelated = "merged", base is None
            result.new_runs += done.new_runs
            result.reconciled += done.notes
            return
    raise SyncError(f"the local {store.branch} branch kept moving while merging {label}; "
                    "try again when fewer runs are committing")


def _label(target: _Target) -> str:
    return target.tracking.removeprefix("refs/remotes/") if target.tracking.startswith(
        "refs/remotes/") else target.name


def _merge_base(repo: Repository, local: str, theirs: str) -> str | None:
    proc = repo.git.run(["merge-base", local, theirs], check=False)
    if proc.returncode == 1:
        return None  # unrelated histories (or history cut by a shallow fetch)
    if proc.returncode != 0:
        raise SyncError(f"git merge-base failed: {_git_message(proc.stderr.decode('utf-8', 'replace'))}")
    return proc.stdout.decode().strip()


def _diff(repo: Repository, base: str | None, tip: str,
          folders: dict[str, str] | None = None) -> dict[str, PathChange]:
    """Every file ``tip`` changed since ``base`` (None: the empty tree), renames off.

    With ``folders``, also fills it with the tree id (on ``tip``) of each changed folder.
    """
    old = base or repo.git.write_tree([])
    args = ["diff-tree", "-r", "--no-renames", "--no-commit-id", "-z", *(["-t"] if folders is not None
                                                                        else []), old, tip]
    items = repo.git.run(args).stdout.split(b"\0")
    changes = {}
    for meta, raw_path in zip(items[0::2], items[1::2], strict=False):
        if not meta.startswith(b":"):
            continue
        _, mode, src, dst, _status = meta[1:].decode().split(" ")
        mode = mode.lstrip("0")  # diff-tree writes 040000; tree objects hold 40000
        path = raw_path.decode("utf-8", "surrogateescape")
        zero = set(src) == {"0"}, set(dst) == {"0"}
        if mode == merge.FOLDER_MODE:
            if folders is not None and not zero[1]:
                folders[path] = dst
            continue
        changes[path] = PathChange(None if zero[0] else src, None if zero[1] else dst,
                                   None if zero[1] else mode)
    return changes


def _count_new_runs(repo: Repository, local: str | None, theirs: str) -> int:
    return sum(1 for path, c in _diff(repo, local, theirs).items()
               if c.old is None and c.new is not None and path.endswith("/run.yaml"))


# -- the merge commit -------------------------------------------------------------------
@dataclass
class _Done:
    new_runs: int
    notes: list[str]


def _merge_commit(repo: Repository, base: str | None, local: str, theirs: str,
                  label: str) -> tuple[str, _Done]:
    """Write the merge commit of ``theirs`` into ``local`` (not yet on the branch)."""
    folders: dict[str, str] = {}
    ours_diff, theirs_diff = _diff(repo, base, local), _diff(repo, base, theirs, folders)
    refused = _leave_out_unsafe(theirs_diff, folders, theirs)
    todo = merge.plan(ours_diff, theirs_diff, folders)
    changes: dict[str, Change] = {path: Blob(c.new, c.mode or "100644") if c.new else None
                                  for path, c in todo.take.items()}
    notes = refused + list(todo.notes)
    versions = {}
    for rid in sorted(todo.runs):
        for path in (record.run_path(rid), record.history_path(rid)):
            versions[path] = _versions(repo, local, path, ours_diff.get(path), theirs_diff.get(path))
    for slug in sorted(todo.experiments):
        path = record.experiment_path(slug)
        versions[path] = _versions(repo, local, path, ours_diff.get(path), theirs_diff.get(path))
    blobs = repo.store.blobs([oid for trio in versions.values() for oid in trio if oid])

    def content(path: str, side: int) -> bytes | None:
        oid = versions[path][side]
        return blobs[oid] if oid else None

    run_notes = []
    for rid in sorted(todo.runs):
        rpath, hpath = record.run_path(rid), record.history_path(rid)
        sides = [RunFiles(content(rpath, i), content(hpath, i)) for i in range(3)]
        try:
            files, line = merge.merge_run(rid, *sides, source=theirs)
        except NewerFormat:
            raise  # an upgrade is needed: the pull stops, the local branch as it was
        except FormatError as exc:  # one side's record does not read: keep ours as it is
            _log.warning("labbook: skipping %s (commit %s): %s", exc.path, theirs[:12], exc.reason)
            run_notes.append(f"kept the local run {rid[:8]}: {exc}")
            continue
        if files.record is not None:
            changes[rpath] = files.record
        if files.history is not None:
            changes[hpath] = files.history
        run_notes.append(line)
    for slug in sorted(todo.experiments):
        path = record.experiment_path(slug)
        data, line = merge.merge_experiment(slug, content(path, 0), content(path, 1) or b"",
                                            content(path, 2) or b"")
        changes[path] = data
        notes.append(line)
    notes = run_notes + notes
    message = _message(label, todo.new_runs, notes, base is None)
    return repo.store.write_merge(local, theirs, changes, message), _Done(todo.new_runs, notes)


def _leave_out_unsafe(theirs_diff: dict[str, PathChange], folders: dict[str, str],
                      theirs: str) -> list[str]:
    """Drop from the other side's changes every path a reader would refuse (git's special
    names, '..', folders under runs/ that are not run folders), with a warning and a line for
    the merge message each; a run folder holding one is no longer taken as a whole."""
    said = []
    for path in list(theirs_diff):
        problem = _path_problem(path)
        if problem is None:
            continue
        del theirs_diff[path]
        for folder in [f for f in folders if path.startswith(f + "/")]:
            del folders[folder]
        _log.warning("labbook: skipping %s (commit %s): %s", path, theirs[:12], problem)
        said.append(f"left out {path!r}: {problem}")
    return said


def _path_problem(path: str) -> str | None:
    parts = path.split("/")
    for part in parts:
        try:
            check_entry_name(part)
        except InvalidValue as exc:
            return str(exc)
    if parts[0] == "runs" and len(parts) > 2:
        return record.run_folder_problem(parts[1], parts[2] if len(parts) > 3 else None)
    return None


def _versions(repo: Repository, local: str, path: str, mine: PathChange | None,
              other: PathChange | None) -> tuple[str | None, str | None, str | None]:
    """The blob of ``path`` in the base, here and there."""
    if mine is None and other is None:
        entry = repo.store.snapshot(local).entry(path)
        oid = entry.oid if entry is not None and not entry.is_tree else None
        return oid, oid, oid
    base = (mine or other).old  # type: ignore[union-attr]
    return base, mine.new if mine else base, other.new if other else base


def _message(label: str, new_runs: int, notes: list[str], unrelated: bool) -> str:
    reconciled = sum(1 for n in notes if n.startswith("run "))
    subject = f"merge {label}: {new_runs} new run{'s' * (new_runs != 1)}, {reconciled} reconciled"
    body = []
    if unrelated:
        body.append("The two histories share no commit (each side started its own branch, or a "
                    "shallow history): merged against an empty base.")
    if notes:
        shown = notes[:_MAX_MESSAGE_LINES]
        body += ["Reconciled:"] + [f"- {n}" for n in shown]
        if len(notes) > len(shown):
            body.append(f"- … and {len(notes) - len(shown)} more")
    return subject + ("\n\n" + "\n".join(body) if body else "")


# -- large artifacts ---------------------------------------------------------------------
def _remote_store(repo: Repository) -> ArtifactStore | None:
    where = repo.settings.remote_artifact_store
    if where is None:
        return None
    if "://" in where:
        raise InvalidValue(f"labbook.remoteArtifactStore = {where!r}: give a folder path "
                           "(a shared or network folder), not a URL")
    root = Path(where).expanduser()
    if not root.is_dir():
        raise SyncError(f"labbook.remoteArtifactStore {root} is not a folder (is the share "
                        "mounted?); nothing was pushed or pulled")
    return ArtifactStore(root)


def _stored_artifacts(repo: Repository, tip: str) -> list[str]:
    """The sha256 of every artifact in the artifact store that a run at ``tip`` points at."""
    from ..reading.catalog import Catalog  # only with a shared artifact folder: keeps `import labbook` light

    found = set()
    for plain in Catalog(repo).records(repo.store.snapshot(tip)):
        for pointer in plain.get("artifacts") or []:
            digest = pointer.get("sha256")
            if pointer.get("location") == "store" and isinstance(digest, str) \
                    and _SHA256.fullmatch(digest):
                found.add(digest)
    return sorted(found)


def _send_artifacts(repo: Repository, shared: ArtifactStore, tip: str, result: SyncResult) -> None:
    local = repo.artifact_store
    todo = [d for d in _stored_artifacts(repo, tip) if local.has(d) and not shared.has(d)]
    _copy(todo, local, shared, f"copying artifacts to {shared.root}")
    result.artifacts_sent += len(todo)


def _receive_artifacts(repo: Repository, shared: ArtifactStore, result: SyncResult) -> None:
    tip = repo.store.tip()
    if tip is None:
        return
    local = repo.artifact_store
    wanted = [d for d in _stored_artifacts(repo, tip) if not local.has(d)]
    todo = [d for d in wanted if shared.has(d)]
    _copy(todo, shared, local, f"copying artifacts from {shared.root}")
    result.artifacts_received += len(todo)
    result.artifacts_missing = len(wanted) - len(todo)


def _copy(digests: list[str], source: ArtifactStore, dest: ArtifactStore, what: str) -> None:
    """Copy objects (each checked against its sha256), with a progress line on a terminal."""
    show = len(digests) > 5 and sys.stderr.isatty()
    for done, digest in enumerate(digests, start=1):
        try:
            dest.put(source.location_of(digest), digest)
        except OSError as exc:
            raise SyncError(f"{what}: {digest[:12]} failed: {exc}") from exc
        if show:
            print(f"\r{what}: {done}/{len(digests)}", end="", file=sys.stderr, flush=True)
    if show:
        print(file=sys.stderr)
