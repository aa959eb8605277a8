"""``labbook run -- CMD``: run a command as a run; its output, metrics and exit status recorded.

The parent starts the run, logs the ``-p`` params and *detaches* (the run stays
RUNNING, no journal). The command sees the run through the environment::

    LABBOOK_RUN_ID       the run's id: labbook.log_metric() in the command attaches to it
    LABBOOK_REPO         the repository
    LABBOOK_PARAMS       the params as a JSON object
    LABBOOK_PARAM_<KEY>  each param (KEY upper-cased, anything else than A-Z 0-9 → _)
    LABBOOK_RUN_FIXED    what the command line set (JSON): the command's start_run keeps off it

The command runs in a process group of its own; SIGINT and SIGTERM sent to
``labbook run`` are forwarded to that group. Run from a terminal it owns (stdin
a terminal whose foreground group is ours) the command stays in our group
instead, so that it may read the terminal (``input()``, ``breakpoint()``) and
Ctrl-C, Ctrl-Z and ``fg`` reach it from the terminal as they reach us; SIGTERM is
then forwarded to the command alone. Its stdout and stderr are copied
live to ours and kept (head and tail, capped) as the artifact ``output.log``.
When it exits the parent folds any journal it left (a SIGKILLed command),
resumes the run, reads ``--metrics-file`` and ends the run FINISHED (status 0),
FAILED (another status) or KILLED (a signal).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from ..errors import FormatError, InvalidValue, LabbookError
from ..format import record, validation
from ..storage import journal
from . import lifecycle
from .repository import Repository
from .run import Run

DEFAULT_LOG_BYTES = 1 << 20
METRICS_FILE_TAG = "labbook.metrics_file"  # the --metrics-file, as given (reproduce reads it)
FORWARDED = (signal.SIGINT, signal.SIGTERM)
_INT = re.compile(r"[-+]?\d+")
_FLOAT = re.compile(r"[-+]?(\d+\.\d*|\.\d+|\d+)([eE][-+]?\d+)?")


@dataclass
class Outcome:
    """How a command run by ``labbook run`` ended."""

    run_id: str
    name: str
    status: str
    exit_status: int  # what ``labbook run`` exits with: the command's status, 128+N for signal N
    launch_error: str | None = None  # why the command could not start at all


@dataclass
class Finished:
    """A finished child process."""

    returncode: int  # as subprocess reports it: negative when a signal killed it
    forwarded: int | None  # the signal labbook run forwarded to it, if any
    output: bytes
    launch_error: str | None = None


def parse_value(text: str) -> Any:
    """A -p value as a user means it: ``3`` → 3, ``0.5`` → 0.5, ``true`` → True, else the text."""
    if _INT.fullmatch(text):
        return int(text)
    if _FLOAT.fullmatch(text):
        return float(text)
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    return text


def parse_pairs(items: list[str] | tuple[str, ...], what: str, typed: bool) -> dict[str, Any]:
    """``key=value`` items as a mapping (values parsed when ``typed``)."""
    found: dict[str, Any] = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise InvalidValue(f"{what} {item!r} is not key=value")
        found[key] = parse_value(value) if typed else value
    return found


def env_name(key: str) -> str:
    """The environment variable a param is passed in: LABBOOK_PARAM_<KEY>."""
    return "LABBOOK_PARAM_" + re.sub(r"[^A-Z0-9]", "_", key.upper())


def env_text(value: Any) -> str:
    """A param value as environment text: strings as they are, anything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value)


def child_environment(repo: Repository, run_id: str, params: Mapping[str, Any],
                      fixed: Mapping[str, Any] | None = None) -> dict[str, str]:
    """This process's environment plus the run's id, repository, params, and what the command
    line set (so that the command's own start_run does not override it)."""
    env = dict(os.environ)
    env["LABBOOK_RUN_ID"] = run_id
    env["LABBOOK_RUN_FIXED"] = json.dumps(dict(fixed or {}), sort_keys=True)
    env["LABBOOK_REPO"] = repo.git.toplevel or repo.git.git_dir
    env["LABBOOK_PARAMS"] = json.dumps(dict(params), allow_nan=True)
    for key, value in params.items():
        env[env_name(key)] = env_text(value)
    return env


def run_command(repo: Repository, command: list[str], *, experiment: str, name: str | None = None,
                hypothesis: str | None = None, params: Mapping[str, Any] | None = None,
                tags: Mapping[str, str] | None = None, metrics_file: str | None = None,
                log_bytes: int = DEFAULT_LOG_BYTES, cwd: str | None = None,
                code_cwd: str | None = None, fixed: Mapping[str, Any] | None = None) -> Outcome:
    """Run ``command`` as a new run (see the module docstring) and return how it ended."""
    if not command:
        raise InvalidValue("no command to run: give it after --, e.g. labbook run -- python train.py")
    params = dict(params or {})
    validation.checked_params(params)  # a bad param is refused before the run exists
    tags = dict(tags or {})
    if metrics_file is not None:
        tags[METRICS_FILE_TAG] = metrics_file
        metrics_file = str(Path(cwd or ".", metrics_file))
    run = lifecycle.start(repo, experiment=experiment, name=name, hypothesis=hypothesis,
                          tags=tags or None, command=list(command))
    hold = journal.hold(repo.journal_dir, run.id)
    try:
        try:
            run.log_params(params)
            if code_cwd is not None:
                run.record.code.cwd = code_cwd
        except BaseException as exc:
            run.end("FAILED", error=f"{type(exc).__name__}: {exc}")
            raise
        run.detach()
        done = execute(command, child_environment(repo, run.id, params, fixed), cwd, log_bytes)
    finally:
        journal.release_hold(repo.journal_dir, run.id, hold)
    return finish(repo, run.id, done, metrics_file)


def execute(command: list[str], env: dict[str, str], cwd: str | None, log_bytes: int) -> Finished:
    """Run the command (in its own process group unless on our terminal), tee its output,
    forward SIGINT/SIGTERM."""
    log = CappedLog(log_bytes)
    interactive = owns_terminal()
    try:
        proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, process_group=None if interactive else 0)
    except OSError as exc:
        return Finished(127, None, b"", launch_error=launch_error(command[0], exc))
    forwarded: list[int] = []

    def forward(signum: int, frame: object) -> None:
        forwarded.append(signum)
        with contextlib.suppress(ProcessLookupError):
            if not interactive:
                os.killpg(proc.pid, signum)
            elif signum != signal.SIGINT:  # the terminal's Ctrl-C reached the command as it reached us
                os.kill(proc.pid, signum)

    previous = _install_handlers(forward)
    try:
        assert proc.stdout is not None and proc.stderr is not None
        threads = [threading.Thread(target=_tee, args=(pipe, _sink(stream), log), daemon=True)
                   for pipe, stream in ((proc.stdout, sys.stdout), (proc.stderr, sys.stderr))]
        for thread in threads:
            thread.start()
        returncode = proc.wait()
        for thread in threads:
            thread.join(timeout=5)
    finally:
        _restore_handlers(previous)
    return Finished(returncode, forwarded[0] if forwarded else None, log.getvalue())


def owns_terminal() -> bool:
    """Whether stdin is a terminal whose foreground process group is this process's."""
    try:
        return os.isatty(0) and os.tcgetpgrp(0) == os.getpgrp()
    except OSError:
        return False


def _install_handlers(handler: Callable[[int, Any], None]) -> dict[int, Any]:
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {sig: signal.signal(sig, handler) for sig in FORWARDED}


def _restore_handlers(previous: dict[int, Any]) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler)


def _sink(stream: Any) -> Callable[[bytes], None]:
    """A function writing bytes to a text stream's buffer (or decoded, when it has none)."""
    buffer: BinaryIO | None = getattr(stream, "buffer", None)

    def write(chunk: bytes) -> None:
        try:
            if buffer is not None:
                stream.flush()
                buffer.write(chunk)
                buffer.flush()
            else:
                stream.write(chunk.decode("utf-8", "replace"))
                stream.flush()
        except (OSError, ValueError):
            pass  # our terminal went away: keep the log, keep the command running
    return write


def _tee(pipe: BinaryIO, write: Callable[[bytes], None], log: CappedLog) -> None:
    fd = pipe.fileno()
    try:
        while chunk := os.read(fd, 65536):
            log.add(chunk)
            write(chunk)
    finally:
        pipe.close()


class CappedLog:
    """The combined output, at most ``cap`` bytes: the head and the tail, with a marker between."""

    def __init__(self, cap: int):
        self.cap = max(int(cap), 0)
        self.head = bytearray()
        self.tail = bytearray()
        self.skipped = 0
        self._lock = threading.Lock()

    def add(self, chunk: bytes) -> None:
        with self._lock:
            room = self.cap // 2 - len(self.head)
            if room > 0:
                self.head += chunk[:room]
                chunk = chunk[room:]
            self.tail += chunk
            keep = self.cap - self.cap // 2
            if len(self.tail) > keep:
                drop = len(self.tail) - keep
                del self.tail[:drop]
                self.skipped += drop

    def getvalue(self) -> bytes:
        with self._lock:
            marker = f"\n[… {self.skipped} bytes skipped …]\n".encode() if self.skipped else b""
            return bytes(self.head) + marker + bytes(self.tail)


def launch_error(program: str, exc: OSError) -> str:
    """Why ``program`` could not be started, in words a user can act on."""
    if isinstance(exc, FileNotFoundError):
        where = "no such file" if "/" in program else "no such command on PATH"
        return f"could not start {program!r}: {where}"
    if isinstance(exc, PermissionError):
        return f"could not start {program!r}: permission denied (is it executable? chmod +x)"
    return f"could not start {program!r}: {exc.strerror or exc}"


def verdict(done: Finished) -> tuple[str, str | None, int]:
    """The run's status, error and ``labbook run``'s exit status for a finished child."""
    if done.launch_error is not None:
        return "FAILED", done.launch_error, done.returncode
    code = done.returncode
    if code < 0 or done.forwarded is not None:
        signum = -code if code < 0 else done.forwarded
        assert signum is not None
        return "KILLED", f"killed by {_signal_name(signum)}", 128 + signum if code < 0 else code
    if code == 0:
        return "FINISHED", None, 0
    return "FAILED", f"command exited with status {code}", code


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def finish(repo: Repository, run_id: str, done: Finished, metrics_file: str | None) -> Outcome:
    """Fold what the child left, resume the run, add metrics file and output, and end it."""
    lifecycle.recover(repo)
    run = lifecycle.resume(repo, run_id)
    status, error, code = verdict(done)
    try:
        if metrics_file is not None:
            _log_metrics_file(run, metrics_file)
        _log_output(run, done.output)
    finally:
        run.record.exit_code = code
        run.end(status, error=error)
    return Outcome(run.id, run.name, status, code, done.launch_error)


def _log_metrics_file(run: Run, path: str) -> None:
    """Log a flat mapping name → number from a JSON or YAML file; a problem becomes a note."""
    try:
        metrics = read_metrics_file(Path(path))
        run.log_metrics(metrics)
    except (OSError, LabbookError) as exc:
        reason = "missing" if isinstance(exc, FileNotFoundError) else f"not usable: {exc}"
        run.note(f"metrics file {path} {reason}")


def read_metrics_file(path: Path) -> dict[str, float]:
    """A flat mapping of metric name → number, from JSON or YAML."""
    data = path.read_bytes()
    try:
        found = json.loads(data)
    except ValueError:
        found = record.load_yaml(data, str(path))
    if not isinstance(found, dict) or not found:
        raise FormatError(str(path), "should be a mapping of metric name → number")
    metrics = {}
    for key, value in found.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise FormatError(str(path), f"the value of {key!r} is not a number "
                                         "(a flat mapping name → number is expected)")
        metrics[str(key)] = float(value) if not math.isnan(value) else math.nan
    return metrics


def _log_output(run: Run, output: bytes) -> None:
    with tempfile.TemporaryDirectory(prefix="labbook-output-") as folder:
        path = Path(folder, "output.log")
        path.write_bytes(output)
        run.log_artifact(path)
