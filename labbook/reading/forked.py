"""Split CPU-bound work over forked child processes, to use more than one core.

Reading 10,000 records cold is mostly parsing in Python, which one process does
on one core. :func:`map_parts` cuts a list into parts, forks a child for each
part but the first, works on the first part itself, and collects what the
children computed. A child sends its result back through a pipe with
``marshal`` (plain values only) and leaves with ``os._exit``, so it runs no
atexit handler, flushes no inherited buffer and never touches the branch.

Forking is used only on Linux (fork without exec is unsafe on macOS and missing
on Windows), for inputs big enough to pay for it, and with more than one core
available. If a child fails for any reason its part is done again here, so the
result never depends on the children.
"""

from __future__ import annotations

import contextlib
import marshal
import os
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")

MAX_WORKERS = 4


def cores() -> int:
    """How many cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def map_parts(func: Callable[[Sequence[T]], Any], items: Sequence[T], min_part: int) -> list[Any]:
    """``[func(part) for part in parts of items]``, the parts done in parallel when worthwhile.

    ``items`` is cut into at most one part per core (and at most MAX_WORKERS), each of
    at least ``min_part`` items, in order. ``func`` must return plain data (what
    marshal writes: numbers, strings, bytes, lists, tuples, dicts, sets, None).
    """
    count = min(cores(), MAX_WORKERS, len(items) // max(min_part, 1))
    if count < 2 or sys.platform != "linux":
        return [func(items)]
    size = -(-len(items) // count)
    parts = [items[i:i + size] for i in range(0, len(items), size)]
    children: list[tuple[int, int, Sequence[T]]] = []
    try:
        for part in parts[1:]:
            children.append((*_fork(func, part), part))
        results = [func(parts[0])]
        while children:
            pid, fd, part = children.pop(0)
            results.append(_collect(pid, fd, func, part))
        return results
    finally:
        for pid, fd, _ in children:  # only when this process failed: stop the rest
            _stop(pid, fd)


def _fork(func: Callable[[Sequence[T]], Any], part: Sequence[T]) -> tuple[int, int]:
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: compute, send, leave
        status = 1
        try:
            os.close(read_end)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            data = marshal.dumps(func(part))
            view = memoryview(data)
            while view:
                view = view[os.write(write_end, view):]
            status = 0
        finally:
            os._exit(status)
    os.close(write_end)
    return pid, read_end


def _collect(pid: int, fd: int, func: Callable[[Sequence[T]], Any], part: Sequence[T]) -> Any:
    """The child's result, or the part computed here when the child failed."""
    chunks = []
    with os.fdopen(fd, "rb") as pipe:
        while chunk := pipe.read(1 << 20):
            chunks.append(chunk)
    _, status = os.waitpid(pid, 0)
    if status == 0 and chunks:
        try:
            return marshal.loads(b"".join(chunks))
        except (EOFError, ValueError, TypeError):
            pass
    return func(part)


def _stop(pid: int, fd: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    os.close(fd)
