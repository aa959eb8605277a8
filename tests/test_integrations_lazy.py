"""The integrations import their frameworks only when a logger or callback is made."""

from __future__ import annotations

import subprocess
import sys

import pytest


def test_importing_an_integration_module_loads_no_framework() -> None:
    code = ("import sys, labbook\n"
            "import labbook.integrations.xgboost, labbook.integrations.lightgbm\n"
            "import labbook.integrations.optuna, labbook.integrations.keras\n"
            "import labbook.integrations.lightning, labbook.integrations.transformers\n"
            "heavy = {'torch', 'xgboost', 'lightgbm', 'optuna', 'keras', 'lightning', 'transformers',\n"
            "         'pandas', 'psutil'}\n"
            "loaded = heavy & set(sys.modules)\n"
            "assert not loaded, loaded\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_missing_framework_is_an_import_error_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import labbook.integrations.xgboost as integration

    monkeypatch.setitem(sys.modules, "xgboost", None)
    monkeypatch.delitem(integration.__dict__, "LabbookCallback", raising=False)
    with pytest.raises(ImportError, match="xgboost"):
        integration.LabbookCallback  # noqa: B018


def test_callbacks_pickle_for_spawned_workers_without_their_run(repo: object) -> None:
    import pickle

    import labbook

    pytest.importorskip("xgboost")
    from labbook.integrations.xgboost import LabbookCallback

    callback = LabbookCallback(name="pickled")
    assert callback.session.open("xgboost") is not None  # a live run, with its journal and locks
    copy = pickle.loads(pickle.dumps(callback))
    assert type(copy) is LabbookCallback
    assert copy.session.run is None and copy.session.start_args["name"] == "pickled"
    callback.session.end()
    assert labbook.get_run("pickled").status == "FINISHED"
