"""Where an observed statistic falls in its null distribution."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Share of Gaussian samples a null band covers.
BAND_COVERAGE = 0.90


@dataclass(frozen=True)
class NullBand:
    """A metric's null band from Gaussian surrogates, and where the observation falls.

    The band runs from the j-th smallest to the j-th largest of R surrogate
    values, j = (R + 1)(1 − coverage)/2. A Gaussian sample's own value is
    exchangeable with the surrogates', so it falls inside with probability
    exactly (R + 1 − 2j)/(R + 1) = ``coverage`` (R = 19: the surrogates' range
    covers 90 %). ``percentile`` is the share (0-100) of surrogate values below
    the observed one, ties counted half; ``null_mean`` their mean, the metric's
    expectation under the null.
    """

    null_low: float
    null_high: float
    observed: float
    percentile: float
    replicates: int
    null_mean: float = float("nan")
    coverage: float = BAND_COVERAGE

    @property
    def inside(self) -> bool:
        return bool(self.null_low <= self.observed <= self.null_high)


def null_band(null_values, observed: float, coverage: float = BAND_COVERAGE) -> NullBand:
    """The ``coverage`` band of ``null_values`` (order statistics, see :class:`NullBand`)
    and the observation's percentile.

    Examples
    --------
    >>> band = null_band(np.arange(1.0, 20.0), 10.0)   # R = 19: the range covers 90 %
    >>> band.null_low, band.null_high, band.percentile
    (1.0, 19.0, 50.0)
    """
    null = np.sort(np.asarray(null_values, dtype=np.float64))
    r = null.size
    j = max(1, int(round((r + 1) * (1 - coverage) / 2)))
    finite = null[np.isfinite(null)]
    below = np.count_nonzero(null < observed)
    ties = np.count_nonzero(null == observed)
    return NullBand(
        null_low=float(null[j - 1]),
        null_high=float(null[r - j]),
        observed=float(observed),
        percentile=float(100.0 * (below + 0.5 * ties) / r),
        replicates=int(r),
        null_mean=float(finite.mean()) if finite.size else float("nan"),
        coverage=float((r + 1 - 2 * j) / (r + 1)),
    )
