"""``labbook.autolog()``: every scikit-learn ``fit`` logged as a run, without logging calls.

``autolog()`` replaces ``fit`` on the scikit-learn estimator classes (those of
``sklearn.utils.all_estimators()`` plus the two hyper-parameter searches) with a wrapper
that calls the original and then logs what MLflow's sklearn autolog logs: the
estimator's ``get_params(deep=True)`` (``deep=False`` for a search, whose estimator is
only a seed), the tags ``estimator_name`` and ``estimator_class``, training metrics with
MLflow's names (``training_mean_squared_error``, ``training_accuracy_score``,
``training_score``…), and the fitted estimator as artifacts: ``model/model.pkl``
(cloudpickle, or pickle/skops), ``model/MLmodel`` and ``estimator.html``. A search also
logs ``best_<param>`` params, ``best_cv_score``, ``cv_results.csv``, its best estimator
under ``best_estimator/`` and a child run for each of its ``max_tuning_runs`` best
candidates. A fit outside any run gets a run of its own, named after the class. A fit
inside another fit (a pipeline's steps, a search's candidates and refit, an ensemble's
members) is not logged: only the outermost one is. ``autolog(disable=True)`` puts the
original methods back. scikit-learn is imported only when ``autolog()`` is called.
"""

from __future__ import annotations

import functools
import inspect
import logging
import math
import threading
from collections.abc import Callable, Mapping
from typing import Any

from . import tracking
from .errors import InvalidValue, LabbookError
from .format import validation
from .runs import models
from .runs.run import Run, error_summary

MAX_REPR = 1000
_log = logging.getLogger("labbook")
_originals: dict[type, Callable[..., Any]] = {}
_lock = threading.Lock()
_depth = 0  # fits in progress; process-wide, so fits in joblib's worker threads count as inner
_config: dict[str, Any] = {"log_models": True, "max_tuning_runs": 5,
                           "serialization_format": "cloudpickle", "pos_label": None, "extra_tags": {},
                           "run_starter": None}


def autolog(disable: bool = False, *, log_models: bool = True, max_tuning_runs: int | None = 5,
            serialization_format: str = "cloudpickle", pos_label: Any = None,
            extra_tags: Mapping[str, str] | None = None,
            run_starter: Callable[[str, Run | None], Run] | None = None) -> None:
    """Log every scikit-learn ``fit`` as MLflow's sklearn autolog does (params, tags,
    training metrics, the model; searches as a parent with a child per best candidate);
    ``disable=True`` restores the original ``fit`` methods. ``run_starter(name, parent)``
    starts the runs autolog makes itself (labbook.mlflow's adds MLflow's source tags)."""
    with _lock:
        if disable:
            for cls, original in _originals.items():
                cls.fit = original
            _originals.clear()
            return
        if serialization_format not in models.FORMATS:
            raise InvalidValue(f"serialization_format {serialization_format!r} is not one of "
                               f"{', '.join(models.FORMATS)}")
        _config.update(log_models=log_models, max_tuning_runs=max_tuning_runs,
                       serialization_format=serialization_format, pos_label=pos_label,
                       extra_tags=dict(extra_tags or {}), run_starter=run_starter or _start)
        from sklearn.model_selection import GridSearchCV, RandomizedSearchCV
        from sklearn.utils import all_estimators

        for estimator in [c for _, c in all_estimators()] + [GridSearchCV, RandomizedSearchCV]:
            # patch the class that defines fit (BaseSearchCV for the searches), once
            cls = next((c for c in estimator.__mro__ if "fit" in c.__dict__), None)
            original = cls.__dict__["fit"] if cls is not None else None
            if cls in _originals or not inspect.isfunction(original):
                continue
            _originals[cls] = original
            cls.fit = _wrap(original)


def _start(name: str, parent: Run | None) -> Run:
    return tracking.start_run(name=name, parent=parent)


def _wrap(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def fit(self: Any, *args: Any, **kwargs: Any) -> Any:
        global _depth
        with _lock:
            outermost = _depth == 0
            _depth += 1
        try:
            if not outermost:
                return original(self, *args, **kwargs)
            return _logged_fit(original, self, args, kwargs)
        finally:
            with _lock:
                _depth -= 1

    return fit


def _logged_fit(original: Callable[..., Any], estimator: Any, args: tuple[Any, ...],
                kwargs: dict[str, Any]) -> Any:
    run = tracking.active_run()
    own = run is None
    if run is None:
        run = _config["run_starter"](type(estimator).__name__, None)
        _safe(lambda: run.set_tag("mlflow.autologging", "sklearn"))  # a run autolog made
    try:
        result = original(estimator, *args, **kwargs)
    except BaseException as exc:
        if own:
            run.end("KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED",
                    error=error_summary(exc))
        raise
    try:
        X = args[0] if args else kwargs.get("X")
        y = args[1] if len(args) > 1 else kwargs.get("y")
        _log_fit(run, estimator, X, y)
    except Exception as exc:  # logging must never break the user's fit
        _log.warning("labbook.autolog: could not log the fit of %s: %s", type(estimator).__name__, exc)
    finally:
        if own:
            run.end()
    return result


def _log_fit(run: Run, estimator: Any, X: Any, y: Any) -> None:
    search = is_search(estimator)
    _safe(lambda: run.set_tags({**estimator_tags(estimator), **_config["extra_tags"]}))
    _safe(lambda: run.log_params(loggable_params(estimator.get_params(deep=not search))))
    if y is not None:
        _safe(lambda: run.log_metrics(training_metrics(estimator, X, y, _config["pos_label"])))
    if _config["log_models"]:
        _safe(lambda: models.log_model(run, estimator, "model", _config["serialization_format"]))
        _safe(lambda: models.log_html(run, estimator))
    if search:
        _safe(lambda: _log_search(run, estimator))


def is_search(estimator: Any) -> bool:
    """A hyper-parameter search (GridSearchCV, RandomizedSearchCV…): it has a seed estimator."""
    return hasattr(estimator, "cv_results_") or type(estimator).__name__.endswith("SearchCV")


def estimator_tags(estimator: Any) -> dict[str, str]:
    """MLflow's estimator_name (the class) and estimator_class (its full path)."""
    return {"estimator_name": type(estimator).__name__, "estimator_class": _class_path(estimator)}


def _safe(call: Callable[[], Any]) -> None:
    """Log one thing; a failure (a param re-logged with another value, a model that cannot
    predict…) is a warning, never an error in the user's fit."""
    try:
        call()
    except Exception as exc:
        _log.warning("labbook.autolog: %s", exc)


def loggable_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Params as labbook stores them; values it does not take (estimators, arrays, dicts…)
    become their repr, shortened to 1000 characters; None and NaN become "None" and "nan",
    as in MLflow."""
    out = {}
    for key, value in params.items():
        if value is None or (isinstance(value, float) and math.isnan(value)):
            out[key] = str(value)  # "None", "nan" as MLflow logs them (not read as missing)
            continue
        try:
            if isinstance(value, Mapping):
                raise TypeError
            out[key] = validation.param_value(key, value)
        except (LabbookError, TypeError):
            text = repr(value)
            out[key] = text if len(text) <= MAX_REPR else text[: MAX_REPR - 1] + "…"
    return out


def training_metrics(estimator: Any, X: Any, y: Any, pos_label: Any = None) -> dict[str, float]:
    """MLflow's training metrics on (X, y): precision, recall, f1 (weighted, or binary with
    ``pos_label``), accuracy, log loss and ROC AUC of a classifier; mean squared, root mean
    squared and absolute errors and r2 of a regressor; ``training_score`` for both."""
    from sklearn.base import is_classifier, is_regressor

    if not hasattr(estimator, "predict"):
        return {}
    found: dict[str, float] = {}
    if is_classifier(estimator):
        found = _classifier_metrics(estimator, X, y, pos_label)
    elif is_regressor(estimator):
        found = _regressor_metrics(estimator, X, y)
    if hasattr(estimator, "score"):
        try:
            found["training_score"] = float(estimator.score(X, y))
        except Exception as exc:  # a model whose score needs more than (X, y)
            _log.warning("labbook.autolog: no training_score: %s", exc)
    return found


def _classifier_metrics(estimator: Any, X: Any, y: Any, pos_label: Any) -> dict[str, float]:
    from sklearn import metrics

    predicted = estimator.predict(X)
    average = "weighted" if pos_label is None else "binary"
    found = {f"training_{name}_score": float(score(y, predicted, pos_label=pos_label, average=average))
             for name, score in (("precision", metrics.precision_score),
                                 ("recall", metrics.recall_score), ("f1", metrics.f1_score))}
    found["training_accuracy_score"] = float(metrics.accuracy_score(y, predicted))
    if hasattr(estimator, "predict_proba"):
        proba = estimator.predict_proba(X)
        found["training_log_loss"] = float(metrics.log_loss(y, proba))
        scores = proba[:, 1] if proba.shape[1] == 2 else proba
        found["training_roc_auc"] = float(metrics.roc_auc_score(y, scores, average="weighted",
                                                                multi_class="ovo"))
    return found


def _regressor_metrics(estimator: Any, X: Any, y: Any) -> dict[str, float]:
    from sklearn import metrics

    predicted = estimator.predict(X)
    mse = float(metrics.mean_squared_error(y, predicted))
    return {"training_mean_squared_error": mse, "training_root_mean_squared_error": mse ** 0.5,
            "training_mean_absolute_error": float(metrics.mean_absolute_error(y, predicted)),
            "training_r2_score": float(metrics.r2_score(y, predicted))}


def _log_search(run: Run, search: Any) -> None:
    """The best params (``best_<name>``), ``best_cv_score``, ``cv_results.csv`` and the best
    estimator on the search's run; a child run for each of the best candidates (all with
    ``max_tuning_runs=None``): the seed estimator's params with the candidate's, and the
    numeric columns of ``cv_results_`` but the per-split ones."""
    import pandas as pd

    if hasattr(search, "best_params_"):
        _safe(lambda: run.log_params({f"best_{k}": v
                                      for k, v in loggable_params(search.best_params_).items()}))
    if hasattr(search, "best_score_"):
        _safe(lambda: run.log_metric("best_cv_score", float(search.best_score_)))
    if _config["log_models"] and hasattr(search, "best_estimator_"):
        _safe(lambda: models.log_model(run, search.best_estimator_, "best_estimator",
                                       _config["serialization_format"]))
    results = pd.DataFrame(search.cv_results_)
    _safe(lambda: models.log_bytes(run, "cv_results.csv", results.to_csv(index=False).encode()))
    rank = next((c for c in results.columns if c.startswith("rank_test_")), None)
    limit = _config["max_tuning_runs"]
    best = results if limit is None or rank is None else results.nsmallest(limit, rank)
    seed = search.estimator
    base = seed.get_params(deep=not is_search(seed))
    for i, row in best.iterrows():
        child = _config["run_starter"](f"{type(search).__name__}-candidate-{i}", run)
        try:
            scores = {k: float(v) for k, v in row.items() if isinstance(v, int | float)
                      and not isinstance(v, bool) and not k.startswith(("param", "split"))}
            _log_candidate(child, seed, {**base, **row["params"]}, scores)
        finally:
            child.end()


def _log_candidate(child: Run, estimator: Any, params: Mapping[str, Any], scores: dict[str, float]) -> None:
    _safe(lambda: child.set_tags({**estimator_tags(estimator), "mlflow.autologging": "sklearn"}))
    _safe(lambda: child.log_params(loggable_params(params)))
    _safe(lambda: child.log_metrics(scores))


def _class_path(estimator: Any) -> str:
    cls = type(estimator)
    return f"{cls.__module__}.{cls.__qualname__}"
