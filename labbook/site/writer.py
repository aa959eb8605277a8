"""Writes the site: atomically, skipping unchanged files, refusing two outputs on one path.

A manifest (``.labbook-site.json`` in the output folder) remembers, per file, the
key of what it was made from; ``fresh(path, key)`` lets the builder skip even
rendering a page whose inputs did not change. Files of the previous build that
this build did not produce are removed at ``finish``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import SiteError

MANIFEST = ".labbook-site.json"


@dataclass
class Report:
    """What one build did to the output folder."""

    written: list[str] = field(default_factory=list)
    unchanged: int = 0
    removed: list[str] = field(default_factory=list)


class Writer:
    """The output folder of one build."""

    def __init__(self, root: Path, fingerprint: str):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.fingerprint = fingerprint
        self.report = Report()
        self._made: set[str] = set()
        self._keys: dict[str, str] = {}
        old = self._load()
        self._old: dict[str, str] = old.get("files", {}) if old.get("fingerprint") == fingerprint else {}
        self._previous: set[str] = set(old.get("files", {}))

    def _load(self) -> dict:
        try:
            data = json.loads((self.root / MANIFEST).read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _claim(self, path: str) -> Path:
        if path in self._made:
            raise SiteError(f"two outputs of the site build want {path!r}")
        parts = path.split("/")
        if not path or path.startswith("/") or any(p in ("", ".", "..") for p in parts) or "\\" in path:
            raise SiteError(f"unsafe output path {path!r}")
        self._made.add(path)
        return self.root.joinpath(*parts)

    def fresh(self, path: str, key: str) -> bool:
        """True (and the file counts as produced) if ``path`` was last made from ``key``."""
        if self._old.get(path) != key or not self.root.joinpath(*path.split("/")).is_file():
            return False
        self._claim(path)
        self._keys[path] = key
        self.report.unchanged += 1
        return True

    def write(self, path: str, content: str | bytes, key: str = "") -> None:
        """Write ``content`` to ``path`` unless the file already holds exactly that."""
        target = self._claim(path)
        self._keys[path] = key
        data = content.encode("utf-8") if isinstance(content, str) else content
        try:
            if target.stat().st_size == len(data) and target.read_bytes() == data:
                self.report.unchanged += 1
                return
        except OSError:
            pass
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, target)
        self.report.written.append(path)

    def finish(self) -> Report:
        """Remove what the previous build made and this one did not; save the manifest."""
        for path in sorted(self._previous - self._made):
            target = self.root.joinpath(*path.split("/"))
            if target.is_file():
                target.unlink()
                self.report.removed.append(path)
        manifest = {"fingerprint": self.fingerprint, "files": self._keys}
        tmp = self.root / f".{MANIFEST}.tmp"
        tmp.write_text(json.dumps(manifest, sort_keys=True))
        os.replace(tmp, self.root / MANIFEST)
        return self.report
