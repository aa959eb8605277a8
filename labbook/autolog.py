"""``labbook.autolog()``: every scikit-learn ``fit`` logged as a run, without logging calls.

``autolog()`` replaces ``fit`` on the scikit-learn estimator classes (those of
``sklearn.utils.all_estimators()`` plus the two hyper-parameter searches) with a wrapper
that calls the original and then logs: the estimator's ``get_params(deep=False)``, its
class as the tag ``estimator_class``, and training metrics computed on the data it was
fitted on. A fit outside any run gets a run of its own, named after the class. A fit
inside another fit (a pipeline's steps, a search's candidates and refit, an ensemble's
members) is not logged: only the outermost one is. ``autolog(disable=True)`` puts the
original methods back. scikit-learn is imported only when ``autolog()`` is called.
"""

from __future__ import annotations

import functools
import inspect
import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

from . import tracking, validation
from .errors import LabbookError
from .run import Run, error_summary

MAX_REPR = 1000
_log = logging.getLogger("labbook")
_originals: dict[type, Callable[..., Any]] = {}
_lock = threading.Lock()
_depth = 0  # fits in progress; process-wide, so fits in joblib's worker threads count as inner


def autolog(disable: bool = False) -> None:
    """Log every scikit-learn ``fit`` (params, class, training metrics; searches as a parent
    run with a child per candidate); ``disable=True`` restores the original ``fit`` methods."""
    with _lock:
        if disable:
            for cls, original in _originals.items():
                cls.fit = original
            _originals.clear()
            return
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
        run = tracking.start_run(name=type(estimator).__name__)
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
    _safe(lambda: run.set_tag("estimator_class", _class_path(estimator)))
    _safe(lambda: run.log_params(loggable_params(estimator.get_params(deep=False))))
    if hasattr(estimator, "cv_results_"):
        _log_search(run, estimator)
    if y is not None:
        _safe(lambda: run.log_metrics(training_metrics(estimator, X, y)))


def _safe(call: Callable[[], Any]) -> None:
    """Log one thing; a failure (a param re-logged with another value, a model that cannot
    predict…) is a warning, never an error in the user's fit."""
    try:
        call()
    except Exception as exc:
        _log.warning("labbook.autolog: %s", exc)


def loggable_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Params as labbook stores them; values it does not take (estimators, arrays, dicts…)
    become their repr, shortened to 1000 characters."""
    out = {}
    for key, value in params.items():
        try:
            if isinstance(value, Mapping):
                raise TypeError
            out[key] = validation.param_value(key, value)
        except (LabbookError, TypeError):
            text = repr(value)
            out[key] = text if len(text) <= MAX_REPR else text[: MAX_REPR - 1] + "…"
    return out


def training_metrics(estimator: Any, X: Any, y: Any) -> dict[str, float]:
    """accuracy and weighted f1 of a classifier, mse, r2 and mae of a regressor, on (X, y)."""
    from sklearn import metrics
    from sklearn.base import is_classifier, is_regressor

    if not hasattr(estimator, "predict"):
        return {}
    if is_classifier(estimator):
        predicted = estimator.predict(X)
        return {"training_accuracy": metrics.accuracy_score(y, predicted),
                "training_f1": metrics.f1_score(y, predicted, average="weighted")}
    if is_regressor(estimator):
        predicted = estimator.predict(X)
        return {"training_mse": metrics.mean_squared_error(y, predicted),
                "training_r2": metrics.r2_score(y, predicted),
                "training_mae": metrics.mean_absolute_error(y, predicted)}
    return {}


def _log_search(run: Run, search: Any) -> None:
    """A child run per candidate (its params and cross-validation scores); the best params
    and score on the search's own run."""
    results = search.cv_results_
    score_keys = [k for k in results if k.startswith(("mean_test_", "std_test_", "rank_test_"))]
    name = type(search).__name__
    for i, candidate in enumerate(results["params"]):
        child = tracking.start_run(name=f"{name}-candidate-{i}", parent=run)
        try:
            _log_candidate(child, search.estimator, candidate,
                           {k: float(results[k][i]) for k in score_keys})
        finally:
            child.end()
    if hasattr(search, "best_params_"):
        _safe(lambda: run.log_params({f"best_params.{k}": v
                                      for k, v in loggable_params(search.best_params_).items()}))
    if hasattr(search, "best_score_"):
        _safe(lambda: run.log_metric("best_score", float(search.best_score_)))


def _log_candidate(child: Run, estimator: Any, params: Mapping[str, Any], scores: dict[str, float]) -> None:
    _safe(lambda: child.set_tag("estimator_class", _class_path(estimator)))
    _safe(lambda: child.log_params(loggable_params(params)))
    _safe(lambda: child.log_metrics(scores))


def _class_path(estimator: Any) -> str:
    cls = type(estimator)
    return f"{cls.__module__}.{cls.__qualname__}"
