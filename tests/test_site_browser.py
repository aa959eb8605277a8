"""The journal in a real browser (Debian's chromium through Playwright), opened from file://."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from labbook.site import context

playwright = pytest.importorskip("playwright.sync_api")
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
MAKE = """
import json, sys
from pathlib import Path
import labbook
from sitedata import make_notebook
from labbook.site import build
repo = Path(sys.argv[1])
labbook.set_repository(repo)
ids = make_notebook(repo)
build(labbook.tracking.repository(), sys.argv[2])
print(json.dumps(ids))
"""

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="chromium is not installed")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """The test notebook's site, built once for the module in an isolated git setup."""
    base = tmp_path_factory.mktemp("browser")
    (base / ".gitconfig").write_text("[user]\n\tname = Ada\n\temail = ada@example.com\n"
                                     "[init]\n\tdefaultBranch = main\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_") and k != "LABBOOK_REPO"}
    env.update(HOME=str(base), GIT_CONFIG_GLOBAL=str(base / ".gitconfig"), GIT_CONFIG_NOSYSTEM="1",
               PYTHONPATH=str(Path(__file__).parent))
    repo = base / "repo"
    repo.mkdir()
    for args in (["init", "-q"], ["commit", "-q", "--allow-empty", "-m", "first"]):
        subprocess.run(["git", "-C", str(repo), *args], env=env, check=True)
    out = subprocess.run([sys.executable, "-c", MAKE, str(repo), str(base / "site")], cwd=repo, env=env,
                         capture_output=True, text=True, check=True)
    return base / "site", json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def browser():
    with playwright.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()


class Watched:
    """A page that records console errors, dialogs and every request leaving file://."""

    def __init__(self, browser, width: int = 1280):
        self.page = browser.new_page(viewport={"width": width, "height": 900})
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.outside: list[str] = []
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        self.page.on("request", lambda r: r.url.startswith(("file:", "data:")) or self.outside.append(r.url))

    def open(self, url: str) -> None:
        self.page.goto(url)
        self.page.wait_for_load_state("load")
        self.page.wait_for_timeout(50)

    def clean(self) -> None:
        assert self.errors == [] and self.dialogs == [] and self.outside == []
        assert self.page.evaluate("window.__xss") is None


def url(site: Path, name: str) -> str:
    return (site / name).as_uri()


def test_journal_opens_offline_without_errors(site, browser):
    root, ids = site
    w = Watched(browser)
    w.open(url(root, "index.html"))
    assert w.page.locator("article.entry").count() >= len(ids) - 1
    assert w.page.locator(f"#run-{ids['lr-0.01']} .badge").inner_text().lower() == "supported"
    w.page.click("header.top nav >> text=Experiments")
    assert w.page.url.endswith("experiments.html")
    w.clean()


def test_experiment_table_sorts_filters_and_compares(site, browser):
    root, ids = site
    w = Watched(browser)
    w.open(url(root, context.experiment_page(_slug(root, "baseline study"))))
    rows = w.page.locator("#runs tbody tr")
    assert rows.count() == 4  # lr-0.1, lr-0.01, sweep and its child
    w.page.click("#runs thead button[data-col='run_name']")
    first = rows.nth(0).locator("td.name").inner_text()
    w.page.click("#runs thead button[data-col='run_name']")
    assert rows.nth(0).locator("td.name").inner_text() != first
    assert w.page.locator("#runs tr.child").count() == 1
    w.page.fill("#filter", "lr-0.01")
    assert rows.count() == 1
    w.page.fill("#filter", "")
    w.page.fill("#runs thead input[data-col='metrics.loss']", "<0.19")
    assert rows.locator("td.name").all_inner_texts() == ["lr-0.01"]  # last loss 1/6
    w.page.fill("#runs thead input[data-col='metrics.loss']", ">=0.2")
    assert rows.count() == 3  # lr-0.1, sweep (shown for its child) and sweep-child
    w.page.fill("#runs thead input[data-col='metrics.loss']", "")
    for name in ("lr-0.1", "lr-0.01"):
        w.page.check(f"#runs tbody tr[data-id='{ids[name]}'] input[type=checkbox]")
    w.page.wait_for_timeout(100)
    assert w.page.locator("#history-chart path.series").count() == 2
    assert w.page.locator("#history-chart circle.point").count() == 10
    assert w.page.locator("#parallel-chart path.series").count() >= 2
    assert w.page.locator("#scatter-chart circle.dot").count() >= 2
    w.page.click("#compare-selected")
    w.page.wait_for_selector("#compare-params:not([hidden])")
    assert "compare.html#ids=" in w.page.url
    heads = w.page.locator("#param-table th a").all_inner_texts()
    assert heads == ["lr-0.1", "lr-0.01"]
    assert w.page.locator("#param-table tr.differs th").all_inner_texts() == ["lr"]
    assert w.page.locator("#metric-table td.best").count() == 2
    assert w.page.locator("#compare-history circle.point").count() == 10
    w.clean()


def test_run_page_shows_image_artifact_and_history_chart(site, browser):
    root, ids = site
    w = Watched(browser)
    w.open(url(root, context.run_page(ids["lr-0.1"])))
    image = w.page.locator("figure.artifact-image img")
    assert image.evaluate("img => img.complete && img.naturalWidth") > 0
    assert w.page.locator("#run-charts circle.point").count() == 5
    assert "y,yhat" in w.page.locator("pre.preview").inner_text()
    w.clean()


def test_search_finds_runs_by_param_and_note(site, browser):
    root, _ = site
    w = Watched(browser)
    w.open(url(root, "search.html") + "?q=lr%3D0.5")
    assert w.page.locator("#search-results a").all_inner_texts() == ["sweep-child"]
    w.page.fill("#q", "markdown note")
    assert w.page.locator("#search-results li").count() == 2
    w.clean()


def test_xss_payloads_stay_inert_on_every_page(site, browser):
    root, ids = site
    w = Watched(browser)
    evil = ",".join(v for k, v in ids.items() if k.startswith("evil"))
    pages = [url(root, p.name) for p in sorted(root.glob("*.html"))]
    pages += [url(root, "compare.html") + "#ids=" + evil, url(root, "search.html") + "?q=window"]
    for address in pages:
        w.open(address)
        title = w.page.title()
        for link in w.page.locator("a[href^='#'], button:not([disabled])").all()[:5]:
            link.hover()
        assert w.page.title() == title
        w.clean()
    svg = w.page.locator("img[alt='evil.svg']")
    w.open(url(root, context.run_page(ids["evil0"])))
    assert svg.evaluate("img => img.complete && img.naturalWidth") > 0
    w.clean()


def test_phone_width_has_no_horizontal_overflow(site, browser):
    root, ids = site
    w = Watched(browser, width=375)
    for name in ("index.html", context.run_page(ids["lr-0.1"]), "compare.html",
                 context.experiment_page(_slug(root, "baseline study"))):
        suffix = f"#ids={ids['lr-0.1']},{ids['lr-0.01']}" if name == "compare.html" else ""
        w.open(url(root, name) + suffix)
        assert w.page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), name
    w.clean()


def _slug(root: Path, name: str) -> str:
    from labbook.format.record import experiment_slug
    return experiment_slug(name)


def test_compare_links_accept_names_and_short_ids(site, browser):
    """compare.html#ids=NAME,PREFIX resolves through data/handles.js; unknown tokens are shown
    as text, never markup."""
    from urllib.parse import quote

    root, ids = site
    w = Watched(browser)
    tokens = ["lr-0.1", ids["lr-0.01"][:6], '<img src=x onerror="window.__xss=20">']
    w.open(url(root, "compare.html") + "#ids=" + quote(",".join(tokens)))
    w.page.wait_for_selector("#compare-params:not([hidden])")
    assert w.page.locator("#param-table th a").all_inner_texts() == ["lr-0.1", "lr-0.01"]
    status = w.page.locator("#compare-status").inner_text()
    assert 'not found: <img src=x onerror="window.__xss=20">' in status
    w.clean()


def test_a_metric_sorts_best_first_and_flat_lifts_a_sweeps_trial(site, browser):
    root, _ = site
    w = Watched(browser)
    w.open(url(root, context.experiment_page(_slug(root, "baseline study"))))
    names = w.page.locator("#runs tbody tr td.name")
    w.page.click("#runs thead button[data-col='metrics.accuracy']")  # higher is better: 0.9 first
    assert names.all_inner_texts()[0] == "lr-0.01"
    w.page.click("#runs thead button[data-col='metrics.loss']")  # lower is better: 1/6 first
    grouped = names.all_inner_texts()
    assert grouped[0] == "lr-0.01" and grouped.index("sweep-child") == grouped.index("sweep") + 1
    w.page.check("#flat")
    flat = names.all_inner_texts()
    assert flat[0] == "lr-0.01" and flat.index("sweep-child") < flat.index("sweep")  # 0.2 before no loss
    assert w.page.locator("#runs tr.child").count() == 0
    w.clean()
