"""Parity with MLflow's own search: the same runs logged into real MLflow (a sqlite store in
tmp_path) and into labbook.mlflow (a git repository), then the same searches asked of both.

The cases are written after MLflow's tests/utils/test_search_utils.py (filters, quoting,
quoted entity prefixes, attributes) and the search tests of its tracking stores (order_by
with missing values, NaN and infinities, ties, the latest metric by step then timestamp,
paging, limits and errors). ``SAME`` must give the same runs in the same order (or both
raise an MlflowException); ``EXTENSIONS`` are filters MLflow refuses and labbook answers on
purpose (docs/mlflow.md lists them). The counts are reported in docs/mlflow.md.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

import labbook.mlflow as lmlflow
from conftest import git

mlflow = pytest.importorskip("mlflow")
from mlflow.entities import Metric, Param, RunTag  # noqa: E402

pytestmark = pytest.mark.slow
T0 = 1_700_000_000_000
NAN, INF = float("nan"), float("inf")

# name: (start offset s, status, params, metrics [(key, value, step, ts offset ms)], tags)
RUNS: dict[str, tuple[int, str, dict[str, str], list[tuple[str, float, int, int]], dict[str, str]]] = {
    "ridge-a": (1, "FINISHED", {"model": "LR", "alpha": "0.1"},
                [("acc", 0.90, 0, 0), ("acc", 0.94, 1, 10), ("loss", 0.3, 0, 0)],
                {"stage": "baseline", "t.a.g": "a"}),
    "ridge-b": (2, "FINISHED", {"model": "LR", "alpha": "10"},
                [("acc", 0.94, 0, 0), ("loss", 0.2, 0, 0), ("spacey name", 6.0, 0, 0)],
                {"stage": "baseline"}),
    "tree-a": (3, "FAILED", {"model": "tree", "depth": "3", "p.a.r.a.m": "x"},
               [("acc", 0.80, 5, 0), ("acc", 0.99, 2, 50), ("loss", NAN, 0, 0)],
               {"stage": "candidate", "note": "L'Hosp"}),
    "tree-b": (4, "KILLED", {"model": "tree", "depth": "12"},
               [("acc", INF, 0, 0), ("loss", 0.5, 0, 0), ("accuracy.2.0", 7.0, 0, 0)],
               {"stage": "candidate"}),
    "mlp": (5, "FINISHED", {"model": "mlp", "cat dog": "pets"},
            [("acc", -INF, 0, 0), ("loss", 0.1, 3, 5), ("loss", 0.4, 3, 9), ("X-Y-Z", 3.0, 0, 0)],
            {}),
    "empty": (6, "RUNNING", {}, [], {"stage": "draft"}),
    "same-acc": (7, "FINISHED", {"model": "LR", "alpha": "1"},
                 [("acc", 0.94, 0, 0), ("loss", 0.2, 0, 0)], {"stage": "baseline"}),
}

SAME: list[tuple[str, list[str] | None]] = [
    ("", None), ("metric.acc >= 0.94", None), ("metric.acc>=100", None),
    ("params.model!='tree'", None), ('params."model"!="tree"', None),
    ("metrics.`spacey name` > 5", None), ('metric."spacey name" >= 0.243', None),
    ('metrics."X-Y-Z" = 3', None), ("params.model = 'LR'", None),
    ("metrics.loss < 0.35 and params.model = 'LR'", None), ("`metric`.acc >= 0.1", None),
    ("`params`.model = 'LR'", None), ("`tags`.stage = 'baseline'", None),
    ('metrics."accuracy.2.0" > 5', None), ('params."p.a.r.a.m" != "a"', None),
    ('tags."t.a.g" = "a"', None), ("run.status = 'RUNNING'", None),
    ("attributes.status = 'FAILED'", None), ("attribute.status != 'FINISHED'", None),
    ("tags.stage IS NULL", None), ("tags.stage IS NOT NULL", None), ("params.alpha IS NULL", None),
    ("params.alpha IS NOT NULL", None), ("tags.stage IS NULL AND params.model = 'mlp'", None),
    ("params.model = \"L'Hosp\"", None), ("tags.note = \"L'Hosp\"", None),
    ("params.model LIKE 'L%'", None), ("params.model ILIKE 'l%'", None),
    ("tags.stage LIKE '%date'", None), ("attributes.run_name LIKE 'ridge%'", None),
    ("attributes.run_name = 'mlp'", None), ("tags.mlflow.runName = 'mlp'", None),
    ("tags.`mlflow.runName` ILIKE 'TREE%'", None),
    ("metrics.acc > 0.95", None), ("metrics.acc < 0", None), ("metrics.acc = 0.94", None),
    ("metrics.acc != 0.94", None), ("metrics.loss != 0.3", None), ("metrics.loss > 0.25", None),
    ("metrics.loss <= 0.2", None), ("metrics.missing > 1", None),
    (f"attributes.start_time >= {T0 + 3000}", None), (f"attribute.start_time = {T0 + 2000}", None),
    (f"attributes.end_time > {T0 + 3000}", None),
    # errors MLflow raises and labbook raises too (as MlflowException)
    ("metric.acc >= 0.94; metrics.rmse < 1", None), ("m.acc >= 0.94", None), ("acc >= 0.94", None),
    ("attribute.start != 1", None), ("`metrics.A > 0.1", None), ("params.acc = 'LR", None),
    ("tags.acc = = 'LR'", None), ("params.acc LR", None), ("1=1", None),
    ("attribute.lifecycle_stage = 'ACTIVE'", None), ("metric.acc !=", None),
]
ORDERS: list[list[str]] = [
    [], ["metrics.acc DESC"], ["metrics.acc ASC"], ["metrics.acc"], ["metrics.loss DESC"],
    ["metrics.loss ASC"], ["metrics.no_such_metric DESC"], ["params.no_such_param"],
    ["params.model ASC"], ["params.model DESC", "metrics.acc ASC"], ["params.depth"],
    ["tags.stage DESC"], ["attributes.start_time ASC"], ["attributes.end_time DESC"],
    ["attributes.run_name"], ["attribute.status DESC"], ["metrics.acc DESC", "metrics.acc ASC"],
    ["metrics.`spacey name` DESC"],
]
# MLflow refuses these; labbook's language answers them (OR, NOT, parentheses, IS NULL on a
# metric, an unquoted number for a param, a comparison of param text with < and >, IN on
# params and the status).
EXTENSIONS = [
    "metrics.acc > 0.95 OR params.model = 'mlp'", "metrics.acc > 0.1 AND (params.model = 'LR')",
    "NOT params.model = 'LR'", "metrics.acc IS NULL", "params.depth = 3", "params.model >= 'LR'",
    "params.model IN ('LR', 'mlp')", "params.model NOT IN ('LR', 'mlp')",
    "attributes.status IN ('FAILED', 'KILLED')",
]
# MLflow's sqlite store keeps an infinite metric as the largest finite float; labbook keeps inf.
SQL_INF = 1.7976931348623157e308


def _log(client: Any, experiment_id: str) -> dict[str, str]:
    ids = {}
    for name, (offset, status, params, metrics, tags) in RUNS.items():
        run = client.create_run(experiment_id, start_time=T0 + offset * 1000, run_name=name,
                                tags=tags)
        rid = run.info.run_id
        client.log_batch(rid, metrics=[Metric(k, v, T0 + offset * 1000 + t, s) for k, v, s, t in metrics],
                         params=[Param(k, v) for k, v in params.items()],
                         tags=[RunTag(k, v) for k, v in tags.items()])
        if status != "RUNNING":
            client.set_terminated(rid, status, end_time=T0 + offset * 1000 + 500)
        ids[rid] = name
    return ids


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    where = tmp_path_factory.mktemp("parity")
    theirs = mlflow.MlflowClient(tracking_uri=f"sqlite:///{where / 'mlflow.db'}")
    repo = where / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    git(repo, "config", "user.name", "Ada Tester")
    git(repo, "config", "user.email", "ada@example.com")
    git(repo, "commit", "-q", "--allow-empty", "-m", "first")
    ours = lmlflow.MlflowClient(tracking_uri=str(repo))
    their_exp, our_exp = theirs.create_experiment("parity"), ours.create_experiment("parity")
    return {"theirs": (theirs, their_exp, _log(theirs, their_exp)),
            "ours": (ours, our_exp, _log(ours, our_exp))}


def _answer(side: tuple[Any, str, dict[str, str]], filter_string: str,
            order_by: list[str] | None = None, max_results: int = 1000) -> list[str] | str:
    client, exp, names = side
    try:
        runs = client.search_runs([exp], filter_string, order_by=order_by, max_results=max_results)
    except Exception as exc:  # the type is what is compared
        return f"raises {type(exc).__name__}"
    return [names[r.info.run_id] for r in runs]


@pytest.mark.parametrize(("filter_string", "_"), SAME, ids=[c for c, _ in SAME])
def test_same_runs_as_mlflow_for_a_filter(stores: dict[str, Any], filter_string: str, _: Any) -> None:
    theirs, ours = _answer(stores["theirs"], filter_string), _answer(stores["ours"], filter_string)
    assert ours == theirs


@pytest.mark.parametrize("order_by", ORDERS, ids=[", ".join(o) or "default" for o in ORDERS])
def test_same_order_as_mlflow(stores: dict[str, Any], order_by: list[str]) -> None:
    theirs = _answer(stores["theirs"], "", order_by)
    ours = _answer(stores["ours"], "", order_by)
    assert ours == theirs
    if isinstance(theirs, list):  # the "best run" is the same one
        assert _answer(stores["ours"], "", order_by, 1) == theirs[:1]


@pytest.mark.parametrize("filter_string", EXTENSIONS)
def test_labbook_extensions_mlflow_refuses(stores: dict[str, Any], filter_string: str) -> None:
    assert _answer(stores["theirs"], filter_string) == "raises MlflowException"
    assert isinstance(_answer(stores["ours"], filter_string), list)


def test_latest_metric_values_and_nan_match(stores: dict[str, Any]) -> None:
    """The value search_runs shows for a metric: highest step, then latest timestamp; NaN
    and infinities kept."""
    def latest(side: tuple[Any, str, dict[str, str]]) -> dict[str, dict[str, float]]:
        client, exp, names = side
        return {names[r.info.run_id]: r.data.metrics for r in client.search_runs([exp])}

    theirs, ours = latest(stores["theirs"]), latest(stores["ours"])
    assert sorted(theirs) == sorted(ours)
    for name, metrics in theirs.items():
        assert sorted(ours[name]) == sorted(metrics), name
        for key, value in metrics.items():
            mine = ours[name][key]
            if math.isinf(mine):
                mine = math.copysign(SQL_INF, mine)
            assert (math.isnan(value) and math.isnan(mine)) or mine == value, (name, key)


def test_paging_and_limits_match(stores: dict[str, Any]) -> None:
    def pages(side: tuple[Any, str, dict[str, str]]) -> list[list[str]]:
        client, exp, names = side
        out, token = [], None
        while True:
            page = client.search_runs([exp], max_results=3, page_token=token)
            out.append([names[r.info.run_id] for r in page])
            token = page.token
            if not token:
                return out

    assert pages(stores["ours"]) == pages(stores["theirs"])
    assert _answer(stores["ours"], "", max_results=50_001) == \
        _answer(stores["theirs"], "", max_results=50_001) == "raises MlflowException"


def test_user_id_and_artifact_uri_are_searchable(stores: dict[str, Any]) -> None:
    client, exp, names = stores["ours"]
    some = client.search_runs([exp], "attributes.run_name = 'mlp'")[0]
    assert [names[r.info.run_id] for r in client.search_runs(
        [exp], f"attributes.artifact_uri = '{some.info.artifact_uri}'")] == ["mlp"]
    assert len(client.search_runs([exp], "attributes.user_id = 'Ada Tester'")) == len(RUNS)
    assert client.search_runs([exp], "attributes.user_id = 'someone else'") == []


def test_a_bad_filter_is_labbooks_mlflow_exception(stores: dict[str, Any]) -> None:
    client, exp, _ = stores["ours"]
    with pytest.raises(lmlflow.MlflowException) as caught:
        client.search_runs([exp], "metrics.acc >< 1")
    assert caught.value.error_code == "INVALID_PARAMETER_VALUE"
    with pytest.raises(lmlflow.MlflowException, match="duplicate"):
        client.search_runs([exp], order_by=["metrics.acc", "metrics.acc DESC"])


def test_report_counts(stores: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    """Not an assertion of its own: prints the pass counts docs/mlflow.md reports."""
    same = sum(_answer(stores["ours"], f) == _answer(stores["theirs"], f) for f, _ in SAME)
    orders = sum(_answer(stores["ours"], "", o) == _answer(stores["theirs"], "", o) for o in ORDERS)
    with capsys.disabled():
        print(f"\nparity: filters {same}/{len(SAME)}, orders {orders}/{len(ORDERS)}, "
              f"extensions {len(EXTENSIONS)}")
    assert Path(__file__).exists()
