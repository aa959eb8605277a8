"""The `labbook` command: thin click commands over the library.

Each command parses its arguments, makes one library call and prints. A
LabbookError becomes one line on stderr and exit status 1; usage errors are
click's, exit status 2.
"""

from __future__ import annotations

import sys

import click

from . import __version__, tracking
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


def main() -> None:
    """Entry point of the `labbook` console script."""
    cli(prog_name="labbook")
