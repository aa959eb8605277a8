"""A small, real study on scikit-learn's bundled diabetes data, recorded with labbook.

Two experiments, each a question:

* ``diabetes-linear`` — can a linear model beat the mean baseline? A mean
  baseline, ordinary least squares, a ridge sweep (a parent run whose children
  are the alphas, chosen by cross-validation on the training set), lasso and
  SGD trained epoch by epoch.
* ``diabetes-trees`` — do tree ensembles capture what linear models miss? A
  random forest grown ten trees at a time and gradient boosting stage by stage.

Every run states a hypothesis before it fits anything, logs its params, the
test-set mse/r2/mae of one fixed split, a note, its test-set predictions (CSV)
and a predicted-vs-actual plot (PNG written with the standard library), and
concludes with a verdict computed from the numbers it just measured.

    python examples/diabetes_study.py PATH-TO-A-GIT-REPOSITORY

Everything is seeded: the same code gives the same numbers and verdicts.
"""

from __future__ import annotations

import struct
import sys
import tempfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.datasets import load_diabetes
from sklearn.dummy import DummyRegressor
from sklearn.ensemble import GradientBoostingRegressor, RandomForestRegressor
from sklearn.linear_model import Lasso, LinearRegression, Ridge, SGDRegressor
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score
from sklearn.model_selection import KFold, cross_val_score, train_test_split
from sklearn.preprocessing import StandardScaler

import labbook

LINEAR = "diabetes-linear"
TREES = "diabetes-trees"
QUESTIONS = {
    LINEAR: "Can a linear model beat the mean baseline?",
    TREES: "Do tree ensembles capture what linear models miss?",
}

SEED = 0
TEST_SIZE = 0.25
CV_FOLDS = 5
# Two test MSEs within this relative margin of each other are "the same" on 111 patients.
MARGIN = 0.01
RIDGE_ALPHAS = (0.01, 0.03, 0.1, 0.3, 1.0, 10.0)
LASSO_ALPHA = 0.1
SGD_EPOCHS = 30
FOREST_TREES = 100
FOREST_STEP = 10
BOOSTING_STAGES = 150


@dataclass(frozen=True)
class Split:
    """The fixed train/test split every run is scored on."""

    X_train: np.ndarray
    X_test: np.ndarray
    y_train: np.ndarray
    y_test: np.ndarray
    features: list[str]

    def params(self) -> dict[str, object]:
        return {"dataset": "sklearn.datasets.load_diabetes", "test_size": TEST_SIZE,
                "split_seed": SEED, "n_train": len(self.y_train), "n_test": len(self.y_test),
                "n_features": len(self.features)}


@dataclass(frozen=True)
class Scores:
    """Test-set scores of one model."""

    mse: float
    r2: float
    mae: float


def load_split() -> Split:
    """The diabetes data (442 patients, 10 features) split 75/25 with a fixed seed."""
    data = load_diabetes()
    X_train, X_test, y_train, y_test = train_test_split(
        data.data, data.target, test_size=TEST_SIZE, random_state=SEED)
    return Split(X_train, X_test, y_train, y_test, list(data.feature_names))


def run_study(repo_path: str | Path) -> dict[str, list[str]]:
    """Record the whole study into the git repository at ``repo_path``.

    Returns the ids of the runs recorded, by experiment name, in the order they ran.
    """
    labbook.set_repository(repo_path)
    split = load_split()
    recorded: dict[str, list[str]] = {LINEAR: [], TREES: []}
    with tempfile.TemporaryDirectory(prefix="labbook-diabetes-") as scratch:
        study = _Study(split, Path(scratch), recorded)
        labbook.set_experiment(LINEAR, description=QUESTIONS[LINEAR])
        baseline = study.baseline()
        ols = study.ordinary_least_squares(baseline)
        study.ridge_sweep(ols)
        study.lasso(ols)
        study.sgd(ols)
        labbook.set_experiment(TREES, description=QUESTIONS[TREES])
        study.experiment = TREES
        study.random_forest(ols)
        study.gradient_boosting(ols)
    return recorded


class _Study:
    """The runs of the study; each method records one run (the sweep, several)."""

    def __init__(self, split: Split, scratch: Path, recorded: dict[str, list[str]]):
        self.split = split
        self.scratch = scratch
        self.recorded = recorded
        self.experiment = LINEAR

    # -- helpers --------------------------------------------------------------
    def _start(self, name: str, hypothesis: str, family: str, **kwargs: object) -> labbook.Run:
        run = labbook.start_run(name=name, hypothesis=hypothesis,
                                tags={"family": family, "dataset": "diabetes"}, **kwargs)
        self.recorded[self.experiment].append(run.id)
        return run

    def _report(self, name: str, predictions: np.ndarray) -> Scores:
        """Log the test scores of ``predictions`` and store them as CSV and PNG artifacts."""
        y = self.split.y_test
        scores = Scores(mse=float(mean_squared_error(y, predictions)),
                        r2=float(r2_score(y, predictions)),
                        mae=float(mean_absolute_error(y, predictions)))
        labbook.log_metrics({"mse": scores.mse, "r2": scores.r2, "mae": scores.mae})
        folder = self.scratch / name
        folder.mkdir()
        rows = ["patient,actual,predicted,residual"]
        rows += [f"{i},{a:.1f},{p:.3f},{a - p:.3f}" for i, (a, p) in enumerate(zip(y, predictions,
                                                                                  strict=True))]
        csv = folder / "predictions.csv"
        csv.write_text("\n".join(rows) + "\n", encoding="utf-8")
        png = folder / "predicted-vs-actual.png"
        png.write_bytes(scatter_png(list(y), list(predictions)))
        # Absolute paths outside the working directory are stored under their file name.
        labbook.log_artifact(csv.resolve())
        labbook.log_artifact(png.resolve())
        return scores

    def _fit_and_report(self, name: str, model: BaseEstimator) -> Scores:
        model.fit(self.split.X_train, self.split.y_train)
        return self._report(name, model.predict(self.split.X_test))

    def _cv_mse(self, model: BaseEstimator) -> float:
        folds = KFold(CV_FOLDS, shuffle=True, random_state=SEED)
        scores = cross_val_score(model, self.split.X_train, self.split.y_train, cv=folds,
                                 scoring="neg_mean_squared_error")
        return float(-scores.mean())

    # -- diabetes-linear --------------------------------------------------------
    def baseline(self) -> Scores:
        name = "mean-baseline"
        model = DummyRegressor(strategy="mean")
        with self._start(name, "Predicting the training mean for every patient explains none "
                         "of the test variance (|R²| < 0.05); it is the bar to beat.", "baseline"):
            labbook.log_params({"model": _model_params(model, "strategy"),
                                "data": self.split.params()})
            scores = self._fit_and_report(name, model)
            labbook.note(f"Predicts **{float(model.constant_[0][0]):.1f}** for everyone; the test "
                         f"target has a standard deviation of {self.split.y_test.std():.1f}, so "
                         f"its MSE of {scores.mse:.1f} is close to the test variance.")
            verdict = "supported" if abs(scores.r2) < 0.05 else "refuted"
            labbook.conclude(verdict, f"Test R² {scores.r2:.3f} (MSE {scores.mse:.1f}, "
                             f"MAE {scores.mae:.1f}); every later run is compared to this MSE.")
        return scores

    def ordinary_least_squares(self, baseline: Scores) -> Scores:
        name = "linear-regression"
        model = LinearRegression()
        with self._start(name, "Ordinary least squares on all ten features beats the mean "
                         "baseline's test MSE.", "linear"):
            labbook.log_params({"model": _model_params(model, "fit_intercept"),
                                "data": self.split.params()})
            scores = self._fit_and_report(name, model)
            ranked = sorted(zip(self.split.features, model.coef_, strict=True),
                            key=lambda fc: -abs(fc[1]))
            labbook.note("Largest coefficients (features are mean-centred and scaled): "
                         + ", ".join(f"`{f}` {c:+.0f}" for f, c in ranked[:4]) + ".")
            labbook.conclude(_verdict(scores.mse, baseline.mse),
                             f"Test MSE {scores.mse:.1f} vs the baseline's {baseline.mse:.1f} "
                             f"({_change(scores.mse, baseline.mse)}); R² {scores.r2:.3f}.")
        return scores

    def ridge_sweep(self, ols: Scores) -> Scores:
        name = "ridge-sweep"
        ols_cv = self._cv_mse(LinearRegression())
        with self._start(name, "Choosing the L2 strength by 5-fold cross-validation on the "
                         "training set gives a lower test MSE than OLS.", "linear"):
            labbook.log_params({"model": {"class": "Ridge", "alphas": list(RIDGE_ALPHAS)},
                                "cv": {"folds": CV_FOLDS, "seed": SEED},
                                "data": self.split.params()})
            labbook.log_metric("ols_cv_mse", ols_cv)
            sweep = []
            for step, alpha in enumerate(RIDGE_ALPHAS):
                cv_mse, scores = self._ridge_child(alpha, ols_cv)
                labbook.log_metric("sweep_cv_mse", cv_mse, step=step)
                sweep.append((alpha, cv_mse, scores))
            best_alpha, best_cv, _ = min(sweep, key=lambda row: row[1])
            table = self.scratch / name / "sweep.csv"
            table.parent.mkdir()
            table.write_text("alpha,cv_mse,test_mse,test_r2,test_mae\n" + "".join(
                f"{a},{c:.2f},{s.mse:.2f},{s.r2:.4f},{s.mae:.2f}\n" for a, c, s in sweep),
                encoding="utf-8")
            labbook.log_artifact(table.resolve())
            labbook.log_params({"chosen_alpha": best_alpha})
            labbook.log_metric("cv_mse", best_cv)
            model = Ridge(alpha=best_alpha)
            model.fit(self.split.X_train, self.split.y_train)
            scores = self._report(f"{name}-chosen", model.predict(self.split.X_test))
            labbook.note(f"Cross-validation picked alpha = {best_alpha} (CV MSE {best_cv:.1f} vs "
                         f"OLS {ols_cv:.1f}). Large alphas shrink the already small, scaled "
                         "coefficients towards the mean baseline.")
            labbook.conclude(_verdict(scores.mse, ols.mse),
                             f"Ridge(alpha={best_alpha}) test MSE {scores.mse:.1f} vs OLS "
                             f"{ols.mse:.1f} ({_change(scores.mse, ols.mse)}); a difference "
                             f"under {MARGIN:.0%} is not a win on {len(self.split.y_test)} "
                             "patients.")
        return scores

    def _ridge_child(self, alpha: float, ols_cv: float) -> tuple[float, Scores]:
        name = f"ridge-alpha-{alpha:g}"
        model = Ridge(alpha=alpha)
        with self._start(name, f"Ridge with alpha={alpha:g} has a lower 5-fold CV MSE than OLS "
                         "on the training set.", "linear", nested=True):
            labbook.log_params({"model": _model_params(model, "alpha", "fit_intercept"),
                                "cv": {"folds": CV_FOLDS, "seed": SEED},
                                "data": self.split.params()})
            cv_mse = self._cv_mse(model)
            labbook.log_metric("cv_mse", cv_mse)
            scores = self._fit_and_report(name, model)
            labbook.note(f"Coefficient L2 norm {np.linalg.norm(model.coef_):.0f} "
                         f"(test MSE {scores.mse:.1f}, reported but not used to choose).")
            labbook.conclude(_verdict(cv_mse, ols_cv),
                             f"CV MSE {cv_mse:.1f} vs OLS {ols_cv:.1f} "
                             f"({_change(cv_mse, ols_cv)}).")
        return cv_mse, scores

    def lasso(self, ols: Scores) -> Scores:
        name = "lasso"
        model = Lasso(alpha=LASSO_ALPHA, max_iter=10_000)
        with self._start(name, f"Lasso (alpha={LASSO_ALPHA}) drops at least two features and "
                         "stays within 2% of the OLS test MSE.", "linear"):
            labbook.log_params({"model": _model_params(model, "alpha", "max_iter", "tol"),
                                "data": self.split.params()})
            scores = self._fit_and_report(name, model)
            dropped = [f for f, c in zip(self.split.features, model.coef_, strict=True) if c == 0]
            labbook.log_metric("n_features_used", len(self.split.features) - len(dropped))
            labbook.note("Dropped: " + (", ".join(f"`{f}`" for f in dropped) or "nothing") + ".")
            verdict = ("supported" if len(dropped) >= 2 and scores.mse <= ols.mse * 1.02
                       else "refuted")
            labbook.conclude(verdict, f"Dropped {len(dropped)} of {len(self.split.features)} "
                             f"features; test MSE {scores.mse:.1f} vs OLS {ols.mse:.1f} "
                             f"({_change(scores.mse, ols.mse)}).")
        return scores

    def sgd(self, ols: Scores) -> Scores:
        name = "sgd"
        model = SGDRegressor(penalty=None, learning_rate="invscaling", eta0=0.01,
                             random_state=SEED)
        with self._start(name, f"SGD on standardised features reaches the OLS test MSE "
                         f"(within 2%) in {SGD_EPOCHS} epochs.", "linear") as run:
            labbook.log_params({"model": _model_params(model, "penalty", "learning_rate", "eta0",
                                                       "random_state"),
                                "epochs": SGD_EPOCHS, "standardise": True,
                                "data": self.split.params()})
            scaler = StandardScaler().fit(self.split.X_train)
            X_train = scaler.transform(self.split.X_train)
            X_test = scaler.transform(self.split.X_test)
            order = np.random.default_rng(SEED)
            for epoch in range(SGD_EPOCHS):
                shuffled = order.permutation(len(X_train))
                model.partial_fit(X_train[shuffled], self.split.y_train[shuffled])
                labbook.log_metric("loss", mean_squared_error(self.split.y_train,
                                                              model.predict(X_train)), step=epoch)
                labbook.log_metric("test_mse", mean_squared_error(self.split.y_test,
                                                                  model.predict(X_test)),
                                   step=epoch)
            scores = self._report(name, model.predict(X_test))
            history = run.metric_history("test_mse")
            best_step, _, best = min(history, key=lambda row: row[2])
            labbook.note(f"Test MSE was lowest after epoch {best_step} ({best:.1f}) and ended "
                         f"at {scores.mse:.1f}; the training loss ended at "
                         f"{run.metrics['loss']:.1f}.")
            verdict = "supported" if scores.mse <= ols.mse * 1.02 else "refuted"
            labbook.conclude(verdict, f"After {SGD_EPOCHS} epochs test MSE {scores.mse:.1f} vs "
                             f"OLS {ols.mse:.1f} ({_change(scores.mse, ols.mse)}).")
        return scores

    # -- diabetes-trees -----------------------------------------------------------
    def random_forest(self, ols: Scores) -> Scores:
        name = "random-forest"
        model = RandomForestRegressor(n_estimators=FOREST_STEP, min_samples_leaf=5,
                                      warm_start=True, random_state=SEED, n_jobs=1)
        with self._start(name, "A random forest beats the OLS test MSE by finding "
                         "interactions and thresholds a linear model cannot.", "tree"):
            labbook.log_params({"model": {**_model_params(model, "min_samples_leaf",
                                                          "max_features", "random_state"),
                                          "n_estimators": FOREST_TREES},
                                "data": self.split.params()})
            for trees in range(FOREST_STEP, FOREST_TREES + 1, FOREST_STEP):
                model.set_params(n_estimators=trees)
                model.fit(self.split.X_train, self.split.y_train)
                labbook.log_metric("test_mse", mean_squared_error(
                    self.split.y_test, model.predict(self.split.X_test)), step=trees)
            scores = self._report(name, model.predict(self.split.X_test))
            ranked = sorted(zip(self.split.features, model.feature_importances_, strict=True),
                            key=lambda fi: -fi[1])
            labbook.note("Most important features: "
                         + ", ".join(f"`{f}` {i:.2f}" for f, i in ranked[:3]) + ".")
            labbook.conclude(_verdict(scores.mse, ols.mse),
                             f"Test MSE {scores.mse:.1f} with {FOREST_TREES} trees vs OLS "
                             f"{ols.mse:.1f} ({_change(scores.mse, ols.mse)}).")
        return scores

    def gradient_boosting(self, ols: Scores) -> Scores:
        name = "gradient-boosting"
        model = GradientBoostingRegressor(n_estimators=BOOSTING_STAGES, learning_rate=0.05,
                                          max_depth=2, subsample=0.8, random_state=SEED)
        with self._start(name, "Shallow gradient boosting beats the OLS test MSE.", "tree"):
            labbook.log_params({"model": _model_params(model, "n_estimators", "learning_rate",
                                                       "max_depth", "subsample", "random_state"),
                                "data": self.split.params()})
            model.fit(self.split.X_train, self.split.y_train)
            staged = [mean_squared_error(self.split.y_test, p)
                      for p in model.staged_predict(self.split.X_test)]
            for stage, (train_loss, test_mse) in enumerate(zip(model.train_score_, staged,
                                                               strict=True), start=1):
                labbook.log_metrics({"train_loss": train_loss, "test_mse": test_mse}, step=stage)
            scores = self._report(name, model.predict(self.split.X_test))
            best = int(np.argmin(staged)) + 1
            labbook.note(f"Test MSE was lowest at stage {best} ({min(staged):.1f}) of "
                         f"{BOOSTING_STAGES}; later stages fit the training set more closely "
                         "without helping the test set.")
            labbook.conclude(_verdict(scores.mse, ols.mse),
                             f"Test MSE {scores.mse:.1f} vs OLS {ols.mse:.1f} "
                             f"({_change(scores.mse, ols.mse)}).")
        return scores


def _model_params(model: BaseEstimator, *keys: str) -> dict[str, object]:
    """The estimator's class and the named constructor params (as logged params)."""
    values = model.get_params()
    return {"class": type(model).__name__, **{key: values[key] for key in keys}}


def _verdict(value: float, reference: float) -> str:
    """supported if ``value`` (an error) is lower than ``reference`` by more than MARGIN."""
    if value < reference * (1 - MARGIN):
        return "supported"
    if value > reference * (1 + MARGIN):
        return "refuted"
    return "inconclusive"


def _change(value: float, reference: float) -> str:
    return f"{(value - reference) / reference:+.1%}"


def scatter_png(actual: Sequence[float], predicted: Sequence[float], size: int = 200) -> bytes:
    """A predicted-vs-actual scatter plot as PNG bytes (no plotting library needed).

    Actual values run left to right, predictions bottom to top, on the same scale;
    the grey diagonal is a perfect prediction.
    """
    lo = min(min(actual), min(predicted))
    span = (max(max(actual), max(predicted)) - lo) or 1.0
    pad = 12
    inner = size - 1 - 2 * pad
    pixels = bytearray(b"\xff" * (size * size * 3))

    def put(x: int, y: int, rgb: tuple[int, int, int]) -> None:
        if 0 <= x < size and 0 <= y < size:
            at = (y * size + x) * 3
            pixels[at:at + 3] = bytes(rgb)

    def to_px(value: float) -> int:
        return pad + round((value - lo) / span * inner)

    for t in range(pad, size - pad):
        for x, y in ((t, pad), (t, size - 1 - pad), (pad, t), (size - 1 - pad, t)):
            put(x, y, (120, 120, 120))
        put(t, size - 1 - t, (200, 200, 200))
    for a, p in zip(actual, predicted, strict=True):
        x, y = to_px(a), size - 1 - to_px(p)
        for dx in (-1, 0, 1):
            for dy in (-1, 0, 1):
                put(x + dx, y + dy, (31, 119, 180))
    raw = b"".join(b"\x00" + bytes(pixels[row * size * 3:(row + 1) * size * 3])
                   for row in range(size))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 9))
            + chunk(b"IEND", b""))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python examples/diabetes_study.py PATH-TO-A-GIT-REPOSITORY")
    for experiment, ids in run_study(sys.argv[1]).items():
        print(f"{experiment}: {len(ids)} runs")
