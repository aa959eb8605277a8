"""The `labbook` command: thin click commands over the library.

Each command parses its arguments, makes one library call and prints. A
LabbookError becomes one line on stderr and exit status 1; usage errors are
click's, exit status 2.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys

import click

from . import __version__, tracking
from .errors import LabbookError
from .format.validation import escape_controls


def _echo(message: str = "", nl: bool = True, err: bool = False) -> None:
    """Print like click.echo, with control characters escaped: names, tags and notes come
    from users and teammates, and an escape sequence must not reach the terminal as one."""
    click.echo(escape_controls(message), nl=nl, err=err)


class _Group(click.Group):
    """A click group that prints LabbookError as one line instead of a traceback."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except LabbookError as exc:
            _echo(f"labbook: error: {exc}", err=True)
            sys.exit(1)


class _EchoWarnings(logging.Handler):
    """Prints labbook's warnings (a record skipped, and why) on stderr, one line each."""

    def emit(self, record: logging.LogRecord) -> None:
        _echo(self.format(record), err=True)


def _show_warnings() -> None:
    log = logging.getLogger("labbook")
    if not any(isinstance(h, _EchoWarnings) for h in log.handlers):
        log.addHandler(_EchoWarnings(logging.WARNING))


@click.group(cls=_Group)
@click.version_option(__version__, prog_name="labbook")
@click.option("-C", "repo", metavar="PATH", default=None,
              help="Run as if labbook was started in PATH (like git -C).")
def cli(repo: str | None) -> None:
    """labbook: a lab notebook for ML runs, kept on your repository's experiments branch."""
    _show_warnings()
    if repo is not None:
        tracking.set_repository(repo)


@cli.command()
def init() -> None:
    """Create the experiments branch (labbook also does this on first use)."""
    created = tracking.init()
    _echo("created the experiments branch" if created else "the experiments branch exists")


@cli.command()
def recover() -> None:
    """Commit runs whose process died (killed, crashed) from their journals, as KILLED."""
    runs = tracking.recover()
    for run in runs:
        _echo(f"recovered {run.id[:8]} {run.name}: {run.status}, "
                   f"{len(run.history)} metric values")
    if not runs:
        _echo("no runs to recover")


@cli.command()
@click.argument("remote", required=False)
def push(remote: str | None) -> None:
    """Push the experiments branch to REMOTE (default: labbook.remote, else origin), merging first."""
    for line in tracking.push(remote).lines():
        _echo(line)


@cli.command()
@click.argument("remote", required=False)
def pull(remote: str | None) -> None:
    """Fetch REMOTE's experiments branch and merge teammates' runs into yours."""
    for line in tracking.pull(remote).lines():
        _echo(line)


@cli.command("sync")
@click.argument("remote", required=False)
@click.option("--watch", "every", type=click.FloatRange(min=1), metavar="SECONDS",
              help="Sync again every SECONDS until Ctrl-C: a training run's checkpoints reach the team.")
def sync_command(remote: str | None, every: float | None) -> None:
    """Pull, then push: afterwards you and REMOTE hold the same runs."""
    if every is not None:
        from .reading import live

        live.sync_every(lambda: tracking.sync(remote), every, _echo)
        return
    for line in tracking.sync(remote).lines():
        _echo(line)


TABLE_FORMATS = ("table", "csv", "json", "markdown")


def _width() -> int:
    """The terminal's width ($COLUMNS wins); 200 when the output is not a terminal."""
    if os.environ.get("COLUMNS", "").isdigit() or sys.stdout.isatty():
        return shutil.get_terminal_size()[0]
    return 200


@cli.command("ls")
@click.option("-e", "--experiment", "experiments", multiple=True, help="Only this experiment (repeatable).")
@click.option("--filter", "filter_string", metavar="EXPR",
              help="e.g. \"metrics.r2 > 0.4 and params.solver = 'svd'\".")
@click.option("--sort", multiple=True, metavar="COL",
              help="Sort by COL: metrics.KEY best first; -COL descending, +COL ascending (repeatable).")
@click.option("--columns", metavar="LIST", help="Comma-separated columns or globs, e.g. params.*,metrics.r2.")
@click.option("--wide", is_flag=True, help="Every column that has a value, however wide the table gets.")
@click.option("--limit", type=click.IntRange(min=0), help="Show at most this many runs.")
@click.option("--all", "show_all", is_flag=True, help="Include deleted runs.")
@click.option("--commit", metavar="REV", help="Only runs made at this code revision (HEAD~3, a tag…).")
@click.option("--format", "fmt", type=click.Choice(TABLE_FORMATS), default="table", show_default=True)
def ls_command(experiments, filter_string, sort, columns, wide, limit, show_all, commit, fmt) -> None:
    """List runs as a table that fits the terminal (newest first), or as csv, json or markdown."""
    from .reading import display, query  # pandas loads only for the commands that read runs

    order = query.sort_clauses(tracking.repository, sort, experiments or None)
    frame = tracking.search_runs(experiments or None, filter_string, order, limit,
                                 "all" if show_all else "active", commit)
    patterns = [c.strip() for c in columns.split(",") if c.strip()] if columns else None
    if fmt == "table" and not patterns:
        text = display.ls_table(frame, _width(), query.frame_specs(tracking.repository(), frame), wide)
    else:
        text = display.render_frame(display.select_columns(frame, patterns), fmt, _width())
    _echo(text, nl=False)


@cli.command()
@click.argument("run")
@click.option("--format", "fmt", type=click.Choice(["text", "markdown"]), default="text", show_default=True,
              help="markdown: metrics with the experiment's best and Δ against --baseline, for a PR.")
@click.option("--baseline", metavar="RUN", help="With --format markdown: the run the Δ column is against.")
def show(run: str, fmt: str, baseline: str | None) -> None:
    """Show every field of a run (an id, a unique id prefix or a name)."""
    from .reading import display, query  # pandas loads only for the commands that read runs

    if fmt == "markdown":
        from .reading import mdreport

        _echo(mdreport.run_markdown(*query.run_report(tracking.repository(), run, baseline)), nl=False)
        return
    rec, experiment, histories = query.run_details(tracking.repository(), run)
    metric, children = query.children_of(tracking.repository(), rec)
    _echo(display.render_run(rec, experiment, histories, _width())
               + display.render_children(metric, children), nl=False)


@cli.command()
@click.argument("runs", nargs=-1, required=True)
@click.option("--format", "fmt", type=click.Choice(["table", "markdown"]), default="table", show_default=True,
              help="markdown: a table for a pull-request comment, with Δ against the baseline.")
@click.option("--baseline", metavar="RUN", help="The run compared against, listed first (default: first).")
def compare(runs: tuple[str, ...], fmt: str, baseline: str | None) -> None:
    """Compare runs side by side: differing params and the best value of each metric marked."""
    from .reading import display, mdreport, query  # pandas loads only for the commands that read runs

    records = query.run_records(tracking.repository(), runs + ((baseline,) if baseline else ()))
    records = mdreport.baseline_first(records[:len(runs)], records[-1] if baseline else None)
    goals = query.record_goals(tracking.repository(), records)
    if fmt == "markdown":
        _echo(mdreport.compare_markdown(records, goals), nl=False)
    else:
        means = query.history_means(tracking.repository(), records, goals)
        _echo(display.render_compare(records, goals, _width(), means), nl=False)


@cli.command()
@click.argument("run_a")
@click.argument("run_b")
def diff(run_a: str, run_b: str) -> None:
    """Show how two runs differ: params, metrics, then the code between their commits."""
    from .reading import display, query  # pandas loads only for the commands that read runs

    a, b = query.run_records(tracking.repository(), [run_a, run_b])
    code_diff, patches = query.code_differences(tracking.repository(), a, b)
    _echo(display.render_diff(a, b, code_diff, patches), nl=False)


@cli.command()
@click.option("-e", "--experiment", "experiments", multiple=True, help="Only this experiment (repeatable).")
@click.option("--filter", "filter_string", metavar="EXPR", help="Only runs matching this filter.")
@click.option("--all", "show_all", is_flag=True, help="Include deleted runs.")
@click.option("--format", "fmt", type=click.Choice(["csv", "json", "parquet"]), default="csv",
              show_default=True)
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="File to write.")
def export(experiments, filter_string, show_all, fmt, output) -> None:
    """Export runs (one row each, with params, metrics and tags) to csv, json or parquet."""
    from .reading import query  # pandas loads only for the commands that read runs

    frame = tracking.search_runs(experiments or None, filter_string, None, None,
                                 "all" if show_all else "active")
    query.export_runs(frame, fmt, output)
    _echo(f"wrote {len(frame)} runs to {output}", err=True)


def _mode(maximise: bool, minimise: bool) -> str | None:
    if maximise and minimise:
        raise click.UsageError("--max and --min contradict each other")
    return "max" if maximise else "min" if minimise else None


@cli.command()
@click.option("--metric", metavar="KEY", help="Also show the best value of this metric (by its goal).")
@click.option("--max", "maximise", is_flag=True, help="Best means highest, whatever the goal.")
@click.option("--min", "minimise", is_flag=True, help="Best means lowest, whatever the goal.")
@click.option("--format", "fmt", type=click.Choice(TABLE_FORMATS), default="table", show_default=True)
def experiments(metric: str | None, maximise: bool, minimise: bool, fmt: str) -> None:
    """List experiments: question, run count, last activity, best value of a metric."""
    from .reading import display  # pandas loads only for the commands that read runs

    frame = tracking.list_experiments(metric, _mode(maximise, minimise))
    text = display.experiments_table(frame, _width()) if fmt == "table" else \
        display.render_frame(frame, fmt, _width())
    _echo(text, nl=False)


@cli.group("site")
def site_group() -> None:
    """The journal: a static site of the notebook, built from the experiments branch."""


def _progress(label: str):
    """A progress callback drawing a bar on stderr, or None when stderr is not a terminal."""
    if not sys.stderr.isatty():
        return None
    bars: list = []

    def update(done: int, total: int) -> None:
        if not bars:
            bars.append(click.progressbar(length=total, label=label, file=sys.stderr))
        bars[0].update(done - bars[0].pos)
        if done >= total:
            bars[0].render_finish()
    return update


@site_group.command("build")
@click.option("-o", "--output", type=click.Path(file_okay=False), help="Folder (default: .git/labbook/site).")
def site_build(output: str | None) -> None:
    """Build the journal site (incrementally); prints the path of its index.html."""
    from . import site  # jinja, markdown and pandas load only for the site commands

    result = site.build(tracking.repository(), output, _progress("building the journal"))
    _echo(str(result.index))


@site_group.command("serve")
@click.option("-o", "--output", type=click.Path(file_okay=False), help="Folder (default: .git/labbook/site).")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True,
              help="The port; 0 picks a free one.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="The address to listen on; 0.0.0.0 (or ::) shows the journal to your network.")
def site_serve(output: str | None, port: int, host: str) -> None:
    """Serve the journal on http://HOST:PORT, rebuilding it when the branch moves."""
    from .site import default_output, serve

    repo = tracking.repository()
    serve.serve(repo, output or default_output(repo), port, host=host,
                on_ready=lambda url: _echo(f"serving the journal on {url} (Ctrl-C stops)", err=True))


@site_group.command("publish")
@click.option("-o", "--output", type=click.Path(file_okay=False), help="Folder (default: .git/labbook/site).")
@click.option("--branch", default="gh-pages", show_default=True, help="The branch GitHub Pages serves.")
def site_publish(output: str | None, branch: str) -> None:
    """Build the journal and commit it to the gh-pages branch (your checkout is not touched)."""
    from .site import build, publish

    result = build(tracking.repository(), output, _progress("building the journal"))
    commit = publish.publish(tracking.repository(), result.root, branch)
    _echo(f"published to {branch} at {commit[:12]}" if commit else f"{branch} is up to date")
def _pairs(items: tuple[str, ...]) -> dict[str, str]:
    pairs = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise click.UsageError(f"{item!r} is not KEY=VALUE")
        pairs[key] = value
    return pairs


@cli.command()
@click.argument("run")
@click.argument("text", required=False)
@click.option("--edit", "use_editor", is_flag=True, help="Write the note in $EDITOR.")
def note(run: str, text: str | None, use_editor: bool) -> None:
    """Append a timestamped note (markdown) to RUN; TEXT '-' reads standard input."""
    from .runs import edits

    if use_editor:
        text = click.edit("\n# Write the note above; lines starting with # are dropped.\n")
        text = "\n".join(line for line in (text or "").splitlines() if not line.startswith("#"))
    elif text == "-":  # bytes that are not UTF-8 become an error naming them, never a traceback
        buffer = getattr(sys.stdin, "buffer", None)
        text = buffer.read().decode("utf-8", "surrogateescape") if buffer else sys.stdin.read()
    if not text or not text.strip():
        raise click.UsageError("give the note as TEXT, '-' for standard input, or --edit")
    rec = edits.note(tracking.repository(), run, text.strip())
    _echo(f"noted on {rec.name} ({rec.id[:8]})")


@cli.command()
@click.argument("run")
@click.argument("text", required=False, default="")
@click.option("--verdict", required=True, type=click.Choice(["supported", "refuted", "inconclusive"]))
def conclude(run: str, text: str, verdict: str) -> None:
    """Record RUN's verdict on its hypothesis, with TEXT saying why."""
    from .runs import edits

    rec = edits.conclude(tracking.repository(), run, verdict, text)
    _echo(f"{rec.name}: {verdict}")


@cli.command()
@click.argument("run")
@click.argument("tags", nargs=-1, required=True)
def tag(run: str, tags: tuple[str, ...]) -> None:
    """Set tags on RUN: labbook tag RUN stage=baseline owner=ada."""
    from .runs import edits

    rec = edits.tag(tracking.repository(), run, _pairs(tags))
    _echo(f"tagged {rec.name}: " + ", ".join(f"{k}={v}" for k, v in rec.tags.items()))


@cli.command()
@click.argument("run")
@click.argument("keys", nargs=-1, required=True)
def untag(run: str, keys: tuple[str, ...]) -> None:
    """Remove tags (by key) from RUN."""
    from .runs import edits

    rec = edits.untag(tracking.repository(), run, list(keys))
    _echo(f"untagged {rec.name}: {', '.join(keys)}")


@cli.command()
@click.argument("run")
@click.argument("new_name")
def rename(run: str, new_name: str) -> None:
    """Give RUN a new name (its id stays)."""
    from .runs import edits

    rec = edits.rename(tracking.repository(), run, new_name)
    _echo(f"renamed {rec.id[:8]} to {rec.name}")


@cli.command()
@click.argument("run")
def delete(run: str) -> None:
    """Hide RUN from listings (soft: it stays in history; `labbook restore` brings it back)."""
    from .runs import edits

    rec = edits.set_deleted(tracking.repository(), run, True)
    _echo(f"deleted {rec.name} ({rec.id[:8]}); `labbook restore {rec.id[:8]}` undoes it")


@cli.command()
@click.argument("run")
def restore(run: str) -> None:
    """Bring back a deleted RUN."""
    from .runs import edits

    rec = edits.set_deleted(tracking.repository(), run, False)
    _echo(f"restored {rec.name} ({rec.id[:8]})")


@cli.command()
@click.argument("experiment")
@click.argument("question")
def describe(experiment: str, question: str) -> None:
    """Set the question an EXPERIMENT asks."""
    from .runs import edits

    exp = edits.describe(tracking.repository(), experiment, question)
    _echo(f"{exp.name}: {exp.description}")


@cli.group()
def experiment() -> None:
    """Create or rename an experiment, or declare its metrics' goals."""


@experiment.command("create")
@click.argument("name")
@click.option("-d", "--description", help="The question the experiment asks.")
def experiment_create(name: str, description: str | None) -> None:
    """Create experiment NAME."""
    from .runs import edits

    exp = edits.create_experiment(tracking.repository(), name, description)
    _echo(f"created experiment {exp.name}")


@experiment.command("metric")
@click.argument("experiment_name", metavar="EXPERIMENT")
@click.argument("metric")
@click.option("--goal", type=click.Choice(["max", "min", "maximize", "minimize"]),
              help="Which way the metric is better.")
@click.option("--summary", type=click.Choice(["last", "min", "max", "mean"]),
              help="The value that stands for a run (default: last).")
@click.option("--step-metric", metavar="KEY", help="Another metric to use as this one's x axis.")
@click.option("--key", "key_metric", is_flag=True, help="Make it a key metric, shown first.")
def experiment_metric(experiment_name: str, metric: str, goal: str | None, summary: str | None,
                      step_metric: str | None, key_metric: bool) -> None:
    """Declare what METRIC means in EXPERIMENT: its goal, summary, x axis, key metric."""
    spec = tracking.define_metric(metric, goal, summary=summary, step_metric=step_metric,
                                  key=key_metric, experiment=experiment_name)
    said = [f"goal {spec.goal}" if spec.goal else "no goal",
            f"summary {spec.summary}" if spec.summary else "",
            f"x axis {spec.step_metric}" if spec.step_metric else "", "key metric" if spec.key else ""]
    _echo(f"{experiment_name}: {metric} — " + ", ".join(part for part in said if part))


@experiment.command("rename")
@click.argument("name")
@click.argument("new_name")
def experiment_rename(name: str, new_name: str) -> None:
    """Rename experiment NAME to NEW_NAME (its runs follow)."""
    from .runs import edits

    exp = edits.rename_experiment(tracking.repository(), name, new_name)
    _echo(f"renamed experiment {name} to {exp.name}")


@cli.command("run", context_settings={"ignore_unknown_options": True,
                                      "allow_interspersed_args": False})
@click.option("-e", "--experiment", help="The run's experiment (created if missing).")
@click.option("-n", "--name", help="The run's name (default run-<id prefix>).")
@click.option("--hypothesis", help="What the run expects to show.")
@click.option("-p", "--param", "params", multiple=True, metavar="KEY=VALUE",
              help="A param, also given to the command as $LABBOOK_PARAM_KEY (repeatable).")
@click.option("-t", "--tag", "tags", multiple=True, metavar="KEY=VALUE", help="A tag (repeatable).")
@click.option("--metrics-file", metavar="FILE",
              help="After the command: log the metrics of this JSON/YAML file (name: number).")
@click.option("--log-bytes", type=click.IntRange(min=0), default=1 << 20, show_default=True,
              help="Keep at most this much of the output (head and tail) as output.log.")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def run_command(experiment, name, hypothesis, params, tags, metrics_file, log_bytes, command) -> None:
    """Run COMMAND (after --) as a run: params, output, metrics and exit status recorded."""
    outcome = tracking.run_command(list(command), experiment=experiment, name=name,
                                   hypothesis=hypothesis, params=params, tags=tags,
                                   metrics_file=metrics_file, log_bytes=log_bytes)
    why = f": {outcome.launch_error}" if outcome.launch_error else ""
    _echo(f"labbook: run {outcome.run_id[:8]} ({outcome.name}) {outcome.status}, "
               f"exit status {outcome.exit_status}{why}", err=True)
    sys.exit(outcome.exit_status)


@cli.command()
@click.argument("run")
@click.option("--deep", is_flag=True, help="Download object-store artifacts and re-hash them "
              "(by default their size and sha256 metadata are compared).")
def artifacts(run: str, deep: bool) -> None:
    """List a run's artifacts: path, size, where the bytes are, and whether they match their sha256."""
    for item in tracking.list_artifacts(run, deep):
        _echo(f"{item.path}\t{item.size}\t{item.location}\t{item.verified}")


@cli.command("get")
@click.argument("run")
@click.argument("path")
@click.option("-o", "--output", "dest", metavar="DEST", help="File or folder to write (default ./NAME).")
@click.option("--force", is_flag=True, help="Overwrite existing files.")
def get_command(run: str, path: str, dest: str | None, force: bool) -> None:
    """Restore artifact PATH of RUN (or every artifact under a folder PATH), checked by sha256."""
    for written in tracking.get_artifacts(run, path, dest, force):
        _echo(str(written))


@cli.command("reproduce")
@click.argument("run")
@click.option("--rtol", type=float, default=1e-6, show_default=True,
              help="Largest relative difference of a metric that still counts as the same.")
def reproduce_command(run: str, rtol: float) -> None:
    """Re-run RUN's command on its code (a temporary worktree) and compare the metrics."""
    result = tracking.reproduce(run, rtol)
    for line in result.lines():
        _echo(line)
    sys.exit(result.exit_status)


@cli.command("fsck")
@click.option("--recover", "do_recover", is_flag=True, help="End RUNNING runs whose process is gone.")
@click.option("--deep", is_flag=True, help="Download object-store artifacts and re-hash them.")
@click.option("--abort-uploads", is_flag=True, help="Abort this clone's unfinished object-store uploads.")
def fsck_command(do_recover: bool, deep: bool, abort_uploads: bool) -> None:
    """Check the notebook: records parse, artifacts match their sha256, no dead RUNNING runs."""
    report = tracking.fsck(do_recover, deep, abort_uploads)
    for line in report.lines():
        _echo(line)
    sys.exit(0 if report.ok else 1)


@cli.command("log")
@click.argument("rev_range", default="HEAD")
@click.option("--metric", metavar="KEY",
              help="Also show the best value of this metric at each commit (by its goal).")
@click.option("--max", "maximise", is_flag=True, help="Best means highest, whatever the goal.")
@click.option("--min", "minimise", is_flag=True, help="Best means lowest, whatever the goal.")
@click.option("-n", "--limit", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--format", "fmt", type=click.Choice(TABLE_FORMATS), default="table", show_default=True)
def log_command(rev_range: str, metric: str | None, maximise: bool, minimise: bool, limit: int,
                fmt: str) -> None:
    """Code commits of REV_RANGE (default HEAD), newest first, with the runs made at each."""
    from .reading import display  # pandas loads only for the commands that read runs

    frame = tracking.code_log(rev_range, metric, _mode(maximise, minimise), limit)
    if fmt == "markdown":
        from .reading import mdreport, query

        goal = query.metric_goal(tracking.repository(), metric, None, _mode(maximise, minimise)) \
            if metric else None
        _echo(mdreport.log_markdown(frame, goal), nl=False)
    else:
        _echo(display.render_frame(frame, fmt, _width()), nl=False)


@cli.group("import")
def import_group() -> None:
    """Bring runs from another tracker onto the experiments branch."""


@import_group.command("mlflow")
@click.argument("source")
def import_mlflow(source: str) -> None:
    """Import every experiment and run of SOURCE: an mlruns folder or a database URI (sqlite:///mlflow.db)."""
    summary = tracking.import_mlflow(source, _progress("importing runs"))
    for line in summary.lines():
        _echo(line)


@cli.command()
@click.argument("run")
@click.option("--interval", type=click.FloatRange(min=0.1), default=2.0, show_default=True,
              help="Seconds between reads of the run's journal.")
def watch(run: str, interval: float) -> None:
    """Watch a running run live: its values so far, sparklines and last update, until it ends."""
    from .reading import live

    view = live.watch(tracking.repository(), run, interval)
    sys.exit(0 if view.record.status == "FINISHED" else 1)


def main() -> None:
    """Entry point of the `labbook` console script."""
    cli(prog_name="labbook")
