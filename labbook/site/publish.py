"""``labbook site publish``: commit a built site to the ``gh-pages`` branch for GitHub Pages.

Plumbing only, through a BranchStore on gh-pages: blobs, trees, a commit and a
compare-and-swap ref update. The user's checkout, index and current branch are
never touched. Files of the previous publication the new site no longer has are
removed; the incremental build's own files (``.labbook-*``: its manifest and caches) and
temporary files are not published.
"""

from __future__ import annotations

from pathlib import Path

from ..runs.repository import Repository
from ..storage.store import BranchStore, Change, Snapshot

PAGES_BRANCH = "gh-pages"
BUILD_FILE_PREFIX = ".labbook-"  # the incremental build's manifest and caches


def published_files(snapshot: Snapshot, folder: str = "") -> list[str]:
    """Every file path on the branch at ``snapshot``."""
    found = []
    for entry in snapshot.list(folder):
        path = f"{folder}/{entry.name}" if folder else entry.name
        found.extend(published_files(snapshot, path) if entry.is_tree else [path])
    return found


def _is_site_file(path: Path) -> bool:
    """A page or asset of the site, not the build's manifest, caches or temporary files."""
    return path.is_file() and not path.name.startswith(BUILD_FILE_PREFIX) and not path.name.endswith(".tmp")


def publish(repo: Repository, root: Path, branch: str = PAGES_BRANCH) -> str | None:
    """Commit the site in ``root`` to ``branch``; the new commit, or None if nothing changed."""
    store = BranchStore(repo.git, branch, repo.identity)
    files = {p.relative_to(root).as_posix(): p for p in sorted(root.rglob("*")) if _is_site_file(p)}
    blobs = {path: store.write_blob(p.read_bytes()) for path, p in files.items()}
    blobs[".nojekyll"] = store.write_blob(b"")

    def edit(snapshot: Snapshot) -> dict[str, Change]:
        changes: dict[str, Change] = {path: None for path in published_files(snapshot) if path not in blobs}
        changes.update(blobs)
        return changes

    return store.commit(edit, f"labbook: publish the journal ({len(files)} files)")
