"""What "best" means for a metric: goals declared on the experiment, and a guess for display.

A goal is data, declared once per experiment (``labbook.define_metric("val_loss",
goal="minimize")``, stored in ``experiments/<slug>.yaml``). Every place that says
best or better — ``ls``, ``compare``, ``experiments``, ``log``, the journal and the
site — asks :func:`goal_of` here and nothing else.

A metric with no declared goal may still get one *for display*, inferred from
whole words of its name (``val_loss`` → minimize, ``eval_accuracy`` → maximize,
``tokens_per_s`` → maximize); such a goal is marked inferred wherever it is
shown. Names that are schedules or counters (``lr``, ``epoch``) and names with no
known word get no goal: no best mark and no coloured delta.
"""

from __future__ import annotations

import itertools
import math
import numbers
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .record import METRIC_GOALS, MetricSpec

MAXIMIZE, MINIMIZE = METRIC_GOALS  # "maximize", "minimize"

_WORD = re.compile(r"[a-z0-9]+")
_LOWER_IS_BETTER = frozenset({
    "loss", "losses", "error", "err", "errors", "mse", "rmse", "mae", "mape", "smape", "nll",
    "perplexity", "ppl", "wer", "cer", "ter", "latency", "duration", "runtime", "seconds", "regret",
    "distance", "divergence", "kl", "fid"})
_HIGHER_IS_BETTER = frozenset({
    "acc", "accuracy", "auc", "auroc", "roc", "f1", "f2", "fbeta", "precision", "recall", "r2", "bleu",
    "rouge", "meteor", "chrf", "map", "ndcg", "mrr", "iou", "miou", "dice", "jaccard", "reward",
    "rewards", "return", "returns", "score", "psnr", "ssim", "throughput", "mmlu", "hellaswag",
    "winogrande", "arc", "gsm8k", "humaneval", "truthfulqa", "exact", "em"})
_SCHEDULES = frozenset({
    "lr", "momentum", "beta", "beta1", "beta2", "epoch", "epochs", "step", "steps", "iter", "iteration",
    "iterations", "warmup", "decay", "temperature", "size", "norm", "scale"})
_RATES = (("per", "s"), ("per", "sec"), ("per", "second"), ("it", "s"))


@dataclass(frozen=True)
class Goal:
    """Which way a metric improves, and whether the user said so or labbook guessed it."""

    goal: str | None  # MAXIMIZE, MINIMIZE, or None: no best, no better or worse
    declared: bool = False
    summary: str = "last"  # which value stands for the run: last, min, max or mean

    @property
    def known(self) -> bool:
        """True when there is a direction to compare by."""
        return self.goal is not None

    @property
    def label(self) -> str:
        """A short label for tables: '↑ max', '↓ min (inferred)', or ''."""
        if self.goal is None:
            return ""
        arrow = "↑ max" if self.goal == MAXIMIZE else "↓ min"
        return arrow if self.declared else f"{arrow} (inferred)"

    def better(self, a: float, b: float) -> bool:
        """True when ``a`` is strictly better than ``b`` (False for NaN or an unknown goal)."""
        if self.goal is None or math.isnan(a) or math.isnan(b):
            return False
        return a > b if self.goal == MAXIMIZE else a < b

    def best(self, values: Iterable[float | None]) -> float | None:
        """The best of ``values`` (missing and NaN skipped), or None when there is no goal."""
        known = [float(v) for v in values if isinstance(v, numbers.Real) and not math.isnan(v)]
        if self.goal is None or not known:
            return None
        return max(known) if self.goal == MAXIMIZE else min(known)

    def improvement(self, old: float, new: float) -> bool | None:
        """True if ``new`` improves on ``old``, False if it is worse, None if not comparable."""
        if self.goal is None or not (math.isfinite(old) and math.isfinite(new)) or old == new:
            return None
        return self.better(new, old)

    @property
    def sort_descending(self) -> bool:
        """True when the best value comes first in a descending sort."""
        return self.goal == MAXIMIZE


NO_GOAL = Goal(None)


def infer_goal(key: str) -> str | None:
    """The goal a metric's name suggests (whole words only), or None.

    ``val_loss`` and ``test/mse`` → minimize; ``eval_accuracy``, ``tokens_per_s`` and
    ``reward`` → maximize; ``lr`` and ``epoch``, and names with no known word → None.
    """
    words = _WORD.findall(_split_camel(key).lower())
    if not words:
        return None
    for pair in itertools.pairwise(words):
        if pair in _RATES:
            return MAXIMIZE
    if words[-1] in _SCHEDULES:  # lr, epoch, batch_size, grad_norm, loss_scale: not a result
        return None
    for word in reversed(words):  # the last telling word decides: val_loss_acc is an accuracy
        if word in _LOWER_IS_BETTER:
            return MINIMIZE
        if word in _HIGHER_IS_BETTER:
            return MAXIMIZE
    return None


def _split_camel(key: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", key)


def goal_of(key: str, specs: Mapping[str, MetricSpec] | None = None) -> Goal:
    """The goal of metric ``key`` given an experiment's declared specs (None: infer only)."""
    spec = (specs or {}).get(key)
    summary = spec.summary if spec is not None and spec.summary else "last"
    if spec is not None and spec.goal is not None:
        return Goal(spec.goal, declared=True, summary=summary)
    inferred = infer_goal(key)
    return Goal(inferred, declared=False, summary=summary) if inferred else Goal(None, summary=summary)


def goals_of(keys: Iterable[str], specs: Mapping[str, MetricSpec] | None = None) -> dict[str, Goal]:
    """:func:`goal_of` for each key."""
    return {key: goal_of(key, specs) for key in keys}


def key_metrics(specs: Mapping[str, MetricSpec] | None) -> list[str]:
    """The metrics an experiment marked as key (``define_metric(..., key=True)``), in name order."""
    return sorted(k for k, spec in (specs or {}).items() if spec.key)


def parse_goal(text: str) -> str:
    """A user's goal word as the format's: max/maximize/higher → maximize, min/… → minimize."""
    words = {"max": MAXIMIZE, "maximize": MAXIMIZE, "maximise": MAXIMIZE, "higher": MAXIMIZE,
             "min": MINIMIZE, "minimize": MINIMIZE, "minimise": MINIMIZE, "lower": MINIMIZE}
    goal = words.get(str(text).strip().lower())
    if goal is None:
        from ..errors import InvalidValue

        raise InvalidValue(f"goal {text!r} is not one of maximize (max) or minimize (min)")
    return goal
