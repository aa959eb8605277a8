"""Runs in a notebook (HTML, escaped like the site) and in a terminal (labbook.show)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from bs4 import BeautifulSoup

import labbook

EVIL = '<script>alert("x")</script>'


def logged(name: str, losses: list[float], accuracy: float, **params: object) -> labbook.Run:
    with labbook.start_run(name=name, hypothesis=f"{EVIL} & more") as run:
        labbook.log_params(params)
        for step, loss in enumerate(losses):
            labbook.log_metric("loss", loss, step=step)
        labbook.log_metric("accuracy", accuracy)
    return labbook.get_run(run.id)


def test_a_run_renders_as_escaped_html_with_params_metrics_and_a_chart(repo: Path) -> None:
    run = logged(f"ridge {EVIL}", [1.0, 0.5, 0.25, float("nan"), 0.2], 0.9, alpha=0.5, note=f"a {EVIL}")
    page = run._repr_html_()
    assert "<script" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    soup = BeautifulSoup(page, "html.parser")
    assert soup.find("script") is None
    text = soup.get_text(" ")
    assert f"ridge {EVIL}" in text and run.id[:8] in text and "FINISHED" in text
    assert f"{EVIL} & more" in text  # the hypothesis, shown as text
    tables = soup.find_all("table")
    params = {r.find_all("td")[0].get_text(): r.find_all("td")[1].get_text()
              for r in tables[0].find("tbody").find_all("tr")}
    assert params == {"alpha": "0.5", "note": f"a {EVIL}"}
    metrics = {r.find_all("td")[0].get_text(): r for r in tables[1].find("tbody").find_all("tr")}
    loss_cells = [td.get_text() for td in metrics["loss"].find_all("td")]
    assert loss_cells[1:5] == ["0.2", "0.2", "min~", "4"]  # last, best, goal (guessed: ~), step
    assert [td.get_text() for td in metrics["accuracy"].find_all("td")][3] == "max~"
    labbook.define_metric("loss", "min")  # declared: no ~
    page = BeautifulSoup(run._repr_html_(), "html.parser")
    loss_row = next(r for r in page.find_all("table")[1].find("tbody").find_all("tr")
                    if r.find_all("td")[0].get_text() == "loss")
    assert loss_row.find_all("td")[3].get_text() == "min"
    polyline = metrics["loss"].find("svg").find("polyline")
    assert len(polyline["points"].split()) == 4  # NaN left out of the chart


def test_compare_shows_runs_side_by_side_with_the_best_starred(repo: Path) -> None:
    a = logged("a", [1.0, 0.4], 0.7, alpha=0.1, solver="svd")
    b = logged("b", [1.0, 0.3], 0.6, alpha=0.2, solver="svd")
    runs = labbook.compare(labbook.search_runs(order_by=["attributes.run_name ASC"]))
    assert [r.id for r in runs] == [a.id, b.id]
    soup = BeautifulSoup(runs._repr_html_(), "html.parser")
    rows = {r.find_all("td")[0].get_text(): [td.get_text() for td in r.find_all("td")[1:]]
            for r in soup.find("tbody").find_all("tr")}
    assert rows["alpha *"] == ["0.1", "0.2"] and rows["solver"] == ["svd", "svd"]
    assert rows["loss (min~)"] == ["0.4", "0.3 ★"]
    assert rows["accuracy (max~)"] == ["0.7 ★", "0.6"]
    assert len(soup.find_all("svg")) == 4
    assert "b" in str(labbook.compare("a", b)) and "★" in str(labbook.compare("a", b))


def test_show_prints_a_run_or_a_comparison_for_the_terminal(repo: Path) -> None:
    run = logged("shown", [3.0, 2.0, 1.0], 0.5, alpha=1)
    out = io.StringIO()
    labbook.show(run, file=out)
    text = out.getvalue()
    assert "shown" in text and run.id in text and "alpha = 1" in text
    assert "▁" in text or "█" in text  # the loss history as a sparkline
    logged("other", [2.0], 0.6, alpha=2)
    out = io.StringIO()
    labbook.show("shown", "other", file=out)
    assert "shown" in out.getvalue() and "other" in out.getvalue()


def test_something_that_is_not_a_run_is_named(repo: Path) -> None:
    with pytest.raises(labbook.InvalidValue, match="is not a run"):
        labbook.compare(42)
