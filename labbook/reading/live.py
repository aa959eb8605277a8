"""Watching a run while it trains: ``labbook watch RUN``.

A live run's truth is its journal (labbook/storage/journal.py): every value it logged is
there before the branch sees it at the next checkpoint. This module only reads
journals — the run's record from the branch, then the journal's events replayed
on it — and never writes one. A run of another machine is shown as of its last
checkpoint on the branch (``labbook pull`` brings newer ones).
"""

from __future__ import annotations

import math
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rich import box
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from ..errors import LabbookError
from ..format import record
from ..format.record import RunRecord
from ..runs import lifecycle
from ..runs.repository import Repository
from ..runs.run import Run
from ..storage import journal
from .display import metric_text, sparkline


@dataclass
class LiveView:
    """A run as it is now: its record with every journaled value, and how fresh it is."""

    record: RunRecord
    history: dict[str, list[float]]
    updated: float | None  # when its journal was last written (None: read from the branch only)
    live: bool  # a process on this machine holds the run's journal
    here: bool  # the run was started on this machine

    @property
    def running(self) -> bool:
        """True while there is more to wait for."""
        return self.record.status == "RUNNING" and (self.live or not self.here)


def read_live(repo: Repository, run: str) -> LiveView:
    """The run ``run`` (id, prefix or name) with the values its journal holds beyond the branch."""
    loaded = lifecycle.load(repo, run)
    rid = loaded.record.id
    path = repo.journal_dir / f"{rid}.log"
    current, updated = loaded, None
    try:
        updated = path.stat().st_mtime
        events = journal.read_events(path)
    except FileNotFoundError:  # no journal, or the run just ended and removed it
        events = []
    if events and events[0].get("e") == "start":
        current = _replay(repo, events, str(path))
    history: dict[str, list[float]] = {}
    for key, _, _, value in sorted(current.history, key=lambda row: (row[0], row[1], row[2])):
        history.setdefault(key, []).append(value)
    return LiveView(current.record, history, updated if events else None,
                    journal.is_live(repo.journal_dir, rid),
                    current.record.host == socket.gethostname())


def _replay(repo: Repository, events: list[dict[str, Any]], where: str) -> Run:
    start = events[0]
    rec = record.run_from_plain(start["r"], f"journal {where}")
    history: list[tuple[str, int, int, float]] = []
    if start.get("base"):
        data = repo.store.snapshot(start["base"]).read(record.history_path(rec.id))
        history = record.history_from_tsv(data, record.history_path(rec.id)) if data else []
    run = Run(repo, rec, history)
    for event in events[1:]:
        run._apply(event)
    return run


def render_live(view: LiveView, now: float | None = None) -> Group:
    """The terminal view: a heading line, then each metric's last value, step and sparkline."""
    rec = view.record
    now = time.time() if now is None else now
    if view.updated is not None:
        stamp = time.strftime("%H:%M:%S", time.localtime(view.updated))
        fresh = f"updated {stamp} ({max(0, int(now - view.updated))}s ago)"
    else:
        fresh = "as of its last checkpoint on the branch"
    head = Text.assemble((rec.name, "bold"), f"  {rec.id[:8]}  ", (rec.status, _STATUS.get(rec.status, "")),
                         f"  started {rec.start_time}  {fresh}")
    table = Table(box=box.SIMPLE_HEAD, show_edge=False)
    for column, justify in (("metric", "left"), ("last", "right"), ("step", "right"),
                            ("values", "right"), ("history", "left")):
        table.add_column(column, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    for key, summary in rec.metrics.items():
        values = view.history.get(key, [])
        table.add_row(Text(key), metric_text(summary.last), str(summary.step), str(len(values)),
                      sparkline(values, 40))
    parts: list[Any] = [head, table]
    if not view.here and rec.status == "RUNNING":
        parts.append(Text(f"running on {rec.host}: shown as of its last checkpoint; "
                          "labbook pull brings newer ones"))
    elif rec.status == "RUNNING" and not view.live:
        parts.append(Text("its process is gone; labbook fsck --recover ends it"))
    return Group(*parts)


_STATUS = {"RUNNING": "yellow", "FINISHED": "green", "FAILED": "red", "KILLED": "red"}


def watch(repo: Repository, run: str, interval: float = 2.0, console: Console | None = None,
          sleep: Callable[[float], None] = time.sleep) -> LiveView:
    """Show ``run`` live until it ends (or its process is gone); returns the last view."""
    view = read_live(repo, run)
    with Live(render_live(view), console=console, refresh_per_second=4, transient=False) as screen:
        while view.running:
            sleep(interval)
            view = read_live(repo, view.record.id)
            screen.update(render_live(view))
    return view


LIVE_HISTORY = 300  # values per metric sent to the site's live panel


def live_runs(repo: Repository, page: Callable[[str], str]) -> list[dict[str, Any]]:
    """Every run of this repository whose journal a live process holds, as plain data for the
    site's live panel: name, page (``page(run_id)``), status, last update, each metric's last
    value, step and sparkline. Reads journals only."""
    found = []
    for path in sorted(repo.journal_dir.glob("*.log")):
        if not journal.is_live(repo.journal_dir, path.stem):
            continue
        try:
            view = read_live(repo, path.stem)
        except LabbookError:  # started a moment ago, before its first commit: not a run yet
            continue
        rec = view.record
        found.append({
            "id": rec.id, "name": rec.name, "page": page(rec.id), "status": rec.status,
            "updated": None if view.updated is None else
            time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(view.updated)),
            "metrics": [{"key": key, "last": None if not math.isfinite(s.last) else s.last,
                         "step": s.step, "spark": sparkline(view.history.get(key, [])[-LIVE_HISTORY:], 24)}
                        for key, s in rec.metrics.items()],
        })
    return found


def sync_every(sync: Callable[[], Any], seconds: float, echo: Callable[[str], None],
               rounds: int | None = None, sleep: Callable[[float], None] = time.sleep) -> int:
    """Call ``sync()`` every ``seconds`` (``rounds`` times, or until Ctrl-C), echoing its lines,
    stamped with the time, whenever they differ from the round before; a failed round is one
    line and the next round tries again. Returns the number of rounds that failed."""
    before: list[str] = []
    failed = done = 0
    try:
        while rounds is None or done < rounds:
            stamp = time.strftime("%H:%M:%S")
            try:
                lines = list(sync().lines())
            except LabbookError as exc:
                lines, failed = [f"labbook: error: {exc}"], failed + 1
            if lines != before:
                for line in lines:
                    echo(f"{stamp} {line}")
                before = lines
            done += 1
            if rounds is None or done < rounds:
                sleep(seconds)
    except KeyboardInterrupt:
        pass
    return failed
