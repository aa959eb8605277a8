"""`labbook site serve` shows runs while they train: a read-only JSON endpoint read from the
journals, polled by the pages (checked in a real chromium)."""

from __future__ import annotations

import json
import os
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from test_live import _trainer, _wait_for

from labbook import tracking
from labbook.site import build
from labbook.site.context import run_page
from labbook.site.serve import DEFAULT_HOST, live_source, make_server, server_url

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture
def served(repo: Path, tmp_path: Path):
    """The journal served on a free port of 127.0.0.1 with its live endpoint; yields its URL."""
    root = tmp_path / "site"
    repository = tracking.repository()
    server = make_server(root, 0, DEFAULT_HOST, live_source(repository))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server_url(server), root
    server.shutdown()
    server.server_close()


def _live(base: str) -> list[dict]:
    with urllib.request.urlopen(base + "_live/runs.json", timeout=10) as answer:
        assert answer.headers["Content-Type"] == "application/json; charset=utf-8"
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
        return json.load(answer)["runs"]


def test_the_endpoint_lists_running_runs_from_their_journals(served, repo: Path, tmp_path: Path):
    base, _ = served
    assert base.startswith("http://127.0.0.1:")
    assert _live(base) == []
    child, run_id = _trainer(repo, tmp_path / "go")
    _wait_for(lambda: [m["step"] for r in _live(base) for m in r["metrics"]] == [4])
    (run,) = _live(base)
    assert run["id"] == run_id and run["name"] == "live-one" and run["status"] == "RUNNING"
    assert run["page"] == run_page(run_id) and run["updated"].endswith("Z")
    assert run["metrics"] == [{"key": "val_loss", "last": 0.2, "step": 4, "spark": "█▃▂▁▁"}]
    (tmp_path / "go").write_text("")
    assert child.wait(30) == 0
    _wait_for(lambda: _live(base) == [])  # ended: its journal is gone, the branch has it
    for path in ("/_live/", "/_live/runs.json/../../../etc/passwd", "/_live/other.json"):
        with pytest.raises(urllib.error.HTTPError) as error:
            urllib.request.urlopen(base.rstrip("/") + path, timeout=10)
        assert error.value.code == 404
    request = urllib.request.Request(base + "_live/runs.json", data=b"{}", method="POST")
    with pytest.raises(urllib.error.HTTPError) as error:  # read-only
        urllib.request.urlopen(request, timeout=10)
    assert error.value.code == 501


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="chromium is not installed")
def test_the_pages_show_a_running_run_and_drop_it_when_it_ends(served, repo: Path, tmp_path: Path):
    playwright = pytest.importorskip("playwright.sync_api")
    base, root = served
    child, run_id = _trainer(repo, tmp_path / "go")
    build(tracking.repository(), root)
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page()
        problems: list[str] = []
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        missing: list[str] = []
        page.on("response", lambda r: missing.append(r.url) if r.status >= 400 else None)
        page.goto(base + "index.html")
        page.wait_for_selector("#lb-live .live-run", timeout=15000)
        panel = page.inner_text("#lb-live")
        assert "Running now" in panel and "live-one" in panel and "RUNNING" in panel and "0.2" in panel
        assert page.get_attribute("#lb-live a", "href") == run_page(run_id)
        (tmp_path / "go").write_text("")
        assert child.wait(30) == 0
        page.wait_for_selector("#lb-live", state="hidden", timeout=15000)  # ended: gone from the panel
        file_page = browser.new_page()
        file_page.goto((root / "index.html").as_uri())  # from file:// there is nothing to poll
        assert file_page.query_selector("#lb-live") is None
        browser.close()
    assert missing == []  # every resource of the page loads (chromium's own favicon probe aside)
    assert [p for p in problems if not p.startswith("Failed to load resource")] == []
