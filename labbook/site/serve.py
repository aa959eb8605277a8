"""``labbook site serve``: the built site on http://HOST:PORT, rebuilt when the branch moves.

One background thread polls the branch tip (a ref read, cheap) and rebuilds when it
changes; the HTTP server only reads files, so it never touches git.
"""

from __future__ import annotations

import errno
import functools
import http.server
import socket
import threading
from collections.abc import Callable
from pathlib import Path

from ..errors import SiteError
from ..repository import Repository
from .build import BuildResult, build

DEFAULT_HOST = "127.0.0.1"


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-cache")
        self.send_header("X-Content-Type-Options", "nosniff")
        super().end_headers()


class _Server(http.server.ThreadingHTTPServer):
    """A threading HTTP server whose address family follows the host (IPv6 for ``::``)."""

    def __init__(self, host: str, port: int, handler: Callable[..., _QuietHandler]) -> None:
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        super().__init__((host, port), handler)


def make_server(root: Path, port: int = 8000, host: str = DEFAULT_HOST) -> http.server.ThreadingHTTPServer:
    """An HTTP server for ``root`` on ``host`` (127.0.0.1 unless told otherwise; port 0 picks a free port).

    A busy port, an unknown host or a port that needs privileges raises SiteError in one line.
    """
    handler = functools.partial(_QuietHandler, directory=str(root))
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


def serve(repo: Repository, root: Path, port: int = 8000, interval: float = 1.0,
          on_ready: Callable[[str], None] | None = None,
          on_build: Callable[[BuildResult], None] | None = None, host: str = DEFAULT_HOST) -> None:
    """Build, then serve on ``host``:``port`` until interrupted, rebuilding when the branch moves."""
    server = make_server(root, port, host)  # a busy port fails before a long build, not after
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
