"""``labbook site serve``: the built site on http://127.0.0.1:PORT, rebuilt when the branch moves.

One background thread polls the branch tip (a ref read, cheap) and rebuilds when it
changes; the HTTP server only reads files, so it never touches git.
"""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Callable
from pathlib import Path

from ..repository import Repository
from .build import BuildResult, build


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-cache")
        self.send_header("X-Content-Type-Options", "nosniff")
        super().end_headers()


def make_server(root: Path, port: int = 8000) -> http.server.ThreadingHTTPServer:
    """An HTTP server for ``root`` bound to 127.0.0.1 only (port 0 picks a free port)."""
    handler = functools.partial(_QuietHandler, directory=str(root))
    return http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)


def watch(repo: Repository, root: Path, stop: threading.Event, interval: float = 1.0,
          on_build: Callable[[BuildResult], None] | None = None) -> None:
    """Rebuild ``root`` whenever the branch tip moves, until ``stop`` is set."""
    seen = repo.store.tip()
    while not stop.wait(interval):
        tip = repo.store.tip()
        if tip != seen:
            seen = tip
            result = build(repo, root)
            if on_build:
                on_build(result)


def serve(repo: Repository, root: Path, port: int = 8000, interval: float = 1.0,
          on_ready: Callable[[str], None] | None = None,
          on_build: Callable[[BuildResult], None] | None = None) -> None:
    """Build, then serve until interrupted, rebuilding when the branch moves."""
    build(repo, root)
    server = make_server(root, port)
    stop = threading.Event()
    watcher = threading.Thread(target=watch, args=(repo, root, stop, interval, on_build), daemon=True)
    watcher.start()
    if on_ready:
        on_ready(f"http://127.0.0.1:{server.server_address[1]}/")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        server.server_close()
        watcher.join(timeout=5)
