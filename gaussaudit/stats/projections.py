"""Normality of one-dimensional projections.

By the Maxwell-Poincaré lemma, points uniform on a high-dimensional sphere have
near-Gaussian projections onto any fixed direction; coordinates are only d
particular directions. Random directions test that claim directly; principal
directions are where structure such as clusters shows first.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from gaussaudit.stats.normality import FeatureNormality, feature_normality
from gaussaudit.stats.qq import QQFeature, qq_samples
from gaussaudit.stats.summaries import TABLE_SUMMARIES, SummaryAttributes, summarise

_COLUMNS_PER_BLOCK = 4096


def random_directions(dim: int, k: int, seed: int) -> np.ndarray:
    """``k`` unit vectors drawn uniformly on the sphere S^(dim-1), as a (dim, k) matrix.

    Examples
    --------
    >>> import numpy as np
    >>> v = random_directions(5, 3, seed=0)
    >>> v.shape, bool(np.allclose(np.linalg.norm(v, axis=0), 1))
    ((5, 3), True)
    """
    # A stream of its own: changing --sample must not change the directions.
    rng = np.random.default_rng([seed, 0x9E3779B9])
    g = rng.standard_normal((dim, k))
    return g / np.linalg.norm(g, axis=0, keepdims=True)


def project(x_fm: np.ndarray, directions: np.ndarray) -> np.ndarray:
    """Projections of feature-major data (d × n) onto columns of ``directions``
    (d × k), returned feature-major (k × n), in float64.

    A float32 ``x_fm`` is widened a block of columns at a time, never whole.
    """
    d, n = x_fm.shape
    if x_fm.dtype == np.float64:
        return directions.T @ x_fm
    out = np.empty((directions.shape[1], n))
    for start in range(0, n, _COLUMNS_PER_BLOCK):
        stop = start + _COLUMNS_PER_BLOCK
        np.matmul(directions.T, x_fm[:, start:stop].astype(np.float64), out=out[:, start:stop])
    return out


@dataclass(frozen=True)
class ProjectionResult(SummaryAttributes):
    """AD/DP summaries over k projections, like the per-feature table: the paper
    table's summaries by key in ``metrics``, each also an attribute (``ad_mean``…).

    ``explained`` (principal projections only) is the share of variance the k
    directions hold.
    """

    kind: str
    k: int
    tests: FeatureNormality
    explained: float | None = None
    qq: tuple[QQFeature, ...] = ()
    metrics: Mapping[str, float] = field(default_factory=dict)


def projection_normality(x_fm: np.ndarray, directions: np.ndarray, kind: str, *, threads: int | None = None,
                         explained: float | None = None, keep_qq: bool = False, device: str = "cpu") -> ProjectionResult:
    """Run the per-feature AD and DP tests on the projections onto ``directions``;
    ``keep_qq`` keeps the best, median and worst projection's order statistics."""
    projected = project(x_fm, directions)
    tests = feature_normality(projected, axis=1, threads=threads, device=device)
    qq = qq_samples(projected, tests) if keep_qq else ()
    return ProjectionResult(kind=kind, k=directions.shape[1], tests=tests, explained=explained, qq=qq,
                            metrics=summarise(tests, TABLE_SUMMARIES))
