"""Mergeable one-pass moments (the partial-state interface of DESIGN.md).

Every one-pass statistic here has the same three verbs: ``update(chunk)`` folds
data in, ``merge(other)`` combines two states built on disjoint parts of the
data and returns a new one, ``result()`` reads the answer. Chunks of a file,
files of a shard set, threads and the workers of a distributed engine all
combine the same way, and merging the states of the parts gives the state of
the whole (to float64 round-off).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gaussaudit.stats.normality import is_constant


@dataclass
class RunningMoments:
    """Count, mean and sum of squared deviations of a stream, in float64.

    A partial state: ``update`` folds in a chunk, ``merge`` combines two states
    built on disjoint parts (chunks, shards, threads, workers), ``result``-style
    properties read the answer. The pairwise update of Chan, Golub & LeVeque
    (1983) keeps the variance accurate where the naive sum of squares cancels.

    Examples
    --------
    >>> import numpy as np
    >>> from gaussaudit.stats import RunningMoments
    >>> x = np.arange(10.0)
    >>> a = RunningMoments().update(x[:3]); b = RunningMoments().update(x[3:])
    >>> m = a.merge(b)
    >>> int(m.count), float(m.mean), bool(np.isclose(m.variance, x.var()))
    (10, 4.5, True)

    References
    ----------
    Chan, T. F., Golub, G. H. & LeVeque, R. J. (1983). Algorithms for computing
    the sample variance: analysis and recommendations. Amer. Statist. 37, 242-247.
    """

    count: int = 0
    mean: float = 0.0
    m2: float = 0.0  # sum of squared deviations from the mean

    def update(self, values) -> "RunningMoments":
        """Fold in a 1-D chunk of values; returns ``self``."""
        v = np.asarray(values, dtype=np.float64).ravel()
        if v.size == 0:
            return self
        chunk_mean = float(v.mean())
        dev = v - chunk_mean
        chunk = RunningMoments(count=int(v.size), mean=chunk_mean, m2=float(dev @ dev))
        merged = self.merge(chunk)
        self.count, self.mean, self.m2 = merged.count, merged.mean, merged.m2
        return self

    def merge(self, other: "RunningMoments") -> "RunningMoments":
        """A new state equal to having seen this state's data and ``other``'s."""
        if other.count == 0:
            return RunningMoments(self.count, self.mean, self.m2)
        if self.count == 0:
            return RunningMoments(other.count, other.mean, other.m2)
        n = self.count + other.count
        delta = other.mean - self.mean
        mean = self.mean + delta * (other.count / n)
        m2 = self.m2 + other.m2 + delta * delta * (self.count * other.count / n)
        return RunningMoments(n, mean, m2)

    def result(self) -> "RunningMoments":
        """A frozen copy to read ``count``, ``mean``, ``std`` and ``cv`` from."""
        return RunningMoments(self.count, self.mean, self.m2)

    @property
    def variance(self) -> float:
        """Population variance (ddof 0); NaN when empty."""
        return self.m2 / self.count if self.count else float("nan")

    @property
    def std(self) -> float:
        """Population standard deviation (ddof 0)."""
        return float(np.sqrt(self.variance))

    @property
    def cv(self) -> float:
        """Coefficient of variation std/mean (ddof 0); NaN when the mean is 0."""
        return self.std / self.mean if self.mean != 0 else float("nan")


@dataclass(frozen=True)
class MomentsSummary:
    """What a :class:`FeatureMoments` state says about each feature.

    Attributes
    ----------
    count : int
        Rows seen.
    mean, variance, std : ndarray
        Population moments (ddof 0).
    skewness : ndarray
        g1 = m3 / m2^1.5, as ``scipy.stats.skew(x, bias=True)``.
    excess_kurtosis : ndarray
        g2 = m4 / m2² - 3, as ``scipy.stats.kurtosis(x, bias=True)``.
    constant : ndarray of bool
        Zero variance (up to rounding); skewness and kurtosis are NaN there.
    """

    count: int
    mean: np.ndarray
    variance: np.ndarray
    std: np.ndarray
    skewness: np.ndarray
    excess_kurtosis: np.ndarray
    constant: np.ndarray


@dataclass
class FeatureMoments:
    """Mean and central sums of powers 2-4 of every feature of a row stream.

    The partial state behind the every-row moments of a scan: ``update`` folds
    in an ``(n, d)`` chunk, ``merge`` combines states built on disjoint rows
    (chunks, shards, threads, workers), ``result`` gives mean, variance,
    skewness and excess kurtosis per feature. Each chunk is centred on its own
    mean before powers are taken (two passes over data already in memory) and
    chunk states combine with the pairwise formulas of Pébay (2008), so no sum of
    raw powers ever cancels. Everything is float64.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy import stats
    >>> x = np.random.default_rng(0).standard_normal((1000, 3))
    >>> a = FeatureMoments().update(x[:300]); b = FeatureMoments().update(x[300:])
    >>> whole = a.merge(b).result()
    >>> bool(np.allclose(whole.skewness, stats.skew(x))), whole.count
    (True, 1000)

    References
    ----------
    Pébay, P. (2008). Formulas for robust, one-pass parallel computation of
    covariances and arbitrary-order statistical moments. Sandia Report
    SAND2008-6212.
    """

    count: int = 0
    mean: np.ndarray | None = None
    m2: np.ndarray | None = None  # Σ (x - mean)²
    m3: np.ndarray | None = None  # Σ (x - mean)³
    m4: np.ndarray | None = None  # Σ (x - mean)⁴

    @classmethod
    def of_chunk(cls, rows) -> "FeatureMoments":
        """The state of one ``(n, d)`` chunk, computed directly."""
        x = np.asarray(rows, dtype=np.float64)
        if x.ndim != 2:
            raise ValueError(f"expected an (n, d) chunk, got shape {x.shape}")
        if x.shape[0] == 0:
            return cls()
        n = x.shape[0]
        mean = x.mean(axis=0)
        centred = x - mean
        # The mean's own round-off, measured on the centred values and taken
        # out of the sums below (the corrected two-pass algorithm): without it,
        # a feature with a large offset loses digits of skewness.
        r = centred.mean(axis=0)
        squared = centred * centred
        s2 = squared.sum(axis=0)
        centred *= squared  # cubes, in place: one temporary fewer
        s3 = centred.sum(axis=0)
        squared *= squared
        s4 = squared.sum(axis=0)
        r2 = r * r
        m2 = s2 - n * r2
        m3 = s3 - 3.0 * r * s2 + 2.0 * n * r2 * r
        m4 = s4 - 4.0 * r * s3 + 6.0 * r2 * s2 - 3.0 * n * r2 * r2
        mean = mean + r
        return cls(int(x.shape[0]), mean, m2, m3, m4)

    def update(self, rows) -> "FeatureMoments":
        """Fold in an ``(n, d)`` chunk of rows; returns ``self``."""
        merged = self.merge(FeatureMoments.of_chunk(rows))
        self.count, self.mean, self.m2, self.m3, self.m4 = merged.count, merged.mean, merged.m2, merged.m3, merged.m4
        return self

    def merge(self, other: "FeatureMoments") -> "FeatureMoments":
        """A new state equal to having seen this state's rows and ``other``'s."""
        if other.count == 0:
            return _copy_moments(self)
        if self.count == 0:
            return _copy_moments(other)
        if other.mean.shape != self.mean.shape:
            raise ValueError(f"cannot merge moments of {self.mean.size} and {other.mean.size} features")
        na, nb = float(self.count), float(other.count)
        n = na + nb
        delta = other.mean - self.mean
        d_n = delta / n
        d_n2 = d_n * d_n
        mean = self.mean + nb * d_n
        m2 = self.m2 + other.m2 + delta * d_n * na * nb
        m3 = (self.m3 + other.m3 + delta * d_n2 * na * nb * (na - nb)
              + 3.0 * d_n * (na * other.m2 - nb * self.m2))
        m4 = (self.m4 + other.m4 + delta * d_n2 * d_n * na * nb * (na * na - na * nb + nb * nb)
              + 6.0 * d_n2 * (na * na * other.m2 + nb * nb * self.m2)
              + 4.0 * d_n * (na * other.m3 - nb * self.m3))
        return FeatureMoments(self.count + other.count, mean, m2, m3, m4)

    def result(self) -> MomentsSummary:
        """Per-feature moments of every row seen so far."""
        if self.count == 0:
            raise ValueError("no rows seen")
        n = self.count
        variance = self.m2 / n
        constant = is_constant(self.mean, variance)  # the per-feature tests' own rule
        with np.errstate(divide="ignore", invalid="ignore"):
            skewness = np.where(constant, np.nan, (self.m3 / n) / variance**1.5)
            kurtosis = np.where(constant, np.nan, (self.m4 / n) / variance**2 - 3.0)
        return MomentsSummary(n, self.mean.copy(), variance, np.sqrt(variance), skewness, kurtosis, constant)


def _copy_moments(m: FeatureMoments) -> FeatureMoments:
    if m.count == 0:
        return FeatureMoments()
    return FeatureMoments(m.count, m.mean.copy(), m.m2.copy(), m.m3.copy(), m.m4.copy())
