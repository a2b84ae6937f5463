"""Tests of joint (multivariate) normality, on rows of an n × p matrix.

Each test standardises the data with its own sample mean and covariance, so it
is affine invariant. Singular covariances are handled by working in the span of
the eigenvalues above round-off (the effective rank), never by inverting a
singular matrix.

References
----------
.. [1] Mardia, K. V. (1970). Measures of multivariate skewness and kurtosis with
       applications. Biometrika 57, 519-530.
.. [2] Henze, N. & Zirkler, B. (1990). A class of invariant consistent tests for
       multivariate normality. Commun. Statist. Theory Meth. 19, 3595-3617.
.. [3] Székely, G. J. & Rizzo, M. L. (2005). A new test for multivariate
       normality. J. Multivariate Anal. 93, 58-80.
.. [4] Korkmaz, S., Goksuluk, D. & Zararsiz, G. (2014). MVN: An R package for
       assessing multivariate normality. The R Journal 6(2), 151-162.
.. [5] Gnanadesikan, R. & Kettenring, J. R. (1972). Robust estimates, residuals,
       and outlier detection with multiresponse data. Biometrics 28, 81-124.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special

from gaussaudit.stats._blocks import parallel_map


@dataclass(frozen=True)
class MardiaResult:
    """Mardia's multivariate skewness and kurtosis tests (as R's MVN computes them).

    ``skewness`` is b1,p, ``skewness_statistic`` n·b1,p/6 (with the small-sample
    factor when n < 20) against χ² with p(p+1)(p+2)/6 degrees of freedom;
    ``kurtosis`` is b2,p, ``kurtosis_statistic`` its z-score against
    N(p(p+2), 8p(p+2)/n), two-sided.
    """

    skewness: float
    skewness_statistic: float
    skewness_p: float
    kurtosis: float
    kurtosis_statistic: float
    kurtosis_p: float
    n: int
    dim: int


@dataclass(frozen=True)
class HenzeZirklerResult:
    """Henze-Zirkler statistic and its log-normal p-value [2]_."""

    statistic: float
    p_value: float
    n: int
    dim: int


@dataclass(frozen=True)
class EnergyResult:
    """Székely-Rizzo energy statistic, p-value by seeded parametric bootstrap [3]_."""

    statistic: float
    p_value: float
    replicates: int
    n: int
    dim: int


@dataclass(frozen=True)
class MahalanobisResult:
    """Squared Mahalanobis norms against their distribution under normality.

    With mean and covariance (ddof 1) estimated from the same n rows,
    u = n·D²/(n−1)² follows Beta(r/2, (n−r−1)/2) exactly [5]_, which tends to
    D² ~ χ²(r) for large n. ``statistic`` is the Kolmogorov-Smirnov distance of
    u from that Beta law. The D² of different rows share the estimated mean
    and covariance, which makes the KS table's p-value far too large (real
    size ≈ 0.2 % at a nominal 5 %), so ``p_value`` is a Monte Carlo p-value:
    (1 + #{replicates ≥ statistic}) / (R + 1) over ``replicates`` standard
    normal samples of the same shape (the D² are affine invariant, so this
    null is exact).
    """

    statistic: float
    p_value: float
    rank: int
    n: int
    replicates: int


def _standardise(x: np.ndarray, ddof: int) -> np.ndarray:
    """Centred rows rotated and scaled to identity covariance (normalised by n-ddof)
    on the subspace of eigenvalues above round-off."""
    n, p = x.shape
    centred = x - x.mean(axis=0)
    cov = centred.T @ centred / (n - ddof)
    values, vectors = np.linalg.eigh(cov)
    tol = max(n, p) * np.finfo(np.float64).eps * max(values.max(), 0.0)
    keep = values > tol
    if not keep.any():
        raise ValueError("the data have zero covariance: every row is the same")
    return centred @ (vectors[:, keep] / np.sqrt(values[keep]))


def _standardised_gram(x) -> tuple[np.ndarray, int, int]:
    """Gram matrix of the rows standardised with the covariance normalised by n
    (Mardia's and Henze-Zirkler's convention), with n and the rank p."""
    x = _as_rows(x)
    y = _standardise(x, ddof=0)
    return y @ y.T, x.shape[0], y.shape[1]


def _as_rows(x) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"expected a 2-D array (rows = samples), got shape {x.shape}")
    if x.shape[0] < 3:
        raise ValueError("need at least 3 rows")
    return x


def mardia(x, kurtosis_moments: str = "exact") -> MardiaResult:
    """Mardia's tests of multivariate skewness and kurtosis [1]_, as R's MVN [4]_.

    The covariance is normalised by n, and the skewness statistic gets the
    small-sample factor for n < 20, as in ``MVN::mvn(mvnTest = "mardia")``.
    The kurtosis z-score uses, by default, the exact mean p(p+2)(n−1)/(n+1) and
    variance of b2,p under normality (Mardia 1974); R's MVN uses the asymptotic
    p(p+2) and 8p(p+2)/n (``kurtosis_moments="asymptotic"`` reproduces it),
    whose bias makes Gaussian data fail too often once p is large (at p = 64,
    n = 2000 the z-score is off by about −1).

    Examples
    --------
    >>> import numpy as np
    >>> res = mardia(np.random.default_rng(0).standard_normal((500, 3)))
    >>> bool(res.skewness_p > 0.01 and res.kurtosis_p > 0.01)
    True
    """
    gram, n, p = _standardised_gram(x)
    # einsum, not gram**3: numpy's float power is ~100x slower than products
    b1 = float(np.einsum("ij,ij,ij->", gram, gram, gram) / n**2)
    b2 = float(np.sum(np.diag(gram) ** 2) / n)
    df = p * (p + 1) * (p + 2) / 6
    if n < 20:
        k = ((p + 1) * (n + 1) * (n + 3)) / (n * ((n + 1) * (p + 1) - 6))
        skew_stat = n * k * b1 / 6
    else:
        skew_stat = n * b1 / 6
    if kurtosis_moments == "exact":
        mean_b2 = p * (p + 2) * (n - 1) / (n + 1)
        var_b2 = 8 * p * (p + 2) * (n - 3) * (n - p - 1) * (n - p + 1) / ((n + 1) ** 2 * (n + 3) * (n + 5))
    elif kurtosis_moments == "asymptotic":
        mean_b2, var_b2 = p * (p + 2), 8 * p * (p + 2) / n
    else:
        raise ValueError(f"kurtosis_moments must be 'exact' or 'asymptotic'; got {kurtosis_moments!r}")
    kurt_stat = (b2 - mean_b2) / np.sqrt(var_b2)
    return MardiaResult(
        skewness=b1,
        skewness_statistic=float(skew_stat),
        skewness_p=float(special.chdtrc(df, skew_stat)),  # χ² survival function
        kurtosis=b2,
        kurtosis_statistic=float(kurt_stat),
        kurtosis_p=float(special.erfc(abs(kurt_stat) / np.sqrt(2))),  # two-sided normal
        n=n,
        dim=p,
    )


def henze_zirkler(x) -> HenzeZirklerResult:
    """Henze-Zirkler test [2]_; statistic and p-value as ``pingouin.multivariate_normality``
    and R's ``MVN::mvn(mvnTest = "hz")`` compute them (covariance normalised by n,
    smoothing β = ((2p+1)/4)^(1/(p+4)) n^(1/(p+4)) / √2, log-normal p-value).

    Examples
    --------
    >>> import numpy as np
    >>> res = henze_zirkler(np.random.default_rng(0).standard_normal((300, 4)))
    >>> bool(res.p_value > 0.01)
    True
    """
    gram, n, p = _standardised_gram(x)
    dj = np.diag(gram).copy()
    djk = dj[:, None] + dj[None, :] - 2 * gram
    b = 1 / np.sqrt(2) * ((2 * p + 1) / 4) ** (1 / (p + 4)) * n ** (1 / (p + 4))
    hz = n * (
        np.sum(np.exp(-(b**2) / 2 * djk)) / n**2
        - 2 * (1 + b**2) ** (-p / 2) * np.sum(np.exp(-(b**2) / (2 * (1 + b**2)) * dj)) / n
        + (1 + 2 * b**2) ** (-p / 2)
    )
    wb = (1 + b**2) * (1 + 3 * b**2)
    a = 1 + 2 * b**2
    mu = 1 - a ** (-p / 2) * (1 + p * b**2 / a + p * (p + 2) * b**4 / (2 * a**2))
    si2 = (
        2 * (1 + 4 * b**2) ** (-p / 2)
        + 2 * a ** (-p) * (1 + 2 * p * b**4 / a**2 + 3 * p * (p + 2) * b**8 / (4 * a**4))
        - 4 * wb ** (-p / 2) * (1 + 3 * p * b**4 / (2 * wb) + p * (p + 2) * b**8 / (2 * wb**2))
    )
    pmu = np.log(np.sqrt(mu**4 / (si2 + mu**2)))
    psi = np.sqrt(np.log1p(si2 / mu**2))
    # log-normal survival function with log-mean pmu and log-sd psi
    p_value = special.ndtr(-(np.log(hz) - pmu) / psi) if hz > 0 else 1.0
    return HenzeZirklerResult(statistic=float(hz), p_value=float(p_value), n=n, dim=p)


# ----------------------------------------------------------------------------
# energy test


def expected_distance_to_normal(sq_norms, dim: int) -> np.ndarray:
    """E‖a − Z‖ for Z ~ N(0, I_dim), given ‖a‖², vectorised.

    ‖a − Z‖² is noncentral χ²(dim, ‖a‖²): a Poisson(‖a‖²/2) mixture of
    χ²(dim + 2k). So E‖a − Z‖ = Σ_k Pois(k; ‖a‖²/2) · E[χ_(dim+2k)], summed over
    the Poisson mass within 12 standard deviations of its mean (all terms are
    positive, so there is no cancellation; the omitted mass is < 1e-30).

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.special import gamma
    >>> e = expected_distance_to_normal(np.array([0.0]), 3)   # E‖Z‖ for dim 3
    >>> bool(np.isclose(e[0], np.sqrt(2) * gamma(2) / gamma(1.5)))
    True
    """
    lam = 0.5 * np.asarray(sq_norms, dtype=np.float64)
    spread = 12 * np.sqrt(lam) + 12
    lo = np.floor(np.maximum(lam - spread, 0)).astype(np.int64)
    hi = np.ceil(lam + spread + 8).astype(np.int64)
    width = int((hi - lo).max()) + 1 if lam.size else 1
    k_max = int(lo.max()) + width if lam.size else width
    ks = np.arange(k_max + 1)
    log_chi_mean = 0.5 * np.log(2) + special.gammaln((dim + 2 * ks + 1) / 2) - special.gammaln((dim + 2 * ks) / 2)
    log_k_factorial = special.gammaln(ks + 1)
    grid = lo[:, None] + np.arange(width)[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        log_lam = np.log(lam)
        # Poisson log-pmf; at λ = 0 only k = 0 has mass (0·log 0 taken as 0).
        log_pmf = np.where(grid == 0, 0.0, grid * log_lam[:, None]) - lam[:, None] - log_k_factorial[grid]
    return np.sum(np.exp(log_pmf + log_chi_mean[grid]), axis=1)


def _mean_pairwise_distance(y: np.ndarray, block: int = 128) -> float:
    """(1/n²) Σ_ij ‖y_i − y_j‖, over the upper triangle in cache-sized row blocks
    (4× faster than the full n × n distance matrix, and O(block · n) memory)."""
    n = len(y)
    sq = np.einsum("ij,ij->i", y, y)
    total = 0.0
    for start in range(0, n, block):
        stop = min(n, start + block)
        d2 = y[start:stop] @ y[start:].T
        d2 *= -2
        d2 += sq[start:stop, None]
        d2 += sq[None, start:]
        np.maximum(d2, 0, out=d2)
        np.sqrt(d2, out=d2)
        # the square diagonal block holds each pair twice already; the rest once
        total += d2[:, : stop - start].sum() + 2 * d2[:, stop - start :].sum()
    return total / n**2


def _energy_statistic(y: np.ndarray) -> float:
    n, p = y.shape
    sq = np.einsum("ij,ij->i", y, y)
    mean_to_normal = expected_distance_to_normal(sq, p).mean()
    normal_pair = 2 * np.exp(special.gammaln((p + 1) / 2) - special.gammaln(p / 2))
    return float(n * (2 * mean_to_normal - normal_pair - _mean_pairwise_distance(y)))


def joint_monte_carlo(x, replicates: int = 99, seed=0, *,
                      threads: int | None = None) -> tuple[EnergyResult, MahalanobisResult]:
    """The energy test [3]_ and the Mahalanobis test [5]_ of the rows of ``x``,
    their p-values from one set of Monte Carlo replicates.

    Rows are standardised with the sample mean and covariance (ddof 1), as in R's
    ``energy::mvnorm.test``. Each p-value is (1 + #{T* ≥ T}) / (R + 1) over R
    standard-normal samples of the same shape, each standardised the same way
    (both statistics are affine invariant, so this null is exact): a test of
    level exactly α when (R + 1)·α is a whole number (R = 19, 39, 99, …).
    Replicate b uses its own stream spawned from ``seed`` (an int or a
    ``numpy.random.SeedSequence``), so the results do not depend on ``threads``.

    Examples
    --------
    >>> import numpy as np
    >>> energy, mahal = joint_monte_carlo(np.random.default_rng(0).standard_normal((200, 3)), replicates=39)
    >>> bool(energy.p_value > 0.01), mahal.replicates
    (True, 39)
    """
    x = _as_rows(x)
    y = _standardise(x, ddof=1)
    n, p = y.shape
    observed = np.array([_energy_statistic(y), _mahalanobis_distance(np.einsum("ij,ij->i", y, y), p)])
    root = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)

    def replicate(stream) -> tuple[float, float]:
        z = _standardise(np.random.default_rng(stream).standard_normal((n, p)), ddof=1)
        return _energy_statistic(z), _mahalanobis_distance(np.einsum("ij,ij->i", z, z), p)

    null = np.array(parallel_map(replicate, root.spawn(replicates), threads)).reshape(replicates, 2)
    p_values = (1 + np.count_nonzero(null >= observed, axis=0)) / (replicates + 1)
    return (EnergyResult(statistic=float(observed[0]), p_value=float(p_values[0]), replicates=replicates, n=n, dim=p),
            MahalanobisResult(statistic=float(observed[1]), p_value=float(p_values[1]), rank=p, n=n,
                              replicates=replicates))


def energy_test(x, replicates: int = 99, seed=0, *, threads: int | None = None) -> EnergyResult:
    """Székely-Rizzo energy test of multivariate normality [3]_, as
    :func:`joint_monte_carlo` computes it.

    Examples
    --------
    >>> import numpy as np
    >>> res = energy_test(np.random.default_rng(0).standard_normal((200, 3)), replicates=39)
    >>> bool(res.p_value > 0.01), res.replicates
    (True, 39)
    """
    return joint_monte_carlo(x, replicates, seed, threads=threads)[0]


def mahalanobis_test(x, replicates: int = 99, seed=0, *, threads: int | None = None) -> MahalanobisResult:
    """Squared Mahalanobis norms of the rows against their law under normality [5]_,
    with a Monte Carlo p-value (see :class:`MahalanobisResult`), as
    :func:`joint_monte_carlo` computes it.

    Examples
    --------
    >>> import numpy as np
    >>> res = mahalanobis_test(np.random.default_rng(0).standard_normal((2000, 5)), replicates=39)
    >>> res.rank, bool(res.p_value > 0.01)
    (5, True)
    """
    return joint_monte_carlo(x, replicates, seed, threads=threads)[1]


def _mahalanobis_distance(d2, rank: int) -> float:
    """KS distance of n·D²/(n−1)² from Beta(r/2, (n−r−1)/2)."""
    d2 = np.asarray(d2, dtype=np.float64)
    n, r = d2.size, int(rank)
    if n - r - 1 <= 0:
        raise ValueError(f"need more rows than the rank + 1 ({r + 1}); got {n}")
    u = np.sort(n * d2 / (n - 1) ** 2)
    cdf = special.betainc(r / 2, (n - r - 1) / 2, u)
    ranks = np.arange(1, n + 1)
    return float(max(np.max(ranks / n - cdf), np.max(cdf - (ranks - 1) / n)))
