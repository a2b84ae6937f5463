"""Tests of uniformity on the sphere S^(d-1), for L2-normalised rows.

Uniform on the sphere is what normalised *isotropic* Gaussian data look like
(x/‖x‖ with x ~ N(0, σ²I)); a non-zero mean direction or preferred axes make
normalised rows non-uniform even when the raw rows are Gaussian. So these
answer "uniform on the sphere?", a narrower question than the normalised
null of :mod:`gaussaudit.stats.headline`. The R package ``sphunif``
(García-Portugués & Verdebout) implements both tests with the same
statistics.

References
----------
.. [1] Rayleigh, Lord (1919). On the problem of random vibrations, and of
       random flights in one, two, or three dimensions. Phil. Mag. 37, 321-347.
.. [2] Bingham, C. (1974). An antipodally symmetric distribution on the sphere.
       Ann. Statist. 2, 1201-1225.
.. [3] Mardia, K. V. & Jupp, P. E. (2000). *Directional Statistics*, Wiley,
       §10.7 (Rayleigh: n·d·‖ū‖² → χ²_d; Bingham:
       n·d(d+2)/2 · (tr T² − 1/d) → χ²_{(d−1)(d+2)/2}).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special


@dataclass(frozen=True)
class UniformityResult:
    """Rayleigh (mean direction) and Bingham (scatter matrix) tests of uniformity.

    ``rayleigh_statistic`` = n·d·‖ū‖², χ²(d) under uniformity [1]_;
    ``bingham_statistic`` = n·d(d+2)/2 · (tr T² − 1/d), T = (1/n) Σ uᵢuᵢᵀ,
    χ²((d−1)(d+2)/2) under uniformity [2]_. Both are asymptotic in n.
    """

    rayleigh_statistic: float
    rayleigh_df: int
    rayleigh_p: float
    mean_resultant_length: float
    bingham_statistic: float
    bingham_df: int
    bingham_p: float
    n: int
    dim: int


def uniformity_from_moments(mean: np.ndarray, cov_eigenvalues: np.ndarray, cov_eigenvectors: np.ndarray,
                            n: int) -> UniformityResult:
    """Both tests from the mean and the (ddof 1) covariance eigenbasis of n unit
    vectors, which the audit has computed already.

    T = (n−1)/n · C + ū ūᵀ, so tr T² = Σ λ'² + 2 ūᵀC'ū + ‖ū‖⁴ with C' = (n−1)/n · C.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> u = rng.standard_normal((5000, 8)); u /= np.linalg.norm(u, axis=1, keepdims=True)
    >>> values, vectors = np.linalg.eigh(np.cov(u.T))
    >>> res = uniformity_from_moments(u.mean(axis=0), values, vectors, 5000)
    >>> bool(res.rayleigh_p > 0.01 and res.bingham_p > 0.01)
    True
    """
    mean = np.asarray(mean, dtype=np.float64)
    d = mean.size
    scaled = np.asarray(cov_eigenvalues, dtype=np.float64) * (n - 1) / n
    along = np.asarray(cov_eigenvectors).T @ mean
    m2 = float(mean @ mean)
    trace_t2 = float(np.sum(scaled**2) + 2 * np.sum(scaled * along**2) + m2**2)
    rayleigh = n * d * m2
    bingham = n * d * (d + 2) / 2 * (trace_t2 - 1 / d)
    df_r, df_b = d, (d - 1) * (d + 2) // 2
    return UniformityResult(
        rayleigh_statistic=float(rayleigh),
        rayleigh_df=df_r,
        rayleigh_p=float(special.chdtrc(df_r, rayleigh)),
        mean_resultant_length=float(np.sqrt(m2)),
        bingham_statistic=float(bingham),
        bingham_df=df_b,
        bingham_p=float(special.chdtrc(df_b, bingham)) if df_b > 0 else float("nan"),
        n=int(n),
        dim=d,
    )
