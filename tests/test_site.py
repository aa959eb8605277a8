"""The journal site without a browser: links resolve, fields are escaped, builds are incremental,
publish leaves the user's tree alone, and the wheel ships the templates and static files."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path
from unittest import mock

import pytest
from bs4 import BeautifulSoup
from click.testing import CliRunner
from sitedata import PAYLOADS, make_notebook

import labbook
from conftest import ROOT, git, user_state
from labbook import cli as cli_module
from labbook import tracking
from labbook.cli import cli
from labbook.errors import SiteError
from labbook.site import build, context
from labbook.site.publish import publish
from labbook.site.render import render_markdown
from labbook.site.writer import Writer


@pytest.fixture
def notebook(repo: Path) -> tuple[Path, dict[str, str]]:
    return repo, make_notebook(repo)


def _pages(root: Path) -> list[Path]:
    return sorted(root.glob("*.html"))


def test_every_link_and_src_resolves_on_disk(notebook, tmp_path):
    result = build(tracking.repository(), tmp_path / "site")
    assert result.index == tmp_path / "site" / "index.html" and result.index.is_file()
    pages = _pages(tmp_path / "site")
    assert len(pages) > 10
    for page in pages:
        soup = BeautifulSoup(page.read_text(), "html.parser")
        for tag in soup.find_all(href=True) + soup.find_all(src=True):
            url = tag.get("href") or tag.get("src")
            if url.startswith(("https://", "data:image/svg+xml;base64,", "#")):
                continue
            assert not url.startswith(("http:", "//", "/", "javascript:")), (page.name, url)
            target = url.split("#")[0].split("?")[0]
            assert (page.parent / target).is_file(), f"{page.name}: {url} is missing"


def test_journal_shows_hypothesis_changes_metrics_and_verdict(notebook, tmp_path):
    build(tracking.repository(), tmp_path / "site")
    soup = BeautifulSoup((tmp_path / "site" / "index.html").read_text(), "html.parser")
    entry = soup.find(id=f"run-{notebook[1]['lr-0.01']}")
    text = entry.get_text(" ", strip=True)
    assert "lr=0.01 converges" in text and "supported" in text.lower()
    assert "lr 0.1 → 0.01" in text  # changed against the experiment's previous run
    assert "accuracy" in text and "+0.1" in text  # the delta against the best before it
    assert entry.find("div", class_="note").find("strong").text == "markdown"


def test_user_fields_are_escaped_in_the_html(notebook, tmp_path):
    build(tracking.repository(), tmp_path / "site")
    for page in _pages(tmp_path / "site"):
        soup = BeautifulSoup(page.read_text(), "html.parser")
        scripts = soup.find_all("script")
        assert all(s.get("src") or s.get("type") == "application/json" for s in scripts), page.name
        assert not soup.find("img", src="x") and not soup.find("svg")
        for tag in soup.find_all(True):
            assert not [a for a in tag.attrs if a.startswith("on")], (page.name, tag)
            for attr in ("href", "src"):
                value = (tag.get(attr) or "").lower().replace("\t", "")
                assert "javascript:" not in value and not value.startswith("data:text"), (page.name, tag)
    run_page = tmp_path / "site" / context.run_page(notebook[1]["evil0"])
    assert "<script>window.__xss=1</script>" in BeautifulSoup(run_page.read_text(), "html.parser").get_text()


def test_markdown_is_sanitized():
    for payload in PAYLOADS:
        soup = BeautifulSoup(str(render_markdown(payload)), "html.parser")
        assert not soup.find_all(["script", "img", "svg", "iframe"]), payload
        for tag in soup.find_all(True):
            assert not [a for a in tag.attrs if a.startswith("on")], payload
            assert "script:" not in (tag.get("href") or "").lower(), payload
    assert 'href="https://example.com"' in str(render_markdown("[x](https://example.com)"))
    assert "<img" not in str(render_markdown('<img src="https://example.com/x.png">'))


def test_data_scripts_cannot_break_out(notebook, tmp_path):
    build(tracking.repository(), tmp_path / "site")
    for path in (tmp_path / "site" / "data").glob("*.js"):
        assert "</script" not in path.read_text().lower()
    page = (tmp_path / "site" / context.run_page(notebook[1]["evil3"])).read_text()
    block = re.search(r'<script type="application/json" id="run-history">(.*?)</script>', page, re.S)
    assert block and "<" not in block.group(1)


def test_artifacts_are_copied_safely(notebook, tmp_path):
    build(tracking.repository(), tmp_path / "site")
    folder = tmp_path / "site" / "artifacts" / notebook[1]["evil0"]
    names = sorted(p.name for p in folder.iterdir())
    assert "evil.svg" not in names and "report.html" not in names
    assert {"evil.svg.txt", "report.html.txt"} <= set(names)
    run_page = tmp_path / "site" / context.run_page(notebook[1]["evil0"])
    page = BeautifulSoup(run_page.read_text(), "html.parser")
    assert page.find("img", alt="evil.svg")["src"].startswith("data:image/svg+xml;base64,")
    plain = tmp_path / "site" / "artifacts" / notebook[1]["lr-0.1"]
    assert (plain / "plot.png").is_file() and (plain / "preds.csv").read_text() == "y,yhat\n1,2\n"


def test_incremental_build_rewrites_only_what_changed(notebook, tmp_path):
    first = build(tracking.repository(), tmp_path / "site")
    assert len(first.report.written) > 20
    again = build(tracking.repository(), tmp_path / "site")
    assert again.report.written == [] and again.report.removed == []
    labbook.set_experiment("baseline study")
    with labbook.start_run("lr-0.001") as run:
        labbook.log_param("lr", 0.001)
        labbook.log_metric("loss", 0.5)
    third = build(tracking.repository(), tmp_path / "site")
    written = set(third.report.written)
    assert {context.run_page(run.id), context.run_script(run.id), "index.html"} <= written
    assert len(written) <= 9, written  # + data/handles.js: the new run is a new handle
    assert not any(p.startswith("run-") and p != context.run_page(run.id) for p in written)


def test_writer_refuses_two_outputs_on_one_path_and_unsafe_paths(tmp_path):
    writer = Writer(tmp_path, "f")
    writer.write("a.html", "x")
    with pytest.raises(SiteError):
        writer.write("a.html", "y")
    for bad in ("../x.html", "/etc/x", "a/../b", ""):
        with pytest.raises(SiteError):
            writer.write(bad, "z")


def test_artifact_targets_and_commit_links():
    assert context.artifact_target("abc", "plots/a.png", "image") == "artifacts/abc/plots/a.png"
    assert context.artifact_target("abc", "x.html", "download") == "artifacts/abc/x.html.txt"
    odd = context.artifact_target("abc", "<b>/..%2f.png", "image")
    assert re.fullmatch(r"artifacts/abc/[0-9a-f]{24}", odd)
    assert context.page_id("../../etc") != "../../etc"
    sha = "a" * 40
    assert context.commit_url("https://user:tok@github.com/o/r.git", sha) == f"https://github.com/o/r/commit/{sha}"
    assert context.commit_url("git@gitlab.com:o/r.git", sha) == f"https://gitlab.com/o/r/commit/{sha}"
    assert context.commit_url("javascript:alert(1)//github.com/o/r", sha) is None
    assert context.commit_url("/srv/git/r.git", sha) is None
    assert context.clean_remote("https://user:tok@github.com/o/r") == "https://github.com/o/r"


def test_publish_commits_gh_pages_and_leaves_the_tree_alone(notebook, tmp_path):
    repo_path = notebook[0]
    before = user_state(repo_path)
    result = build(tracking.repository(), tmp_path / "site")
    commit = publish(tracking.repository(), result.root)
    assert commit and git(repo_path, "rev-parse", "gh-pages").strip() == commit
    files = git(repo_path, "ls-tree", "-r", "--name-only", "gh-pages").splitlines()
    assert "index.html" in files and ".nojekyll" in files
    assert (result.root / ".labbook-journal-entries.marshal").exists()  # the build's cache is there…
    assert not [f for f in files if f.split("/")[-1].startswith(".labbook-")]  # …and is not published
    assert publish(tracking.repository(), result.root) is None  # nothing changed
    assert user_state(repo_path) == before


def test_site_commands_are_thin_adapters(tmp_path):
    fake = mock.Mock(index=tmp_path / "index.html")
    with mock.patch("labbook.site.build", autospec=True, return_value=fake) as build_mock, \
            mock.patch.object(cli_module.tracking, "repository", autospec=True) as repository:
        result = CliRunner().invoke(cli, ["site", "build", "-o", str(tmp_path)])
    assert result.exit_code == 0, result.output
    build_mock.assert_called_once_with(repository.return_value, str(tmp_path), None)
    assert result.output == f"{tmp_path / 'index.html'}\n"


def test_site_build_command_end_to_end(notebook):
    before = git(notebook[0], "status", "--porcelain")
    result = CliRunner().invoke(cli, ["site", "build"])
    assert result.exit_code == 0, result.output
    index = Path(result.output.strip())
    assert index.is_file() and ".git" in index.parts
    assert git(notebook[0], "status", "--porcelain") == before


@pytest.mark.slow
def test_wheel_ships_templates_and_static_files_and_builds_a_site(notebook, tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "w"),
                    str(ROOT)], check=True, capture_output=True)
    wheel = next((tmp_path / "w").glob("labbook-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for name in ("labbook/_templates/_base.html", "labbook/_templates/run.html", "labbook/_static/style.css",
                 "labbook/_static/labbook.js", "labbook/_static/charts.js", "labbook/site/build.py"):
        assert name in names
    target = tmp_path / "installed"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target),
                    str(wheel)], check=True, capture_output=True)
    env = dict(os.environ, PYTHONPATH=str(target))
    out = tmp_path / "from-wheel"
    command = [sys.executable, "-m", "labbook", "-C", str(notebook[0]), "site", "build", "-o", str(out)]
    proc = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, check=True)
    assert Path(proc.stdout.strip()) == out / "index.html" and (out / "static" / "labbook.js").is_file()
    check = "import labbook.site.render as r; print(r.template_dir())"
    where = subprocess.run([sys.executable, "-c", check], cwd=tmp_path, env=env, capture_output=True,
                           text=True, check=True).stdout
    assert str(target) in where


def test_the_history_chart_starts_on_a_metric_logged_over_steps():
    """A final metric every run has is the table's default; the history chart wants a curve."""
    def run(name: str, metrics: dict[str, int]) -> dict:
        return {"id": name, "name": name, "status": "FINISHED",
                "metrics": {k: {"last": 0.5, "min": 0.5, "max": 0.5, "count": n} for k, n in metrics.items()}}

    runs = [run("a", {"accuracy": 1, "loss": 20}), run("b", {"accuracy": 1, "loss": 20}),
            run("c", {"accuracy": 1})]
    table = context.experiment_table(runs)
    assert table["default_metric"] == "metrics.accuracy"
    assert table["history_metric"] == "metrics.loss"
    single = context.experiment_table([run("a", {"accuracy": 1})])
    assert single["history_metric"] == single["default_metric"] == "metrics.accuracy"


def test_serve_rebuilds_when_a_run_lands(notebook, tmp_path):
    """`labbook site serve` shows a run logged while it serves, and leaves the checkout alone."""
    import signal
    import time
    import urllib.request

    repo, _ = notebook
    before = user_state(repo)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    server = subprocess.Popen([sys.executable, "-m", "labbook", "site", "serve", "-o", str(tmp_path / "out"),
                               "--port", "0"], cwd=repo, env=env, stderr=subprocess.PIPE, text=True)
    try:
        assert server.stderr is not None
        line = server.stderr.readline()
        url = re.search(r"http://127\.0\.0\.1:\d+/", line)
        assert url, line
        page = urllib.request.urlopen(url.group(0) + "index.html", timeout=10).read().decode()
        assert "a run logged while serving" not in page
        with labbook.start_run(name="a run logged while serving"):
            labbook.log_metric("loss", 0.1)
        deadline = time.monotonic() + 60
        while "a run logged while serving" not in page and time.monotonic() < deadline:
            time.sleep(0.5)
            page = urllib.request.urlopen(url.group(0) + "index.html", timeout=10).read().decode()
        assert "a run logged while serving" in page
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=20)
    assert user_state(repo) == before


def test_serve_a_busy_port_is_one_line_and_host_is_honoured(notebook, tmp_path):
    """A busy port is a one-line error before any build; --host binds where asked and prints that URL."""
    import socket
    import urllib.request

    repo, _ = notebook
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "labbook", "site", "serve", "-o", str(tmp_path / "o"),
                               "--port", str(port)], cwd=repo, env=env, capture_output=True, text=True,
                              timeout=60)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"labbook: error: port {port} on 127.0.0.1 is in use by another program; "
        "choose another with --port, or --port 0 for any free port"]
    assert not (tmp_path / "o" / "index.html").exists()
    server = subprocess.Popen([sys.executable, "-m", "labbook", "site", "serve", "-o", str(tmp_path / "out"),
                               "--port", "0", "--host", "127.0.0.2"], cwd=repo, env=env,
                              stderr=subprocess.PIPE, text=True)
    try:
        assert server.stderr is not None
        line = server.stderr.readline()
        url = re.search(r"http://127\.0\.0\.2:\d+/", line)
        assert url, line
        assert b"<html" in urllib.request.urlopen(url.group(0) + "index.html", timeout=10).read()
    finally:
        server.terminate()
        server.wait(timeout=20)
