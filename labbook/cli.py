"""The `labbook` command: thin click commands over the library.

Each command parses its arguments, makes one library call and prints. A
LabbookError becomes one line on stderr and exit status 1; usage errors are
click's, exit status 2.
"""

from __future__ import annotations

import shutil
import sys

import click

from . import __version__, display, query, tracking
from .errors import LabbookError


class _Group(click.Group):
    """A click group that prints LabbookError as one line instead of a traceback."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except LabbookError as exc:
            click.echo(f"labbook: error: {exc}", err=True)
            sys.exit(1)


@click.group(cls=_Group)
@click.version_option(__version__, prog_name="labbook")
@click.option("-C", "repo", metavar="PATH", default=None,
              help="Run as if labbook was started in PATH (like git -C).")
def cli(repo: str | None) -> None:
    """labbook: a lab notebook for ML runs, kept on your repository's experiments branch."""
    if repo is not None:
        tracking.set_repository(repo)


@cli.command()
def init() -> None:
    """Create the experiments branch (labbook also does this on first use)."""
    created = tracking.init()
    click.echo("created the experiments branch" if created else "the experiments branch exists")


@cli.command()
def recover() -> None:
    """Commit runs whose process died (killed, crashed) from their journals, as KILLED."""
    runs = tracking.recover()
    for run in runs:
        click.echo(f"recovered {run.id[:8]} {run.name}: {run.status}, "
                   f"{len(run.history)} metric values")
    if not runs:
        click.echo("no runs to recover")


@cli.command()
@click.argument("remote", required=False)
def push(remote: str | None) -> None:
    """Push the experiments branch to REMOTE (default: labbook.remote, else origin), merging first."""
    for line in tracking.push(remote).lines():
        click.echo(line)


@cli.command()
@click.argument("remote", required=False)
def pull(remote: str | None) -> None:
    """Fetch REMOTE's experiments branch and merge teammates' runs into yours."""
    for line in tracking.pull(remote).lines():
        click.echo(line)


@cli.command("sync")
@click.argument("remote", required=False)
def sync_command(remote: str | None) -> None:
    """Pull, then push: afterwards you and REMOTE hold the same runs."""
    for line in tracking.sync(remote).lines():
        click.echo(line)


def _width() -> int:
    return shutil.get_terminal_size()[0] if sys.stdout.isatty() else 200


def _sort_items(sort: tuple[str, ...]) -> list[str]:
    return [f"{s[1:]} DESC" if s.startswith("-") else f"{s.lstrip('+')} ASC" for s in sort]


@cli.command("ls")
@click.option("-e", "--experiment", "experiments", multiple=True, help="Only this experiment (repeatable).")
@click.option("--filter", "filter_string", metavar="EXPR",
              help="e.g. \"metrics.r2 > 0.4 and params.solver = 'svd'\".")
@click.option("--sort", multiple=True, metavar="COL", help="Sort by COL; -COL for descending (repeatable).")
@click.option("--columns", metavar="LIST", help="Comma-separated columns or globs, e.g. params.*,metrics.r2.")
@click.option("--limit", type=click.IntRange(min=0), help="Show at most this many runs.")
@click.option("--all", "show_all", is_flag=True, help="Include deleted runs.")
@click.option("--commit", metavar="REV", help="Only runs made at this code revision (HEAD~3, a tag…).")
@click.option("--format", "fmt", type=click.Choice(display.FORMATS), default="table", show_default=True)
def ls_command(experiments, filter_string, sort, columns, limit, show_all, commit, fmt) -> None:
    """List runs as a table (newest first), or as csv, json or markdown."""
    frame = tracking.search_runs(experiments or None, filter_string, _sort_items(sort), limit,
                                 "all" if show_all else "active", commit)
    patterns = [c.strip() for c in columns.split(",") if c.strip()] if columns else None
    click.echo(display.render_frame(display.select_columns(frame, patterns), fmt, _width()), nl=False)


@cli.command()
@click.argument("run")
def show(run: str) -> None:
    """Show every field of a run (an id, a unique id prefix or a name)."""
    rec, experiment, histories = query.run_details(tracking.repository(), run)
    click.echo(display.render_run(rec, experiment, histories, _width()), nl=False)


@cli.command()
@click.argument("runs", nargs=-1, required=True)
def compare(runs: tuple[str, ...]) -> None:
    """Compare runs side by side: differing params and the best value of each metric marked."""
    records = query.run_records(tracking.repository(), runs)
    goals = {key: display.metric_goal(key) for rec in records for key in rec.metrics}
    click.echo(display.render_compare(records, goals, _width()), nl=False)


@cli.command()
@click.argument("run_a")
@click.argument("run_b")
def diff(run_a: str, run_b: str) -> None:
    """Show how two runs differ: params, metrics, then the code between their commits."""
    a, b = query.run_records(tracking.repository(), [run_a, run_b])
    code_diff, patches = query.code_differences(tracking.repository(), a, b)
    click.echo(display.render_diff(a, b, code_diff, patches), nl=False)


@cli.command()
@click.option("-e", "--experiment", "experiments", multiple=True, help="Only this experiment (repeatable).")
@click.option("--filter", "filter_string", metavar="EXPR", help="Only runs matching this filter.")
@click.option("--all", "show_all", is_flag=True, help="Include deleted runs.")
@click.option("--format", "fmt", type=click.Choice(["csv", "json", "parquet"]), default="csv",
              show_default=True)
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="File to write.")
def export(experiments, filter_string, show_all, fmt, output) -> None:
    """Export runs (one row each, with params, metrics and tags) to csv, json or parquet."""
    frame = tracking.search_runs(experiments or None, filter_string, None, None,
                                 "all" if show_all else "active")
    query.export_runs(frame, fmt, output)
    click.echo(f"wrote {len(frame)} runs to {output}", err=True)


@cli.command()
@click.option("--metric", metavar="KEY", help="Also show the best value of this metric.")
@click.option("--max", "maximise", is_flag=True, help="Best means highest (default: lowest).")
@click.option("--format", "fmt", type=click.Choice(display.FORMATS), default="table", show_default=True)
def experiments(metric: str | None, maximise: bool, fmt: str) -> None:
    """List experiments: question, run count, last activity, best value of a metric."""
    frame = tracking.list_experiments(metric, "max" if maximise else "min")
    click.echo(display.render_frame(frame, fmt, _width()), nl=False)


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
    click.echo(str(result.index))


@site_group.command("serve")
@click.option("-o", "--output", type=click.Path(file_okay=False), help="Folder (default: .git/labbook/site).")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
def site_serve(output: str | None, port: int) -> None:
    """Serve the journal on http://127.0.0.1:PORT, rebuilding it when the branch moves."""
    from .site import default_output, serve

    repo = tracking.repository()
    serve.serve(repo, output or default_output(repo), port,
                on_ready=lambda url: click.echo(f"serving the journal on {url} (Ctrl-C stops)", err=True))


@site_group.command("publish")
@click.option("-o", "--output", type=click.Path(file_okay=False), help="Folder (default: .git/labbook/site).")
@click.option("--branch", default="gh-pages", show_default=True, help="The branch GitHub Pages serves.")
def site_publish(output: str | None, branch: str) -> None:
    """Build the journal and commit it to the gh-pages branch (your checkout is not touched)."""
    from .site import build, publish

    result = build(tracking.repository(), output, _progress("building the journal"))
    commit = publish.publish(tracking.repository(), result.root, branch)
    click.echo(f"published to {branch} at {commit[:12]}" if commit else f"{branch} is up to date")
def main() -> None:
    """Entry point of the `labbook` console script."""
    cli(prog_name="labbook")
