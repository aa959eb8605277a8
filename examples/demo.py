"""labbook's demo: record a real study into a scratch git repository and show where it went.

    python examples/demo.py                  # into ./demo-notebook
    python examples/demo.py --path /tmp/nb   # or anywhere else (a positional path works too)

The scratch repository gets one ordinary commit (a README), then the diabetes
study (examples/diabetes_study.py) commits its runs to the repository's
``experiments`` branch. Running the demo again replaces a repository this
script created earlier; it refuses to touch any other non-empty directory.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

from diabetes_study import QUESTIONS, run_study

import labbook
from labbook.format.record import run_path

DEFAULT_PATH = "demo-notebook"
# Kept inside .git so it never shows up in the scratch repository's `git status`.
MARKER = Path(".git") / "labbook-demo"
GIT_IDENTITY = ["-c", "user.name=labbook demo", "-c", "user.email=demo@labbook.invalid",
                "-c", "commit.gpgsign=false"]
README = """\
# labbook demo notebook

A scratch repository made by `python examples/demo.py`. Its code lives on
`main`; the runs of the diabetes study live on the orphan `experiments` branch:

    git log --oneline experiments
    git ls-tree -r --name-only experiments
"""


def main(argv: list[str] | None = None) -> int:
    path = _parse(argv)
    try:
        _prepare(path)
    except (OSError, subprocess.CalledProcessError, RefusedPath) as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    recorded = run_study(path)
    seconds = time.perf_counter() - started

    _summarise(path, recorded, seconds)
    # SITE BUILD: the demo ends with the journal of the study, built from the branch.
    _build_journal(path)
    return 0


def _build_journal(path: Path) -> None:
    """Build the notebook's journal site and say where to open it."""
    from labbook.runs.repository import open_repository
    from labbook.site import build

    repo = open_repository(path)
    try:
        result = build(repo)
    finally:
        repo.close()
    print()
    print(f"The journal of the study ({result.runs} runs) — open it in a browser:")
    print(f"  {result.index.resolve()}")
    print(f"or serve it: labbook -C {shlex.quote(str(path))} site serve")


def _parse(argv: list[str] | None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("where", nargs="?", metavar="PATH",
                        help=f"the scratch repository to create (default: ./{DEFAULT_PATH})")
    parser.add_argument("--path", dest="path", metavar="PATH", help="the same, as an option")
    args = parser.parse_args(argv)
    if args.where and args.path and args.where != args.path:
        parser.error(f"two different paths given: {args.where!r} and --path {args.path!r}")
    return Path(args.path or args.where or DEFAULT_PATH)


class RefusedPath(Exception):
    """The path exists and is not a demo repository this script made."""


def _prepare(path: Path) -> None:
    """Create a fresh git repository at ``path`` with one commit on main."""
    here = Path.cwd().resolve()
    if path.resolve() == here or path.resolve() in here.parents:
        raise RefusedPath(f"{path} is the current directory or contains it; pass another --path")
    if path.is_dir() and (path / MARKER).is_file():
        shutil.rmtree(path)
    elif path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise RefusedPath(f"{path} exists and was not made by this demo; "
                          "remove it or pass another --path")
    path.mkdir(parents=True, exist_ok=True)
    _git(path, "-c", "init.defaultBranch=main", "init", "-q")
    (path / MARKER).write_text("made by labbook's examples/demo.py; safe to delete\n",
                               encoding="utf-8")
    (path / "README.md").write_text(README, encoding="utf-8")
    _git(path, "add", "README.md")
    _git(path, *GIT_IDENTITY, "commit", "-q", "--no-verify", "-m", "Start the demo notebook")


def _git(path: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(path), *args], check=True, capture_output=True)


def _summarise(path: Path, recorded: dict[str, list[str]], seconds: float) -> None:
    total = sum(len(ids) for ids in recorded.values())
    print(f"Recorded {total} runs in {seconds:.1f} s on the 'experiments' branch of {path}:")
    for experiment, ids in recorded.items():
        print(f"  {experiment:<18} {len(ids):>2} runs  — {QUESTIONS[experiment]}")
    print()
    print("Verdicts:")
    for ids in recorded.values():
        for run_id in ids:
            run = labbook.get_run(run_id)
            conclusion = run.record.conclusion
            indent = "    " if run.record.parent else "  "
            verdict = conclusion.verdict if conclusion else "-"
            print(f"{indent}{run.name:<{24 - len(indent)}} {verdict:<12} "
                  f"{conclusion.text if conclusion else ''}")
    example = labbook.get_run(recorded[next(iter(recorded))][1])
    where = shlex.quote(str(path))
    print()
    print("Look at it with plain git:")
    print(f"  git -C {where} log --oneline experiments")
    print(f"  git -C {where} ls-tree -r --name-only experiments")
    print(f"  git -C {where} show experiments:{run_path(example.id)}   # {example.name}")


if __name__ == "__main__":
    sys.exit(main())
