"""Mergeable one-pass moments (the partial-state interface of DESIGN.md)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


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
