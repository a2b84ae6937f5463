"""Has the distribution moved? Two sets of rows of one model's embeddings (a
reference and a current set, the same columns), compared through the Gaussians
fitted to them and by a distribution-free permutation test.

The closed forms (Fréchet distance, KL divergence, Hotelling's T²) are exact for
Gaussian data and summaries otherwise; the permutation test of
:func:`drift_test` needs no Gaussian assumption: under "every row comes from
one distribution" the pooled rows are exchangeable, so the observed statistic is
a uniform draw among its re-splittings and the Monte Carlo p-value
(1 + #{null ≥ observed}) / (1 + permutations) has level at most α, exactly α
when (1 + permutations)·α is a whole number [7]_, [8]_.

References
----------
.. [1] Dowson, D. C. & Landau, B. V. (1982). The Fréchet distance between
       multivariate normal distributions. J. Multivariate Anal. 12, 450-455.
.. [2] Gelbrich, M. (1990). On a formula for the L2 Wasserstein metric between
       measures on Euclidean and Hilbert spaces. Math. Nachr. 147, 185-203.
.. [3] Heusel, M., Ramsauer, H., Unterthiner, T., Nessler, B. & Hochreiter, S.
       (2017). GANs trained by a two time-scale update rule converge to a local
       Nash equilibrium. NeurIPS 30 (the FID: this distance between Inception features).
.. [4] Kullback, S. (1959). *Information Theory and Statistics*, Wiley, ch. 9
       (the divergence between two multivariate normals).
.. [5] Anderson, T. W. (2003). *An Introduction to Multivariate Statistical
       Analysis*, 3rd ed., Wiley, §5.3.4 (two-sample T², its F distribution).
.. [6] Roy, O. & Vetterli, M. (2007). The effective rank: a measure of effective
       dimensionality. Proc. EUSIPCO 2007, 606-610.
.. [7] Lehmann, E. L. & Romano, J. P. (2005). *Testing Statistical Hypotheses*,
       3rd ed., Springer, §15.2 (permutation and randomization tests).
.. [8] Phipson, B. & Smyth, G. K. (2010). Permutation p-values should never be
       zero. Stat. Appl. Genet. Mol. Biol. 9(1), art. 39.
.. [9] Gao, P., Trautmann, E., Yu, B., Santhanam, G., Ryu, S., Shenoy, K. &
       Ganguli, S. (2017). A theory of multineuronal dimensionality, dynamics and
       measurement. bioRxiv 214262 (the participation ratio as a dimension).
.. [10] Garrido, Q., Balestriero, R., Najman, L. & LeCun, Y. (2023). RankMe:
       assessing the downstream performance of pretrained self-supervised
       representations by their rank. ICML 2023, PMLR 202, 10929-10974.
"""
from __future__ import annotations

import operator
from dataclasses import dataclass

import numpy as np
from scipy import special

from gaussaudit.errors import GaussAuditError, option_name, option_set
from gaussaudit.stats._rows import checked_rows

_EPS = np.finfo(np.float64).eps


# ----------------------------------------------------------------------------
# fitted Gaussians


# eq=False: the fields are arrays, so the generated __eq__ (and the __hash__ frozen
# would add) would fail on them; two fits are the same object or different ones.
@dataclass(frozen=True, eq=False)
class GaussianFit:
    """The Gaussian fitted to n rows: their mean (d,) and covariance (d, d), ddof 1.

    Built by :func:`fit_gaussian`, or directly from known parameters (``n`` is then
    only a label). The arrays are stored as float64.
    """

    mean: np.ndarray
    cov: np.ndarray
    n: int

    def __post_init__(self):
        mean = np.asarray(self.mean, dtype=np.float64)
        cov = np.asarray(self.cov, dtype=np.float64)
        if mean.ndim != 1 or cov.shape != (mean.size, mean.size):
            raise GaussAuditError(f"a Gaussian fit needs a mean of shape (d,) and a covariance of shape (d, d); "
                                  f"got {mean.shape} and {cov.shape}.")
        if not (np.isfinite(mean).all() and np.isfinite(cov).all()):
            raise GaussAuditError("a Gaussian fit needs a finite mean and covariance; got NaN or inf.")
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "cov", cov)
        object.__setattr__(self, "n", int(self.n))

    @property
    def dim(self) -> int:
        return self.mean.size


def _as_rows(x, name: str) -> np.ndarray:
    """``x`` as a finite float64 (n, d) array with n >= 2, or a GaussAuditError naming ``name``."""
    return checked_rows(x, name)


def _same_dim(a_dim: int, b_dim: int, a_name: str, b_name: str) -> None:
    if a_dim != b_dim:
        raise GaussAuditError(f"{a_name} has {a_dim} dimension(s) but {b_name} has {b_dim}; both must be embeddings "
                              f"of the same dimension (the same model and layer).")


def fit_gaussian(x: np.ndarray) -> GaussianFit:
    """Mean and covariance (ddof 1) of the rows of ``x`` (n × d, computed in float64).

    Raises
    ------
    GaussAuditError
        When ``x`` is not 2-D, has fewer than 2 rows, or holds NaN or inf.

    Examples
    --------
    >>> import numpy as np
    >>> fit = fit_gaussian(np.array([[0.0, 1.0], [2.0, 3.0], [4.0, 8.0]]))
    >>> fit.mean.tolist(), fit.cov.tolist(), fit.n
    ([2.0, 4.0], [[4.0, 7.0], [7.0, 13.0]], 3)
    """
    x = _as_rows(x, "x")
    mean = x.mean(axis=0)
    centred = x - mean
    return GaussianFit(mean=mean, cov=_symmetric(centred.T @ centred) / (len(x) - 1), n=len(x))


def _symmetric(m: np.ndarray) -> np.ndarray:
    # x.T @ x is symmetric only up to round-off; eigh reads one triangle, so make both agree
    return (m + m.T) / 2


# ----------------------------------------------------------------------------
# Fréchet (2-Wasserstein) distance


def _frechet_from_eigh(mean_a, cov_a, values_a, vectors_a, mean_b, cov_b) -> float:
    """‖m_a − m_b‖² + tr Σa + tr Σb − 2 tr (Σa^½ Σb Σa^½)^½ given Σa = V diag(w) Vᵀ."""
    # Eigenvalues at round-off level count as 0: the square root would turn an error of
    # eps·λmax into one of √(eps·λmax) per eigenvalue, and a singular Σa (n <= d) has many.
    keep = values_a > values_a.size * _EPS * max(float(values_a.max()), 0.0)
    root = np.sqrt(values_a[keep])
    basis = vectors_a[:, keep]
    # Σa^½ Σb Σa^½ = V (√w (Vᵀ Σb V) √w) Vᵀ: the bracket has the same nonzero eigenvalues,
    # without forming Σa^½, and only in the span of Σa
    inner = basis.T @ cov_b @ basis
    inner *= root[:, None]
    inner *= root[None, :]
    mu = np.linalg.eigvalsh(_symmetric(inner)) if root.size else np.zeros(0)
    mu = mu[mu > mu.size * _EPS * max(float(mu.max(initial=0.0)), 0.0)]
    trace_root = float(np.sqrt(mu).sum())
    diff = mean_a - mean_b
    value = float(diff @ diff) + float(np.trace(cov_a)) + float(np.trace(cov_b)) - 2.0 * trace_root
    return max(value, 0.0)  # W2² >= 0; identical fits give ±round-off


def frechet_distance(a: GaussianFit, b: GaussianFit) -> float:
    """Squared 2-Wasserstein (Fréchet) distance between N(a.mean, a.cov) and N(b.mean, b.cov) [1]_:

    ‖m_a − m_b‖² + tr Σa + tr Σb − 2 tr (Σa^½ Σb Σa^½)^½,

    the formula of the FID [3]_ (which pytorch-fid evaluates with ``scipy.linalg.sqrtm``
    of the non-symmetric Σa Σb). Here it comes from two symmetric eigendecompositions,
    with round-off clipped, so it is never negative and stays exact for singular
    covariances (fits of n <= d rows). Symmetric in ``a`` and ``b``, invariant under
    rotations and translations of both, in squared units of the data.

    By Gelbrich's bound [2]_ it is a *lower* bound on W2² between any two
    distributions with these means and covariances, and equals it when both are
    Gaussian: data far from Gaussian can be further apart than this says, never closer.

    Raises
    ------
    GaussAuditError
        When the fits have different dimensions.

    Examples
    --------
    >>> import numpy as np
    >>> a = GaussianFit(np.zeros(2), np.eye(2), n=10)
    >>> b = GaussianFit(np.array([3.0, 0.0]), 4 * np.eye(2), n=10)
    >>> round(frechet_distance(a, b), 12)     # 3² + 2·(2 − 1)²
    11.0
    """
    _same_dim(a.dim, b.dim, "the first fit", "the second")
    values, vectors = np.linalg.eigh(_symmetric(a.cov))
    return _frechet_from_eigh(a.mean, a.cov, values, vectors, b.mean, b.cov)


# ----------------------------------------------------------------------------
# Kullback-Leibler divergence


def _singular(values: np.ndarray) -> bool:
    """Numerically singular: the smallest eigenvalue <= d·eps·the largest (or no positive one)."""
    top = float(values.max())
    return top <= 0.0 or float(values.min()) <= values.size * _EPS * top


def _kl_from_eigh(mean_a, cov_a, values_a, mean_b, values_b, vectors_b) -> float:
    if _singular(values_a) or _singular(values_b):
        return float("inf")
    # Σb⁻¹ applied in Σb's eigenbasis: tr(Σb⁻¹Σa) = Σ_i (Vᵀ Σa V)_ii / w_i, without forming an inverse
    trace = float(np.sum(np.einsum("ij,ij->j", cov_a @ vectors_b, vectors_b) / values_b))
    along = vectors_b.T @ (mean_b - mean_a)
    mahalanobis = float(np.sum(along**2 / values_b))
    log_det = float(np.sum(np.log(values_b)) - np.sum(np.log(values_a)))
    value = 0.5 * (trace + mahalanobis - values_a.size + log_det)
    return max(value, 0.0)  # KL >= 0; equal fits give ±round-off


def gaussian_kl(a: GaussianFit, b: GaussianFit) -> float:
    """KL(N_a ‖ N_b) in nats [4]_:

    ½ [tr(Σb⁻¹Σa) + (m_b − m_a)ᵀ Σb⁻¹ (m_b − m_a) − d + ln det Σb − ln det Σa].

    Not symmetric: it is the expected log-likelihood ratio under N_a. Computed from
    eigendecompositions (no explicit inverse). It is ``inf`` when either covariance
    is numerically singular (an eigenvalue <= d·eps·the largest), as a fit of
    n <= d rows always is: a Gaussian on a subspace has no density, and its
    divergence from, or to, a Gaussian with a density is infinite (for two fits on
    the same subspace the formula is undefined; this function also says ``inf``).

    Raises
    ------
    GaussAuditError
        When the fits have different dimensions.

    Examples
    --------
    >>> import numpy as np
    >>> a = GaussianFit(np.zeros(1), np.eye(1), n=10)
    >>> b = GaussianFit(np.ones(1), 4 * np.eye(1), n=10)
    >>> bool(np.isclose(gaussian_kl(a, b), np.log(2) + (1 + 1) / 8 - 0.5))
    True
    """
    _same_dim(a.dim, b.dim, "the first fit", "the second")
    values_a = np.linalg.eigvalsh(_symmetric(a.cov))
    values_b, vectors_b = np.linalg.eigh(_symmetric(b.cov))
    return _kl_from_eigh(a.mean, a.cov, values_a, b.mean, values_b, vectors_b)


def _expected_log_det(dim: int, n: int) -> float:
    """E ln det S for the sample covariance S (ddof 1) of n rows of N(0, I_dim)."""
    nu = n - 1
    i = np.arange(1, dim + 1)
    return float(np.sum(special.digamma((nu - i + 1) / 2)) + dim * np.log(2.0) - dim * np.log(nu))


def kl_null_mean(dim: int, n_from: int, n_to: int) -> float:
    """What :func:`gaussian_kl` of two fits gives on average when both sets are
    drawn from one Gaussian: KL(fit of ``n_from`` rows ‖ fit of ``n_to`` rows),
    exactly (NaN when ``n_to`` ≤ dim + 2, where it is infinite).

    The fitted Gaussians differ by estimation error alone, and at a dimension
    near the row count that error is most of the divergence: read an observed KL
    against this value, not against 0. KL is affine-invariant, so the null value
    depends on the dimension and the row counts only. With S_i the sample
    covariances (Wishart, ν_i = n_i − 1) and the means independent of them,
    E tr(S_to⁻¹ S_from) = d ν_to/(ν_to − d − 1), the mean term adds
    (1/n_from + 1/n_to) times that, and E ln det S_i = Σ_k ψ((ν_i − k + 1)/2) + d ln(2/ν_i)
    (Anderson 2003, §7.5.1 and Theorem 7.3.1).

    Examples
    --------
    >>> round(kl_null_mean(8, 500, 500), 4)
    0.0898
    >>> round(kl_null_mean(768, 5000, 5000), 1)  # no drift at all, yet far from 0
    70.0
    """
    if n_to <= dim + 2 or n_from < 2:
        return float("nan")
    trace = dim * (n_to - 1) / (n_to - dim - 2)
    return 0.5 * (trace * (1 + 1 / n_from + 1 / n_to) - dim + _expected_log_det(dim, n_to)
                  - _expected_log_det(dim, n_from))


# ----------------------------------------------------------------------------
# Hotelling's two-sample T²


@dataclass(frozen=True)
class HotellingResult:
    """Two-sample Hotelling T² with the pooled covariance [5]_.

    ``statistic`` is T² = n1·n2/(n1+n2) · δᵀ S⁻¹ δ (δ the difference of the means,
    S the pooled covariance), ``f_statistic`` = (n1+n2−p−1)/((n1+n2−2)·p) · T²,
    F(p, n1+n2−p−1) under equal means and a common covariance for Gaussian rows;
    ``df1`` = p, ``df2`` = n1+n2−p−1. p is ``dim`` unless the rows lie in a lower
    dimensional affine subspace: then p is the pooled covariance's rank and the
    test is the same one computed in that subspace (see :func:`hotelling_two_sample`).
    """

    statistic: float
    f_statistic: float
    df1: int
    df2: int
    p_value: float
    n1: int
    n2: int
    dim: int


def _hotelling_from_moments(mean_1, cov_1, n1: int, mean_2, cov_2, n2: int) -> HotellingResult:
    total, d = n1 + n2, mean_1.size
    pooled = _symmetric(((n1 - 1) * cov_1 + (n2 - 1) * cov_2) / (total - 2))
    values, vectors = np.linalg.eigh(pooled)
    top = max(float(values.max()), 0.0)
    if top == 0.0:
        raise GaussAuditError("Hotelling's T² is undefined: neither sample varies (every row of each is the same).")
    # round-off cutoff as in gaussaudit.stats.multivariate: directions below it have no variance
    tol = max(total, d) * _EPS * top
    keep = values > tol
    rank = int(keep.sum())
    if rank < d and rank >= total - 2:
        # with fewer rows than dimensions the rank is n1+n2−2 whatever the population: the
        # subspace is the sample's, and T² in it has no F law (nor does it test the means)
        raise GaussAuditError(f"Hotelling's T² needs more rows than dimensions: n1 + n2 − 2 = {total - 2} < dim = {d}, so "
                              f"the pooled covariance is singular because of the sample size; give at least {d + 2} rows "
                              f"in all.")
    diff = mean_1 - mean_2
    along = vectors[:, keep].T @ diff
    # the part of δ off the span, as a vector (not ‖δ‖² − ‖along‖², which cancels)
    outside = 0.0 if rank == d else float(np.sum((diff - vectors[:, keep] @ along) ** 2))
    df1, df2 = rank, total - rank - 1
    if outside > tol:
        # the means differ along a direction in which neither sample varies: certain under the model
        t2 = f = float("inf")
        p_value = 0.0
    else:
        t2 = float(n1 * n2 / total * np.sum(along**2 / values[keep]))
        f = df2 / ((total - 2) * df1) * t2
        p_value = float(special.fdtrc(df1, df2, f))  # F survival function
    return HotellingResult(statistic=t2, f_statistic=float(f), df1=df1, df2=df2, p_value=p_value, n1=n1, n2=n2, dim=d)


def hotelling_two_sample(x: np.ndarray, y: np.ndarray) -> HotellingResult:
    """Two-sample Hotelling T² test of equal means, pooled covariance [5]_ (as
    ``pingouin.multivariate_ttest(x, y)``).

    Rank-deficient pooled covariance: when the rows lie in a lower-dimensional
    affine subspace (a linear constraint every embedding obeys, e.g. coordinates
    that sum to a constant after a layer norm), the covariance's eigen-directions
    above round-off span it, and T² is computed there with p = its rank
    (``df1`` < ``dim``): the test the data would get in coordinates of that
    subspace, exact F for Gaussian rows (T² is affine invariant). If the means
    differ along a direction with no variance, T² is ``inf`` and the p-value 0.
    A pooled covariance singular only because n1 + n2 − 2 < d is a different
    case (its span is the sample's, not the population's): an error.

    Raises
    ------
    GaussAuditError
        For unusable input (not 2-D, fewer than 2 rows each, NaN or inf,
        different dimensions), fewer than d + 2 rows in all, or no variance at all.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> res = hotelling_two_sample(rng.standard_normal((50, 3)), rng.standard_normal((40, 3)) + 1.0)
    >>> res.df1, res.df2, bool(res.p_value < 1e-6)
    (3, 86, True)
    """
    x, y = _as_rows(x, "x"), _as_rows(y, "y")
    _same_dim(x.shape[1], y.shape[1], "x", "y")
    a, b = fit_gaussian(x), fit_gaussian(y)
    return _hotelling_from_moments(a.mean, a.cov, a.n, b.mean, b.cov, b.n)


# ----------------------------------------------------------------------------
# spectrum


@dataclass(frozen=True)
class SpectrumSummary:
    """How many directions a covariance's variance is spread over.

    ``participation_ratio`` = (Σλ)²/Σλ² [9]_; ``entropy_rank`` = exp(H(λ/Σλ)),
    the effective rank of Roy & Vetterli [6]_ (Shannon entropy in nats, 0·log 0 = 0);
    ``rankme`` = exp(H(σ/Σσ)) with σ = √λ, the singular values of the centred
    rows up to one factor: RankMe [10]_, the same entropy rank of the singular
    values rather than the eigenvalues (always ≥ ``entropy_rank``).
    All three are d for equal eigenvalues and 1 for a single non-zero one.
    ``top_share`` = λ₁/Σλ, the largest eigenvalue's share of the total variance.
    ``dim`` is the number of eigenvalues. A zero spectrum (no variance) has both
    ranks 0 and ``top_share`` NaN.
    """

    participation_ratio: float
    entropy_rank: float
    top_share: float
    dim: int
    rankme: float = float("nan")


def spectrum_summary(eigenvalues: np.ndarray) -> SpectrumSummary:
    """Effective dimensions of a covariance from its eigenvalues (any order); invariant
    under rotations of the data, which leave the eigenvalues as they are.

    Negative eigenvalues down to −1e-8 × the largest (round-off of a singular
    covariance) count as 0.

    Raises
    ------
    GaussAuditError
        For an empty, non-1-D or non-finite array, or a clearly negative eigenvalue.

    Examples
    --------
    >>> s = spectrum_summary([4.0, 4.0, 0.0, 0.0])
    >>> s.participation_ratio, round(s.entropy_rank, 12), round(s.rankme, 12), s.top_share, s.dim
    (2.0, 2.0, 2.0, 0.5, 4)
    """
    values = np.asarray(eigenvalues, dtype=np.float64)
    if values.ndim != 1 or values.size == 0:
        raise GaussAuditError(f"eigenvalues must be a non-empty 1-D array; got shape {values.shape}.")
    if not np.isfinite(values).all():
        raise GaussAuditError("eigenvalues must be finite; got NaN or inf.")
    scale = float(np.abs(values).max())
    if float(values.min()) < -1e-8 * scale:
        raise GaussAuditError(f"eigenvalues of a covariance are >= 0; got {float(values.min())!r} (the largest in "
                              f"magnitude is {scale!r}).")
    values = np.clip(values, 0.0, None)
    total = float(values.sum())
    if total == 0.0:
        return SpectrumSummary(participation_ratio=0.0, entropy_rank=0.0, top_share=float("nan"), dim=values.size,
                               rankme=0.0)
    share = values / total
    return SpectrumSummary(
        participation_ratio=total**2 / float(np.sum(values**2)),
        entropy_rank=_entropy_rank(values),
        top_share=float(share.max()),
        dim=values.size,
        rankme=_entropy_rank(np.sqrt(values)),
    )


def _entropy_rank(values: np.ndarray) -> float:
    """exp of the Shannon entropy (nats) of ``values``/Σ``values``; 0·log 0 = 0."""
    share = values / float(values.sum())
    positive = share[share > 0]  # no log(0) warning
    return float(np.exp(-np.sum(positive * np.log(positive))))


# ----------------------------------------------------------------------------
# the drift test


@dataclass(frozen=True)
class DriftResult:
    """Reference against current rows: the fitted Gaussians' distances and a permutation test.

    ``frechet`` is :func:`frechet_distance` of the two fits (all rows);
    ``frechet_p`` its permutation p-value (1 + #{null ≥ observed}) / (1 + permutations);
    ``frechet_null_quantile`` the calibrated threshold: the order statistic of the
    permutation distribution at level 1 − alpha for which ``drifted`` (``frechet_p``
    <= ``alpha``) is exactly ``frechet > frechet_null_quantile``. ``kl_forward`` is
    KL(reference ‖ current), ``kl_backward`` KL(current ‖ reference), of the fits
    (``inf`` for a singular covariance); ``mean_shift`` Hotelling's test of equal
    means, or None when it cannot be computed. ``notes`` say why a value is
    missing or infinite, in words for a report.
    """

    n_reference: int
    n_current: int
    dim: int
    frechet: float
    frechet_null_quantile: float
    frechet_p: float
    kl_forward: float
    kl_backward: float
    mean_shift: HotellingResult | None
    reference_spectrum: SpectrumSummary
    current_spectrum: SpectrumSummary
    permutations: int
    alpha: float
    seed: int
    notes: tuple[str, ...]
    drifted: bool


class _SplitMoments:
    """Fréchet distances of splits of fixed pooled rows into n_a and n_b rows.

    The rows are centred on the pooled mean once (so sums of squares cancel little);
    the total sum and Gram matrix are fixed, so one part's moments give the other's:
    each split costs one Gram matrix of the smaller part (BLAS syrk), two products
    and two symmetric eigenproblems of d × d, and no copy of the larger part.
    """

    def __init__(self, pooled: np.ndarray, n_a: int):
        self.rows = pooled - pooled.mean(axis=0)
        self.n_a, self.n_b = n_a, len(pooled) - n_a
        self.total_sum = self.rows.sum(axis=0)
        self.total_gram = _symmetric(self.rows.T @ self.rows)

    def frechet(self, order: np.ndarray) -> float:
        """The distance between the first n_a rows of ``order`` and the rest."""
        small_is_a = self.n_a <= self.n_b
        part = order[: self.n_a] if small_is_a else order[self.n_a:]
        # sorted: the sums then run in one order whatever the shuffle, so a split's
        # statistic is a function of the set alone (equal sets, equal values: exact ties)
        rows = self.rows[np.sort(part)]
        n_small, n_large = (self.n_a, self.n_b) if small_is_a else (self.n_b, self.n_a)
        sum_small = rows.sum(axis=0)
        gram_small = _symmetric(rows.T @ rows)
        sum_large = self.total_sum - sum_small
        gram_large = self.total_gram - gram_small
        mean_small, mean_large = sum_small / n_small, sum_large / n_large
        cov_small = (gram_small - n_small * np.outer(mean_small, mean_small)) / (n_small - 1)
        cov_large = (gram_large - n_large * np.outer(mean_large, mean_large)) / (n_large - 1)
        values, vectors = np.linalg.eigh(cov_small)
        return _frechet_from_eigh(mean_small, cov_small, values, vectors, mean_large, cov_large)


def _check_test_options(permutations, alpha, seed) -> tuple[int, float, int]:
    try:
        permutations = operator.index(permutations)
    except TypeError:
        raise GaussAuditError(f"{option_name('permutations')} must be a whole number; got {permutations!r}.") from None
    if permutations < 1:
        raise GaussAuditError(f"{option_set('permutations', permutations)}: the test needs at least one permutation "
                              f"(99 is the default).")
    try:
        alpha = float(alpha)
    except (TypeError, ValueError):
        raise GaussAuditError(f"{option_name('alpha')} must be a number in (0, 1); got {alpha!r}.") from None
    if not 0.0 < alpha < 1.0:
        raise GaussAuditError(f"{option_set('alpha', alpha)}: the level must lie strictly between 0 and 1.")
    if 1 / (1 + permutations) > alpha:
        # the smallest p-value is 1/(1+B); the same float test as `frechet_p <= alpha` below
        least = max(1, int(1 / alpha) - 2)
        while 1 / (1 + least) > alpha:
            least += 1
        raise GaussAuditError(f"{option_set('permutations', permutations)} can never reach p <= {alpha:g}: the smallest "
                              f"permutation p-value is 1/(1 + permutations) = {1 / (1 + permutations):.4g}. Use "
                              f"{option_set('permutations', least)} or more, or a larger {option_name('alpha')}.")
    try:
        seed = operator.index(seed)
    except TypeError:
        raise GaussAuditError(f"{option_name('seed')} must be a whole number; got {seed!r}.") from None
    return permutations, alpha, seed


def drift_test(reference: np.ndarray, current: np.ndarray, *, permutations: int = 99, alpha: float = 0.05,
               seed: int = 0) -> DriftResult:
    """Has the distribution of the rows moved from ``reference`` to ``current``?

    A permutation test [7]_ of H0 "all rows, reference and current, are iid from one
    distribution", with the Fréchet distance of the two fitted Gaussians as
    statistic: the pooled rows are shuffled ``permutations`` times with
    ``np.random.default_rng(seed)``, split into n_reference and n_current rows, and
    the distance recomputed. Under H0 the rows are exchangeable, so the p-value
    (1 + #{null ≥ observed}) / (1 + permutations) [8]_ gives a test of level at most
    ``alpha`` whatever the distribution (exactly ``alpha`` when (1 + permutations)·alpha
    is a whole number: 19, 39, 99, … at 0.05), even for n <= d. It detects changes
    of mean and covariance; changes that keep both (a change of shape alone) it
    does not.

    Alongside, for a report: both KL divergences of the fits, Hotelling's test of
    equal means (None, with a note, when it cannot be computed, e.g. fewer than
    d + 2 rows in all) and both covariance spectra.

    Raises
    ------
    GaussAuditError
        For unusable rows (not 2-D, fewer than 2 rows, NaN or inf, different
        dimensions), ``permutations`` < 1, ``alpha`` outside (0, 1), or a number of
        permutations whose smallest p-value 1/(1 + permutations) exceeds ``alpha``.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> ref = rng.standard_normal((200, 4))
    >>> same = drift_test(ref, rng.standard_normal((150, 4)), permutations=19)
    >>> moved = drift_test(ref, 1.5 * rng.standard_normal((150, 4)), permutations=19)
    >>> same.drifted, moved.drifted, moved.frechet_p
    (False, True, 0.05)
    """
    reference, current = _as_rows(reference, "reference"), _as_rows(current, "current")
    _same_dim(reference.shape[1], current.shape[1], "reference", "current")
    permutations, alpha, seed = _check_test_options(permutations, alpha, seed)
    n_ref, n_cur, d = len(reference), len(current), reference.shape[1]

    splits = _SplitMoments(np.concatenate([reference, current]), n_ref)
    # the observed statistic by the same arithmetic as the null ones, so that a
    # permutation reproducing the observed split ties with it exactly
    observed = splits.frechet(np.arange(n_ref + n_cur))
    rng = np.random.default_rng(seed)
    null = np.array([splits.frechet(rng.permutation(n_ref + n_cur)) for _ in range(permutations)])
    count = int(np.count_nonzero(null >= observed))
    p_value = (1 + count) / (1 + permutations)
    # the most null values that may lie >= observed with p <= alpha (the same float test as p_value <= alpha)
    allowed = max(c for c in range(permutations + 1) if (1 + c) / (1 + permutations) <= alpha)
    threshold = float(np.sort(null)[::-1][allowed])

    ref_fit, cur_fit = fit_gaussian(reference), fit_gaussian(current)
    ref_values, ref_vectors = np.linalg.eigh(ref_fit.cov)
    cur_values, cur_vectors = np.linalg.eigh(cur_fit.cov)
    notes = []
    for name, n, values in (("reference", n_ref, ref_values), ("current", n_cur, cur_values)):
        if _singular(values):
            why = f"{n} rows for {d} dimensions" if n <= d else "the rows lie in a lower-dimensional subspace"
            notes.append(f"the {name} covariance is singular ({why}): the KL divergences of the fitted Gaussians are "
                         f"infinite; the Fréchet distance and its test are unaffected.")
    try:
        mean_shift = _hotelling_from_moments(ref_fit.mean, ref_fit.cov, n_ref, cur_fit.mean, cur_fit.cov, n_cur)
    except GaussAuditError as err:
        mean_shift = None
        notes.append(f"no mean-shift test: {err}")
    else:
        if mean_shift.df1 < d:
            notes.append(f"the pooled covariance has rank {mean_shift.df1} < {d} dimensions: Hotelling's T² is computed "
                         f"in the {mean_shift.df1}-dimensional subspace the rows span (df1 = {mean_shift.df1}).")
    return DriftResult(
        n_reference=n_ref,
        n_current=n_cur,
        dim=d,
        frechet=observed,
        frechet_null_quantile=threshold,
        frechet_p=float(p_value),
        kl_forward=_kl_from_eigh(ref_fit.mean, ref_fit.cov, ref_values, cur_fit.mean, cur_values, cur_vectors),
        kl_backward=_kl_from_eigh(cur_fit.mean, cur_fit.cov, cur_values, ref_fit.mean, ref_values, ref_vectors),
        mean_shift=mean_shift,
        reference_spectrum=spectrum_summary(ref_values),
        current_spectrum=spectrum_summary(cur_values),
        permutations=permutations,
        alpha=alpha,
        seed=seed,
        notes=tuple(notes),
        drifted=bool(p_value <= alpha),
    )
