"""``labbook site serve``: the built site on http://HOST:PORT, rebuilt when the branch moves.

One background thread polls the branch tip (a ref read, cheap) and rebuilds when it
changes; the HTTP server reads files, and answers one read-only JSON endpoint,
``/_live/runs.json``: the runs whose journals are open, read from the journals
(labbook/reading/live.py), which the pages poll to show runs while they train.
"""

from __future__ import annotations

import errno
import functools
import http.server
import json
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import SiteError
from ..runs.repository import Repository
from .build import BuildResult, build

DEFAULT_HOST = "127.0.0.1"


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-cache")
        self.send_header("X-Content-Type-Options", "nosniff")
        super().end_headers()


LIVE_PATH = "/_live/runs.json"


class _LiveHandler(_QuietHandler):
    """The site's files, plus one read-only JSON endpoint: the runs whose journals are open."""

    def __init__(self, *args: Any, live: Callable[[], list[dict[str, Any]]], **kwargs: Any) -> None:
        self.live = live
        super().__init__(*args, **kwargs)

    def do_GET(self) -> None:
        if self.path.split("?", 1)[0] != LIVE_PATH:
            super().do_GET()
            return
        try:
            body, status = json.dumps({"runs": self.live()}, allow_nan=False).encode(), 200
        except Exception as exc:  # one line for the page; the server keeps serving
            body, status = json.dumps({"error": f"{type(exc).__name__}: {exc}"}).encode(), 500
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _Server(http.server.ThreadingHTTPServer):
    """A threading HTTP server whose address family follows the host (IPv6 for ``::``)."""

    def __init__(self, host: str, port: int, handler: Callable[..., _QuietHandler]) -> None:
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        super().__init__((host, port), handler)


def make_server(root: Path, port: int = 8000, host: str = DEFAULT_HOST,
                live: Callable[[], list[dict[str, Any]]] | None = None) -> http.server.ThreadingHTTPServer:
    """An HTTP server for ``root`` on ``host`` (127.0.0.1 unless told otherwise; port 0 picks a free port);
    with ``live``, it also answers ``/_live/runs.json`` with what ``live()`` returns.

    A busy port, an unknown host or a port that needs privileges raises SiteError in one line.
    """
    handler = functools.partial(_QuietHandler, directory=str(root)) if live is None else \
        functools.partial(_LiveHandler, directory=str(root), live=live)
    try:
        return _Server(host, port, handler)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise SiteError(f"port {port} on {host} is in use by another program; "
                             f"choose another with --port, or --port 0 for any free port") from exc
        if exc.errno in (errno.EACCES, errno.EPERM):
            raise SiteError(f"no permission to listen on port {port} of {host} "
                             f"(ports below 1024 need privileges); choose another with --port") from exc
        reason = exc.strerror or str(exc)
        raise SiteError(f"cannot listen on {host} port {port}: {reason}") from exc


def server_url(server: http.server.HTTPServer) -> str:
    """The URL a browser opens for ``server`` (IPv6 hosts in brackets)."""
    host, port = server.server_address[0], server.server_address[1]
    shown = f"[{host}]" if ":" in str(host) else str(host)
    return f"http://{shown}:{port}/"


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


def live_source(repo: Repository) -> Callable[[], list[dict[str, Any]]]:
    """What ``/_live/runs.json`` answers: the running runs read from their journals (one at a time)."""
    from ..reading import live
    from .context import run_page

    lock = threading.Lock()

    def runs() -> list[dict[str, Any]]:
        with lock:
            return live.live_runs(Repository(repo.git), run_page)

    return runs


def serve(repo: Repository, root: Path, port: int = 8000, interval: float = 1.0,
          on_ready: Callable[[str], None] | None = None,
          on_build: Callable[[BuildResult], None] | None = None, host: str = DEFAULT_HOST) -> None:
    """Build, then serve on ``host``:``port`` until interrupted, rebuilding when the branch moves."""
    server = make_server(root, port, host, live_source(repo))  # a busy port fails before a long build
    build(repo, root)
    stop = threading.Event()
    watcher = threading.Thread(target=watch, args=(repo, root, stop, interval, on_build), daemon=True)
    watcher.start()
    if on_ready:
        on_ready(server_url(server))
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        server.server_close()
        watcher.join(timeout=5)
