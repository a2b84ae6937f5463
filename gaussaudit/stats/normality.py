"""Per-feature normality tests, vectorised over features.

Every function takes an array of samples and tests each feature (column, for the
default ``axis=0``) against a normal distribution with mean and variance estimated
from the data. Features are processed in blocks on a thread pool; no Python loop
runs over features.

References
----------
.. [1] Stephens, M. A. (1974). EDF statistics for goodness of fit and some
       comparisons. JASA 69, 730-737.
.. [2] D'Agostino, R. B. & Stephens, M. A. (1986). *Goodness-of-Fit Techniques*,
       Marcel Dekker. Table 4.9 (critical values and the small-sample factor
       1 + 0.75/n + 2.25/n^2) and the p-value approximation used by statsmodels.
.. [3] D'Agostino, R. B. (1971). An omnibus test of normality for moderate and
       large sample size. Biometrika 58, 341-348.
.. [4] D'Agostino, R. B. & Pearson, E. S. (1973). Tests for departure from
       normality. Biometrika 60, 613-622.
.. [5] Anscombe, F. J. & Glynn, W. J. (1983). Distribution of the kurtosis
       statistic b2 for normal samples. Biometrika 70, 227-234.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special

from gaussaudit.stats._blocks import as_feature_rows, map_feature_blocks

#: 5 % critical value of the small-sample-adjusted A² for the normal case
#: with estimated mean and variance (D'Agostino & Stephens 1986, Table 4.9).
AD_CRITICAL_5PCT = 0.752

#: Smallest sample the D'Agostino-Pearson kurtosis approximation is valid for.
DP_MIN_SAMPLES = 20

_SQRT1_2 = np.sqrt(0.5)
_FAR_TAIL = 30.0
# A feature whose variance is below this share of its squared mean is constant up
# to rounding; scipy's skew/kurtosis use the same cut-off to return NaN.
_RESOLUTION = float(np.finfo(np.float64).resolution)  # a Python float: also meets torch tensors


@dataclass(frozen=True)
class AndersonDarlingResult:
    """Anderson-Darling test of normality, one entry per feature.

    Attributes
    ----------
    statistic : ndarray
        A², equal to ``scipy.stats.anderson(x, 'norm').statistic``.
    adjusted_statistic : ndarray
        A²(1 + 0.75/n + 2.25/n²), the statistic compared with 0.752 at 5 % [2]_.
    pvalue : ndarray
        Approximate p-value of D'Agostino & Stephens (1986), as
        ``statsmodels.stats.diagnostic.normal_ad`` computes it; 0 where the
        adjusted statistic exceeds 13 (p < 5e-31, where the approximation ends).
    n : int
        Samples per feature.
    """

    statistic: np.ndarray
    adjusted_statistic: np.ndarray
    pvalue: np.ndarray
    n: int

    def passes(self, critical_value: float = AD_CRITICAL_5PCT) -> np.ndarray:
        """Boolean mask: features whose adjusted A² is below ``critical_value``."""
        return self.adjusted_statistic < critical_value


@dataclass(frozen=True)
class DAgostinoPearsonResult:
    """D'Agostino-Pearson K² omnibus test of normality, one entry per feature.

    Attributes
    ----------
    statistic : ndarray
        K² = Z(skewness)² + Z(kurtosis)², equal to ``scipy.stats.normaltest``.
    pvalue : ndarray
        Survival function of χ²(2) at K².
    z_skewness, z_kurtosis : ndarray
        The two normalised components (``scipy.stats.skewtest`` and
        ``kurtosistest`` statistics).
    skewness : ndarray
        Sample skewness g1 = m3 / m2^1.5 (biased, ``scipy.stats.skew``).
    excess_kurtosis : ndarray
        g2 = m4 / m2² - 3 (biased, ``scipy.stats.kurtosis``).
    n : int
        Samples per feature.
    """

    statistic: np.ndarray
    pvalue: np.ndarray
    z_skewness: np.ndarray
    z_kurtosis: np.ndarray
    skewness: np.ndarray
    excess_kurtosis: np.ndarray
    n: int


@dataclass(frozen=True)
class FeatureNormality:
    """Both tests on every feature, from one sort of the data.

    ``constant`` marks zero-variance features: their entries in ``ad`` and ``dp``
    are NaN and summaries must leave them out.
    """

    ad: AndersonDarlingResult
    dp: DAgostinoPearsonResult
    mean: np.ndarray
    std: np.ndarray
    constant: np.ndarray
    n: int


# ----------------------------------------------------------------------------
# kernels: a C-contiguous (b, n) float32 or float64 block in, length-b float64
# arrays out; every sum runs in float64


def _row_moments(row: np.ndarray, centred: np.ndarray, squared: np.ndarray) -> tuple[float, float, float, float]:
    """Mean and central moments m2, m3, m4 of one row; leaves ``row - mean`` in
    ``centred`` (float64 buffers of the row's length, reused across rows)."""
    n = row.shape[0]
    mean = row.mean(dtype=np.float64)  # a float64 scalar: the subtraction below runs in float64
    np.subtract(row, mean, out=centred)
    np.multiply(centred, centred, out=squared)
    return float(mean), float(squared.sum()) / n, float(squared @ centred) / n, float(squared @ squared) / n


def _moments(block: np.ndarray) -> dict[str, np.ndarray]:
    b, n = block.shape
    stats = np.empty((4, b))
    centred, squared = np.empty(n), np.empty(n)
    for r in range(b):
        stats[:, r] = _row_moments(block[r], centred, squared)
    mean, m2, m3, m4 = stats
    return {"mean": mean, "m2": m2, "m3": m3, "m4": m4, "constant": is_constant(mean, m2)}


def is_constant(mean, m2):
    """Zero variance up to rounding: ``m2`` (population variance) at most the
    squared resolution of ``mean`` (scipy's skew/kurtosis cut-off for NaN)."""
    return (m2 <= (_RESOLUTION * mean) ** 2) | (m2 == 0)


def _ad_row(row: np.ndarray, centred: np.ndarray, log_small: np.ndarray, mean: float, std: float,
            weights: np.ndarray) -> float:
    """A² of one sorted float64 row against N(mean, std²); ``centred`` holds
    ``row - mean`` on entry and is used as scratch, like ``log_small``.

    With c_i = (2i-1)/n and c_i + c_{n+1-i} = 2, Stephens' sum
    Σ c_i [log Φ(w_i) + log Φ(-w_{n+1-i})] equals
    Σ 2 log Φ(-w_i) + c_i [log Φ(w_i) - log Φ(-w_i)], so one tail probability
    e = Φ(-|w|) per value gives both logs: log e and log1p(-e). That is one
    normal CDF per value instead of scipy's two log_ndtr calls. Because the row
    is sorted, w changes sign once, at k: the sums split there instead of
    selecting value by value.
    """
    n = row.shape[0]
    inv_std = 1.0 / std
    k = int(np.searchsorted(row, mean, side="left"))  # w < 0 before k, w >= 0 from k
    w = centred
    w *= inv_std
    w[k:] *= -1.0  # now -|w|, V-shaped: smallest at either end
    special.ndtr(w, out=log_small)  # Φ(-|w|), to full relative precision in the tail
    far_out = min(w[0], w[-1]) < -_FAR_TAIL
    if far_out:
        # Beyond |w| ≈ 37 the tail underflows to 0 (a single far outlier in a
        # large sample gets there); log_ndtr's asymptotic series stays exact,
        # so it takes over for the few values past |w| = 30.
        far = np.flatnonzero(w < -_FAR_TAIL)
        far_logs = special.log_ndtr(w[far])
    log_big = w  # free once the tail is known
    np.negative(log_small, out=log_big)
    np.log1p(log_big, out=log_big)  # log Φ(|w|)
    with np.errstate(divide="ignore"):
        np.log(log_small, out=log_small)  # log Φ(-|w|)
    if far_out:
        log_small[far] = far_logs
    # log Φ(-w_i) is log Φ(|w|) where w < 0 and log Φ(-|w|) where w >= 0.
    total = 2.0 * (log_big[:k].sum() + log_small[k:].sum())
    log_big -= log_small  # |log Φ(w) - log Φ(-w)|, negative-signed before k
    total += log_big[k:] @ weights[k:] - log_big[:k] @ weights[:k]
    return -n - total


def _ad_pvalue(adjusted: np.ndarray) -> np.ndarray:
    """D'Agostino & Stephens (1986) p-value approximation for adjusted A²."""
    a = np.asarray(adjusted, dtype=np.float64)
    p = np.full(a.shape, np.nan)
    with np.errstate(over="ignore", invalid="ignore"):
        r1 = (a >= 0) & (a < 0.2)
        r2 = (a >= 0.2) & (a < 0.34)
        r3 = (a >= 0.34) & (a < 0.6)
        r4 = (a >= 0.6) & (a <= 13)
        p[r1] = 1 - np.exp(-13.436 + 101.14 * a[r1] - 223.73 * a[r1] ** 2)
        p[r2] = 1 - np.exp(-8.318 + 42.796 * a[r2] - 59.938 * a[r2] ** 2)
        p[r3] = np.exp(0.9177 - 4.279 * a[r3] - 1.38 * a[r3] ** 2)
        p[r4] = np.exp(1.2937 - 5.709 * a[r4] + 0.0186 * a[r4] ** 2)
        p[a > 13] = 0.0
    return p


def _skewtest_z(g1: np.ndarray, n: int) -> np.ndarray:
    """D'Agostino (1971) transform of sample skewness to ~N(0, 1)."""
    y = g1 * np.sqrt(((n + 1) * (n + 3)) / (6.0 * (n - 2)))
    beta2 = 3.0 * (n**2 + 27 * n - 70) * (n + 1) * (n + 3) / ((n - 2.0) * (n + 5) * (n + 7) * (n + 9))
    w2 = -1 + np.sqrt(2 * (beta2 - 1))
    delta = 1 / np.sqrt(0.5 * np.log(w2))
    alpha = np.sqrt(2.0 / (w2 - 1))
    # delta * log(y/α + sqrt((y/α)² + 1)) written as asinh: no cancellation for
    # large negative skewness, and Z = 0 at zero skewness.
    return delta * np.arcsinh(y / alpha)


def _kurtosistest_z(b2: np.ndarray, n: int) -> np.ndarray:
    """Anscombe & Glynn (1983) transform of sample kurtosis b2 to ~N(0, 1)."""
    expected = 3.0 * (n - 1) / (n + 1)
    var_b2 = 24.0 * n * (n - 2) * (n - 3) / ((n + 1) * (n + 1.0) * (n + 3) * (n + 5))
    x = (b2 - expected) / np.sqrt(var_b2)
    sqrt_beta1 = (
        6.0 * (n * n - 5 * n + 2) / ((n + 7) * (n + 9)) * np.sqrt((6.0 * (n + 3) * (n + 5)) / (n * (n - 2) * (n - 3)))
    )
    a = 6.0 + 8.0 / sqrt_beta1 * (2.0 / sqrt_beta1 + np.sqrt(1 + 4.0 / sqrt_beta1**2))
    term1 = 1 - 2 / (9.0 * a)
    denom = 1 + x * np.sqrt(2 / (a - 4.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        term2 = np.sign(denom) * np.where(denom == 0.0, np.nan, np.cbrt((1 - 2.0 / a) / np.abs(denom)))
    return (term1 - term2) / np.sqrt(2 / (9.0 * a))


def _feature_kernel(block: np.ndarray) -> dict[str, np.ndarray]:
    """Moments and A² of each row, sorting the block once.

    The sort runs in the block's own dtype (float32 sorts twice as fast, and
    sorting loses nothing); each sorted row is then widened to float64 in a
    reused buffer, and its centred values serve both the moments and A².
    """
    b, n = block.shape
    y = np.sort(block, axis=1)
    weights = (2.0 * np.arange(1, n + 1) - 1.0) / n
    row64, centred, scratch = np.empty(n), np.empty(n), np.empty(n)
    stats = np.empty((4, b))
    a2 = np.full(b, np.nan)  # NaN for constant features
    ddof1 = n / (n - 1.0)  # A² standardises with the ddof=1 std, as scipy.stats.anderson
    for r in range(b):
        if y.dtype == np.float64:
            row = y[r]
        else:
            np.copyto(row64, y[r])
            row = row64
        mean, m2, m3, m4 = stats[:, r] = _row_moments(row, centred, scratch)
        if not is_constant(mean, m2):
            a2[r] = _ad_row(row, centred, scratch, mean, np.sqrt(m2 * ddof1), weights)
    mean, m2, m3, m4 = stats
    return {"mean": mean, "m2": m2, "m3": m3, "m4": m4, "constant": is_constant(mean, m2),
            "std": np.sqrt(m2 * ddof1), "a2": a2}


# ----------------------------------------------------------------------------
# assembling results


def _check_n(n: int, minimum: int, test: str) -> None:
    if n < minimum:
        from gaussaudit.errors import GaussAuditError

        raise GaussAuditError(f"{test} needs at least {minimum} samples per feature; got {n}")


def _ad_result(a2: np.ndarray, n: int) -> AndersonDarlingResult:
    adjusted = a2 * (1 + 0.75 / n + 2.25 / n**2)
    return AndersonDarlingResult(statistic=a2, adjusted_statistic=adjusted, pvalue=_ad_pvalue(adjusted), n=n)


def _dp_result(m2: np.ndarray, m3: np.ndarray, m4: np.ndarray, constant: np.ndarray, n: int) -> DAgostinoPearsonResult:
    with np.errstate(divide="ignore", invalid="ignore"):
        g1 = np.where(constant, np.nan, m3 / m2**1.5)
        b2 = np.where(constant, np.nan, m4 / m2**2)
    z_s = _skewtest_z(g1, n)
    z_k = _kurtosistest_z(b2, n)
    k2 = z_s * z_s + z_k * z_k
    return DAgostinoPearsonResult(
        statistic=k2,
        pvalue=np.exp(-0.5 * k2),  # χ²(2) survival function
        z_skewness=z_s,
        z_kurtosis=z_k,
        skewness=g1,
        excess_kurtosis=b2 - 3.0,
        n=n,
    )


def anderson_darling(x, axis: int = 0, *, threads: int | None = None) -> AndersonDarlingResult:
    """Anderson-Darling A² test of normality for every feature at once.

    Mean and standard deviation (ddof=1) are estimated per feature, as in
    ``scipy.stats.anderson(x, 'norm')`` [1]_. Constant features give NaN.

    Parameters
    ----------
    x : array_like
        Samples; ``axis`` runs over samples, every other axis over features.
    axis : int, default 0
        Axis along which samples lie.
    threads : int, optional
        Threads over feature blocks; default every available core.

    Returns
    -------
    AndersonDarlingResult

    Examples
    --------
    >>> import numpy as np
    >>> from gaussaudit.stats import anderson_darling
    >>> x = np.random.default_rng(0).standard_normal((500, 3))
    >>> res = anderson_darling(x)
    >>> res.statistic.shape, bool(res.passes().all())
    ((3,), True)
    """
    rows = as_feature_rows(x, axis)
    n = rows.shape[1]
    _check_n(n, 8, "The Anderson-Darling test")
    out = map_feature_blocks(_feature_kernel, rows, threads)
    shape = _feature_shape(x, axis)
    res = _ad_result(out["a2"], n)
    return AndersonDarlingResult(*(np.reshape(v, shape) for v in (res.statistic, res.adjusted_statistic, res.pvalue)), n=n)


def dagostino_pearson(x, axis: int = 0, *, threads: int | None = None) -> DAgostinoPearsonResult:
    """D'Agostino-Pearson K² omnibus test of normality for every feature at once.

    Combines the skewness test of D'Agostino (1971) [3]_ and the kurtosis test of
    Anscombe & Glynn (1983) [5]_ as D'Agostino & Pearson (1973) [4]_ proposed;
    equal to ``scipy.stats.normaltest(x, axis)``. Constant features give NaN.
    Needs at least 20 samples, where the kurtosis approximation holds.

    Examples
    --------
    >>> import numpy as np
    >>> from gaussaudit.stats import dagostino_pearson
    >>> x = np.random.default_rng(0).laplace(size=(2000, 4))
    >>> bool((dagostino_pearson(x).pvalue < 0.05).all())
    True
    """
    rows = as_feature_rows(x, axis)
    n = rows.shape[1]
    _check_n(n, DP_MIN_SAMPLES, "The D'Agostino-Pearson test")
    out = map_feature_blocks(_moments, rows, threads)
    res = _dp_result(out["m2"], out["m3"], out["m4"], out["constant"], n)
    shape = _feature_shape(x, axis)
    return DAgostinoPearsonResult(
        *(np.reshape(getattr(res, f), shape)
          for f in ("statistic", "pvalue", "z_skewness", "z_kurtosis", "skewness", "excess_kurtosis")),
        n=n,
    )


def _factor(scale, dtype: np.dtype) -> np.ndarray:
    """``scale`` in the rows' dtype, or in float64 where that dtype cannot hold
    it (a norm beyond float32's range): the product is then taken in float64."""
    wide = np.asarray(scale, dtype=np.float64)
    with np.errstate(over="ignore"):
        narrow = wide.astype(dtype)
    return narrow if np.array_equal(np.isfinite(narrow), np.isfinite(wide)) else wide


def feature_normality(x, axis: int = 0, *, threads: int | None = None, device: str = "cpu",
                      scale: np.ndarray | None = None) -> FeatureNormality:
    """Anderson-Darling and D'Agostino-Pearson on every feature, sorting once.

    This is what ``audit`` runs. ``x`` is 2-D; pass ``axis=1`` for data stored
    feature-major (one feature per row), which avoids a transposed copy.
    ``device`` other than ``"cpu"`` (a torch device such as ``"cuda"``, checked
    with :func:`gaussaudit.stats.gpu.resolve_device`) runs the same statistics
    with torch (:func:`gaussaudit.stats.gpu.feature_normality_torch`).
    ``scale`` (one factor per sample) tests ``x`` multiplied sample by sample,
    a block of features at a time, without a scaled copy of ``x``: the raw rows
    from normalised ones and their norms, or the reverse.

    Examples
    --------
    >>> import numpy as np
    >>> from gaussaudit.stats import feature_normality
    >>> x = np.random.default_rng(0).standard_normal((1000, 5))
    >>> x[:, 0] = 0.0  # a constant feature: flagged, NaN in the tests
    >>> res = feature_normality(x)
    >>> res.constant.tolist()
    [True, False, False, False, False]
    >>> bool(np.isnan(res.ad.statistic[0])), res.ad.statistic.shape
    (True, (5,))
    """
    rows = as_feature_rows(x, axis)
    n = rows.shape[1]
    _check_n(n, DP_MIN_SAMPLES, "The normality tests")
    factor = None if scale is None else _factor(scale, rows.dtype)
    if device != "cpu":
        from gaussaudit.stats.gpu import feature_normality_torch

        return feature_normality_torch(rows if factor is None else rows * factor, device)
    kernel = _feature_kernel if factor is None else (lambda block: _feature_kernel(block * factor))
    return feature_normality_from_kernel(map_feature_blocks(kernel, rows, threads), n)


def feature_normality_from_kernel(out: dict[str, np.ndarray], n: int) -> FeatureNormality:
    """Assemble the result from a kernel's per-feature moments and A² (the numpy
    kernel's or the torch backend's): p-values and K² are computed here, once."""
    return FeatureNormality(
        ad=_ad_result(out["a2"], n),
        dp=_dp_result(out["m2"], out["m3"], out["m4"], out["constant"], n),
        mean=out["mean"],
        std=out["std"],
        constant=out["constant"],
        n=n,
    )


def _feature_shape(x, axis: int) -> tuple[int, ...]:
    shape = list(np.shape(x))
    del shape[axis]
    return tuple(shape)
