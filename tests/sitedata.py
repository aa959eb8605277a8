"""A notebook for the site tests: ordinary runs with histories and artifacts, and XSS payloads in
every user-written field. Each payload, if it ever ran, would set ``window.__xss``."""

from __future__ import annotations

import base64
from pathlib import Path

import labbook

PAYLOADS = [
    "<script>window.__xss=1</script>",
    '"><img src=x onerror="window.__xss=2">',
    "[a link](javascript:window.__xss=3)",
    "</script><script>window.__xss=4</script>",
    'para {onclick="window.__xss=5"}\n{: onclick="window.__xss=5" }',
    "[entity](jav&#x61;script:window.__xss=6)",
    "<a href='javascript:window.__xss=7'>x</a><svg onload=window.__xss=8>",
    "' onmouseover='window.__xss=9' x='",
]
EVIL_SVG = (b'<svg xmlns="http://www.w3.org/2000/svg" width="20" height="20" onload="window.__xss=10">'
            b"<script>window.__xss=11</script><rect width='20' height='20' fill='red'/></svg>")
EVIL_HTML = b"<html><body><script>window.__xss=12</script></body></html>"
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAFklEQVR4nGP8z8DAwMDAxMDAwMDA"
                       "AAANHQEDasKb6QAAAABJRU5ErkJggg==")


def make_notebook(repo: Path) -> dict[str, str]:
    """Record the notebook in ``repo`` (already labbook's repository); name → run id."""
    ids = {}
    labbook.set_experiment("baseline study", "Does the learning rate matter?")
    for i, lr in enumerate((0.1, 0.01)):
        with labbook.start_run(f"lr-{lr}", hypothesis=f"lr={lr} converges") as run:
            labbook.log_params({"lr": lr, "layers": 2})
            for step in range(5):
                labbook.log_metric("loss", 1.0 / (step + 1 + i), step=step)
            labbook.log_metric("accuracy", 0.8 + i / 10)
            labbook.note("Plain **markdown** note.")
            (repo / "plot.png").write_bytes(PNG)
            labbook.log_artifact(repo / "plot.png")
            (repo / "preds.csv").write_text("y,yhat\n1,2\n")
            labbook.log_artifact(repo / "preds.csv")
            labbook.conclude("supported", "it did")
            ids[run.name] = run.id
    with labbook.start_run("sweep", hypothesis="a sweep finds a better lr") as parent:
        labbook.log_param("lr", 0.05)
        with labbook.start_run("sweep-child", nested=True) as child:
            labbook.log_params({"lr": 0.5, "layers": 2})
            labbook.log_metric("loss", 0.2)
        ids["sweep"], ids["sweep-child"] = parent.id, child.id
    ids.update(_evil_runs(repo))
    return ids


def _evil_runs(repo: Path) -> dict[str, str]:
    ids = {}
    for n, payload in enumerate(PAYLOADS):
        one_line = payload.replace("\n", " ")  # names are one line (docs/FORMAT.md, Limits)
        labbook.set_experiment(f"exp {one_line}", f"question {payload}")
        with labbook.start_run(f"run {n} {one_line}", hypothesis=payload, tags={"t": payload}) as run:
            labbook.log_params({"p": payload, "q": n})
            labbook.set_tag("t2", payload)
            labbook.log_metric("loss", float(n), step=0)
            labbook.log_metric("loss", float(n) / 2, step=1)
            labbook.note(payload)
            labbook.note(f"Look: {payload}")
            if n == 0:
                (repo / "evil.svg").write_bytes(EVIL_SVG)
                labbook.log_artifact(repo / "evil.svg")
                (repo / "report.html").write_bytes(EVIL_HTML)
                labbook.log_artifact(repo / "report.html")
                weird = repo / "a'b&c.json"
                weird.write_text('{"x": "</pre><script>window.__xss=13</script>"}')
                labbook.log_artifact(weird)
            labbook.conclude("refuted", payload)
            ids[f"evil{n}"] = run.id
    return ids
