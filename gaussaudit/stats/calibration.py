"""Where an observed statistic falls in its null distribution."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class NullBand:
    """A metric's null band from Gaussian surrogates, and where the observation falls.

    ``percentile`` is the share (0-100) of surrogate values below the observed one,
    ties counted half.
    """

    null_low: float
    null_high: float
    observed: float
    percentile: float
    replicates: int


def null_band(null_values, observed: float, low: float = 5.0, high: float = 95.0) -> NullBand:
    """The ``low``-``high`` percentile band of ``null_values`` and the observation's percentile.

    Examples
    --------
    >>> band = null_band(np.arange(101.0), 90.0)
    >>> band.null_low, band.null_high, band.percentile
    (5.0, 95.0, 89.60396039603961)
    """
    null = np.asarray(null_values, dtype=np.float64)
    below = np.count_nonzero(null < observed)
    ties = np.count_nonzero(null == observed)
    return NullBand(
        null_low=float(np.percentile(null, low)),
        null_high=float(np.percentile(null, high)),
        observed=float(observed),
        percentile=float(100.0 * (below + 0.5 * ties) / null.size),
        replicates=int(null.size),
    )
