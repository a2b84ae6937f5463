"""Order statistics kept for QQ plots: the best, median and worst feature by A²."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gaussaudit.stats.normality import FeatureNormality

#: Order statistics kept per feature for QQ plots: enough for a smooth curve
#: and for the tails to show, and a bounded few KB whatever the sample size.
QQ_POINTS = 1000


@dataclass(frozen=True)
class QQFeature:
    """Sorted values of one feature (or projection) the tests ran on, for its QQ plot.

    ``values`` are order statistics at plotting positions ``probabilities``
    ((i + 0.5)/n); above ``QQ_POINTS`` samples, evenly spaced ones with the
    minimum and maximum always included, so the tails stay visible.
    """

    feature: int
    role: str  # "best", "median" or "worst" by A²
    statistic: float  # A²
    mean: float
    std: float  # ddof 1, as the test estimates it
    probabilities: np.ndarray
    values: np.ndarray


def qq_samples(rows: np.ndarray, tests: FeatureNormality) -> tuple[QQFeature, ...]:
    """The best, median and worst non-constant row of feature-major ``rows`` by A²."""
    candidates = np.flatnonzero(~tests.constant)
    if candidates.size == 0:
        return ()
    by_a2 = candidates[np.argsort(tests.ad.statistic[candidates], kind="stable")]
    picks = {"best": by_a2[0], "median": by_a2[(len(by_a2) - 1) // 2], "worst": by_a2[-1]}
    out = []
    for role, j in picks.items():
        values = np.sort(rows[j])
        n = len(values)
        keep = np.unique(np.round(np.linspace(0, n - 1, min(n, QQ_POINTS))).astype(np.int64))
        out.append(QQFeature(
            feature=int(j), role=role, statistic=float(tests.ad.statistic[j]),
            mean=float(tests.mean[j]), std=float(tests.std[j]),
            probabilities=(keep + 0.5) / n, values=values[keep].astype(np.float64),
        ))
    return tuple(out)
